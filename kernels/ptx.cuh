// ptx.cuh: every inline PTX instruction the kernels use, each behind a device
// function.  Under nvcc's device pass (__CUDA_ARCH__) it is the instruction;
// under the host compiler (cudasim) it is a warp-collective emulation built
// from the PTX ISA's per-lane fragment layout tables (section "Matrix
// Fragments for mma.m16n8k16 with floating point type" and "ldmatrix").
// The emulation computes in f32 in k order: it checks layouts, not the
// tensor cores' rounding.
#ifndef SLIM_KERNELS_PTX_CUH
#define SLIM_KERNELS_PTX_CUH

#include "common.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "kernels/ptx.cuh needs sm_80 or newer (mma.m16n8k16 with f16/bf16)"
#endif

namespace ptx_layout {
// PTX ISA, mma.m16n8k16, .f16/.bf16 multiplicands, f32 accumulators.
// groupID = lane >> 2, threadID_in_group = lane % 4.
// A (16x16, row-major fragment): a0..a7, two per .b32 register (low half first).
__host__ __device__ constexpr int mma_a_row(int lane, int i) {
    return (lane >> 2) + ((i & 2) ? 8 : 0);
}
__host__ __device__ constexpr int mma_a_col(int lane, int i) {
    return (lane % 4) * 2 + (i & 1) + (i >= 4 ? 8 : 0);
}
// B (16x8, k x n): b0..b3, two per register.
__host__ __device__ constexpr int mma_b_row(int lane, int i) {
    return (lane % 4) * 2 + (i & 1) + (i >= 2 ? 8 : 0);
}
__host__ __device__ constexpr int mma_b_col(int lane, int /*i*/) { return lane >> 2; }
// C/D (16x8 f32): c0..c3.
__host__ __device__ constexpr int mma_c_row(int lane, int i) {
    return (lane >> 2) + (i >= 2 ? 8 : 0);
}
__host__ __device__ constexpr int mma_c_col(int lane, int i) { return (lane % 4) * 2 + (i & 1); }
} // namespace ptx_layout

#if !defined(__CUDACC__)
namespace cudasim {
struct MmaLane {
    uint32_t a[4], b[2];
    float c[4], d[4];
};
inline float bits_to_f(uint16_t h, bool bf16) {
    if (bf16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}
template <bool BF16> inline void mma_m16n8k16_complete(void *const *lanes, unsigned mask) {
    (void)mask;
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
        const MmaLane *d = static_cast<const MmaLane *>(lanes[l]);
        for (int i = 0; i < 8; i++)
            A[ptx_layout::mma_a_row(l, i)][ptx_layout::mma_a_col(l, i)] =
                bits_to_f((uint16_t)(d->a[i / 2] >> (16 * (i & 1))), BF16);
        for (int i = 0; i < 4; i++)
            B[ptx_layout::mma_b_row(l, i)][ptx_layout::mma_b_col(l, i)] =
                bits_to_f((uint16_t)(d->b[i / 2] >> (16 * (i & 1))), BF16);
        for (int i = 0; i < 4; i++)
            C[ptx_layout::mma_c_row(l, i)][ptx_layout::mma_c_col(l, i)] = d->c[i];
    }
    for (int l = 0; l < 32; l++) {
        MmaLane *d = static_cast<MmaLane *>(lanes[l]);
        for (int i = 0; i < 4; i++) {
            int r = ptx_layout::mma_c_row(l, i), c = ptx_layout::mma_c_col(l, i);
            float acc = C[r][c];
            for (int k = 0; k < 16; k++)
                acc += A[r][k] * B[k][c];
            d->d[i] = acc;
        }
    }
}
template <bool BF16>
inline void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                         const char *file, int line) {
    if (warp_exist_mask() != 0xffffffffu)
        device_error(file, line, "mma.sync needs all 32 lanes of the warp");
    MmaLane x;
    memcpy(x.a, a, sizeof x.a);
    memcpy(x.b, b, sizeof x.b);
    memcpy(x.c, c, sizeof x.c);
    warp_collective(0xffffffffu, BF16 ? "mma.m16n8k16.bf16" : "mma.m16n8k16.f16", file, line, &x,
                    mma_m16n8k16_complete<BF16>);
    memcpy(d, x.d, sizeof x.d);
}

