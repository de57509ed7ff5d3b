// cudart_sim.cc: a CPU stand-in for the CUDA runtime API calls the CUDA
// backend makes (devices, errors, memory, streams, events, graphs by stream
// capture), for host code linked against the emulator (tests/cudasim).
//
// The functions are the real ones from <cuda_runtime_api.h> (CUDA 13, no
// per-thread-default-stream renames), extern "C" with the header's own
// prototypes, so plain C11 host code links against this file unchanged.
//
// One emulated device ("cudasim", cc 9.0, 132 SMs, 80 GiB).  Device memory is
// host memory (cudaMalloc: 256-byte aligned, filled with 0xFF so unwritten
// floats read as NaN).  GPU work reaches the device through cudasim::enqueue:
//   - synchronous mode (default): work runs at once, in call order;
//   - deferred mode (cudasim::set_deferred / CUDASIM_DEFERRED=1): work waits in
//     a queue until a synchronisation point needs it (cudaStreamSynchronize,
//     cudaEventSynchronize, cudaDeviceSynchronize, a synchronous cudaMemcpy,
//     cudaFree, ...).  Dependencies follow the runtime's rules: stream order,
//     the legacy default stream's implicit barriers with blocking streams,
//     cudaStreamWaitEvent.  Only what the synchronisation needs runs, so host
//     code that reads results it never synchronised sees stale memory;
//   - capture (cudaStreamBeginCapture): work is recorded into a graph, and
//     cudaGraphLaunch replays the recorded closures in order.
// Device-memory protection (cudasim::set_protect_device / CUDASIM_PROTECT=1):
// device allocations are mmap'd and PROT_NONE except while emulated GPU work
// runs, so a host dereference of a device pointer faults at once.
//
// Stricter than the runtime where that finds host-code bugs: cudaMemcpy kinds
// must match the pointers (a device pointer where the kind says host is
// cudaErrorInvalidValue), and device ranges must lie inside one allocation.
// The standard headers first: cudasim.h's __noinline__ would break libstdc++'s.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cudasim.h"

namespace {

// ------------------------------------------------------------ device description
const size_t k_total_mem = 80ull << 30;
const int k_sms = 132;
const size_t k_smem_block = 48 * 1024, k_smem_optin = 227 * 1024, k_smem_sm = 228 * 1024;

std::recursive_mutex g_mu; // all stand-in state; work runs under it
#define LOCK std::lock_guard<std::recursive_mutex> lock_(g_mu)

cudaError_t ret(cudaError_t e) { // every failing call sets the last error (not "not ready")
    if (e != cudaSuccess && e != cudaErrorNotReady) cudasim::set_last_error(e);
    return e;
}

bool env_on(const char *name) {
    const char *s = getenv(name);
    return s && *s && strcmp(s, "0") != 0;
}
bool no_device() { return env_on("CUDASIM_NO_DEVICE"); }

// ------------------------------------------------------------ memory registry
enum MemKind { MEM_DEVICE, MEM_PINNED, MEM_REGISTERED };
struct Alloc {
    size_t size;
    MemKind kind;
    size_t map_size; // > 0: mmap'd (protect mode), protected when no work runs
};
std::map<uintptr_t, Alloc> g_allocs;
size_t g_device_used;
int g_mapped; // mmap'd device allocations
bool g_protect, g_deferred;
int g_exec_depth; // > 0 while emulated GPU work runs

// The allocation containing [p, p + n), or null.
const Alloc *find_alloc(const void *p, size_t n, uintptr_t *base) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return nullptr;
    --it;
    if (a - it->first >= it->second.size && !(a == it->first && n == 0)) return nullptr;
    if (n > it->second.size - (a - it->first)) return nullptr;
    if (base) *base = it->first;
    return &it->second;
}
// Any allocation overlapping p (for "is this a device pointer at all").
const Alloc *touch_alloc(const void *p) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return nullptr;
    --it;
    return a - it->first < std::max<size_t>(it->second.size, 1) ? &it->second : nullptr;
}

void set_device_access(bool on) {
    if (!g_mapped) return;
    for (auto &a : g_allocs)
        if (a.second.map_size)
            mprotect((void *)a.first, a.second.map_size, on ? PROT_READ | PROT_WRITE : PROT_NONE);
}

// Brackets emulated GPU work: device memory is accessible inside.
struct ExecScope {
    ExecScope() {
        if (g_exec_depth++ == 0) set_device_access(true);
    }
    ~ExecScope() {
        if (--g_exec_depth == 0) set_device_access(false);
    }
    ExecScope(const ExecScope &) = delete;
    ExecScope &operator=(const ExecScope &) = delete;
};

// ------------------------------------------------------------ streams, captures, events, graphs
struct Node {
    std::string what;
    std::function<void()> work;
};
struct Capture {
    std::vector<Node> nodes;
    cudaStreamCaptureMode mode;
    std::thread::id owner;
    bool invalid = false;
    unsigned long long id;
};
struct Stream {
    uint64_t id;
    unsigned flags;
    int priority;
    bool legacy;
    uint64_t last = 0; // its last queued item (deferred mode)
    std::shared_ptr<Capture> cap;
    bool origin = false; // began the capture
    Stream(uint64_t id_, unsigned flags_, int priority_, bool legacy_)
        : id(id_), flags(flags_), priority(priority_), legacy(legacy_) {}
};
struct EventState {
    unsigned flags;
    bool recorded = false, done = false;
    uint64_t item = 0;            // marker item of the last record (deferred mode)
    double t_ms = 0;              // host time when the marker ran
    std::shared_ptr<Capture> cap; // recorded into this (live) capture
};
struct Event {
    std::shared_ptr<EventState> st;
};
struct Graph {
    std::vector<Node> nodes;
};
struct GraphExec {
    std::shared_ptr<const std::vector<Node>> nodes;
};

struct Item {
    uint64_t id;
    uint64_t stream;
    std::string what;
    std::function<void()> work;
    std::vector<uint64_t> deps;
};

