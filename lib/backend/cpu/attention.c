/* CPU attention over the paged KV cache (fp16, or F32): one (token, head) pair per work item,
 * scores in a per-thread row, a max-subtracted softmax, then the weighted sum
 * of values.  Each query reads its own sequence's keys 0 .. pos through its
 * block table (ex->batch), in ascending position, so its result depends only
 * on its sequence and position, never on what else is in the step.  Causal,
 * GQA, optional sliding window and score softcap.  AVX-512
 * builds with an fp16 cache take the grouped, online-softmax path below
 * (slim_cpu_attention picks it). */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/vec_f16.h"
#include "quant/dtype.h"

/* Which cache element type the worker reads (the args hold plain pointers). */
typedef struct attn_job {
    const slim_attn_args *a;
    const slim_batch *b;
    bool f32;
} attn_job;

/* Keys whose cache offsets are found together (slim_batch_kv_rows: one
 * division per chunk instead of one per key). */
enum { KV_CHUNK = 64 };

static void attention_worker(void *arg, int ith, int nth) {
    const attn_job *job = arg;
    const slim_attn_args *a = job->a;
    const uint16_t *kh = a->k_cache, *vh = a->v_cache;
    const float *kf = a->k_cache, *vf = a->v_cache;
    const int32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int64_t kv_width = (int64_t)a->n_head_kv * hd, n_items = (int64_t)a->n_tokens * a->n_head;
    float *scores = a->scratch + (size_t)ith * (size_t)a->n_ctx;
    int64_t rows[KV_CHUNK]; /* a chunk of keys' cache offsets */
    for (int64_t item = ith; item < n_items; item += nth) {
        const int32_t t = (int32_t)(item / a->n_head), h = (int32_t)(item % a->n_head);
        const int32_t pos = job->b->pos[t], sq = job->b->seq[t], g = h / group;
        const int32_t j0 = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
        const float *q = a->q + ((int64_t)t * a->n_head + h) * hd;
        float mx = -INFINITY;
        for (int32_t jc = j0; jc <= pos; jc += KV_CHUNK) {
            const int32_t nj = pos - jc + 1 < KV_CHUNK ? pos - jc + 1 : KV_CHUNK;
            slim_batch_kv_rows(job->b, sq, jc, nj, kv_width, rows);
            for (int32_t jj = 0; jj < nj; jj++) {
                const int64_t at = rows[jj] + g * hd;
                float s = job->f32 ? slim_traits_f32.vec_dot(hd, kf + at, q)
                                   : slim_dot_f32_f16(q, kh + at, hd);
                if (a->softcap > 0) s = a->softcap * tanhf(s / a->softcap);
                scores[jc + jj] = s;
                if (s > mx) mx = s;
            }
        }
        double sum = 0;
        for (int32_t j = j0; j <= pos; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        const float inv = (float)(1.0 / sum);
        float *out = a->out + ((int64_t)t * a->n_head + h) * hd;
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int32_t jc = j0; jc <= pos; jc += KV_CHUNK) {
            const int32_t nj = pos - jc + 1 < KV_CHUNK ? pos - jc + 1 : KV_CHUNK;
            slim_batch_kv_rows(job->b, sq, jc, nj, kv_width, rows);
            for (int32_t jj = 0; jj < nj; jj++) {
                const float p = scores[jc + jj] * inv;
                const int64_t at = rows[jj] + g * hd;
                if (job->f32) {
                    for (int32_t i = 0; i < hd; i++)
                        out[i] += p * vf[at + i];
                } else {
                    slim_axpy_f16(out, p, vh + at, hd);
                }
            }
        }
    }
}

#if defined(__AVX512F__)
/* AVX-512, fp16 cache, head_dim a multiple of 32: the heads that share a KV
 * head go together (each key and value row converted once for up to AH of
 * them), and the softmax is online over chunks of AJ keys (running max and
 * sum, the output rescaled when the max grows), so no score row is stored.
 * Every head's arithmetic is the same whichever heads share its work item, so
 * a decode step gives bitwise what the same token gives inside a prefill. */
#include "backend/cpu/simd_exp.h"

enum { AH = 4, AJ = 64 };

#define ATT_INLINE static inline __attribute__((always_inline))

/* The sums of the 16 lanes of v[0..16) at once, r[m] the sum of v[x] with
 * m = 4 (x % 4) + x / 4: the lanes are paired as _mm512_reduce_add_ps pairs
 * them (i with i + 8, then + 4, + 2, + 1), so each r[m] has its bits, for 30
 * shuffles and 15 adds instead of 16 x 7 operations. */
