// cudasim.h: CPU emulation of the CUDA execution model (the shim header).
//
// Compile kernels/*.cu with the host C++ compiler (C++17) and this header in
// front of the real CUDA headers.  Without __CUDACC__ those headers keep our
// definitions of __global__/__device__/__host__/__shared__, so the real types
// (dim3, uint3, __half, __nv_bfloat16, cudaError_t, ...) stay in force.
//
// Model: each block runs on one OS thread; each CUDA thread of the block is a
// fiber.  threadIdx/blockIdx/blockDim/gridDim are thread-local variables
// rewritten at every switch; __shared__ is `static thread_local`, i.e. shared
// by all fibers of the block (blocks of a launch run one after another).
// __syncthreads is a block barrier identified by its source location; warp
// shuffles/votes/reductions (and ptx.cuh's mma/ldmatrix) meet at one warp
// exchange point keyed by the mask.  Misuse (divergent barriers, deadlocks,
// non-full masks) aborts the launch with a report; it never hangs.
// See docs/CUDA.md, section "cudasim".
#ifndef CUDASIM_H
#define CUDASIM_H

#if defined(__CUDACC__)
#error                                                                                             \
    "cudasim.h is the host-compiler emulation shim; nvcc builds use kernels/common.cuh's nvcc side"
#endif

#define CUDASIM 1
#define __global__
#define __device__
#define __host__
#define __shared__ static thread_local

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif

namespace cudasim {

// ---------------------------------------------------------------- policies
enum Policy { POLICY_IN_ORDER = 0, POLICY_REVERSE, POLICY_RANDOM, POLICY_GREEDY };
// in-order / reverse: round-robin over the threads of a block, each running
//   until it blocks (barrier, warp exchange, exit);
// random(seed): a random ready thread each time; blocks in random order;
// greedy(seed): one warp runs until all its threads wait at the block barrier
//   (or exit); warp order reshuffled at block start and at each barrier.
// Default from the environment: CUDASIM_POLICY=in-order|reverse|random|greedy,
// CUDASIM_SEED=<n>; else in-order.
void set_policy(Policy p, uint64_t seed = 1);
Policy policy();
uint64_t policy_seed();
const char *policy_name(Policy p);

// ---------------------------------------------------------------- errors
// A failed launch (divergent barrier, deadlock, bad mask, device_error...)
// leaves a message here; launches after it still run.
bool error_pending();
std::string take_error(); // returns the message and clears it ("" if none)
unsigned long launches_failed();

// ---------------------------------------------------------------- device side
extern thread_local uint3 tl_threadIdx;
extern thread_local uint3 tl_blockIdx;
extern thread_local dim3 tl_blockDim;
extern thread_local dim3 tl_gridDim;

void syncthreads(const char *file, int line);
// Aborts the current launch with a message (device-side assertion/trap).
[[noreturn]] void device_error(const char *file, int line, const char *msg);

unsigned lane_id();
unsigned warp_id();         // warp index within the block
unsigned warp_exist_mask(); // lanes that exist in this warp (0xffffffff unless the block's last
                            // warp is partial)

// One warp exchange point.  Every lane in `mask` calls it with the same
// `what` (the intrinsic's name) and its own lane_data; when the last one
// arrives, fn(lane_data[32], mask) runs once (entries of lanes outside the
// mask are null) and all lanes continue.  Only full masks are accepted.
typedef void (*warp_fn)(void *const *lane_data, unsigned mask);
void warp_collective(unsigned mask, const char *what, const char *file, int line, void *lane_data,
                     warp_fn fn);

void *dyn_smem();
size_t dyn_smem_size();
// First call per block for a given address fills it with 0xFF (NaN in f32,
// f16 and bf16); later calls in the same block do nothing.
void poison_shared(void *p, size_t n);

// ---------------------------------------------------------------- warp intrinsics
struct ShflLane {
    uint64_t v, out;
    int mode; // 0 idx, 1 up, 2 down, 3 bfly
    int b, c;
};
void shfl_complete(void *const *lanes, unsigned mask);
int shfl_check_width(int width, const char *what, const char *file, int line);

template <typename T>
inline T shfl(const char *what, const char *file, int line, unsigned mask, T var, int mode, int b,
              int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "cudasim: shuffle of a type wider than 8 bytes");
    int w = shfl_check_width(width, what, file, line);
    ShflLane d;
    d.v = 0;
    memcpy(&d.v, &var, sizeof(T));
    d.out = 0;
    d.mode = mode;
    d.b = b;
    d.c = ((32 - w) << 8) | (mode == 1 ? 0 : 0x1f);
    warp_collective(mask, what, file, line, &d, shfl_complete);
    T r;
    memcpy(&r, &d.out, sizeof(T));
    return r;
}

