/* The quant module: traits table, every format's to_float and from_float
 * against the gguf Python package (tests/data/quant_golden.bin, written by
 * tools/golden/gen_quant.py), and every vec_dot against dequantize-then-dot in
 * double precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "suites.h"

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
#include "backend/cpu/kernels.h"

/* The kernels of the CPU level this process runs (SLIM_CPU forces a lower one). */
#define K (slim_cpu_kernels_active())

#define GOLDEN_PATH "tests/data/quant_golden.bin"

/* ---- golden file -------------------------------------------------------- */

enum { KIND_DEQUANT = 0, KIND_QUANT = 1 };

typedef struct {
    uint32_t kind, type, n, nbytes;
    const uint8_t *blocks;
    float *floats; /* copied out (the file holds them unaligned) */
} golden_rec;

typedef struct {
    uint8_t *data;
    golden_rec recs[64];
    int nrecs;
} golden_file;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void golden_load(golden_file *g) {
    memset(g, 0, sizeof *g);
    FILE *f = fopen(GOLDEN_PATH, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run the tests from the repository root)",
                  GOLDEN_PATH);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert(size >= 12);
    rewind(f);
    g->data = malloc((size_t)size);
    ck_assert_ptr_nonnull(g->data);
    ck_assert_uint_eq(fread(g->data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    ck_assert_msg(memcmp(g->data, "SLIMQNT1", 8) == 0, "bad magic in %s", GOLDEN_PATH);
    uint32_t nrec = rd32(g->data + 8);
    ck_assert_uint_le(nrec, sizeof g->recs / sizeof g->recs[0]);
    size_t off = 12;
    for (uint32_t r = 0; r < nrec; r++) {
        golden_rec *rec = &g->recs[r];
        ck_assert_uint_le(off + 16, (size_t)size);
        rec->kind = rd32(g->data + off);
        rec->type = rd32(g->data + off + 4);
        rec->n = rd32(g->data + off + 8);
        rec->nbytes = rd32(g->data + off + 12);
        off += 16;
        ck_assert_uint_le(off + rec->nbytes + 4 * (size_t)rec->n, (size_t)size);
        rec->blocks = g->data + off;
        off += rec->nbytes;
        rec->floats = malloc(4 * (size_t)rec->n + 1);
        ck_assert_ptr_nonnull(rec->floats);
        memcpy(rec->floats, g->data + off, 4 * (size_t)rec->n);
        off += 4 * (size_t)rec->n;
    }
    ck_assert_uint_eq(off, (size_t)size);
    g->nrecs = (int)nrec;
}

static void golden_free(golden_file *g) {
    for (int r = 0; r < g->nrecs; r++)
        free(g->recs[r].floats);
    free(g->data);
}

/* ---- traits ------------------------------------------------------------- */

static const struct {
    int type;
    const char *name;
    int block_size, type_size;
    size_t struct_size;
} expected_traits[] = {
    {SLIM_DTYPE_F32, "F32", 1, 4, 4},
    {SLIM_DTYPE_F16, "F16", 1, 2, 2},
    {SLIM_DTYPE_BF16, "BF16", 1, 2, 2},
    {SLIM_DTYPE_Q4_0, "Q4_0", 32, 18, sizeof(block_q4_0)},
    {SLIM_DTYPE_Q4_1, "Q4_1", 32, 20, sizeof(block_q4_1)},
    {SLIM_DTYPE_Q5_0, "Q5_0", 32, 22, sizeof(block_q5_0)},
    {SLIM_DTYPE_Q5_1, "Q5_1", 32, 24, sizeof(block_q5_1)},
    {SLIM_DTYPE_Q8_0, "Q8_0", 32, 34, sizeof(block_q8_0)},
    {SLIM_DTYPE_Q8_1, "Q8_1", 32, 36, sizeof(block_q8_1)},
    {SLIM_DTYPE_Q2_K, "Q2_K", 256, 84, sizeof(block_q2_K)},
    {SLIM_DTYPE_Q3_K, "Q3_K", 256, 110, sizeof(block_q3_K)},
    {SLIM_DTYPE_Q4_K, "Q4_K", 256, 144, sizeof(block_q4_K)},
    {SLIM_DTYPE_Q5_K, "Q5_K", 256, 176, sizeof(block_q5_K)},
    {SLIM_DTYPE_Q6_K, "Q6_K", 256, 210, sizeof(block_q6_K)},
    {SLIM_DTYPE_Q8_K, "Q8_K", 256, 292, sizeof(block_q8_K)},
};
#define N_TYPES ((int)(sizeof expected_traits / sizeof expected_traits[0]))

START_TEST(test_traits_table) {
    int known = 0;
    for (int i = 0; i < N_TYPES; i++) {
        const slim_dtype_traits *t = slim_dtype_traits_of(expected_traits[i].type);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, expected_traits[i].name);
        ck_assert_str_eq(slim_dtype_name(expected_traits[i].type), expected_traits[i].name);
        ck_assert_int_eq(t->block_size, expected_traits[i].block_size);
        ck_assert_int_eq(t->type_size, expected_traits[i].type_size);
        ck_assert_uint_eq((size_t)t->type_size, expected_traits[i].struct_size);
        ck_assert_int_eq(t->quantized, expected_traits[i].block_size > 1);
        ck_assert_ptr_nonnull(t->to_float);
        const slim_dtype_traits *vt = slim_dtype_traits_of((int)t->vec_dot_type);
        ck_assert_ptr_nonnull(vt);
        if (expected_traits[i].type == SLIM_DTYPE_Q8_K) {
            ck_assert_ptr_null(t->vec_dot);
        } else {
            ck_assert_ptr_nonnull(t->vec_dot);
            /* activations are quantized with the vec_dot type's from_float */
            ck_assert_ptr_nonnull(vt->from_float);
            ck_assert_int_eq(vt->block_size, t->block_size > 1 ? t->block_size : 1);
        }
        /* row sizes: whole blocks only */
        const int64_t bs = t->block_size;
        ck_assert_uint_eq(slim_dtype_row_size((slim_dtype)expected_traits[i].type, 7 * bs),
                          7 * (size_t)t->type_size);
        ck_assert_uint_eq(slim_dtype_row_size((slim_dtype)expected_traits[i].type, 0), 0);
        if (bs > 1) {
            ck_assert_uint_eq(slim_dtype_row_size((slim_dtype)expected_traits[i].type, bs + 1), 0);
        }
    }
    for (int id = -3; id < 1100; id++)
        known += slim_dtype_traits_of(id) != NULL;
    ck_assert_int_eq(known, N_TYPES);
    const int unknown[] = {4, 5, 16, 17, 24, 29, 31, 34, 39, 40, -1, 1000, SLIM_DTYPE_COUNT};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_ptr_null(slim_dtype_traits_of(unknown[i]));
        ck_assert_str_eq(slim_dtype_name(unknown[i]), "?");
        ck_assert_uint_eq(slim_dtype_row_size((slim_dtype)unknown[i], 256), 0);
    }
    /* formats slim quantizes to */
    const int has_from[] = {SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0,
                            SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0,
                            SLIM_DTYPE_Q8_1, SLIM_DTYPE_Q8_K};
    for (size_t i = 0; i < sizeof has_from / sizeof has_from[0]; i++)
        ck_assert_ptr_nonnull(slim_dtype_traits_of(has_from[i])->from_float);
}
END_TEST