Stream g_legacy(0, 0, 0, true), g_per_thread(1, 0, 0, false);
std::set<Stream *> g_streams;
std::set<Event *> g_events;
std::set<Graph *> g_graphs;
std::set<GraphExec *> g_execs;
std::deque<Item> g_queue;
uint64_t g_next_item = 1, g_next_stream = 2;
unsigned long long g_next_capture = 1;

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Stream *get_stream(cudaStream_t h) {
    if (h == nullptr || h == cudaStreamLegacy) return &g_legacy;
    if (h == cudaStreamPerThread) return &g_per_thread;
    Stream *s = reinterpret_cast<Stream *>(h);
    return g_streams.count(s) ? s : nullptr;
}
Event *get_event(cudaEvent_t h) {
    Event *e = reinterpret_cast<Event *>(h);
    return e && g_events.count(e) ? e : nullptr;
}
bool blocking(const Stream *s) { return !s->legacy && !(s->flags & cudaStreamNonBlocking); }

// Every stream, including the implicit ones.
template <typename F> void for_streams(F f) {
    f(&g_legacy);
    f(&g_per_thread);
    for (Stream *s : g_streams)
        f(s);
}

// A blocking stream that captures: the legacy stream may not synchronise with it.
bool blocking_capture_active() {
    bool any = false;
    for_streams([&](Stream *s) { any |= s->cap && blocking(s); });
    return any;
}
void invalidate_blocking_captures() {
    for_streams([&](Stream *s) {
        if (s->cap && blocking(s)) s->cap->invalid = true;
    });
}
// "Potentially unsafe" calls (cudaMalloc, synchronous copies, cudaFree, ...)
// are refused while a capture in global mode, or one in thread-local mode
// begun by this thread, is active; the capture is invalidated.
cudaError_t unsafe_call() {
    bool hit = false;
    for_streams([&](Stream *s) {
        if (!s->cap) return;
        Capture &c = *s->cap;
        if (c.mode == cudaStreamCaptureModeGlobal ||
            (c.mode == cudaStreamCaptureModeThreadLocal && c.owner == std::this_thread::get_id())) {
            c.invalid = true;
            hit = true;
        }
    });
    return hit ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
// A call on the legacy stream (cudaMemcpy, cudaMemset, NULL-stream work).
cudaError_t legacy_stream_call() {
    if (blocking_capture_active()) {
        invalidate_blocking_captures();
        return cudaErrorStreamCaptureImplicit;
    }
    return cudaSuccess;
}

// ------------------------------------------------------------ the queue (deferred mode)
// Runs `work` as GPU work: device memory accessible, failures counted.
void execute(const std::string &what, const std::function<void()> &work) {
    (void)what;
    ExecScope scope;
    work();
}

// Queues work on s with its dependencies; returns the item id.
uint64_t push(Stream *s, const char *what, std::function<void()> &&work,
              std::vector<uint64_t> extra_deps = {}) {
    Item it;
    it.id = g_next_item++;
    it.stream = s->id;
    it.what = what;
    it.work = std::move(work);
    it.deps = std::move(extra_deps);
    if (s->last) it.deps.push_back(s->last);
    if (s->legacy) {
        for_streams([&](Stream *o) {
            if (blocking(o) && o->last) it.deps.push_back(o->last);
        });
    } else if (blocking(s) && g_legacy.last) {
        it.deps.push_back(g_legacy.last);
    }
    s->last = it.id;
    g_queue.push_back(std::move(it));
    return s->last;
}

// Runs the queued items `targets` need (themselves and their dependencies,
// transitively), in queue order; others stay queued.  Returns
// cudaErrorLaunchFailure when a launch among them failed.
cudaError_t run_needed(const std::vector<uint64_t> &targets, bool all = false) {
    if (g_queue.empty()) return cudaSuccess;
    std::set<uint64_t> need(targets.begin(), targets.end());
    std::vector<Item> run;
    for (auto it = g_queue.rbegin(); it != g_queue.rend(); ++it)
        if (all || need.count(it->id)) need.insert(it->deps.begin(), it->deps.end());
    std::deque<Item> keep;
    for (Item &it : g_queue) { // ids ascend: dependencies first
        if (all || need.count(it.id))
            run.push_back(std::move(it));
        else
            keep.push_back(std::move(it));
    }
    g_queue.swap(keep);
    unsigned long failed = cudasim::launches_failed();
    for (Item &it : run)
        execute(it.what, it.work);
    return cudasim::launches_failed() != failed ? cudaErrorLaunchFailure : cudaSuccess;
}
bool pending(uint64_t id) {
    for (const Item &it : g_queue)
        if (it.id == id) return true;
    return false;
}
cudaError_t sync_stream(Stream *s) { return s->last ? run_needed({s->last}) : cudaSuccess; }
cudaError_t sync_device() { return run_needed({}, true); }

// The enqueue() behind cudasim::enqueue.
cudaError_t enqueue_impl(cudaStream_t h, const char *what, std::function<void()> &&work) {
    LOCK;
    if (g_exec_depth > 0) { // from inside GPU work (a cuBLAS stand-in launching kernels)
        work();
        return cudaSuccess;
    }
    Stream *s = get_stream(h);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (s->cap) {
        if (s->cap->invalid) return cudaErrorStreamCaptureInvalidated;
        s->cap->nodes.push_back(Node{what, std::move(work)});
        return cudaSuccess;
    }
    if (s->legacy) {
        cudaError_t e = legacy_stream_call();
        if (e) return e;
    }
    if (!g_deferred) {
        execute(what, work);
        return cudaSuccess;
    }
    push(s, what, std::move(work));
    return cudaSuccess;
}

struct Init {
    Init() {
        g_deferred = env_on("CUDASIM_DEFERRED");
        g_protect = env_on("CUDASIM_PROTECT");
        cudasim::set_enqueue_impl(enqueue_impl);
    }
} g_init;

} // namespace

