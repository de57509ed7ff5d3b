// fiber.h: minimal stackful fibers for the CUDA emulator (tests/cudasim).
//
// A star topology only: a scheduler context resumes a fiber, the fiber yields
// back to the scheduler.  Fibers never move between OS threads.  On x86-64 the
// switch is a hand-written routine saving the callee-saved registers and the
// SSE (mxcsr) / x87 control words; elsewhere (or with -DCUDASIM_UCONTEXT) it
// falls back to ucontext (slower: a signal-mask system call per switch).
// Under AddressSanitizer every switch is announced with
// __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber.
#ifndef CUDASIM_FIBER_H
#define CUDASIM_FIBER_H

#include <stddef.h>

#if !defined(__x86_64__) && !defined(CUDASIM_UCONTEXT)
#define CUDASIM_UCONTEXT 1
#endif
#if defined(CUDASIM_UCONTEXT)
#include <ucontext.h>
#endif

namespace cudasim {

typedef void (*fiber_fn)(void *arg);

struct Fiber {
    void *sp = nullptr; // saved stack pointer (asm switch)
#if defined(CUDASIM_UCONTEXT)
    ucontext_t uc;
#endif
    unsigned char *map = nullptr; // mmap'd region: guard page + stack
    size_t map_size = 0;
    unsigned char *stack = nullptr; // usable stack (above the guard page)
    size_t stack_size = 0;
    fiber_fn fn = nullptr;
    void *arg = nullptr;
    void *asan_fake = nullptr; // ASan fake-stack handle while switched out
};

// Allocates the stack (once; reused by later fiber_prepare calls).
// Returns false when the mapping fails.
bool fiber_alloc(Fiber *f, size_t stack_size);
void fiber_free(Fiber *f);
// (Re)starts f at fn(arg) on its stack; the fiber runs at the next resume.
void fiber_prepare(Fiber *f, fiber_fn fn, void *arg);
// Scheduler side: run f until it yields (or finishes).
void fiber_resume(Fiber *f);
// Fiber side: switch back to the scheduler.  `last` = the fiber will never be
// resumed again (lets ASan drop its fake stack).
void fiber_yield(Fiber *self, bool last);

} // namespace cudasim

#endif