/* ---- golden: to_float and from_float ------------------------------------ */

START_TEST(test_dequantize_golden) {
    golden_file g;
    golden_load(&g);
    int seen[SLIM_DTYPE_COUNT] = {0};
    for (int r = 0; r < g.nrecs; r++) {
        const golden_rec *rec = &g.recs[r];
        if (rec->kind != KIND_DEQUANT) continue;
        const slim_dtype_traits *t = slim_dtype_traits_of((int)rec->type);
        ck_assert_msg(t != NULL, "golden type %u unknown", rec->type);
        ck_assert_uint_eq(rec->nbytes, slim_dtype_row_size((slim_dtype)rec->type, rec->n));
        float *out = malloc(4 * (size_t)rec->n);
        ck_assert_ptr_nonnull(out);
        memset(out, 0xAB, 4 * (size_t)rec->n);
        t->to_float(rec->blocks, out, rec->n);
        for (uint32_t i = 0; i < rec->n; i++) {
            /* bit for bit (the golden values are all finite) */
            ck_assert_msg(slim_f32_to_bits(out[i]) == slim_f32_to_bits(rec->floats[i]),
                          "%s to_float element %u: got %.9g (0x%08x), gguf %.9g (0x%08x)", t->name,
                          i, (double)out[i], slim_f32_to_bits(out[i]), (double)rec->floats[i],
                          slim_f32_to_bits(rec->floats[i]));
        }
        free(out);
        seen[rec->type]++;
    }
    for (int i = 0; i < N_TYPES; i++)
        ck_assert_msg(seen[expected_traits[i].type], "no dequantize golden for %s",
                      expected_traits[i].name);
    golden_free(&g);
}
END_TEST

START_TEST(test_quantize_golden) {
    golden_file g;
    golden_load(&g);
    int n_checked = 0;
    for (int r = 0; r < g.nrecs; r++) {
        const golden_rec *rec = &g.recs[r];
        if (rec->kind != KIND_QUANT) continue;
        const slim_dtype_traits *t = slim_dtype_traits_of((int)rec->type);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(t->from_float);
        ck_assert_uint_eq(rec->nbytes, slim_dtype_row_size((slim_dtype)rec->type, rec->n));
        uint8_t *out = malloc(rec->nbytes);
        ck_assert_ptr_nonnull(out);
        memset(out, 0xAB, rec->nbytes);
        t->from_float(rec->floats, out, rec->n);
        for (uint32_t i = 0; i < rec->nbytes; i++) {
            ck_assert_msg(out[i] == rec->blocks[i],
                          "%s from_float byte %u (block %u, offset %u): got 0x%02x, gguf 0x%02x",
                          t->name, i, i / t->type_size, i % t->type_size, out[i], rec->blocks[i]);
        }
        free(out);
        n_checked++;
    }
    /* Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 Q8_K F16 BF16 */
    ck_assert_int_eq(n_checked, 9);
    golden_free(&g);
}
END_TEST

START_TEST(test_f32_roundtrip) {
    const slim_dtype_traits *t = slim_dtype_traits_of(SLIM_DTYPE_F32);
    float a[5] = {1.0f, -0.0f, 3.5e-42f, INFINITY, -2.25f}, b[5], c[5];
    t->from_float(a, b, 5);
    t->to_float(b, c, 5);
    ck_assert_int_eq(memcmp(a, c, sizeof a), 0);
}
END_TEST