namespace cudasim {
void set_deferred(bool on) {
    LOCK;
    if (!on) sync_device();
    g_deferred = on;
}
bool deferred() { return g_deferred; }
void set_protect_device(bool on) {
    LOCK;
    g_protect = on;
}
bool protect_device() { return g_protect; }
static unsigned long g_instantiated, g_launched;
unsigned long graphs_instantiated() { return g_instantiated; }
unsigned long graph_launches() { return g_launched; }
} // namespace cudasim

// ================================================================ the runtime API
extern "C" {

// ------------------------------------------------------------ errors
#define CUDASIM_ERRORS(X)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                     \
    X(cudaSuccess)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                            \
    X(cudaErrorInvalidValue)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
    X(cudaErrorMemoryAllocation)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
    X(cudaErrorInitializationError)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           \
    X(cudaErrorCudartUnloading) X(cudaErrorProfilerDisabled) X(cudaErrorProfilerNotInitialized) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                            \
        cudaErrorProfilerAlreadyStarted) X(cudaErrorProfilerAlreadyStopped) X(cudaErrorInvalidConfiguration)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
        X(cudaErrorInvalidPitchValue) X(cudaErrorInvalidSymbol) X(cudaErrorInvalidHostPointer) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             \
            cudaErrorInvalidDevicePointer) X(cudaErrorInvalidTexture) X(cudaErrorInvalidTextureBinding) X(cudaErrorInvalidChannelDescriptor)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
            X(cudaErrorInvalidMemcpyDirection) X(cudaErrorAddressOfConstant) X(cudaErrorTextureFetchFailed) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                \
                cudaErrorTextureNotBound) X(cudaErrorSynchronizationError) X(cudaErrorInvalidFilterSetting) X(cudaErrorInvalidNormSetting)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    \
                X(cudaErrorMixedDeviceExecution) X(cudaErrorNotYetImplemented) X(cudaErrorMemoryValueTooLarge) X(cudaErrorStubLibrary) X(cudaErrorInsufficientDriver) X(cudaErrorCallRequiresNewerDriver) X(cudaErrorInvalidSurface) X(cudaErrorDuplicateVariableName) X(cudaErrorDuplicateTextureName) X(cudaErrorDuplicateSurfaceName) X(cudaErrorDevicesUnavailable) X(cudaErrorIncompatibleDriverContext) X(cudaErrorMissingConfiguration) X(cudaErrorPriorLaunchFailure) X(cudaErrorLaunchMaxDepthExceeded) X(cudaErrorLaunchFileScopedTex) X(cudaErrorLaunchFileScopedSurf) X(cudaErrorSyncDepthExceeded) X(cudaErrorLaunchPendingCountExceeded) X(cudaErrorInvalidDeviceFunction) X(cudaErrorNoDevice) X(cudaErrorInvalidDevice) X(cudaErrorDeviceNotLicensed) X(cudaErrorSoftwareValidityNotEstablished) X(cudaErrorStartupFailure) X(cudaErrorInvalidKernelImage) X(cudaErrorDeviceUninitialized) X( \
                    cudaErrorMapBufferObjectFailed) X(cudaErrorUnmapBufferObjectFailed) X(cudaErrorArrayIsMapped)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             \
                    X(cudaErrorAlreadyMapped) X(cudaErrorNoKernelImageForDevice) X(cudaErrorAlreadyAcquired) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               \
                        cudaErrorNotMapped) X(cudaErrorNotMappedAsArray) X(cudaErrorNotMappedAsPointer)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       \
                        X(cudaErrorECCUncorrectable) X(cudaErrorUnsupportedLimit) X(cudaErrorDeviceAlreadyInUse) X(cudaErrorPeerAccessUnsupported) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                         \
                            cudaErrorInvalidPtx) X(cudaErrorInvalidGraphicsContext) X(cudaErrorNvlinkUncorrectable) X(cudaErrorJitCompilerNotFound)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           \
                            X(cudaErrorUnsupportedPtxVersion) X(cudaErrorJitCompilationDisabled) X(cudaErrorUnsupportedExecAffinity) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       \
                                cudaErrorUnsupportedDevSideSync) X(cudaErrorContained) X(cudaErrorInvalidSource) X(cudaErrorFileNotFound)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                     \
                                X(cudaErrorSharedObjectSymbolNotFound) X(cudaErrorSharedObjectInitFailed) X(cudaErrorOperatingSystem) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      \
                                    cudaErrorInvalidResourceHandle) X(cudaErrorIllegalState)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                    X(cudaErrorLossyQuery) X(cudaErrorSymbolNotFound) X(cudaErrorNotReady) X(cudaErrorIllegalAddress) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      \
                                        cudaErrorLaunchOutOfResources) X(cudaErrorLaunchTimeout) X(cudaErrorLaunchIncompatibleTexturing)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      \
                                        X(cudaErrorPeerAccessAlreadyEnabled) X(cudaErrorPeerAccessNotEnabled) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
                                            cudaErrorSetOnActiveProcess) X(cudaErrorContextIsDestroyed) X(cudaErrorAssert)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    \
                                            X(cudaErrorTooManyPeers) X(cudaErrorHostMemoryAlreadyRegistered) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               \
                                                cudaErrorHostMemoryNotRegistered) X(cudaErrorHardwareStackError)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
                                                X(cudaErrorIllegalInstruction) X(cudaErrorMisalignedAddress) X(cudaErrorInvalidAddressSpace) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               \
                                                    cudaErrorInvalidPc) X(cudaErrorLaunchFailure) X(cudaErrorCooperativeLaunchTooLarge)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       \
                                                    X(cudaErrorTensorMemoryLeak) X(cudaErrorNotPermitted) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                                        cudaErrorNotSupported) X(cudaErrorSystemNotReady)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                     \
                                                        X(cudaErrorSystemDriverMismatch) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   \
                                                            cudaErrorCompatNotSupportedOnDevice) X(cudaErrorMpsConnectionFailed)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
                                                            X(cudaErrorMpsRpcFailure) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      \
                                                                cudaErrorMpsServerNotReady) X(cudaErrorMpsMaxClientsReached)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                                                X(cudaErrorMpsMaxConnectionsReached) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       \
                                                                    cudaErrorMpsClientTerminated) X(cudaErrorCdpNotSupported)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                 \
                                                                    X(cudaErrorCdpVersionMismatch) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                         \
                                                                        cudaErrorStreamCaptureUnsupported) X(cudaErrorStreamCaptureInvalidated)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               \
                                                                        X(cudaErrorStreamCaptureMerge) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                     \
                                                                            cudaErrorStreamCaptureUnmatched)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                                                            X(cudaErrorStreamCaptureUnjoined) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
                                                                                cudaErrorStreamCaptureIsolation)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              \
                                                                                X(cudaErrorStreamCaptureImplicit) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          \
                                                                                    cudaErrorCapturedEvent)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   \
                                                                                    X(cudaErrorStreamCaptureWrongThread) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   \
                                                                                        cudaErrorTimeout) X(cudaErrorGraphExecUpdateFailure)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                                                                        X(cudaErrorExternalDevice) X(                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                         \
                                                                                            cudaErrorInvalidClusterSize)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      \
                                                                                            X(cudaErrorFunctionNotLoaded)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                     \
                                                                                                X(cudaErrorInvalidResourceType)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               \
                                                                                                    X(cudaErrorInvalidResourceConfiguration)                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  \
                                                                                                        X(cudaErrorUnknown)
