/* test_tokenizer: the embedder's SentencePiece tokenizer on edge cases.
 *
 * Owns: ids that must equal the reference JavaScript tokenizer's (expected
 * values were produced by @energetic-ai/embeddings' Tokenizer.encode):
 * empty and whitespace-only text, NFKC (ligatures, full width, NBSP,
 * combining marks, characters newer than utf8proc), unknown characters and their merging, the
 * null-score
 * ':' pieces, a duplicated piece, invalid UTF-8 (WHATWG U+FFFD), and the
 * 128-token window on long text with and without spaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "embed_test_util.h"

static cg_embedder *E;

static int setup(void **state) {
    (void)state;
    E = open_model(CG_EMBED_ISA_AUTO);
    return E ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cg_embed_close(E);
    return 0;
}

static void expect_ids(const char *text, size_t len, const int32_t *want, int n) {
    int32_t got[CG_EMBED_MAX_TOKENS];
    int m = cg_embed_tokenize(E, text, len, got, CG_EMBED_MAX_TOKENS);
    if (m != n) {
        fprintf(stderr, "text \"%.*s\": %d ids, want %d:", (int)len, text, m, n);
        for (int i = 0; i < m; i++)
            fprintf(stderr, " %d", got[i]);
        fputc('\n', stderr);
    }
    assert_int_equal(m, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

#define EXPECT(text, ...)                                                                          \
    do {                                                                                           \
        static const int32_t w_[] = {__VA_ARGS__};                                                 \
        expect_ids(text, sizeof(text) - 1, w_, (int)(sizeof w_ / sizeof w_[0]));                   \
    } while (0)

static void test_empty_and_space(void **state) {
    (void)state;
    int32_t ids[4];
    assert_int_equal(cg_embed_tokenize(E, "", 0, ids, 4), 0);
    assert_int_equal(cg_embed_tokenize(E, NULL, 0, ids, 4), 0);
    EXPECT("   ", 30, 30, 30, 30); /* U+2581 + three U+2581, nothing collapsed */
    EXPECT("x", 649);
    EXPECT("a\tb\nc", 11, 0, 151, 0, 131); /* only U+0020 is a word boundary */
}

static void test_plain(void **state) {
    (void)state;
    EXPECT("Hello world, this is a test.", 341, 4125, 311, 8, 43, 18, 11, 748, 6);
    EXPECT("<s> </s>", 4787, 7, 1431, 4787, 68, 7, 1431); /* reserved pieces never match */
    EXPECT("http://example.com", 290, 255, 773, 1563, 147, 6, 167);
}

static void test_null_scores_and_duplicates(void **state) {
    (void)state;
    /* ':' pieces have a null score in vocab.json (0 in the reference). */
    EXPECT("The meeting is at 10:30 :)", 34, 1566, 18, 38, 320, 4177, 658);
    /* "\u201d5" is in the vocabulary three times; the last one wins. */
    EXPECT("\xe2\x80\x9d"
           "5",
           30, 4464);
}

static void test_nfkc(void **state) {
    (void)state;
    EXPECT("\xef\xac\x81ne \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", 839, 74, 2512); /* fi lig, ABC */
    EXPECT("a\xc2\xa0"
           "b",
           11, 464);                       /* NBSP -> space -> boundary */
    EXPECT("nai\xcc\x88ve", 1216, 0, 105); /* composed to U+00EF */
    EXPECT("na\xc3\xafve caf\xc3\xa9", 1216, 0, 105, 976, 209, 1133);
    /* U+1CCD6 U+1CCF0 (outlined A, 0; Unicode 16): NFKC "A0" in the
     * reference's runtime, unknown to utf8proc's Unicode 15 tables: taken
     * from the model file's table */
    EXPECT("\xf0\x9c\xb3\x96\xf0\x9c\xb3\xb0", 74, 412);
}

static void test_unknowns(void **state) {
    (void)state;
    EXPECT("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 30, 0);            /* 3 CJK: one unk */
    EXPECT("\xe2\x98\x83\xe2\x98\x83\xe2\x98\x83 snow", 30, 0, 3882); /* snowmen merge */
    EXPECT("\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94", 30, 0); /* Korean */
    EXPECT("\xf0\x9f\x98\x80 emoji", 30, 0, 299, 451, 2501);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    /* a FF b E2 82 ' ' c ED A0 80: each maximal bad subpart is one U+FFFD */
    static const char bad[] = "a\xff"
                              "b\xe2\x82 c\xed\xa0\x80";
    static const int32_t want[] = {11, 0, 151, 0, 598, 0};
    expect_ids(bad, sizeof bad - 1, want, 6);
    /* Same ids as the text with the replacement characters spelled out. */
    static const char rep[] = "a\xef\xbf\xbd"
                              "b\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    expect_ids(rep, sizeof rep - 1, want, 6);
    /* A lone continuation byte at the end and a truncated 4-byte sequence. */
    int32_t ids[8];
    assert_int_equal(cg_embed_tokenize(E, "\x80", 1, ids, 8), 2);
    assert_int_equal(cg_embed_tokenize(E, "ab\xf0\x9f\x98", 5, ids, 8) > 0, 1);
}

static void test_embedded_nul(void **state) {
    (void)state;
    int32_t a[8], b[8];
    int n = cg_embed_tokenize(E, "a\0b", 3, a, 8);
    assert_true(n >= 2);
    /* NUL is an ordinary (unknown) character, not the end of the text. */
    assert_int_not_equal(n, cg_embed_tokenize(E, "a", 1, b, 8));
}

/* The window: ids of long text are the first 128 of the whole text's. */
static void test_long_text(void **state) {
    (void)state;
    size_t cap = 300 * 8 + 1, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int w = 0; w < 300; w++)
        len += (size_t)snprintf(text + len, cap - len, "%sword%d", w ? " " : "", w);
    int32_t full[CG_EMBED_MAX_TOKENS], pre[CG_EMBED_MAX_TOKENS];
    assert_int_equal(cg_embed_tokenize(E, text, len, full, CG_EMBED_MAX_TOKENS), 128);
    /* 100 words give > 128 tokens too: the first 128 ids must agree. */
    size_t cut = 0;
    for (int spaces = 0; cut < len && spaces < 100; cut++)
        spaces += text[cut] == ' ';
    assert_int_equal(cg_embed_tokenize(E, text, cut - 1, pre, CG_EMBED_MAX_TOKENS), 128);
    assert_memory_equal(full, pre, sizeof full);
    /* cap smaller than the count: count returned, cap respected */
    int32_t few[3] = {-7, -7, -7};
    assert_int_equal(cg_embed_tokenize(E, text, len, few, 2), 128);
    assert_int_equal(few[0], full[0]);
    assert_int_equal(few[2], -7);
    free(text);

    /* 1 MiB with no space at all: bounded work, 128 ids. */
    size_t big = 1u << 20;
    char *blob = malloc(big);
    assert_non_null(blob);
    for (size_t i = 0; i < big; i++)
        blob[i] = "abcdefghij"[i % 10];
    assert_int_equal(cg_embed_tokenize(E, blob, big, full, CG_EMBED_MAX_TOKENS), 128);
    /* multi-byte characters cut at the byte cap stay whole */
    for (size_t i = 0; i + 3 <= big; i += 3)
        memcpy(blob + i, "\xe2\x82\xac", 3); /* euro sign */
    assert_true(cg_embed_tokenize(E, blob, big, full, CG_EMBED_MAX_TOKENS) >= 1);
    free(blob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_space),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_null_scores_and_duplicates),
        cmocka_unit_test(test_nfkc),
        cmocka_unit_test(test_unknowns),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_long_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
