/* test_jparse: unit tests of src/core/jparse.c against jansson itself.
 *
 * Owns: a table of valid documents (escapes, surrogate pairs, 2/3/4-byte
 * UTF-8, numbers in every form, nesting, empty containers, whitespace)
 * that the fast path must accept and build exactly as json_loadb does, key
 * order included; and a table of inputs it must hand to jansson
 * (duplicates, out-of-range integers, \u0000, lone surrogates, overlong
 * UTF-8, control characters, leading zeros, trailing bytes, nesting past
 * 2048), for which cg_json_load must return jansson's own error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/jparse.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

static char *dump(json_t *v) {
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

static void check_same(const char *s, size_t n) {
    json_error_t e;
    json_t *ref = json_loadb(s, n, FLAGS, &e);
    json_t *fast = cg_json_load_fast(s, n);
    if (!ref || !fast)
        print_error("input %.80s: ref %p fast %p (%s)\n", s, (void *)ref, (void *)fast,
                    ref ? "" : e.text);
    assert_non_null(ref);
    assert_non_null(fast);
    char *a = dump(ref), *b = dump(fast);
    assert_string_equal(a, b);
    assert_true(json_equal(ref, fast));
    free(a);
    free(b);
    json_decref(ref);
    json_decref(fast);
}

static void test_valid_same_tree(void **state) {
    (void)state;
    static const char *const ok[] = {
        "{}",
        "[]",
        " \t\r\n{ \"a\" : 1 , \"b\" : [ ] } \n",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"temperature\":0.7,\"max_tokens\":10,\"stream\":true,\"stop\":null}",
        "{\"z\":1,\"a\":2,\"m\":3}",
        "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\\u0001\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"",
        "[0,-0,1,-1,9223372036854775807,-9223372036854775808]",
        "[0.5,-0.0,1e5,1E+5,1e-5,2.5e-308,1.7976931348623157e308,123.456e2]",
        "[true,false,null,[[[]]],{\"a\":{\"b\":{}}}]",
        "\"a long string with an escape \\n past the stack buffer "
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        "42",
        "\"\"",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        check_same(ok[i], strlen(ok[i]));
}

static void check_refused(const char *s, size_t n) {
    json_error_t e1, e2;
    assert_null(cg_json_load_fast(s, n));
    json_t *ref = json_loadb(s, n, FLAGS, &e1);
    json_t *got = cg_json_load(s, n, &e2);
    if (ref) { /* a document only jansson takes (a long number): equal */
        assert_non_null(got);
        assert_true(json_equal(ref, got));
    } else {
        assert_null(got);
        assert_string_equal(e1.text, e2.text);
        assert_int_equal(e1.line, e2.line);
        assert_int_equal(e1.column, e2.column);
    }
    json_decref(ref);
    json_decref(got);
}

static void test_refused_same_error(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "{\"a\":1,\"a\":2}",
        "9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "\"\\u0000\"",
        "{\"\\u0000\":1}",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"tab\there\"",
        "012",
        "1.",
        ".5",
        "1e",
        "-",
        "{\"a\":1}x",
        "[1,]",
        "{\"a\" 1}",
        "{,}",
        "truex",
        "\"\\x\"",
        "\"\\u12G4\"",
        "\"unterminated",
        "1.000000000000000000000000000000000000000000000000000000000000000001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_refused(bad[i], strlen(bad[i]));
    /* a NUL byte in the input */
    check_refused("\"a\0b\"", 5);
    /* nesting: 2048 levels are fine, 2049 are not (jansson's limit) */
    char *deep = malloc(2 * 2049 + 1);
    for (int n = 2048; n <= 2049; n++) {
        memset(deep, '[', (size_t)n);
        memset(deep + n, ']', (size_t)n);
        if (n == 2048)
            check_same(deep, 2 * (size_t)n);
        else
            check_refused(deep, 2 * (size_t)n);
    }
    free(deep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_same_tree),
        cmocka_unit_test(test_refused_same_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
