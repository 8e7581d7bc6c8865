/* test_buf: unit tests of src/core/buf.c.
 *
 * Owns: the capped buffer contract of buf.h: the hard cap (a refused append
 * leaves the buffer unchanged), NUL termination, growth, printf, consume,
 * reset, and cg_buf_json_str escaping (quotes, backslash, named and \u00XX
 * control escapes, UTF-8 and DEL passed through, output is valid JSON that
 * decodes to the input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"

static void test_init_empty(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    cg_buf_reset(&b); /* safe before any allocation */
    cg_buf_free(&b);
    cg_buf_free(&b); /* and twice */
    assert_null(b.data);
}

static void test_append_nul_terminated(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 1024);
    assert_int_equal(cg_buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    assert_int_equal(cg_buf_puts(&b, ", world"), 0);
    assert_string_equal(b.data, "hello, world");
    assert_int_equal(cg_buf_append(&b, "\0x", 2), 0); /* binary bytes are kept */
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.data + 12, "\0x", 2);
    assert_int_equal(b.data[14], '\0');
    cg_buf_free(&b);
}

static void test_append_zero_bytes(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 4);
    assert_int_equal(cg_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    cg_buf_free(&b);
}

static void test_cap_enforced(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 8);
    assert_int_equal(cg_buf_append(&b, "123456789", 9), -1); /* larger than the cap */
    assert_int_equal(b.len, 0);
    assert_int_equal(cg_buf_append(&b, "12345", 5), 0);
    assert_int_equal(cg_buf_append(&b, "6789", 4), -1); /* would reach 9 */
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");             /* unchanged */
    assert_int_equal(cg_buf_append(&b, "678", 3), 0); /* exactly the cap */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_true(b.cap <= 8);
    assert_int_equal(cg_buf_append(&b, "x", 1), -1);
    assert_int_equal(cg_buf_puts(&b, "x"), -1);
    assert_int_equal(cg_buf_printf(&b, "%d", 1), -1);
    assert_int_equal(cg_buf_append(&b, "", 0), 0); /* nothing more is fine */
    assert_string_equal(b.data, "12345678");
    cg_buf_free(&b);
}

static void test_cap_no_size_overflow(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, (size_t)-1);
    assert_int_equal(cg_buf_append(&b, "ab", 2), 0);
    /* len + n would wrap around: must be refused, not "fit" */
    assert_int_equal(cg_buf_append(&b, "x", (size_t)-1), -1);
    assert_int_equal(cg_buf_append(&b, "x", (size_t)-2), -1);
    assert_int_equal(b.len, 2);
    cg_buf_free(&b);
}

static void test_growth(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 1u << 20);
    char chunk[97];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cg_buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 97000);
    assert_true(b.cap >= b.len);
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] != chunk[i % sizeof chunk])
            fail_msg("byte %zu corrupted", i);
    assert_int_equal(b.data[b.len], '\0');
    cg_buf_free(&b);
}

static void test_printf(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_buf_printf(&b, "%s=%d;", "a", 42), 0);
    assert_int_equal(cg_buf_printf(&b, "%05.1f|%lld", 3.14159, -7LL), 0);
    assert_string_equal(b.data, "a=42;003.1|-7");
    assert_int_equal(b.len, strlen("a=42;003.1|-7"));
    /* a long one crossing the initial allocation */
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cg_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 13 + 601);
    assert_int_equal(b.data[13], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    cg_buf_free(&b);
}

static void test_printf_cap(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 10);
    assert_int_equal(cg_buf_printf(&b, "%s", "12345"), 0);
    assert_int_equal(cg_buf_printf(&b, "%d", 123456), -1); /* 11 > 10 */
    assert_string_equal(b.data, "12345");
    assert_int_equal(b.len, 5);
    assert_int_equal(cg_buf_printf(&b, "%d", 12345), 0); /* exactly 10 */
    assert_string_equal(b.data, "1234512345");
    cg_buf_free(&b);
}

static void test_consume(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 64);
    assert_int_equal(cg_buf_puts(&b, "abcdefgh"), 0);
    cg_buf_consume(&b, 3);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "defgh");
    cg_buf_consume(&b, 0);
    assert_string_equal(b.data, "defgh");
    cg_buf_consume(&b, 5); /* everything */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(cg_buf_puts(&b, "xyz"), 0);
    cg_buf_consume(&b, 100); /* more than held */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* after consuming, the freed room counts against the cap again */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cg_buf_append(&b, "0123456789012345678901234567890123456789", 40), 0);
        cg_buf_consume(&b, 40);
    }
    assert_int_equal(b.len, 0);
    cg_buf_free(&b);
}

static void test_reset(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 64);
    assert_int_equal(cg_buf_puts(&b, "something"), 0);
    char *p = b.data;
    cg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, p); /* keeps its memory */
    assert_string_equal(b.data, "");
    assert_int_equal(cg_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    cg_buf_free(&b);
}

