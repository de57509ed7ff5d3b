// bench_kernels.cu: times slim's kernel launchers (kernels/kernels.h) on a GPU
// at the shapes of real models, next to the predictions of
// tools/cuda_perf_model.py.
//
//   nvcc -std=c++17 -arch=sm_80 -Ikernels -Ilib -Iinclude -o bench_kernels
//        tests/gpu/bench_kernels.cu kernels/*.cu -lcudart [-lcublas]
//   (-lcublas once kernels/gemm_cublas.cu exists; tests/gpu/run.sh does this)
//   python3 tools/cuda_perf_model.py --tsv --gpu "$(nvidia-smi --query-gpu=name ...)" > pred.tsv
//   ./bench_kernels --pred pred.tsv [--reps 20] [--warmup 3] [--filter matvec] [--no-flush]
//
// The work list is the prediction file: one line per distinct launch,
// "key<TAB>pred_us<TAB>bytes<TAB>flops<TAB>used_by", the key naming the
// launcher and its arguments ("matvec dtype=Q4_K n=4096 rows=14336").  Without
// --pred a built-in list (Llama-3.1-8B shapes) runs with no predictions.
//
// Each case gets fresh device buffers with random contents: floats in [-1, 1],
// quantized blocks of random bytes whose fp16 scales are set to sane values
// (so no NaN/Inf), activations quantized on the device by
// slim_cuda_quantize_rows.  It is launched `warmup` times, then `reps` times,
// each timed alone between two cudaEvents, with L2 flushed before each (a
// memset of twice the L2 size, outside the timed interval) so that weights
// come from DRAM as in a real decode step; the median is reported, with the
// achieved GB/s (the model's DRAM bytes / time) and TFLOP/s.  Exit status: 0,
// or 1 if a launch or a CUDA call failed.
#include "common.cuh"
#include "kernels.h"

#include "quant/blocks.h"

// SLIM_BENCH_CUBLAS=1 (tests/gpu/run.sh sets it when kernels/gemm_cublas.cu
// exists; link with -lcublas): --cublas also times slim_cuda_gemm_cublas
// (dequantize to f16, then cublasGemmEx) at every GEMM shape, for comparison.
#ifndef SLIM_BENCH_CUBLAS
#define SLIM_BENCH_CUBLAS 0
#endif
#if SLIM_BENCH_CUBLAS
#include <cublas_v2.h>
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace {

int g_failed = 0;
#if SLIM_BENCH_CUBLAS
cublasHandle_t g_cublas = nullptr;
#endif

bool ck(cudaError_t e, const char *what, int line) {
    if (e == cudaSuccess) return true;
    fprintf(stderr, "bench_kernels:%d: %s: %s (%s)\n", line, what, cudaGetErrorString(e),
            cudaGetErrorName(e));
    g_failed = 1;
    return false;
}
#define CK(x) ck((x), #x, __LINE__)

// ------------------------------------------------------------ formats
struct Fmt {
    const char *name;
    int id;     // slim_dtype id (lib/quant/dtype.h)
    int block;  // elements per block
    int bytes;  // bytes per block
    int vdt;    // id of the activation format of its dot product (-1: f32)
    int scale0; // offset of an fp16 scale in the block, or -1
    int scale1; // a second fp16 field (min / dmin), or -1
};

const Fmt FMTS[] = {
    {"F32", 0, 1, 4, -1, -1, -1},
    {"F16", 1, 1, 2, -1, -1, -1},
    {"Q4_0", 2, 32, 18, 8, (int)offsetof(block_q4_0, d), -1},
    {"Q4_1", 3, 32, 20, 9, (int)offsetof(block_q4_1, d), (int)offsetof(block_q4_1, m)},
    {"Q5_0", 6, 32, 22, 8, (int)offsetof(block_q5_0, d), -1},
    {"Q5_1", 7, 32, 24, 9, (int)offsetof(block_q5_1, d), (int)offsetof(block_q5_1, m)},
    {"Q8_0", 8, 32, 34, 8, (int)offsetof(block_q8_0, d), -1},
    {"Q8_1", 9, 32, 36, -1, -1, -1},
    {"Q4_K", 12, 256, 144, 15, (int)offsetof(block_q4_K, d), (int)offsetof(block_q4_K, dmin)},
    {"Q5_K", 13, 256, 176, 15, (int)offsetof(block_q5_K, d), (int)offsetof(block_q5_K, dmin)},
    {"Q6_K", 14, 256, 210, 15, (int)offsetof(block_q6_K, d), -1},
    {"Q8_K", 15, 256, 292, -1, -1, -1},
};

const Fmt *fmt_by_name(const std::string &s) {
    for (const Fmt &f : FMTS)
        if (s == f.name) return &f;
    return nullptr;
}
const Fmt *fmt_by_id(int id) {
    for (const Fmt &f : FMTS)
        if (f.id == id) return &f;
    return nullptr;
}
size_t row_size(const Fmt *f, int64_t n) { return (size_t)(n / f->block) * (size_t)f->bytes; }

// ------------------------------------------------------------ device fill
__device__ __forceinline__ uint32_t hash32(uint64_t i, uint32_t seed) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint32_t)x;
}