ATT_INLINE __m512 att_sum16(const __m512 v[16]) {
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
}

/* Scores of 8 keys k[0..8) for two heads: sa[j] = qa . k[j], sb[j] = qb . k[j]:
 * per score, fmas over the head dim in order, then the lane sum of
 * _mm512_reduce_add_ps. */
ATT_INLINE void att_scores8(const float *qa, const float *qb, const uint16_t *const *k, int32_t hd,
                            float *sa, float *sb) {
    __m512 acc[16]; /* head m / 8, key m % 8 */
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++)
        acc[m] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d += 16) {
        const __m512 va = _mm512_loadu_ps(qa + d), vb = _mm512_loadu_ps(qb + d);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k[j] + d)));
            acc[j] = _mm512_fmadd_ps(va, kv, acc[j]);
            acc[8 + j] = _mm512_fmadd_ps(vb, kv, acc[8 + j]);
        }
    }
    __m512 v[16];
#pragma GCC unroll 16
    for (int x = 0; x < 16; x++)
        v[x] = acc[4 * (x % 4) + x / 4];
    const __m512 r = att_sum16(v);
    _mm256_storeu_ps(sa, _mm512_castps512_ps256(r));
    _mm256_storeu_ps(sb, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1)));
}

/* out[h][d0 .. d0 + 16 DV) += sum over the chunk's keys, in order, of
 * s[h][j] v[j]: the heads share each converted value vector. */
ATT_INLINE void att_pv(const int NH, const int DV, float s[][AJ], const int64_t *at, int32_t nj,
                       const uint16_t *vc, float *const *out, int32_t d0) {
    __m512 o[AH][4];
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 4
        for (int u = 0; u < DV; u++)
            o[h][u] = _mm512_loadu_ps(out[h] + d0 + 16 * u);
    for (int32_t jj = 0; jj < nj; jj++) {
        const uint16_t *v = vc + at[jj];
        __m512 vv[4];
#pragma GCC unroll 4
        for (int u = 0; u < DV; u++)
            vv[u] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 16 * u)));
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++) {
            const __m512 p = _mm512_set1_ps(s[h][jj]);
#pragma GCC unroll 4
            for (int u = 0; u < DV; u++)
                o[h][u] = _mm512_fmadd_ps(p, vv[u], o[h][u]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 4
        for (int u = 0; u < DV; u++)
            _mm512_storeu_ps(out[h] + d0 + 16 * u, o[h][u]);
}

ATT_INLINE void att_heads(const int NH, const slim_attn_args *a, const slim_batch *b, int32_t t,
                          int32_t h0) {
    const int32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int32_t pos = b->pos[t], sq = b->seq[t], g = h0 / group;
    const int32_t j0 = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
    const int64_t kv_width = (int64_t)a->n_head_kv * hd;
    const uint16_t *kc = (const uint16_t *)a->k_cache + g * hd;
    const uint16_t *vc = (const uint16_t *)a->v_cache + g * hd;
    const float *q[AH];
    float *out[AH], m[AH], l[AH], s[AH][AJ];
    int64_t at[AJ]; /* the chunk's key rows' offsets */
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++) {
        q[h] = a->q + ((int64_t)t * a->n_head + h0 + h) * hd;
        out[h] = a->out + ((int64_t)t * a->n_head + h0 + h) * hd;
        memset(out[h], 0, (size_t)hd * sizeof(float));
        m[h] = -INFINITY;
        l[h] = 0.0f;
    }
    for (int32_t jc = j0; jc <= pos; jc += AJ) {
        const int32_t nj = pos - jc + 1 < AJ ? pos - jc + 1 : AJ;
        slim_batch_kv_rows(b, sq, jc, nj, kv_width, at);
        int32_t jj;
        for (jj = 0; jj < nj; jj += 8) { /* AJ % 8 == 0: s[h] holds all 8 */
            const uint16_t *k[8];        /* past nj the last key again, its scores never read */
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                k[j] = kc + at[jj + j < nj ? jj + j : nj - 1];
#pragma GCC unroll 2
            for (int h = 0; h < NH; h += 2) { /* an odd last head goes as its own pair */
                const int h1 = h + 1 < NH ? h + 1 : h;
                att_scores8(q[h], q[h1], k, hd, s[h] + jj, s[h1] + jj);
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++) {
            float mc = m[h];
            if (a->softcap > 0) {
                for (jj = 0; jj < nj; jj++) {
                    s[h][jj] = a->softcap * tanhf(s[h][jj] / a->softcap);
                    if (s[h][jj] > mc) mc = s[h][jj];
                }
            } else { /* a max in any order is the same max (a NaN score skipped, as above) */
                __m512 mv = _mm512_set1_ps(mc);
                for (jj = 0; jj < nj; jj += 16) {
                    const __mmask16 mk =
                        nj - jj >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nj - jj)) - 1);
                    mv = _mm512_mask_max_ps(mv, mk, _mm512_maskz_loadu_ps(mk, s[h] + jj), mv);
                }
                mc = _mm512_reduce_max_ps(mv);
            }
            if (mc > m[h]) { /* the first chunk: m = -inf, alpha = 0 on a zero output */
                const float alpha = expf(m[h] - mc);
                l[h] *= alpha;
                const __m512 av = _mm512_set1_ps(alpha);
                for (int32_t d = 0; d < hd; d += 16)
                    _mm512_storeu_ps(out[h] + d, _mm512_mul_ps(av, _mm512_loadu_ps(out[h] + d)));
                m[h] = mc;
            }
            for (jj = 0; jj < nj; jj += 16) {
                const __mmask16 mk =
                    nj - jj >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nj - jj)) - 1);
                const __m512 e = slim_exp_f32x16(
                    _mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s[h] + jj), _mm512_set1_ps(mc)));
                _mm512_mask_storeu_ps(s[h] + jj, mk, e);
            }
        }
        /* each head's sum one chain in key order (summed in 16 lanes instead, the
         * engine and Model.generate parted on test_constrain's answer:
         * docs/PERFORMANCE.md), the heads' chains interleaved so their adds overlap */
        for (jj = 0; jj < nj; jj++)
