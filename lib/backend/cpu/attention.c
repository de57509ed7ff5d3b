/* CPU attention over the KV cache (fp16, or F32): one (token, head) pair per work item,
 * scores in a per-thread row, a max-subtracted softmax, then the weighted sum
 * of values.  Causal, GQA, optional sliding window and score softcap. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/vec_f16.h"

static float dot_f32(const float *x, const float *y, int32_t n) {
    float s = 0;
    for (int32_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* Which cache element type the worker reads (the args hold plain pointers). */
typedef struct attn_job {
    const slim_attn_args *a;
    bool f32;
} attn_job;

static void attention_worker(void *arg, int ith, int nth) {
    const attn_job *job = arg;
    const slim_attn_args *a = job->a;
    const uint16_t *kh = a->k_cache, *vh = a->v_cache;
    const float *kf = a->k_cache, *vf = a->v_cache;
    const int32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int64_t kv_width = (int64_t)a->n_head_kv * hd, n_items = (int64_t)a->n_tokens * a->n_head;
    float *scores = a->scratch + (size_t)ith * (size_t)a->n_ctx;
    for (int64_t item = ith; item < n_items; item += nth) {
        const int32_t t = (int32_t)(item / a->n_head), h = (int32_t)(item % a->n_head);
        const int32_t pos = a->pos0 + t, g = h / group;
        const int32_t j0 = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
        const float *q = a->q + ((int64_t)t * a->n_head + h) * hd;
        float mx = -INFINITY;
        for (int32_t j = j0; j <= pos; j++) {
            const int64_t at = j * kv_width + g * hd;
            float s = job->f32 ? dot_f32(q, kf + at, hd) : slim_dot_f32_f16(q, kh + at, hd);
            if (a->softcap > 0) s = a->softcap * tanhf(s / a->softcap);
            scores[j] = s;
            if (s > mx) mx = s;
        }
        double sum = 0;
        for (int32_t j = j0; j <= pos; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        const float inv = (float)(1.0 / sum);
        float *out = a->out + ((int64_t)t * a->n_head + h) * hd;
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int32_t j = j0; j <= pos; j++) {
            const float p = scores[j] * inv;
            const int64_t at = j * kv_width + g * hd;
            if (job->f32) {
                for (int32_t i = 0; i < hd; i++)
                    out[i] += p * vf[at + i];
            } else {
                slim_axpy_f16(out, p, vh + at, hd);
            }
        }
    }
}

void slim_cpu_attention(const slim_exec *ex, const slim_attn_args *a) {
    attn_job job = {a, ex->kv_f32};
    slim_threadpool_run(ex->pool, attention_worker, &job);
}
