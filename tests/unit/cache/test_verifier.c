/* test_verifier: unit tests of src/cache/verifier.c and verifier_train.c,
 * the semantic cache's learned pair verifier and its accept decision.
 *
 * Owns: the features (symmetric, identical texts, symbols, apostrophes,
 * NULL and over-long input, names); training (byte-identical files from
 * equal inputs and options, a different seed or one flipped label changes
 * the file, the fit separates a separable synthetic set); the file (round
 * trip, and rejection of truncated, padded, bit-flipped, bad-magic,
 * wrong-version, wrong-dimension, too-many-units, non-finite-weight and
 * out-of-range files, each re-checksummed so the named check is the one
 * that fires); cg_semantic_accept (the floor is never lowered by a request,
 * NaN fails closed, a gate reject wins over any probability, the threshold
 * is respected at its exact value, a missing model or embedding rejects,
 * the verifier off); the default policy; the shipped model file; and
 * concurrent calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/verifier.h"
#include "cache/verifier_train.h"

#define D CG_VERIFIER_DIM
#define NF CG_VERIFIER_NFEAT
#define HEADER 236 /* the file's fixed header (verifier.h) */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s) { /* sum of uniforms: close enough */
    double a = 0;
    for (int i = 0; i < 6; i++)
        a += (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(a - 3.0);
}

static void unit(float *v) {
    double n = 0;
    for (int i = 0; i < D; i++)
        n += (double)v[i] * v[i];
    for (int i = 0; i < D; i++)
        v[i] = (float)(v[i] / sqrt(n));
}

static float dotf(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < D; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

/* u random; w = u + noise, less noise for label 1. */
static void pair_vecs(uint64_t *s, int label, float *u, float *w) {
    for (int i = 0; i < D; i++)
        u[i] = gauss(s);
    unit(u);
    float sigma = label ? 0.02f : 0.08f;
    for (int i = 0; i < D; i++)
        w[i] = u[i] + sigma * gauss(s);
    unit(w);
}

/* n synthetic examples: features of (u, w) and two short texts. */
static void synth(size_t n, uint64_t seed, float *x, uint8_t *y) {
    static const char *const T[][2] = {{"how do I learn python", "how can I learn python"},
                                       {"best pizza in town", "best pizza in the town"},
                                       {"what is a prime number", "define a prime number"}};
    float u[D], w[D];
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint8_t)(rng_next(&s) & 1u);
        pair_vecs(&s, y[i], u, w);
        const char *a = T[i % 3][0], *b = T[i % 3][1];
        cg_verifier_features(dotf(u, w), u, w, a, strlen(a), b, strlen(b), 0, x + i * NF);
    }
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *b = malloc(1 << 20);
    assert_non_null(b);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* Trains with opts on synthetic data and returns the file's bytes. */
static unsigned char *train_bytes(const cg_verifier_train_opts *o, size_t n, int flip,
                                  size_t *len) {
    float *x = malloc(n * NF * sizeof *x);
    uint8_t *y = malloc(n);
    assert_non_null(x);
    assert_non_null(y);
    synth(n, 42, x, y);
    if (flip)
        y[0] ^= 1u;
    char err[256], path[] = "/tmp/cg-verifier-XXXXXX";
    cg_verifier *v = cg_verifier_train(x, y, n, o, err, sizeof err);
    assert_non_null(v);
    assert_int_equal(cg_verifier_set_operating_point(v, 0.8f, 0.9f, 7, "unit test"), 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cg_verifier_save(v, path, err, sizeof err), 0);
    unsigned char *b = read_all(path, len);
    unlink(path);
    cg_verifier_free(v);
    free(x);
    free(y);
    return b;
}

/* ------------------------------------------------------------------ */

static void features_of(const char *a, const char *b, const float *u, const float *w, float *x) {
    unsigned m = 0;
    cg_gate_check_all(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, 0, NULL, &m);
    cg_verifier_features(u && w ? dotf(u, w) : 0.9f, u, w, a, a ? strlen(a) : 0, b,
                         b ? strlen(b) : 0, m, x);
}

static void test_features(void **state) {
    (void)state;
    static float x[NF], x2[NF], u[D], w[D];
    uint64_t s = 7;
    pair_vecs(&s, 1, u, w);
    /* identical */
    features_of("How do I learn Python?", "How do I learn Python?", u, u, x);
    assert_true(fabsf(x[CG_VF_COS] - 1.0f) < 1e-5f);
    assert_true(x[CG_VF_JAC_WORDS] == 1.0f && x[CG_VF_JAC_CONTENT] == 1.0f);
    assert_true(x[CG_VF_JAC_CHARS] == 1.0f && x[CG_VF_SAME_WORDS] == 1.0f);
    assert_true(x[CG_VF_ONLY_NONE] == 1.0f && x[CG_VF_ONLY_MAX] == 0.0f);
    for (int k = 0; k < D; k++) {
        assert_true(x[CG_VF_N + k] == 0.0f);
        assert_true(fabsf(x[CG_VF_N + D + k] - u[k] * u[k]) < 1e-9f);
    }
    /* symmetric, on varied pairs */
    static const char *const P[][2] = {
        {"What is the best Christmas gift you've ever given?",
         "What is the best Christmas gift you've ever received?"},
        {"preprocessor directives in C++", "preprocessor directives in C"},
        {"서울에 가고 싶어요", "서울에 가고 싶지 않아요"},
        {"top 10 cafes in Berlin", "top 100 cafes in Paris"},
        {"", "something"},
        {NULL, "something"},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        features_of(P[i][0], P[i][1], u, w, x);
        features_of(P[i][1], P[i][0], w, u, x2);
        for (int k = 0; k < NF; k++)
            if (x[k] != x2[k] || !isfinite(x[k]))
                fail_msg("pair %zu feature %d: %g vs %g", i, k, (double)x[k], (double)x2[k]);
    }
    /* the differing words are seen */
    features_of(P[0][0], P[0][1], u, w, x);
    assert_true(x[CG_VF_SAME_WORDS] == 0.0f && x[CG_VF_ONLY_MIN] > 0.0f);
    assert_true(x[CG_VF_JAC_WORDS] < 1.0f && x[CG_VF_JAC_WORDS] > 0.5f);
    /* C vs C++: the symbols are a token */
    features_of(P[1][0], P[1][1], u, w, x);
    assert_true(x[CG_VF_SAME_WORDS] == 0.0f && x[CG_VF_ONLY_ONE] == 1.0f);
    /* the gate's mask lands in its inputs */
    features_of(P[3][0], P[3][1], u, w, x);
    assert_true(x[CG_VF_GATE_FIRST + CG_GATE_NUMBERS - 1] == 1.0f);
    assert_true(x[CG_VF_GATE_FIRST + CG_GATE_NEGATION - 1] == 0.0f);
    /* apostrophes and case do not make a difference; plural s is dropped */
    features_of("What's the BEST laptop?", "whats the best laptops", u, u, x);
    assert_true(x[CG_VF_JAC_CONTENT] == 1.0f && x[CG_VF_ONLY_NONE] == 1.0f);
    /* no embeddings: that part is zero */
    features_of("a b", "a c", NULL, NULL, x);
    for (int k = CG_VF_N; k < NF; k++)
        assert_true(x[k] == 0.0f);
    /* a text longer than the scan bound */
    size_t n = CG_VERIFIER_SCAN_MAX * 3;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)("ab cd\xc3\xa9 "[i % 8]);
    big[n] = '\0';
    features_of(big, "ab cd", u, w, x);
    for (int k = 0; k < NF; k++)
        assert_true(isfinite(x[k]));
    free(big);
}