struct VoteLane {
    unsigned pred, out;
};
void vote_complete(void *const *lanes, unsigned mask);
inline unsigned vote(const char *what, const char *file, int line, unsigned mask, int pred) {
    VoteLane d{pred != 0, 0};
    warp_collective(mask, what, file, line, &d, vote_complete);
    return d.out;
}

struct ReduceLane {
    uint32_t v, out;
    int op; // 0 add 1 min 2 max 3 and 4 or 5 xor; |8 = signed
};
void reduce_complete(void *const *lanes, unsigned mask);
inline uint32_t reduce(const char *what, const char *file, int line, unsigned mask, uint32_t v,
                       int op) {
    ReduceLane d{v, 0, op};
    warp_collective(mask, what, file, line, &d, reduce_complete);
    return d.out;
}
void syncwarp(const char *file, int line, unsigned mask = 0xffffffffu);

// ---------------------------------------------------------------- streams (the async seam)
// All GPU work (LAUNCH, the cudart stand-in's async memcpy/memset, the cuBLAS
// stand-in) goes through enqueue(): `work` runs now (synchronous mode, the
// default), is recorded into a graph (the stream is capturing), or waits in
// the stream's queue until a synchronisation point of that stream, an event
// or the device (deferred mode).  Returns cudaSuccess, or the error the
// runtime would return for enqueueing here (a capture error, an invalid
// stream handle); the work is then dropped.  `work` captures its arguments by
// value: a graph replays the same closure, re-reading the memory its pointer
// arguments point to.  Without tests/cudasim/cudart_sim.cc linked in, work
// always runs now.
cudaError_t enqueue(cudaStream_t stream, const char *what, std::function<void()> work);
// Deferred mode (also env CUDASIM_DEFERRED=1): catches host code that reads
// results without synchronising.  Switching it off runs all queued work.
// Device-memory protection (also env CUDASIM_PROTECT=1): cudaMalloc'd memory
// is PROT_NONE whenever no emulated GPU work runs, so a host dereference of a
// device pointer faults; applies to allocations made while it is on.
// Both are defined in cudart_sim.cc.
void set_deferred(bool on);
bool deferred();
void set_protect_device(bool on);
bool protect_device();
// Graphs instantiated and launches of them so far (tests count replays).
unsigned long graphs_instantiated();
unsigned long graph_launches();
// The cudart last error of this thread (cudaGetLastError/cudaPeekAtLastError).
void set_last_error(cudaError_t e);
cudaError_t last_error(bool reset);
// cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize, n).
void set_max_dynamic_smem(const void *func, int bytes);
int max_dynamic_smem(const void *func); // 48 KiB unless raised
// Internal: cudart_sim.cc installs the queue/capture machinery behind enqueue().
typedef cudaError_t (*enqueue_fn)(cudaStream_t stream, const char *what,
                                  std::function<void()> &&work);
void set_enqueue_impl(enqueue_fn fn);

// ---------------------------------------------------------------- launch
typedef void (*thunk_fn)(void *ctx);
// Runs all blocks of a launch; returns false (and records the error) on failure.
bool launch_impl(const char *name, const char *file, int line, dim3 grid, dim3 block, size_t smem,
                 thunk_fn thunk, void *ctx);
// What the runtime checks at <<<>>> time (grid, block, dynamic shared memory
// against the kernel's limit); false = error recorded (take_error) and the
// cudart last error set.
bool launch_check(const char *name, const char *file, int line, const void *func, dim3 grid,
                  dim3 block, size_t smem);
// Records an enqueue() failure of a launch (error message + last error).
void launch_rejected(const char *name, const char *file, int line, cudaError_t e);

// Returns true when the launch was accepted and, if it already ran, succeeded.
template <typename... P, typename... A>
bool launch(const char *name, const char *file, int line, void (*kernel)(P...), dim3 grid,
            dim3 block, size_t smem, cudaStream_t stream, A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "LAUNCH: wrong number of kernel arguments");
    typedef std::tuple<typename std::decay<P>::type...> Params;
    Params params(static_cast<typename std::decay<P>::type>(std::forward<A>(args))...);
    if (!launch_check(name, file, line, reinterpret_cast<const void *>(kernel), grid, block, smem))
        return false;
    unsigned long failed = launches_failed();
    // The closure owns the arguments (by value): deferred and replayed
    // launches see them as they were at LAUNCH time.
    cudaError_t e = enqueue(stream, name, [=]() {
        struct Ctx {
            void (*k)(P...);
            const Params *p;
        } ctx{kernel, &params};
        launch_impl(
            name, file, line, grid, block, smem,
            [](void *c) {
                Ctx *x = static_cast<Ctx *>(c);
                std::apply(x->k, *x->p); // each thread gets its own copy of the arguments
            },
            &ctx);
    });
    if (e != cudaSuccess) {
        launch_rejected(name, file, line, e);
        return false;
    }
    return launches_failed() == failed;
}

} // namespace cudasim

