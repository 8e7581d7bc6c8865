/* test_scan_event: provider/common's one-pass event scanner. Text counts
 * equal those of the earlier per-key search (kept below as the reference)
 * on real chunk shapes of both APIs and on generated JSON with escapes,
 * nested objects and keys in string values; the usage object, the model
 * and an empty choices array are found with or without spaces; a "model"
 * with an escape is not taken; a cut-off string counts to the end; a key
 * that only ends in an escaped quote and a counted name does not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "provider/provider.h"

/* the per-key search that cg_provider_scan_text replaced */
static int64_t reference(const char *p, size_t n, const char *const *keys) {
    int64_t total = 0;
    const char *end = p + n;
    for (int k = 0; keys[k]; k++) {
        size_t kl = strlen(keys[k]);
        const char *s = p;
        while (s < end) {
            const char *q = memmem(s, (size_t)(end - s), keys[k], kl);
            if (!q)
                break;
            s = q + kl;
            while (s < end && (*s == ' ' || *s == ':'))
                s++;
            if (s >= end || *s != '"')
                continue;
            s++;
            while (s < end && *s != '"') {
                if (*s == '\\' && s + 1 < end)
                    s++;
                s++;
                total++;
            }
        }
    }
    return total;
}

static const char *const OAI[] = {"\"content\"", "\"arguments\"", "\"refusal\"", NULL};
static const char *const ANT[] = {"\"text\"", "\"partial_json\"", "\"thinking\"", NULL};

static void same(const char *s, const char *const *keys) {
    int64_t want = reference(s, strlen(s), keys);
    int64_t got = cg_provider_scan_text(s, strlen(s), keys);
    if (want != got)
        fail_msg("%s: reference %lld, scan %lld", s, (long long)want, (long long)got);
}

static void test_shapes(void **state) {
    (void)state;
    same("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
         "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
         "\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}",
         OAI);
    same("{\"choices\":[{\"delta\":{\"content\":\"He said \\\"hi\\\"\\n\\u00e9\"}}]}", OAI);
    same("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{\\\"city\\\":"
         "\\\"Paris\\\"}\"}}]}}]}",
         OAI);
    same("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
         "\"text\":\"Hello \\\\ world\"}}",
         ANT);
    same("{\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": 1\"}}", ANT);
    same("{\"content\" : \"spaced\", \"x\":\"content\"}", OAI);
    same("{\"content\":\"cut off", OAI);
    /* keys are read as tokens: a key whose text ends in an escaped quote and
     * "content" is not "content" (the per-key search counted it) */
    const char *k = "{\"a\\\"content\":\"xyz\"}";
    assert_int_equal(cg_provider_scan_text(k, strlen(k), OAI), 0);
    same("{\"content\":\"ends in a backslash\\", OAI);
}

static uint64_t rng = 7;
static unsigned next(unsigned mod) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % mod);
}

static void put(char *buf, size_t cap, size_t *o, const char *s) {
    size_t l = strlen(s);
    if (*o + l < cap) {
        memcpy(buf + *o, s, l);
        *o += l;
        buf[*o] = '\0';
    }
}

/* a random JSON value: strings with escapes (and key-like text inside),
 * numbers, null, objects whose keys include the counted ones */
static void value(char *buf, size_t cap, size_t *o, int depth) {
    static const char *const strs[] = {
        "\"\"",     "\"plain\"",    "\"a\\\"b\"",
        "\"\\\\\"", "\"\\u00e9x\"", "\"\\\"content\\\":\\\"x\"",
        "\"text\"",
    };
    static const char *const keys[] = {
        "\"content\"",      "\"text\"",     "\"refusal\"", "\"arguments\"",
        "\"partial_json\"", "\"thinking\"", "\"x\"",       "\"content_x\"",
    };
    unsigned k = depth > 3 ? next(3) : next(5);
    if (k == 0) {
        put(buf, cap, o, strs[next(sizeof strs / sizeof strs[0])]);
    } else if (k == 1) {
        put(buf, cap, o, next(2) ? "12" : "null");
    } else if (k == 2) {
        put(buf, cap, o, strs[next(sizeof strs / sizeof strs[0])]);
    } else if (k == 3) {
        put(buf, cap, o, "{");
        int n = (int)next(4);
        for (int i = 0; i < n; i++) {
            if (i)
                put(buf, cap, o, next(2) ? "," : ", ");
            put(buf, cap, o, keys[next(sizeof keys / sizeof keys[0])]);
            put(buf, cap, o, next(2) ? ":" : " : ");
            value(buf, cap, o, depth + 1);
        }
        put(buf, cap, o, "}");
    } else {
        put(buf, cap, o, "[");
        int n = (int)next(3);
        for (int i = 0; i < n; i++) {
            if (i)
                put(buf, cap, o, ",");
            value(buf, cap, o, depth + 1);
        }
        put(buf, cap, o, "]");
    }
}

static void test_generated(void **state) {
    (void)state;
    char buf[2048];
    for (int t = 0; t < 50000; t++) {
        size_t o = 0;
        buf[0] = '\0';
        value(buf, sizeof buf, &o, 0);
        same(buf, OAI);
        same(buf, ANT);
    }
}

static void test_event_facts(void **state) {
    (void)state;
    cg_event_scan sc;
    const char *a = "{\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":3}}";
    cg_provider_scan_event(a, strlen(a), OAI, &sc);
    assert_non_null(sc.model);
    assert_int_equal(sc.model_len, 6);
    assert_memory_equal(sc.model, "gpt-4o", 6);
    assert_ptr_equal(sc.usage, strstr(a, "{\"prompt"));
    assert_int_equal(sc.choices_empty, 1);
    const char *b = "{\"model\" : \"m\\\"x\", \"choices\" : [ {\"delta\":{}} ], \"usage\" : null}";
    cg_provider_scan_event(b, strlen(b), OAI, &sc);
    assert_null(sc.model); /* escaped: not taken */
    assert_null(sc.usage);
    assert_int_equal(sc.choices_empty, 0);
    const char *c = "{\"choices\": [ ], \"usage\": {\"x\":1}, \"note\":\"\\\"usage\\\": {\"}";
    cg_provider_scan_event(c, strlen(c), OAI, &sc);
    assert_int_equal(sc.choices_empty, 1);
    assert_ptr_equal(sc.usage, strstr(c, "{\"x\""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_event_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
