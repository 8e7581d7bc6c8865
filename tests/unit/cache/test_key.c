/* test_key: unit tests of src/cache/key.c, the exact cache's canonical key.
 *
 * Owns: the key composition, field by field: every body field that can
 * change the answer (model, messages, system, tools, tool_choice,
 * response_format, temperature, top_p, seed, stop, max_tokens,
 * max_completion_tokens, n, logprobs, and any field not known yet), the API
 * kind, the scope (tenant, share group, partition attributes), the prompt
 * version, the context ids and the Anthropic headers each change the key;
 * the fields that cannot (user, metadata, stream, stream_options), key
 * order and whitespace do not. The material's exact bytes are pinned, the
 * key is SHA-256 of the material, and the context ids and the scope are
 * canonical and injective.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/key.h"
#include "core/hash.h"

static const char *BASE_OPENAI =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"be terse\"},"
    "{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":"
    "{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"auto\","
    "\"response_format\":{\"type\":\"text\"},\"temperature\":0.2,\"top_p\":0.9,\"seed\":7,"
    "\"stop\":[\"END\"],\"max_tokens\":64,\"n\":1,\"user\":\"u1\",\"metadata\":{\"a\":\"b\"},"
    "\"stream\":false}";

static const char *BASE_ANTHROPIC =
    "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":64,\"system\":\"be terse\",\"messages\":"
    "[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2,\"top_p\":0.9,"
    "\"stop_sequences\":[\"END\"],\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
    "\"object\"}}],\"tool_choice\":{\"type\":\"auto\"},\"metadata\":{\"user_id\":\"u\"}}";

typedef struct in {
    char scope[256];
    const char *api, *pv, *ctx, *av, *ab;
    json_t *body;
} in;

static void base(in *x, const char *body, int anthropic) {
    memset(x, 0, sizeof *x);
    assert_int_equal(cg_cache_key_scope("t1", NULL, NULL, 0, x->scope, sizeof x->scope), 0);
    x->api = anthropic ? "anthropic.messages" : "openai.chat_completions";
    x->pv = "";
    x->ctx = "";
    x->av = anthropic ? "2023-06-01" : "";
    x->ab = "";
    x->body = json_loads(body, 0, NULL);
    assert_non_null(x->body);
}

static void key_of(const in *x, uint8_t out[32]) {
    cg_cache_key_in k = {x->scope, x->api, x->pv, x->ctx, x->av, x->ab, x->body};
    assert_int_equal(cg_cache_key(&k, out), 0);
}

/* Applies a JSON change (set key to value, or delete when value is NULL)
 * and checks the key changes (or not). */
static void check_field(const char *body, int anthropic, const char *field, const char *value,
                        int changes) {
    in a, b;
    uint8_t ka[32], kb[32];
    base(&a, body, anthropic);
    base(&b, body, anthropic);
    if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        json_object_set_new(b.body, field, v);
    } else {
        json_object_del(b.body, field);
    }
    key_of(&a, ka);
    key_of(&b, kb);
    if (changes && memcmp(ka, kb, 32) == 0)
        fail_msg("changing '%s' to %s did not change the key", field, value ? value : "(none)");
    if (!changes && memcmp(ka, kb, 32) != 0)
        fail_msg("changing '%s' to %s changed the key", field, value ? value : "(none)");
    json_decref(a.body);
    json_decref(b.body);
}

static void test_openai_fields_change_key(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"model", "\"gpt-4o\""},
        {"messages", "[{\"role\":\"user\",\"content\":\"hi!\"}]"},
        {"tools", "[]"},
        {"tool_choice", "\"none\""},
        {"response_format", "{\"type\":\"json_object\"}"},
        {"temperature", "0.3"},
        {"top_p", "1"},
        {"seed", "8"},
        {"stop", "[\"STOP\"]"},
        {"max_tokens", "65"},
        {"max_completion_tokens", "64"},
        {"n", "2"},
        {"logprobs", "true"},
        {"parallel_tool_calls", "false"},
        {"a_field_from_next_year", "1"}, /* unknown fields are covered too */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_field(BASE_OPENAI, 0, cases[i][0], cases[i][1], 1);
    /* removing one changes it too */
    check_field(BASE_OPENAI, 0, "temperature", NULL, 1);
    check_field(BASE_OPENAI, 0, "seed", NULL, 1);
}

static void test_system_prompt_changes_key(void **state) {
    (void)state;
    /* OpenAI: the system message is part of messages */
    check_field(BASE_OPENAI, 0, "messages",
                "[{\"role\":\"system\",\"content\":\"be verbose\"},{\"role\":\"user\","
                "\"content\":\"hi\"}]",
                1);
    check_field(BASE_ANTHROPIC, 1, "system", "\"be verbose\"", 1);
    check_field(BASE_ANTHROPIC, 1, "system", "[{\"type\":\"text\",\"text\":\"be terse\"}]", 1);
    check_field(BASE_ANTHROPIC, 1, "system", NULL, 1);
}