// cuda_runtime.h declares its C++ overloads taking a kernel pointer only for
// nvcc; the host compiler needs them to pass an emulated kernel.
template <class T> inline cudaError_t cudaFuncSetAttribute(T *func, cudaFuncAttribute attr, int v) {
    return ::cudaFuncSetAttribute(reinterpret_cast<const void *>(func), attr, v);
}
template <class T> inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, T *func) {
    return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void *>(func));
}

// ---------------------------------------------------------------- built-ins
#define threadIdx (static_cast<const uint3 &>(::cudasim::tl_threadIdx))
#define blockIdx (static_cast<const uint3 &>(::cudasim::tl_blockIdx))
#define blockDim (static_cast<const dim3 &>(::cudasim::tl_blockDim))
#define gridDim (static_cast<const dim3 &>(::cudasim::tl_gridDim))
// A constant, not a macro, so host code can still name cudaDeviceProp::warpSize.
constexpr int warpSize = 32;

#define __syncthreads() ::cudasim::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::cudasim::syncwarp(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)
#define __trap() ::cudasim::device_error(__FILE__, __LINE__, "__trap()")

#define __shfl_sync(...) ::cudasim::shfl_idx(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::cudasim::shfl_up(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::cudasim::shfl_down(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::cudasim::shfl_xor(__FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::cudasim::vote("__ballot_sync", __FILE__, __LINE__, mask, (pred))
#define __any_sync(mask, pred)                                                                     \
    (::cudasim::vote("__any_sync", __FILE__, __LINE__, mask, (pred)) != 0u)
#define __all_sync(mask, pred) ::cudasim::vote_all(__FILE__, __LINE__, mask, (pred))
#define __reduce_add_sync(mask, v)                                                                 \
    ::cudasim::reduce_op("__reduce_add_sync", __FILE__, __LINE__, mask, v, 0)
#define __reduce_min_sync(mask, v)                                                                 \
    ::cudasim::reduce_op("__reduce_min_sync", __FILE__, __LINE__, mask, v, 1)
#define __reduce_max_sync(mask, v)                                                                 \
    ::cudasim::reduce_op("__reduce_max_sync", __FILE__, __LINE__, mask, v, 2)
#define __reduce_and_sync(mask, v)                                                                 \
    ::cudasim::reduce("__reduce_and_sync", __FILE__, __LINE__, mask, (uint32_t)(v), 3)
#define __reduce_or_sync(mask, v)                                                                  \
    ::cudasim::reduce("__reduce_or_sync", __FILE__, __LINE__, mask, (uint32_t)(v), 4)
#define __reduce_xor_sync(mask, v)                                                                 \
    ::cudasim::reduce("__reduce_xor_sync", __FILE__, __LINE__, mask, (uint32_t)(v), 5)

namespace cudasim {
template <typename T>
inline T shfl_idx(const char *f, int l, unsigned mask, T var, int src, int width = 32) {
    return shfl("__shfl_sync", f, l, mask, var, 0, src, width);
}
template <typename T>
inline T shfl_up(const char *f, int l, unsigned mask, T var, unsigned delta, int width = 32) {
    return shfl("__shfl_up_sync", f, l, mask, var, 1, (int)delta, width);
}
template <typename T>
inline T shfl_down(const char *f, int l, unsigned mask, T var, unsigned delta, int width = 32) {
    return shfl("__shfl_down_sync", f, l, mask, var, 2, (int)delta, width);
}
template <typename T>
inline T shfl_xor(const char *f, int l, unsigned mask, T var, int lanemask, int width = 32) {
    return shfl("__shfl_xor_sync", f, l, mask, var, 3, lanemask, width);
}
inline bool vote_all(const char *f, int l, unsigned mask, int pred) {
    return (vote("__all_sync", f, l, mask, pred) & mask) == mask;
}
inline int reduce_op(const char *what, const char *f, int l, unsigned mask, int v, int op) {
    return (int)reduce(what, f, l, mask, (uint32_t)v, op | 8);
}
inline unsigned reduce_op(const char *what, const char *f, int l, unsigned mask, unsigned v,
                          int op) {
    return reduce(what, f, l, mask, v, op);
}
} // namespace cudasim