/* ---- vec_dot vs dequantize-then-dot ------------------------------------- */

static float rng_sym(void) { return (float)(2.0 * rng_unif() - 1.0); }

/* Per weight type: its fp16 scale fields (set to sane values in random blocks)
 * and the byte range of its quant bits (zeroed to find each element's offset
 * value, see tolerance below). */
static const struct {
    int type;
    int scale_off[2], n_scales;
    int q_begin, q_end;
} wlayout[] = {
    {SLIM_DTYPE_Q4_0, {0}, 1, 2, 18},       {SLIM_DTYPE_Q4_1, {0, 2}, 2, 4, 20},
    {SLIM_DTYPE_Q5_0, {0}, 1, 2, 22},       {SLIM_DTYPE_Q5_1, {0, 2}, 2, 4, 24},
    {SLIM_DTYPE_Q8_0, {0}, 1, 2, 34},       {SLIM_DTYPE_Q8_1, {0, 2}, 2, 4, 36},
    {SLIM_DTYPE_Q2_K, {80, 82}, 2, 16, 80}, {SLIM_DTYPE_Q3_K, {108}, 1, 0, 96},
    {SLIM_DTYPE_Q4_K, {0, 2}, 2, 16, 144},  {SLIM_DTYPE_Q5_K, {0, 2}, 2, 16, 176},
    {SLIM_DTYPE_Q6_K, {208}, 1, 0, 192},
};

static int layout_of(int type) {
    for (int i = 0; i < (int)(sizeof wlayout / sizeof wlayout[0]); i++)
        if (wlayout[i].type == type) return i;
    return -1;
}

static uint16_t sane_fp16(void) {
    float mag = powf(10.0f, -3.0f * (float)rng_unif());
    return slim_f32_to_fp16(rng_next() & 1 ? -mag : mag);
}

/* nrows random weight rows of n elements: random bytes with sane scales for
 * quantized types, random values for float types. */
static void *random_weights(int type, int64_t n, int nrows) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    const size_t rs = slim_dtype_row_size((slim_dtype)type, n);
    uint8_t *w = malloc(rs * (size_t)nrows + 1);
    ck_assert_ptr_nonnull(w);
    if (!t->quantized) {
        float *tmp = malloc(sizeof(float) * (size_t)n + 1);
        ck_assert_ptr_nonnull(tmp);
        for (int r = 0; r < nrows; r++) {
            for (int64_t i = 0; i < n; i++)
                tmp[i] = rng_sym() * 4.0f;
            t->from_float(tmp, w + rs * (size_t)r, n);
        }
        free(tmp);
        return w;
    }
    for (size_t i = 0; i < rs * (size_t)nrows; i++)
        w[i] = (uint8_t)rng_next();
    const int li = layout_of(type);
    ck_assert_int_ge(li, 0);
    const int64_t nblocks = (int64_t)(rs * (size_t)nrows) / t->type_size;
    for (int64_t b = 0; b < nblocks; b++)
        for (int s = 0; s < wlayout[li].n_scales; s++) {
            const uint16_t h = sane_fp16();
            memcpy(w + b * t->type_size + wlayout[li].scale_off[s], &h, 2);
        }
    return w;
}

/* Activations with a different magnitude per 32 elements, one all-zero block. */
static void random_activations(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 32) {
        const float scale = powf(10.0f, 3.0f * (float)rng_unif() - 2.0f);
        for (int64_t j = i; j < i + 32 && j < n; j++)
            x[j] = rng_sym() * scale;
    }
    if (n >= 96)
        for (int64_t j = 64; j < 96; j++)
            x[j] = 0.0f;
}

typedef float (*dot_fn)(int64_t, const void *, const void *);

/* A dot product is checked against the double-precision dot product of the
 * dequantized row and the dequantized activations (check_dot_rows), and two
 * paths of one format against each other (check_paths_agree).
 *
 * Bound: an implementation may split each weight w_i = (w_i - z_i) + z_i,
 * where z_i is the element's value with all its quant bits zero (the -8*d of
 * Q4_0, the min of Q4_1, the -32*d*sc of Q6_K, ...), and sum the two parts
 * separately, so intermediate terms are bounded by M = sum |x_i|(|w_i| + 2|z_i|).
 * Every term is exact in integers except a few float roundings per block
 * (scale products, int-to-float, the multiply-add) plus one per block for the
 * running sum (or per partial sum for float types), each at most 2^-24
 * relative to M: tol = (nacc + 8) * 2^-22 * M, i.e. four times that count.
 * Q4_1 and Q5_1 dot products also use the Q8_1 block sum s = fp16(dx * sum q),
 * rounded to fp16 (relative error 2^-11), times the block min: that adds
 * 2^-10 * sum |z_i| |x_i|. */
typedef struct {
    uint8_t *w, *xq, *wz;
    float *x, *xd, *wd, *zd;
    size_t rs;
} dot_case;

/* nrows random weight rows of type and one random activation row, quantized
 * to the vec_dot type as the matmul does. */
