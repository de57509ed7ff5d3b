// test_ops_cudart.cc: the cudart stand-in (tests/cudasim/cudart_sim.cc) and
// asynchronous execution in the emulator: devices, errors, memory, streams,
// events, graphs by stream capture, deferred mode, device-memory protection
// and the dynamic shared-memory limit.  The calls are the real CUDA runtime
// API (same names and prototypes as <cuda_runtime_api.h>).
// Prints one line per test and ends with "N passed, N failed".
//
// The kernels here are exact (a*x+b with a, b, x small integers or halves,
// and a block sum of integers in f32, all exactly representable), so results
// are compared bitwise with the host's own arithmetic: tolerance 0.  The
// kernels that go through a graph also run under all 4 policies x 3 seeds
// (all_policies_same), on ragged sizes (n = 1, 37, 1000, 4099).
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "common.cuh"
#include "util.cuh"

#include "test_harness.h"
#include "ops_test_util.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        EXPECT(e_ == cudaSuccess, "line %d: %s", __LINE__, cudaGetErrorName(e_));                  \
    } while (0)
#define CK_IS(call, want)                                                                          \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        EXPECT(e_ == (want), "line %d: got %s, want %s", __LINE__, cudaGetErrorName(e_),           \
               cudaGetErrorName(want));                                                            \
    } while (0)

// ------------------------------------------------------------ kernels
__global__ void axpb_kernel(float *y, const float *x, float a, float b, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}

// out[block] = sum of x over the block's 256 elements (through shared memory).
__global__ void block_sum_kernel(float *out, const float *x, int n) {
    __shared__ float scratch[32];
    POISON_SHARED(scratch);
    int i = blockIdx.x * 256 + threadIdx.x;
    float s = block_sum<8>(i < n ? x[i] : 0.0f, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// Uses `bytes` of dynamic shared memory; y[0] = number of floats it saw.
__global__ void smem_kernel(float *y, int nfloats) {
    SHARED_DYN(float, s);
    s[threadIdx.x] = 1.0f;
    s[nfloats - 1 - threadIdx.x] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0) y[0] = (float)nfloats;
}

__global__ void trap_kernel(int n) {
    if ((int)threadIdx.x == n) __trap();
}

static unsigned grid_for(int n) { return (unsigned)((n + 255) / 256); }

static void axpb(float *y, const float *x, float a, float b, int n, cudaStream_t s) {
    if (n > 0) LAUNCH(axpb_kernel, grid_for(n), 256, 0, s, y, x, a, b, n);
}

// ------------------------------------------------------------ devices
static bool t_devices() {
    int n = -1, d = -1;
    CK(cudaGetDeviceCount(&n));
    EXPECT(n == 1, "count %d", n);
    CK(cudaSetDevice(0));
    CK(cudaGetDevice(&d));
    EXPECT(d == 0, "%d", d);
    CK_IS(cudaSetDevice(1), cudaErrorInvalidDevice);
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    EXPECT(!strcmp(p.name, "cudasim") && p.major == 9 && p.minor == 0 &&
               p.multiProcessorCount == 132 && p.warpSize == 32 &&
               p.sharedMemPerBlock == 48 * 1024 && p.sharedMemPerBlockOptin == 227 * 1024 &&
               p.totalGlobalMem == (80ull << 30) && p.maxThreadsPerBlock == 1024,
           "%s %d.%d", p.name, p.major, p.minor);
    CK_IS(cudaGetDeviceProperties(&p, 1), cudaErrorInvalidDevice);
    CK_IS(cudaGetDeviceProperties(nullptr, 0), cudaErrorInvalidValue);
    int v = 0;
    CK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0));
    EXPECT(v == 132, "%d", v);
    CK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    EXPECT(v == 227 * 1024, "%d", v);
    CK(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0));
    EXPECT(v == 9, "%d", v);
    CK_IS(cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, 3), cudaErrorInvalidDevice);
    int dv = 0, rv = 0;
    CK(cudaDriverGetVersion(&dv));
    CK(cudaRuntimeGetVersion(&rv));
    EXPECT(dv == CUDART_VERSION && rv == CUDART_VERSION, "%d %d", dv, rv);
    size_t fr = 0, tot = 0;
    CK(cudaMemGetInfo(&fr, &tot));
    EXPECT(tot == (80ull << 30) && fr <= tot, "%zu %zu", fr, tot);
    CK(cudaDeviceSynchronize());
    (void)cudaGetLastError();
    return true;
}

