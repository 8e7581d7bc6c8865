/* test_classify: unit tests of src/route/classify.c.
 *
 * Owns: the seeds' simple/complex rules on Korean and English prompts,
 * intent precedence (header > system tag > rules), code / math / multi-step
 * / reasoning detection, output-length and word-count thresholds, keyword
 * word boundaries, invalid UTF-8 and over-long input (head and tail windows,
 * scaled counts; exact-size heap buffers, so ASan sees any over-read),
 * config overrides and their validation errors, the ledger note and
 * concurrent use. The keyword index and the regex prefilter against naive
 * references: test_matcher.c.
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

#include "route/classify.h"

static cg_classifier *C;

static int setup(void **state) {
    (void)state;
    char err[256];
    C = cg_classifier_new(NULL, err, sizeof err);
    return C ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cg_classifier_free(C);
    return 0;
}

/* Classifies a copy of text in an exact-size heap buffer (no NUL). */
static cg_class_result run_full(const cg_classifier *c, const char *text, size_t len,
                                const char *system, const char *header, int64_t max_out,
                                int turns) {
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    cg_class_input in = {buf, len, system, system ? strlen(system) : 0, header, max_out, turns, 0};
    cg_class_result r;
    assert_int_equal(cg_classify(c, &in, &r), 0);
    free(buf);
    return r;
}

static cg_class_result run(const char *text) {
    return run_full(C, text, strlen(text), NULL, NULL, 0, 1);
}

