/* test_usage_scan: unit tests of src/provider/usage_scan.c.
 *
 * Owns: the scanner's one promise: whenever it gives a result, that result
 * (cg_usage and return code) is exactly what jansson plus
 * cg_usage_from_openai / _openai_embedding / _anthropic give for the same
 * text, for each API; and cg_provider_read_usage, its caller, is exactly the
 * jansson path in every case (declines included). Checked on the golden cost
 * cases (tests/unit/cost/test_meter.c), real provider shapes, the fuzz
 * corpus (tests/fuzz/corpus/fuzz_usage), hand-made edge cases (escapes,
 * duplicates, reals, bounds, nesting, whitespace) and 20,000 generated
 * objects. Also that the common shapes are accepted, not declined (that is
 * the point of the scanner).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider.h"

typedef int (*reader)(const json_t *, cg_usage *);

static const struct {
    cg_api api;
    int embedding;
    reader fn;
} MODES[3] = {
    {CG_API_OPENAI, 0, cg_usage_from_openai},
    {CG_API_OPENAI, 1, cg_usage_from_openai_embedding},
    {CG_API_ANTHROPIC, 0, cg_usage_from_anthropic},
};

static long n_checked, n_accepted;

/* 1 if the scanner accepted the text in every mode. */
static int check(const char *t, size_t n) {
    int all = 1;
    for (int m = 0; m < 3; m++) {
        cg_usage ref, got, via;
        memset(&ref, 0x5a, sizeof ref);
        json_t *j = json_loadb(t, n, 0, NULL);
        int ref_rc = j ? MODES[m].fn(j, &ref) : -1;
        json_decref(j);
        memset(&got, 0x5a, sizeof got);
        int rc = cg_provider_scan_usage(MODES[m].api, MODES[m].embedding, t, n, &got);
        n_checked++;
        if (rc == 0) {
            n_accepted++;
            if (ref_rc != 0 || memcmp(&got, &ref, sizeof got) != 0)
                fail_msg("mode %d: the scanner differs from jansson on: %.*s", m, (int)n, t);
        } else {
            all = 0;
            assert_int_equal(rc, 1);
            cg_usage untouched;
            memset(&untouched, 0x5a, sizeof untouched);
            assert_memory_equal(&got, &untouched, sizeof got);
        }
        memset(&via, 0x5a, sizeof via);
        int vrc = cg_provider_read_usage(MODES[m].api, MODES[m].embedding, t, n, &via);
        assert_int_equal(vrc, ref_rc);
        if (memcmp(&via, &ref, sizeof via) != 0)
            fail_msg("mode %d: read_usage differs from jansson on: %.*s", m, (int)n, t);
    }
    return all;
}

static int check_s(const char *t) {
    return check(t, strlen(t));
}

static void test_golden_and_real_shapes(void **state) {
    (void)state;
    static const char *const accepted[] = {
        /* the golden cost cases (test_meter.c) */
        "{\"prompt_tokens\":2006,\"completion_tokens\":300,\"total_tokens\":2306,"
        "\"prompt_tokens_details\":{\"cached_tokens\":1920}}",
        "{\"prompt_tokens\":1500,\"completion_tokens\":2000,\"total_tokens\":3500,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":1800}}",
        "{\"prompt_tokens\":1000,\"completion_tokens\":5000,\"total_tokens\":6000}",
        "{\"input_tokens\":50,\"cache_read_input_tokens\":100000,"
        "\"cache_creation_input_tokens\":2048,\"cache_creation\":"
        "{\"ephemeral_5m_input_tokens\":1024,\"ephemeral_1h_input_tokens\":1024},"
        "\"output_tokens\":500}",
        "{\"input_tokens\":25,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0,"
        "\"output_tokens\":1}",
        "{\"prompt_tokens\":1000,\"total_tokens\":1000}",
        "{\"prompt_tokens\":12345,\"total_tokens\":12345}",
        "{\"prompt_tokens\":1000}",
        "{\"input_tokens\":100,\"output_tokens\":200,\"server_tool_use\":"
        "{\"web_search_requests\":3}}",
        /* what the providers send today */
        "{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
        "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
        "{\n  \"prompt_tokens\": 19,\n  \"completion_tokens\": 10,\n  \"total_tokens\": 29,\n"
        "  \"prompt_tokens_details\": {\n    \"cached_tokens\": 0\n  }\n}",
        "{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},"
        "\"output_tokens\":6,\"service_tier\":\"standard\"}",
        "{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":20,"
        "\"output_tokens_details\":{\"reasoning_tokens\":5},\"total_tokens\":30}",
        "{\"prompt_tokens\":8,\"completion_tokens\":0,\"total_tokens\":8,"
        "\"prompt_tokens_details\":null,\"completion_tokens_details\":null}",
        "{}",
        "{\"prompt_tokens\":null,\"completion_tokens\":null}",
        "{\"prompt_tokens\":1,\"x\":-5,\"y\":true,\"z\":false,\"w\":null,\"v\":\"s\",\"\":0}",
        " \t{ \"prompt_tokens\" : 1 , \"completion_tokens\" :2 }\r\n",
        "{\"prompt_tokens\":1000000000,\"completion_tokens\":0}",
        "{\"cache_creation\":{\"ephemeral_1h_input_tokens\":7},\"cache_creation_input_tokens\":9}",
        "{\"cache_creation\":null,\"cache_creation_input_tokens\":9,\"server_tool_use\":null}",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
        if (!check_s(accepted[i]))
            fail_msg("declined a common shape: %s", accepted[i]);
}