#define CUDASIM_ERR_NAME(e) {e, #e},
static const struct {
    cudaError_t code;
    const char *name;
} k_error_names[] = {CUDASIM_ERRORS(CUDASIM_ERR_NAME)};

cudaError_t cudaGetLastError(void) { return cudasim::last_error(true); }
cudaError_t cudaPeekAtLastError(void) { return cudasim::last_error(false); }

const char *cudaGetErrorName(cudaError_t error) {
    for (const auto &e : k_error_names)
        if (e.code == error) return e.name;
    return "unrecognized error code";
}

const char *cudaGetErrorString(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorHostMemoryAlreadyRegistered:
        return "part or all of the requested memory range is already mapped";
    case cudaErrorHostMemoryNotRegistered:
        return "pointer does not correspond to a registered memory region";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureMerge:
        return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched:
        return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation:
        return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent:
        return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorUnknown: return "unknown error";
    default: break;
    }
    const char *n = cudaGetErrorName(error);
    return strcmp(n, "unrecognized error code") ? n : "unrecognized error code";
}

// ------------------------------------------------------------ devices
cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return ret(cudaErrorInvalidValue);
    if (no_device()) {
        *count = 0;
        return ret(cudaErrorNoDevice);
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (no_device()) return ret(cudaErrorNoDevice);
    return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (!prop) return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    if (device != 0) return ret(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "cudasim");
    memcpy(prop->uuid.bytes, "cudasim-device-0", 16);
    prop->totalGlobalMem = k_total_mem;
    prop->sharedMemPerBlock = k_smem_block;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->memPitch = 2147483647;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = 9;
    prop->minor = 0;
    prop->textureAlignment = 512;
    prop->texturePitchAlignment = 32;
    prop->multiProcessorCount = k_sms;
    prop->canMapHostMemory = 1;
    prop->surfaceAlignment = 512;
    prop->concurrentKernels = 1;
    prop->ECCEnabled = 1;
    prop->asyncEngineCount = 3;
    prop->unifiedAddressing = 1;
    prop->memoryBusWidth = 5120;
    prop->l2CacheSize = 50 << 20;
    prop->persistingL2CacheMaxSize = 32 << 20;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->streamPrioritiesSupported = 1;
    prop->globalL1CacheSupported = 1;
    prop->localL1CacheSupported = 1;
    prop->sharedMemPerMultiprocessor = k_smem_sm;
    prop->regsPerMultiprocessor = 65536;
    prop->managedMemory = 1;
    prop->computePreemptionSupported = 1;
    prop->cooperativeLaunch = 1;
    prop->sharedMemPerBlockOptin = k_smem_optin;
    prop->maxBlocksPerMultiProcessor = 32;
    prop->accessPolicyMaxWindowSize = 134213632;
    prop->reservedSharedMemPerBlock = 1024;
    prop->hostRegisterSupported = 1;
    prop->memoryPoolsSupported = 1;
    prop->clusterLaunch = 1;
    prop->deviceNumaId = -1;
    prop->hostNumaId = -1;
    return cudaSuccess;
}