static int has_reason(const cg_class_result *r, const char *why) {
    for (size_t i = 0; i < r->n_reasons; i++)
        if (strcmp(r->reasons[i], why) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ */

static void test_korean_simple(void **state) {
    (void)state;
    const char *simple[] = {"이 문장을 영어로 번역해줘: 오늘 날씨가 좋네요",
                            "이 기사 세 줄로 요약해줘", "엔트로피를 정의해줘", "쿠버네티스가 뭐야?",
                            "서울 인구 알려줘"};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        cg_class_result r = run(simple[i]);
        if (r.tier != CG_TIER_SMALL || !(r.flags & CG_CF_SIMPLE))
            fail_msg("\"%s\": tier %s flags %x", simple[i], cg_tier_name(r.tier), r.flags);
        assert_true(has_reason(&r, "simple"));
        assert_true(r.score < 0.30f);
    }
    cg_class_result r = run("이 문장을 영어로 번역해줘: 오늘 날씨가 좋네요");
    assert_string_equal(r.intent, "translate");
    assert_int_equal(r.intent_source, CG_INTENT_RULE);
    assert_true(r.flags & CG_CF_KOREAN);
}

static void test_korean_complex(void **state) {
    (void)state;
    const char *complex[] = {"우리 서비스의 결제 로그를 분석해줘", "주문 시스템을 설계해줘",
                             "두 DB를 비교해서 장단점을 말해줘", "왜 하늘은 파란가요?",
                             "이 쿼리를 어떻게 최적화 할 수 있을까?"};
    for (size_t i = 0; i < sizeof complex / sizeof complex[0]; i++) {
        cg_class_result r = run(complex[i]);
        if (r.tier < CG_TIER_LARGE || !(r.flags & CG_CF_COMPLEX))
            fail_msg("\"%s\": tier %s flags %x", complex[i], cg_tier_name(r.tier), r.flags);
        assert_true(has_reason(&r, "complex_kw"));
        assert_false(r.flags & CG_CF_SIMPLE);
    }
    /* A simple keyword does not make a complex prompt simple. */
    cg_class_result r = run("왜 이 결과가 나오는지 알려줘");
    assert_false(r.flags & CG_CF_SIMPLE);
    assert_int_equal(r.tier, CG_TIER_LARGE);
}

static void test_english(void **state) {
    (void)state;
    cg_class_result r = run("Translate 'good morning' into French.");
    assert_int_equal(r.tier, CG_TIER_SMALL);
    assert_string_equal(r.intent, "translate");
    r = run("What is an API gateway?");
    assert_int_equal(r.tier, CG_TIER_SMALL);
    assert_true(r.flags & CG_CF_SIMPLE);
    r = run("Compare PostgreSQL and MySQL for a write-heavy OLTP workload.");
    assert_true(r.tier >= CG_TIER_LARGE);
    assert_string_equal(r.intent, "analysis");
    r = run("Why does my service time out under load?");
    assert_true(r.flags & CG_CF_COMPLEX);
    /* Neither simple nor complex: the seeds' default, medium. */
    r = run("Write a short poem about autumn leaves.");
    assert_int_equal(r.tier, CG_TIER_MEDIUM);
    assert_false(r.flags & (CG_CF_SIMPLE | CG_CF_COMPLEX));
}

static void test_word_thresholds(void **state) {
    (void)state;
    /* Seed 001: simple only with fewer than 30 words. */
    char text[4096] = "translate this:";
    for (int i = 0; i < 28; i++)
        strcat(text, " word");
    cg_class_result r = run(text); /* 2 + 28 = 30 words */
    assert_int_equal(r.words, 30);
    assert_false(r.flags & CG_CF_SIMPLE);
    strcpy(text, "translate this:");
    for (int i = 0; i < 27; i++)
        strcat(text, " word");
    r = run(text);
    assert_int_equal(r.words, 29);
    assert_true(r.flags & CG_CF_SIMPLE);
    /* Complex above 100 words. */
    strcpy(text, "hello");
    for (int i = 0; i < 100; i++)
        strcat(text, " 단어");
    r = run(text);
    assert_int_equal(r.words, 101);
    assert_true(r.flags & CG_CF_LONG_INPUT);
    assert_true(has_reason(&r, "long_input"));
    assert_true(r.tier >= CG_TIER_LARGE);
}

static void test_header_intent_wins(void **state) {
    (void)state;
    const char *sys = "You are a helpful assistant. [intent:small_talk]";
    cg_class_result r =
        run_full(C, "이 문장 번역해줘", strlen("이 문장 번역해줘"), sys, "Analysis", 0, 1);
    assert_string_equal(r.intent, "analysis"); /* lower-cased */
    assert_int_equal(r.intent_source, CG_INTENT_HEADER);
    assert_int_equal(r.tier, CG_TIER_LARGE); /* the intent's tier wins over "simple" */
    assert_true(has_reason(&r, "intent_tier"));
    /* An unknown header intent is recorded but has no tier opinion. */
    r = run_full(C, "hello there", 11, NULL, "billing", 0, 1);
    assert_string_equal(r.intent, "billing");
    assert_int_equal(r.intent_source, CG_INTENT_HEADER);
    assert_int_equal(r.tier, CG_TIER_SMALL);
    /* An invalid header value is ignored; the rules decide. */
    r = run_full(C, "translate hello", 15, NULL, "bad intent!", 0, 1);
    assert_true(has_reason(&r, "intent:header_invalid"));
    assert_int_equal(r.intent_source, CG_INTENT_RULE);
    assert_string_equal(r.intent, "translate");
}

static void test_system_tag(void **state) {
    (void)state;
    const char *user = "Design a distributed cache architecture for our checkout service";
    cg_class_result plain = run(user);
    assert_true(plain.tier >= CG_TIER_LARGE);
    cg_class_result r =
        run_full(C, user, strlen(user), "Be brief. [intent:bogus name] [intent:small_talk] thanks",
                 NULL, 0, 1);
    assert_string_equal(r.intent, "small_talk");
    assert_int_equal(r.intent_source, CG_INTENT_TAG);
    assert_int_equal(r.tier, CG_TIER_SMALL);
    /* An unterminated tag is not a tag. */
    r = run_full(C, user, strlen(user), "[intent:small_talk", NULL, 0, 1);
    assert_int_equal(r.intent_source, CG_INTENT_RULE);
}

static void test_code_detection(void **state) {
    (void)state;
    cg_class_result r = run("```python\ndef f(x):\n    return x / 0\n```\nwhat's wrong?");
    assert_true(r.flags & CG_CF_CODE);
    assert_false(r.flags & CG_CF_SIMPLE); /* "what's" is simple, code is not */
    assert_true(r.tier >= CG_TIER_MEDIUM);
    assert_true(has_reason(&r, "code"));
    r = run("int main(void) {\n  int x = 1;\n  x++;\n  return x;\n}");
    assert_true(r.flags & CG_CF_CODE);
    r = run("구현해줘: 두 리스트를 합치는 함수");
    assert_true(r.flags & CG_CF_CODE);
    r = run("Tell me about the history of Rome.");
    assert_false(r.flags & CG_CF_CODE);
}

static void test_math_multistep_reasoning(void **state) {
    (void)state;
    cg_class_result r = run("Solve for x: 3x + 5 = 20");
    assert_true(r.flags & CG_CF_MATH);
    r = run("Simplify \\frac{2}{4} please");
    assert_true(r.flags & CG_CF_MATH);
    r = run("I had 12 + 7 = 19 apples and 3 * 4 = 12 pears");
    assert_true(r.flags & CG_CF_MATH);
    assert_true(r.feat[CG_FEAT_MATH] > 0);
    r = run("Make tea:\n1. boil water\n2. add leaves\n3. wait 3 minutes\n");
    assert_true(r.flags & CG_CF_MULTISTEP);
    r = run("Prove that the square root of 2 is irrational, step by step.");
    assert_true(r.flags & CG_CF_REASONING);
    assert_int_equal(r.tier, CG_TIER_REASONING);
    r = run("방정식 x^2 = 4 를 풀어줘. 증명도 단계별로 보여줘");
    assert_true(r.flags & CG_CF_MATH);
    assert_int_equal(r.tier, CG_TIER_REASONING);
    r = run("Multiple choice:\nA. red\nB. blue\nC) green\nD. none\nAnswer:");
    assert_true(r.feat[CG_FEAT_OPTIONS] > logf(4.5f) && r.feat[CG_FEAT_OPTIONS] < logf(5.5f));
}

static void test_output_length_and_turns(void **state) {
    (void)state;
    cg_class_result base = run_full(C, "Write a story about a cat", 25, NULL, NULL, 0, 1);
    cg_class_result lng = run_full(C, "Write a story about a cat", 25, NULL, NULL, 4000, 1);
    cg_class_result sht = run_full(C, "Write a story about a cat", 25, NULL, NULL, 16, 1);
    assert_true(lng.flags & CG_CF_LONG_OUTPUT);
    assert_true(sht.flags & CG_CF_SHORT_OUTPUT);
    assert_true(lng.score > base.score && base.score > sht.score);
    assert_true(lng.tier >= CG_TIER_MEDIUM);
    cg_class_result t = run_full(C, "Write a story about a cat", 25, NULL, NULL, 0, 12);
    assert_true(t.flags & CG_CF_MANY_TURNS);
    assert_true(t.score > base.score);
    cg_class_result kw = run("이번 분기 보고서를 자세히 써줘");
    assert_true(kw.flags & CG_CF_LONG_OUTPUT);
}

static void test_word_boundaries(void **state) {
    (void)state;
    /* "hi" inside "this"/"within", "why" inside "anywhy", "api" inside "capital". */
    cg_class_result r = run("I think this is within capital limits anywhy");
    assert_false(r.flags & (CG_CF_COMPLEX | CG_CF_CODE));
    assert_true(strcmp(r.intent, "small_talk") != 0);
    r = run("hi, how are you");
    assert_string_equal(r.intent, "small_talk");
    r = run("HELLO THERE");
    assert_string_equal(r.intent, "small_talk"); /* ASCII case-insensitive */
    r = run("a python script");
    assert_true(r.flags & CG_CF_CODE);
    r = run("pythonic ideas"); /* no word end after "python" */
    assert_false(r.flags & CG_CF_CODE);
    r = run("javascript");
    assert_true(r.flags & CG_CF_CODE);
}

/* Words of every length around the scanner's 16-byte steps: random texts of
 * filler words (x, z, X, Z and _, which start no keyword) with standalone
 * keywords, keywords glued to filler on either side (not words of their
 * own: never counted) and several separators. The word count and the
 * simple/complex keyword counts are known by construction. */
static void test_word_runs_random(void **state) {
    (void)state;
    static const char fill[] = "xzXZ_";
    static const char *const sep[] = {" ", "  ", "\t", " \n", ", "};
    uint64_t s = 0x9E3779B97F4A7C15u;
    char *text = malloc(8192);
    assert_non_null(text);
    for (int round = 0; round < 400; round++) {
        size_t n = 0;
        uint32_t words = 0, simple = 0, complex = 0;
        while (n < 3000) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            unsigned kind = (unsigned)(s % 8), len = 1 + (unsigned)((s >> 8) % 40);
            const char *kw = (s >> 20) & 1 ? "why" : "translate";
            if (kind == 0) { /* a keyword on its own */
                n += (size_t)sprintf(text + n, "%s", kw);
                simple += kw[0] == 't';
                complex += kw[0] == 'w';
            } else {
                if (kind == 1) /* filler, then the keyword: inside a word */
                    for (unsigned i = 0; i < len; i++)
                        text[n++] = fill[(s >> (24 + i % 32)) % 5];
                if (kind <= 2)
                    n += (size_t)sprintf(text + n, "%s", kw);
                if (kind != 1) /* kind 2: the keyword runs on into filler */
                    for (unsigned i = 0; i < len; i++)
                        text[n++] = fill[(s >> (24 + i % 32)) % 5];
            }
            words++;
            const char *sp = sep[(s >> 40) % 5];
            memcpy(text + n, sp, strlen(sp));
            n += strlen(sp); /* "word," is still one word */
        }
        cg_class_result r = run_full(C, text, n, NULL, NULL, 0, 1);
        assert_int_equal(r.words, words);
        assert_float_equal(r.feat[CG_FEAT_SIMPLE_KW], log1p((double)simple), 1e-4);
        assert_float_equal(r.feat[CG_FEAT_COMPLEX_KW], log1p((double)complex), 1e-4);
    }
    free(text);
}