static void dot_case_init(dot_case *c, int type, int64_t n, int nrows) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    const slim_dtype_traits *vt = slim_dtype_traits_of((int)t->vec_dot_type);
    c->rs = slim_dtype_row_size((slim_dtype)type, n);
    c->w = random_weights(type, n, nrows);
    c->x = malloc(sizeof(float) * (size_t)n + 1);
    c->xd = malloc(sizeof(float) * (size_t)n + 1);
    c->wd = malloc(sizeof(float) * (size_t)n + 1);
    c->zd = malloc(sizeof(float) * (size_t)n + 1);
    c->xq = malloc(slim_dtype_row_size(t->vec_dot_type, n) + 1);
    c->wz = malloc(c->rs + 1);
    ck_assert(c->x && c->xd && c->wd && c->zd && c->xq && c->wz);
    random_activations(c->x, n);
    vt->from_float(c->x, c->xq, n);
    vt->to_float(c->xq, c->xd, n);
}

static void dot_case_free(dot_case *c) {
    free(c->w);
    free(c->x);
    free(c->xd);
    free(c->wd);
    free(c->zd);
    free(c->xq);
    free(c->wz);
}

/* Row r of the case: the double-precision dot product of the dequantized row
 * and activations (*ref) and the error bound (*tol) above. */
static void dot_case_row(dot_case *c, int type, int64_t n, int r, double *ref, double *tol) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    const uint8_t *wr = c->w + c->rs * (size_t)r;
    const int li = layout_of(type);
    const int64_t nacc = t->quantized ? n / t->block_size : n / 16 + 16;
    t->to_float(wr, c->wd, n);
    memcpy(c->wz, wr, c->rs);
    if (li >= 0) {
        for (int64_t b = 0; b < n / t->block_size; b++)
            memset(c->wz + b * t->type_size + wlayout[li].q_begin, 0,
                   (size_t)(wlayout[li].q_end - wlayout[li].q_begin));
        t->to_float(c->wz, c->zd, n);
    } else {
        memset(c->zd, 0, sizeof(float) * (size_t)n);
    }
    double sum = 0.0, mag = 0.0, zmag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)c->wd[i] * (double)c->xd[i];
        mag += fabs((double)c->xd[i]) * (fabs((double)c->wd[i]) + 2.0 * fabs((double)c->zd[i]));
        zmag += fabs((double)c->xd[i]) * fabs((double)c->zd[i]);
    }
    *ref = sum;
    *tol = (double)(nacc + 8) * ldexp(mag, -22) + 1e-30;
    if (t->vec_dot_type == SLIM_DTYPE_Q8_1) *tol += ldexp(zmag, -10);
}

static void check_dot_rows(int type, dot_fn dot, const char *label, int64_t n, int nrows) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    dot_case c;
    dot_case_init(&c, type, n, nrows);
    for (int r = 0; r < nrows; r++) {
        double ref, tol;
        dot_case_row(&c, type, n, r, &ref, &tol);
        const float got = dot(n, c.w + c.rs * (size_t)r, c.xq);
        ck_assert_msg(isfinite(got) && fabs((double)got - ref) <= tol,
                      "%s (%s) n=%lld row %d: vec_dot %.9g, reference %.9g, |diff| %.3g > tol %.3g",
                      t->name, label, (long long)n, r, (double)got, ref, fabs((double)got - ref),
                      tol);
    }
    dot_case_free(&c);
}

START_TEST(test_vec_dot_all) {
    rng_state = 0x5EED0000u + (uint64_t)_i;
    const int type = expected_traits[_i].type;
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    if (!t->vec_dot) return; /* Q8_K */
    static const int64_t n_float[] = {1, 15, 16, 33, 224, 1000, 4099};
    static const int64_t n_legacy[] = {32, 64, 32 * 7, 32 * 33, 2048};
    static const int64_t n_k[] = {256, 512, 256 * 3, 256 * 16};
    const int64_t *ns = t->block_size == 1 ? n_float : t->block_size == 32 ? n_legacy : n_k;
    const int nn = t->block_size == 1 ? 7 : t->block_size == 32 ? 5 : 4;
    for (int k = 0; k < nn; k++) {
        check_dot_rows(type, t->vec_dot, "traits", ns[k], 7);
        check_dot_rows(type, t->vec_dot, "traits", ns[k], 1);
    }
    /* an empty row is 0 */
    ck_assert_float_eq(t->vec_dot(0, NULL, NULL), 0.0f);
}
END_TEST

/* Every SIMD path against its scalar reference, on random data.
 *
 * vec_dot: each weight format's traits vec_dot (the SIMD one in a SIMD build)
 * and its portable scalar `_ref` (lib/quant/dtype.h), on the same rows and
 * activations, for block counts 1, 3, 7 and 33 (odd counts: tails of unrolled
 * loops) and several rows.  Both are within tol of the exact dot product
 * (check_dot_rows), so they must agree within 2 tol; they are not bitwise
 * equal (the SIMD path sums lanes in another order).  F32, F16 and BF16 have
 * no `_ref` in the library (F16's F16C path and the compiler-vectorised F32 /
 * BF16 loops): their scalar reference is the double-precision dot product of
 * the converted values, within tol.  Formats whose traits vec_dot is the
 * scalar code itself (no SIMD path in slim) are listed in scalar_only and
 * checked against the double-precision reference in test_vec_dot_all; every
 * weight format must be in one of the two lists, so a new format or path
 * gets a row here. */
/* the scalar reference of each: K->vec_dot_ref[type] (NULL: float type,
 * double-precision reference) */