// The attributes are the properties above, read back from them (no second copy of the figures).
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    if (!value) return ret(cudaErrorInvalidValue);
    cudaDeviceProp p;
    if (cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
    int v;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrTotalConstantMemory: v = (int)p.totalConstMem; break;
    case cudaDevAttrWarpSize: v = p.warpSize; break;
    case cudaDevAttrMaxRegistersPerBlock: v = p.regsPerBlock; break;
    case cudaDevAttrMultiProcessorCount: v = p.multiProcessorCount; break;
    case cudaDevAttrIntegrated: v = p.integrated; break;
    case cudaDevAttrCanMapHostMemory: v = p.canMapHostMemory; break;
    case cudaDevAttrComputeMode: v = cudaComputeModeDefault; break;
    case cudaDevAttrConcurrentKernels: v = p.concurrentKernels; break;
    case cudaDevAttrEccEnabled: v = p.ECCEnabled; break;
    case cudaDevAttrPciBusId: v = p.pciBusID; break;
    case cudaDevAttrPciDeviceId: v = p.pciDeviceID; break;
    case cudaDevAttrGlobalMemoryBusWidth: v = p.memoryBusWidth; break;
    case cudaDevAttrL2CacheSize: v = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: v = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrAsyncEngineCount: v = p.asyncEngineCount; break;
    case cudaDevAttrUnifiedAddressing: v = p.unifiedAddressing; break;
    case cudaDevAttrComputeCapabilityMajor: v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: v = p.minor; break;
    case cudaDevAttrStreamPrioritiesSupported: v = p.streamPrioritiesSupported; break;
    case cudaDevAttrGlobalL1CacheSupported: v = p.globalL1CacheSupported; break;
    case cudaDevAttrLocalL1CacheSupported: v = p.localL1CacheSupported; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: v = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrMaxRegistersPerMultiprocessor: v = p.regsPerMultiprocessor; break;
    case cudaDevAttrManagedMemory: v = p.managedMemory; break;
    case cudaDevAttrCooperativeLaunch: v = p.cooperativeLaunch; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: v = (int)p.sharedMemPerBlockOptin; break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: v = p.maxBlocksPerMultiProcessor; break;
    case cudaDevAttrReservedSharedMemoryPerBlock: v = (int)p.reservedSharedMemPerBlock; break;
    case cudaDevAttrMemoryPoolsSupported: v = p.memoryPoolsSupported; break;
    case cudaDevAttrClusterLaunch: v = p.clusterLaunch; break;
    case cudaDevAttrHostRegisterSupported: v = p.hostRegisterSupported; break;
    case cudaDevAttrMaxPersistingL2CacheSize: v = p.persistingL2CacheMaxSize; break;
    case cudaDevAttrMaxAccessPolicyWindowSize: v = p.accessPolicyMaxWindowSize; break;
    default: return ret(cudaErrorInvalidValue);
    }
    *value = v;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *driverVersion) {
    if (!driverVersion) return ret(cudaErrorInvalidValue);
    *driverVersion = no_device() ? 0 : CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion) {
    if (!runtimeVersion) return ret(cudaErrorInvalidValue);
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free, size_t *total) {
    if (!free || !total) return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    *total = k_total_mem;
    *free = k_total_mem - g_device_used;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    bool capturing = false;
    for_streams([&](Stream *s) {
        if (s->cap) {
            s->cap->invalid = true;
            capturing = true;
        }
    });
    if (capturing) return ret(cudaErrorStreamCaptureUnsupported);
    return ret(sync_device());
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
    if (!func) return ret(cudaErrorInvalidDeviceFunction);
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    switch (attr) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
        if (value < 0 || (size_t)value > k_smem_optin) return ret(cudaErrorInvalidValue);
        cudasim::set_max_dynamic_smem(func, value);
        return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
        return value >= -1 && value <= 100 ? cudaSuccess : ret(cudaErrorInvalidValue);
    default: return ret(cudaErrorInvalidValue);
    }
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    if (!attr) return ret(cudaErrorInvalidValue);
    if (!func) return ret(cudaErrorInvalidDeviceFunction);
    LOCK;
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = 1024;
    attr->numRegs = 32;
    attr->ptxVersion = 90;
    attr->binaryVersion = 90;
    attr->maxDynamicSharedSizeBytes = cudasim::max_dynamic_smem(func);
    attr->preferredShmemCarveout = -1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
    if (leastPriority) *leastPriority = 0;
    if (greatestPriority) *greatestPriority = -5;
    return cudaSuccess;
}

// Waits for all work, frees every allocation, stream, event and graph.
cudaError_t cudaDeviceReset(void) {
    LOCK;
    for_streams([&](Stream *s) { s->cap.reset(); });
    sync_device();
    for (auto &a : g_allocs) {
        if (a.second.map_size)
            munmap((void *)a.first, a.second.map_size);
        else if (a.second.kind != MEM_REGISTERED)
            free((void *)a.first);
    }
    g_allocs.clear();
    g_device_used = 0;
    g_mapped = 0;
    for (Stream *s : g_streams)
        delete s;
    g_streams.clear();
    g_legacy.last = g_per_thread.last = 0;
    for (Event *e : g_events)
        delete e;
    g_events.clear();
    for (Graph *g : g_graphs)
        delete g;
    g_graphs.clear();
    for (GraphExec *g : g_execs)
        delete g;
    g_execs.clear();
    cudasim::set_last_error(cudaSuccess);
    return cudaSuccess;
}

// ------------------------------------------------------------ memory
static cudaError_t alloc_common(void **p, size_t size, MemKind kind) {
    if (!p) return cudaErrorInvalidValue;
    if (no_device()) return cudaErrorNoDevice;
    cudaError_t e = unsafe_call();
    if (e) return e;
    *p = nullptr;
    if (size == 0) return cudaSuccess;
    if (kind == MEM_DEVICE && (size > k_total_mem || size > k_total_mem - g_device_used))
        return cudaErrorMemoryAllocation;
    void *m = nullptr;
    size_t map_size = 0;
    if (kind == MEM_DEVICE && g_protect) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        map_size = (size + pg - 1) / pg * pg;
        m = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
    } else {
        // The exact size, so that AddressSanitizer reports any access past the end.
        if (posix_memalign(&m, kind == MEM_DEVICE ? 256 : 4096, size))
            return cudaErrorMemoryAllocation;
    }
    if (kind == MEM_DEVICE) {
        memset(m, 0xff, size); // uninitialised device memory reads as NaN
        g_device_used += size;
        if (map_size) {
            g_mapped++;
            if (g_exec_depth == 0) mprotect(m, map_size, PROT_NONE);
        }
    }
    g_allocs[(uintptr_t)m] = Alloc{size, kind, map_size};
    *p = m;
    return cudaSuccess;
}

static cudaError_t free_common(void *p, MemKind kind) {
    if (no_device()) return cudaErrorNoDevice;
    if (!p) return cudaSuccess;
    cudaError_t e = unsafe_call();
    if (e) return e;
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != kind) return cudaErrorInvalidValue;
    e = sync_device(); // cudaFree / cudaFreeHost synchronise the device
    if (it->second.map_size) {
        munmap(p, it->second.map_size);
        g_mapped--;
    } else {
        free(p);
    }
    if (kind == MEM_DEVICE) g_device_used -= it->second.size;
    g_allocs.erase(it);
    return e;
}