/* The 64-byte block scan against the portable byte scan, count by count:
 * random texts of pieces that touch every count (words, digit runs,
 * operators next to digits, '?' and the full-width one, Hangul, stray and
 * truncated UTF-8, control bytes, choices and numbered steps at line starts,
 * code-line ends, keywords alone and glued) at every length from 0 to 300
 * and at every alignment, plus raw random bytes. Exact-size heap copies, so
 * ASan sees any read past the end. */
static void test_block_scan_random(void **state) {
    (void)state;
    static const char *const piece[] = {"x",
                                        "word",
                                        "Translate",
                                        "why",
                                        "how to",
                                        " ",
                                        "  ",
                                        "\t",
                                        "\n",
                                        "\r\n",
                                        "\n\n",
                                        "A. ",
                                        "b) ",
                                        "12. ",
                                        "3) ",
                                        "7 + 8",
                                        "9*2",
                                        "a-b",
                                        "?",
                                        "\xEF\xBC\x9F",
                                        "\xEB\xB2\x88\xEC\x97\xAD\xED\x95\xB4",
                                        "\xEC\x99\x9C",
                                        "\xFF",
                                        "\x80",
                                        "\xEB\xB2",
                                        "\x01",
                                        "12345",
                                        "x1",
                                        "_a_",
                                        "{",
                                        "};",
                                        "def ",
                                        "```",
                                        "prove that",
                                        "step 1",
                                        "= 4",
                                        "(",
                                        ",",
                                        "\xF0\x9F\x98\x80",
                                        "\xC3\xA9",
                                        "1.5",
                                        "e.g.",
                                        "\x0B",
                                        "-",
                                        "/",
                                        "^2",
                                        "  \n  ",
                                        ";\n",
                                        "=>",
                                        "$$",
                                        "tl;dr",
                                        "#include",
                                        "\\frac",
                                        "\xED\xA0\x80", /* a surrogate: invalid */
                                        "\xE0\x80\x80", /* overlong */
                                        "\xED\x9F\xBF", /* the last before the surrogates */
                                        "\xEF\xBF\xBF",
                                        "\xE1\x80"}; /* truncated */
    const size_t np = sizeof piece / sizeof piece[0];
    uint64_t s = 0xD1B54A32D192ED03u;
    char text[400], err[128];
    for (int round = 0; round < 3000; round++) {
        size_t n = 0, want = (size_t)round % 301;
        while (n < want) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            if ((s >> 60) == 0) { /* a raw random byte */
                text[n++] = (char)(s >> 20);
                continue;
            }
            const char *pc = piece[(s >> 8) % np];
            size_t l = strlen(pc);
            if (n + l > want)
                l = want - n;
            memcpy(text + n, pc, l);
            n += l;
        }
        size_t off = (size_t)(s >> 32) % (n + 1);
        for (int line0 = 0; line0 < 2; line0++) {
            for (size_t o = 0; o <= off; o += off ? off : 1) {
                size_t len = n - o;
                char *buf = malloc(len ? len : 1);
                assert_non_null(buf);
                memcpy(buf, text + o, len);
                err[0] = 0;
                int rc = cg_classify_scan_selfcheck(C, buf, len, line0, err, sizeof err);
                if (rc != 0)
                    fail_msg("round %d len %zu offset %zu: %s", round, len, o, err);
                free(buf);
            }
        }
    }
}

