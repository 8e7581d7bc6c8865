/* test_embed: the embedder's vectors.
 *
 * Owns: dimension and unit norm; agreement with values printed by the
 * reference runtime (@energetic-ai/embeddings) for one sentence; the
 * zero-token vector for empty text; the 128-token truncation; rejection of
 * bad ids; the same vectors from every kernel set the CPU runs; and a
 * semantic sanity check (a paraphrase is closer than an unrelated sentence).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed_test_util.h"

static cg_embedder *E;   /* defaults: bfloat16 weights on AMX, half floats on AVX2/AVX-512 */
static cg_embedder *E32; /* float32 weights */

static int setup(void **state) {
    (void)state;
    E = open_model(CG_EMBED_ISA_AUTO);
    E32 = open_model_opts(CG_EMBED_ISA_AUTO, 1);
    return E && E32 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cg_embed_close(E);
    cg_embed_close(E32);
    return 0;
}

static double norm(const float *v) {
    double s = 0;
    for (int i = 0; i < CG_EMBED_DIM; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static void embed_str(const cg_embedder *e, const char *s, float *v) {
    assert_int_equal(cg_embed(e, s, strlen(s), v), 0);
}

static void test_dim_and_norm(void **state) {
    (void)state;
    assert_int_equal(cg_embed_dim(E), CG_EMBED_DIM);
    const char *texts[] = {"a", "A man is playing a guitar.", "   ", "\xe6\x97\xa5\xe6\x9c\xac",
                           "The quick brown fox jumps over the lazy dog again and again."};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        float v[CG_EMBED_DIM];
        embed_str(E, texts[i], v);
        for (int k = 0; k < CG_EMBED_DIM; k++)
            assert_true(isfinite(v[k]));
        assert_true(fabs(norm(v) - 1.0) < 1e-5);
    }
}

/* The reference printed these for "Hello world, this is a test.". */
static void test_reference_values(void **state) {
    (void)state;
    static const double want[5] = {-0.0395512729883194, -0.07102205604314804, -0.034265756607055664,
                                   -0.033514637500047684, -0.008839665912091732};
    float v[CG_EMBED_DIM], h[CG_EMBED_DIM];
    embed_str(E32, "Hello world, this is a test.", v);
    embed_str(E, "Hello world, this is a test.", h);
    assert_string_equal(cg_embed_weights_name(E32), "f32");
    /* bfloat16 (AMX) rounds weights and activations to 8 bits: measured
     * 6.6e-4 off on these five, cosine 0.99995; half floats: < 1e-4 and
     * above 0.99999 */
    const int bf16 = strcmp(cg_embed_weights_name(E), "bf16") == 0;
    for (int i = 0; i < 5; i++) {
        assert_true(fabs(v[i] - want[i]) < 2e-6);
        assert_true(fabs(h[i] - want[i]) < (bf16 ? 2e-3 : 1e-4));
    }
    assert_true(cosine(v, h, CG_EMBED_DIM) > (bf16 ? 0.9999 : 0.99999));
}

static void test_empty_text(void **state) {
    (void)state;
    float a[CG_EMBED_DIM], b[CG_EMBED_DIM], c[CG_EMBED_DIM];
    assert_int_equal(cg_embed(E, "", 0, a), 0);
    assert_int_equal(cg_embed_ids(E, NULL, 0, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_true(fabs(norm(a) - 1.0) < 1e-5);
    embed_str(E, " ", c); /* one token: a different vector */
    assert_true(cosine(a, c, CG_EMBED_DIM) < 0.999);
}

static void test_truncation(void **state) {
    (void)state;
    size_t cap = 400 * 10, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int w = 0; w < 400; w++)
        len += (size_t)snprintf(text + len, cap - len, "%sword%d", w ? " " : "", w);
    int32_t ids[CG_EMBED_MAX_TOKENS];
    assert_int_equal(cg_embed_tokenize(E, text, len, ids, CG_EMBED_MAX_TOKENS), 128);
    float a[CG_EMBED_DIM], b[CG_EMBED_DIM], c[CG_EMBED_DIM];
    assert_int_equal(cg_embed(E, text, len, a), 0);
    assert_int_equal(cg_embed_ids(E, ids, 128, b), 0);
    assert_memory_equal(a, b, sizeof a);
    /* more ids than 128 are clipped, as the graph does */
    int32_t more[200];
    memcpy(more, ids, sizeof ids);
    for (int i = 128; i < 200; i++)
        more[i] = 42;
    assert_int_equal(cg_embed_ids(E, more, 200, c), 0);
    assert_memory_equal(a, c, sizeof a);
    /* 127 ids give another vector */
    assert_int_equal(cg_embed_ids(E, ids, 127, c), 0);
    assert_true(memcmp(a, c, sizeof a) != 0);
    free(text);
}

static void test_bad_ids(void **state) {
    (void)state;
    float v[CG_EMBED_DIM];
    int32_t neg[] = {5, -1, 7}, big[] = {5, 8002};
    assert_int_equal(cg_embed_ids(E, neg, 3, v), -1);
    assert_int_equal(cg_embed_ids(E, big, 2, v), -1);
    int32_t edge[] = {0, 8001}; /* the table has 8002 rows */
    assert_int_equal(cg_embed_ids(E, edge, 2, v), 0);
}

/* Every kernel set this CPU runs, with float32 or its reduced weights (half
 * floats; bfloat16 for AMX), gives the same vectors up to rounding, for 1
 * token up to more rows than one kernel block (or two AMX row tiles) holds.
 * The portable kernels (float32 only) are the reference. */
static void test_kernels_agree(void **state) {
    (void)state;
    const cg_embed_isa isas[] = {CG_EMBED_ISA_AVX2, CG_EMBED_ISA_AVX512, CG_EMBED_ISA_AMX};
    const char *reduced[] = {"f16", "f16", "bf16"};
    const double min_cos[] = {0.99999, 0.99999, 0.9999};
    const char *texts[] = {"hi", "A man is slicing a tomato on a wooden board.",
                           "one two three four five six seven eight nine ten eleven twelve "
                           "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty "
                           "twenty-one twenty-two twenty-three thirty-four thirty-five "
                           "thirty-six thirty-seven"};
    float ref[3][CG_EMBED_DIM];
    cg_embedder *g = open_model(CG_EMBED_ISA_GENERIC);
    assert_non_null(g);
    assert_string_equal(cg_embed_isa_name(g), "generic");
    assert_string_equal(cg_embed_weights_name(g), "f32");
    for (size_t t = 0; t < 3; t++)
        embed_str(g, texts[t], ref[t]);
    cg_embed_close(g);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        for (int fp32 = 0; fp32 <= 1; fp32++) {
            char err[256];
            cg_embed_opts o = {.isa = isas[i], .fp32_weights = fp32};
            cg_embedder *e = cg_embed_open_opts(model_path(), &o, err, sizeof err);
            if (!e) {
                assert_non_null(strstr(err, "does not run"));
                continue;
            }
            assert_string_equal(cg_embed_weights_name(e), fp32 ? "f32" : reduced[i]);
            for (size_t t = 0; t < 3; t++) {
                float v[CG_EMBED_DIM];
                embed_str(e, texts[t], v);
                double c = cosine(v, ref[t], CG_EMBED_DIM);
                assert_true(c > (fp32 ? 0.9999999 : min_cos[i]));
                if (!fp32) /* rounding the weights does change the result */
                    assert_true(c < 1.0 - 1e-12);
            }
            cg_embed_close(e);
        }
}

static void test_semantics(void **state) {
    (void)state;
    float a[CG_EMBED_DIM], b[CG_EMBED_DIM], c[CG_EMBED_DIM];
    embed_str(E, "A man is playing a guitar.", a);
    embed_str(E, "A man plays the guitar.", b);
    embed_str(E, "A woman is slicing an onion.", c);
    double ab = cosine(a, b, CG_EMBED_DIM), ac = cosine(a, c, CG_EMBED_DIM);
    assert_true(ab > 0.8);
    assert_true(ab > ac + 0.2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dim_and_norm), cmocka_unit_test(test_reference_values),
        cmocka_unit_test(test_empty_text),   cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_bad_ids),      cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_semantics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
