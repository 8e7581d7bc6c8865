/* test_matcher: the classifier's keyword index and regex prefilter
 * (src/route/classify.c) against naive references.
 *
 * Owns: keyword counts per list and per intent from cg_classify_keywords
 * compared with a keyword-by-keyword, position-by-position scan that spells
 * out the documented semantics (ASCII letters in any case; a keyword that
 * starts / ends with a letter, digit or "_" only at a word start / end;
 * Hangul and punctuation as plain byte substrings) on random texts built
 * from keywords in random case, their fragments, Korean and English words,
 * digits, punctuation and invalid UTF-8; hand-picked boundary cases; the
 * literal cg_regex_literal extracts from a regex; and intent regexes with
 * their prefilter compared with plain regexec on random texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/classify.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static int alnum(uint8_t b) {
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_';
}

static uint8_t low(uint8_t b) {
    return b >= 'A' && b <= 'Z' ? (uint8_t)(b + 32) : b;
}

/* The reference: every position, every byte compared. */
static unsigned ref_count(const char *kw, const uint8_t *p, size_t n) {
    size_t m = strlen(kw);
    unsigned c = 0;
    int bs = alnum((uint8_t)kw[0]), be = alnum((uint8_t)kw[m - 1]);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && low(p[i + k]) == low((uint8_t)kw[k]))
            k++;
        if (k < m)
            continue;
        if (bs && i > 0 && alnum(p[i - 1]))
            continue;
        if (be && i + m < n && alnum(p[i + m]))
            continue;
        c++;
    }
    return c;
}

typedef struct lists {
    const char *const *kw[CG_KW_LISTS];
    size_t n[CG_KW_LISTS];
} lists;

static lists lists_of(const cg_classify_cfg *cfg) {
    lists l = {{cfg->simple_keywords, cfg->complex_keywords, cfg->multistep_keywords,
                cfg->reasoning_keywords, cfg->code_keywords, cfg->math_keywords,
                cfg->long_output_keywords},
               {cfg->n_simple_keywords, cfg->n_complex_keywords, cfg->n_multistep_keywords,
                cfg->n_reasoning_keywords, cfg->n_code_keywords, cfg->n_math_keywords,
                cfg->n_long_output_keywords}};
    return l;
}

static void escape(const uint8_t *p, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++)
        o += (size_t)(p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\'
                          ? snprintf(out + o, cap - o, "%c", p[i])
                          : snprintf(out + o, cap - o, "\\x%02x", p[i]));
    out[o] = '\0';
}

/* Compares one text's counts with the reference; fails with the text. */
static void check_text(const cg_classifier *c, const cg_classify_cfg *cfg, const uint8_t *p,
                       size_t n) {
    char *buf = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
    assert_non_null(buf);
    memcpy(buf, p, n);
    cg_kw_hits h;
    assert_int_equal(cg_classify_keywords(c, buf, n, &h), 0);
    lists l = lists_of(cfg);
    char esc[4096];
    for (size_t li = 0; li < CG_KW_LISTS; li++) {
        unsigned want = 0;
        for (size_t j = 0; j < l.n[li]; j++)
            want += ref_count(l.kw[li][j], p, n);
        if (h.list[li] != want) {
            escape(p, n, esc, sizeof esc);
            fail_msg("list %zu: %u hits, reference %u, text \"%s\"", li, h.list[li], want, esc);
        }
    }
    for (size_t ii = 0; ii < cfg->n_intents; ii++) {
        unsigned want = 0;
        for (size_t j = 0; j < cfg->intents[ii].n_keywords; j++)
            want += ref_count(cfg->intents[ii].keywords[j], p, n);
        if (h.intent[ii] != want) {
            escape(p, n, esc, sizeof esc);
            fail_msg("intent %s: %u hits, reference %u, text \"%s\"", cfg->intents[ii].name,
                     h.intent[ii], want, esc);
        }
    }
    free(buf);
}

