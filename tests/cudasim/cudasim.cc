// cudasim.cc: block scheduler, barriers, warp exchange and launch for the
// CUDA emulator (see cudasim.h).
#include "cudasim.h"

#include "fiber.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace cudasim {

thread_local uint3 tl_threadIdx;
thread_local uint3 tl_blockIdx;
thread_local dim3 tl_blockDim;
thread_local dim3 tl_gridDim;

namespace {

enum State { ST_READY, ST_BAR, ST_WARP, ST_DONE, ST_FAILED };

struct Thread {
    Fiber *fib;
    State state;
    const char *what; // "__syncthreads" or the warp intrinsic waited in
    const char *file;
    int line;
    uint3 tid;
};

struct Warp {
    unsigned exist;   // lanes that exist
    unsigned arrived; // lanes waiting at the current exchange
    unsigned mask;
    const char *what;
    warp_fn fn;
    void *data[32];
};

struct Block {
    std::vector<Thread> th;
    std::vector<Warp> warps;
    int n = 0;
    int cur = -1;
    int rr = -1;
    std::vector<int> warp_order;
    thunk_fn thunk = nullptr;
    void *ctx = nullptr;
    unsigned char *dyn = nullptr;
    size_t dyn_size = 0;
    std::set<void *> poisoned;
    bool failed = false;
    std::string err;
    uint64_t rng = 0;
};

struct Config {
    bool init = false;
    Policy policy = POLICY_IN_ORDER;
    uint64_t seed = 1;
};

struct Pool {
    std::vector<Fiber *> fibers;
    ~Pool() {
        for (Fiber *f : fibers) {
            fiber_free(f);
            delete f;
        }
    }
};

thread_local Config t_cfg;
thread_local Block *t_blk;
thread_local Pool t_pool;
thread_local std::string t_error;
thread_local unsigned long t_failed;
thread_local uint64_t t_launch_no;

uint64_t rng_next(uint64_t &s) { // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

template <typename T> void shuffle_vec(std::vector<T> &v, uint64_t &s) {
    for (size_t i = v.size(); i > 1; i--)
        std::swap(v[i - 1], v[rng_next(s) % i]);
}

void config_init() {
    if (t_cfg.init) return;
    t_cfg.init = true;
    const char *p = getenv("CUDASIM_POLICY");
    if (p) {
        for (int i = 0; i < 4; i++)
            if (!strcmp(p, policy_name((Policy)i))) t_cfg.policy = (Policy)i;
    }
    const char *s = getenv("CUDASIM_SEED");
    if (s) t_cfg.seed = strtoull(s, nullptr, 0);
}

size_t stack_bytes() {
    const char *s = getenv("CUDASIM_STACK_KB");
    size_t kb = s ? strtoul(s, nullptr, 0) : 0;
#if defined(__SANITIZE_ADDRESS__)
    if (kb == 0) kb = 256;
#endif
    if (kb == 0) kb = 64;
    return kb * 1024;
}

std::string strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

Block &blk(const char *what) {
    if (!t_blk) {
        fprintf(stderr, "cudasim: %s called outside a kernel launch\n", what);
        abort();
    }
    return *t_blk;
}

// From inside a fiber: record the error and leave for good.  The fiber is
// never resumed, so nothing with a destructor may live on its stack here:
// the message is formatted into a local buffer, not a std::string temporary.
std::string describe(Block &b);
[[noreturn]] void fail_here(bool with_threads, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fail_here(bool with_threads, const char *fmt, ...) {
    Block &b = *t_blk;
    if (!b.failed) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        b.failed = true;
        b.err = buf;
        if (with_threads) b.err += describe(b);
    }
    Thread &t = b.th[b.cur];
    t.state = ST_FAILED;
    fiber_yield(t.fib, false);
    abort(); // never resumed
}

std::string where(const char *file, int line) { return strf("%s:%d", file ? file : "?", line); }

void thread_main(void *arg) {
    Thread *t = static_cast<Thread *>(arg);
    Block &b = *t_blk;
    b.thunk(b.ctx);
    t->state = ST_DONE;
    fiber_yield(t->fib, true);
}

// Threads grouped by what they wait in, with compressed id ranges.
std::string describe(Block &b) {
    std::map<std::string, std::vector<int>> groups;
    for (int i = 0; i < b.n; i++) {
        Thread &t = b.th[i];
        std::string k;
        switch (t.state) {
        case ST_DONE: k = "exited"; break;
        case ST_READY: k = "runnable"; break;
        case ST_FAILED: k = "failed"; break;
        case ST_BAR:
        case ST_WARP: k = strf("wait in %s at %s", t.what, where(t.file, t.line).c_str()); break;
        }
        groups[k].push_back(i);
    }
    std::string out;
    for (auto &g : groups) {
        std::string ids;
        auto &v = g.second;
        for (size_t i = 0; i < v.size();) {
            size_t j = i;
            while (j + 1 < v.size() && v[j + 1] == v[j] + 1)
                j++;
            if (!ids.empty()) ids += ",";
            ids += v[i] == v[j] ? strf("%d", v[i]) : strf("%d-%d", v[i], v[j]);
            i = j + 1;
        }
        out += strf("\n    threads %s: %s", ids.c_str(), g.first.c_str());
    }
    return out;
}

int pick(Block &b) {
    Policy p = t_cfg.policy;
    int n = b.n;
    if (p == POLICY_IN_ORDER || p == POLICY_REVERSE) {
        for (int k = 1; k <= n; k++) {
            int i = p == POLICY_IN_ORDER ? (b.rr + k) % n : ((b.rr - k) % n + n) % n;
            if (b.th[i].state == ST_READY) return b.rr = i;
        }
        return -1;
    }
    if (p == POLICY_RANDOM) {
        int cnt = 0;
        for (int i = 0; i < n; i++)
            cnt += b.th[i].state == ST_READY;
        if (!cnt) return -1;
        int k = (int)(rng_next(b.rng) % (uint64_t)cnt);
        for (int i = 0; i < n; i++)
            if (b.th[i].state == ST_READY && k-- == 0) return i;
        return -1;
    }
    // greedy: the first warp (in the shuffled order) that can run, runs.
    for (int w : b.warp_order) {
        int lo = w * 32, hi = std::min(n, lo + 32);
        for (int i = lo; i < hi; i++)
            if (b.th[i].state == ST_READY) return i;
    }
    return -1;
}

// Nobody can run: release a barrier or report.  Returns false when done/failed.
bool settle(Block &b) {
    int done = 0, bar = 0;
    for (int i = 0; i < b.n; i++) {
        done += b.th[i].state == ST_DONE;
        bar += b.th[i].state == ST_BAR;
    }
    if (done == b.n) return false;
    if (bar + done == b.n && done == 0) {
        const Thread &t0 = b.th[0];
        bool same = true;
        for (int i = 1; i < b.n && same; i++)
            same = b.th[i].line == t0.line && !strcmp(b.th[i].file, t0.file);
        if (same) {
            for (int i = 0; i < b.n; i++)
                b.th[i].state = ST_READY;
            if (t_cfg.policy == POLICY_GREEDY) shuffle_vec(b.warp_order, b.rng);
            return true;
        }
        b.err = "divergent __syncthreads: the threads of the block wait at different barriers";
    } else if (bar + done == b.n) {
        b.err = "divergent __syncthreads: some threads exited while others wait at a barrier";
    } else {
        b.err = "deadlock: no thread can run";
    }
    b.failed = true;
    b.err += describe(b);
    return false;
}

} // namespace

// ---------------------------------------------------------------- policy & errors
void set_policy(Policy p, uint64_t seed) {
    t_cfg.init = true;
    t_cfg.policy = p;
    t_cfg.seed = seed;
}
Policy policy() {
    config_init();
    return t_cfg.policy;
}
uint64_t policy_seed() {
    config_init();
    return t_cfg.seed;
}
const char *policy_name(Policy p) {
    static const char *names[] = {"in-order", "reverse", "random", "greedy"};
    return (unsigned)p < 4 ? names[p] : "?";
}
bool error_pending() { return !t_error.empty(); }
std::string take_error() {
    std::string s;
    s.swap(t_error);
    return s;
}
unsigned long launches_failed() { return t_failed; }

// ---------------------------------------------------------------- device side
void syncthreads(const char *file, int line) {
    Block &b = blk("__syncthreads");
    Thread &t = b.th[b.cur];
    t.state = ST_BAR;
    t.what = "__syncthreads";
    t.file = file;
    t.line = line;
    fiber_yield(t.fib, false);
}

void device_error(const char *file, int line, const char *msg) {
    Block &b = blk("device_error");
    uint3 ti = b.th[b.cur].tid;
    fail_here(false, "device error at %s:%d, thread (%u,%u,%u): %s", file, line, ti.x, ti.y, ti.z,
              msg);
}

unsigned lane_id() { return (unsigned)blk("lane_id").cur % 32u; }
unsigned warp_id() { return (unsigned)blk("warp_id").cur / 32u; }
unsigned warp_exist_mask() {
    Block &b = blk("warp_exist_mask");
    return b.warps[b.cur / 32].exist;
}

void warp_collective(unsigned mask, const char *what, const char *file, int line, void *lane_data,
                     warp_fn fn) {
    Block &b = blk(what);
    Thread &t = b.th[b.cur];
    int w = b.cur / 32, lane = b.cur % 32;
    Warp &W = b.warps[w];
    // Full masks only: the warp's existing lanes, or 0xffffffff (a partial last
    // warp then meets with the lanes it has).
    if (mask != W.exist && mask != 0xffffffffu)
        fail_here(false,
                  "%s at %s:%d (thread %d): mask 0x%08x is not the full mask 0x%08x of warp %d; "
                  "cudasim accepts explicit full masks only",
                  what, file, line, b.cur, mask, W.exist, w);
    mask &= W.exist;
    t.what = what;
    t.file = file;
    t.line = line;
    if (W.arrived == 0) {
        W.mask = mask;
        W.what = what;
        W.fn = fn;
    } else if (strcmp(W.what, what) != 0) {
        t.state = ST_WARP;
        fail_here(true, "warp %d: threads meet in different warp intrinsics (%s at %s:%d vs %s)", w,
                  what, file, line, W.what);
    }
    W.data[lane] = lane_data;
    W.arrived |= 1u << lane;
    if (W.arrived == W.mask) {
        void *data[32];
        for (int i = 0; i < 32; i++)
            data[i] = (W.mask >> i & 1) ? W.data[i] : nullptr;
        W.arrived = 0;
        W.fn(data, W.mask);
        for (int i = 0; i < 32; i++)
            if ((W.mask >> i & 1) && i != lane) b.th[w * 32 + i].state = ST_READY;
        return;
    }
    t.state = ST_WARP;
    fiber_yield(t.fib, false);
}

void *dyn_smem() { return blk("dyn_smem").dyn; }
size_t dyn_smem_size() { return blk("dyn_smem_size").dyn_size; }

void poison_shared(void *p, size_t n) {
    Block &b = blk("POISON_SHARED");
    if (b.poisoned.insert(p).second) memset(p, 0xff, n);
}

int shfl_check_width(int width, const char *what, const char *file, int line) {
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail_here(false, "%s at %s:%d: width %d is not a power of two in 1..32", what, file, line,
                  width);
    return width;
}

// shfl.sync per the PTX ISA: segmask = c[12:8], clamp = c[4:0].
void shfl_complete(void *const *lanes, unsigned mask) {
    ShflLane *d[32];
    for (int i = 0; i < 32; i++)
        d[i] = static_cast<ShflLane *>(lanes[i]);
    for (int lane = 0; lane < 32; lane++) {
        if (!d[lane]) continue;
        int b = d[lane]->b & 0x1f, c = d[lane]->c;
        int segmask = (c >> 8) & 0x1f, clamp = c & 0x1f;
        int maxLane = (lane & segmask) | (clamp & ~segmask);
        int minLane = lane & segmask;
        int j;
        bool pval;
        switch (d[lane]->mode) {
        case 0:
            j = minLane | (b & ~segmask);
            pval = j <= maxLane;
            break;
        case 1:
            j = lane - b;
            pval = j >= maxLane;
            break;
        case 2:
            j = lane + b;
            pval = j <= maxLane;
            break;
        default:
            j = lane ^ b;
            pval = j <= maxLane;
            break;
        }
        if (!pval) j = lane;
        // A source lane outside the mask gives an undefined value: poison it.
        d[lane]->out = (mask >> j & 1) ? d[j]->v : ~(uint64_t)0;
    }
}

void vote_complete(void *const *lanes, unsigned mask) {
    unsigned bal = 0;
    for (int i = 0; i < 32; i++)
        if (lanes[i] && static_cast<VoteLane *>(lanes[i])->pred) bal |= 1u << i;
    for (int i = 0; i < 32; i++)
        if (lanes[i]) static_cast<VoteLane *>(lanes[i])->out = bal & mask;
}

void reduce_complete(void *const *lanes, unsigned mask) {
    (void)mask;
    int op = -1;
    uint32_t acc = 0;
    bool first = true;
    for (int i = 0; i < 32; i++) {
        ReduceLane *d = static_cast<ReduceLane *>(lanes[i]);
        if (!d) continue;
        op = d->op;
        uint32_t v = d->v;
        if (first) {
            acc = v;
            first = false;
            continue;
        }
        switch (op & 7) {
        case 0: acc += v; break;
        case 1:
            acc = (op & 8) ? (uint32_t)std::min((int32_t)acc, (int32_t)v) : std::min(acc, v);
            break;
        case 2:
            acc = (op & 8) ? (uint32_t)std::max((int32_t)acc, (int32_t)v) : std::max(acc, v);
            break;
        case 3: acc &= v; break;
        case 4: acc |= v; break;
        default: acc ^= v; break;
        }
    }
    for (int i = 0; i < 32; i++)
        if (lanes[i]) static_cast<ReduceLane *>(lanes[i])->out = acc;
}

static void syncwarp_complete(void *const *, unsigned) {}
void syncwarp(const char *file, int line, unsigned mask) {
    warp_collective(mask, "__syncwarp", file, line, nullptr, syncwarp_complete);
}

// ---------------------------------------------------------------- streams, limits, last error
namespace {
enqueue_fn g_enqueue;            // installed by cudart_sim.cc; null = run now
thread_local cudaError_t t_last; // cudart's per-thread last error
std::map<const void *, int> g_max_dyn_smem;
const size_t k_default_dyn_smem = 48 * 1024, k_optin_dyn_smem = 227 * 1024;

// A failed launch: the emulator's message (take_error) and the cudart error.
bool launch_failed(const std::string &site, const std::string &m, cudaError_t code) {
    t_failed++;
    t_last = code;
    if (t_error.empty()) t_error = site + ": " + m;
    if (getenv("CUDASIM_ABORT")) {
        fprintf(stderr, "cudasim: %s: %s\n", site.c_str(), m.c_str());
        abort();
    }
    return false;
}
} // namespace

void set_enqueue_impl(enqueue_fn fn) { g_enqueue = fn; }
cudaError_t enqueue(cudaStream_t stream, const char *what, std::function<void()> work) {
    if (g_enqueue) return g_enqueue(stream, what, std::move(work));
    work();
    return cudaSuccess;
}
void set_last_error(cudaError_t e) { t_last = e; }
cudaError_t last_error(bool reset) {
    cudaError_t e = t_last;
    if (reset) t_last = cudaSuccess;
    return e;
}
void set_max_dynamic_smem(const void *func, int bytes) { g_max_dyn_smem[func] = bytes; }
int max_dynamic_smem(const void *func) {
    auto it = g_max_dyn_smem.find(func);
    return it == g_max_dyn_smem.end() ? (int)k_default_dyn_smem : it->second;
}

bool launch_check(const char *name, const char *file, int line, const void *func, dim3 grid,
                  dim3 block, size_t smem) {
    std::string site = strf("%s launched at %s", name, where(file, line).c_str());
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
        return launch_failed(site, strf("invalid block (%u,%u,%u)", block.x, block.y, block.z),
                             cudaErrorInvalidConfiguration);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
        grid.z > 65535)
        return launch_failed(site, strf("invalid grid (%u,%u,%u)", grid.x, grid.y, grid.z),
                             cudaErrorInvalidConfiguration);
    if (smem > k_optin_dyn_smem)
        return launch_failed(site, strf("dynamic shared memory %zu bytes exceeds 227 KiB", smem),
                             cudaErrorInvalidValue);
    size_t lim = (size_t)max_dynamic_smem(func);
    if (smem > k_default_dyn_smem && smem > lim)
        return launch_failed(
            site,
            strf("dynamic shared memory %zu bytes exceeds the kernel's limit of %zu bytes (above "
                 "48 KiB it must be raised with cudaFuncSetAttribute("
                 "cudaFuncAttributeMaxDynamicSharedMemorySize))",
                 smem, lim),
            cudaErrorInvalidValue);
    return true;
}