static bool t_no_device() {
    setenv("CUDASIM_NO_DEVICE", "1", 1);
    int n = 7;
    cudaError_t e = cudaGetDeviceCount(&n);
    void *p = (void *)1;
    cudaError_t e2 = cudaMalloc(&p, 16);
    cudaError_t e3 = cudaSetDevice(0);
    unsetenv("CUDASIM_NO_DEVICE");
    EXPECT(e == cudaErrorNoDevice && n == 0, "%s %d", cudaGetErrorName(e), n);
    EXPECT(e2 == cudaErrorNoDevice && e3 == cudaErrorNoDevice, "%s %s", cudaGetErrorName(e2),
           cudaGetErrorName(e3));
    EXPECT(cudaGetLastError() == cudaErrorNoDevice, "last error");
    CK(cudaGetDeviceCount(&n));
    EXPECT(n == 1, "%d", n);
    return true;
}

// ------------------------------------------------------------ errors
static bool t_errors() {
    (void)cudaGetLastError();
    EXPECT(cudaPeekAtLastError() == cudaSuccess, "clean");
    CK_IS(cudaMalloc(nullptr, 4), cudaErrorInvalidValue);
    int n;
    CK(cudaGetDeviceCount(&n)); // a success does not clear it
    EXPECT(cudaPeekAtLastError() == cudaErrorInvalidValue, "peek");
    EXPECT(cudaPeekAtLastError() == cudaErrorInvalidValue, "peek does not reset");
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "get");
    EXPECT(cudaGetLastError() == cudaSuccess, "get resets");
    EXPECT(!strcmp(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue"), "name");
    EXPECT(
        !strcmp(cudaGetErrorName(cudaErrorStreamCaptureImplicit), "cudaErrorStreamCaptureImplicit"),
        "name");
    EXPECT(!strcmp(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument"), "string");
    EXPECT(!strcmp(cudaGetErrorString(cudaSuccess), "no error"), "string");
    EXPECT(!strcmp(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory"), "string");
    EXPECT(!strcmp(cudaGetErrorName((cudaError_t)12345), "unrecognized error code"), "unknown");
    return true;
}

// ------------------------------------------------------------ memory
static bool t_memory() {
    size_t free0, tot;
    CK(cudaMemGetInfo(&free0, &tot));
    float *d = nullptr, *d2 = nullptr;
    CK(cudaMalloc((void **)&d, 1001 * sizeof(float)));
    CK(cudaMalloc((void **)&d2, 1001 * sizeof(float)));
    EXPECT(((uintptr_t)d & 255) == 0 && ((uintptr_t)d2 & 255) == 0, "alignment %p %p", (void *)d,
           (void *)d2);
    size_t free1;
    CK(cudaMemGetInfo(&free1, &tot));
    EXPECT(free0 - free1 == 2 * 1001 * sizeof(float), "%zu", free0 - free1);
    std::vector<float> h(1001), back(1001, 0.0f);
    for (int i = 0; i < 1001; i++)
        h[i] = (float)i;
    CK(cudaMemcpy(back.data(), d, 4, cudaMemcpyDeviceToHost));
    EXPECT(back[0] != back[0], "fresh device memory reads as NaN (0xFF), got %g", back[0]);
    CK(cudaMemcpy(d, h.data(), 1001 * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d2, d, 1001 * sizeof(float), cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(back.data(), d2, 1001 * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT(back == h, "round trip");
    // cudaMemcpyDefault infers the direction; host to host works too.
    CK(cudaMemset(d2, 0, 1001 * sizeof(float)));
    CK(cudaMemcpy(d2 + 1, h.data(), 10 * sizeof(float), cudaMemcpyDefault));
    CK(cudaMemcpy(back.data(), d2, 1001 * sizeof(float), cudaMemcpyDefault));
    EXPECT(back[0] == 0 && back[1] == 0 && back[10] == 9 && back[11] == 0 && back[1000] == 0,
           "default/memset");
    std::vector<float> hh(4, 0.0f);
    CK(cudaMemcpy(hh.data(), h.data() + 5, 4 * sizeof(float), cudaMemcpyHostToHost));
    EXPECT(hh[0] == 5 && hh[3] == 8, "h2h");
    // Zero-byte copies are no-ops, even with null pointers.
    CK(cudaMemcpy(nullptr, nullptr, 0, cudaMemcpyHostToDevice));
    // Argument errors.
    CK_IS(cudaMemcpy(d, h.data(), 1002 * sizeof(float), cudaMemcpyHostToDevice),
          cudaErrorInvalidValue); // past the allocation's end
    CK_IS(cudaMemcpy(h.data(), d, 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue); // swapped
    CK_IS(cudaMemcpy(d, h.data(), 4, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
    CK_IS(cudaMemcpy(back.data(), h.data(), 4, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    CK_IS(cudaMemcpy(d, h.data(), 4, (cudaMemcpyKind)9), cudaErrorInvalidMemcpyDirection);
    CK_IS(cudaMemcpy(nullptr, h.data(), 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    CK_IS(cudaMemset(h.data(), 0, 4), cudaErrorInvalidValue); // host memory
    CK_IS(cudaMemset(d + 1000, 0, 8), cudaErrorInvalidValue); // past the end
    CK_IS(cudaMalloc(nullptr, 16), cudaErrorInvalidValue);
    void *big = (void *)1;
    CK_IS(cudaMalloc(&big, 81ull << 30), cudaErrorMemoryAllocation);
    void *z = (void *)1;
    CK(cudaMalloc(&z, 0));
    EXPECT(z == nullptr, "zero-size malloc gives NULL");
    CK(cudaFree(nullptr));
    CK_IS(cudaFree(h.data()), cudaErrorInvalidValue); // not a device allocation
    CK_IS(cudaFree(d + 1), cudaErrorInvalidValue);    // not its start
    // Pinned host memory.
    float *ph = nullptr, *ph2 = nullptr;
    CK(cudaMallocHost((void **)&ph, 64 * sizeof(float)));
    CK(cudaHostAlloc((void **)&ph2, 64 * sizeof(float), cudaHostAllocDefault));
    CK_IS(cudaHostAlloc((void **)&ph2, 64, 0x100), cudaErrorInvalidValue);
    CK_IS(cudaFree(ph), cudaErrorInvalidValue);    // pinned is not device memory
    CK_IS(cudaFreeHost(d), cudaErrorInvalidValue); // and the other way round
    for (int i = 0; i < 64; i++)
        ph[i] = (float)(2 * i);
    CK(cudaMemcpy(d, ph, 64 * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(ph2, d, 64 * sizeof(float), cudaMemcpyDefault));
    EXPECT(ph2[63] == 126.0f, "%g", ph2[63]);
    cudaPointerAttributes pa;
    CK(cudaPointerGetAttributes(&pa, d + 3));
    EXPECT(pa.type == cudaMemoryTypeDevice, "%d", (int)pa.type);
    CK(cudaPointerGetAttributes(&pa, ph));
    EXPECT(pa.type == cudaMemoryTypeHost, "%d", (int)pa.type);
    CK(cudaPointerGetAttributes(&pa, h.data()));
    EXPECT(pa.type == cudaMemoryTypeUnregistered, "%d", (int)pa.type);
    CK(cudaFreeHost(ph));
    CK(cudaFreeHost(ph2));
    CK(cudaFree(d));
    CK_IS(cudaFree(d), cudaErrorInvalidValue); // double free
    CK(cudaFree(d2));
    CK(cudaMemGetInfo(&free1, &tot));
    EXPECT(free1 == free0, "all freed");
    (void)cudaGetLastError();
    return true;
}

// ------------------------------------------------------------ streams and events
static bool t_streams_events() {
    cudaStream_t s, nb;
    CK(cudaStreamCreate(&s));
    CK(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    unsigned fl = 9;
    CK(cudaStreamGetFlags(nb, &fl));
    EXPECT(fl == cudaStreamNonBlocking, "%u", fl);
    const int n = 1000;
    float *x, *y;
    CK(cudaMalloc((void **)&x, n * sizeof(float)));
    CK(cudaMalloc((void **)&y, n * sizeof(float)));
    std::vector<float> h(n), back(n);
    for (int i = 0; i < n; i++)
        h[i] = (float)(i % 97);
    CK(cudaMemcpyAsync(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice, s));
    cudaEvent_t e0, e1, et;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaEventCreateWithFlags(&et, cudaEventDisableTiming));
    CK_IS(cudaEventCreateWithFlags(&et, cudaEventInterprocess), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    CK(cudaEventRecord(e0, s));
    axpb(y, x, 2.0f, 1.0f, n, s);
    CK(cudaGetLastError());
    CK(cudaEventRecord(e1, s));
    CK(cudaEventRecord(et, s));
    CK(cudaStreamWaitEvent(nb, e1, 0));
    CK(cudaMemsetAsync(x, 0, n * sizeof(float), nb));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventQuery(e1));
    float ms = -1;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    EXPECT(ms >= 0, "%g", ms);
    CK_IS(cudaEventElapsedTime(&ms, e0, et), cudaErrorInvalidResourceHandle);
    CK(cudaStreamSynchronize(s));
    CK(cudaStreamSynchronize(nb));
    CK(cudaStreamQuery(s));
    CK(cudaMemcpyAsync(back.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        EXPECT(back[i] == 2.0f * h[i] + 1.0f, "y[%d] = %g", i, back[i]);
    CK(cudaMemcpy(back.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT(back[5] == 0.0f, "memset on the other stream");
    // Handles: the special streams work, destroyed ones do not.
    CK(cudaStreamSynchronize(cudaStreamLegacy));
    CK(cudaStreamSynchronize(cudaStreamPerThread));
    CK_IS(cudaStreamDestroy(nullptr), cudaErrorInvalidResourceHandle);
    CK(cudaStreamDestroy(nb));
    CK_IS(cudaStreamSynchronize(nb), cudaErrorInvalidResourceHandle);
    CK_IS(cudaMemsetAsync(x, 0, 4, nb), cudaErrorInvalidResourceHandle);
    // A launch on a destroyed stream is rejected (and reported like a failed launch).
    axpb(y, x, 1.0f, 0.0f, 4, nb);
    EXPECT(cudaGetLastError() == cudaErrorInvalidResourceHandle, "launch on a dead stream");
    std::string err = cudasim::take_error();
    EXPECT(err.find("rejected by the stream") != std::string::npos, "%s", err.c_str());
    CK(cudaEventDestroy(e0));
    CK_IS(cudaEventDestroy(e0), cudaErrorInvalidResourceHandle);
    CK(cudaEventDestroy(e1));
    CK(cudaEventDestroy(et));
    CK(cudaStreamDestroy(s));
    CK(cudaFree(x));
    CK(cudaFree(y));
    (void)cudaGetLastError();
    return true;
}

// ------------------------------------------------------------ the shared-memory limit
static bool t_smem_limit() {
    float *y;
    CK(cudaMalloc((void **)&y, sizeof(float)));
    const int small = 48 * 1024 / 4, big = 100 * 1024 / 4, huge = 228 * 1024 / 4;
    (void)cudaGetLastError();
    LAUNCH(smem_kernel, 1, 64, small * 4, nullptr, y, small); // 48 KiB: no opt-in needed
    EXPECT(!cudasim::error_pending(), "%s", cudasim::take_error().c_str());
    CK(cudaGetLastError());
    EXPECT(!cudasim::error_pending(), "%s", cudasim::take_error().c_str());
    LAUNCH(smem_kernel, 1, 64, big * 4, nullptr, y, big); // 100 KiB without the attribute
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "100 KiB without opt-in accepted");
    std::string e = cudasim::take_error();
    EXPECT(e.find("cudaFuncSetAttribute") != std::string::npos, "%s", e.c_str());
    EXPECT(slim_launch_result() == 0, "take_error cleared it");
    CK_IS(
        cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 * 1024),
        cudaErrorInvalidValue);
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "sets the last error");
    CK(cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, big * 4));
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, smem_kernel));
    EXPECT(fa.maxDynamicSharedSizeBytes == big * 4, "%d", fa.maxDynamicSharedSizeBytes);
    LAUNCH(smem_kernel, 1, 64, big * 4, nullptr, y, big);
    CK(cudaGetLastError());
    EXPECT(slim_launch_result() == 0, "%s", cudasim::take_error().c_str());
    float v = 0;
    CK(cudaMemcpy(&v, y, 4, cudaMemcpyDeviceToHost));
    EXPECT(v == (float)big, "%g", v);
    LAUNCH(smem_kernel, 1, 64, big * 4 + 4, nullptr, y, big + 1); // above the raised limit
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "above the raised limit accepted");
    EXPECT(slim_launch_result() == (int)cudaErrorLaunchFailure, "pending for the launcher");
    (void)cudasim::take_error();
    LAUNCH(smem_kernel, 1, 64, huge * 4, nullptr, y, huge); // > 227 KiB: never
    EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "228 KiB accepted");
    e = cudasim::take_error();
    EXPECT(e.find("exceeds 227 KiB") != std::string::npos, "%s", e.c_str());
    // A bad block is cudaErrorInvalidConfiguration, as with <<<>>>.
    LAUNCH(axpb_kernel, 1, 2048, 0, nullptr, y, y, 1.0f, 0.0f, 1);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "bad block");
    (void)cudasim::take_error();
    CK(cudaFree(y));
    return true;
}

// ------------------------------------------------------------ graphs
static const int GN[] = {1, 37, 1000, 4099};

// Captures memset(y) + axpb(y <- a x + b) + block sums of y + a D2D copy of the
// sums, then replays it with x changed in between; checks every replay bitwise.
static bool t_graph_replay() {
    for (int n : GN) {
        int nb = (int)grid_for(n);
        float *x, *y, *sums, *sums2;
        CK(cudaMalloc((void **)&x, n * sizeof(float)));
        CK(cudaMalloc((void **)&y, n * sizeof(float)));
        CK(cudaMalloc((void **)&sums, nb * sizeof(float)));
        CK(cudaMalloc((void **)&sums2, nb * sizeof(float)));
        cudaStream_t s;
        CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        cudaStreamCaptureStatus st;
        CK(cudaStreamIsCapturing(s, &st));
        EXPECT(st == cudaStreamCaptureStatusActive, "%d", (int)st);
        CK(cudaMemsetAsync(y, 0, n * sizeof(float), s));
        axpb(y, x, 3.0f, 0.5f, n, s);
        LAUNCH(block_sum_kernel, nb, 256, 0, s, sums, y, n);
        CK(cudaMemcpyAsync(sums2, sums, nb * sizeof(float), cudaMemcpyDeviceToDevice, s));
        cudaGraph_t g;
        CK(cudaStreamEndCapture(s, &g));
        CK(cudaStreamIsCapturing(s, &st));
        EXPECT(st == cudaStreamCaptureStatusNone, "%d", (int)st);
        size_t nodes = 0;
        CK(cudaGraphGetNodes(g, nullptr, &nodes));
        EXPECT(nodes == 4, "%zu nodes", nodes);
        cudaGraphExec_t ge;
        CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphDestroy(g)); // the exec keeps its own copy
        // Nothing ran during the capture: y is still poison.
        std::vector<float> hy(n);
        CK(cudaMemcpy(hy.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
        EXPECT(hy[0] != hy[0], "capture ran work");
        for (int rep = 0; rep < 3; rep++) {
            std::vector<float> hx(n);
            for (int i = 0; i < n; i++)
                hx[i] = (float)((i * 7 + rep * 13) % 64 - 32); // x changes between replays
            CK(cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            std::vector<float> out;
            char what[64];
            snprintf(what, sizeof what, "n=%d replay %d", n, rep);
            bool ok = all_policies_same(what, out, [&](std::vector<float> &o) {
                o.assign(n + nb, 0.0f);
                if (cudaMemset(sums2, 0xff, nb * sizeof(float)) || cudaGraphLaunch(ge, s) ||
                    cudaStreamSynchronize(s))
                    return; // o stays zero: the comparisons below fail
                cudaMemcpy(o.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost);
                cudaMemcpy(o.data() + n, sums2, nb * sizeof(float), cudaMemcpyDeviceToHost);
            });
            EXPECT(ok, "%s: %s", what, g_why.c_str());
            for (int i = 0; i < n; i++)
                EXPECT(out[i] == 3.0f * hx[i] + 0.5f, "%s: y[%d] = %g", what, i, out[i]);
            for (int b = 0; b < nb; b++) {
                float ref = 0;
                for (int i = b * 256; i < n && i < b * 256 + 256; i++)
                    ref += 3.0f * hx[i] + 0.5f; // integers and halves: exact in any order
                EXPECT(out[n + b] == ref, "%s: sum[%d] = %g, want %g", what, b, out[n + b], ref);
            }
        }
        CK(cudaGraphExecDestroy(ge));
        CK_IS(cudaGraphExecDestroy(ge), cudaErrorInvalidResourceHandle);
        CK(cudaStreamDestroy(s));
        CK(cudaFree(x));
        CK(cudaFree(y));
        CK(cudaFree(sums));
        CK(cudaFree(sums2));
    }
    return true;
}

static bool t_capture_misuse() {
    float *x, *ph;
    CK(cudaMalloc((void **)&x, 64 * sizeof(float)));
    CK(cudaMallocHost((void **)&ph, 64 * sizeof(float)));
    std::vector<float> h(64, 1.0f);
    cudaStream_t s, nb;
    CK(cudaStreamCreate(&s));
    CK(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    cudaGraph_t g = (cudaGraph_t)1;
    cudaStreamCaptureStatus st;

    // Synchronising a capturing stream invalidates the capture.
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeGlobal));
    CK_IS(cudaStreamBeginCapture(nb, cudaStreamCaptureModeGlobal), cudaErrorIllegalState);
    axpb(x, x, 1.0f, 1.0f, 64, nb);
    CK_IS(cudaStreamSynchronize(nb), cudaErrorStreamCaptureUnsupported);
    CK(cudaStreamIsCapturing(nb, &st));
    EXPECT(st == cudaStreamCaptureStatusInvalidated, "%d", (int)st);
    CK_IS(cudaMemsetAsync(x, 0, 4, nb), cudaErrorStreamCaptureInvalidated);
    CK_IS(cudaStreamEndCapture(nb, &g), cudaErrorStreamCaptureInvalidated);
    EXPECT(g == nullptr, "graph of an invalidated capture");
    CK_IS(cudaStreamEndCapture(nb, &g), cudaErrorIllegalState); // not capturing

    // Synchronous calls during a global-mode capture: refused, capture invalidated.
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeGlobal));
    CK_IS(cudaMemcpy(x, h.data(), 16, cudaMemcpyHostToDevice), cudaErrorStreamCaptureUnsupported);
    void *p = nullptr;
    CK_IS(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
    CK_IS(cudaStreamEndCapture(nb, &g), cudaErrorStreamCaptureInvalidated);
    // ... but allowed in relaxed mode.
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeRelaxed));
    CK(cudaMalloc(&p, 16));
    CK(cudaStreamEndCapture(nb, &g));
    CK(cudaGraphDestroy(g));
    CK(cudaFree(p));
    CK_IS(cudaGraphDestroy(g), cudaErrorInvalidValue);

    // Pageable host memory cannot be captured; pinned can.
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeThreadLocal));
    CK(cudaMemcpyAsync(x, ph, 16, cudaMemcpyHostToDevice, nb));
    CK_IS(cudaMemcpyAsync(x, h.data(), 16, cudaMemcpyHostToDevice, nb),
          cudaErrorStreamCaptureUnsupported);
    CK_IS(cudaStreamEndCapture(nb, &g), cudaErrorStreamCaptureInvalidated);

    // The legacy stream cannot capture, nor wait on a capturing blocking stream.
    CK_IS(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal),
          cudaErrorStreamCaptureUnsupported);
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    CK_IS(cudaStreamIsCapturing(nullptr, &st), cudaErrorStreamCaptureImplicit);
    axpb(x, x, 1.0f, 1.0f, 64, nullptr); // legacy-stream launch
    EXPECT(cudaGetLastError() == cudaErrorStreamCaptureImplicit, "legacy launch during capture");
    std::string e = cudasim::take_error();
    EXPECT(!e.empty(), "launch rejection not reported");
    CK_IS(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    // A non-blocking stream's capture does not involve the legacy stream.
    CK(cudaStreamBeginCapture(nb, cudaStreamCaptureModeRelaxed));
    axpb(x, x, 1.0f, 1.0f, 64, nullptr);
    CK(cudaGetLastError());
    CK(cudaStreamEndCapture(nb, &g));
    CK(cudaGraphDestroy(g));

    // Fork/join: a second stream joins the capture through an event.
    float hx[64];
    for (int i = 0; i < 64; i++)
        hx[i] = (float)i;
    CK(cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice));
    cudaEvent_t fork, join;
    CK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    axpb(x, x, 2.0f, 0.0f, 64, s);
    CK(cudaEventRecord(fork, s));
    CK_IS(cudaEventSynchronize(fork), cudaErrorCapturedEvent);
    CK(cudaStreamWaitEvent(nb, fork, 0));
    CK(cudaStreamIsCapturing(nb, &st));
    EXPECT(st == cudaStreamCaptureStatusActive, "joined stream not capturing");
    axpb(x + 32, x + 32, 1.0f, 1.0f, 32, nb);
    CK(cudaEventRecord(join, nb));
    CK(cudaStreamWaitEvent(s, join, 0));
    CK_IS(cudaStreamEndCapture(nb, &g), cudaErrorStreamCaptureUnmatched);
    CK_IS(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    // Again, ended in the origin stream.
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    axpb(x, x, 2.0f, 0.0f, 64, s);
    CK(cudaEventRecord(fork, s));
    CK(cudaStreamWaitEvent(nb, fork, 0));
    axpb(x + 32, x + 32, 1.0f, 1.0f, 32, nb);
    CK(cudaEventRecord(join, nb));
    CK(cudaStreamWaitEvent(s, join, 0));
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaStreamIsCapturing(nb, &st));
    EXPECT(st == cudaStreamCaptureStatusNone, "forked stream still capturing");
    cudaGraphExec_t ge;
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaGraphLaunch(ge, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaMemcpy(hx, x, sizeof hx, cudaMemcpyDeviceToHost));
    EXPECT(hx[1] == 2.0f && hx[40] == 81.0f, "%g %g", hx[1], hx[40]);
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    CK(cudaEventDestroy(fork));
    CK(cudaEventDestroy(join));

    CK(cudaStreamDestroy(s));
    CK(cudaStreamDestroy(nb));
    CK(cudaFreeHost(ph));
    CK(cudaFree(x));
    (void)cudaGetLastError();
    return true;
}

// ------------------------------------------------------------ deferred mode
static bool t_deferred() {
    const int n = 1000;
    float *x, *y, *ph;
    CK(cudaMalloc((void **)&x, n * sizeof(float)));
    CK(cudaMalloc((void **)&y, n * sizeof(float)));
    CK(cudaMallocHost((void **)&ph, n * sizeof(float)));
    std::vector<float> h(n);
    for (int i = 0; i < n; i++)
        h[i] = (float)(i % 50);
    CK(cudaMemcpy(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemset(y, 0, n * sizeof(float)));
    for (int i = 0; i < n; i++)
        ph[i] = -1.0f;
    cudaStream_t a, b;
    CK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));

    cudasim::set_deferred(true);
    axpb(y, x, 2.0f, 1.0f, n, a);
    CK(cudaMemcpyAsync(ph, y, n * sizeof(float), cudaMemcpyDeviceToHost, a));
    // A read before the sync sees the old data (host reads of device memory
    // are fine here: protection is off).
    EXPECT(ph[3] == -1.0f && y[3] == 0.0f, "ran before sync: %g %g", ph[3], y[3]);
    // Other streams' syncs do not run it.
    CK(cudaStreamSynchronize(b));
    EXPECT(ph[3] == -1.0f, "ran at another stream's sync");
    CK_IS(cudaStreamQuery(a), cudaErrorNotReady); // not ready; the query lets it finish
    CK(cudaStreamQuery(a));
    EXPECT(ph[3] == 7.0f, "after the query: %g", ph[3]);

    // Event dependencies across streams: b waits for a's kernel.
    cudaEvent_t ev;
    CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    axpb(y, x, 3.0f, 0.0f, n, a);
    CK(cudaEventRecord(ev, a));
    CK(cudaStreamWaitEvent(b, ev, 0));
    CK(cudaMemcpyAsync(ph, y, n * sizeof(float), cudaMemcpyDeviceToHost, b));
    EXPECT(ph[3] == 7.0f && cudaEventQuery(ev) == cudaErrorNotReady, "ran early");
    CK(cudaStreamSynchronize(b));
    EXPECT(ph[3] == 9.0f, "b's copy did not wait for a: %g", ph[3]);
    CK(cudaEventQuery(ev));

    // A synchronous cudaMemcpy waits for the legacy stream, not for
    // non-blocking streams.
    axpb(y, x, 4.0f, 0.0f, n, a);
    std::vector<float> back(n, -5.0f);
    CK(cudaMemcpy(back.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT(back[3] == 9.0f, "non-blocking stream ran at a legacy sync: %g", back[3]);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(back.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT(back[3] == 12.0f, "%g", back[3]);

    // Blocking streams and the legacy stream: legacy work waits for earlier
    // blocking-stream work, and later blocking-stream work waits for it.
    cudaStream_t bl;
    CK(cudaStreamCreate(&bl));
    axpb(y, x, 5.0f, 0.0f, n, bl);
    CK(cudaMemsetAsync(x, 0, n * sizeof(float), nullptr)); // after bl's kernel
    CK(cudaStreamSynchronize(nullptr));
    EXPECT(y[3] == 15.0f && x[3] == 0.0f, "legacy barrier: %g %g", y[3], x[3]);
    // Pageable H2D copies read the source when called (staged).
    h[3] = 100.0f;
    CK(cudaMemcpyAsync(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice, a));
    h[3] = -100.0f;
    CK(cudaStreamSynchronize(a));
    EXPECT(x[3] == 100.0f, "pageable source read late: %g", x[3]);
    // D2H to pageable memory returns when done.
    axpb(y, x, 1.0f, 1.0f, n, a);
    CK(cudaMemcpyAsync(back.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost, a));
    EXPECT(back[3] == 101.0f, "%g", back[3]);

    // A failing launch is reported at the synchronisation.
    LAUNCH(trap_kernel, 1, 32, 0, a, 5);
    EXPECT(!cudasim::error_pending(), "ran early");
    CK_IS(cudaStreamSynchronize(a), cudaErrorLaunchFailure);
    EXPECT(cudasim::error_pending(), "failure not recorded");
    (void)cudasim::take_error();
    (void)cudaGetLastError();

    // Graph launches queue too; switching deferred mode off runs everything.
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(a, cudaStreamCaptureModeThreadLocal));
    axpb(y, x, 0.0f, 42.0f, n, a);
    CK(cudaStreamEndCapture(a, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaGraphLaunch(ge, a));
    EXPECT(y[3] == 101.0f, "graph ran early: %g", y[3]);
    cudasim::set_deferred(false);
    EXPECT(y[3] == 42.0f, "set_deferred(false) did not flush: %g", y[3]);

    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    CK(cudaEventDestroy(ev));
    CK(cudaStreamDestroy(a));
    CK(cudaStreamDestroy(b));
    CK(cudaStreamDestroy(bl));
    CK(cudaFreeHost(ph));
    CK(cudaFree(x));
    CK(cudaFree(y));
    return true;
}

// ------------------------------------------------------------ protection
// Runs fn in a forked child; true when the child died (signal, or a
// sanitizer's report exit) instead of exiting 0.
static bool child_faults(const std::function<void()> &fn) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *devnull = fopen("/dev/null", "w"); // the child's fault report is expected
        if (devnull) dup2(fileno(devnull), 2);
        fn();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool t_protect() {
    cudasim::set_protect_device(true);
    const int n = 37;
    float *x, *y, *ph;
    cudaError_t e1 = cudaMalloc((void **)&x, n * sizeof(float));
    cudaError_t e2 = cudaMalloc((void **)&y, n * sizeof(float));
    cudasim::set_protect_device(false);
    CK(e1);
    CK(e2);
    CK(cudaMallocHost((void **)&ph, n * sizeof(float)));
    std::vector<float> h(n);
    for (int i = 0; i < n; i++)
        h[i] = (float)i;
    // Copies and kernels reach protected memory.
    CK(cudaMemcpy(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    axpb(y, x, 2.0f, 0.0f, n, nullptr);
    CK(cudaGetLastError());
    CK(cudaMemcpy(ph, y, n * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT(ph[36] == 72.0f, "%g", ph[36]);
    // The host does not.
    volatile float *vx = x, *vph = ph;
    EXPECT(child_faults([&]() { (void)vx[1]; }), "host read of device memory did not fault");
    EXPECT(child_faults([&]() { vx[1] = 0.0f; }), "host write of device memory did not fault");
    EXPECT(!child_faults([&]() { (void)vph[1]; }), "pinned host memory faulted");
    CK(cudaFree(x));
    CK(cudaFree(y));
    CK(cudaFreeHost(ph));
    return true;
}

int main() {
    // Children of the protection test fault on purpose; no core files.
    signal(SIGPIPE, SIG_IGN);
    (void)&fill; // ops_test_util.h's; the data here is exact integers
    // The tests switch the modes themselves (the deferred test reads device
    // memory from the host on purpose).
    cudasim::set_deferred(false);
    cudasim::set_protect_device(false);
    run("devices: count, properties, attributes, versions, memory info", t_devices);
    run("CUDASIM_NO_DEVICE=1: cudaErrorNoDevice, count 0", t_no_device);
    run("errors: last error get/peek, names and strings", t_errors);
    run("memory: malloc/free/pinned, memcpy all kinds, memset, argument errors", t_memory);
    run("streams and events: async copies, launches, waits, timing, dead handles",
        t_streams_events);
    run("dynamic shared memory above 48 KiB needs cudaFuncSetAttribute; 227 KiB max", t_smem_limit);
    run("graph capture + replay (memset, 2 kernels, D2D copy), x changed between replays, 4 "
        "policies x 3 seeds",
        t_graph_replay);
    run("capture misuse: sync, unsafe calls, pageable copies, legacy stream; fork/join",
        t_capture_misuse);
    run("deferred mode: stale before sync, per-stream and event dependencies, legacy barriers",
        t_deferred);
    run("device-memory protection: host access faults (forked child), GPU work does not",
        t_protect);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