static const char *const words[] = {"the",        "a",
                                    "data",       "whyever",
                                    "translated", "what",
                                    "is",         "_",
                                    "x1",         "2",
                                    "42",         "오늘",
                                    "날씨",       "번역",
                                    "왜냐하면",   "코드를",
                                    "증",         "명",
                                    "hello",      "sum",
                                    "prov",       "e",
                                    "ing",        "step",
                                    "by",         "c",
                                    "++",         "fn",
                                    "main",       "def",
                                    "=",          ">",
                                    "$",          "\\",
                                    "frac",       "```",
                                    "``",         "#",
                                    "tl",         ";",
                                    "dr",         "\xff",
                                    "\xc3",       "\xa9",
                                    "\xe2\x80",   "\xed\xa0\x80",
                                    "é",          "?",
                                    "？"};
static const char *const seps[] = {"", "", " ", " ", "\n", "\t", ",", ".", "(", ")", "-", "'"};

/* A random text of keywords (random case, sometimes cut or glued to a
 * letter), words, fragments and separators. */
static size_t random_text(const cg_classify_cfg *cfg, uint8_t *out, size_t cap) {
    lists l = lists_of(cfg);
    size_t n = 0, parts = 1 + rnd(12);
    for (size_t i = 0; i < parts; i++) {
        char piece[128];
        uint32_t kind = rnd(10);
        if (kind < 5) {
            const char *kw;
            if (kind < 4) {
                size_t li = rnd(CG_KW_LISTS);
                kw = l.kw[li][rnd((uint32_t)l.n[li])];
            } else {
                const cg_intent_rule *r = &cfg->intents[rnd((uint32_t)cfg->n_intents)];
                kw = r->keywords[rnd((uint32_t)r->n_keywords)];
            }
            size_t m = strlen(kw);
            if (rnd(5) == 0)
                m = 1 + rnd((uint32_t)m); /* a fragment */
            memcpy(piece, kw, m);
            piece[m] = '\0';
            for (size_t k = 0; k < m; k++)
                if (piece[k] >= 'a' && piece[k] <= 'z' && rnd(3) == 0)
                    piece[k] = (char)(piece[k] - 32);
            if (rnd(6) == 0) { /* glued to a letter or digit on one side */
                char g = "xZ7_"[rnd(4)];
                if (rnd(2)) {
                    piece[m] = g;
                } else {
                    memmove(piece + 1, piece, m);
                    piece[0] = g;
                }
                piece[m + 1] = '\0';
            }
        } else {
            snprintf(piece, sizeof piece, "%s", words[rnd(sizeof words / sizeof words[0])]);
        }
        const char *sep = seps[rnd(sizeof seps / sizeof seps[0])];
        size_t pl = strlen(piece), sl = strlen(sep);
        if (n + pl + sl > cap)
            break;
        memcpy(out + n, piece, pl);
        memcpy(out + n + pl, sep, sl);
        n += pl + sl;
    }
    return n;
}

static void test_keywords_match_reference(void **state) {
    (void)state;
    cg_classify_cfg cfg;
    cg_classify_cfg_default(&cfg);
    char err[256];
    cg_classifier *c = cg_classifier_new(&cfg, err, sizeof err);
    assert_non_null(c);
    uint8_t text[1024];
    for (int round = 0; round < 20000; round++) {
        size_t n = random_text(&cfg, text, sizeof text);
        check_text(c, &cfg, text, n);
    }
    /* every keyword alone, in upper case, and inside a Korean sentence */
    lists l = lists_of(&cfg);
    for (size_t li = 0; li < CG_KW_LISTS; li++)
        for (size_t j = 0; j < l.n[li]; j++) {
            const char *kw = l.kw[li][j];
            size_t m = strlen(kw);
            check_text(c, &cfg, (const uint8_t *)kw, m);
            for (size_t k = 0; k < m; k++)
                text[k] = (uint8_t)(kw[k] >= 'a' && kw[k] <= 'z' ? kw[k] - 32 : kw[k]);
            check_text(c, &cfg, text, m);
            int w = snprintf((char *)text, sizeof text, "이것을 %s 해줘", kw);
            check_text(c, &cfg, text, (size_t)w);
        }
    cg_classifier_free(c);
}

static unsigned hits(const cg_classifier *c, const char *text, size_t list) {
    cg_kw_hits h;
    assert_int_equal(cg_classify_keywords(c, text, strlen(text), &h), 0);
    return h.list[list];
}