/* json_str of s[0..n) must be exactly `want` and decode back to s. */
static void json_str_is(const char *s, size_t n, const char *want) {
    cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_buf_json_str(&b, s, n), 0);
    assert_string_equal(b.data, want);
    char wrapped[4200];
    snprintf(wrapped, sizeof wrapped, "[%s]", b.data);
    json_error_t e;
    json_t *j = json_loads(wrapped, JSON_ALLOW_NUL, &e);
    if (!j)
        fail_msg("not valid JSON: %s (%s)", wrapped, e.text);
    json_t *str = json_array_get(j, 0);
    assert_true(json_is_string(str));
    assert_int_equal(json_string_length(str), n);
    assert_memory_equal(json_string_value(str), s, n);
    json_decref(j);
    cg_buf_free(&b);
}

static void test_json_str_plain(void **state) {
    (void)state;
    json_str_is("", 0, "\"\"");
    json_str_is("hello world", 11, "\"hello world\"");
    json_str_is("a/b", 3, "\"a/b\""); /* '/' needs no escape */
}

static void test_json_str_escapes(void **state) {
    (void)state;
    json_str_is("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
    json_str_is("C:\\dir", 6, "\"C:\\\\dir\"");
    json_str_is("a\nb\rc\td", 7, "\"a\\nb\\rc\\td\"");
}

static void test_json_str_control_chars(void **state) {
    (void)state;
    json_str_is("\x01", 1, "\"\\u0001\"");
    json_str_is("\x08\x0c", 2, "\"\\u0008\\u000c\"");
    json_str_is("\x1f", 1, "\"\\u001f\"");
    json_str_is("\x1b[0m", 4, "\"\\u001b[0m\"");
    json_str_is("a\0b", 3, "\"a\\u0000b\""); /* n, not strlen, decides */
    /* every control character is escaped, nothing else below 0x80 is */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        cg_buf b;
        cg_buf_init(&b, 64);
        assert_int_equal(cg_buf_json_str(&b, &in, 1), 0);
        assert_true(b.len == 4 || b.len == 8);
        assert_int_equal(b.data[1], '\\');
        cg_buf_free(&b);
    }
    json_str_is("\x7f", 1, "\"\x7f\""); /* DEL is legal in JSON strings */
}

static void test_json_str_utf8(void **state) {
    (void)state;
    /* multi-byte UTF-8 is passed through byte for byte */
    json_str_is("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
    json_str_is("\xe7\x8c\xab \xf0\x9f\x90\xb1", 8, "\"\xe7\x8c\xab \xf0\x9f\x90\xb1\"");
    json_str_is("\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""); /* U+2028 */
}

static void test_json_str_cap(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 8);
    assert_int_equal(cg_buf_json_str(&b, "abcdef", 6), 0); /* 8 bytes with quotes */
    assert_string_equal(b.data, "\"abcdef\"");
    cg_buf_reset(&b);
    assert_int_equal(cg_buf_json_str(&b, "abcdefg", 7), -1);
    assert_true(b.len <= 8);
    cg_buf_reset(&b);
    assert_int_equal(cg_buf_json_str(&b, "\x01\x02", 2), -1); /* escapes count */
    assert_true(b.len <= 8);
    cg_buf_free(&b);
}

static void test_strlcpy(void **state) {
    (void)state;
    char d[6];
    memset(d, 'z', sizeof d);
    assert_int_equal(cg_strlcpy(d, "abc", sizeof d), 3);
    assert_string_equal(d, "abc");
    assert_int_equal(cg_strlcpy(d, "abcdefgh", sizeof d), 5); /* cut, terminated */
    assert_string_equal(d, "abcde");
    assert_int_equal(cg_strlcpy(d, NULL, sizeof d), 0);
    assert_string_equal(d, "");
    d[0] = 'q';
    assert_int_equal(cg_strlcpy(d, "x", 0), 0); /* no room: untouched */
    assert_int_equal(d[0], 'q');
}

static void test_json_str_appends(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 256);
    assert_int_equal(cg_buf_puts(&b, "{\"k\":"), 0);
    assert_int_equal(cg_buf_json_str(&b, "v\"", 2), 0);
    assert_int_equal(cg_buf_puts(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    cg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_strlcpy),
        cmocka_unit_test(test_append_nul_terminated),
        cmocka_unit_test(test_append_zero_bytes),
        cmocka_unit_test(test_cap_enforced),
        cmocka_unit_test(test_cap_no_size_overflow),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_cap),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_json_str_plain),
        cmocka_unit_test(test_json_str_escapes),
        cmocka_unit_test(test_json_str_control_chars),
        cmocka_unit_test(test_json_str_utf8),
        cmocka_unit_test(test_json_str_cap),
        cmocka_unit_test(test_json_str_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
