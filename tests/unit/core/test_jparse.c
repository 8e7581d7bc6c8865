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

/* Strings built from random pieces -- plain runs of 0..40 bytes (so runs
 * end at every position of a 16-byte block), every escape, \u escapes
 * and surrogate pairs, raw 2/3/4-byte UTF-8 -- as an object's key and as
 * its value, at every offset in the document: the same tree as jansson's.
 * Then the same with one byte made bad (a raw control byte, a stray 0x80, a
 * bad escape): both refuse it with the same error. */
static void test_random_strings(void **state) {
    (void)state;
    static const char *const piece[] = {
        "\\n",     "\\\"",           "\\\\",     "\\/",          "\\t",
        "\\u00e9", "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "\\r\\n",  "\\b\\f"};
    static const char *const bad[] = {"\x01", "\x80", "\\x", "\xc3(", "\\u12"};
    char str[512], doc[1200];
    uint64_t r = 99;
    for (int t = 0; t < 3000; t++) {
        size_t n = 0;
        int parts = 1 + t % 9;
        for (int k = 0; k < parts; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            size_t run = (size_t)(r % 41);
            for (size_t i = 0; i < run; i++) {
                char c = (char)(' ' + 1 + (r >> (i % 48)) % 94);
                str[n++] = c == '"' || c == '\\' ? 'q' : c;
            }
            const char *p = piece[(r >> 20) % (sizeof piece / sizeof piece[0])];
            memcpy(str + n, p, strlen(p));
            n += strlen(p);
        }
        str[n] = '\0';
        int pad = t % 23;
        int len =
            snprintf(doc, sizeof doc, "%*s{\"%s\":\"%s\",\"k\":[\"%s\"]}", pad, "", str, str, str);
        assert_true(len > 0 && (size_t)len < sizeof doc);
        json_error_t e;
        json_t *ref = json_loadb(doc, (size_t)len, FLAGS, &e);
        assert_non_null(ref);
        json_decref(ref);
        check_same(doc, (size_t)len);
        const char *b = bad[t % (sizeof bad / sizeof bad[0])];
        size_t at = (size_t)pad + 2 + (size_t)(r % (n + 1)); /* inside the key */
        char broken[1300];
        size_t bl = strlen(b);
        memcpy(broken, doc, at);
        memcpy(broken + at, b, bl);
        memcpy(broken + at + bl, doc + at, (size_t)len - at);
        json_t *ok = json_loadb(broken, (size_t)len + bl, FLAGS, &e);
        if (ok) /* the bad bytes made a valid escape ("\\u12" + "ab") */
            check_same(broken, (size_t)len + bl);
        else
            check_refused(broken, (size_t)len + bl);
        json_decref(ok);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_same_tree),
        cmocka_unit_test(test_refused_same_error),
        cmocka_unit_test(test_random_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
