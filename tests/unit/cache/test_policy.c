/* test_policy: unit tests of the cache config section (config_cache.c) and
 * src/cache/policy.c.
 *
 * Owns: the `cache` section into the struct (defaults from the seeds'
 * cache_ttl.yaml, overrides, partitions, share groups, guard, coalescing)
 * and its errors naming file, line and field; the TTL resolution order (the
 * tenant's intent, the global intent, the tenant's default, the global
 * default; a disabled tenant never caches); cache-control parsing; the
 * temperature ceiling (absent = 1.0); and the write guard: only a normal
 * finish without refusal, tool call (unless allowed), deny-pattern match or
 * oversize answer passes, for both APIs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/gate.h"
#include "cache/policy.h"
#include "config/config.h"

static const char *BASE = "providers:\n"
                          "  - {name: openai, api: openai}\n"
                          "keys:\n"
                          "  - {name: k, sha256: "
                          "\"0000000000000000000000000000000000000000000000000000000000000001\", "
                          "tenant: t}\n";

static int load(const char *section, cg_config **c, char *err, size_t errlen) {
    char yaml[8192];
    snprintf(yaml, sizeof yaml, "%s%s", BASE, section);
    return cg_config_load_string("c.yaml", yaml, strlen(yaml), c, err, errlen);
}

static cg_config *must_load(const char *section) {
    cg_config *c = NULL;
    char err[512] = "";
    if (load(section, &c, err, sizeof err) != 0)
        fail_msg("config did not load: %s", err);
    return c;
}

static void expect_error(const char *section, const char *want) {
    cg_config *c = NULL;
    char err[512] = "";
    assert_int_equal(load(section, &c, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(c);
}

static void test_absent_section_is_off(void **state) {
    (void)state;
    cg_config *c = must_load("");
    assert_false(c->cache.enabled);
    cg_config_free(c);
}

static void test_defaults_are_the_seeds(void **state) {
    (void)state;
    cg_config *c = must_load("cache: {}\n");
    const cg_cache_cfg *k = &c->cache;
    assert_true(k->enabled);
    assert_int_equal(k->max_bytes, 64 << 20);
    assert_int_equal(k->ttl_default, 3600);
    assert_int_equal(cg_cache_ttl(k, "t", ""), 3600);
    assert_int_equal(cg_cache_ttl(k, "t", "knowledge_lookup"), 86400);
    assert_int_equal(cg_cache_ttl(k, "t", "troubleshoot"), 1800);
    assert_int_equal(cg_cache_ttl(k, "t", "decision_support"), 3600);
    assert_int_equal(cg_cache_ttl(k, "t", "small_talk"), 0);
    assert_int_equal(cg_cache_ttl(k, "t", "unknown_intent"), 3600);
    assert_true(k->coalesce);
    assert_int_equal(k->coalesce_wait_ms, 30000);
    assert_int_equal(k->guard_max_bytes, 1 << 20);
    assert_false(k->store_tool_calls);
    assert_int_equal(k->partition_by, 0);
    cg_config_free(c);
}

static void test_full_section_and_ttl_order(void **state) {
    (void)state;
    cg_config *c =
        must_load("cache:\n"
                  "  max_bytes: 2MiB\n"
                  "  max_temperature: 0.5\n"
                  "  ttl:\n"
                  "    default: 100\n"
                  "    by_intent: {faq: 1000, chat: 0}\n"
                  "  partition_by: [tenant, segment, feature]\n"
                  "  tenants:\n"
                  "    acme: {share_group: docs, ttl: {default: 10, by_intent: {faq: 20}}}\n"
                  "    beta: {share_group: docs, ttl: {default: 30}}\n"
                  "    off: {enabled: false}\n"
                  "  store_tool_calls: true\n"
                  "  guard: {max_bytes: 64KiB, deny: [\"as an ai\", \"^sorry\"]}\n"
                  "  coalesce: {enabled: false, wait_ms: 500}\n");
    const cg_cache_cfg *k = &c->cache;
    assert_int_equal(k->max_bytes, 2 << 20);
    assert_true(k->max_temperature == 0.5);
    assert_int_equal(k->partition_by, CG_CACHE_PART_SEGMENT | CG_CACHE_PART_FEATURE);
    assert_int_equal(k->n_tenants, 3);
    assert_string_equal(cg_cache_tenant(k, "acme")->share_group, "docs");
    assert_null(cg_cache_tenant(k, "nobody"));
    /* tenant intent > global intent > tenant default > global default */
    assert_int_equal(cg_cache_ttl(k, "acme", "faq"), 20);
    assert_int_equal(cg_cache_ttl(k, "beta", "faq"), 1000);
    assert_int_equal(cg_cache_ttl(k, "beta", "chat"), 0);
    assert_int_equal(cg_cache_ttl(k, "acme", "other"), 10);
    assert_int_equal(cg_cache_ttl(k, "beta", ""), 30);
    assert_int_equal(cg_cache_ttl(k, "gamma", "other"), 100);
    assert_int_equal(cg_cache_ttl(k, "off", "faq"), 0);
    /* by_intent given: the seeds' defaults are replaced, not merged */
    assert_int_equal(cg_cache_ttl(k, "gamma", "knowledge_lookup"), 100);
    assert_true(k->store_tool_calls);
    assert_int_equal(k->guard_max_bytes, 64 << 10);
    assert_int_equal(k->n_deny, 2);
    assert_false(k->coalesce);
    assert_int_equal(k->coalesce_wait_ms, 500);
    cg_config_free(c);
}

