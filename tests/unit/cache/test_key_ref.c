/* test_key_ref: the exact cache key's fast encoder against a reference.
 *
 * Owns: byte-for-byte equality of cg_cache_key_material (the staged
 * encoder: insertion sort of members by byte order, key lengths from
 * jansson, ignored fields by first byte) and of cg_cache_key (one-shot
 * SHA-256 of the stage, or streamed through the thread's digest context)
 * with a plain reference encoder written straight from the documented
 * composition (qsort with strcmp, strlen, json_object_get, SHA-256 of the
 * whole material), over every JSON object under tests/, request bodies
 * built from the arena-hard questions and answers (../shared/data), and
 * random JSON trees (ignored names at every depth, many keys, shared
 * prefixes, UTF-8, extreme numbers, bodies past the 8 KiB stage, nesting
 * past the depth limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/key.h"
#include "core/buf.h"
#include "core/hash.h"

#include "walk_files.h"

/* --- the reference encoder ------------------------------------------------ */

static int ref_ignored(const char *k) {
    static const char *const names[] = {"user", "metadata", "stream", "stream_options", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

static int ref_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ref_value(cg_buf *b, const json_t *v, int depth, int top) {
    if (depth > 512)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char **keys = malloc((n ? n : 1) * sizeof *keys);
        const char *key;
        json_t *x;
        json_object_foreach((json_t *)v, key, x) {
            if (!top || !ref_ignored(key))
                keys[k++] = key;
        }
        qsort(keys, k, sizeof *keys, ref_cmp);
        cg_buf_puts(b, "{");
        int rc = 0;
        for (size_t i = 0; i < k && rc == 0; i++) {
            cg_buf_printf(b, "s%zu:%s", strlen(keys[i]), keys[i]);
            rc = ref_value(b, json_object_get(v, keys[i]), depth + 1, 0);
        }
        cg_buf_puts(b, "}");
        free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        cg_buf_puts(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++)
            if (ref_value(b, json_array_get(v, i), depth + 1, 0) != 0)
                return -1;
        cg_buf_puts(b, "]");
        return 0;
    }
    case JSON_STRING:
        cg_buf_printf(b, "s%zu:", json_string_length(v));
        cg_buf_append(b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        cg_buf_printf(b, "i%lld;", (long long)json_integer_value(v));
        return 0;
    case JSON_REAL:
        cg_buf_printf(b, "r%.17g;", json_real_value(v));
        return 0;
    case JSON_TRUE:
        cg_buf_puts(b, "t");
        return 0;
    case JSON_FALSE:
        cg_buf_puts(b, "f");
        return 0;
    case JSON_NULL:
        cg_buf_puts(b, "n");
        return 0;
    }
    return -1;
}

static void ref_field(cg_buf *b, const char *name, const char *v) {
    v = v ? v : "";
    cg_buf_printf(b, "%s:%zu:%s\n", name, strlen(v), v);
}

static int ref_material(const cg_cache_key_in *in, cg_buf *b) {
    if (!json_is_object(in->body))
        return -1;
    cg_buf_puts(b, "costgate-exact-cache v1\n");
    ref_field(b, "scope", in->scope);
    ref_field(b, "api", in->api);
    ref_field(b, "prompt_version", in->prompt_version);
    ref_field(b, "context_ids", in->context_ids);
    ref_field(b, "anthropic_version", in->anthropic_version);
    ref_field(b, "anthropic_beta", in->anthropic_beta);
    cg_buf_puts(b, "body:");
    return ref_value(b, in->body, 0, 1);
}

/* --- comparison ------------------------------------------------------------- */

static size_t g_compared, g_failed_both, g_streamed; /* material past the 8 KiB stage */

static const char *const SCOPES[] = {"tenant=2:t1", "group=4:docs;segment=3:pro", ""};
static const char *const PVS[] = {"", "v3", "release-2025-01"};
static const char *const CTX[] = {"", "doc-1,doc-2", "a"};

static void compare(const json_t *body) {
    size_t i = g_compared;
    int anth = (int)(i & 1);
    cg_cache_key_in in = {
        .scope = SCOPES[i % 3],
        .api = anth ? "anthropic.messages" : "openai.chat_completions",
        .prompt_version = PVS[(i / 3) % 3],
        .context_ids = i % 5 == 4 ? NULL : CTX[(i / 2) % 3],
        .anthropic_version = anth ? "2023-06-01" : NULL,
        .anthropic_beta = anth && i % 4 == 1 ? "prompt-caching-2024-07-31" : "",
        .body = body,
    };
    cg_buf want, got;
    cg_buf_init(&want, 64u << 20);
    cg_buf_init(&got, 64u << 20);
    int rw = ref_material(&in, &want);
    int rg = cg_cache_key_material(&in, &got);
    uint8_t kw[32], kg[32];
    int rk = cg_cache_key(&in, kg);
    assert_int_equal(rw, rg);
    assert_int_equal(rw, rk);
    if (rw == 0) {
        assert_int_equal(want.len, got.len);
        assert_memory_equal(want.data, got.data, want.len);
        cg_sha256(want.data, want.len, kw);
        assert_memory_equal(kw, kg, 32);
        g_streamed += want.len > 8192;
    } else {
        g_failed_both++;
    }
    g_compared++;
    cg_buf_free(&want);
    cg_buf_free(&got);
}

/* --- inputs: files ------------------------------------------------------------ */

static void compare_text(const char *text, size_t len) {
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!v)
        return;
    if (json_is_object(v))
        compare(v);
    else { /* a non-object is refused by both */
        cg_cache_key_in in = {.scope = "", .api = "", .body = v};
        uint8_t k[32];
        assert_int_equal(cg_cache_key(&in, k), -1);
    }
    json_decref(v);
}