static void test_feature_names(void **state) {
    (void)state;
    char a[48], b[48];
    assert_string_equal(cg_verifier_feature_name(CG_VF_COS, a, sizeof a), "cos");
    assert_string_equal(
        cg_verifier_feature_name(CG_VF_GATE_FIRST + CG_GATE_NUMBERS - 1, a, sizeof a),
        "gate_numbers");
    assert_string_equal(cg_verifier_feature_name(CG_VF_N, a, sizeof a), "absdiff_0");
    assert_string_equal(cg_verifier_feature_name(CG_VF_N + D + 5, a, sizeof a), "prod_5");
    assert_string_equal(cg_verifier_feature_name(NF, a, sizeof a), "?");
    for (int i = 0; i < CG_VF_N + 2; i++)
        for (int j = i + 1; j < CG_VF_N + 2; j++)
            assert_string_not_equal(cg_verifier_feature_name((size_t)i, a, sizeof a),
                                    cg_verifier_feature_name((size_t)j, b, sizeof b));
    assert_true(cg_verifier_feature_id() != 0);
    assert_true(cg_verifier_feature_id() == cg_verifier_feature_id());
}

/* ------------------------------------------------------------------ */

static void test_train_deterministic(void **state) {
    (void)state;
    cg_verifier_train_opts o;
    cg_verifier_train_opts_default(&o);
    o.epochs = 5;
    size_t la, lb, lc, ld;
    unsigned char *a = train_bytes(&o, 300, 0, &la), *b = train_bytes(&o, 300, 0, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    unsigned char *c = train_bytes(&o, 300, 1, &lc); /* one label flipped */
    assert_int_equal(la, lc);
    assert_true(memcmp(a, c, la) != 0);
    free(a), free(b), free(c);
    /* a network: the same, and the seed matters */
    o.hidden = 4;
    a = train_bytes(&o, 300, 0, &la);
    b = train_bytes(&o, 300, 0, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    o.seed = 2;
    unsigned char *d = train_bytes(&o, 300, 0, &ld);
    assert_int_equal(la, ld);
    assert_true(memcmp(a, d, la) != 0);
    free(a), free(b), free(d);
}

static void test_train_fits(void **state) {
    (void)state;
    size_t n = 400;
    float *x = malloc(n * NF * sizeof *x);
    uint8_t *y = malloc(n);
    assert_non_null(x);
    assert_non_null(y);
    synth(n, 9, x, y);
    cg_verifier_train_opts o;
    cg_verifier_train_opts_default(&o);
    o.epochs = 20;
    char err[256];
    for (unsigned h = 0; h <= 3; h += 3) {
        o.hidden = h;
        cg_verifier *v = cg_verifier_train(x, y, n, &o, err, sizeof err);
        assert_non_null(v);
        size_t right = 0;
        for (size_t i = 0; i < n; i++) {
            float p = cg_verifier_prob(v, x + i * NF);
            assert_true(p >= 0.0f && p <= 1.0f);
            right += (p >= 0.5f) == (y[i] != 0);
        }
        if (right * 10 < n * 9)
            fail_msg("hidden %u: %zu of %zu right", h, right, n);
        cg_verifier_info in;
        cg_verifier_get_info(v, &in);
        assert_int_equal(in.hidden, h);
        assert_int_equal(in.n_train, n);
        assert_int_equal(in.epochs, 20);
        assert_true(in.data_digest != 0);
        cg_verifier_free(v);
    }
    /* bad options */
    o.epochs = 0;
    assert_null(cg_verifier_train(x, y, n, &o, err, sizeof err));
    o.epochs = 1;
    o.hidden = CG_VERIFIER_MAX_HIDDEN + 1;
    assert_null(cg_verifier_train(x, y, n, &o, err, sizeof err));
    o.hidden = 0;
    o.lr = NAN;
    assert_null(cg_verifier_train(x, y, n, &o, err, sizeof err));
    o.lr = 0.001f;
    assert_null(cg_verifier_train(x, y, 0, &o, err, sizeof err));
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ */

static uint64_t fnv64(const unsigned char *p, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing checksum so that only the edited field is wrong. */
static void reseal(unsigned char *b, size_t len) {
    uint64_t h = fnv64(b, len - 8);
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void expect_reject(const unsigned char *b, size_t len, const char *why) {
    char err[256] = "";
    cg_verifier *v = cg_verifier_parse(b, len, err, sizeof err);
    if (v) {
        cg_verifier_free(v);
        fail_msg("accepted a file that should fail with '%s'", why);
    }
    if (!strstr(err, why))
        fail_msg("error '%s' does not say '%s'", err, why);
}

static unsigned char *small_model(size_t *len, unsigned hidden) {
    cg_verifier_train_opts o;
    cg_verifier_train_opts_default(&o);
    o.epochs = 2;
    o.hidden = hidden;
    return train_bytes(&o, 64, 0, len);
}

static void test_file_roundtrip(void **state) {
    (void)state;
    for (unsigned h = 0; h <= 2; h += 2) {
        size_t len;
        unsigned char *b = small_model(&len, h);
        assert_int_equal(len, HEADER + 8 + 4 * (h ? h * NF + 2 * h + 1 : NF + 1));
        char err[256];
        cg_verifier *v = cg_verifier_parse(b, len, err, sizeof err);
        assert_non_null(v);
        cg_verifier_info in;
        cg_verifier_get_info(v, &in);
        assert_int_equal(in.version, CG_VERIFIER_VERSION);
        assert_int_equal(in.hidden, h);
        assert_int_equal(in.inputs, NF);
        assert_true(in.floor == 0.8f && in.threshold == 0.9f);
        assert_int_equal(in.n_val, 7);
        assert_string_equal(in.note, "unit test");
        /* loading from a file gives the same model */
        char path[] = "/tmp/cg-verifier-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b, len), (ssize_t)len);
        close(fd);
        cg_verifier *w = cg_verifier_load(path, err, sizeof err);
        assert_non_null(w);
        static float x[NF];
        uint64_t s = 3;
        for (int k = 0; k < 10; k++) {
            for (int i = 0; i < NF; i++)
                x[i] = gauss(&s) * 0.1f;
            assert_true(cg_verifier_prob(v, x) == cg_verifier_prob(w, x));
        }
        unlink(path);
        cg_verifier_free(v);
        cg_verifier_free(w);
        free(b);
    }
    char err[256];
    assert_null(cg_verifier_load("/nonexistent/cg-verifier.bin", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/cg-verifier.bin"));
    cg_verifier_free(NULL);
}

static void test_file_rejects(void **state) {
    (void)state;
    size_t len;
    unsigned char *good = small_model(&len, 0);
    unsigned char *b = malloc(len + 1);
    assert_non_null(b);
    char err[256];
    assert_null(cg_verifier_parse(NULL, 0, err, sizeof err));
    /* truncated anywhere, or one byte too long */
    size_t cuts[] = {0, 7, 8, HEADER - 1, HEADER, HEADER + 8, len - 9, len - 8, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        memcpy(b, good, len);
        assert_null(cg_verifier_parse(b, cuts[i], err, sizeof err));
    }
    memcpy(b, good, len);
    b[len] = 0;
    expect_reject(b, len + 1, "bytes");
    /* one flipped bit anywhere: the checksum */
    size_t at[] = {3, 10, 40, 100, HEADER, HEADER + 2000, len - 12, len - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(b, good, len);
        b[at[i]] ^= 0x10;
        assert_null(cg_verifier_parse(b, len, err, sizeof err));
    }
    memcpy(b, good, len);
    b[HEADER + 400] ^= 1;
    expect_reject(b, len, "checksum");
    /* each field, re-sealed so its own check fires */
    memcpy(b, good, len);
    b[0] = 'X';
    reseal(b, len);
    expect_reject(b, len, "magic");
    memcpy(b, good, len);
    put32(b + 8, CG_VERIFIER_VERSION + 1);
    reseal(b, len);
    expect_reject(b, len, "version");
    memcpy(b, good, len);
    put32(b + 12, 256); /* dim */
    reseal(b, len);
    expect_reject(b, len, "features");
    memcpy(b, good, len);
    b[30] ^= 0x55; /* feature-set id */
    reseal(b, len);
    expect_reject(b, len, "features");
    memcpy(b, good, len);
    put32(b + 24, CG_VERIFIER_MAX_HIDDEN + 1);
    reseal(b, len);
    expect_reject(b, len, "hidden");
    memcpy(b, good, len);
    put32(b + 24, 1); /* one unit, with a regression's weights: wrong size */
    reseal(b, len);
    expect_reject(b, len, "bytes");
    memcpy(b, good, len);
    put32(b + HEADER + 4 * 5, 0x7FC00000u); /* a NaN weight */
    reseal(b, len);
    expect_reject(b, len, "not finite");
    memcpy(b, good, len);
    put32(b + 36, 0x3FC00000u); /* floor 1.5 */
    reseal(b, len);
    expect_reject(b, len, "operating point");
    /* and the untouched file still loads */
    cg_verifier *v = cg_verifier_parse(good, len, err, sizeof err);
    assert_non_null(v);
    cg_verifier_free(v);
    free(b);
    free(good);
}

/* ------------------------------------------------------------------ */

/* A model that says nearly 1 (label 1) or 0 for every input: trained on
 * one row repeated with a constant label, so standardisation zeroes every
 * input and only the bias moves. */
static cg_verifier *constant_model(int label) {
    size_t n = 256;
    float *x = malloc(n * NF * sizeof *x);
    uint8_t *y = malloc(n);
    assert_non_null(x);
    assert_non_null(y);
    synth(1, 5, x, y);
    for (size_t i = 1; i < n; i++)
        memcpy(x + i * NF, x, NF * sizeof *x);
    memset(y, label, n);
    cg_verifier_train_opts o;
    cg_verifier_train_opts_default(&o);
    o.lr = 0.5f;
    o.epochs = 40;
    char err[256];
    cg_verifier *v = cg_verifier_train(x, y, n, &o, err, sizeof err);
    assert_non_null(v);
    free(x);
    free(y);
    return v;
}

typedef struct {
    const char *a, *b;
    float u[D], w[D], cos;
} sample;

static void sample_init(sample *s, const char *a, const char *b, float cos_target) {
    uint64_t r = 11;
    s->a = a;
    s->b = b;
    pair_vecs(&r, 1, s->u, s->w);
    s->cos = cos_target; /* the caller's cosine: accept reads it as given */
}

static int accept(const cg_verifier *v, const sample *s, float cos, const cg_semantic_policy *p,
                  cg_semantic_verdict *out) {
    return cg_semantic_accept(v, cos, s->u, s->w, s->a, strlen(s->a), s->b, strlen(s->b), p, out);
}

static void test_accept_floor(void **state) {
    (void)state;
    cg_verifier *yes = constant_model(1);
    static sample s;
    sample_init(&s, "How can I learn Python?", "How do I learn Python?", 0.9f);
    cg_semantic_policy p = {
        .floor = 0.85f, .verifier_threshold = 0.5f, .gate_rules = CG_GATE_DEFAULT_RULES};
    cg_semantic_verdict out;
    assert_int_equal(accept(yes, &s, 0.86f, &p, &out), 1);
    assert_int_equal(out.reason, CG_SEM_ACCEPT);
    assert_true(out.prob > 0.99f);
    assert_non_null(strstr(out.detail, "accept"));
    /* below the floor: rejected whatever the verifier would say */
    assert_int_equal(accept(yes, &s, 0.84f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_BELOW_FLOOR);
    assert_true(out.prob == -1.0f);
    /* a request may raise the floor... */
    p.request_floor = 0.9f;
    assert_int_equal(accept(yes, &s, 0.88f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_BELOW_FLOOR);
    assert_true(out.floor == 0.9f);
    assert_int_equal(accept(yes, &s, 0.9f, &p, &out), 1);
    /* ...never lower it */
    p.request_floor = 0.5f;
    assert_int_equal(accept(yes, &s, 0.84f, &p, &out), 0);
    assert_true(out.floor == 0.85f);
    p.request_floor = NAN;
    assert_int_equal(accept(yes, &s, 0.84f, &p, &out), 0);
    p.request_floor = 0;
    /* NaN fails closed */
    assert_int_equal(accept(yes, &s, NAN, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_BELOW_FLOOR);
    p.floor = NAN;
    assert_int_equal(accept(yes, &s, 0.99f, &p, &out), 0);
    p.floor = 0.85f;
    p.verifier_threshold = NAN;
    assert_int_equal(accept(yes, &s, 0.99f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_VERIFIER);
    /* no policy */
    assert_int_equal(accept(yes, &s, 0.99f, NULL, &out), 0);
    assert_int_equal(out.reason, CG_SEM_BAD_INPUT);
    p.verifier_threshold = 0.5f;
    assert_int_equal(accept(yes, &s, 0.99f, &p, NULL), 1); /* out may be NULL */
    cg_verifier_free(yes);
}

static void test_accept_gate_wins(void **state) {
    (void)state;
    cg_verifier *yes = constant_model(1);
    static sample s;
    sample_init(&s, "How do I convert 100 USD to EUR?", "How do I convert 10 USD to EUR?", 0.99f);
    cg_semantic_policy p = {
        .floor = 0.5f, .verifier_threshold = 0.5f, .gate_rules = CG_GATE_DEFAULT_RULES};
    cg_semantic_verdict out;
    assert_int_equal(accept(yes, &s, 0.999f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_GATE);
    assert_int_equal(out.gate, CG_GATE_NUMBERS);
    assert_non_null(strstr(out.detail, "gate numbers"));
    assert_non_null(strstr(out.detail, "number"));
    assert_true(out.prob == -1.0f); /* never asked */
    /* the policy's rule set is the one applied */
    p.gate_rules = CG_GATE_RULE(CG_GATE_NEGATION);
    assert_int_equal(accept(yes, &s, 0.999f, &p, &out), 1);
    sample_init(&s, "Is it safe to drink coffee while pregnant?",
                "Is it not safe to drink coffee while pregnant?", 0.99f);
    assert_int_equal(accept(yes, &s, 0.999f, &p, &out), 0);
    assert_int_equal(out.gate, CG_GATE_NEGATION);
    cg_verifier_free(yes);
}

static void test_accept_threshold(void **state) {
    (void)state;
    cg_verifier *yes = constant_model(1), *no = constant_model(0);
    static sample s;
    sample_init(&s, "How can I learn Python?", "How do I learn Python?", 0.95f);
    cg_semantic_policy p = {
        .floor = 0.8f, .verifier_threshold = 0.5f, .gate_rules = CG_GATE_DEFAULT_RULES};
    cg_semantic_verdict out;
    assert_int_equal(accept(no, &s, 0.95f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_VERIFIER);
    assert_true(out.prob < 0.01f);
    assert_non_null(strstr(out.detail, "verifier"));
    /* the threshold is inclusive, exactly */
    float pr = cg_verifier_score(yes, 0.95f, s.u, s.w, s.a, strlen(s.a), s.b, strlen(s.b));
    assert_int_equal(accept(yes, &s, 0.95f, &p, &out), 1);
    assert_true(out.prob == pr);
    p.verifier_threshold = pr;
    assert_int_equal(accept(yes, &s, 0.95f, &p, &out), 1);
    p.verifier_threshold = nextafterf(pr, 2.0f);
    assert_int_equal(accept(yes, &s, 0.95f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_VERIFIER);
    /* no model with a threshold: fail closed */
    p.verifier_threshold = 0.5f;
    assert_int_equal(accept(NULL, &s, 0.95f, &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_NO_VERIFIER);
    /* a model needs both embeddings */
    assert_int_equal(
        cg_semantic_accept(yes, 0.95f, NULL, s.w, s.a, strlen(s.a), s.b, strlen(s.b), &p, &out), 0);
    assert_int_equal(out.reason, CG_SEM_BAD_INPUT);
    /* threshold 0: the verifier is off, floor and gate alone */
    p.verifier_threshold = 0.0f;
    assert_int_equal(
        cg_semantic_accept(NULL, 0.95f, NULL, NULL, s.a, strlen(s.a), s.b, strlen(s.b), &p, &out),
        1);
    assert_true(out.prob == -1.0f);
    assert_int_equal(accept(no, &s, 0.95f, &p, &out), 1);
    assert_string_equal(cg_semantic_reason_name(CG_SEM_GATE), "gate");
    assert_string_equal(cg_semantic_reason_name(CG_SEM_ACCEPT), "accept");
    assert_string_equal(cg_semantic_reason_name((cg_semantic_reason)99), "?");
    cg_verifier_free(yes);
    cg_verifier_free(no);
}

static void test_policy_default(void **state) {
    (void)state;
    cg_semantic_policy p;
    cg_semantic_policy_default(&p, NULL);
    assert_true(p.floor == CG_SEMANTIC_FLOOR_NO_VERIFIER);
    assert_true(p.verifier_threshold == 0.0f && p.request_floor == 0.0f);
    assert_int_equal(p.gate_rules, CG_GATE_DEFAULT_RULES);
    size_t len;
    unsigned char *b = small_model(&len, 0);
    char err[256];
    cg_verifier *v = cg_verifier_parse(b, len, err, sizeof err);
    assert_non_null(v);
    cg_semantic_policy_default(&p, v);
    assert_true(p.floor == 0.8f && p.verifier_threshold == 0.9f);
    cg_verifier_free(v);
    free(b);
}

/* The committed model: loads, records the documented operating point. */
static void test_shipped_model(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    if (!src) {
        skip();
        return;
    }
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", src, CG_VERIFIER_DEFAULT_PATH);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < 100 * 1024);
    cg_verifier *v = cg_verifier_load(path, err, sizeof err);
    if (!v)
        fail_msg("%s", err);
    cg_verifier_info in;
    cg_verifier_get_info(v, &in);
    assert_true(in.floor == CG_SEMANTIC_DEFAULT_FLOOR);
    assert_true(in.threshold == CG_SEMANTIC_DEFAULT_VERIFIER_THRESHOLD);
    assert_non_null(strstr(in.note, "component split"));
    assert_true(in.n_train > 10000 && in.n_val > 10000);
    cg_verifier_free(v);
}

typedef struct {
    const cg_verifier *v;
    const sample *s;
    const cg_semantic_policy *p;
    cg_semantic_verdict want;
    int bad;
} job;

static void *hammer(void *arg) {
    job *j = arg;
    for (int i = 0; i < 200; i++) {
        cg_semantic_verdict out;
        accept(j->v, j->s, 0.93f, j->p, &out);
        if (out.accept != j->want.accept || out.prob != j->want.prob ||
            strcmp(out.detail, j->want.detail) != 0)
            j->bad++;
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    size_t len;
    unsigned char *b = small_model(&len, 2);
    char err[256];
    cg_verifier *v = cg_verifier_parse(b, len, err, sizeof err);
    assert_non_null(v);
    static sample s;
    /* a pair the gate passes, so that every call reaches the verifier */
    sample_init(&s, "What is the best Christmas gift you've ever given?",
                "What's the best Christmas gift you have ever given?", 0.93f);
    cg_semantic_policy p = {
        .floor = 0.8f, .verifier_threshold = 0.3f, .gate_rules = CG_GATE_DEFAULT_RULES};
    job j[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (job){v, &s, &p, {0}, 0};
        accept(v, &s, 0.93f, &p, &j[i].want);
    }
    assert_true(j[0].want.prob >= 0.0f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &j[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(j[i].bad, 0);
    }
    cg_verifier_free(v);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_feature_names),
        cmocka_unit_test(test_train_deterministic),
        cmocka_unit_test(test_train_fits),
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_file_rejects),
        cmocka_unit_test(test_accept_floor),
        cmocka_unit_test(test_accept_gate_wins),
        cmocka_unit_test(test_accept_threshold),
        cmocka_unit_test(test_policy_default),
        cmocka_unit_test(test_shipped_model),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
