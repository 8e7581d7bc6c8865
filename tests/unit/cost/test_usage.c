/* test_usage: unit tests of src/cost/usage.c.
 *
 * Owns: the normalisation rules of usage.h for OpenAI chat (Chat Completions
 * and Responses names), OpenAI embeddings, Anthropic messages and Anthropic
 * stream deltas, and the rejection of unusable usage objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cost/usage.h"

static json_t *J(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

typedef int (*usage_fn)(const json_t *, cg_usage *);

static cg_usage parse_ok(usage_fn fn, const char *text) {
    json_t *j = J(text);
    cg_usage u;
    memset(&u, 0x5a, sizeof u);
    if (fn(j, &u) != 0)
        fail_msg("rejected: %s", text);
    json_decref(j);
    return u;
}

static void parse_bad(usage_fn fn, const char *text) {
    json_t *j = J(text);
    cg_usage u;
    memset(&u, 0x5a, sizeof u);
    if (fn(j, &u) != -1)
        fail_msg("accepted: %s", text);
    /* out is zeroed first, so a rejected object leaves nothing behind */
    assert_int_equal(u.input + u.cached_read + u.output + u.embedding, 0);
    assert_int_equal(u.have, 0);
    json_decref(j);
}

static void test_openai_chat(void **state) {
    (void)state;
    /* prompt_tokens INCLUDES cached: 2006 - 1920 = 86 uncached. */
    cg_usage u = parse_ok(cg_usage_from_openai,
                          "{\"prompt_tokens\":2006,\"completion_tokens\":300,\"total_tokens\":2306,"
                          "\"prompt_tokens_details\":{\"cached_tokens\":1920,\"audio_tokens\":0},"
                          "\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
    assert_int_equal(u.input, 86);
    assert_int_equal(u.cached_read, 1920);
    assert_int_equal(u.cache_write_5m, 0);
    assert_int_equal(u.cache_write_1h, 0);
    assert_int_equal(u.output, 300);
    assert_int_equal(u.reasoning, 0);
    assert_int_equal(u.embedding, 0);
    assert_int_equal(u.web_searches, 0);
    assert_int_equal(u.have, CG_USAGE_HAVE_INPUT | CG_USAGE_HAVE_OUTPUT);
    assert_int_equal(cg_usage_input_total(&u), 2006);

    /* completion_tokens INCLUDES reasoning: output stays 5000. */
    u = parse_ok(cg_usage_from_openai,
                 "{\"prompt_tokens\":1000,\"completion_tokens\":5000,"
                 "\"completion_tokens_details\":{\"reasoning_tokens\":4000}}");
    assert_int_equal(u.input, 1000);
    assert_int_equal(u.output, 5000);
    assert_int_equal(u.reasoning, 4000);

    /* details may be null or missing; missing optional fields are 0 */
    u = parse_ok(cg_usage_from_openai, "{\"prompt_tokens\":10,\"completion_tokens\":2,"
                                       "\"prompt_tokens_details\":null,"
                                       "\"completion_tokens_details\":null}");
    assert_int_equal(u.input, 10);
    assert_int_equal(u.cached_read, 0);
    assert_int_equal(u.output, 2);
    u = parse_ok(cg_usage_from_openai, "{\"prompt_tokens\":10}");
    assert_int_equal(u.input, 10);
    assert_int_equal(u.have, CG_USAGE_HAVE_INPUT);
    u = parse_ok(cg_usage_from_openai, "{}");
    assert_int_equal(u.have, 0);
    /* cached == prompt is fine */
    u = parse_ok(cg_usage_from_openai, "{\"prompt_tokens\":1024,\"completion_tokens\":0,"
                                       "\"prompt_tokens_details\":{\"cached_tokens\":1024}}");
    assert_int_equal(u.input, 0);
    assert_int_equal(u.cached_read, 1024);
}

static void test_openai_responses_names(void **state) {
    (void)state;
    cg_usage u =
        parse_ok(cg_usage_from_openai,
                 "{\"input_tokens\":5000,\"input_tokens_details\":{\"cached_tokens\":4096},"
                 "\"output_tokens\":800,\"output_tokens_details\":{\"reasoning_tokens\":"
                 "512},\"total_tokens\":5800}");
    assert_int_equal(u.input, 904);
    assert_int_equal(u.cached_read, 4096);
    assert_int_equal(u.output, 800);
    assert_int_equal(u.reasoning, 512);
    assert_int_equal(u.have, CG_USAGE_HAVE_INPUT | CG_USAGE_HAVE_OUTPUT);
}

static void test_openai_rejects(void **state) {
    (void)state;
    parse_bad(cg_usage_from_openai, "[]");
    parse_bad(cg_usage_from_openai, "null");
    parse_bad(cg_usage_from_openai, "42");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":-1}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":1.5}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":10.0}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":\"10\"}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":true}");
    parse_bad(cg_usage_from_openai, "{\"completion_tokens\":-5}");
    parse_bad(cg_usage_from_openai, "{\"total_tokens\":-5}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":100000000000000}"); /* > 10^12 */
    /* cached > prompt; reasoning > completion */
    parse_bad(cg_usage_from_openai,
              "{\"prompt_tokens\":100,\"prompt_tokens_details\":{\"cached_tokens\":101}}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens_details\":{\"cached_tokens\":1}}");
    parse_bad(cg_usage_from_openai,
              "{\"completion_tokens\":10,\"completion_tokens_details\":{\"reasoning_tokens\":11}}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":10,\"prompt_tokens_details\":5}");
    parse_bad(cg_usage_from_openai, "{\"prompt_tokens\":10,\"prompt_tokens_details\":[]}");
    parse_bad(cg_usage_from_openai,
              "{\"prompt_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":-1}}");
    parse_bad(cg_usage_from_openai,
              "{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":11}}");
    parse_bad(cg_usage_from_openai, "{\"input_tokens\":-1}");
    cg_usage u;
    assert_int_equal(cg_usage_from_openai(NULL, &u), -1);
}