static void test_invalid_utf8_and_limits(void **state) {
    (void)state;
    const char bad[] = "\xff\xfe\xc0\xaf \xed\xa0\x80 번역해 \xf4\x90\x80\x80 \xeb\xb2";
    cg_class_result r = run_full(C, bad, sizeof bad - 1, NULL, NULL, 0, 1);
    assert_true(r.flags & CG_CF_BAD_UTF8);
    assert_true(r.flags & CG_CF_SIMPLE); /* the valid keyword is still found */
    for (size_t i = 0; i < CG_CLASS_NFEAT; i++)
        assert_true(isfinite(r.feat[i]));
    /* Every prefix of a multi-byte text, in exact-size buffers. */
    const char *k = "분석해 🙂 번역해";
    for (size_t n = 0; n <= strlen(k); n++)
        (void)run_full(C, k, n, NULL, NULL, 0, 1);
    /* Empty and NULL text. */
    cg_class_input in = {NULL, 0, NULL, 0, NULL, 0, 0, 0};
    assert_int_equal(cg_classify(C, &in, &r), 0);
    assert_int_equal(r.words, 0);
    assert_int_equal(cg_classify(NULL, &in, &r), -1);
    assert_int_equal(cg_classify(C, NULL, &r), -1);
    assert_int_equal(cg_classify(C, &in, NULL), -1);
    /* Over-long input: only its head and tail, scan_max_bytes (8 KiB) in
     * all, are read; words and lines are scaled up to the whole length. */
    size_t big = 70000;
    char *t = malloc(big);
    assert_non_null(t);
    for (size_t i = 0; i < big; i++)
        t[i] = (char)("ab \n1+2="[i % 8]);
    r = run_full(C, t, big, NULL, NULL, 0, 1);
    free(t);
    assert_true(r.flags & CG_CF_TRUNCATED);
    assert_true(r.bytes <= 8192 && r.bytes > 8192 - 64);
    assert_true(r.words > 8750 - 50 && r.words < 8750 + 50); /* "1+2=ab": 1 word per 8 bytes */
    assert_float_equal(r.feat[CG_FEAT_LOG_BYTES], (float)log1p(70000.0), 1e-6);
    assert_true(has_reason(&r, "truncated"));
}