cudaError_t cudaMalloc(void **devPtr, size_t size) {
    LOCK;
    return ret(alloc_common(devPtr, size, MEM_DEVICE));
}
cudaError_t cudaFree(void *devPtr) {
    LOCK;
    return ret(free_common(devPtr, MEM_DEVICE));
}
cudaError_t cudaMallocHost(void **ptr, size_t size) {
    LOCK;
    return ret(alloc_common(ptr, size, MEM_PINNED));
}
cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags) {
    if (flags &
        ~(unsigned)(cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined))
        return ret(cudaErrorInvalidValue);
    LOCK;
    return ret(alloc_common(pHost, size, MEM_PINNED));
}
cudaError_t cudaFreeHost(void *ptr) {
    LOCK;
    return ret(free_common(ptr, MEM_PINNED));
}

cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags) {
    if (!ptr || size == 0 || flags > 0xf) return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    uintptr_t a = (uintptr_t)ptr;
    auto it = g_allocs.lower_bound(a);
    if ((it != g_allocs.end() && it->first < a + size) || touch_alloc(ptr))
        return ret(cudaErrorHostMemoryAlreadyRegistered);
    g_allocs[a] = Alloc{size, MEM_REGISTERED, 0};
    return cudaSuccess;
}
cudaError_t cudaHostUnregister(void *ptr) {
    LOCK;
    auto it = g_allocs.find((uintptr_t)ptr);
    if (!ptr || it == g_allocs.end() || it->second.kind != MEM_REGISTERED)
        return ret(cudaErrorHostMemoryNotRegistered);
    g_allocs.erase(it);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr) {
    if (!attributes) return ret(cudaErrorInvalidValue);
    LOCK;
    memset(attributes, 0, sizeof *attributes);
    const Alloc *a = touch_alloc(ptr);
    attributes->device = 0;
    if (!a) {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;
    } else if (a->kind == MEM_DEVICE) {
        attributes->type = cudaMemoryTypeDevice;
        attributes->devicePointer = const_cast<void *>(ptr);
    } else {
        attributes->type = cudaMemoryTypeHost;
        attributes->devicePointer = const_cast<void *>(ptr);
        attributes->hostPointer = const_cast<void *>(ptr);
    }
    return cudaSuccess;
}

// What a memcpy endpoint is.
enum Where { W_DEVICE, W_PINNED, W_PAGEABLE, W_BAD };
static Where where_is(const void *p, size_t n) {
    const Alloc *a = find_alloc(p, n, nullptr);
    if (a) return a->kind == MEM_DEVICE ? W_DEVICE : W_PINNED;
    const Alloc *t = touch_alloc(p);
    if (t) return W_BAD; // starts inside an allocation but runs past its end
    // A host range must not run into device memory either.
    auto it = g_allocs.upper_bound((uintptr_t)p);
    if (it != g_allocs.end() && it->first < (uintptr_t)p + n && it->second.kind == MEM_DEVICE)
        return W_BAD;
    return W_PAGEABLE;
}

// Checks a copy; *src_host / *dst_host tell the host ends (pinned or pageable).
static cudaError_t check_copy(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                              Where *wd, Where *ws) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
        return cudaErrorInvalidMemcpyDirection;
    if (count == 0) return cudaSuccess;
    if (!dst || !src) return cudaErrorInvalidValue;
    *wd = where_is(dst, count);
    *ws = where_is(src, count);
    if (*wd == W_BAD || *ws == W_BAD) return cudaErrorInvalidValue;
    bool dd = *wd == W_DEVICE, sd = *ws == W_DEVICE;
    switch (kind) {
    case cudaMemcpyHostToHost: return !dd && !sd ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyHostToDevice: return dd && !sd ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyDeviceToHost: return !dd && sd ? cudaSuccess : cudaErrorInvalidValue;
    case cudaMemcpyDeviceToDevice: return dd && sd ? cudaSuccess : cudaErrorInvalidValue;
    default: return cudaSuccess;
    }
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    Where wd = W_PAGEABLE, ws = W_PAGEABLE;
    cudaError_t e = check_copy(dst, src, count, kind, &wd, &ws);
    if (e || count == 0) return ret(e);
    if ((e = legacy_stream_call()) || (e = unsafe_call())) return ret(e);
    auto work = [dst, src, count]() { memmove(dst, src, count); };
    if (wd == W_DEVICE && ws == W_DEVICE && g_deferred) { // device to device: async to the host
        push(&g_legacy, "cudaMemcpy", work);
        return cudaSuccess;
    }
    // Synchronous: everything the legacy stream waits for, then the copy.
    if (g_deferred) return ret(run_needed({push(&g_legacy, "cudaMemcpy", work)}));
    execute("cudaMemcpy", work);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    Where wd = W_PAGEABLE, ws = W_PAGEABLE;
    cudaError_t e = check_copy(dst, src, count, kind, &wd, &ws);
    if (e || count == 0) return ret(e);
    if (s->cap && (wd == W_PAGEABLE || ws == W_PAGEABLE)) {
        // A graph cannot hold a copy from or to pageable memory.
        s->cap->invalid = true;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (ws == W_PAGEABLE && wd == W_DEVICE && !s->cap) {
        // Staged: the source is read now, the device write happens in order.
        auto buf = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                (const unsigned char *)src + count);
        return ret(cudasim::enqueue(stream, "cudaMemcpyAsync",
                                    [dst, buf]() { memcpy(dst, buf->data(), buf->size()); }));
    }
    e = cudasim::enqueue(stream, "cudaMemcpyAsync",
                         [dst, src, count]() { memmove(dst, src, count); });
    if (e) return ret(e);
    if (wd == W_PAGEABLE && !s->cap && g_deferred) // to pageable memory: returns when done
        return ret(sync_stream(s));
    return cudaSuccess;
}

