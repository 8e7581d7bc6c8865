/* test_model_splice: the top-level "model" value replaced in the body bytes
 * (src/route/model_splice.c).
 *
 * Owns: the result parses and equals the parsed original with only "model"
 * set to the new name (json_equal), and every byte outside the value's span
 * is kept; model key not first, whitespace around key, colon and value,
 * escaped old and new names (quotes, backslashes, control characters,
 * non-ASCII), "model" keys nested in messages, tools and metadata and the
 * text "model" inside strings left alone; the refusals (no, several or
 * non-string top-level "model", an escaped key, text after the object,
 * unterminated strings, names that are too long or not UTF-8, a body that
 * would pass its cap) leave the body unchanged; and random JSON objects
 * printed in every jansson layout (compact, indented, sorted, ASCII-only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/model_splice.h"

/* Splices `name` into a copy of body; checks the result against the tree. */
static void expect_splice(const char *body, size_t blen, const char *name, size_t nlen) {
    json_error_t je;
    json_t *want = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &je);
    if (!want)
        fail_msg("test body does not parse: %s: %s", je.text, body);
    json_object_set_new(want, "model", json_stringn(name, nlen));
    size_t s, e;
    assert_int_equal(cg_model_span(body, blen, &s, &e), 0);
    cg_buf b;
    cg_buf_init(&b, 1 << 20);
    assert_int_equal(cg_buf_append(&b, body, blen), 0);
    if (cg_model_splice(&b, name, nlen) != 0)
        fail_msg("refused: %s", body);
    json_t *got = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
    if (!got)
        fail_msg("result does not parse: %s: %.*s", je.text, (int)b.len, b.data);
    if (!json_equal(got, want))
        fail_msg("result differs from the tree: %.*s", (int)b.len, b.data);
    /* only the value changed: same prefix, same suffix */
    assert_memory_equal(b.data, body, s);
    assert_true(b.len >= blen - (e - s));
    size_t tail = blen - e;
    assert_memory_equal(b.data + b.len - tail, body + e, tail);
    assert_int_equal(b.data[b.len], '\0');
    json_decref(got);
    json_decref(want);
    cg_buf_free(&b);
}

static void splice(const char *body, const char *name) {
    expect_splice(body, strlen(body), name, strlen(name));
}

static void refused(const char *body, size_t blen, const char *name, size_t nlen) {
    cg_buf b;
    cg_buf_init(&b, 1 << 20);
    assert_int_equal(cg_buf_append(&b, body, blen), 0);
    if (cg_model_splice(&b, name, nlen) != -1)
        fail_msg("accepted: %.*s", (int)blen, body);
    assert_int_equal(b.len, blen);
    assert_memory_equal(b.data, body, blen);
    cg_buf_free(&b);
}