__global__ void fill_bytes_kernel(unsigned char *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)hash32(i, seed);
}

// Uniform in [-amp, amp].
__global__ void fill_f32_kernel(float *p, size_t n, uint32_t seed, float amp) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = amp * ((float)(hash32(i, seed) >> 8) * (2.0f / 16777216.0f) - 1.0f);
}

__global__ void fill_f16_kernel(uint16_t *p, size_t n, uint32_t seed, float amp) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float v = amp * ((float)(hash32(i, seed) >> 8) * (2.0f / 16777216.0f) - 1.0f);
        p[i] = __half_as_ushort(__float2half_rn(v));
    }
}

// Sets the fp16 scale fields (offsets s0, s1; -1: none) of n_blocks blocks of
// `bytes` bytes to small positive values, so random quants give finite weights.
__global__ void set_scales_kernel(unsigned char *p, size_t n_blocks, int bytes, int s0, int s1,
                                  uint32_t seed) {
    for (size_t b = (size_t)blockIdx.x * blockDim.x + threadIdx.x; b < n_blocks;
         b += (size_t)gridDim.x * blockDim.x) {
        unsigned char *blk = p + b * (size_t)bytes;
        const float d = 1e-3f * (1.0f + (float)(hash32(b, seed) & 1023) / 1024.0f);
        const unsigned short h = __half_as_ushort(__float2half_rn(d));
        if (s0 >= 0) memcpy(blk + s0, &h, 2);
        if (s1 >= 0) memcpy(blk + s1, &h, 2);
    }
}

__global__ void fill_i32_kernel(int32_t *p, size_t n, uint32_t seed, int32_t mod) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (int32_t)(hash32(i, seed) % (uint32_t)mod);
}

dim3 fill_grid(size_t n) { return dim3((unsigned)std::min<size_t>((n + 255) / 256, 65535)); }

// Device allocations of one case, freed together.
struct Arena {
    std::vector<void *> ptrs;
    size_t total = 0;
    template <typename T> T *alloc(size_t count) {
        void *p = nullptr;
        const size_t bytes = std::max<size_t>(count * sizeof(T), 16);
        if (!CK(cudaMalloc(&p, bytes))) return nullptr;
        ptrs.push_back(p);
        total += bytes;
        return static_cast<T *>(p);
    }
    ~Arena() {
        for (void *p : ptrs)
            cudaFree(p);
    }
};

uint32_t g_seed = 1;

float *rand_f32(Arena &ar, size_t n, float amp) {
    float *p = ar.alloc<float>(n);
    if (p)
        LAUNCH(fill_f32_kernel, fill_grid(n), dim3(256), 0, (cudaStream_t)0, p, n, g_seed++, amp);
    return p;
}

