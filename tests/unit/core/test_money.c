/* test_money: unit tests of src/core/money.c.
 *
 * Owns: exact decimal parsing of USD amounts to nano-USD (no float: "2.5" is
 * 2500000000 exactly, one nano-dollar is the finest step, a tenth decimal is
 * refused unless it is a trailing zero, overflow and garbage are refused),
 * formatting (negatives, INT64 extremes, round trip with parsing), the
 * token x price product in femto-USD and the femto -> nano rounding (half
 * away from zero).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/money.h"

static int64_t parse_ok(const char *s) {
    int64_t v = -12345;
    if (cg_money_parse_usd(s, &v) != 0)
        fail_msg("refused: \"%s\"", s);
    return v;
}

static void parse_bad(const char *s) {
    int64_t v = -12345;
    if (cg_money_parse_usd(s, &v) != -1)
        fail_msg("accepted: \"%s\" -> %lld", s ? s : "(null)", (long long)v);
    assert_int_equal(v, -12345); /* untouched on error */
}

static void test_parse_exact(void **state) {
    (void)state;
    assert_int_equal(parse_ok("2.5"), INT64_C(2500000000));
    assert_int_equal(parse_ok("2.50"), INT64_C(2500000000));
    assert_int_equal(parse_ok("0.000000001"), 1);
    assert_int_equal(parse_ok("15"), INT64_C(15000000000));
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("0.0"), 0);
    assert_int_equal(parse_ok("000.10"), INT64_C(100000000));
    assert_int_equal(parse_ok("1.123456789"), INT64_C(1123456789));
    /* values that are not exact in binary floating point stay exact */
    assert_int_equal(parse_ok("0.1"), INT64_C(100000000));
    assert_int_equal(parse_ok("0.3"), INT64_C(300000000));
    assert_int_equal(parse_ok("1.1"), INT64_C(1100000000));
    assert_int_equal(parse_ok("0.075"), INT64_C(75000000));
    assert_int_equal(parse_ok("0.000000123"), 123);
}

static void test_parse_ten_decimals(void **state) {
    (void)state;
    parse_bad("0.0000000001");  /* one tenth of a nano-dollar */
    parse_bad("1.1234567891");  /* tenth decimal non-zero */
    parse_bad("0.00000000099"); /* 11 decimals */
    /* trailing zeros beyond the ninth decimal change nothing */
    assert_int_equal(parse_ok("1.1234567890"), INT64_C(1123456789));
    assert_int_equal(parse_ok("2.500000000000000"), INT64_C(2500000000));
    assert_int_equal(parse_ok("0.0000000010"), 1);
    parse_bad("0.0000000010001");
}

static void test_parse_overflow(void **state) {
    (void)state;
    assert_int_equal(parse_ok("1000000000"), INT64_C(1000000000) * CG_NANO_PER_USD);
    assert_int_equal(parse_ok("9223372029.999999999"), INT64_C(9223372029999999999));
    parse_bad("9223372037");           /* whole part alone exceeds INT64_MAX nano */
    parse_bad("99999999999");          /* 1e11 USD */
    parse_bad("18446744073709551616"); /* 2^64 */
    parse_bad("99999999999999999999999999999999999999.5");
    /* every accepted value is representable */
    int64_t v = parse_ok("9223372029");
    assert_true(v > 0);
}

static void test_parse_garbage(void **state) {
    (void)state;
    const char *bad[] = {
        "",     ".",    "abc",  "1.2.3", "-1",   "+1",  " 1",     "1 ",    "1e3",          "1E-3",
        "0x10", "1,5",  "1..2", "$1",    "1$",   "1.a", "nan",    "inf",   "\xef\xbc\x91", "1\n",
        "..5",  "-0.0", "1.-5", "1 .5",  "0.5x", "x0",  "1.5e+2", "1_000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_bad(bad[i]);
    parse_bad(NULL);
}

static const char *fmt(int64_t v, char *buf) {
    return cg_money_fmt(v, buf, 32);
}

static void test_fmt(void **state) {
    (void)state;
    char b[32];
    assert_ptr_equal(cg_money_fmt(0, b, sizeof b), b);
    assert_string_equal(fmt(0, b), "0.000000000");
    assert_string_equal(fmt(1, b), "0.000000001");
    assert_string_equal(fmt(INT64_C(2500000000), b), "2.500000000");
    assert_string_equal(fmt(INT64_C(15000000000), b), "15.000000000");
    assert_string_equal(fmt(INT64_C(123456789012), b), "123.456789012");
}

static void test_fmt_negative(void **state) {
    (void)state;
    char b[32];
    assert_string_equal(fmt(-1, b), "-0.000000001");
    assert_string_equal(fmt(-INT64_C(2500000000), b), "-2.500000000");
    assert_string_equal(fmt(-INT64_C(999999999), b), "-0.999999999");
    assert_string_equal(fmt(-INT64_C(1000000000), b), "-1.000000000");
    assert_string_equal(fmt(INT64_MAX, b), "9223372036.854775807");
    assert_string_equal(fmt(INT64_MIN, b), "-9223372036.854775808"); /* no overflow */
}

static void test_fmt_short_buffer(void **state) {
    (void)state;
    char b[8];
    memset(b, 'x', sizeof b);
    cg_money_fmt(INT64_C(123456789012), b, sizeof b); /* truncated, never overrun */
    assert_int_equal(b[7], '\0');
    assert_string_equal(b, "123.456");
    /* every capacity: the full text's first cap - 1 characters, never more */
    const int64_t vals[] = {0, 7, -7, INT64_C(123456789012), INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char full[32];
        cg_money_fmt(vals[i], full, sizeof full);
        for (size_t cap = 1; cap <= sizeof full; cap++) {
            char t[40];
            memset(t, 'x', sizeof t);
            cg_money_fmt(vals[i], t, cap);
            size_t want = strlen(full) < cap - 1 ? strlen(full) : cap - 1;
            assert_int_equal(strlen(t), want);
            assert_memory_equal(t, full, want);
            assert_int_equal(t[cap], 'x');
        }
    }
}

static void test_round_trip(void **state) {
    (void)state;
    const int64_t vals[] = {0,
                            1,
                            9,
                            10,
                            999999999,
                            1000000000,
                            1000000001,
                            INT64_C(2500000000),
                            INT64_C(123456789012345),
                            INT64_C(9223372029999999999)};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char b[32];
        int64_t back = -1;
        fmt(vals[i], b);
        if (cg_money_parse_usd(b, &back) != 0 || back != vals[i])
            fail_msg("%lld -> \"%s\" -> %lld", (long long)vals[i], b, (long long)back);
    }
    /* and text -> nano -> text is canonical with nine decimals */
    char b[32];
    assert_string_equal(fmt(parse_ok("3.75"), b), "3.750000000");
    assert_string_equal(fmt(parse_ok("0010.5"), b), "10.500000000");
}