static void test_openai_embedding(void **state) {
    (void)state;
    cg_usage u = parse_ok(cg_usage_from_openai_embedding, "{\"prompt_tokens\":8,"
                                                          "\"total_tokens\":8}");
    assert_int_equal(u.embedding, 8);
    assert_int_equal(u.input, 0);
    assert_int_equal(u.have, CG_USAGE_HAVE_EMBED);
    u = parse_ok(cg_usage_from_openai_embedding, "{\"total_tokens\":12}");
    assert_int_equal(u.embedding, 12);
    u = parse_ok(cg_usage_from_openai_embedding, "{}");
    assert_int_equal(u.have, 0);
    parse_bad(cg_usage_from_openai_embedding, "{\"prompt_tokens\":-8}");
    parse_bad(cg_usage_from_openai_embedding, "{\"prompt_tokens\":8,\"total_tokens\":\"x\"}");
    parse_bad(cg_usage_from_openai_embedding, "\"usage\"");
}

static void test_anthropic(void **state) {
    (void)state;
    /* input_tokens EXCLUDES cache reads and writes; the 5m/1h breakdown is
     * authoritative and the total is not added on top. */
    cg_usage u = parse_ok(cg_usage_from_anthropic,
                          "{\"input_tokens\":50,\"cache_read_input_tokens\":100000,"
                          "\"cache_creation_input_tokens\":2048,\"cache_creation\":"
                          "{\"ephemeral_5m_input_tokens\":1024,\"ephemeral_1h_input_tokens\":1024},"
                          "\"output_tokens\":500,\"service_tier\":\"standard\"}");
    assert_int_equal(u.input, 50);
    assert_int_equal(u.cached_read, 100000);
    assert_int_equal(u.cache_write_5m, 1024);
    assert_int_equal(u.cache_write_1h, 1024);
    assert_int_equal(u.output, 500);
    assert_int_equal(u.have, CG_USAGE_HAVE_INPUT | CG_USAGE_HAVE_OUTPUT);
    assert_int_equal(cg_usage_input_total(&u), 50 + 100000 + 2048);

    /* No breakdown: all writes are 5 min. */
    u = parse_ok(cg_usage_from_anthropic,
                 "{\"input_tokens\":3,\"cache_creation_input_tokens\":2048,\"output_tokens\":1}");
    assert_int_equal(u.cache_write_5m, 2048);
    assert_int_equal(u.cache_write_1h, 0);
    /* Breakdown present but null / empty object: the total is 5 min. */
    u = parse_ok(cg_usage_from_anthropic,
                 "{\"input_tokens\":3,\"cache_creation_input_tokens\":7,\"cache_creation\":null}");
    assert_int_equal(u.cache_write_5m, 7);
    u = parse_ok(cg_usage_from_anthropic,
                 "{\"input_tokens\":3,\"cache_creation_input_tokens\":7,\"cache_creation\":{}}");
    assert_int_equal(u.cache_write_5m, 7);
    /* Breakdown disagreeing with the total: trust the breakdown. */
    u = parse_ok(cg_usage_from_anthropic, "{\"input_tokens\":3,\"cache_creation_input_tokens\":100,"
                                          "\"cache_creation\":{\"ephemeral_5m_input_tokens\":10,"
                                          "\"ephemeral_1h_input_tokens\":20}}");
    assert_int_equal(u.cache_write_5m, 10);
    assert_int_equal(u.cache_write_1h, 20);
    /* Null fields are 0; web searches are read. */
    u = parse_ok(cg_usage_from_anthropic,
                 "{\"input_tokens\":12,\"cache_read_input_tokens\":null,"
                 "\"cache_creation_input_tokens\":null,\"output_tokens\":34,"
                 "\"server_tool_use\":{\"web_search_requests\":3}}");
    assert_int_equal(u.input, 12);
    assert_int_equal(u.cached_read, 0);
    assert_int_equal(u.cache_write_5m, 0);
    assert_int_equal(u.output, 34);
    assert_int_equal(u.web_searches, 3);
    u = parse_ok(cg_usage_from_anthropic, "{\"output_tokens\":1,\"server_tool_use\":null}");
    assert_int_equal(u.have, CG_USAGE_HAVE_OUTPUT);
    assert_int_equal(u.web_searches, 0);
}