// rows x n weights of format f, random quants, sane scales (F32/F16: floats).
unsigned char *rand_weights(Arena &ar, const Fmt *f, int64_t n, int64_t rows) {
    const size_t bytes = row_size(f, n) * (size_t)rows;
    unsigned char *p = ar.alloc<unsigned char>(bytes);
    if (!p) return nullptr;
    if (f->id == 0) {
        LAUNCH(fill_f32_kernel, fill_grid(bytes / 4), dim3(256), 0, (cudaStream_t)0, (float *)p,
               bytes / 4, g_seed++, 1.0f);
    } else if (f->id == 1) {
        LAUNCH(fill_f16_kernel, fill_grid(bytes / 2), dim3(256), 0, (cudaStream_t)0, (uint16_t *)p,
               bytes / 2, g_seed++, 1.0f);
    } else {
        LAUNCH(fill_bytes_kernel, fill_grid(bytes), dim3(256), 0, (cudaStream_t)0, p, bytes,
               g_seed++);
        const size_t nb = bytes / (size_t)f->bytes;
        LAUNCH(set_scales_kernel, fill_grid(nb), dim3(256), 0, (cudaStream_t)0, p, nb, f->bytes,
               f->scale0, f->scale1, g_seed++);
    }
    return p;
}

// `rows` activation rows of n for weights of format f: quantized to its
// vec_dot format on the device (f32 for float weights).  *stride: row bytes.
void *rand_activations(Arena &ar, const Fmt *f, int64_t n, int64_t rows, size_t *stride) {
    float *x = rand_f32(ar, (size_t)(n * rows), 1.0f);
    if (!x || f->vdt < 0) {
        *stride = (size_t)n * sizeof(float);
        return x;
    }
    const Fmt *v = fmt_by_id(f->vdt);
    *stride = row_size(v, n);
    unsigned char *q = ar.alloc<unsigned char>(*stride * (size_t)rows);
    if (!q) return nullptr;
    const int rc = slim_cuda_quantize_rows(v->id, q, *stride, x, n, rows, nullptr);
    if (rc) {
        fprintf(stderr, "bench_kernels: quantize_rows for the activations failed (%d)\n", rc);
        g_failed = 1;
    }
    return q;
}

int32_t *dev_int(Arena &ar, int32_t v) {
    int32_t *p = ar.alloc<int32_t>(1);
    if (p) CK(cudaMemcpy(p, &v, sizeof v, cudaMemcpyHostToDevice));
    return p;
}

// ------------------------------------------------------------ keys
// "op k=v k=v ...": the op and its arguments.
struct Key {
    std::string op;
    std::vector<std::pair<std::string, std::string>> kv;
    bool has(const char *k) const {
        for (auto &p : kv)
            if (p.first == k) return true;
        return false;
    }
    std::string str(const char *k) const {
        for (auto &p : kv)
            if (p.first == k) return p.second;
        return "";
    }
    int64_t i(const char *k) const { return has(k) ? strtoll(str(k).c_str(), nullptr, 10) : -1; }
};

Key parse_key(const std::string &s) {
    Key k;
    size_t pos = 0;
    bool first = true;
    while (pos < s.size()) {
        size_t end = s.find(' ', pos);
        if (end == std::string::npos) end = s.size();
        const std::string tok = s.substr(pos, end - pos);
        if (!tok.empty()) {
            if (first) {
                k.op = tok;
                first = false;
            } else {
                const size_t eq = tok.find('=');
                if (eq != std::string::npos)
                    k.kv.push_back({tok.substr(0, eq), tok.substr(eq + 1)});
            }
        }
        pos = end + 1;
    }
    return k;
}

// A prepared case: the launch, and the bytes it moves by our own count (the
// allocations it reads and writes) where the prediction file gives none.
struct Case {
    std::function<int()> launch;
    double est_bytes = 0;
    double est_flops = 0;
    const float *out = nullptr; // a float output checked for NaN/Inf after the runs
    size_t out_n = 0;
    std::string why; // empty: ready; else why it cannot run
};

// Whether the first (up to 65536) outputs are finite: random inputs with sane
// scales must not give NaN or Inf.
bool outputs_finite(const Case &c) {
    if (!c.out || !c.out_n) return true;
    std::vector<float> h(std::min<size_t>(c.out_n, 65536));
    if (!CK(cudaMemcpy(h.data(), c.out, h.size() * sizeof(float), cudaMemcpyDeviceToHost)))
        return false;
    for (float v : h)
        if (!isfinite(v)) return false;
    return true;
}