static void text_of_file(const char *p, size_t n, int whole) {
    (void)whole;
    compare_text(p, n);
}

static void compare_file(const char *path) {
    json_texts_of(path, text_of_file);
}

static void test_every_json_under_tests(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests", src ? src : ".");
    size_t before = g_compared;
    walk_files(dir, 0, 16 << 20, compare_file);
    fprintf(stderr, "key: %zu objects under tests/ compared\n", g_compared - before);
    assert_true(g_compared - before >= 50); /* the walk found the fixtures */
}

/* --- inputs: arena-hard requests --------------------------------------------- */

static const char *shared_path(char *out, size_t cap, const char *rel) {
    const char *sh = getenv("CG_SHARED_DIR");
    snprintf(out, cap, "%s/data/arena-hard/%s", sh ? sh : "../shared", rel);
    return out;
}

static void compare_requests_from(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "key: %s not found, skipped\n", path);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *q = json_loadb(line, (size_t)n, 0, NULL);
        if (!q)
            continue;
        compare(q); /* the record itself is an object too */
        const char *prompt = json_string_value(json_object_get(q, "prompt"));
        json_t *msgs = json_object_get(q, "messages");
        json_t *m = json_array();
        json_array_append_new(m, json_pack("{s:s,s:s}", "role", "system", "content", "Be terse."));
        if (prompt) {
            json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
        } else if (json_is_array(msgs)) {
            size_t i;
            json_t *x;
            json_array_foreach(msgs, i, x) {
                json_t *c = json_object_get(x, "content");
                json_t *a = json_is_object(c) ? json_object_get(c, "answer") : c;
                json_array_append_new(m, json_pack("{s:O,s:O}", "role", json_object_get(x, "role"),
                                                   "content", a ? a : json_null()));
            }
        }
        json_t *oai =
            json_pack("{s:s,s:O,s:f,s:i,s:s,s:b,s:{s:b},s:{s:s}}", "model", "gpt-4o-mini",
                      "messages", m, "temperature", 0.7, "max_tokens", 512, "user", "u-1", "stream",
                      1, "stream_options", "include_usage", 1, "metadata", "k", "v");
        json_t *ant = json_pack("{s:s,s:i,s:s,s:O,s:f,s:i,s:[s]}", "model", "claude-haiku-4-5",
                                "max_tokens", 1024, "system", "Be terse.", "messages", m, "top_p",
                                0.95, "top_k", 40, "stop_sequences", "END");
        compare(oai);
        compare(ant);
        json_decref(oai);
        json_decref(ant);
        json_decref(m);
        json_decref(q);
    }
    free(line);
    fclose(f);
}