static void test_anthropic_rejects(void **state) {
    (void)state;
    parse_bad(cg_usage_from_anthropic, "[]");
    parse_bad(cg_usage_from_anthropic, "\"x\"");
    parse_bad(cg_usage_from_anthropic, "{\"input_tokens\":-1}");
    parse_bad(cg_usage_from_anthropic, "{\"input_tokens\":2.0}");
    parse_bad(cg_usage_from_anthropic, "{\"output_tokens\":\"3\"}");
    parse_bad(cg_usage_from_anthropic, "{\"cache_read_input_tokens\":-3}");
    parse_bad(cg_usage_from_anthropic, "{\"cache_creation_input_tokens\":1e3}");
    parse_bad(cg_usage_from_anthropic, "{\"cache_creation\":[]}");
    parse_bad(cg_usage_from_anthropic, "{\"cache_creation\":{\"ephemeral_1h_input_tokens\":-1}}");
    parse_bad(cg_usage_from_anthropic, "{\"server_tool_use\":5}");
    parse_bad(cg_usage_from_anthropic, "{\"server_tool_use\":{\"web_search_requests\":-1}}");
}

static void test_anthropic_stream(void **state) {
    (void)state;
    /* message_start, then cumulative message_delta values replace. */
    cg_usage acc =
        parse_ok(cg_usage_from_anthropic, "{\"input_tokens\":25,\"cache_read_input_tokens\":0,"
                                          "\"cache_creation_input_tokens\":0,\"output_tokens\":1}");
    assert_int_equal(acc.output, 1);
    json_t *d = J("{\"output_tokens\":15}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.input, 25);
    assert_int_equal(acc.output, 15); /* replaced, not 1 + 15 */
    assert_int_equal(acc.have, CG_USAGE_HAVE_INPUT | CG_USAGE_HAVE_OUTPUT);

    /* A delta repeating input fields and adding web searches. */
    d = J("{\"input_tokens\":25,\"cache_read_input_tokens\":4096,"
          "\"cache_creation_input_tokens\":0,\"output_tokens\":40,"
          "\"server_tool_use\":{\"web_search_requests\":2}}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.cached_read, 4096);
    assert_int_equal(acc.output, 40);
    assert_int_equal(acc.web_searches, 2);

    /* Null fields in a delta change nothing. */
    d = J("{\"input_tokens\":null,\"cache_read_input_tokens\":null,\"output_tokens\":41}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.input, 25);
    assert_int_equal(acc.cached_read, 4096);
    assert_int_equal(acc.output, 41);

    /* A bad delta is refused and leaves acc untouched. */
    cg_usage before = acc;
    d = J("{\"output_tokens\":50,\"input_tokens\":-1}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), -1);
    json_decref(d);
    d = J("[1]");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), -1);
    json_decref(d);
    assert_memory_equal(&before, &acc, sizeof acc);
    assert_int_equal(cg_usage_anthropic_delta(NULL, NULL), -1);
}

static void test_anthropic_stream_cache_writes(void **state) {
    (void)state;
    cg_usage acc = parse_ok(cg_usage_from_anthropic,
                            "{\"input_tokens\":5,\"cache_creation_input_tokens\":3000,"
                            "\"cache_creation\":{\"ephemeral_5m_input_tokens\":1000,"
                            "\"ephemeral_1h_input_tokens\":2000},\"output_tokens\":1}");
    /* Same total without breakdown: split kept. */
    json_t *d = J("{\"cache_creation_input_tokens\":3000,\"output_tokens\":9}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.cache_write_5m, 1000);
    assert_int_equal(acc.cache_write_1h, 2000);
    /* Breakdown in the delta replaces what it names. */
    d = J("{\"cache_creation\":{\"ephemeral_1h_input_tokens\":2500}}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.cache_write_5m, 1000);
    assert_int_equal(acc.cache_write_1h, 2500);
    /* New total without breakdown: 1 h kept, the rest is 5 min. */
    d = J("{\"cache_creation_input_tokens\":4000}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.cache_write_5m, 1500);
    assert_int_equal(acc.cache_write_1h, 2500);
    /* A total below the known 1 h part: all 5 min. */
    d = J("{\"cache_creation_input_tokens\":100}");
    assert_int_equal(cg_usage_anthropic_delta(&acc, d), 0);
    json_decref(d);
    assert_int_equal(acc.cache_write_5m, 100);
    assert_int_equal(acc.cache_write_1h, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_chat),
        cmocka_unit_test(test_openai_responses_names),
        cmocka_unit_test(test_openai_rejects),
        cmocka_unit_test(test_openai_embedding),
        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_anthropic_rejects),
        cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_anthropic_stream_cache_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