static const int simd_paths[] = {SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0,
                                 SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q4_K,
                                 SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
#define N_SIMD_PATHS ((int)(sizeof simd_paths / sizeof simd_paths[0]))
static const int scalar_only[] = {SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_1, SLIM_DTYPE_Q2_K,
                                  SLIM_DTYPE_Q3_K};

/* The two paths agree within 2 tol on every row (and each within tol of the
 * exact value). */
static void check_paths_agree(int type, dot_fn simd, dot_fn ref, int64_t n, int nrows) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    dot_case c;
    dot_case_init(&c, type, n, nrows);
    for (int r = 0; r < nrows; r++) {
        double exact, tol;
        dot_case_row(&c, type, n, r, &exact, &tol);
        const uint8_t *wr = c.w + c.rs * (size_t)r;
        const double a = simd(n, wr, c.xq), b = ref ? ref(n, wr, c.xq) : exact;
        ck_assert_msg(isfinite(a) && fabs(a - exact) <= tol,
                      "%s SIMD n=%lld (%lld blocks) row %d: %.9g, exact %.9g, |diff| %.3g > %.3g",
                      t->name, (long long)n, (long long)(n / t->block_size), r, a, exact,
                      fabs(a - exact), tol);
        ck_assert_msg(fabs(a - b) <= 2 * tol,
                      "%s n=%lld (%lld blocks) row %d: SIMD %.9g, scalar ref %.9g, |diff| %.3g > "
                      "2 tol %.3g",
                      t->name, (long long)n, (long long)(n / t->block_size), r, a, b, fabs(a - b),
                      2 * tol);
    }
    dot_case_free(&c);
}

START_TEST(test_vec_dot_simd_vs_ref) {
    const int type = simd_paths[_i];
    const dot_fn ref = K->vec_dot_ref[type];
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    rng_state = 0xABCDEF00u + (uint64_t)_i;
    /* the traits use the SIMD path exactly when the build has SIMD */
    if (ref)
        ck_assert_msg((t->vec_dot != ref) == K->quant_has_simd(),
                      "%s: traits vec_dot is %s the scalar _ref", t->name,
                      K->quant_has_simd() ? "still" : "not");
    /* even counts too: the AVX-512 kernels take blocks in pairs */
    static const int64_t blocks[] = {1, 2, 3, 7, 8, 33};
    static const int64_t n_float[] = {1, 3, 7, 33, 16 * 7 + 5, 16 * 33 + 15, 2048 + 9};
    const int nn = t->block_size == 1 ? 7 : 6;
    for (int k = 0; k < nn; k++) {
        const int64_t n = t->block_size == 1 ? n_float[k] : blocks[k] * t->block_size;
        if (ref) check_dot_rows(type, ref, "scalar ref", n, 5);
        check_paths_agree(type, t->vec_dot, ref, n, 5);
    }
}
END_TEST

START_TEST(test_simd_paths_cover_formats) {
    for (int k = 0; k < N_TYPES; k++) {
        const int type = expected_traits[k].type;
        if (!slim_dtype_traits_of(type)->vec_dot) continue;
        int found = 0;
        for (int p = 0; p < N_SIMD_PATHS; p++)
            found += simd_paths[p] == type;
        for (size_t p = 0; p < sizeof scalar_only / sizeof scalar_only[0]; p++)
            found += scalar_only[p] == type;
        ck_assert_msg(found == 1, "%s: in %d of simd_paths / scalar_only", expected_traits[k].name,
                      found);
    }
}
END_TEST

/* from_float of the activation types (what every matmul quantizes its input
 * with) against a scalar reference written here from GGML's
 * quantize_row_q8_0_ref / q8_1_ref / q8_K_ref, bitwise, for block counts 1, 3,
 * 7, 33 (odd counts) with an all-zero block and blocks whose largest
 * magnitude is negative; F16 and BF16 from_float / to_float against the
 * per-element conversions of core/fp16.h, bitwise, over odd lengths.  Today's
 * from_float are scalar; a SIMD quantizer must keep these results. */
static void ref_q8_0(const float *x, block_q8_0 *b, int64_t nb, block_q8_1 *b1) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            const int8_t q = (int8_t)roundf(x[j] * id);
            sum += q;
            if (b) b[i].qs[j] = q;
            if (b1) b1[i].qs[j] = q;
        }
        if (b) b[i].d = slim_f32_to_fp16(d);
        if (b1) {
            b1[i].d = slim_f32_to_fp16(d);
            b1[i].s = slim_f32_to_fp16((float)sum * d);
        }
    }
}

static void ref_q8_k(const float *x, block_q8_K *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        memset(&b[i], 0, sizeof b[i]);
        if (amax == 0.0f) continue;
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const float v = rintf(iscale * x[j]); /* ties to even, as nearest_int */
            b[i].qs[j] = (int8_t)(v < 127 ? v : 127);
            b[i].bsums[j / 16] = (int16_t)(b[i].bsums[j / 16] + b[i].qs[j]);
        }
        b[i].d = 1 / iscale;
    }
}