static void test_arena_hard_requests(void **state) {
    (void)state;
    static const char *const files[] = {"v0.1_question.jsonl", "v2.0_question.jsonl",
                                        "v0.1_answer_gpt-4-0314.jsonl",
                                        "v0.1_answer_gpt-3.5-turbo-0125.jsonl", NULL};
    size_t before = g_compared;
    for (int i = 0; files[i]; i++) {
        char p[4096];
        compare_requests_from(shared_path(p, sizeof p, files[i]));
    }
    fprintf(stderr, "key: %zu arena-hard bodies compared\n", g_compared - before);
    assert_true(g_compared - before >= 1000); /* ../shared/data is beside the repo */
}

/* --- inputs: random trees ----------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static const char *const KEYS[] = {"user",
                                   "metadata",
                                   "stream",
                                   "stream_options",
                                   "users",
                                   "use",
                                   "stream_option",
                                   "model",
                                   "messages",
                                   "m",
                                   "",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "a b",
                                   "Z",
                                   "z",
                                   "aa",
                                   "a",
                                   "tools",
                                   "tool",
                                   "metadat",
                                   "~",
                                   "0",
                                   "09",
                                   "\x7f",
                                   "stop",
                                   "temperature"};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static json_t *rnd_string(void) {
    static const char *const bits[] = {
        "a", "Z", " ", "\"", "\\", "\n", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82\xac", "0", "{"};
    size_t n = rnd() % 64 == 0 ? 9000 + rnd() % 4000 : rnd() % 24;
    cg_buf b;
    cg_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n; i++)
        cg_buf_puts(&b, bits[rnd() % (sizeof bits / sizeof bits[0])]);
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    cg_buf_free(&b);
    return s;
}

static json_t *rnd_value(int depth) {
    static const double reals[] = {0.0, -0.0, 0.1, 1.0, -2.5, 1e300, 5e-324, 0.7, 123456789.125};
    static const json_int_t ints[] = {0, -1, 1, 9, 10, -10, 64, INT64_MAX, INT64_MIN};
    switch (rnd() % (depth > 5 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd() & 1);
    case 2:
        return json_integer(rnd() & 1 ? ints[rnd() % 9] : (json_int_t)(rnd() >> 20));
    case 3:
        return json_real(rnd() & 1 ? reals[rnd() % 9] : (double)(rnd() >> 11) / 1e6);
    case 4:
    case 5:
        return rnd_string();
    case 6: {
        json_t *a = json_array();
        size_t n = rnd() % 6;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        size_t n = rnd() % 4 == 0 ? 17 + rnd() % 30 : rnd() % 9;
        for (size_t i = 0; i < n; i++) {
            char k[64];
            if (rnd() % 3)
                snprintf(k, sizeof k, "%s", KEYS[rnd() % N_KEYS]);
            else
                snprintf(k, sizeof k, "%s%u", KEYS[rnd() % N_KEYS], (unsigned)(rnd() % 100));
            json_object_set_new(o, k, rnd_value(depth + 1));
        }
        return o;
    }
    }
}

static void test_random_bodies(void **state) {
    (void)state;
    size_t before = g_compared;
    for (int i = 0; i < 3000; i++) {
        json_t *o = json_object();
        size_t n = rnd() % 6 == 0 ? 17 + rnd() % 20 : rnd() % 10;
        for (size_t j = 0; j < n; j++)
            json_object_set_new(o, KEYS[rnd() % N_KEYS], rnd_value(1));
        compare(o);
        json_decref(o);
    }
    fprintf(stderr, "key: %zu random bodies compared (%zu streamed so far)\n", g_compared - before,
            g_streamed);
    assert_true(g_streamed > 0);
}

static void test_depth_limit(void **state) {
    (void)state;
    for (int depth = 505; depth <= 520; depth++) {
        json_t *o = json_object(), *cur = o;
        for (int i = 0; i < depth; i++) {
            json_t *next = i & 1 ? json_object() : json_array();
            if (json_is_object(cur))
                json_object_set_new(cur, "x", next);
            else
                json_array_append_new(cur, next);
            cur = next;
        }
        compare(o);
        json_decref(o);
    }
    assert_true(g_failed_both > 0); /* some were past the limit, for both */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_json_under_tests),
        cmocka_unit_test(test_arena_hard_requests),
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