static void test_errors_name_line_and_field(void **state) {
    (void)state;
    expect_error("cache:\n  max_bytess: 1\n", "c.yaml:6: cache.max_bytess");
    expect_error("cache:\n  ttl: {default: -1}\n", "c.yaml:6: cache.ttl.default");
    expect_error("cache:\n  ttl:\n    by_intent: {faq: lots}\n",
                 "c.yaml:7: cache.ttl.by_intent.faq");
    expect_error("cache:\n  max_temperature: 3\n", "cache.max_temperature: must be a number");
    expect_error("cache:\n  partition_by: [persona]\n", "cache.partition_by[0]");
    expect_error("cache:\n  guard: {deny: [\"(unclosed\"]}\n",
                 "cache.guard.deny[0]: not a valid POSIX extended regular expression");
    expect_error("cache:\n  tenants: {acme: {share_group: \"\"}}\n",
                 "cache.tenants.acme.share_group: must not be empty");
    expect_error("cache:\n  coalesce: {wait_ms: 0}\n", "cache.coalesce.wait_ms");
    expect_error("cache:\n  max_bytes: 1MiB\n  guard: {max_bytes: 2MiB}\n",
                 "cache.guard.max_bytes: must not exceed cache.max_bytes");
}

static void test_semantic_section(void **state) {
    (void)state;
    /* off unless enabled; defaults */
    cg_config *c = must_load("cache: {}\n");
    const cg_semantic_cfg *s = &c->cache.semantic;
    assert_false(s->enabled);
    assert_true(s->threshold == 0.98);
    assert_int_equal(s->gate_rules, CG_GATE_DEFAULT_RULES);
    assert_int_equal(s->kind, CG_SEM_EMBED_BUILTIN);
    assert_string_equal(s->model_file, "var/models/use-lite.bin");
    assert_string_equal(s->index_dir, "var/semantic");
    assert_int_equal(s->capacity, 100000);
    assert_int_equal(s->max_partitions, 4096);
    assert_false(s->same_context);
    assert_int_equal(s->pool_threads, 2);
    assert_int_equal(s->queue_max, 1024);
    cg_config_free(c);
    c = must_load("cache:\n"
                  "  semantic:\n"
                  "    enabled: true\n"
                  "    threshold: 0.95\n"
                  "    gate_rules: [numbers, negation]\n"
                  "    embedder: {url: \"http://127.0.0.1:9/v1/embeddings\", model: "
                  "text-embedding-3-small, api_key_env: EMB_KEY, dimensions: 256, timeout_ms: "
                  "500}\n"
                  "    capacity_per_partition: 10\n"
                  "    max_partitions: 3\n"
                  "    index_dir: /tmp/x\n"
                  "    single_turn: same_context\n"
                  "    pool_threads: 4\n"
                  "    queue_max: 8\n");
    s = &c->cache.semantic;
    assert_true(s->enabled);
    assert_true(s->threshold == 0.95);
    assert_int_equal(s->gate_rules, CG_GATE_RULE(CG_GATE_NUMBERS) | CG_GATE_RULE(CG_GATE_NEGATION));
    assert_int_equal(s->kind, CG_SEM_EMBED_HTTP);
    assert_string_equal(s->url, "http://127.0.0.1:9/v1/embeddings");
    assert_string_equal(s->model, "text-embedding-3-small");
    assert_string_equal(s->api_key_env, "EMB_KEY");
    assert_int_equal(s->dimensions, 256);
    assert_int_equal(s->timeout_ms, 500);
    assert_int_equal(s->capacity, 10);
    assert_int_equal(s->max_partitions, 3);
    assert_string_equal(s->index_dir, "/tmp/x");
    assert_true(s->same_context);
    assert_int_equal(s->pool_threads, 4);
    assert_int_equal(s->queue_max, 8);
    cg_config_free(c);
    c = must_load("cache:\n  semantic: {enabled: true, embedder: builtin, gate_rules: none}\n");
    assert_int_equal(c->cache.semantic.gate_rules, 0);
    assert_int_equal(c->cache.semantic.kind, CG_SEM_EMBED_BUILTIN);
    cg_config_free(c);
    /* errors name the file, the line and the field */
    expect_error("cache:\n  semantic:\n    threshold: 1.5\n",
                 "c.yaml:7: cache.semantic.threshold: must be a number above 0");
    expect_error("cache:\n  semantic:\n    threshold: 0\n", "cache.semantic.threshold");
    expect_error("cache:\n  semantic:\n    gate_rules: [numbers, vibes]\n",
                 "c.yaml:7: cache.semantic.gate_rules: unknown gate rule");
    expect_error("cache:\n  semantic:\n    embedder: magic\n", "c.yaml:7: cache.semantic.embedder");
    expect_error("cache:\n  semantic:\n    embedder: {model: m}\n",
                 "cache.semantic.embedder.url: is required");
    expect_error("cache:\n  semantic:\n    embedder: {url: \"ftp://x\", model: m}\n",
                 "cache.semantic.embedder.url: must start with http");
    expect_error("cache:\n  semantic:\n    embedder: {url: \"http://u:p@x/v1/embeddings\", "
                 "model: m}\n",
                 "must not contain credentials");
    expect_error("cache:\n  semantic:\n    embedder: {url: \"http://x\"}\n",
                 "cache.semantic.embedder.model: is required");
    expect_error("cache:\n  semantic:\n    embedder: {url: \"http://x\", model: m, "
                 "api_key_env: \"9bad\"}\n",
                 "cache.semantic.embedder.api_key_env");
    expect_error("cache:\n  semantic:\n    single_turn: loose\n", "cache.semantic.single_turn");
    expect_error("cache:\n  semantic:\n    pool_threads: 0\n", "cache.semantic.pool_threads");
    expect_error("cache:\n  semantic:\n    capacity_per_partition: 0\n",
                 "cache.semantic.capacity_per_partition");
    expect_error("cache:\n  semantic:\n    colour: blue\n", "c.yaml:7: cache.semantic.colour");
    expect_error("cache:\n  enabled: false\n  semantic: {enabled: true}\n",
                 "cache.semantic.enabled: the semantic cache serves the exact cache");
}