/* Lists in cg_kw_hits order. */
enum { SIMPLE, COMPLEX, MULTISTEP, REASONING, CODE, MATH, LONGOUT };

static void test_keyword_cases(void **state) {
    (void)state;
    cg_classifier *c = cg_classifier_new(NULL, NULL, 0);
    assert_non_null(c);
    /* case-insensitive ASCII */
    assert_int_equal(hits(c, "TRANSLATE this", SIMPLE), 1);
    assert_int_equal(hits(c, "TrAnSlAtE this", SIMPLE), 1);
    assert_int_equal(hits(c, "WHY is it slow", COMPLEX), 1);
    /* word boundaries at both ends for keywords made of letters */
    assert_int_equal(hits(c, "whyever not", COMPLEX), 0);
    assert_int_equal(hits(c, "anywhy", COMPLEX), 0);
    assert_int_equal(hits(c, "_why", COMPLEX), 0);
    assert_int_equal(hits(c, "2why", COMPLEX), 0);
    assert_int_equal(hits(c, "why?", COMPLEX), 1);
    assert_int_equal(hits(c, "(why)", COMPLEX), 1);
    assert_int_equal(hits(c, "한국why", COMPLEX), 1); /* Hangul is not a word character */
    assert_int_equal(hits(c, "why", COMPLEX), 1);     /* at both ends of the text */
    /* Korean keywords are substrings */
    assert_int_equal(hits(c, "왜냐하면", COMPLEX), 1);
    assert_int_equal(hits(c, "이거번역해줘", SIMPLE), 1);
    assert_int_equal(hits(c, "이거 번역해 줘 번역해", SIMPLE), 2);
    /* keywords ending in punctuation: no boundary needed at that end */
    assert_int_equal(hits(c, "in c++17", CODE), 1);
    assert_int_equal(hits(c, "abc++", CODE), 0); /* starts with a letter: needs a word start */
    assert_int_equal(hits(c, "x```py", CODE), 1);
    assert_int_equal(hits(c, "#include<stdio.h>", CODE), 1);
    assert_int_equal(hits(c, "a=>b", CODE), 1);
    /* multi-word keywords and their spacing */
    assert_int_equal(hits(c, "Think step by step", MULTISTEP), 1);
    assert_int_equal(hits(c, "step  by step", MULTISTEP), 0);
    /* overlapping keywords both count */
    assert_int_equal(hits(c, "what's what is", SIMPLE), 2);
    /* a keyword cut by the end of the text does not match */
    assert_int_equal(hits(c, "summariz", SIMPLE), 0);
    /* bad arguments */
    cg_kw_hits h;
    assert_int_equal(cg_classify_keywords(NULL, "x", 1, &h), -1);
    assert_int_equal(cg_classify_keywords(c, NULL, 3, &h), -1);
    assert_int_equal(cg_classify_keywords(c, NULL, 0, &h), 0);
    assert_int_equal(cg_classify_keywords(c, "x", 1, NULL), -1);
    cg_classifier_free(c);
}

static void expect_literal(const char *re, const char *want) {
    char out[64];
    size_t n = cg_regex_literal(re, out, sizeof out);
    if (n != strlen(want) || strcmp(out, want) != 0)
        fail_msg("regex \"%s\": literal \"%s\", expected \"%s\"", re, out, want);
}

static void test_regex_literal(void **state) {
    (void)state;
    expect_literal("ticket-[0-9]+", "ticket-");
    expect_literal("TICKET-[0-9]+", "ticket-");
    expect_literal("(a|b)cdef", "");     /* an alternation anywhere: none */
    expect_literal("refund|return", ""); /* ... */
    expect_literal("ab?cd", "cd");       /* b is optional: a, then cd */
    expect_literal("abc+de", "abc");     /* abc is sure; "cde" is not (c repeats) */
    expect_literal("x{2,3}yz", "yz");    /* braces: the count is no literal */
    expect_literal("hello\\.world", "hello.world");
    expect_literal("[abc]def[gh]", "def");
    expect_literal("[]x]yz", "yz");
    expect_literal("[[:digit:]]{4}-order", "-order");
    expect_literal("^refund (policy)?$", "refund ");
    expect_literal("\\bfoo\\b", "foo"); /* \b is not a literal b */
    expect_literal("\\<word", "word");
    expect_literal("a.b", "");
    expect_literal("ab*", ""); /* b optional: "a" alone is too short */
    expect_literal("(grouped)text", "text");
    expect_literal("x(ab)*yz", "yz");
    expect_literal("환불 요청", ""); /* non-ASCII ends a run */
    expect_literal("", "");
    char small[4];
    assert_int_equal(cg_regex_literal("abcdef", small, sizeof small), 0); /* no room */
    assert_int_equal(cg_regex_literal(NULL, small, sizeof small), 0);
    char longest[64];
    assert_int_equal(
        cg_regex_literal("abcdefghijklmnopqrstuvwxyzabcdefghijkl", longest, sizeof longest), 32);
}

