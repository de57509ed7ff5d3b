// The self-tests' tiny runner: EXPECT inside a `bool test()` returns false
// with a message; run() counts it and prints "ok" / "FAIL"; each program ends
// by printing its totals.  One copy for every cudasim test program.
#ifndef CUDASIM_TEST_HARNESS_H
#define CUDASIM_TEST_HARNESS_H

#include <cstdio>
#include <string>

#include "cudasim.h"

static int g_pass, g_fail;
static std::string g_why;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char b_[512];                                                                          \
            snprintf(b_, sizeof b_, __VA_ARGS__);                                                  \
            g_why = std::string(#cond) + ": " + b_;                                                \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static void run(const char *name, bool (*fn)()) {
    g_why.clear();
    cudasim::set_policy(cudasim::POLICY_IN_ORDER, 1);
    (void)cudasim::take_error();
    bool ok = fn();
    if (ok && cudasim::error_pending()) {
        ok = false;
        g_why = "unexpected emulator error: " + cudasim::take_error();
    }
    if (ok) {
        g_pass++;
        printf("ok   %s\n", name);
    } else {
        g_fail++;
        printf("FAIL %s\n     %s\n", name, g_why.c_str());
    }
    fflush(stdout);
}

#endif