static void test_cache_control(void **state) {
    (void)state;
    assert_int_equal(cg_cache_control(NULL), 0);
    assert_int_equal(cg_cache_control(""), 0);
    assert_int_equal(cg_cache_control("no-store"), CG_CC_NO_STORE);
    assert_int_equal(cg_cache_control("No-Cache"), CG_CC_NO_CACHE);
    assert_int_equal(cg_cache_control("max-age=0, no-cache"), CG_CC_NO_CACHE);
    assert_int_equal(cg_cache_control("no-cache,no-store"), CG_CC_NO_CACHE | CG_CC_NO_STORE);
    assert_int_equal(cg_cache_control("no-stored, xno-cache"), 0);
    assert_int_equal(cg_cache_control("private=\"no-store\""), 0);
}

static void test_temperature(void **state) {
    (void)state;
    cg_cache_cfg k = {.max_temperature = 0.7};
    json_t *b = json_loads("{\"temperature\":0.7}", 0, NULL);
    assert_true(cg_cache_temperature_ok(&k, b));
    json_object_set_new(b, "temperature", json_real(0.71));
    assert_false(cg_cache_temperature_ok(&k, b));
    json_object_set_new(b, "temperature", json_integer(0));
    assert_true(cg_cache_temperature_ok(&k, b));
    json_object_set_new(b, "temperature", json_string("0"));
    assert_false(cg_cache_temperature_ok(&k, b));
    json_object_del(b, "temperature");
    assert_false(cg_cache_temperature_ok(&k, b)); /* absent = the providers' 1.0 */
    k.max_temperature = 1.0;
    assert_true(cg_cache_temperature_ok(&k, b));
    json_decref(b);
}

static cg_guard_reason check(const cg_cache_guard *g, int anth, const char *body) {
    return cg_cache_guard_check(g, anth, body, strlen(body));
}

#define OAI(msg, fin)                                                                              \
    "{\"choices\":[{\"index\":0,\"message\":" msg ",\"finish_reason\":\"" fin "\"}],"              \
    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"

