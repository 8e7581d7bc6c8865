/* test_learned: unit tests of src/route/learned.c.
 *
 * Owns: the trainer converging on small synthetic separable sets (by words,
 * by a hand feature), validation choosing the regularisation, determinism,
 * the model file round trip (bit-identical predictions) and every way a
 * model file is refused: missing, empty, bad magic, unsupported version,
 * truncated, edited (checksum), out-of-range or unordered indexes,
 * non-finite numbers, a different hand-feature set, trailing data. Also the
 * embedding slot (a model with embed_dim > 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route/learned.h"

#define NTR 240
#define NVA 80

static char texts[NTR + NVA][96];
static cg_learned_example tr[NTR], va[NVA];

static uint64_t rng_state = 88172645463325252ull;
static unsigned rnd(unsigned n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Label 1 iff the text holds "알파" or "alpha"; noise words otherwise. */
static void make_word_set(void) {
    static const char *noise[] = {"the",    "cat",  "sat",   "on",    "mat",
                                  "데이터", "분석", "quick", "brown", "fox",
                                  "jumps",  "over", "lazy",  "dog",   "1234"};
    rng_state = 88172645463325252ull;
    for (int i = 0; i < NTR + NVA; i++) {
        int y = i % 2;
        char *t = texts[i];
        t[0] = '\0';
        for (int w = 0; w < 6; w++) {
            strcat(t, noise[rnd(15)]);
            strcat(t, " ");
        }
        strcat(t, y ? (rnd(2) ? "alpha" : "알파") : (rnd(2) ? "beta" : "베타"));
        cg_learned_example *e = i < NTR ? &tr[i] : &va[i - NTR];
        memset(e, 0, sizeof *e);
        e->text = t;
        e->len = strlen(t);
        e->y = (float)y;
        e->w = 1.0f;
    }
}

static float predict(const cg_learned_model *m, const char *text, const float *hand) {
    cg_learned_input in = {text, strlen(text), hand, NULL, 0};
    return cg_learned_predict(m, &in);
}

static double accuracy(const cg_learned_model *m, const cg_learned_example *ex, size_t n) {
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        cg_learned_input in = {ex[i].text, ex[i].len, ex[i].hand, NULL, 0};
        float p = cg_learned_predict(m, &in);
        ok += (p >= 0.5f) == (ex[i].y >= 0.5f);
    }
    return (double)ok / (double)n;
}

static void test_converges_on_words(void **state) {
    (void)state;
    make_word_set();
    cg_learned_opts o;
    cg_learned_opts_default(&o);
    cg_learned_report rep;
    char err[256];
    cg_learned_model *m = cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, &rep, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(rep.n_train, NTR);
    assert_int_equal(rep.n_val, NVA);
    assert_int_equal(rep.n_l2, o.n_l2);
    assert_true(rep.refit);
    assert_true(rep.nonzero > 10);
    assert_true(accuracy(m, tr, NTR) == 1.0);
    assert_true(accuracy(m, va, NVA) == 1.0);
    /* Unseen texts with the deciding word. */
    assert_true(predict(m, "lazy dog alpha", NULL) > 0.8f);
    assert_true(predict(m, "fox 알파 mat", NULL) > 0.8f);
    assert_true(predict(m, "lazy dog beta", NULL) < 0.2f);
    /* No text at all: the bias alone, strictly inside (0,1). */
    float p0 = predict(m, "", NULL);
    assert_true(p0 > 0.0f && p0 < 1.0f);
    cg_learned_free(m);
}