START_TEST(test_from_float_simd_vs_ref) {
    rng_state = 0xF00D;
    static const int64_t blocks[] = {1, 3, 7, 33};
    for (int k = 0; k < 4; k++) {
        const int64_t nb = blocks[k];
        for (int iq = 0; iq < 2; iq++) {
            const int qk = iq == 0 ? 32 : 256; /* Q8_0 and Q8_1, then Q8_K */
            const int64_t n = nb * qk;
            float *x = malloc(sizeof(float) * (size_t)n);
            void *got = malloc(sizeof(block_q8_K) * (size_t)nb), *want;
            want = malloc(sizeof(block_q8_K) * (size_t)nb);
            ck_assert(x && got && want);
            random_activations(x, n);
            for (int64_t j = n / 2; j < n / 2 + 16; j++) /* a negative extreme */
                x[j] = j == n / 2 + 3 ? -50.0f : x[j];
            if (qk == 32) {
                static const int types[] = {SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q8_1};
                for (int ti = 0; ti < 2; ti++) {
                    const slim_dtype_traits *t = slim_dtype_traits_of(types[ti]);
                    const size_t bytes = slim_dtype_row_size((slim_dtype)types[ti], n);
                    memset(got, 0xAB, bytes);
                    memset(want, 0xCD, bytes);
                    t->from_float(x, got, n);
                    ref_q8_0(x, ti == 0 ? want : NULL, nb, ti == 1 ? want : NULL);
                    ck_assert_msg(memcmp(got, want, bytes) == 0, "%s from_float, %lld blocks",
                                  t->name, (long long)nb);
                }
            } else {
                const size_t bytes = sizeof(block_q8_K) * (size_t)nb;
                memset(got, 0xAB, bytes);
                slim_dtype_traits_of(SLIM_DTYPE_Q8_K)->from_float(x, got, n);
                ref_q8_k(x, want, nb);
                ck_assert_msg(memcmp(got, want, bytes) == 0, "Q8_K from_float, %lld blocks",
                              (long long)nb);
            }
            free(x);
            free(got);
            free(want);
        }
    }
    /* F16 / BF16: every bit pattern through to_float (NaN only as NaN: F16C
     * quiets signalling NaNs), random floats through from_float */
    enum { NH = 65536 + 7 };
    uint16_t *h = malloc(sizeof(uint16_t) * NH), *h2 = malloc(sizeof(uint16_t) * NH);
    float *f = malloc(sizeof(float) * (NH + 8));
    ck_assert(h && h2 && f);
    for (int i = 0; i < NH; i++)
        h[i] = (uint16_t)i;
    static const int64_t lens[] = {1, 7, 9, 31, NH};
    for (int li = 0; li < 5; li++)
        for (int bf = 0; bf < 2; bf++) {
            const int64_t len = lens[li];
            const uint16_t *src = h + (li == 4 ? 0 : 3 + li * 1000); /* odd offsets */
            const slim_dtype_traits *t =
                slim_dtype_traits_of(bf ? SLIM_DTYPE_BF16 : SLIM_DTYPE_F16);
            t->to_float(src, f, len);
            for (int64_t i = 0; i < len; i++) {
                const float want = bf ? slim_bf16_to_f32(src[i]) : slim_fp16_to_f32(src[i]);
                ck_assert_msg(isnan(want) ? isnan(f[i])
                                          : slim_f32_to_bits(f[i]) == slim_f32_to_bits(want),
                              "%s to_float(0x%04x) = %.9g, scalar %.9g", t->name, src[i],
                              (double)f[i], (double)want);
            }
        }
    for (int i = 0; i < NH + 8; i++) {
        const float m = ldexpf(rng_sym(), (int)(rng_next() % 60) - 30);
        f[i] = i % 97 == 0 ? 65504.0f * 1.5f : m; /* some overflow to inf */
    }
    for (int li = 0; li < 5; li++)
        for (int bf = 0; bf < 2; bf++) {
            const slim_dtype_traits *t =
                slim_dtype_traits_of(bf ? SLIM_DTYPE_BF16 : SLIM_DTYPE_F16);
            t->from_float(f + li, h2, lens[li]);
            for (int64_t i = 0; i < lens[li]; i++) {
                const uint16_t want =
                    bf ? slim_f32_to_bf16(f[li + i]) : slim_f32_to_fp16(f[li + i]);
                ck_assert_msg(h2[i] == want, "%s from_float(%.9g) = 0x%04x, scalar 0x%04x", t->name,
                              (double)f[li + i], h2[i], want);
            }
        }
    free(h);
    free(h2);
    free(f);
}
END_TEST

/* to_float of a whole row equals to_float block by block (a SIMD or unrolled
 * dequantizer must handle odd block counts), for every quantized format. */
START_TEST(test_to_float_blockwise) {
    rng_state = 0xB10C;
    for (int k = 0; k < N_TYPES; k++) {
        const int type = expected_traits[k].type;
        const slim_dtype_traits *t = slim_dtype_traits_of(type);
        if (!t->quantized || layout_of(type) < 0) continue;
        for (int64_t nb = 1; nb <= 33; nb += nb < 7 ? 2 : 26) { /* 1, 3, 5, 7, 33 */
            const int64_t n = nb * t->block_size;
            uint8_t *w = random_weights(type, n, 1);
            float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
            ck_assert(a && b);
            t->to_float(w, a, n);
            for (int64_t i = 0; i < nb; i++)
                t->to_float(w + i * t->type_size, b + i * t->block_size, t->block_size);
            ck_assert_msg(memcmp(a, b, sizeof(float) * (size_t)n) == 0,
                          "%s to_float of %lld blocks differs from block by block", t->name,
                          (long long)nb);
            free(w);
            free(a);
            free(b);
        }
    }
}
END_TEST

/* Extreme quants: Q8_0 weights of -128 (possible in a file, never produced by
 * the quantizer) against +-127 activations, and the largest Q6_K/Q4_K values:
 * the SIMD paths must not saturate. */