/* A long prompt is read at both ends: the instruction after a long context
 * still decides, a keyword deep in the middle is not seen, and a text given
 * as its head and tail halves with user_full_len is treated the same. */
static void test_long_prompt_head_and_tail(void **state) {
    (void)state;
    const char *ctx = "the quarterly numbers were flat and the team met twice. ";
    const char *ask = "\n\nSummarize the above in one line.";
    size_t cl = strlen(ctx), al = strlen(ask), n = 40000;
    char *t = malloc(n + al);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        t[i] = ctx[i % cl];
    memcpy(t + n, ask, al);
    cg_class_result r = run_full(C, t, n + al, NULL, NULL, 0, 1);
    assert_string_equal(r.intent, "summarize");
    assert_true(r.flags & CG_CF_TRUNCATED);
    assert_true(r.flags & CG_CF_LONG_INPUT);
    /* "prove" in the middle only: out of both windows */
    memcpy(t + n / 2, "prove it", 8);
    cg_class_result r2 = run_full(C, t, n + al, NULL, NULL, 0, 1);
    assert_false(r2.flags & CG_CF_REASONING);
    /* ... at the very start it is seen */
    memcpy(t, "prove it", 8);
    r2 = run_full(C, t, n + al, NULL, NULL, 0, 1);
    assert_true(r2.flags & CG_CF_REASONING);
    /* head + tail halves of 16 KiB with the whole length: same words (scaled) */
    size_t half = 8192;
    char *ht = malloc(2 * half);
    assert_non_null(ht);
    memcpy(ht, t, half);
    memcpy(ht + half, t + n + al - half, half);
    cg_class_input in = {ht, 2 * half, NULL, 0, NULL, 0, 1, n + al};
    cg_class_result r3;
    assert_int_equal(cg_classify(C, &in, &r3), 0);
    assert_string_equal(r3.intent, "summarize");
    assert_true(r3.flags & CG_CF_REASONING);
    assert_float_equal(r3.feat[CG_FEAT_LOG_BYTES], r2.feat[CG_FEAT_LOG_BYTES], 1e-6);
    assert_true(r3.words > r2.words * 0.98 && r3.words < r2.words * 1.02);
    free(ht);
    free(t);
    /* at the cap exactly: read whole, not truncated */
    char *w = malloc(8192);
    assert_non_null(w);
    for (size_t i = 0; i < 8192; i++)
        w[i] = ctx[i % cl];
    r = run_full(C, w, 8192, NULL, NULL, 0, 1);
    assert_false(r.flags & CG_CF_TRUNCATED);
    assert_int_equal(r.bytes, 8192);
    free(w);
}