static cudaError_t check_set(void *p, size_t count) {
    if (count == 0) return cudaSuccess;
    if (!p) return cudaErrorInvalidValue;
    const Alloc *a = find_alloc(p, count, nullptr);
    return a && a->kind == MEM_DEVICE ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count) {
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    cudaError_t e = check_set(devPtr, count);
    if (e || count == 0) return ret(e);
    // Asynchronous to the host for device memory, on the legacy stream.
    return ret(cudasim::enqueue(nullptr, "cudaMemset",
                                [devPtr, value, count]() { memset(devPtr, value, count); }));
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream) {
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    if (!get_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
    cudaError_t e = check_set(devPtr, count);
    if (e || count == 0) return ret(e);
    return ret(cudasim::enqueue(stream, "cudaMemsetAsync",
                                [devPtr, value, count]() { memset(devPtr, value, count); }));
}

// ------------------------------------------------------------ streams
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags, int priority) {
    if (!pStream || flags > cudaStreamNonBlocking) return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    Stream *s = new Stream(g_next_stream++, flags,
                           priority < -5 ? -5 : (priority > 0 ? 0 : priority), false);
    g_streams.insert(s);
    *pStream = reinterpret_cast<cudaStream_t>(s);
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags) {
    return cudaStreamCreateWithPriority(pStream, flags, 0);
}
cudaError_t cudaStreamCreate(cudaStream_t *pStream) {
    return cudaStreamCreateWithPriority(pStream, cudaStreamDefault, 0);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    LOCK;
    Stream *s = get_stream(stream);
    if (!s || s == &g_legacy || s == &g_per_thread) return ret(cudaErrorInvalidResourceHandle);
    // Queued work still runs (its items outlive the stream); a capture is lost.
    if (s->cap) s->cap->invalid = true;
    g_streams.erase(s);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags) {
    LOCK;
    Stream *s = get_stream(hStream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (!flags) return ret(cudaErrorInvalidValue);
    *flags = s->flags;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (s->cap) {
        s->cap->invalid = true;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    cudaError_t e;
    if (s->legacy && (e = legacy_stream_call())) return ret(e);
    return ret(sync_stream(s));
}

// Not ready while work is queued; the query lets that work finish (as the GPU
// would, soon), so a polling loop ends.
cudaError_t cudaStreamQuery(cudaStream_t stream) {
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (s->cap) {
        s->cap->invalid = true;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (!s->last || !pending(s->last)) return cudaSuccess;
    cudaError_t e = sync_stream(s);
    return e ? ret(e) : cudaErrorNotReady;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData) {
    if (!fn) return ret(cudaErrorInvalidValue);
    return ret(cudasim::enqueue(stream, "cudaLaunchHostFunc", [fn, userData]() { fn(userData); }));
}

// ------------------------------------------------------------ events
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    if (!event || flags > 7 ||
        ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming)))
        return ret(cudaErrorInvalidValue);
    if (no_device()) return ret(cudaErrorNoDevice);
    LOCK;
    Event *e = new Event{std::make_shared<EventState>()};
    e->st->flags = flags;
    g_events.insert(e);
    *event = reinterpret_cast<cudaEvent_t>(e);
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *event) {
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    LOCK;
    Event *e = get_event(event);
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    g_events.erase(e);
    delete e; // a queued marker keeps its state alive
    return cudaSuccess;
}

cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags) {
    LOCK;
    Event *e = get_event(event);
    Stream *s = get_stream(stream);
    if (!e || !s) return ret(cudaErrorInvalidResourceHandle);
    if (flags > cudaEventRecordExternal) return ret(cudaErrorInvalidValue);
    std::shared_ptr<EventState> st = e->st;
    if (s->cap) {
        if (s->cap->invalid) return ret(cudaErrorStreamCaptureInvalidated);
        st->cap = s->cap; // a node of the graph, for cudaStreamWaitEvent to join on
        st->recorded = true;
        return cudaSuccess;
    }
    cudaError_t err;
    if (s->legacy && (err = legacy_stream_call())) return ret(err);
    st->cap.reset();
    st->recorded = true;
    st->done = false;
    auto mark = [st]() {
        st->done = true;
        st->t_ms = now_ms();
    };
    if (g_deferred) {
        // Direct push: the marker's id is what waits and syncs refer to.
        st->item = push(s, "cudaEventRecord", mark);
    } else {
        st->item = 0;
        mark();
    }
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    return cudaEventRecordWithFlags(event, stream, 0);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    LOCK;
    Event *e = get_event(event);
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    EventState &st = *e->st;
    if (st.cap) return ret(cudaErrorCapturedEvent);
    if (!st.recorded || st.done) return cudaSuccess;
    cudaError_t err = run_needed({st.item});
    return err ? ret(err) : cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    LOCK;
    Event *e = get_event(event);
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    EventState &st = *e->st;
    if (st.cap) return ret(cudaErrorCapturedEvent);
    if (!st.recorded || st.done) return cudaSuccess;
    return ret(run_needed({st.item}));
}