static void test_anthropic_fields_change_key(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"model", "\"claude-sonnet-4-5\""},
        {"max_tokens", "65"},
        {"temperature", "1"},
        {"top_p", "0.5"},
        {"top_k", "5"},
        {"stop_sequences", "[]"},
        {"tools", "[]"},
        {"tool_choice", "{\"type\":\"any\"}"},
        {"thinking", "{\"type\":\"enabled\",\"budget_tokens\":1024}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_field(BASE_ANTHROPIC, 1, cases[i][0], cases[i][1], 1);
}

static void test_ignored_fields_do_not_change_key(void **state) {
    (void)state;
    check_field(BASE_OPENAI, 0, "user", "\"someone else\"", 0);
    check_field(BASE_OPENAI, 0, "user", NULL, 0);
    check_field(BASE_OPENAI, 0, "metadata", "{\"x\":\"y\"}", 0);
    check_field(BASE_OPENAI, 0, "stream", "true", 0);
    check_field(BASE_OPENAI, 0, "stream_options", "{\"include_usage\":true}", 0);
    check_field(BASE_ANTHROPIC, 1, "metadata", "{\"user_id\":\"other\"}", 0);
    check_field(BASE_ANTHROPIC, 1, "stream", "true", 0);
    for (int i = 0; cg_cache_key_ignored[i]; i++)
        assert_true(strcmp(cg_cache_key_ignored[i], "messages") != 0);
}

static void test_order_and_whitespace_do_not_change_key(void **state) {
    (void)state;
    in a, b;
    uint8_t ka[32], kb[32];
    base(&a,
         "{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"b\":1,"
         "\"a\":2}}}",
         0);
    base(&b,
         "{ \"response_format\" : {\"json_schema\": {\"a\": 2, \"b\": 1}, \"type\": "
         "\"json_schema\"},\n \"messages\": [ {\"content\": \"x\", \"role\": \"user\"} ],"
         " \"temperature\": 0, \"model\": \"m\" }",
         0);
    key_of(&a, ka);
    key_of(&b, kb);
    assert_memory_equal(ka, kb, 32);
    json_decref(a.body);
    json_decref(b.body);
}

/* The parts around the body, each on its own. */
static void test_non_body_parts_change_key(void **state) {
    (void)state;
    uint8_t k0[32], k[32];
    in x;
    base(&x, BASE_ANTHROPIC, 1);
    key_of(&x, k0);
    const char *saved;

    saved = x.api;
    x.api = "openai.chat_completions";
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    x.api = saved;

    x.pv = "v2";
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    x.pv = "";

    x.ctx = "doc-1";
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    x.ctx = "";

    x.av = "2024-01-01";
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    x.av = "2023-06-01";

    x.ab = "prompt-caching-2024-07-31";
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    x.ab = "";

    /* scope: another tenant, a share group, a partition attribute */
    char s0[256];
    snprintf(s0, sizeof s0, "%s", x.scope);
    cg_cache_key_scope("t2", NULL, NULL, 0, x.scope, sizeof x.scope);
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    cg_cache_key_scope("t1", "docs", NULL, 0, x.scope, sizeof x.scope);
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    cg_cache_scope_part seg = {"segment", "rnd"};
    cg_cache_key_scope("t1", NULL, &seg, 1, x.scope, sizeof x.scope);
    key_of(&x, k);
    assert_memory_not_equal(k0, k, 32);
    snprintf(x.scope, sizeof x.scope, "%s", s0);
    key_of(&x, k);
    assert_memory_equal(k0, k, 32);
    json_decref(x.body);
}

static void test_material_pinned(void **state) {
    (void)state;
    in x;
    base(&x, "{\"stream\":true,\"model\":\"m\",\"messages\":[],\"user\":\"u\"}", 0);
    x.pv = "v1";
    x.ctx = "a,b";
    cg_cache_key_in k = {x.scope, x.api, x.pv, x.ctx, x.av, x.ab, x.body};
    cg_buf b;
    cg_buf_init(&b, 1 << 16);
    assert_int_equal(cg_cache_key_material(&k, &b), 0);
    const char *want = "costgate-exact-cache v1\n"
                       "scope:11:tenant=2:t1\n"
                       "api:23:openai.chat_completions\n"
                       "prompt_version:2:v1\n"
                       "context_ids:3:a,b\n"
                       "anthropic_version:0:\n"
                       "anthropic_beta:0:\n"
                       "body:{s8:messages[]s5:models1:m}";
    assert_string_equal(b.data, want);
    uint8_t d[32], key[32];
    cg_sha256(b.data, b.len, d);
    assert_int_equal(cg_cache_key(&k, key), 0);
    assert_memory_equal(d, key, 32);
    cg_buf_free(&b);
    json_decref(x.body);
}