#pragma GCC unroll 4
            for (int h = 0; h < NH; h++)
                l[h] += s[h][jj];
        if (hd % 64 == 0)
            for (int32_t d = 0; d < hd; d += 64)
                att_pv(NH, 4, s, at, nj, vc + d, out, d);
        else
            for (int32_t d = 0; d < hd; d += 32)
                att_pv(NH, 2, s, at, nj, vc + d, out, d);
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++) {
        const __m512 inv = _mm512_set1_ps(1.0f / l[h]);
        for (int32_t d = 0; d < hd; d += 16)
            _mm512_storeu_ps(out[h] + d, _mm512_mul_ps(inv, _mm512_loadu_ps(out[h] + d)));
    }
}

typedef struct attn_grouped {
    const slim_attn_args *a;
    const slim_batch *b;
    int32_t hs, n_sub; /* heads per work item, items per KV head and token */
} attn_grouped;

static void attention_grouped_worker(void *arg, int ith, int nth) {
    const attn_grouped *job = arg;
    const slim_attn_args *a = job->a;
    const int32_t group = a->n_head / a->n_head_kv;
    const int64_t per_token = (int64_t)a->n_head_kv * job->n_sub;
    const int64_t n_items = (int64_t)a->n_tokens * per_token;
    for (int64_t item = ith; item < n_items; item += nth) {
        const int32_t t = (int32_t)(item / per_token), rest = (int32_t)(item % per_token);
        const int32_t g = rest / job->n_sub, sub = rest % job->n_sub;
        const int32_t h0 = g * group + sub * job->hs;
        const int32_t nh = group - sub * job->hs < job->hs ? group - sub * job->hs : job->hs;
        switch (nh) {
        case 4: att_heads(4, a, job->b, t, h0); break;
        case 3: att_heads(3, a, job->b, t, h0); break;
        case 2: att_heads(2, a, job->b, t, h0); break;
        default: att_heads(1, a, job->b, t, h0); break;
        }
    }
}
#endif

void slim_cpu_attention(const slim_exec *ex, const slim_attn_args *a) {
#if defined(__AVX512F__)
    if (!ex->kv_f32 && a->head_dim % 32 == 0) {
        const int32_t group = a->n_head / a->n_head_kv;
        const int nth = slim_threadpool_size(ex->pool);
        attn_grouped job = {a, ex->batch, group < AH ? group : AH, 0};
        job.n_sub = (group + job.hs - 1) / job.hs;
        /* too few items for the threads (decode): one head per item */
        if ((int64_t)a->n_tokens * a->n_head_kv * job.n_sub < 2 * nth) {
            job.hs = 1;
            job.n_sub = group;
        }
        slim_threadpool_run(ex->pool, attention_grouped_worker, &job);
        return;
    }
#endif
    attn_job job = {a, ex->batch, ex->kv_f32};
    slim_threadpool_run(ex->pool, attention_worker, &job);
}