/* The label depends only on hand feature 0; texts are identical. */
static void test_converges_on_hand_feature(void **state) {
    (void)state;
    for (int i = 0; i < NTR + NVA; i++) {
        cg_learned_example *e = i < NTR ? &tr[i] : &va[i - NTR];
        memset(e, 0, sizeof *e);
        e->text = "same text for all";
        e->len = strlen(e->text);
        int y = i % 2;
        e->hand[0] = (float)(y ? 2.0 + (i % 7) * 0.1 : -2.0 - (i % 5) * 0.1);
        e->hand[3] = 5.0f; /* a constant feature: scale 0, ignored */
        e->y = (float)y;
        e->w = 1.0f;
    }
    cg_learned_opts o;
    cg_learned_opts_default(&o);
    char err[256];
    cg_learned_model *m = cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(m);
    assert_true(accuracy(m, va, NVA) == 1.0);
    float hi[CG_CLASS_NFEAT] = {3.0f}, lo[CG_CLASS_NFEAT] = {-3.0f};
    assert_true(predict(m, "same text for all", hi) > 0.9f);
    assert_true(predict(m, "same text for all", lo) < 0.1f);
    cg_learned_free(m);
}

/* A validation metric that prefers the largest L2 is honoured. */
static double prefer_flat(const float *p, size_t n, void *arg) {
    (void)arg;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s -= fabs(p[i] - 0.5);
    return s;
}

static void test_validation_chooses_l2(void **state) {
    (void)state;
    make_word_set();
    static const float grid[] = {1e-5f, 1e-2f, 1.0f};
    cg_learned_opts o;
    cg_learned_opts_default(&o);
    o.l2_grid = grid;
    o.n_l2 = 3;
    cg_learned_report rep;
    char err[256];
    cg_learned_model *m =
        cg_learned_train(tr, NTR, va, NVA, &o, prefer_flat, NULL, &rep, err, sizeof err);
    assert_non_null(m);
    assert_true(rep.chosen_l2 == 1.0f);
    assert_true(rep.val[2] > rep.val[0]);
    cg_learned_info inf;
    cg_learned_get_info(m, &inf);
    assert_true(inf.l2 == 1.0f);
    cg_learned_free(m);
    /* Without validation data the first grid value is used. */
    m = cg_learned_train(tr, NTR, NULL, 0, &o, NULL, NULL, &rep, err, sizeof err);
    assert_non_null(m);
    assert_true(rep.chosen_l2 == 1e-5f);
    assert_false(rep.refit);
    cg_learned_free(m);
}

static void test_bad_options(void **state) {
    (void)state;
    make_word_set();
    char err[256];
    cg_learned_opts o;
    cg_learned_opts_default(&o);
    o.hash_bits = 30;
    assert_null(cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "options"));
    cg_learned_opts_default(&o);
    assert_null(cg_learned_train(tr, 0, va, NVA, &o, NULL, NULL, NULL, err, sizeof err));
    tr[3].y = 1.5f;
    assert_null(cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "label"));
    tr[3].y = 1.0f;
    static const float nan_grid[] = {NAN};
    o.l2_grid = nan_grid;
    o.n_l2 = 1;
    assert_null(cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, NULL, err, sizeof err));
    assert_true(cg_learned_predict(NULL, NULL) == 0.5f);
}

/* ------------------------------------------------------------------ */
/* Model files                                                          */

static char path[] = "/tmp/cg_test_learned_XXXXXX";

