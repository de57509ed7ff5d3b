/* Repacked vs plain CPU kernels through whole models (issue 21: the repacked
 * kernels once changed the default model's logits).  For every format the CPU
 * repacks at load (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16), each
 * model is loaded converted to it (slim_model_params.weight_type, the
 * quantizer of test_weight_type.c) twice, repacked (the default) and with
 * SLIM_CPU_REPACK=0, and the logits of a teacher-forced sequence are compared
 * position by position, and again when the same tokens are decoded one by one:
 * - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K: bitwise (memcmp).  Where the
 *   level repacks (AVX-512 VNNI), its plain kernels compute exactly the
 *   repacked ones' sums (exact integer block sums, one fma per block per row
 *   and for Q4_1, Q5_1, Q4_K, Q5_K one more for the mins, in order: legacy_x16.h,
 *   q4_1_x16.h, q5_x16.h, q4_k_x16.h, q6_k_x16.h); elsewhere nothing is
 *   repacked.
 * - F16, BF16: within RP_HALF_TOL x the logits' rms at every position (the
 *   repacked kernel sums each row in element order, one fma chain, which the
 *   plain path cannot do at speed: it sums 16 lanes.  Measured at most 2.9e-4,
 *   gemma2 BF16 with its softcaps; 8.7e-5 elsewhere).
 * Models: the seven synthetic architectures of tests/data (64 wide: the
 * K-quants fall back to Q5_0 / Q8_0 there, as llama-quantize does) and a
 * Gemma 3 model 256 wide written here, where every matrix takes every format.
 * Q2_K and Q3_K, which slim does not quantize to, through the same Gemma 3
 * written with random blocks of each: bitwise, as the first group (q23_k_x16.h).
 * The test checks that the repacked load did repack (where the level can) and
 * the plain one did not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "core/fp16.h"
#include "format/gguf_write.h"
#include "model/model.h"
#include "quant/blocks.h"
#include "rng.h"
#include "slim.h"
#include "suites.h"

enum { RP_TOKENS = 10, RP_N_CTX = 32 };
#define RP_HALF_TOL 1e-3

static const char *const rp_types[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                       "q4_k", "q5_k", "q6_k", "f16",  "bf16"};
enum { RP_N_TYPES = sizeof rp_types / sizeof rp_types[0] };

static const char *const rp_synth[] = {"gemma",   "gemma2", "gemma3", "llama3",
                                       "mistral", "phi3",   "qwen2"};
enum { RP_N_SYNTH = sizeof rp_synth / sizeof rp_synth[0] };

/* the 256-wide Gemma 3 */
enum { RW_EMBD = 256, RW_FF = 512, RW_HEADS = 4, RW_KV = 1, RW_HD = 64, RW_VOCAB = 512 };
enum { RW_LAYERS = 2 };

static char rp_wide[256];

/* A norm vector (ne1 0) in F32, a matrix in `type` */
static void add_tensor(slim_gguf_writer *w, const char *name, int64_t ne0, int64_t ne1,
                       slim_dtype type) {
    const int64_t ne[2] = {ne0, ne1};
    ck_assert_int_eq(slim_gguf_writer_tensor(w, name, ne1 ? type : SLIM_DTYPE_F32, ne1 ? 2 : 1, ne),
                     SLIM_OK);
}

/* Random blocks of Q2_K or Q3_K, scaled so that activations stay O(1)
 * (slim has no quantizer for these two: the wide model holds them raw). */
static void random_k_blocks(slim_dtype type, void *dst, size_t bytes) {
    uint8_t *p = dst;
    for (size_t i = 0; i < bytes; i++)
        p[i] = (uint8_t)rng_next();
    if (type == SLIM_DTYPE_Q2_K)
        for (block_q2_K *b = dst; (char *)(b + 1) <= (char *)dst + bytes; b++) {
            b->d = slim_f32_to_fp16((float)(0.002 * (rng_unif() + 0.5)));
            b->dmin = slim_f32_to_fp16((float)(0.004 * rng_unif()));
        }
    else
        for (block_q3_K *b = dst; (char *)(b + 1) <= (char *)dst + bytes; b++)
            b->d = slim_f32_to_fp16((float)(0.0015 * (rng_unif() + 0.5)));
}

/* The wide Gemma 3, its matrices and embedding F32 (converted at load) or,
 * matrix_type Q2_K / Q3_K, random blocks of that type. */