START_TEST(test_vec_dot_extremes) {
    enum { NB = 4 };
    block_q8_0 w8[NB], x8[NB];
    for (int b = 0; b < NB; b++) {
        w8[b].d = x8[b].d = slim_f32_to_fp16(1.0f);
        for (int j = 0; j < 32; j++) {
            w8[b].qs[j] = b & 1 ? -128 : 127;
            x8[b].qs[j] = (int8_t)(j & 1 ? -127 : 127);
        }
        x8[b].qs[0] = x8[b].qs[1] = 127;
    }
    /* per block: 32 products; j even +-127*127..., exact integer reference */
    double ref8 = 0;
    for (int b = 0; b < NB; b++)
        for (int j = 0; j < 32; j++)
            ref8 += (double)w8[b].qs[j] * x8[b].qs[j];
    ck_assert_float_eq(slim_dtype_traits_of(SLIM_DTYPE_Q8_0)->vec_dot(32 * NB, w8, x8),
                       (float)ref8);
    ck_assert_float_eq(K->vec_dot_ref[SLIM_DTYPE_Q8_0](32 * NB, w8, x8), (float)ref8);

    /* K-quants: sums exceed 2^24, so compare within float rounding (a saturated
     * int16 would be off by far more) */
    block_q6_K w6;
    block_q8_K x;
    memset(&w6, 0xFF, sizeof w6); /* q = 63 */
    for (int j = 0; j < 16; j++)
        w6.scales[j] = (int8_t)(j & 1 ? -128 : 127);
    w6.d = slim_f32_to_fp16(1.0f);
    x.d = 1.0f;
    for (int j = 0; j < 256; j++)
        x.qs[j] = (int8_t)(j % 3 ? 127 : -127);
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++)
            s += x.qs[16 * j + l];
        x.bsums[j] = (int16_t)s;
    }
    double ref6 = 0, mag6 = 0;
    for (int j = 0; j < 256; j++) {
        ref6 += (double)w6.scales[j / 16] * 31.0 * x.qs[j];
        mag6 += fabs((double)w6.scales[j / 16] * 63.0 * x.qs[j]);
    }
    ck_assert_double_eq_tol(slim_dtype_traits_of(SLIM_DTYPE_Q6_K)->vec_dot(256, &w6, &x), ref6,
                            mag6 * 1e-6);
    ck_assert_double_eq_tol(K->vec_dot_ref[SLIM_DTYPE_Q6_K](256, &w6, &x), ref6, mag6 * 1e-6);

    block_q4_K w4;
    memset(&w4, 0xFF, sizeof w4); /* q = 15, scales and mins 63 */
    w4.d = slim_f32_to_fp16(1.0f);
    w4.dmin = slim_f32_to_fp16(0.5f);
    double ref4 = 0, mag4 = 0;
    for (int j = 0; j < 256; j++) {
        ref4 += (63.0 * 15.0 - 0.5 * 63.0) * x.qs[j];
        mag4 += (63.0 * 15.0 + 0.5 * 63.0) * fabs((double)x.qs[j]);
    }
    ck_assert_double_eq_tol(slim_dtype_traits_of(SLIM_DTYPE_Q4_K)->vec_dot(256, &w4, &x), ref4,
                            mag4 * 1e-6);
    ck_assert_double_eq_tol(K->vec_dot_ref[SLIM_DTYPE_Q4_K](256, &w4, &x), ref4, mag4 * 1e-6);
}
END_TEST

/* The multi-token gemm of every format that has one: each (row, token) output
 * bitwise equal to that format's vec_dot (batch invariance), over ragged row
 * and token counts and row sub-ranges, and nothing written outside the range. */