// No thread divergence is modelled: the active mask is the warp's existing lanes.
// Integer dot products of packed bytes (sm_61+): 4 signed/unsigned byte
// products summed into c, as dp4a.s32.s32 / .u32.u32.
inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; i++)
        c += (int)(int8_t)(a >> 8 * i) * (int)(int8_t)(b >> 8 * i);
    return c;
}
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
    for (int i = 0; i < 4; i++)
        c += ((a >> 8 * i) & 0xffu) * ((b >> 8 * i) & 0xffu);
    return c;
}
inline unsigned __activemask() { return ::cudasim::warp_exist_mask(); }

// Fibers switch only at barriers and warp exchanges, so a read-modify-write is
// atomic with respect to the other threads of the block; the __atomic builtins
// keep it so should blocks ever run on several OS threads.
template <typename T> inline T cudasim_atomic_rmw_float(T *p, T v, int op) {
    T old = *p, nw;
    do {
        nw = op == 0 ? old + v : (op == 1 ? (v < old ? v : old) : (v > old ? v : old));
    } while (!__atomic_compare_exchange(p, &old, &nw, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline float atomicAdd(float *p, float v) { return cudasim_atomic_rmw_float(p, v, 0); }
inline double atomicAdd(double *p, double v) { return cudasim_atomic_rmw_float(p, v, 0); }
inline int atomicSub(int *p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned *p, unsigned v) {
    return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}
inline int atomicMin(int *p, int v) { return cudasim_atomic_rmw_float(p, v, 1); }
inline unsigned atomicMin(unsigned *p, unsigned v) { return cudasim_atomic_rmw_float(p, v, 1); }
inline int atomicMax(int *p, int v) { return cudasim_atomic_rmw_float(p, v, 2); }
inline unsigned atomicMax(unsigned *p, unsigned v) { return cudasim_atomic_rmw_float(p, v, 2); }
inline int atomicExch(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned *p, unsigned v) {
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
inline float atomicExch(float *p, float v) {
    float r;
    __atomic_exchange(p, &v, &r, __ATOMIC_RELAXED);
    return r;
}
inline int atomicCAS(int *p, int cmp, int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
inline unsigned atomicCAS(unsigned *p, unsigned cmp, unsigned v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long cmp,
                                    unsigned long long v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
inline int atomicAnd(int *p, int v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAnd(unsigned *p, unsigned v) {
    return __atomic_fetch_and(p, v, __ATOMIC_RELAXED);
}
inline int atomicOr(int *p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicOr(unsigned *p, unsigned v) {
    return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
}
inline int atomicXor(int *p, int v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicXor(unsigned *p, unsigned v) {
    return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED);
}

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
template <typename T> inline T __ldg(const T *p) { return *p; }

// ---------------------------------------------------------------- math / bits
// Plain libm: no hardware rounding or fast-math approximation error is modelled.
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline void __sincosf(float x, float *s, float *c) {
    *s = sinf(x);
    *c = cosf(x);
}
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) {
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f));
}
inline float __int_as_float(int x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}
inline int __float_as_int(float x) {
    int i;
    memcpy(&i, &x, 4);
    return i;
}
inline float __uint_as_float(unsigned x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}
inline unsigned __float_as_uint(float x) {
    unsigned i;
    memcpy(&i, &x, 4);
    return i;
}
inline double __longlong_as_double(long long x) {
    double d;
    memcpy(&d, &x, 8);
    return d;
}
inline long long __double_as_longlong(double x) {
    long long i;
    memcpy(&i, &x, 8);
    return i;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++)
        r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
inline void __nanosleep(unsigned) {}
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }

// ---------------------------------------------------------------- launch & shared memory macros
#define LAUNCH(kernel, grid, block, smem, stream, ...)                                             \
    ::cudasim::launch(#kernel, __FILE__, __LINE__, kernel, grid, block, smem,                      \
                      stream __VA_OPT__(, ) __VA_ARGS__)
// Dynamic shared memory as a T* named `name` (poisoned with 0xFF at block start).
#define SHARED_DYN(T, name) T *name = reinterpret_cast<T *>(::cudasim::dyn_smem())
// Poison a static __shared__ object at block start (no-op under nvcc).
#define POISON_SHARED(var) ::cudasim::poison_shared((void *)&(var), sizeof(var))

#endif // CUDASIM_H
