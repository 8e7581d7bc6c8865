/* test_estimate: chat overhead, image rules and the pre-call estimate API.
 *
 * Owns: golden prompt_tokens of OpenAI's token-counting cookbook examples
 * (the API-reported counts: 129 / 124 for the six-message example on
 * cl100k / o200k models, 105 / 101 with the weather tool), the documented
 * image examples (765 and 1105 tokens for 1024x1024 and 2048x4096 on
 * GPT-4o, 1452 patches for 1800x2400), image header sniffing, and the
 * estimate's nano-USD arithmetic for chat, embeddings, responses and
 * Anthropic bodies, output bounds (max_completion_tokens, max_tokens, n,
 * model maximum), batch rates and errors.
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

#include "tokenize/chat.h"
#include "tokenize/claude.h"
#include "tokenize/estimate.h"

static cg_price_table *prices;

static int setup(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/node_modules/gpt-tokenizer/data", src ? src : ".");
    cg_tok_set_data_dir(dir);
    prices = cg_prices_builtin();
    return prices ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cg_prices_free(prices);
    return 0;
}

static const char *COOKBOOK_MESSAGES =
    "[{\"role\":\"system\",\"content\":\"You are a helpful, pattern-following assistant that "
    "translates corporate jargon into plain English.\"},"
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"New synergies will help drive "
    "top-line growth.\"},"
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":\"Things working well "
    "together will increase revenue.\"},"
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"Let's circle back when we have "
    "more bandwidth to touch base on opportunities for increased leverage.\"},"
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":\"Let's talk later when "
    "we're less busy about how to do better.\"},"
    "{\"role\":\"user\",\"content\":\"This late pivot means we don't have time to boil the ocean "
    "for the client deliverable.\"}]";

static const char *WEATHER_TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\",\"description\":"
    "\"Get the current weather in a given location\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"location\":{\"type\":\"string\",\"description\":\"The city and state, "
    "e.g. San Francisco, CA\"},\"unit\":{\"type\":\"string\",\"description\":\"The unit of "
    "temperature to return\",\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":"
    "[\"location\"]}}}]";

static const char *WEATHER_MESSAGES =
    "[{\"role\":\"system\",\"content\":\"You are a helpful assistant that can answer to questions "
    "about the weather.\"},{\"role\":\"user\",\"content\":\"What's the weather like in San "
    "Francisco?\"}]";

static int64_t chat_tokens(const char *model, const char *messages, const char *tools) {
    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(model));
    json_object_set_new(body, "messages", json_loads(messages, 0, NULL));
    if (tools)
        json_object_set_new(body, "tools", json_loads(tools, 0, NULL));
    cg_estimate e;
    char err[256];
    const cg_price *p = cg_prices_find(prices, model);
    if (cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, p, 0, &e, err, sizeof err) != 0)
        fail_msg("%s", err);
    json_decref(body);
    return e.input_tokens;
}

static void test_cookbook_counts(void **state) {
    (void)state;
    assert_int_equal(chat_tokens("gpt-3.5-turbo", COOKBOOK_MESSAGES, NULL), 129);
    assert_int_equal(chat_tokens("gpt-4-0613", COOKBOOK_MESSAGES, NULL), 129);
    assert_int_equal(chat_tokens("gpt-4", COOKBOOK_MESSAGES, NULL), 129);
    assert_int_equal(chat_tokens("gpt-4o", COOKBOOK_MESSAGES, NULL), 124);
    assert_int_equal(chat_tokens("gpt-4o-mini", COOKBOOK_MESSAGES, NULL), 124);
    assert_int_equal(chat_tokens("gpt-3.5-turbo", WEATHER_MESSAGES, WEATHER_TOOLS), 105);
    assert_int_equal(chat_tokens("gpt-4", WEATHER_MESSAGES, WEATHER_TOOLS), 105);
    assert_int_equal(chat_tokens("gpt-4o", WEATHER_MESSAGES, WEATHER_TOOLS), 101);
    assert_int_equal(chat_tokens("gpt-4o-mini", WEATHER_MESSAGES, WEATHER_TOOLS), 101);
}

static void test_image_rules(void **state) {
    (void)state;
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 1024, 1024, "high"), 765);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 2048, 4096, NULL), 1105);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 4096, 8192, "auto"), 1105);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 500, 500, "high"), 255);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 513, 500, "high"), 425);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 4000, 3000, "low"), 85);
    assert_int_equal(cg_openai_image_tokens("gpt-4o", 0, 0, "high"), 85 + 8 * 170);
    assert_int_equal(cg_openai_image_tokens("gpt-4o-mini", 1024, 1024, "high"), 2833 + 4 * 5667);
    assert_int_equal(cg_openai_image_tokens("o1", 1024, 1024, "high"), 75 + 4 * 150);
    assert_int_equal(cg_openai_image_tokens("gpt-5", 1024, 1024, "high"), 70 + 4 * 140);
    /* patches: 1024x1024 = 1024 patches; 1800x2400 -> 1452 patches */
    assert_int_equal(cg_openai_image_tokens("gpt-4.1-mini", 1024, 1024, "high"), 1659);
    assert_int_equal(cg_openai_image_tokens("gpt-4.1-mini", 1800, 2400, "high"), 2353);
    assert_int_equal(cg_openai_image_tokens("gpt-4.1-nano", 0, 0, NULL), 3779);
    assert_int_equal(cg_openai_image_tokens("o4-mini", 32, 32, NULL), 2);
    assert_int_equal(cg_claude_image_tokens(1000, 1000), 1334);
    assert_int_equal(cg_claude_image_tokens(4000, 4000), 1600);
    assert_int_equal(cg_claude_image_tokens(0, 0), 1600);
}