START_TEST(test_gemm_bitwise) {
    /* rows and tokens around and between multiples of the register tile (4 x 4
     * or 4 x 2), block counts 1, 3, 7, 33 */
    static const int rows_list[] = {1, 2, 3, 5, 7, 17, 33};
    static const int toks_list[] = {1, 2, 3, 4, 5, 7, 9, 13}; /* >= 8: the pre-unpacked rows */
    rng_state = 0x6E770000u;
    int n_formats = 0;
    const size_t work_size = 1 << 20;
    void *work = aligned_alloc(64, work_size);
    ck_assert_ptr_nonnull(work);
    for (int k = 0; k < N_TYPES; k++) {
        const int type = expected_traits[k].type;
        const slim_dtype_traits *t = slim_dtype_traits_of(type);
        if (!t->gemm) continue;
        n_formats++;
        const slim_dtype_traits *vt = slim_dtype_traits_of((int)t->vec_dot_type);
        /* odd and even block counts (AVX-512 tiles take blocks in pairs); float
         * types (block 1) in steps of 17: the 16-wide loop and its tail */
        const int64_t bs = t->block_size == 1 ? 17 : t->block_size;
        const int64_t ns[] = {bs, 2 * bs, 3 * bs, 7 * bs, 8 * bs, 33 * bs};
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
            const int64_t n = ns[in];
            const size_t ws = slim_dtype_row_size((slim_dtype)type, n);
            const size_t xs = slim_dtype_row_size(t->vec_dot_type, n);
            for (size_t ir = 0; ir < sizeof rows_list / sizeof rows_list[0]; ir++)
                for (size_t it = 0; it < sizeof toks_list / sizeof toks_list[0]; it++) {
                    const int rows = rows_list[ir], toks = toks_list[it];
                    const int64_t ldy = rows + 3;
                    uint8_t *w = random_weights(type, n, rows);
                    uint8_t *xq = malloc(xs * (size_t)toks + 1);
                    float *x = malloc(sizeof(float) * (size_t)n);
                    float *y = malloc(sizeof(float) * (size_t)(ldy * toks));
                    ck_assert(xq && x && y);
                    for (int tok = 0; tok < toks; tok++) {
                        random_activations(x, n);
                        vt->from_float(x, xq + xs * (size_t)tok, n);
                    }
                    /* the whole range, then a sub-range starting past row 0 */
                    for (int pass = 0; pass < 2; pass++) {
                        const int64_t r0 = pass == 0 ? 0 : rows / 3,
                                      r1 = pass == 0 ? rows : rows - rows / 4;
                        for (int64_t i = 0; i < ldy * toks; i++)
                            y[i] = -12345.0f;
                        /* pass 0 with a work buffer (the kernels that keep
                         * unpacked rows there), pass 1 without */
                        t->gemm(n, w, ws, r0, r1, xq, xs, toks, y, ldy, pass == 0 ? work : NULL,
                                pass == 0 ? work_size : 0);
                        for (int tok = 0; tok < toks; tok++)
                            for (int64_t r = 0; r < ldy; r++) {
                                const float got = y[tok * ldy + r];
                                if (r < r0 || r >= r1) {
                                    ck_assert_msg(got == -12345.0f,
                                                  "%s gemm wrote outside rows [%lld, %lld)",
                                                  t->name, (long long)r0, (long long)r1);
                                    continue;
                                }
                                const float want =
                                    t->vec_dot(n, w + ws * (size_t)r, xq + xs * (size_t)tok);
                                ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                                              "%s gemm n=%lld rows=%d tokens=%d: row %lld token "
                                              "%d: %.9g, vec_dot %.9g",
                                              t->name, (long long)n, rows, toks, (long long)r, tok,
                                              (double)got, (double)want);
                            }
                    }
                    free(w);
                    free(xq);
                    free(x);
                    free(y);
                }
        }
    }
    free(work);
    if (K->quant_has_simd()) ck_assert_int_ge(n_formats, 2);
}
END_TEST

/* Quantize-dequantize error of the quantizers stays within half a step (a
 * whole step for Q4_0/Q5_0, whose largest magnitude of the other sign clamps
 * to 7 or 15 steps instead of 8 or 16). */
START_TEST(test_quantize_roundtrip_error) {
    rng_state = 77;
    static const struct {
        int type;
        float steps; /* step = amax / steps, or (max - min) / steps if asym */
        bool asym;
        float max_err; /* in steps */
    } q[] = {
        {SLIM_DTYPE_Q4_0, 8, false, 1.0f},   {SLIM_DTYPE_Q4_1, 15, true, 0.5f},
        {SLIM_DTYPE_Q5_0, 16, false, 1.0f},  {SLIM_DTYPE_Q5_1, 31, true, 0.5f},
        {SLIM_DTYPE_Q8_0, 127, false, 0.5f}, {SLIM_DTYPE_Q8_1, 127, false, 0.5f},
        {SLIM_DTYPE_Q8_K, 127, false, 0.5f},
    };
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        const slim_dtype_traits *t = slim_dtype_traits_of(q[k].type);
        const int64_t n = 4 * t->block_size;
        float x[1024], y[1024];
        uint8_t buf[2048];
        random_activations(x, n);
        t->from_float(x, buf, n);
        t->to_float(buf, y, n);
        for (int64_t b = 0; b < n; b += t->block_size) {
            float lo = x[b], hi = x[b], amax = 0;
            for (int64_t i = b; i < b + t->block_size; i++) {
                lo = fminf(lo, x[i]);
                hi = fmaxf(hi, x[i]);
                amax = fmaxf(amax, fabsf(x[i]));
            }
            const float step = q[k].asym ? (hi - lo) / q[k].steps : amax / q[k].steps;
            /* plus the fp16 rounding (2^-11 relative) of the scale times up to
             * 16 steps, and of the min */
            const float bound = q[k].max_err * step + amax * 3e-3f + 1e-30f;
            for (int64_t i = b; i < b + t->block_size; i++)
                ck_assert_msg(fabsf(y[i] - x[i]) <= bound, "%s element %lld: %g -> %g (bound %g)",
                              t->name, (long long)i, (double)x[i], (double)y[i], (double)bound);
        }
    }
}
END_TEST

Suite *suite_quant(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("traits");
    tcase_add_test(tc, test_traits_table);
    tcase_add_test(tc, test_f32_roundtrip);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_add_test(tc, test_dequantize_golden);
    tcase_add_test(tc, test_quantize_golden);
    tcase_add_test(tc, test_quantize_roundtrip_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("vec_dot");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_vec_dot_all, 0, N_TYPES);
    tcase_add_test(tc, test_vec_dot_extremes);
    suite_add_tcase(s, tc);

    /* every SIMD path vs its scalar reference (CK_RUN_CASE=simd) */
    tc = tcase_create("simd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_simd_paths_cover_formats);
    tcase_add_loop_test(tc, test_vec_dot_simd_vs_ref, 0, N_SIMD_PATHS);
    tcase_add_test(tc, test_gemm_bitwise);
    tcase_add_test(tc, test_from_float_simd_vs_ref);
    tcase_add_test(tc, test_to_float_blockwise);
    suite_add_tcase(s, tc);
    return s;
}