static const char *const regexes[] = {"ticket-[0-9]+",
                                      "refund (policy|request)",
                                      "(order|invoice) #?[0-9]{3,}",
                                      "^hello",
                                      "wor+ld",
                                      "colou?r",
                                      "a\\.b",
                                      "[[:digit:]]{4}-[[:digit:]]{2}",
                                      "ab(cd)*ef",
                                      "\\bcancel my plan",
                                      "x{2}yz",
                                      "end$"};
static const char *const rx_words[] = {"ticket-",
                                       "TICKET-12",
                                       "ticket-x",
                                       "Refund policy",
                                       "refund  policy",
                                       "REFUND REQUEST",
                                       "order #1234",
                                       "invoice 99",
                                       "Invoice 123",
                                       "hello",
                                       "HELLO",
                                       "say hello",
                                       "worrrld",
                                       "wold",
                                       "World",
                                       "color",
                                       "COLOUR",
                                       "colouur",
                                       "a.b",
                                       "axb",
                                       "A.B",
                                       "2024-05",
                                       "24-05",
                                       "abef",
                                       "ABcdCDef",
                                       "abcef",
                                       "cancel my plan",
                                       "CANCEL MY PLAN",
                                       "xcancel my plan",
                                       "xxyz",
                                       "XXYZ",
                                       "xyz",
                                       "end",
                                       "END",
                                       "the",
                                       " ",
                                       "\n",
                                       "7",
                                       "-"};

static void test_regex_prefilter_matches_regexec(void **state) {
    (void)state;
    for (size_t ri = 0; ri < sizeof regexes / sizeof regexes[0]; ri++) {
        const char *const one[] = {regexes[ri]};
        const cg_intent_rule rule[] = {{"rx", CG_TIER_LARGE, 0, NULL, 0, one, 1}};
        cg_classify_cfg cfg;
        cg_classify_cfg_default(&cfg);
        cfg.intents = rule;
        cfg.n_intents = 1;
        char err[256];
        cg_classifier *c = cg_classifier_new(&cfg, err, sizeof err);
        if (!c)
            fail_msg("%s: %s", regexes[ri], err);
        regex_t re;
        assert_int_equal(regcomp(&re, regexes[ri], REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
        for (int round = 0; round < 3000; round++) {
            char text[512];
            size_t n = 0, parts = 1 + rnd(6);
            for (size_t i = 0; i < parts; i++) {
                const char *w = rx_words[rnd(sizeof rx_words / sizeof rx_words[0])];
                size_t wl = strlen(w);
                if (n + wl + 1 >= sizeof text)
                    break;
                memcpy(text + n, w, wl);
                n += wl;
                if (rnd(2))
                    text[n++] = ' ';
            }
            text[n] = '\0';
            int want = regexec(&re, text, 0, NULL, 0) == 0;
            cg_class_input in = {text, n, NULL, 0, NULL, 0, 1, 0};
            cg_class_result r;
            assert_int_equal(cg_classify(c, &in, &r), 0);
            int got = strcmp(r.intent, "rx") == 0;
            if (got != want)
                fail_msg("regex \"%s\" on \"%s\": classifier %d, regexec %d", regexes[ri], text,
                         got, want);
        }
        regfree(&re);
        cg_classifier_free(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords_match_reference),
        cmocka_unit_test(test_keyword_cases),
        cmocka_unit_test(test_regex_literal),
        cmocka_unit_test(test_regex_prefilter_matches_regexec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