void launch_rejected(const char *name, const char *file, int line, cudaError_t e) {
    launch_failed(strf("%s launched at %s", name, where(file, line).c_str()),
                  strf("rejected by the stream (cudaError_t %d)", (int)e), e);
}

// ---------------------------------------------------------------- launch
bool launch_impl(const char *name, const char *file, int line, dim3 grid, dim3 block, size_t smem,
                 thunk_fn thunk, void *ctx) {
    config_init();
    if (t_blk) {
        fprintf(stderr,
                "cudasim: LAUNCH of %s at %s from inside a kernel (dynamic parallelism) is not "
                "emulated\n",
                name, where(file, line).c_str());
        abort();
    }
    uint64_t launch_no = t_launch_no++;
    std::string site = strf("%s launched at %s", name, where(file, line).c_str());
    auto fail_launch = [&](const std::string &m) {
        return launch_failed(site, m, cudaErrorLaunchFailure);
    };
    // launch_check() ran at LAUNCH time; these guard direct callers.
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.z > 64)
        return fail_launch(strf("invalid block (%u,%u,%u)", block.x, block.y, block.z));
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
        grid.z > 65535)
        return fail_launch(strf("invalid grid (%u,%u,%u)", grid.x, grid.y, grid.z));
    if (smem > k_optin_dyn_smem)
        return fail_launch(strf("dynamic shared memory %zu bytes exceeds 227 KiB", smem));

    Block b;
    b.n = (int)nthreads;
    b.thunk = thunk;
    b.ctx = ctx;
    b.dyn_size = smem;
    std::vector<unsigned char> dynbuf(smem + 128);
    b.dyn = dynbuf.data() + ((128 - ((uintptr_t)dynbuf.data() & 127)) & 127);
    b.th.resize(b.n);
    int nw = (b.n + 31) / 32;
    b.warps.resize(nw);
    size_t ssz = stack_bytes();
    while ((int)t_pool.fibers.size() < b.n)
        t_pool.fibers.push_back(new Fiber());
    for (int i = 0; i < b.n; i++)
        if (!fiber_alloc(t_pool.fibers[i], ssz)) return fail_launch("cannot map fiber stacks");
    for (int i = 0; i < b.n; i++) {
        b.th[i].fib = t_pool.fibers[i];
        b.th[i].tid = make_uint3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
    }

    unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    std::vector<unsigned long long> order(nblocks);
    for (unsigned long long i = 0; i < nblocks; i++)
        order[i] = i;
    uint64_t rng = t_cfg.seed * 0x2545f4914f6cdd1dull + launch_no;
    if (t_cfg.policy == POLICY_REVERSE) std::reverse(order.begin(), order.end());
    if (t_cfg.policy == POLICY_RANDOM || t_cfg.policy == POLICY_GREEDY) shuffle_vec(order, rng);

    tl_blockDim = block;
    tl_gridDim = grid;
    t_blk = &b;
    bool ok = true;
    for (unsigned long long bi : order) {
        tl_blockIdx = make_uint3((unsigned)(bi % grid.x), (unsigned)((bi / grid.x) % grid.y),
                                 (unsigned)(bi / ((unsigned long long)grid.x * grid.y)));
        b.rng = rng_next(rng);
        b.cur = -1;
        b.rr = t_cfg.policy == POLICY_REVERSE ? 0 : b.n - 1;
        b.poisoned.clear();
        memset(b.dyn, 0xff, smem);
        for (int w = 0; w < nw; w++) {
            int k = std::min(32, b.n - 32 * w);
            b.warps[w] = Warp();
            b.warps[w].exist = k == 32 ? 0xffffffffu : ((1u << k) - 1);
        }
        b.warp_order.resize(nw);
        for (int w = 0; w < nw; w++)
            b.warp_order[w] = w;
        if (t_cfg.policy == POLICY_GREEDY) shuffle_vec(b.warp_order, b.rng);
        for (int i = 0; i < b.n; i++) {
            Thread &t = b.th[i];
            t.state = ST_READY;
            t.what = "";
            t.file = "";
            t.line = 0;
            fiber_prepare(t.fib, thread_main, &t);
        }
        for (;;) {
            int i = pick(b);
            if (i < 0) {
                if (settle(b)) continue;
                break;
            }
            b.cur = i;
            tl_threadIdx = b.th[i].tid;
            fiber_resume(b.th[i].fib);
            if (b.failed) break;
        }
        if (b.failed) {
            uint3 bx = tl_blockIdx;
            ok = fail_launch(strf("block (%u,%u,%u), policy %s seed %llu: %s", bx.x, bx.y, bx.z,
                                  policy_name(t_cfg.policy), (unsigned long long)t_cfg.seed,
                                  b.err.c_str()));
            break;
        }
    }
    t_blk = nullptr;
    return ok;
}

} // namespace cudasim