Case prepare(const Key &k, Arena &ar) {
    Case c;
    const int64_t n = k.i("n"), rows = k.i("rows");
    if (k.op == "rmsnorm") {
        float *x = rand_f32(ar, (size_t)(n * rows), 1.0f), *w = rand_f32(ar, (size_t)n, 1.0f);
        float *y = ar.alloc<float>((size_t)(n * rows));
        c.launch = [=] { return slim_cuda_rmsnorm(y, x, w, n, rows, 1e-6f, nullptr); };
        c.out = y, c.out_n = (size_t)(n * rows);
        c.est_bytes = 8.0 * n * rows + 4.0 * n;
    } else if (k.op == "rope") {
        const int64_t r = k.i("rows");
        const int32_t heads = (int32_t)k.i("heads"), hd = (int32_t)k.i("hd");
        float *x = rand_f32(ar, (size_t)(r * heads * hd), 1.0f);
        int32_t *pos0 = dev_int(ar, 1000);
        c.launch = [=] {
            return slim_cuda_rope(x, r, heads, hd, hd, pos0, 10000.0f, 1.0f, 1.0f, nullptr, 1,
                                  nullptr);
        };
        c.est_bytes = 8.0 * r * heads * hd;
    } else if (k.op == "quantize") {
        const Fmt *v = fmt_by_name(k.str("vdt"));
        if (!v) return c.why = "unknown vdt", c;
        float *x = rand_f32(ar, (size_t)(n * rows), 1.0f);
        const size_t stride = row_size(v, n);
        unsigned char *q = ar.alloc<unsigned char>(stride * (size_t)rows);
        c.launch = [=] { return slim_cuda_quantize_rows(v->id, q, stride, x, n, rows, nullptr); };
        c.est_bytes = 4.0 * n * rows + (double)stride * rows;
    } else if (k.op == "matvec" || k.op == "gemm") {
        const Fmt *f = fmt_by_name(k.str("dtype"));
        if (!f) return c.why = "unknown dtype", c;
        const int64_t tokens = k.has("tokens") ? k.i("tokens") : 1;
        unsigned char *w = rand_weights(ar, f, n, rows);
        size_t xs = 0;
        void *xq = rand_activations(ar, f, n, tokens, &xs);
        float *y = ar.alloc<float>((size_t)(rows * tokens));
        const size_t ws = row_size(f, n);
        if (k.op == "matvec") // several tokens: the batched decode step's mat-vec
            c.launch = [=] {
                return slim_cuda_matvec_tokens(f->id, y, w, ws, xq, xs, n, rows, tokens, nullptr);
            };
        else
            c.launch = [=] {
                return slim_cuda_gemm(f->id, y, w, ws, xq, xs, n, rows, tokens, nullptr);
            };
        c.est_bytes = (double)ws * rows + (double)xs * tokens + 4.0 * rows * tokens;
        c.out = y, c.out_n = (size_t)(rows * tokens);
        c.est_flops = 2.0 * n * rows * tokens;
#if SLIM_BENCH_CUBLAS
    } else if (k.op == "gemm_cublas") {
        const Fmt *f = fmt_by_name(k.str("dtype"));
        if (!f) return c.why = "unknown dtype", c;
        if (!g_cublas) return c.why = "no cuBLAS handle", c;
        const int64_t tokens = k.i("tokens");
        unsigned char *w = rand_weights(ar, f, n, rows);
        float *x = rand_f32(ar, (size_t)(n * tokens), 1.0f);
        float *y = ar.alloc<float>((size_t)(rows * tokens));
        uint16_t *w16 = ar.alloc<uint16_t>((size_t)(n * rows));
        uint16_t *x16 = ar.alloc<uint16_t>((size_t)(n * tokens));
        const size_t ws = row_size(f, n);
        c.launch = [=] {
            return slim_cuda_gemm_cublas(g_cublas, f->id, y, w, ws, x, n, rows, tokens, w16, x16,
                                         nullptr);
        };
        c.est_bytes = (double)ws * rows + 4.0 * n * tokens + 4.0 * rows * tokens;
        c.est_flops = 2.0 * n * rows * tokens;
        c.out = y, c.out_n = (size_t)(rows * tokens);
#endif
    } else if (k.op == "kv_store") {
        const int64_t tokens = k.i("tokens"), width = k.i("width");
        float *src = rand_f32(ar, (size_t)(tokens * width), 1.0f);
        uint16_t *cache = ar.alloc<uint16_t>((size_t)(tokens * width));
        int32_t *pos0 = dev_int(ar, 0);
        c.launch = [=] { return slim_cuda_kv_store(cache, src, tokens, width, pos0, nullptr); };
        c.est_bytes = 6.0 * tokens * width;
    } else if (k.op == "attention") {
        const int32_t tokens = (int32_t)k.i("tokens"), p0 = (int32_t)k.i("pos0");
        const int32_t n_ctx = (int32_t)k.i("n_ctx"), nh = (int32_t)k.i("heads");
        const int32_t nkv = (int32_t)k.i("kv"), hd = (int32_t)k.i("hd");
        const int32_t window = (int32_t)k.i("window");
        const size_t kvn = (size_t)n_ctx * nkv * hd;
        float *q = rand_f32(ar, (size_t)tokens * nh * hd, 1.0f / sqrtf((float)hd));
        uint16_t *kc = ar.alloc<uint16_t>(kvn), *vc = ar.alloc<uint16_t>(kvn);
        if (kc)
            LAUNCH(fill_f16_kernel, fill_grid(kvn), dim3(256), 0, (cudaStream_t)0, kc, kvn,
                   g_seed++, 1.0f);
        if (vc)
            LAUNCH(fill_f16_kernel, fill_grid(kvn), dim3(256), 0, (cudaStream_t)0, vc, kvn,
                   g_seed++, 1.0f);
        float *out = ar.alloc<float>((size_t)tokens * nh * hd);
        int32_t *pos0 = dev_int(ar, p0);
        const size_t sb = slim_cuda_attention_scratch_bytes(tokens, nh, hd, n_ctx);
        void *scratch = sb ? (void *)ar.alloc<unsigned char>(sb) : nullptr;
        c.launch = [=] {
            return slim_cuda_attention(out, q, kc, vc, tokens, pos0, nh, nkv, hd, window, 0.0f,
                                       n_ctx, scratch, nullptr);
        };
        c.out = out, c.out_n = (size_t)tokens * nh * hd;
        const double keys = (double)(p0 + tokens);
        c.est_bytes = 4.0 * keys * nkv * hd + 8.0 * tokens * nh * hd;
        c.est_flops = 4.0 * nh * hd * tokens * keys;
    } else if (k.op == "attention_paged") {
        // "pos=P": tokens sequences each querying at P (a decode step);
        // "pos=0..P": one sequence's prompt.  Blocks of 16, tables in order.
        const int32_t tokens = (int32_t)k.i("tokens"), n_ctx = (int32_t)k.i("n_ctx");
        const int32_t nh = (int32_t)k.i("heads"), nkv = (int32_t)k.i("kv");
        const int32_t hd = (int32_t)k.i("hd"), window = (int32_t)k.i("window");
        const bool prompt = k.str("pos").find("..") != std::string::npos;
        const int32_t p = (int32_t)strtol(k.str("pos").c_str(), nullptr, 10);
        const int32_t bs = 16, nb = (n_ctx + bs - 1) / bs, S = prompt ? 1 : tokens;
        std::vector<int32_t> h_pos(tokens), h_seq(tokens), h_tab((size_t)S * (nb + 1));
        for (int32_t t = 0; t < tokens; t++) {
            h_pos[t] = prompt ? p + t : p;
            h_seq[t] = prompt ? 0 : t;
        }
        for (int32_t s = 0; s < S; s++) {
            h_tab[s] = S + s * nb;
            for (int32_t b = 0; b < nb; b++)
                h_tab[S + s * nb + b] = s * nb + b;
        }
        const size_t kvn = (size_t)S * nb * bs * nkv * hd;
        float *q = rand_f32(ar, (size_t)tokens * nh * hd, 1.0f / sqrtf((float)hd));
        uint16_t *kc = ar.alloc<uint16_t>(kvn), *vc = ar.alloc<uint16_t>(kvn);
        if (kc)
            LAUNCH(fill_f16_kernel, fill_grid(kvn), dim3(256), 0, (cudaStream_t)0, kc, kvn,
                   g_seed++, 1.0f);
        if (vc)
            LAUNCH(fill_f16_kernel, fill_grid(kvn), dim3(256), 0, (cudaStream_t)0, vc, kvn,
                   g_seed++, 1.0f);
        int32_t *d_pos = ar.alloc<int32_t>((size_t)tokens),
                *d_seq = ar.alloc<int32_t>((size_t)tokens);
        int32_t *d_tab = ar.alloc<int32_t>(h_tab.size());
        if (d_pos && d_seq && d_tab &&
            !(CK(cudaMemcpy(d_pos, h_pos.data(), 4 * h_pos.size(), cudaMemcpyHostToDevice)) &&
              CK(cudaMemcpy(d_seq, h_seq.data(), 4 * h_seq.size(), cudaMemcpyHostToDevice)) &&
              CK(cudaMemcpy(d_tab, h_tab.data(), 4 * h_tab.size(), cudaMemcpyHostToDevice))))
            return c.why = "copy failed", c;
        float *out = ar.alloc<float>((size_t)tokens * nh * hd);
        const bool split = k.str("mode") == "split";
        const size_t sb =
            split ? slim_cuda_attention_paged_scratch_bytes(tokens, nh, hd, n_ctx) : 0;
        void *scratch = sb ? (void *)ar.alloc<unsigned char>(sb) : nullptr;
        c.launch = [=] {
            return slim_cuda_attention_paged(out, q, kc, vc, tokens, d_pos, d_seq, d_tab, d_tab, bs,
                                             nh, nkv, hd, window, 0.0f, n_ctx, scratch, nullptr);
        };
        c.out = out, c.out_n = (size_t)tokens * nh * hd;
        double keys = 0;
        for (int32_t t = 0; t < tokens; t++)
            keys += window > 0 && h_pos[t] + 1 > window ? window : h_pos[t] + 1;
        c.est_bytes =
            4.0 * (prompt ? (double)(p + tokens) : keys) * nkv * hd + 8.0 * tokens * nh * hd;
        c.est_flops = 4.0 * nh * hd * keys;
    } else if (k.op == "add" || k.op == "scale" || k.op == "act_mul") {
        float *y = rand_f32(ar, (size_t)n, 1.0f), *x = rand_f32(ar, (size_t)n, 1.0f);
        if (k.op == "add")
            c.launch = [=] { return slim_cuda_add(y, x, n, nullptr); };
        else if (k.op == "scale")
            c.launch = [=] { return slim_cuda_scale(y, 0.5f, n, nullptr); };
        else
            c.launch = [=] { return slim_cuda_act_mul(y, x, n, SLIM_CUDA_ACT_SILU, nullptr); };
        c.est_bytes = (k.op == "scale" ? 8.0 : 12.0) * n;
    } else if (k.op == "get_rows") {
        const Fmt *f = fmt_by_name(k.str("dtype"));
        if (!f) return c.why = "unknown dtype", c;
        const int64_t ids_n = k.i("ids"), table_rows = 4096;
        unsigned char *table = rand_weights(ar, f, n, table_rows);
        int32_t *ids = ar.alloc<int32_t>((size_t)ids_n);
        if (ids)
            LAUNCH(fill_i32_kernel, fill_grid((size_t)ids_n), dim3(256), 0, (cudaStream_t)0, ids,
                   (size_t)ids_n, g_seed++, (int32_t)table_rows);
        float *out = ar.alloc<float>((size_t)(ids_n * n));
        const size_t rs = row_size(f, n);
        c.launch = [=] {
            return slim_cuda_get_rows(f->id, out, table, rs, n, ids, ids_n, 1.0f, nullptr);
        };
        c.est_bytes = (double)ids_n * ((double)rs + 4.0 * n);
        c.out = out, c.out_n = (size_t)(ids_n * n);
    } else if (k.op == "argmax") {
        float *x = rand_f32(ar, (size_t)n, 1.0f);
        int32_t *out = ar.alloc<int32_t>(1);
        void *scratch = ar.alloc<unsigned char>(slim_cuda_sample_scratch_bytes(n));
        c.launch = [=] { return slim_cuda_argmax(x, n, out, scratch, nullptr); };
        c.est_bytes = 4.0 * n;
    } else {
        c.why = "no launcher for this op in bench_kernels";
    }
    if (g_failed && c.why.empty()) c.why = "setup failed";
    return c;
}