struct LdmLane {
    const unsigned char *p;
    uint32_t r[4];
    const char *file;
    int line;
};
template <int NUM, bool TRANS> inline void ldmatrix_complete(void *const *lanes, unsigned mask) {
    (void)mask;
    const unsigned char *row[32];
    for (int m = 0; m < NUM; m++)
        for (int r = 0; r < 8; r++) {
            const LdmLane *s = static_cast<const LdmLane *>(lanes[m * 8 + r]);
            if ((uintptr_t)s->p & 15)
                device_error(s->file, s->line, "ldmatrix: row address not 16-byte aligned");
            row[m * 8 + r] = s->p;
        }
    for (int l = 0; l < 32; l++) {
        LdmLane *d = static_cast<LdmLane *>(lanes[l]);
        for (int m = 0; m < NUM; m++) {
            uint16_t lo, hi;
            if (!TRANS) { // row l/4, columns 2*(l%4) and +1
                memcpy(&lo, row[m * 8 + l / 4] + 4 * (l % 4), 2);
                memcpy(&hi, row[m * 8 + l / 4] + 4 * (l % 4) + 2, 2);
            } else { // column l/4, rows 2*(l%4) and +1
                memcpy(&lo, row[m * 8 + 2 * (l % 4)] + 2 * (l / 4), 2);
                memcpy(&hi, row[m * 8 + 2 * (l % 4) + 1] + 2 * (l / 4), 2);
            }
            d->r[m] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
}
template <int NUM, bool TRANS>
inline void ldmatrix(uint32_t *r, const void *smem_row, const char *file, int line) {
    if (warp_exist_mask() != 0xffffffffu)
        device_error(file, line, "ldmatrix needs all 32 lanes of the warp");
    LdmLane x;
    x.p = static_cast<const unsigned char *>(smem_row);
    x.file = file;
    x.line = line;
    static const char *names[2][3] = {
        {"ldmatrix.x1", "ldmatrix.x2", "ldmatrix.x4"},
        {"ldmatrix.x1.trans", "ldmatrix.x2.trans", "ldmatrix.x4.trans"}};
    warp_collective(0xffffffffu,
                    names[TRANS][NUM == 1   ? 0
                                 : NUM == 2 ? 1
                                            : 2],
                    file, line, &x, ldmatrix_complete<NUM, TRANS>);
    for (int i = 0; i < NUM; i++)
        r[i] = x.r[i];
}
} // namespace cudasim
#define CUDASIM_HERE __FILE__, __LINE__
#endif

// D = A * B + C, m16n8k16, A row-major / B column-major fragments, f32 accumulate.
// a: 4 registers (8 f16), b: 2 registers (4 f16), c/d: 4 floats (d may alias c).
__device__ __forceinline__ void mma_m16n8k16_f16(float d[4], const uint32_t a[4],
                                                 const uint32_t b[2], const float c[4]) {
#if defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                   "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif !defined(__CUDACC__)
    cudasim::mma_m16n8k16<false>(d, a, b, c, CUDASIM_HERE);
#endif
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4],
                                                  const uint32_t b[2], const float c[4]) {
#if defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                   "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif !defined(__CUDACC__)
    cudasim::mma_m16n8k16<true>(d, a, b, c, CUDASIM_HERE);
#endif
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16: lane 8*m + r passes
// the (16-byte aligned, shared-memory) address of row r of matrix m; register
// m of lane l receives row l/4, columns 2*(l%4)..+1 of matrix m (.trans:
// column l/4, rows 2*(l%4)..+1).
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem_row) {
#if defined(__CUDA_ARCH__)
    unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#elif !defined(__CUDACC__)
    cudasim::ldmatrix<4, false>(r, smem_row, CUDASIM_HERE);
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem_row) {
#if defined(__CUDA_ARCH__)
    unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#elif !defined(__CUDACC__)
    cudasim::ldmatrix<4, true>(r, smem_row, CUDASIM_HERE);
#endif
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void *smem_row) {
#if defined(__CUDA_ARCH__)
    unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(a));
#elif !defined(__CUDACC__)
    cudasim::ldmatrix<2, false>(r, smem_row, CUDASIM_HERE);
#endif
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void *smem_row) {
#if defined(__CUDA_ARCH__)
    unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(a));
#elif !defined(__CUDACC__)
    cudasim::ldmatrix<2, true>(r, smem_row, CUDASIM_HERE);
#endif
}

#endif // SLIM_KERNELS_PTX_CUH
