// attention.cuh: what attention_prefill.cu (flash attention on tensor cores)
// and attention_decode.cu (split-KV decode) share: the argument pack, the key
// range a query sees, checked 16-byte loads and f16 packing.
//
// Semantics are slim_cpu_attention's (lib/backend/cpu/attention.c): query t of
// n_tokens sits at position pos = pos0 + t and sees keys j with
// max(0, pos - window + 1) (window > 0) <= j <= pos; head h reads kv head
// h / (n_head / n_head_kv); softcap > 0 maps a score s to softcap * tanh(s /
// softcap) before the softmax.  pos0 is read on the device (one int32), so a
// captured decode step replays at every position: it decides no grid size,
// only which blocks find work.
#ifndef SLIM_KERNELS_ATTENTION_CUH
#define SLIM_KERNELS_ATTENTION_CUH

#include "common.cuh"
#include "util.cuh"

namespace slim_attn {

struct Args {
    float *out;        // [n_tokens][n_head * head_dim]
    const float *q;    // [n_tokens][n_head * head_dim], already scaled
    const uint16_t *k; // fp16 bits [n_ctx][n_head_kv * head_dim]
    const uint16_t *v;
    const int32_t *pos0; // device, one int32
    int32_t n_tokens, n_head, n_head_kv, head_dim, window, n_ctx;
    float softcap;
};

// n_tokens up to this take the split-KV decode path, larger ones the tensor-core one.
constexpr int DECODE_MAX_TOKENS = 4;

// Decode splits the key range [0, n_ctx) into chunks of chunk_keys(n_ctx) keys
// (a multiple of DEC_TILE, at most DEC_MAX_CHUNKS chunks); one block per chunk.
constexpr int DEC_TILE = 128;
constexpr int DEC_MAX_CHUNKS = 128;
__host__ __device__ inline int32_t chunk_keys(int32_t n_ctx) {
    const int32_t tiles = (n_ctx + DEC_TILE - 1) / DEC_TILE;
    return DEC_TILE * ((tiles + DEC_MAX_CHUNKS - 1) / DEC_MAX_CHUNKS);
}
__host__ __device__ inline int32_t n_chunks(int32_t n_ctx) {
    const int32_t c = chunk_keys(n_ctx);
    return (n_ctx + c - 1) / c;
}

// First key the query at `pos` sees.
__device__ __forceinline__ int32_t first_key(int32_t pos, int32_t window) {
    return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// Reads *pos0 and checks that the cache holds the rows this call needs; a bad
// position is a caller bug that would read out of bounds: trap.
__device__ __forceinline__ int32_t read_pos0(const Args &a) {
    const int32_t p = *a.pos0;
    if (p < 0 || p > a.n_ctx - a.n_tokens) __trap();
    return p;
}

__device__ __forceinline__ float softcap_score(float s, float softcap) {
    return softcap > 0.0f ? softcap * tanhf(s / softcap) : s;
}

// 16 bytes (8 fp16) from 16-byte aligned global memory.
__device__ __forceinline__ uint4 ld_u16x8(const uint16_t *p) {
    SLIM_CHECK_ALIGN(p, 16, "ld_u16x8");
    return __ldg(reinterpret_cast<const uint4 *>(p));
}

// Two floats to f16 (round to nearest), low half first.
__device__ __forceinline__ uint32_t pack_f16x2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

__device__ __forceinline__ float2 unpack_f16x2(uint32_t u) {
    return make_float2(__half2float(__ushort_as_half((unsigned short)(u & 0xffff))),
                       __half2float(__ushort_as_half((unsigned short)(u >> 16))));
}

} // namespace slim_attn

// attention_decode.cu: the split-KV path (n_tokens <= DECODE_MAX_TOKENS), with
// slim_attn_decode_scratch_bytes() of scratch.  Both launchers take checked
// arguments (slim_cuda_attention in attention_prefill.cu checks them) and
// return 0 or a cudaError_t value.
size_t slim_attn_decode_scratch_bytes(int32_t n_tokens, int32_t n_head, int32_t head_dim,
                                      int32_t n_ctx);
int slim_attn_decode_launch(const slim_attn::Args &a, void *scratch, cudaStream_t stream);
// attention_prefill.cu: the tensor-core path.
int slim_attn_prefill_launch(const slim_attn::Args &a, cudaStream_t stream);

#endif // SLIM_KERNELS_ATTENTION_CUH