static void write_wide_gemma3(const char *path, slim_dtype matrix_type) {
    slim_gguf_writer *w = NULL;
    ck_assert_int_eq(slim_gguf_writer_create(&w), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_str(w, "general.architecture", "gemma3", 6), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.context_length", 128), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.embedding_length", RW_EMBD), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.block_count", RW_LAYERS), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.feed_forward_length", RW_FF), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.attention.head_count", RW_HEADS), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.attention.head_count_kv", RW_KV), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.attention.key_length", RW_HD), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.attention.value_length", RW_HD), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_u32(w, "gemma3.attention.sliding_window", 4), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_f32(w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f),
                     SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_f32(w, "gemma3.rope.freq_base", 1e6f), SLIM_OK);
    ck_assert_int_eq(slim_gguf_writer_kv_str(w, "tokenizer.ggml.model", "none", 4), SLIM_OK);
    add_tensor(w, "token_embd.weight", RW_EMBD, RW_VOCAB, matrix_type);
    add_tensor(w, "output_norm.weight", RW_EMBD, 0, matrix_type);
    for (int il = 0; il < RW_LAYERS; il++) {
        const struct {
            const char *fmt;
            int64_t ne0, ne1;
        } per[] = {{"blk.%d.attn_norm.weight", RW_EMBD, 0},
                   {"blk.%d.attn_q.weight", RW_EMBD, RW_HEADS * RW_HD},
                   {"blk.%d.attn_k.weight", RW_EMBD, RW_KV * RW_HD},
                   {"blk.%d.attn_v.weight", RW_EMBD, RW_KV * RW_HD},
                   {"blk.%d.attn_q_norm.weight", RW_HD, 0},
                   {"blk.%d.attn_k_norm.weight", RW_HD, 0},
                   {"blk.%d.attn_output.weight", RW_HEADS * RW_HD, RW_EMBD},
                   {"blk.%d.post_attention_norm.weight", RW_EMBD, 0},
                   {"blk.%d.ffn_norm.weight", RW_EMBD, 0},
                   {"blk.%d.ffn_gate.weight", RW_EMBD, RW_FF},
                   {"blk.%d.ffn_up.weight", RW_EMBD, RW_FF},
                   {"blk.%d.ffn_down.weight", RW_FF, RW_EMBD},
                   {"blk.%d.post_ffw_norm.weight", RW_EMBD, 0}};
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, per[i].fmt, il);
            add_tensor(w, name, per[i].ne0, per[i].ne1, matrix_type);
        }
    }
    ck_assert_int_eq(slim_gguf_writer_begin(w, path), SLIM_OK);
    rng_state = 0x21u;
    const uint64_t n = slim_gguf_writer_tensor_count(w);
    for (uint64_t i = 0; i < n; i++) {
        const size_t bytes = slim_gguf_writer_tensor_size(w, i), floats = bytes / sizeof(float);
        /* norms near 1; matrices scaled so activations stay O(1) */
        const bool norm = floats == RW_EMBD || floats == RW_HD;
        if (!norm && matrix_type != SLIM_DTYPE_F32) {
            void *blocks = malloc(bytes);
            ck_assert_ptr_nonnull(blocks);
            random_k_blocks(matrix_type, blocks, bytes);
            ck_assert_int_eq(slim_gguf_writer_data(w, blocks, bytes), SLIM_OK);
            free(blocks);
            continue;
        }
        float *x = malloc(floats * sizeof *x);
        ck_assert_ptr_nonnull(x);
        for (size_t k = 0; k < floats; k++)
            x[k] =
                norm ? 1.0f + 0.1f * (float)(rng_unif() - 0.5) : (float)((rng_unif() - 0.5) * 0.25);
        ck_assert_int_eq(slim_gguf_writer_data(w, x, floats * sizeof *x), SLIM_OK);
        free(x);
    }
    ck_assert_int_eq(slim_gguf_writer_finish(w), SLIM_OK);
    slim_gguf_writer_free(w);
}

/* Logits of RP_TOKENS teacher-forced tokens, [RP_TOKENS][n_vocab], prefilled
 * (out) and decoded one at a time (dec), the weights converted to `type` (NULL:
 * as the file has them); *n_packed: the matrices repacked. */
static void run(const char *path, const char *type, bool repack, float **out, float **dec,
                int32_t *n_vocab, int *n_packed) {
    slim_model_params mp = slim_model_default_params();
    mp.weight_type = type;
    if (!repack) setenv("SLIM_CPU_REPACK", "0", 1);
    slim_model *m = NULL;
    const slim_status st = slim_model_load(path, &mp, &m);
    unsetenv("SLIM_CPU_REPACK");
    ck_assert_msg(st == SLIM_OK, "%s as %s: %s", path, type ? type : "is", slim_last_error());
    const size_t nt = slim_model_tensors(m, NULL);
    slim_tensor **all = malloc(nt * sizeof *all);
    ck_assert_ptr_nonnull(all);
    slim_model_tensors(m, all);
    *n_packed = 0;
    for (size_t i = 0; i < nt; i++)
        *n_packed += all[i]->packed != NULL;
    free(all);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    *n_vocab = info.n_vocab;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = RP_N_CTX;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    slim_token tokens[RP_TOKENS];
    for (int t = 0; t < RP_TOKENS; t++)
        tokens[t] = (slim_token)((t * 37 + 5) % info.n_vocab);
    const size_t V = (size_t)info.n_vocab;
    *out = malloc(RP_TOKENS * V * sizeof **out);
    *dec = malloc(RP_TOKENS * V * sizeof **dec);
    ck_assert(*out && *dec);
    ck_assert_int_eq(slim_prefill(ctx, tokens, RP_TOKENS, *out), SLIM_OK);
    slim_context_reset(ctx);
    for (int t = 0; t < RP_TOKENS; t++) {
        ck_assert_int_eq(slim_decode(ctx, tokens[t]), SLIM_OK);
        memcpy(*dec + (size_t)t * V, slim_get_logits(ctx), V * sizeof **dec);
    }
    slim_context_free(ctx);
    slim_model_free(m);
}