static void test_basic_and_layouts(void **state) {
    (void)state;
    splice("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           "gpt-4o");
    /* not first, not last, after nested values */
    splice("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"a\",\"n\":1}",
           "claude-3-haiku-20240307");
    splice("{\"max_tokens\":32,\"stream\":false,\"x\":null,\"model\":\"a\"}", "b");
    /* whitespace everywhere JSON allows it */
    splice(" \n{ \"model\" \t:\r\n \"gpt-4o-mini\" , \"messages\" : [ ] } \n", "gpt-4o");
    splice("{\n  \"temperature\": 0.5,\n  \"model\": \"x\"\n}", "a-much-longer-model-name-2025");
    /* shorter and longer names; same length */
    splice("{\"model\":\"a-very-long-model-name-indeed\"}", "m");
    splice("{\"model\":\"abc\"}", "xyz");
    /* an empty old name */
    splice("{\"model\":\"\",\"messages\":[]}", "gpt-4o");
}

static void test_nested_and_text_untouched(void **state) {
    (void)state;
    /* "model" keys below the top level are never touched */
    splice("{\"metadata\":{\"model\":\"keep-me\"},\"model\":\"a\",\"tools\":[{\"model\":\"k\"}]}",
           "b");
    splice("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"model\":\"k\","
           "\"text\":\"{\\\"model\\\":\\\"inner\\\"}\"}]}],\"model\":\"a\"}",
           "b");
    /* brackets, quotes and backslashes inside strings do not confuse the skip */
    splice("{\"a\":\"}]\\\"{[\",\"b\":[\"\\\\\",\"\\\\\\\"\"],\"model\":\"m\",\"c\":\"model\"}",
           "n");
    splice("{\"a\":{\"b\":[[{\"c\":\"]]}}\"}]],\"d\":{}},\"model\":\"m\"}", "n");
    /* the nested one keeps its value: checked by json_equal above; and in bytes */
    const char *body = "{\"metadata\":{\"model\":\"keep-me\"},\"model\":\"a\"}";
    cg_buf b;
    cg_buf_init(&b, 4096);
    assert_int_equal(cg_buf_append(&b, body, strlen(body)), 0);
    assert_int_equal(cg_model_splice(&b, "zz", 2), 0);
    assert_string_equal(b.data, "{\"metadata\":{\"model\":\"keep-me\"},\"model\":\"zz\"}");
    cg_buf_free(&b);
}

static void test_escaping(void **state) {
    (void)state;
    /* old values with escapes: the span ends at the real closing quote */
    splice("{\"model\":\"a\\\"b\",\"n\":1}", "x");
    splice("{\"model\":\"ends-with-backslash\\\\\",\"n\":1}", "x");
    splice("{\"model\":\"\\\\\\\"\\\\\",\"n\":1}", "x");
    splice("{\"model\":\"\\u00e9\\n\\t\",\"n\":1}", "x");
    /* new names that need escaping */
    splice("{\"model\":\"a\"}", "quote\"inside");
    splice("{\"model\":\"a\"}", "back\\slash");
    splice("{\"model\":\"a\"}", "line\nbreak\ttab\rcr\bbs\fff");
    expect_splice("{\"model\":\"a\"}", 13, "ctl\x01\x1f", 5);
    splice("{\"model\":\"a\"}", "모델-é-🙂");
    splice("{\"model\":\"a\"}", "slash/ok\x7f");
    /* exactly what is written */
    cg_buf b;
    cg_buf_init(&b, 4096);
    const char *body = "{\"model\":\"a\"}";
    assert_int_equal(cg_buf_append(&b, body, strlen(body)), 0);
    assert_int_equal(cg_model_splice(&b, "q\"b\\n\n\x01", 7), 0);
    assert_string_equal(b.data, "{\"model\":\"q\\\"b\\\\n\\n\\u0001\"}");
    cg_buf_free(&b);
}

static void test_refusals(void **state) {
    (void)state;
    const char *ok = "gpt-4o";
    size_t ol = strlen(ok);
#define R(s) refused(s, strlen(s), ok, ol)
    R("{\"messages\":[]}");                 /* no model */
    R("{}");                                /* empty object */
    R("{\"meta\":{\"model\":\"x\"}}");      /* only nested */
    R("{\"model\":\"a\",\"model\":\"b\"}"); /* twice */
    R("{\"model\":4}");                     /* not a string */
    R("{\"model\":null}");                  /* ... */
    R("{\"model\":[\"a\"]}");               /* ... */
    R("{\"mod\\u0065l\":\"a\"}");           /* escaped key */
    R("{\"model\":\"a\"} x");               /* text after the object */
    R("{\"model\":\"a\"}{}");               /* ... */
    R("[\"model\"]");                       /* not an object */
    R("\"model\"");                         /* ... */
    R("{\"model\":\"a");                    /* unterminated string */
    R("{\"model\":\"a\\\"}");               /* the quote is escaped */
    R("{\"model\":\"a\",");                 /* cut */
    R("{\"model\" \"a\"}");                 /* no colon */
    R("{\"model\":\"a\" \"b\":1}");         /* no comma */
    R("{\"a\":{\"b\":1,\"model\":\"a\"}");  /* unclosed */
    R("");                                  /* empty */
    R("   ");                               /* blank */
#undef R
    /* names: too long, not UTF-8 */
    char longname[CG_MODEL_NAME_MAX + 2];
    memset(longname, 'm', sizeof longname);
    refused("{\"model\":\"a\"}", 13, longname, CG_MODEL_NAME_MAX + 1);
    splice("{\"model\":\"a\"}", ""); /* empty is allowed */
    refused("{\"model\":\"a\"}", 13, "bad\xff", 4);
    refused("{\"model\":\"a\"}", 13, "cut\xe2\x80", 5);
    refused("{\"model\":\"a\"}", 13, "surrogate\xed\xa0\x80", 12);
    /* a body at its cap cannot grow */
    cg_buf b;
    const char *body = "{\"model\":\"a\"}";
    cg_buf_init(&b, strlen(body) + 2);
    assert_int_equal(cg_buf_append(&b, body, strlen(body)), 0);
    assert_int_equal(cg_model_splice(&b, "abcd", 4), -1);
    assert_string_equal(b.data, body);
    assert_int_equal(cg_model_splice(&b, "abc", 3), 0); /* grows by 2: fits */
    assert_string_equal(b.data, "{\"model\":\"abc\"}");
    cg_buf_free(&b);
    assert_int_equal(cg_model_splice(NULL, "a", 1), -1);
    size_t s, e;
    assert_int_equal(cg_model_span(NULL, 0, &s, &e), -1);
}

/* Random values: strings from an alphabet of JSON's troublemakers. */
static uint64_t rng = 88172645463325252u;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static json_t *rand_string(void) {
    static const char *const bits[] = {"a", "model", "\"", "\\", "{",    "}", "[",  "]",    ":",
                                       ",", " ",     "\n", "\t", "\x01", "é", "한", "🙂", "/"};
    char s[128];
    size_t n = 0, parts = rnd(8);
    for (size_t i = 0; i < parts; i++) {
        const char *b = bits[rnd(sizeof bits / sizeof bits[0])];
        size_t l = strlen(b);
        if (n + l >= sizeof s)
            break;
        memcpy(s + n, b, l);
        n += l;
    }
    return json_stringn(s, n);
}

static json_t *rand_value(int depth) {
    uint32_t k = rnd(depth > 3 ? 5 : 7);
    switch (k) {
    case 0:
        return json_integer((json_int_t)rnd(100000) - 50000);
    case 1:
        return json_real((double)rnd(1000) / 7.0);
    case 2:
        return rnd(2) ? json_true() : rnd(2) ? json_false() : json_null();
    case 3:
    case 4:
        return rand_string();
    case 5: {
        json_t *a = json_array();
        for (uint32_t i = rnd(4); i > 0; i--)
            json_array_append_new(a, rand_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        static const char *const keys[] = {"model",   "role", "content", "text", "x",
                                           "m\"odel", "{",    "model ",  "Model"};
        for (uint32_t i = rnd(4); i > 0; i--)
            json_object_set_new(o, keys[rnd(sizeof keys / sizeof keys[0])], rand_value(depth + 1));
        return o;
    }
    }
}

static void test_random_bodies(void **state) {
    (void)state;
    static const size_t flags[] = {JSON_COMPACT,
                                   JSON_INDENT(2),
                                   JSON_INDENT(0),
                                   JSON_COMPACT | JSON_SORT_KEYS,
                                   JSON_INDENT(4) | JSON_ENSURE_ASCII,
                                   JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH,
                                   0};
    static const char *const names[] = {"gpt-4o", "claude-3-5-sonnet-20241022", "m", "a\"b\\c\n",
                                        "모델"};
    for (int round = 0; round < 3000; round++) {
        json_t *root = json_object();
        static const char *const top[] = {"messages", "metadata", "tools",      "max_tokens",
                                          "stream",   "user",     "temperature"};
        for (uint32_t i = rnd(5); i > 0; i--)
            json_object_set_new(root, top[rnd(sizeof top / sizeof top[0])], rand_value(0));
        json_object_set_new(root, "model", rand_string());
        for (uint32_t i = rnd(3); i > 0; i--)
            json_object_set_new(root, top[rnd(sizeof top / sizeof top[0])], rand_value(0));
        size_t f = flags[rnd(sizeof flags / sizeof flags[0])];
        char *text = json_dumps(root, f);
        assert_non_null(text);
        const char *name = names[rnd(sizeof names / sizeof names[0])];
        expect_splice(text, strlen(text), name, strlen(name));
        free(text);
        json_decref(root);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_layouts), cmocka_unit_test(test_nested_and_text_untouched),
        cmocka_unit_test(test_escaping),          cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_random_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