// ------------------------------------------------------------ work list
struct Item {
    std::string key;
    double pred_us = -1, bytes = -1, flops = -1;
};

// Without --pred: Llama-3.1-8B Q4_K_M shapes (decode at context 4096, prefill 512).
const char *BUILTIN[] = {
    "rmsnorm n=4096 rows=1",
    "quantize vdt=Q8_K n=4096 rows=1",
    "matvec dtype=Q4_K n=4096 rows=4096",
    "matvec dtype=Q4_K n=4096 rows=1024",
    "matvec dtype=Q6_K n=4096 rows=1024",
    "matvec dtype=Q4_K n=4096 rows=14336",
    "matvec dtype=Q6_K n=14336 rows=4096",
    "matvec dtype=Q8_0 n=4096 rows=14336",
    "matvec dtype=Q6_K n=4096 rows=128256",
    "rope rows=1 heads=32 hd=128",
    "kv_store tokens=1 width=1024",
    "attention tokens=1 pos0=4095 n_ctx=4096 heads=32 kv=8 hd=128 window=0",
    "add n=4096",
    "act_mul n=14336",
    "argmax n=128256",
    "gemm dtype=Q4_K n=4096 rows=4096 tokens=512",
    "gemm dtype=Q4_K n=4096 rows=14336 tokens=512",
    "gemm dtype=Q6_K n=14336 rows=4096 tokens=512",
    "gemm dtype=Q8_0 n=4096 rows=14336 tokens=512",
    "attention tokens=512 pos0=0 n_ctx=512 heads=32 kv=8 hd=128 window=0",
};