static void test_image_sniffing(void **state) {
    (void)state;
    /* PNG signature + IHDR of 1024 x 768 */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                  'I',  'H', 'D', 'R', 0,    0,    4,    0,    0, 0, 3, 0};
    int64_t w, h;
    assert_int_equal(cg_image_size(png, sizeof png, &w, &h), 0);
    assert_int_equal(w, 1024);
    assert_int_equal(h, 768);
    /* the same as a data URL */
    const char *url = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAABAAAAAMA";
    assert_int_equal(cg_image_size_base64(url, strlen(url), &w, &h), 0);
    assert_int_equal(w, 1024);
    assert_int_equal(h, 768);
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x20, 0x03, 0x58, 0x02};
    assert_int_equal(cg_image_size(gif, sizeof gif, &w, &h), 0);
    assert_int_equal(w, 800);
    assert_int_equal(h, 600);
    /* JPEG: SOI, APP0 (len 4), SOF0 with 600 x 800 */
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0,    4,    0, 0, 0xFF, 0xC0, 0,
                                  17,   8,    0x02, 0x58, 0x03, 0x20, 3, 0, 0,    0,    0};
    assert_int_equal(cg_image_size(jpg, sizeof jpg, &w, &h), 0);
    assert_int_equal(w, 800);
    assert_int_equal(h, 600);
    assert_int_equal(cg_image_size((const uint8_t *)"nope", 4, &w, &h), -1);

    json_t *body = json_pack("{s:s,s:[{s:s,s:[{s:s,s:s},{s:s,s:{s:s,s:s}}]}]}", "model", "gpt-4o",
                             "messages", "role", "user", "content", "type", "text", "text", "hi",
                             "type", "image_url", "image_url", "url", url, "detail", "high");
    cg_chat_count c;
    char err[128];
    assert_int_equal(
        cg_chat_count_openai(cg_tok_get(CG_ENC_O200K, NULL, 0), NULL, body, &c, err, sizeof err),
        0);
    assert_int_equal(c.images, 1);
    assert_int_equal(c.images_unknown, 0);
    assert_int_equal(c.image_tokens, 765); /* 1024x768 -> 1024x768 -> 2x2 tiles */
    assert_int_equal(c.tokens, 3 + 1 + 1 + 3 + 765);
    json_decref(body);
}