static void test_note(void **state) {
    (void)state;
    cg_class_result r = run("이 문장 번역해줘");
    char buf[256];
    size_t n = cg_class_result_note(&r, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "tier=small"));
    assert_non_null(strstr(buf, "intent=translate(rule)"));
    assert_non_null(strstr(buf, "why="));
    char small[12];
    n = cg_class_result_note(&r, small, sizeof small);
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof small);
    assert_int_equal(cg_class_result_note(&r, small, 0), 0);
    assert_string_equal(cg_tier_name(CG_TIER_REASONING), "reasoning");
    assert_string_equal(cg_tier_name(17), "none");
    int t;
    assert_int_equal(cg_tier_parse("large", &t), 0);
    assert_int_equal(t, CG_TIER_LARGE);
    assert_int_equal(cg_tier_parse("huge", &t), -1);
    for (size_t i = 0; i < CG_CLASS_NFEAT; i++)
        assert_non_null(cg_class_feature_name(i));
    assert_null(cg_class_feature_name(CG_CLASS_NFEAT));
}

static void test_config_override(void **state) {
    (void)state;
    static const char *const billing_kw[] = {"invoice", "청구서"};
    static const char *const ticket_re[] = {"ticket-[0-9]+"};
    static const cg_intent_rule intents[] = {
        {"billing", CG_TIER_SMALL, 1, billing_kw, 2, NULL, 0},
        {"support", CG_TIER_LARGE, 0, NULL, 0, ticket_re, 1},
    };
    static const char *const simple[] = {"quick question"};
    cg_classify_cfg cfg;
    cg_classify_cfg_default(&cfg);
    cfg.intents = intents;
    cfg.n_intents = 2;
    cfg.simple_keywords = simple;
    cfg.n_simple_keywords = 1;
    cfg.complex_min_words = 10;
    char err[256];
    cg_classifier *c = cg_classifier_new(&cfg, err, sizeof err);
    assert_non_null(c);
    cg_class_result r =
        run_full(c, "where is my 청구서?", strlen("where is my 청구서?"), NULL, NULL, 0, 1);
    assert_string_equal(r.intent, "billing");
    assert_int_equal(r.tier, CG_TIER_SMALL);
    r = run_full(c, "Status of TICKET-4521 please", 28, NULL, NULL, 0, 1);
    assert_string_equal(r.intent, "support");
    assert_int_equal(r.tier, CG_TIER_LARGE);
    r = run_full(c, "quick question: is it up", 24, NULL, NULL, 0, 1);
    assert_true(r.flags & CG_CF_SIMPLE);
    r = run_full(c, "one two three four five six seven eight nine ten eleven", 55, NULL, NULL, 0,
                 1);
    assert_true(r.flags & CG_CF_LONG_INPUT); /* complex_min_words = 10 */
    cg_classifier_free(c);
}