static void test_edge_cases(void **state) {
    (void)state;
    /* declined, or equal to jansson: never wrong */
    static const char *const cases[] = {
        "{\"prompt\\u005ftokens\":5}",               /* an escaped key */
        "{\"prompt_tokens\":5,\"prompt_tokens\":6}", /* duplicate: jansson keeps the last */
        "{\"prompt_tokens\":5.0}",                   /* a real */
        "{\"prompt_tokens\":5e2}",                   /* an exponent */
        "{\"prompt_tokens\":-1}",                    /* negative */
        "{\"prompt_tokens\":05}",                    /* a leading zero */
        "{\"prompt_tokens\":1000000001}",            /* above the scanner's bound */
        "{\"prompt_tokens\":1000000000001}",         /* above usage.c's bound */
        "{\"prompt_tokens\":99999999999999999999}",  /* above int64 */
        "{\"prompt_tokens\":\"5\"}",                 /* a string */
        "{\"prompt_tokens\":true}",                  /* a boolean */
        "{\"prompt_tokens\":[5]}",                   /* an array */
        "{\"prompt_tokens\":5,}",                    /* a trailing comma */
        "{\"prompt_tokens\":5",                      /* cut */
        "{\"prompt_tokens\" 5}",                     /* no colon */
        "{\"prompt_tokens\":5}}",                    /* trailing bytes */
        "{\"prompt_tokens\":5} x",                   /* trailing bytes */
        "{\"prompt_tokens\":1,\"completion_tokens\":1,\"prompt_tokens_details\":"
        "{\"cached_tokens\":2}}", /* cached > prompt */
        "{\"completion_tokens\":1,\"completion_tokens_details\":{\"reasoning_tokens\":2}}",
        "{\"prompt_tokens_details\":5}", /* details not an object */
        "{\"prompt_tokens_details\":{\"cached_tokens\":{\"x\":1}}}",
        "{\"prompt_tokens_details\":{\"cached_tokens\":1},\"prompt_tokens_details\":{}}",
        "{\"prompt_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":1},"
        "\"input_tokens_details\":{\"cached_tokens\":2}}", /* both: the first wins */
        "{\"prompt_tokens\":3,\"input_tokens\":4}",        /* both names: prompt wins */
        "{\"input_tokens\":3,\"prompt_tokens\":\"x\"}",
        "{\"extra\":{\"a\":1}}",                /* an unknown object */
        "{\"extra\":[1,2]}",                    /* an unknown array */
        "{\"extra\":\"caf\xc3\xa9\"}",          /* non-ASCII */
        "{\"extra\":\"a\\\"b\"}",               /* an escape in a value */
        "{\"extra\":\"bad\xff\"}",              /* invalid UTF-8 */
        "{\"extra\":\"a\x01\"}",                /* a control character */
        "{\"extra\":123456789012345678901234}", /* an integer jansson refuses */
        "{\"extra\":1.5}",
        "{\"extra\":-0}",
        "{\"extra\":tru}",
        "{\"cache_creation\":{\"ephemeral_5m_input_tokens\":-1}}",
        "{\"cache_creation\":[]}",
        "{\"server_tool_use\":{\"web_search_requests\":1.5}}",
        "{\"input_tokens\":1,\"cache_creation\":{\"ephemeral_5m_input_tokens\":2,"
        "\"ephemeral_5m_input_tokens\":3}}",
        "[]",
        "",
        "null",
        "{\"a\":1 \"b\":2}",
        "{,}",
        "{\"prompt_tokens\":0,\"completion_tokens\":00}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_s(cases[i]);
    /* NUL bytes inside the text */
    static const char nul[] = "{\"prompt_tokens\":1,\"x\":\"a\0b\"}";
    check(nul, sizeof nul - 1);
}