/* Position by position: bitwise, or within tol x rms of the packed logits. */
static void compare(const char *what, const char *type, const char *how, const float *packed,
                    const float *plain, size_t V, bool half) {
    for (int t = 0; t < RP_TOKENS; t++) {
        const float *a = packed + (size_t)t * V, *b = plain + (size_t)t * V;
        if (!half) {
            ck_assert_msg(memcmp(a, b, V * sizeof *a) == 0,
                          "%s as %s, %s: position %d: repacked and plain logits differ", what, type,
                          how, t);
            continue;
        }
        double ss = 0, worst = 0;
        for (size_t i = 0; i < V; i++) {
            ss += (double)a[i] * a[i];
            worst = fmax(worst, fabs((double)a[i] - b[i]));
        }
        const double rms = sqrt(ss / (double)V);
        ck_assert_msg(rms > 0 && worst <= RP_HALF_TOL * rms,
                      "%s as %s, %s: position %d: max |repacked - plain| %.3g > %.1e x rms %.3g",
                      what, type, how, t, worst, RP_HALF_TOL, rms);
    }
}

/* The matrices the repacked load repacked; type NULL: the file's own types. */
static int check_model(const char *what, const char *path, const char *type) {
    float *pk = NULL, *pk_dec = NULL, *pl = NULL, *pl_dec = NULL;
    int32_t V = 0, V2 = 0;
    int n_pk = 0, n_pl = 0;
    run(path, type, true, &pk, &pk_dec, &V, &n_pk);
    run(path, type, false, &pl, &pl_dec, &V2, &n_pl);
    if (!type) type = "is";
    ck_assert_int_eq(V, V2);
    /* the level repacks every format here or none (AVX-512 VNNI) */
    const bool can = slim_cpu_kernels_active()->q4_0x16_available();
    ck_assert_msg(can || n_pk == 0, "%s as %s: %d matrices repacked (the level cannot)", what, type,
                  n_pk);
    ck_assert_msg(n_pl == 0, "%s as %s: %d matrices repacked with SLIM_CPU_REPACK=0", what, type,
                  n_pl);
    const bool half = strcmp(type, "f16") == 0 || strcmp(type, "bf16") == 0;
    compare(what, type, "prefill", pk, pl, (size_t)V, half);
    compare(what, type, "decode", pk_dec, pl_dec, (size_t)V, half);
    free(pk);
    free(pk_dec);
    free(pl);
    free(pl_dec);
    return n_pk;
}

/* One format (the loop index) over every model. */
START_TEST(test_repack_vs_plain) {
    const char *type = rp_types[_i];
    for (int s = 0; s < RP_N_SYNTH; s++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/synth_%s.gguf", rp_synth[s]);
        check_model(rp_synth[s], path, type);
    }
    /* 7 matrices a layer and the output, all of this format; where the level
     * repacks, all of them are */
    const int n_pk = check_model("gemma3 256 wide", rp_wide, type);
    const int want = slim_cpu_kernels_active()->q4_0x16_available() ? 7 * RW_LAYERS + 1 : 0;
    ck_assert_msg(n_pk == want, "gemma3 256 wide as %s: %d matrices repacked, want %d", type, n_pk,
                  want);
}
END_TEST

/* Q2_K and Q3_K (the loop index), which slim cannot quantize to: the wide
 * Gemma 3 written with random blocks of the format, every matrix and the
 * tied output repacked where the level can. */
START_TEST(test_repack_raw_k) {
    const slim_dtype type = _i ? SLIM_DTYPE_Q3_K : SLIM_DTYPE_Q2_K;
    char path[256];
    snprintf(path, sizeof path, "/tmp/slim_repack_model_%d_%s.gguf", (int)getpid(),
             _i ? "q3_k" : "q2_k");
    write_wide_gemma3(path, type);
    const int n_pk = check_model(_i ? "gemma3 256 wide Q3_K" : "gemma3 256 wide Q2_K", path, NULL);
    remove(path);
    const int want = slim_cpu_kernels_active()->q4_0x16_available() ? 7 * RW_LAYERS + 1 : 0;
    ck_assert_msg(n_pk == want, "gemma3 256 wide %s: %d matrices repacked, want %d",
                  _i ? "Q3_K" : "Q2_K", n_pk, want);
}
END_TEST

static void rp_setup(void) {
    snprintf(rp_wide, sizeof rp_wide, "/tmp/slim_repack_model_%d.gguf", (int)getpid());
    write_wide_gemma3(rp_wide, SLIM_DTYPE_F32);
}

static void rp_teardown(void) { remove(rp_wide); }

Suite *suite_repack_model(void) {
    Suite *s = suite_create("repack_model");
    TCase *tc = tcase_create("repack_model");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, rp_setup, rp_teardown);
    tcase_add_loop_test(tc, test_repack_vs_plain, 0, RP_N_TYPES);
    tcase_add_loop_test(tc, test_repack_raw_k, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