static void test_guard_openai(void **state) {
    (void)state;
    cg_cache_cfg k = {.guard_max_bytes = 4096};
    char *deny[] = {"as an ai"};
    k.deny = deny;
    k.n_deny = 1;
    cg_cache_guard g;
    char err[128];
    assert_int_equal(cg_cache_guard_init(&g, &k, err, sizeof err), 0);
    const char *ok = OAI("{\"role\":\"assistant\",\"content\":\"fine\",\"refusal\":null}", "stop");
    assert_int_equal(check(&g, 0, ok), CG_GUARD_OK);
    assert_int_equal(check(&g, 0, OAI("{\"role\":\"assistant\",\"content\":\"cut\"}", "length")),
                     CG_GUARD_FINISH);
    assert_int_equal(
        check(&g, 0, OAI("{\"role\":\"assistant\",\"content\":\"x\"}", "content_filter")),
        CG_GUARD_FINISH);
    assert_int_equal(
        check(&g, 0,
              OAI("{\"role\":\"assistant\",\"content\":null,\"refusal\":\"I can't\"}", "stop")),
        CG_GUARD_REFUSAL);
    const char *tool = OAI("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
                           "\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                           "\"arguments\":\"{}\"}}]}",
                           "tool_calls");
    assert_int_equal(check(&g, 0, tool), CG_GUARD_TOOL_CALL);
    assert_int_equal(
        check(&g, 0, OAI("{\"role\":\"assistant\",\"content\":\"Well, As An AI model\"}", "stop")),
        CG_GUARD_DENY);
    assert_int_equal(check(&g, 0, "{\"choices\":[]}"), CG_GUARD_INVALID);
    assert_int_equal(check(&g, 0, "{\"error\":{\"message\":\"x\"}}"), CG_GUARD_INVALID);
    /* two choices: one bad one spoils both */
    assert_int_equal(check(&g, 0,
                           "{\"choices\":[{\"message\":{\"content\":\"a\"},\"finish_reason\":"
                           "\"stop\"},{\"message\":{\"content\":\"b\"},\"finish_reason\":"
                           "\"length\"}]}"),
                     CG_GUARD_FINISH);
    k.store_tool_calls = 1;
    assert_int_equal(check(&g, 0, tool), CG_GUARD_OK);
    k.guard_max_bytes = 10;
    assert_int_equal(check(&g, 0, ok), CG_GUARD_TOO_LARGE);
    cg_cache_guard_free(&g);
    assert_string_equal(cg_guard_reason_name(CG_GUARD_DENY), "deny_pattern");
}

static void test_guard_anthropic(void **state) {
    (void)state;
    cg_cache_cfg k = {.guard_max_bytes = 4096};
    cg_cache_guard g;
    char err[128];
    assert_int_equal(cg_cache_guard_init(&g, &k, err, sizeof err), 0);
#define ANT(content, stop)                                                                         \
    "{\"type\":\"message\",\"content\":" content ",\"stop_reason\":\"" stop "\",\"usage\":{}}"
    const char *text = "[{\"type\":\"text\",\"text\":\"hello\"}]";
    assert_int_equal(check(&g, 1, ANT("[{\"type\":\"text\",\"text\":\"hello\"}]", "end_turn")),
                     CG_GUARD_OK);
    assert_int_equal(check(&g, 1, ANT("[{\"type\":\"text\",\"text\":\"hello\"}]", "stop_sequence")),
                     CG_GUARD_OK);
    assert_int_equal(check(&g, 1, ANT("[{\"type\":\"text\",\"text\":\"hel\"}]", "max_tokens")),
                     CG_GUARD_FINISH);
    assert_int_equal(check(&g, 1, ANT("[]", "refusal")), CG_GUARD_REFUSAL);
    assert_int_equal(check(&g, 1, ANT("[{\"type\":\"text\",\"text\":\"x\"}]", "pause_turn")),
                     CG_GUARD_FINISH);
    const char *tool =
        ANT("[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]", "tool_use");
    assert_int_equal(check(&g, 1, tool), CG_GUARD_TOOL_CALL);
    k.store_tool_calls = 1;
    assert_int_equal(check(&g, 1, tool), CG_GUARD_OK);
    (void)text;
    cg_cache_guard_free(&g);
}

/* The guard reads JSON text itself: it must accept what jansson accepts
 * (spacing, escapes, any value it skips) and refuse what is not JSON. */