/* Every usage object (first and last) in each fuzz corpus file, and the
 * file itself. */
static void test_fuzz_corpus(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/fuzz_usage", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        check(buf, n);
        const char *os, *oe;
        for (int last = 0; last < 2; last++)
            if (cg_provider_usage_object(buf, n, last, &os, &oe) == 0)
                check(os, (size_t)(oe - os));
        files++;
    }
    closedir(d);
    assert_true(files >= 20);
}

/* Random objects from the keys and values the readers care about, plus
 * noise, with random spacing. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const KEYS[] = {"prompt_tokens",
                                   "completion_tokens",
                                   "total_tokens",
                                   "input_tokens",
                                   "output_tokens",
                                   "cache_read_input_tokens",
                                   "cache_creation_input_tokens",
                                   "cached_tokens",
                                   "reasoning_tokens",
                                   "ephemeral_5m_input_tokens",
                                   "ephemeral_1h_input_tokens",
                                   "web_search_requests",
                                   "audio_tokens",
                                   "service_tier",
                                   "x"};
static const char *const OBJ_KEYS[] = {"prompt_tokens_details",
                                       "input_tokens_details",
                                       "completion_tokens_details",
                                       "output_tokens_details",
                                       "cache_creation",
                                       "server_tool_use",
                                       "other"};
static const char *const VALUES[] = {"0",          "1",          "7",
                                     "100",        "2048",       "999999999",
                                     "1000000000", "1000000001", "-1",
                                     "1.0",        "1e3",        "null",
                                     "true",       "false",      "\"standard\"",
                                     "\"\"",       "\"a\\\"b\"", "[]",
                                     "{}",         "01",         "123456789012345678901"};

static void ws(char *b, size_t *n) {
    static const char *const W[] = {"", "", "", " ", "\n  ", "\t"};
    const char *w = W[rnd(6)];
    size_t l = strlen(w);
    memcpy(b + *n, w, l);
    *n += l;
}

static void put(char *b, size_t *n, const char *s) {
    size_t l = strlen(s);
    memcpy(b + *n, s, l);
    *n += l;
}

static void gen_obj(char *b, size_t *n, int depth) {
    put(b, n, "{");
    int members = (int)rnd(7);
    for (int i = 0; i < members; i++) {
        if (i)
            put(b, n, ",");
        ws(b, n);
        put(b, n, "\"");
        int nested = depth == 0 && rnd(4) == 0;
        put(b, n, nested ? OBJ_KEYS[rnd(7)] : KEYS[rnd(15)]);
        put(b, n, "\"");
        ws(b, n);
        put(b, n, ":");
        ws(b, n);
        if (nested && rnd(5))
            gen_obj(b, n, depth + 1);
        else
            put(b, n, VALUES[rnd(sizeof VALUES / sizeof *VALUES)]);
        ws(b, n);
    }
    put(b, n, "}");
}

static void test_generated(void **state) {
    (void)state;
    static char b[8192];
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = 0;
        gen_obj(b, &n, 0);
        accepted += check(b, n);
    }
    assert_true(accepted > 500); /* the generator reaches the accepting paths too */
    assert_true(n_accepted > 0 && n_checked > n_accepted);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_and_real_shapes),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_fuzz_corpus),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