static void test_estimate_chat(void **state) {
    (void)state;
    const cg_price *p = cg_prices_find(prices, "gpt-4o");
    json_t *body = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", "gpt-4o", "messages", "role",
                             "user", "content", "hello world", "max_tokens", 100);
    cg_estimate e;
    char err[256];
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, p, 0, &e, err, sizeof err), 0);
    /* 3 per message + "user" 1 + "hello world" 2 + 3 priming = 9 */
    assert_int_equal(e.input_tokens, 9);
    assert_int_equal(e.input_tokens_upper, 9);
    assert_int_equal(e.output_tokens_max, 100);
    assert_int_equal(e.cost_low, 22500);            /* 9 x $2.50/1M = 22,500 nano */
    assert_int_equal(e.cost_high, 22500 + 1000000); /* + 100 x $10/1M */
    assert_true(e.flags & CG_EST_EXACT);
    assert_int_equal(e.encoding, CG_ENC_O200K);
    /* max_completion_tokens wins; n = 3 triples it */
    json_object_set_new(body, "max_completion_tokens", json_integer(50));
    json_object_set_new(body, "n", json_integer(3));
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, p, 0, &e, err, sizeof err), 0);
    assert_int_equal(e.output_tokens_max, 150);
    /* no bound: the model's maximum output (16384 for gpt-4o); batch halves */
    json_object_del(body, "max_completion_tokens");
    json_object_del(body, "max_tokens");
    json_object_del(body, "n");
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, p, 1, &e, err, sizeof err), 0);
    assert_int_equal(e.output_tokens_max, 16384);
    assert_int_equal(e.cost_low, 11250);
    assert_int_equal(e.cost_high, 11250 + 16384 * 5000);
    assert_true(e.flags & CG_EST_BATCH);
    /* unpriced */
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, NULL, 0, &e, err, sizeof err), 0);
    assert_true(e.flags & CG_EST_UNPRICED);
    assert_true(e.flags & CG_EST_OUTPUT_UNBOUNDED);
    assert_int_equal(e.cost_high, 0);
    /* errors */
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, "davinci", body, p, 0, &e, err, sizeof err),
        -1);
    json_object_del(body, "messages");
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_CHAT, NULL, body, p, 0, &e, err, sizeof err), -1);
    json_decref(body);
}

static void test_estimate_embeddings_responses(void **state) {
    (void)state;
    const cg_price *p = cg_prices_find(prices, "text-embedding-3-small");
    json_t *body = json_pack("{s:s,s:[s,s]}", "model", "text-embedding-3-small", "input",
                             "hello world", "hello");
    cg_estimate e;
    char err[256];
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_EMBEDDINGS, NULL, body, p, 0, &e, err, sizeof err),
        0);
    assert_int_equal(e.input_tokens, 3);
    assert_int_equal(e.output_tokens_max, 0);
    assert_int_equal(e.cost_high, 60); /* 3 x $0.02/1M */
    json_object_set_new(body, "input", json_pack("[i,i,i,i]", 1, 2, 3, 4));
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_OPENAI_EMBEDDINGS, NULL, body, p, 0, &e, err, sizeof err),
        0);
    assert_int_equal(e.input_tokens, 4);
    json_decref(body);

    body = json_pack("{s:s,s:s,s:s,s:i}", "model", "gpt-4.1", "instructions", "Be brief.", "input",
                     "hello world", "max_output_tokens", 10);
    assert_int_equal(cg_estimate_request(cg_tok_api_from_path("/v1/responses"), NULL, body,
                                         cg_prices_find(prices, "gpt-4.1"), 0, &e, err, sizeof err),
                     0);
    /* system (3 + 1 + 3 "Be brief.") + user (3 + 1 + 2) + 3 */
    assert_int_equal(e.input_tokens, 16);
    assert_int_equal(e.output_tokens_max, 10);
    assert_true(e.flags & CG_EST_APPROX);
    json_decref(body);
    assert_int_equal(cg_tok_api_from_path("/v1/chat/completions"), CG_TOK_API_OPENAI_CHAT);
    assert_int_equal(cg_tok_api_from_path("/v1/messages"), CG_TOK_API_ANTHROPIC_MESSAGES);
    assert_int_equal(cg_tok_api_from_path("/v1/embeddings"), CG_TOK_API_OPENAI_EMBEDDINGS);
    assert_int_equal(cg_tok_api_from_path("/v1/models"), CG_TOK_API_UNKNOWN);
}