// Host time between the two markers' executions (emulator time, not GPU time).
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms) return ret(cudaErrorInvalidValue);
    LOCK;
    Event *a = get_event(start), *b = get_event(end);
    if (!a || !b) return ret(cudaErrorInvalidResourceHandle);
    if ((a->st->flags | b->st->flags) & cudaEventDisableTiming)
        return ret(cudaErrorInvalidResourceHandle);
    if (a->st->cap || b->st->cap) return ret(cudaErrorCapturedEvent);
    if (!a->st->recorded || !b->st->recorded) return ret(cudaErrorInvalidResourceHandle);
    if (!a->st->done || !b->st->done) return cudaErrorNotReady;
    *ms = (float)(b->st->t_ms - a->st->t_ms);
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    LOCK;
    Stream *s = get_stream(stream);
    Event *e = get_event(event);
    if (!s || !e) return ret(cudaErrorInvalidResourceHandle);
    if (flags > cudaEventWaitExternal) return ret(cudaErrorInvalidValue);
    EventState &st = *e->st;
    if (st.cap) {
        // Fork/join of a capture: s joins it (work recorded in call order).
        if (s->cap && s->cap != st.cap) return ret(cudaErrorStreamCaptureMerge);
        if (s->legacy) {
            st.cap->invalid = true;
            return ret(cudaErrorStreamCaptureImplicit);
        }
        s->cap = st.cap;
        return cudaSuccess;
    }
    if (s->cap) {
        if (s->cap->invalid) return ret(cudaErrorStreamCaptureInvalidated);
        if (!st.recorded || st.done) return cudaSuccess;
        s->cap->invalid = true; // waiting on uncaptured, unfinished work
        return ret(cudaErrorStreamCaptureIsolation);
    }
    if (!st.recorded || st.done || !g_deferred) return cudaSuccess;
    cudaError_t err;
    if (s->legacy && (err = legacy_stream_call())) return ret(err);
    push(s, "cudaStreamWaitEvent", []() {}, {st.item});
    return cudaSuccess;
}

// ------------------------------------------------------------ graphs by stream capture
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
        mode != cudaStreamCaptureModeRelaxed)
        return ret(cudaErrorInvalidValue);
    if (s->legacy) return ret(cudaErrorStreamCaptureUnsupported);
    if (s->cap) return ret(cudaErrorIllegalState);
    s->cap = std::make_shared<Capture>();
    s->cap->mode = mode;
    s->cap->owner = std::this_thread::get_id();
    s->cap->id = g_next_capture++;
    s->origin = true;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *pGraph) {
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (!pGraph) return ret(cudaErrorInvalidValue);
    if (!s->cap) return ret(cudaErrorIllegalState);
    if (!s->origin) {
        s->cap->invalid = true;
        return ret(cudaErrorStreamCaptureUnmatched);
    }
    std::shared_ptr<Capture> cap = s->cap;
    for_streams([&](Stream *o) {
        if (o->cap == cap) {
            o->cap.reset();
            o->origin = false;
        }
    });
    for (Event *e : g_events)
        if (e->st->cap == cap) e->st->cap.reset();
    *pGraph = nullptr;
    if (cap->invalid) return ret(cudaErrorStreamCaptureInvalidated);
    Graph *g = new Graph{std::move(cap->nodes)};
    g_graphs.insert(g);
    *pGraph = reinterpret_cast<cudaGraph_t>(g);
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream,
                                  enum cudaStreamCaptureStatus *pCaptureStatus) {
    if (!pCaptureStatus) return ret(cudaErrorInvalidValue);
    LOCK;
    Stream *s = get_stream(stream);
    if (!s) return ret(cudaErrorInvalidResourceHandle);
    if (s->legacy && blocking_capture_active()) return ret(cudaErrorStreamCaptureImplicit);
    *pCaptureStatus = !s->cap ? cudaStreamCaptureStatusNone
                              : (s->cap->invalid ? cudaStreamCaptureStatusInvalidated
                                                 : cudaStreamCaptureStatusActive);
    return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode) {
    if (!mode) return ret(cudaErrorInvalidValue);
    static thread_local cudaStreamCaptureMode t_mode = cudaStreamCaptureModeGlobal;
    std::swap(*mode, t_mode); // recorded only; captures use their own mode
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *pGraphExec, cudaGraph_t graph,
                                 unsigned long long flags) {
    if (!pGraphExec) return ret(cudaErrorInvalidValue);
    LOCK;
    Graph *g = reinterpret_cast<Graph *>(graph);
    if (!g || !g_graphs.count(g)) return ret(cudaErrorInvalidValue);
    if (flags & ~(unsigned long long)(cudaGraphInstantiateFlagAutoFreeOnLaunch |
                                      cudaGraphInstantiateFlagUpload |
                                      cudaGraphInstantiateFlagDeviceLaunch |
                                      cudaGraphInstantiateFlagUseNodePriority))
        return ret(cudaErrorInvalidValue);
    GraphExec *x = new GraphExec{std::make_shared<const std::vector<Node>>(g->nodes)};
    g_execs.insert(x);
    cudasim::g_instantiated++;
    *pGraphExec = reinterpret_cast<cudaGraphExec_t>(x);
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
    LOCK;
    GraphExec *x = reinterpret_cast<GraphExec *>(graphExec);
    if (!x || !g_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
    std::shared_ptr<const std::vector<Node>> nodes = x->nodes;
    cudasim::g_launched++;
    return ret(cudasim::enqueue(stream, "cudaGraphLaunch", [nodes]() {
        for (const Node &n : *nodes)
            n.work();
    }));
}

cudaError_t cudaGraphUpload(cudaGraphExec_t graphExec, cudaStream_t stream) {
    LOCK;
    GraphExec *x = reinterpret_cast<GraphExec *>(graphExec);
    if (!x || !g_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
    return get_stream(stream) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
    LOCK;
    GraphExec *x = reinterpret_cast<GraphExec *>(graphExec);
    if (!x || !g_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
    g_execs.erase(x);
    delete x; // a queued launch keeps its nodes alive
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    LOCK;
    Graph *g = reinterpret_cast<Graph *>(graph);
    if (!g || !g_graphs.count(g)) return ret(cudaErrorInvalidValue);
    g_graphs.erase(g);
    delete g;
    return cudaSuccess;
}

// The recorded nodes, in order (handles are 1-based indices).
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *numNodes) {
    if (!numNodes) return ret(cudaErrorInvalidValue);
    LOCK;
    Graph *g = reinterpret_cast<Graph *>(graph);
    if (!g || !g_graphs.count(g)) return ret(cudaErrorInvalidValue);
    if (nodes) {
        for (size_t i = 0; i < *numNodes && i < g->nodes.size(); i++)
            nodes[i] = reinterpret_cast<cudaGraphNode_t>(i + 1);
    }
    *numNodes = g->nodes.size();
    return cudaSuccess;
}

} // extern "C"