static void test_config_errors(void **state) {
    (void)state;
    char err[256];
    cg_classify_cfg cfg;
    static const char *const one_byte[] = {"x"};
    cg_classify_cfg_default(&cfg);
    cfg.complex_keywords = one_byte;
    cfg.n_complex_keywords = 1;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "2..63"));

    static const char *const space_kw[] = {" from"};
    cfg.complex_keywords = space_kw;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "whitespace"));

    static const char *const ok_kw[] = {"ok"};
    static const char *const bad_re[] = {"(unclosed"};
    cg_intent_rule bad_name[] = {{"Bad Name", CG_TIER_SMALL, 0, ok_kw, 1, NULL, 0}};
    cg_classify_cfg_default(&cfg);
    cfg.intents = bad_name;
    cfg.n_intents = 1;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "Bad Name"));

    cg_intent_rule dup[] = {{"a", CG_TIER_SMALL, 0, ok_kw, 1, NULL, 0},
                            {"A", CG_TIER_SMALL, 0, ok_kw, 1, NULL, 0}};
    cfg.intents = dup;
    cfg.n_intents = 2;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "twice"));

    cg_intent_rule badre[] = {{"a", CG_TIER_SMALL, 0, NULL, 0, bad_re, 1}};
    cfg.intents = badre;
    cfg.n_intents = 1;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "regex"));

    cg_intent_rule badtier[] = {{"a", 9, 0, ok_kw, 1, NULL, 0}};
    cfg.intents = badtier;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "tier"));

    cg_classify_cfg_default(&cfg);
    cfg.small_below = 0.9f;
    cfg.large_from = 0.5f;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "thresholds"));

    cg_classify_cfg_default(&cfg);
    cfg.n_math_keywords = 3;
    cfg.math_keywords = NULL;
    assert_null(cg_classifier_new(&cfg, err, sizeof err));
}

/* Many threads classify the same prompts; every result equals the
 * single-threaded one (the classifier is read-only after construction). */
static const char *const shared_prompts[] = {
    "이 문장을 영어로 번역해줘", "Prove that there are infinitely many primes step by step",
    "```js\nconsole.log(1)\n```", "왜 느린지 분석해줘", "hello"};
#define NP (sizeof shared_prompts / sizeof shared_prompts[0])
static cg_class_result expected[NP];

static void *worker(void *arg) {
    int *bad = arg;
    for (int round = 0; round < 300; round++) {
        size_t i = (size_t)round % NP;
        cg_class_input in = {shared_prompts[i], strlen(shared_prompts[i]), NULL, 0, NULL, 0, 1, 0};
        cg_class_result r;
        cg_classify(C, &in, &r);
        if (r.tier != expected[i].tier || r.score != expected[i].score ||
            r.flags != expected[i].flags || strcmp(r.intent, expected[i].intent) != 0)
            (*bad)++;
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    for (size_t i = 0; i < NP; i++)
        expected[i] = run(shared_prompts[i]);
    pthread_t th[4];
    int bad[4] = {0};
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, &bad[t]), 0);
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(bad[t], 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_korean_simple),
        cmocka_unit_test(test_korean_complex),
        cmocka_unit_test(test_english),
        cmocka_unit_test(test_word_thresholds),
        cmocka_unit_test(test_header_intent_wins),
        cmocka_unit_test(test_system_tag),
        cmocka_unit_test(test_code_detection),
        cmocka_unit_test(test_math_multistep_reasoning),
        cmocka_unit_test(test_output_length_and_turns),
        cmocka_unit_test(test_word_boundaries),
        cmocka_unit_test(test_word_runs_random),
        cmocka_unit_test(test_block_scan_random),
        cmocka_unit_test(test_invalid_utf8_and_limits),
        cmocka_unit_test(test_long_prompt_head_and_tail),
        cmocka_unit_test(test_note),
        cmocka_unit_test(test_config_override),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