static cg_learned_model *trained(void) {
    make_word_set();
    cg_learned_opts o;
    cg_learned_opts_default(&o);
    o.hash_bits = 12;
    o.note = "unit test\nsecond line";
    char err[256];
    cg_learned_model *m = cg_learned_train(tr, NTR, va, NVA, &o, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(m);
    return m;
}

static char *slurp(const char *p, size_t *len) {
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void test_round_trip_and_determinism(void **state) {
    (void)state;
    cg_learned_model *a = trained(), *b = trained();
    char err[512];
    assert_int_equal(cg_learned_save(a, path, err, sizeof err), 0);
    size_t la;
    char *fa = slurp(path, &la);
    assert_int_equal(cg_learned_save(b, path, err, sizeof err), 0);
    size_t lb;
    char *fb = slurp(path, &lb);
    assert_int_equal(la, lb); /* two trainings, byte-identical files */
    assert_memory_equal(fa, fb, la);
    assert_non_null(strstr(fa, "costgate-route-model 1\nlabel needed\nhash_bits 12\n"));
    assert_non_null(strstr(fa, "note unit test second line\n")); /* one line */
    cg_learned_model *c = cg_learned_load(path, err, sizeof err);
    assert_non_null(c);
    const char *probe[] = {"alpha", "베타 fox", "", "the cat sat on the mat alpha beta 알파"};
    float hand[CG_CLASS_NFEAT] = {0.3f, 1.0f, 0.0f, 2.0f};
    for (size_t i = 0; i < 4; i++) {
        float pa = predict(a, probe[i], hand), pc = predict(c, probe[i], hand);
        assert_memory_equal(&pa, &pc, sizeof pa); /* bit-identical */
    }
    cg_learned_info ia, ic;
    cg_learned_get_info(a, &ia);
    cg_learned_get_info(c, &ic);
    assert_int_equal(ia.nonzero, ic.nonzero);
    assert_int_equal(ic.hash_bits, 12);
    assert_int_equal(ic.word_ngrams, 2);
    assert_string_equal(ic.label, "needed");
    free(fa);
    free(fb);
    cg_learned_free(a);
    cg_learned_free(b);
    cg_learned_free(c);
}

/* FNV-1a 64 as the file format defines its checksum. */
static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* body (without a checksum line) + a correct checksum line. */
static char *with_checksum(const char *body, size_t *len) {
    size_t n = strlen(body);
    char *out = malloc(n + 40);
    memcpy(out, body, n);
    n += (size_t)sprintf(out + n, "checksum %016llx\n", (unsigned long long)fnv(body, n));
    *len = n;
    return out;
}

/* The saved file's body with one substitution, re-checksummed. */
static char *edited(const char *body, const char *from, const char *to, size_t *len) {
    const char *at = strstr(body, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - body), fl = strlen(from), tl = strlen(to);
    char *b = malloc(strlen(body) - fl + tl + 1);
    memcpy(b, body, pre);
    memcpy(b + pre, to, tl);
    strcpy(b + pre + tl, at + fl);
    char *out = with_checksum(b, len);
    free(b);
    return out;
}

static void expect_refused(const char *data, size_t len, const char *why) {
    char err[512];
    cg_learned_model *m = cg_learned_parse(data, len, err, sizeof err);
    if (m) {
        cg_learned_free(m);
        fail_msg("accepted a model that should fail with \"%s\"", why);
    }
    if (!strstr(err, why))
        fail_msg("error \"%s\" does not mention \"%s\"", err, why);
}

static void test_corrupt_files(void **state) {
    (void)state;
    cg_learned_model *a = trained();
    char err[512];
    assert_int_equal(cg_learned_save(a, path, err, sizeof err), 0);
    cg_learned_free(a);
    size_t len;
    char *good = slurp(path, &len);
    char *cs = strstr(good, "checksum ");
    assert_non_null(cs);
    char *body = strndup(good, (size_t)(cs - good));
    size_t n;
    char *x;

    assert_null(cg_learned_load("/nonexistent/dir/m.model", err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    expect_refused("", 0, "empty");
    expect_refused(good, len / 2, "truncated");     /* cut mid-file */
    expect_refused(body, strlen(body), "checksum"); /* checksum line missing */
    /* One flipped byte in a weight: the checksum catches it. */
    x = strdup(good);
    char *w = strstr(x, "\nw ");
    assert_non_null(w);
    w[3] = w[3] == '1' ? '2' : '1';
    expect_refused(x, len, "checksum mismatch");
    free(x);
    x = edited(body, "costgate-route-model 1", "costgate-route-model 2", &n);
    expect_refused(x, n, "unsupported model version");
    free(x);
    x = edited(body, "costgate-route-model 1", "some-other-format 1", &n);
    expect_refused(x, n, "bad magic");
    free(x);
    x = edited(body, "hash_bits 12", "hash_bits 40", &n);
    expect_refused(x, n, "hash_bits");
    free(x);
    x = edited(body, "\nw ", "\nw 99999999 0.5\nw ", &n); /* also breaks the count */
    expect_refused(x, n, "line");
    free(x);
    {
        /* An index past 2^hash_bits, keeping the count right. */
        char *first = strstr(body, "\nw ");
        char *eol = strchr(first + 1, '\n');
        char line[64];
        snprintf(line, sizeof line, "%.*s", (int)(eol - first), first);
        x = edited(body, line, "\nw 4096 0.5", &n);
        expect_refused(x, n, "out of range");
        free(x);
        x = edited(body, line, "\nw 0 nan", &n);
        expect_refused(x, n, "w INDEX WEIGHT");
        free(x);
    }
    x = edited(body, "h log_words ", "h some_feature ", &n);
    expect_refused(x, n, "retrain");
    free(x);
    x = edited(body, "bias ", "bias inf", &n);
    expect_refused(x, n, "bias");
    free(x);
    {
        size_t bl = strlen(body);
        char *more = malloc(bl + 32);
        memcpy(more, body, bl);
        strcpy(more + bl, "w 1 0.5\n");
        x = with_checksum(more, &n);
        expect_refused(x, n, "after the weights");
        free(x);
        free(more);
    }
    /* Weight lines out of order. */
    {
        char *w1 = strstr(body, "\nw ");
        char *w2 = strstr(w1 + 1, "\nw ");
        char *w3 = strchr(w2 + 1, '\n');
        assert_non_null(w3);
        size_t l1 = (size_t)(w2 - w1), l2 = (size_t)(w3 - w2);
        char *sw = strdup(body);
        char *d = sw + (w1 - body);
        memcpy(d, w2, l2);
        memcpy(d + l2, w1, l1);
        x = with_checksum(sw, &n);
        expect_refused(x, n, "increase");
        free(x);
        free(sw);
    }
    /* The intact file still loads. */
    cg_learned_model *m = cg_learned_parse(good, len, err, sizeof err);
    assert_non_null(m);
    cg_learned_free(m);
    free(body);
    free(good);
}

/* The embedding slot: a hand-written model with embed_dim 2. */
static void test_embedding_slot(void **state) {
    (void)state;
    char body[8192];
    size_t o = (size_t)sprintf(body,
                               "costgate-route-model 1\nlabel needed\nhash_bits 10\n"
                               "word_ngrams 1\nmax_bytes 100\nl2 0\nnote \nbias 0\nhand %d\n",
                               CG_CLASS_NFEAT);
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++)
        o += (size_t)sprintf(body + o, "h %s 0 0 0\n", cg_class_feature_name(j));
    strcpy(body + o, "embed 2\ne 0 2\ne 1 -1\nweights 0\n");
    size_t n;
    char *x = with_checksum(body, &n);
    char err[256];
    cg_learned_model *m = cg_learned_parse(x, n, err, sizeof err);
    assert_non_null(m);
    cg_learned_info inf;
    cg_learned_get_info(m, &inf);
    assert_int_equal(inf.embed_dim, 2);
    float e1[2] = {1.0f, 0.0f}, e2[2] = {0.0f, 1.0f};
    cg_learned_input in = {"anything", 8, NULL, NULL, 0};
    assert_true(cg_learned_predict(m, &in) == 0.5f); /* no embedding given */
    in.embed = e1;
    in.embed_dim = 2;
    assert_true(fabsf(cg_learned_predict(m, &in) - 1.0f / (1.0f + expf(-2.0f))) < 1e-6f);
    in.embed = e2;
    assert_true(cg_learned_predict(m, &in) < 0.5f);
    in.embed_dim = 3; /* wrong size: ignored */
    assert_true(cg_learned_predict(m, &in) == 0.5f);
    cg_learned_free(m);
    free(x);
}

static int group_setup(void **state) {
    (void)state;
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    unlink(path);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converges_on_words),
        cmocka_unit_test(test_converges_on_hand_feature),
        cmocka_unit_test(test_validation_chooses_l2),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_round_trip_and_determinism),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_embedding_slot),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