static void test_tok_femto(void **state) {
    (void)state;
    /* price is nano-USD per 1M tokens, the product is femto-USD (1e-15) */
    int64_t p = parse_ok("2.50"); /* $2.50 / 1M tokens */
    __int128 f = cg_money_tok_femto(1000000, p);
    assert_true(f == (__int128)INT64_C(2500000000) * 1000000);
    assert_int_equal(cg_money_femto_to_nano(f), INT64_C(2500000000)); /* $2.50 */
    /* one token at $2.50/M is 2.5 micro-dollars = 2500 nano */
    assert_int_equal(cg_money_femto_to_nano(cg_money_tok_femto(1, p)), 2500);
    /* one token at $0.02/M is 20 nano-dollars */
    int64_t emb = parse_ok("0.02");
    assert_int_equal(cg_money_femto_to_nano(cg_money_tok_femto(1, emb)), 20);
    /* at one nano-dollar per 1M tokens a token is 1 femto: sub-nano amounts
     * are kept exact until the one rounding step */
    int64_t tiny = parse_ok("0.000000001");
    assert_true(cg_money_tok_femto(1, tiny) == 1);
    assert_int_equal(cg_money_femto_to_nano(cg_money_tok_femto(499999, tiny)), 0);
    assert_int_equal(cg_money_femto_to_nano(cg_money_tok_femto(500000, tiny)), 1);
    /* large products do not overflow */
    __int128 big = cg_money_tok_femto(INT64_C(1000000000000), parse_ok("150"));
    assert_true(big == (__int128)INT64_C(1000000000000) * INT64_C(150000000000));
    assert_int_equal(cg_money_femto_to_nano(big), INT64_C(150000000000000000));
    assert_true(cg_money_tok_femto(0, p) == 0);
}

static void test_femto_to_nano_rounding(void **state) {
    (void)state;
    assert_int_equal(cg_money_femto_to_nano(0), 0);
    assert_int_equal(cg_money_femto_to_nano(1), 0);
    assert_int_equal(cg_money_femto_to_nano(499999), 0);
    assert_int_equal(cg_money_femto_to_nano(500000), 1); /* half: away from zero */
    assert_int_equal(cg_money_femto_to_nano(999999), 1);
    assert_int_equal(cg_money_femto_to_nano(1000000), 1);
    assert_int_equal(cg_money_femto_to_nano(1499999), 1);
    assert_int_equal(cg_money_femto_to_nano(1500000), 2);
    assert_int_equal(cg_money_femto_to_nano(2500000), 3); /* not banker's rounding */
    assert_int_equal(cg_money_femto_to_nano(-1), 0);
    assert_int_equal(cg_money_femto_to_nano(-499999), 0);
    assert_int_equal(cg_money_femto_to_nano(-500000), -1);
    assert_int_equal(cg_money_femto_to_nano(-1500000), -2);
    assert_int_equal(cg_money_femto_to_nano(-2500000), -3);
    /* symmetric around zero */
    for (int64_t f = 0; f < 5000000; f += 77777)
        assert_int_equal(cg_money_femto_to_nano(-f), -cg_money_femto_to_nano(f));
    /* the largest amount that fits */
    __int128 max = (__int128)INT64_MAX * 1000000;
    assert_int_equal(cg_money_femto_to_nano(max), INT64_MAX);
    assert_int_equal(cg_money_femto_to_nano(max + 499999), INT64_MAX);
    assert_int_equal(cg_money_femto_to_nano(-max), -INT64_MAX);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_exact),
        cmocka_unit_test(test_parse_ten_decimals),
        cmocka_unit_test(test_parse_overflow),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_fmt),
        cmocka_unit_test(test_fmt_negative),
        cmocka_unit_test(test_fmt_short_buffer),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tok_femto),
        cmocka_unit_test(test_femto_to_nano_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