bool read_pred(const char *path, std::vector<Item> *items) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_kernels: cannot open %s\n", path);
        return false;
    }
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\r\n")] = 0;
        Item it;
        char *save = nullptr;
        char *tok = strtok_r(line, "\t", &save);
        if (!tok) continue;
        it.key = tok;
        if ((tok = strtok_r(nullptr, "\t", &save))) it.pred_us = atof(tok);
        if ((tok = strtok_r(nullptr, "\t", &save))) it.bytes = atof(tok);
        if ((tok = strtok_r(nullptr, "\t", &save))) it.flops = atof(tok);
        items->push_back(it);
    }
    fclose(f);
    return true;
}

void usage() {
    fputs("usage: bench_kernels [--pred FILE] [--reps N] [--warmup N] [--filter TEXT] "
          "[--no-flush] [--cublas]\n",
          stderr);
}

} // namespace

int main(int argc, char **argv) {
    const char *pred = nullptr, *filter = nullptr;
    int reps = 20, warmup = 3;
    bool flush = true, cublas = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pred") && i + 1 < argc)
            pred = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--no-flush"))
            flush = false;
        else if (!strcmp(argv[i], "--cublas"))
            cublas = true;
        else {
            usage();
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    std::vector<Item> items;
    if (pred) {
        if (!read_pred(pred, &items)) return 1;
    } else {
        for (const char *k : BUILTIN) {
            Item it;
            it.key = k;
            items.push_back(it);
        }
    }

    if (cublas) { // each GEMM shape again through cuBLAS, right after it
        std::vector<Item> with;
        for (const Item &it : items) {
            with.push_back(it);
            if (it.key.compare(0, 5, "gemm ") == 0) {
                Item cb;
                cb.key = "gemm_cublas " + it.key.substr(5); // no prediction; its own byte count
                with.push_back(cb);
            }
        }
        items.swap(with);
    }
#if SLIM_BENCH_CUBLAS
    if (cublas && cublasCreate(&g_cublas) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "bench_kernels: cublasCreate failed\n");
        return 1;
    }
#else
    if (cublas)
        fprintf(stderr, "bench_kernels: built without SLIM_BENCH_CUBLAS: --cublas ignored\n");
#endif
    cudaDeviceProp prop;
    if (!CK(cudaGetDeviceProperties(&prop, 0))) return 1;
    printf("bench_kernels: %s, %d SMs, L2 %d MiB; %d reps (median) after %d warm-up, L2 %s\n",
           prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, reps, warmup,
           flush ? "flushed before each" : "not flushed");
    const size_t flush_bytes = std::max<size_t>((size_t)prop.l2CacheSize * 2, 64u << 20);
    void *flush_buf = nullptr;
    if (flush && !CK(cudaMalloc(&flush_buf, flush_bytes))) return 1;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    printf("%-78s %10s %10s %9s %8s %10s %7s\n", "launch", "median us", "min us", "GB/s", "TFLOP/s",
           "pred us", "x pred");
    struct OpStat {
        std::string op;
        double log_sum = 0;
        int n = 0;
    };
    std::vector<OpStat> stats;
    int ran = 0;
    for (const Item &it : items) {
        if (filter && !strstr(it.key.c_str(), filter)) continue;
        const Key k = parse_key(it.key);
        Arena ar;
        Case c = prepare(k, ar);
        if (c.why.empty() && !CK(cudaDeviceSynchronize())) c.why = "setup failed";
        if (!c.why.empty()) {
            printf("%-78s skipped: %s\n", it.key.c_str(), c.why.c_str());
            if (c.why == "setup failed") g_failed = 1;
            continue;
        }
        int rc = 0;
        for (int w = 0; w < warmup && !rc; w++)
            rc = c.launch();
        std::vector<float> ms;
        for (int r = 0; r < reps && !rc; r++) {
            if (flush) CK(cudaMemsetAsync(flush_buf, r & 0xff, flush_bytes, nullptr));
            CK(cudaEventRecord(e0, nullptr));
            rc = c.launch();
            CK(cudaEventRecord(e1, nullptr));
            if (!CK(cudaEventSynchronize(e1))) break;
            float t = 0;
            CK(cudaEventElapsedTime(&t, e0, e1));
            ms.push_back(t);
        }
        if (rc || !CK(cudaDeviceSynchronize()) || ms.empty()) {
            printf("%-78s FAILED: launcher returned %d (%s)\n", it.key.c_str(), rc,
                   cudaGetErrorString((cudaError_t)rc));
            g_failed = 1;
            if (!CK(cudaGetLastError())) break; // a sticky error: nothing more can run
            continue;
        }
        if (!outputs_finite(c)) {
            printf("%-78s FAILED: NaN or Inf in the output\n", it.key.c_str());
            g_failed = 1;
            continue;
        }
        std::sort(ms.begin(), ms.end());
        const double med_us = 1e3 * ms[ms.size() / 2], min_us = 1e3 * ms[0];
        const double bytes = it.bytes >= 0 ? it.bytes : c.est_bytes;
        const double flops = it.flops >= 0 ? it.flops : c.est_flops;
        char predb[32] = "-", ratio[32] = "-";
        if (it.pred_us > 0) {
            snprintf(predb, sizeof predb, "%.2f", it.pred_us);
            snprintf(ratio, sizeof ratio, "%.2f", med_us / it.pred_us);
            auto s = std::find_if(stats.begin(), stats.end(),
                                  [&](const OpStat &o) { return o.op == k.op; });
            if (s == stats.end()) {
                stats.push_back(OpStat{k.op, 0, 0});
                s = stats.end() - 1;
            }
            s->log_sum += log(med_us / it.pred_us);
            s->n++;
        }
        printf("%-78s %10.2f %10.2f %9.1f %8.3f %10s %7s\n", it.key.c_str(), med_us, min_us,
               bytes / (med_us * 1e3), flops / (med_us * 1e6), predb, ratio);
        fflush(stdout);
        ran++;
    }
    if (!stats.empty()) {
        printf("\nmeasured / predicted, geometric mean per op:\n");
        for (const OpStat &s : stats)
            printf("  %-12s %6.2f  (%d shapes)\n", s.op.c_str(), exp(s.log_sum / s.n), s.n);
    }
    printf("bench_kernels: %d launches timed%s\n", ran, g_failed ? ", SOME FAILED" : "");
    if (flush_buf) cudaFree(flush_buf);
#if SLIM_BENCH_CUBLAS
    if (g_cublas) cublasDestroy(g_cublas);
#endif
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return g_failed ? 1 : 0;
}