static void test_guard_reads_json(void **state) {
    (void)state;
    cg_cache_cfg k = {.guard_max_bytes = 1 << 20};
    char *deny[] = {"forbidden"};
    k.deny = deny;
    k.n_deny = 1;
    cg_cache_guard g;
    char err[128];
    assert_int_equal(cg_cache_guard_init(&g, &k, err, sizeof err), 0);
    const char *pretty = "{\n  \"id\" : \"x\",\n  \"choices\" : [ {\n    \"index\" : 0,"
                         "\n    \"message\" : { \"role\" : \"assistant\", \"content\" : "
                         "\"a \\\"quoted\\\" \\u00e9 \\ud83d\\ude00 answer\", \"annotations\""
                         " : [ ], \"x\" : { \"y\" : [1, -2.5e3, true, false, null, {}] } },\n"
                         "    \"logprobs\" : null, \"finish_reason\" : \"stop\" } ],\n  "
                         "\"usage\" : {\"prompt_tokens\": 1} }\n";
    assert_int_equal(check(&g, 0, pretty), CG_GUARD_OK);
    /* escapes are decoded before the deny patterns run */
    assert_int_equal(check(&g, 0, OAI("{\"content\":\"so \\u0046orbidden\\n\"}", "stop")),
                     CG_GUARD_DENY);
    /* tool arguments are text too */
    k.store_tool_calls = 1;
    assert_int_equal(check(&g, 0,
                           OAI("{\"content\":null,\"tool_calls\":[{\"function\":{\"name\":"
                               "\"f\",\"arguments\":\"{\\\"q\\\":\\\"forbidden\\\"}\"}}]}",
                               "tool_calls")),
                     CG_GUARD_DENY);
    k.store_tool_calls = 0;
    /* an empty tool_calls array is not a call */
    assert_int_equal(check(&g, 0, OAI("{\"content\":\"x\",\"tool_calls\":[ ]}", "stop")),
                     CG_GUARD_OK);
    const char *bad[] = {
        "",
        "{",
        OAI("{\"content\":\"x\"}", "stop") "garbage",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],}",
        "{\"choices\":[{\"message\":{\"content\":\"bad \\q escape\"},\"finish_reason\":"
        "\"stop\"}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],"
        "\"n\":01}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],"
        "\"n\":tru}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", /* no finish_reason */
        "{\"choices\":[{\"finish_reason\":\"stop\"}]}",      /* no message */
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check(&g, 0, bad[i]) != CG_GUARD_INVALID)
            fail_msg("accepted: %s", bad[i]);
    /* what jansson refuses, the guard refuses: bad UTF-8, \\u0000, lone surrogates */
    const char *bad_text[] = {"\xff",    "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                              "\\u0000", "\\ud800",  "\\udc00x",     "\\ud800\\u0041"};
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"choices\":[{\"message\":{\"content\":\"a%sb\"},\"finish_reason\":"
                 "\"stop\"}]}",
                 bad_text[i]);
        if (check(&g, 0, body) != CG_GUARD_INVALID)
            fail_msg("accepted a string with %zu", i);
    }
    assert_int_equal(check(&g, 0,
                           "{\"choices\":[{\"message\":{\"content\":\"\xe2\x82\xac \xf0\x9f\x98"
                           "\x80\"},\"finish_reason\":\"stop\"}],\"usage\":{}}"),
                     CG_GUARD_OK);
    /* an answer without its usage object is not stored: a hit could not price it */
    assert_int_equal(check(&g, 0,
                           "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":"
                           "\"stop\"}],\"usage\":null}"),
                     CG_GUARD_NO_USAGE);
    assert_int_equal(check(&g, 1,
                           "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":"
                           "\"end_turn\"}"),
                     CG_GUARD_NO_USAGE);
    /* a control character inside a string is not JSON */
    assert_int_equal(check(&g, 0, OAI("{\"content\":\"a\tb\"}", "stop")), CG_GUARD_INVALID);
    assert_int_equal(check(&g, 1, "{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}"),
                     CG_GUARD_INVALID); /* no stop_reason */
    assert_int_equal(check(&g, 1,
                           "{\"content\":[{\"type\":\"text\",\"text\":\"\\u0066orbidden\"}],"
                           "\"stop_reason\":\"end_turn\",\"usage\":{}}"),
                     CG_GUARD_DENY);
    cg_cache_guard_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_section_is_off),
        cmocka_unit_test(test_defaults_are_the_seeds),
        cmocka_unit_test(test_full_section_and_ttl_order),
        cmocka_unit_test(test_errors_name_line_and_field),
        cmocka_unit_test(test_semantic_section),
        cmocka_unit_test(test_cache_control),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_guard_openai),
        cmocka_unit_test(test_guard_anthropic),
        cmocka_unit_test(test_guard_reads_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
