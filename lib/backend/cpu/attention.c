/* CPU attention over the fp16 KV cache: one (token, head) pair per work item,
 * scores in a per-thread row, a max-subtracted softmax, then the weighted sum
 * of values.  Causal, GQA, optional sliding window and score softcap. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/vec_f16.h"

static void attention_worker(void *arg, int ith, int nth) {
    const slim_attn_args *a = arg;
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
            float s = slim_dot_f32_f16(q, a->k_cache + j * kv_width + g * hd, hd);
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
            slim_axpy_f16(out, p, a->v_cache + j * kv_width + g * hd, hd);
        }
    }
}

void slim_cpu_attention(const slim_exec *ex, const slim_attn_args *a) {
    slim_threadpool_run(ex->pool, attention_worker, (void *)a);
}