static void test_value_encoding(void **state) {
    (void)state;
    json_t *body = json_loads("{\"b\":[null,true,false,-3,0.5,\"\\u00e9\\\"\"],"
                              "\"a\":{\"y\":1,\"x\":{}}}",
                              0, NULL);
    assert_non_null(body);
    cg_cache_key_in k = {"tenant=1:t", "openai.chat_completions", "", "", "", "", body};
    cg_buf b;
    cg_buf_init(&b, 1 << 16);
    assert_int_equal(cg_cache_key_material(&k, &b), 0);
    const char *body_part = strstr(b.data, "body:");
    assert_non_null(body_part);
    assert_string_equal(body_part, "body:{s1:a{s1:x{}s1:yi1;}s1:b[ntfi-3;r0.5;s3:\xc3\xa9\"]}");
    cg_buf_free(&b);
    json_decref(body);
}

static void test_large_body_same_as_material(void **state) {
    (void)state;
    /* bigger than the digest's staging buffer: the streamed hash must equal
     * the one-shot hash of the material */
    json_t *body =
        json_pack("{s:s,s:[{s:s,s:s}]}", "model", "m", "messages", "role", "user", "content", "");
    char *big = malloc(100000);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    json_object_set_new(json_array_get(json_object_get(body, "messages"), 0), "content",
                        json_string(big));
    cg_cache_key_in k = {"tenant=2:t1", "openai.chat_completions", "", "", "", "", body};
    cg_buf b;
    cg_buf_init(&b, 1 << 20);
    assert_int_equal(cg_cache_key_material(&k, &b), 0);
    uint8_t d[32], key[32];
    cg_sha256(b.data, b.len, d);
    assert_int_equal(cg_cache_key(&k, key), 0);
    assert_memory_equal(d, key, 32);
    cg_buf_free(&b);
    free(big);
    json_decref(body);
}

static void test_ctx_ids(void **state) {
    (void)state;
    char out[256], err[128];
    size_t n;
    assert_int_equal(
        cg_cache_ctx_ids(" doc-2 ,doc-1,, doc-2\t,doc-10", out, sizeof out, &n, err, sizeof err),
        0);
    assert_string_equal(out, "doc-1,doc-10,doc-2");
    assert_int_equal(n, 3);
    assert_int_equal(cg_cache_ctx_ids("", out, sizeof out, &n, err, sizeof err), 0);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    assert_int_equal(cg_cache_ctx_ids(NULL, out, sizeof out, &n, err, sizeof err), 0);
    assert_int_equal(cg_cache_ctx_ids("a\x01b", out, sizeof out, &n, err, sizeof err), -1);
    char many[4096] = "";
    for (int i = 0; i <= CG_CACHE_CTX_IDS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i ? "," : "", i);
    char big[8192];
    assert_int_equal(cg_cache_ctx_ids(many, big, sizeof big, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most"));
    char longid[CG_CACHE_CTX_ID_LEN + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(cg_cache_ctx_ids(longid, big, sizeof big, &n, err, sizeof err), -1);
    /* output too small */
    assert_int_equal(cg_cache_ctx_ids("abc,def", out, 5, &n, err, sizeof err), -1);
}

static void test_scope_injective(void **state) {
    (void)state;
    char a[256], b[256];
    cg_cache_scope_part seg = {"segment", "b"};
    assert_int_equal(cg_cache_key_scope("a", NULL, &seg, 1, a, sizeof a), 0);
    assert_int_equal(cg_cache_key_scope("a;segment=1:b", NULL, NULL, 0, b, sizeof b), 0);
    assert_string_not_equal(a, b);
    /* a tenant named like a group is not that group */
    assert_int_equal(cg_cache_key_scope("docs", NULL, NULL, 0, a, sizeof a), 0);
    assert_int_equal(cg_cache_key_scope("x", "docs", NULL, 0, b, sizeof b), 0);
    assert_string_not_equal(a, b);
    /* two tenants in one group share the scope */
    assert_int_equal(cg_cache_key_scope("t1", "docs", NULL, 0, a, sizeof a), 0);
    assert_int_equal(cg_cache_key_scope("t3", "docs", NULL, 0, b, sizeof b), 0);
    assert_string_equal(a, b);
    assert_int_equal(cg_cache_key_scope("t1", NULL, NULL, 0, a, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_fields_change_key),
        cmocka_unit_test(test_system_prompt_changes_key),
        cmocka_unit_test(test_anthropic_fields_change_key),
        cmocka_unit_test(test_ignored_fields_do_not_change_key),
        cmocka_unit_test(test_order_and_whitespace_do_not_change_key),
        cmocka_unit_test(test_non_body_parts_change_key),
        cmocka_unit_test(test_material_pinned),
        cmocka_unit_test(test_value_encoding),
        cmocka_unit_test(test_large_body_same_as_material),
        cmocka_unit_test(test_ctx_ids),
        cmocka_unit_test(test_scope_injective),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