static void test_estimate_anthropic(void **state) {
    (void)state;
    const cg_price *p = cg_prices_find(prices, "claude-sonnet-4-5");
    const cg_tokenizer *cl = cg_tok_get(CG_ENC_CL100K, NULL, 0);
    json_t *body = json_pack("{s:s,s:s,s:i,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "model",
                             "claude-sonnet-4-5", "system", "You are terse.", "max_tokens", 1000,
                             "messages", "role", "user", "content", "hello world", "role",
                             "assistant", "content", "hi", "role", "user", "content", "bye");
    cg_estimate e;
    char err[256];
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_ANTHROPIC_MESSAGES, NULL, body, p, 0, &e, err, sizeof err),
        0);
    int64_t text = cg_tok_count(cl, "You are terse.", 14, 0) + 2 + 1 + 1;
    int64_t fixed = CG_CLAUDE_BASE_TOKENS + 2 * CG_CLAUDE_PER_MESSAGE;
    assert_int_equal(e.input_tokens, fixed + cg_claude_scale(text, CG_CLAUDE_RATIO_P50_PPM));
    assert_int_equal(e.input_tokens_upper, fixed + cg_claude_scale(text, CG_CLAUDE_RATIO_P95_PPM));
    assert_true(e.input_tokens_upper >= e.input_tokens);
    assert_int_equal(e.output_tokens_max, 1000);
    /* $3 in, $15 out per 1M */
    assert_int_equal(e.cost_low, e.input_tokens * 3000);
    assert_int_equal(e.cost_high, e.input_tokens_upper * 3000 + 1000 * 15000);
    assert_true(e.flags & CG_EST_CLAUDE);
    /* tools add their text and the tool-use system prompt (346 for auto) */
    json_object_set_new(body, "tools",
                        json_pack("[{s:s,s:s,s:{s:s}}]", "name", "get_weather", "description",
                                  "Weather", "input_schema", "type", "object"));
    cg_estimate e2;
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_ANTHROPIC_MESSAGES, NULL, body, p, 0, &e2, err, sizeof err),
        0);
    assert_true(e2.input_tokens >= e.input_tokens + 346);
    json_object_set_new(body, "tool_choice", json_pack("{s:s}", "type", "any"));
    cg_estimate e3;
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_ANTHROPIC_MESSAGES, NULL, body, p, 0, &e3, err, sizeof err),
        0);
    assert_int_equal(e2.input_tokens - e3.input_tokens, 346 - 313);
    /* image of unknown size: 1600 */
    json_t *msgs = json_object_get(body, "messages");
    json_array_append_new(msgs, json_pack("{s:s,s:[{s:s,s:{s:s,s:s}}]}", "role", "user", "content",
                                          "type", "image", "source", "type", "url", "url",
                                          "https://example.com/x.png"));
    cg_estimate e4;
    assert_int_equal(
        cg_estimate_request(CG_TOK_API_ANTHROPIC_MESSAGES, NULL, body, p, 0, &e4, err, sizeof err),
        0);
    assert_int_equal(e4.input_tokens - e3.input_tokens, 1600 + CG_CLAUDE_PER_MESSAGE);
    assert_true(e4.flags & CG_EST_IMAGES_UNKNOWN);
    json_decref(body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookbook_counts),
        cmocka_unit_test(test_image_rules),
        cmocka_unit_test(test_image_sniffing),
        cmocka_unit_test(test_estimate_chat),
        cmocka_unit_test(test_estimate_embeddings_responses),
        cmocka_unit_test(test_estimate_anthropic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
