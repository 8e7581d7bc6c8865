/* test_gate_all: unit tests of cg_gate_check_all (src/cache/gate.c), the
 * one-extraction form of the second gate that also reports every rule's
 * outcome on its own (the learned verifier's gate features).
 *
 * Owns: the mask equals, rule by rule, what cg_gate_check says for that
 * rule alone (on pairs built to trip each rule, on passing pairs, and on
 * NULL / empty / invalid-UTF-8 / over-long input); the verdict and detail
 * equal cg_gate_check's for the same rule set; a NULL mask pointer and a
 * NULL result are allowed; the mask is symmetric in the two texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cache/gate.h"

static const char *const PAIRS[][2] = {
    {"How do I convert 10 USD to EUR?", "How do I convert 100 USD to EUR?"},
    {"What kind of spider is this?", "What kind of spider is it?"},
    {"Do you believe there is life after death?", "Do you believe there is death after life?"},
    {"Is it safe to drink coffee while pregnant?",
     "Is it not safe to drink coffee while pregnant?"},
    {"What does 'carpe diem' mean?", "What does 'memento mori' mean?"},
    {"weather in Berlin today", "weather in Paris today"},
    {"when is the best time to buy stocks", "when is the best time to sell stocks"},
    {"Why is the sky blue?", "When is the sky blue?"},
    {"weather in Sydney tomorrow", "Sydney weather today"},
    {"restaurants in Paris under €30", "Paris restaurants under $30"},
    {"pandas merge examples site:github.com", "pandas merge examples site:gitlab.com"},
    {"How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"},
    {"서울에 가고 싶어요", "서울에 가고 싶지 않아요"},
    {"How can I learn Python quickly?", "What is the fastest way to learn Python?"},
    {"How do I motivate myself to run?", "How do I motivate someone to run?"},
    {"", ""},
    {"\xff\xfe broken \xc3", "broken"},
    {"What is the difference between a neutrino and an electron neutrino?",
     "What is the difference between an electron and an electron neutrino?"},
    /* Berlin/Paris and 10/100 at once: two rules fail */
    {"top 10 cafes in Berlin", "top 100 cafes in Paris"},
};
#define NPAIRS (sizeof PAIRS / sizeof PAIRS[0])

static unsigned mask_by_check(const char *a, const char *b) {
    unsigned m = 0;
    for (int r = 1; r < CG_GATE_N; r++)
        if (cg_gate_check(a, strlen(a), b, strlen(b), CG_GATE_RULE(r), NULL) != CG_GATE_PASS)
            m |= CG_GATE_RULE(r);
    return m;
}

static void test_mask_matches_each_rule(void **state) {
    (void)state;
    unsigned seen = 0;
    for (size_t i = 0; i < NPAIRS; i++) {
        const char *a = PAIRS[i][0], *b = PAIRS[i][1];
        unsigned m = 0xDEADu, m2 = 0xBEEFu;
        cg_gate_check_all(a, strlen(a), b, strlen(b), CG_GATE_DEFAULT_RULES, NULL, &m);
        cg_gate_check_all(b, strlen(b), a, strlen(a), 0, NULL, &m2);
        if (m != mask_by_check(a, b))
            fail_msg("pair %zu: mask %#x, rule by rule %#x", i, m, mask_by_check(a, b));
        assert_int_equal(m, m2); /* symmetric, and independent of the rule set */
        assert_int_equal(m & ~CG_GATE_ALL_RULES, 0);
        seen |= m;
    }
    /* the pairs above trip every rule but length */
    assert_int_equal(seen | CG_GATE_RULE(CG_GATE_LENGTH), CG_GATE_ALL_RULES);
    unsigned m = 0;
    cg_gate_check_all("top 10 cafes in Berlin", 22, "top 100 cafes in Paris", 22, 0, NULL, &m);
    assert_true(m & CG_GATE_RULE(CG_GATE_NUMBERS));
    assert_true(m & CG_GATE_RULE(CG_GATE_ENTITIES));
}

static void test_verdict_matches_check(void **state) {
    (void)state;
    const unsigned sets[] = {CG_GATE_DEFAULT_RULES, CG_GATE_ALL_RULES, 0,
                             CG_GATE_RULE(CG_GATE_ENTITIES) | CG_GATE_V_ENTITIES_STRICT,
                             CG_GATE_RULE(CG_GATE_NUMBERS) | CG_GATE_V_DIGITS_ONLY};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
        for (size_t i = 0; i < NPAIRS; i++) {
            const char *a = PAIRS[i][0], *b = PAIRS[i][1];
            cg_gate_result r1, r2;
            unsigned m;
            cg_gate_reason x = cg_gate_check(a, strlen(a), b, strlen(b), sets[s], &r1);
            cg_gate_reason y = cg_gate_check_all(a, strlen(a), b, strlen(b), sets[s], &r2, &m);
            assert_int_equal(x, y);
            assert_int_equal(r1.reason, r2.reason);
            assert_string_equal(r1.detail, r2.detail);
            assert_int_equal(cg_gate_check_all(a, strlen(a), b, strlen(b), sets[s], NULL, NULL), x);
        }
}

static void test_null_and_long(void **state) {
    (void)state;
    unsigned m = 1;
    assert_int_equal(cg_gate_check_all(NULL, 0, NULL, 0, CG_GATE_ALL_RULES, NULL, &m),
                     CG_GATE_PASS);
    assert_int_equal(m, 0);
    size_t n = CG_GATE_SCAN_MAX + 100;
    char *big = malloc(n), *big2 = malloc(n);
    assert_non_null(big);
    assert_non_null(big2);
    memset(big, 'a', n);
    memset(big2, 'a', n);
    big2[n - 1] = 'b'; /* differs past what the gate reads */
    cg_gate_check_all(big, n, big2, n, 0, NULL, &m);
    assert_true(m & CG_GATE_RULE(CG_GATE_LENGTH));
    free(big);
    free(big2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_matches_each_rule),
        cmocka_unit_test(test_verdict_matches_check),
        cmocka_unit_test(test_null_and_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
