/* test_anthropic: unit tests of src/provider/anthropic.c (the Anthropic
 * Messages adapter).
 *
 * Owns: request validation (model, max_tokens, messages, system, stream; each
 * error is a 400 naming the field), the upstream request (headers, body
 * passed through), stream monitoring (message_start gives the initial usage,
 * message_delta the final cumulative one, message_stop is terminal, text /
 * thinking / partial_json deltas count as output characters), prompt-cache
 * fields (read, 5 min / 1 h writes, totals without breakdown), web searches,
 * on_body and Anthropic's error shapes. A cg_req is built by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider.h"

/* How many "Name: value" lines of the upstream header list equal line. */
static int header_lines(const cg_up_headers *h, const char *line) {
    int n = 0;
    size_t ll = strlen(line);
    for (size_t i = 0; i < h->len;) {
        const char *e = memmem(h->data + i, h->len - i, "\r\n", 2);
        size_t len = e ? (size_t)(e - (h->data + i)) : h->len - i;
        n += len == ll && memcmp(h->data + i, line, ll) == 0;
        i += len + 2;
    }
    return n;
}

static const cg_provider_ops *OPS = &cg_provider_anthropic;

static cg_req *req(const char *body) {
    cg_req *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->ep = CG_EP_MESSAGES;
    r->api = CG_API_ANTHROPIC;
    r->ops = OPS;
    cg_buf_init(&r->body_raw, 1u << 20);
    cg_buf_init(&r->up_body, (1u << 20) + 4096);
    cg_buf_init(&r->tail, 1u << 16);
    cg_sse_init(&r->sse, 1u << 20);
    if (body) {
        json_error_t e;
        r->body = json_loads(body, JSON_REJECT_DUPLICATES, &e);
        if (!r->body)
            fail_msg("bad test JSON: %s: %s", body, e.text);
        assert_int_equal(cg_buf_puts(&r->body_raw, body), 0);
    }
    return r;
}

static void req_free(cg_req *r) {
    json_decref(r->body);
    cg_up_headers_free(&r->up_headers);
    cg_buf_free(&r->body_raw);
    cg_buf_free(&r->up_body);
    cg_buf_free(&r->tail);
    cg_sse_free(&r->sse);
    free(r);
}

static cg_req *parse_ok(const char *body) {
    cg_req *r = req(body);
    if (OPS->parse(r) != 0)
        fail_msg("refused (%s): %s", r->err_msg, body);
    assert_int_equal(r->err_status, 0);
    return r;
}

static void parse_bad(const char *body, const char *field, const char *msg_part) {
    cg_req *r = req(body);
    if (OPS->parse(r) != -1)
        fail_msg("accepted: %s", body);
    assert_int_equal(r->err_status, 400);
    assert_string_equal(r->err_type, "invalid_request_error");
    assert_string_equal(r->err_param, field);
    if (strncmp(r->err_msg, field, strlen(field)) != 0)
        fail_msg("message does not start with '%s': %s", field, r->err_msg);
    if (msg_part && !strstr(r->err_msg, msg_part))
        fail_msg("message lacks \"%s\": %s", msg_part, r->err_msg);
    req_free(r);
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"Hello, Claude\"}]"
#define M "\"model\":\"claude-sonnet-4-5\","

static void test_parse_ok(void **state) {
    (void)state;
    cg_req *r = parse_ok("{" M "\"max_tokens\":1024," MSGS "}");
    assert_string_equal(r->model, "claude-sonnet-4-5");
    assert_int_equal(r->max_tokens, 1024);
    assert_int_equal(r->stream, 0);
    req_free(r);
    r = parse_ok(
        "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":1,\"stream\":true,"
        "\"system\":[{\"type\":\"text\",\"text\":\"Manual...\",\"cache_control\":{\"type\":"
        "\"ephemeral\",\"ttl\":\"1h\"}}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"Q\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{"
        "\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"42\"}]}],"
        "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}");
    assert_int_equal(r->stream, 1);
    assert_int_equal(r->max_tokens, 1);
    req_free(r);
    r = parse_ok("{" M "\"max_tokens\":10,\"system\":\"Be brief.\",\"stream\":null," MSGS "}");
    assert_int_equal(r->stream, 0);
    req_free(r);
}

static void test_parse_errors(void **state) {
    (void)state;
    parse_bad("{\"max_tokens\":10," MSGS "}", "model", "Field required");
    parse_bad("{\"model\":5,\"max_tokens\":10," MSGS "}", "model",
              "Input should be a valid string (got integer)");
    parse_bad("{\"model\":\"\",\"max_tokens\":10," MSGS "}", "model", "1 to 127 characters");
    char body[512], name[129];
    memset(name, 'c', 128);
    name[128] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"max_tokens\":10," MSGS "}", name);
    parse_bad(body, "model", NULL);

    parse_bad("{" M MSGS "}", "max_tokens", "Field required");
    parse_bad("{" M "\"max_tokens\":0," MSGS "}", "max_tokens", "greater than or equal to 1");
    parse_bad("{" M "\"max_tokens\":-1," MSGS "}", "max_tokens", NULL);
    parse_bad("{" M "\"max_tokens\":1.5," MSGS "}", "max_tokens", "valid integer (got number)");
    parse_bad("{" M "\"max_tokens\":\"100\"," MSGS "}", "max_tokens", "(got string)");
    parse_bad("{" M "\"max_tokens\":null," MSGS "}", "max_tokens", "(got null)");

    parse_bad("{" M "\"max_tokens\":10}", "messages", "Field required");
    parse_bad("{" M "\"max_tokens\":10,\"messages\":[]}", "messages", "at least one message");
    parse_bad("{" M "\"max_tokens\":10,\"messages\":\"hi\"}", "messages",
              "valid list (got string)");
    parse_bad("{" M "\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
              "{\"role\":\"assistant\",\"content\":7}]}",
              "messages", "messages.1:");
    parse_bad("{" M "\"max_tokens\":10,\"messages\":[{\"content\":\"a\"}]}", "messages",
              "messages.0:");
    parse_bad("{" M "\"max_tokens\":10,\"messages\":[{\"role\":\"user\"}]}", "messages", NULL);
    parse_bad("{" M "\"max_tokens\":10,\"messages\":[\"hi\"]}", "messages", NULL);

    parse_bad("{" M "\"max_tokens\":10,\"system\":{\"text\":\"x\"}," MSGS "}", "system",
              "string or list (got object)");
    parse_bad("{" M "\"max_tokens\":10,\"stream\":\"yes\"," MSGS "}", "stream",
              "valid boolean (got string)");
    parse_bad("{" M "\"max_tokens\":10,\"stream\":1," MSGS "}", "stream", NULL);
}

static const cg_provider_cfg PROV = {
    .name = "anthropic", .api = CG_API_ANTHROPIC, .base_url = "https://api.anthropic.test"};

static void test_build(void **state) {
    (void)state;
    const char *body = "{" M "\"max_tokens\":10,\"stream\":true," MSGS "}";
    cg_req *r = parse_ok(body);
    r->prov = &PROV;
    r->prov_key = "sk-ant-test";
    snprintf(r->anthropic_beta, sizeof r->anthropic_beta, "prompt-caching-2024-07-31");
    assert_int_equal(OPS->build(r), 0);
    assert_string_equal(r->url, "https://api.anthropic.test/v1/messages");
    assert_int_equal(r->up_body.len, strlen(body)); /* passed through unchanged */
    assert_memory_equal(r->up_body.data, body, r->up_body.len);
    int key = 0, ver = 0, beta = 0, accept = 0;
    key += header_lines(&r->up_headers, "x-api-key: sk-ant-test");
    ver += header_lines(&r->up_headers, "anthropic-version: 2023-06-01"); /* the default */
    beta += header_lines(&r->up_headers, "anthropic-beta: prompt-caching-2024-07-31");
    accept += header_lines(&r->up_headers, "Accept: text/event-stream");
    assert_int_equal(key + ver + beta + accept, 4);
    req_free(r);
}

/* ---- stream events ---- */

static void on_event(cg_req *r, const char *name, const char *data, int *forward, int *terminal) {
    cg_sse_event ev = {.raw = data,
                       .raw_len = strlen(data),
                       .event = name,
                       .event_len = strlen(name),
                       .data = data,
                       .data_len = strlen(data)};
    *forward = 7;
    *terminal = 7;
    OPS->on_event(r, &ev, forward, terminal);
    assert_int_equal(*forward, 1); /* Anthropic events are never dropped */
}

#define START(usage)                                                                               \
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":"    \
    "\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,"  \
    "\"usage\":" usage "}}"
#define DELTA(usage)                                                                               \
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}," \
    "\"usage\":" usage "}"

static void test_start_then_delta(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    on_event(r, "message_start", START("{\"input_tokens\":25,\"output_tokens\":1}"), &fwd, &term);
    assert_int_equal(term, 0);
    assert_int_equal(r->usage_seen, 1); /* input known, output not final */
    assert_int_equal(r->usage.input, 25);
    assert_int_equal(r->usage.output, 1);
    assert_string_equal(r->served_model, "claude-sonnet-4-5-20250929");
    on_event(r, "ping", "{\"type\": \"ping\"}", &fwd, &term);
    assert_int_equal(term, 0);
    on_event(r, "content_block_delta",
             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
             "\"text\":\"Hello\"}}",
             &fwd, &term);
    assert_int_equal(r->out_chars, 5);
    on_event(r, "message_delta", DELTA("{\"output_tokens\":15}"), &fwd, &term);
    assert_int_equal(term, 0);
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.input, 25); /* not named: kept */
    assert_int_equal(r->usage.output, 15);
    assert_true(r->usage.have & CG_USAGE_HAVE_OUTPUT);
    on_event(r, "message_stop", "{\"type\":\"message_stop\"}", &fwd, &term);
    assert_int_equal(term, 1);
    req_free(r);
}

static void test_delta_without_start(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    on_event(r, "message_delta", DELTA("{\"output_tokens\":15}"), &fwd, &term);
    assert_int_equal(r->usage.output, 15);
    assert_int_equal(r->usage_seen, 0); /* input unknown: not complete */
    req_free(r);
}

static void test_event_name_decides(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    /* the same data under another name (or none) is not monitored */
    on_event(r, "", START("{\"input_tokens\":25,\"output_tokens\":1}"), &fwd, &term);
    on_event(r, "message_start_x", START("{\"input_tokens\":25}"), &fwd, &term);
    assert_int_equal(r->usage_seen, 0);
    on_event(r, "", "{\"type\":\"message_stop\"}", &fwd, &term);
    assert_int_equal(term, 0);
    assert_int_equal(r->up_stream_error, 0);
    /* a provider error event: forwarded, not terminal, remembered */
    on_event(r, "error",
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"}}",
             &fwd, &term);
    assert_int_equal(term, 0);
    assert_int_equal(r->up_stream_error, 1);
    /* broken JSON under a monitored name is ignored */
    on_event(r, "message_start", "{\"type\":\"message_start\",\"message\":{", &fwd, &term);
    on_event(r, "message_start", START("{\"input_tokens\":-3}"), &fwd, &term);
    assert_int_equal(r->usage_seen, 0);
    req_free(r);
}

static void test_output_chars(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    on_event(r, "content_block_delta",
             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
             "\"thinking\":\"step 1\"}}",
             &fwd, &term);
    on_event(r, "content_block_delta",
             "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
             "\"input_json_delta\",\"partial_json\":\"{\\\"loc\\\": \"}}",
             &fwd, &term);
    on_event(r, "content_block_delta",
             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
             "\"signature_delta\",\"signature\":\"EqQBCgIYAh\"}}",
             &fwd, &term);
    assert_int_equal(r->out_chars, 6 + 8); /* signatures are not output text */
    req_free(r);
}

static void test_cache_fields(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    on_event(r, "message_start",
             START("{\"input_tokens\":12,\"cache_creation_input_tokens\":4096,"
                   "\"cache_read_input_tokens\":20000,\"cache_creation\":{"
                   "\"ephemeral_5m_input_tokens\":1024,\"ephemeral_1h_input_tokens\":3072},"
                   "\"output_tokens\":1,\"service_tier\":\"standard\"}"),
             &fwd, &term);
    assert_int_equal(r->usage_seen, 1);
    assert_int_equal(r->usage.input, 12); /* excludes cache reads and writes */
    assert_int_equal(r->usage.cached_read, 20000);
    assert_int_equal(r->usage.cache_write_5m, 1024);
    assert_int_equal(r->usage.cache_write_1h, 3072);
    assert_int_equal(cg_usage_input_total(&r->usage), 12 + 20000 + 4096);
    /* a final delta repeating the cumulative totals, without the breakdown */
    on_event(r, "message_delta",
             DELTA("{\"input_tokens\":12,\"cache_creation_input_tokens\":4096,"
                   "\"cache_read_input_tokens\":20000,\"output_tokens\":503,"
                   "\"server_tool_use\":{\"web_search_requests\":2}}"),
             &fwd, &term);
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.cache_write_5m, 1024); /* breakdown kept */
    assert_int_equal(r->usage.cache_write_1h, 3072);
    assert_int_equal(r->usage.cached_read, 20000);
    assert_int_equal(r->usage.output, 503);
    assert_int_equal(r->usage.web_searches, 2);
    req_free(r);
}

static void test_cache_legacy_and_new_total(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    int fwd, term;
    /* no breakdown: every cache write is 5 min */
    on_event(r, "message_start",
             START("{\"input_tokens\":4,\"cache_creation_input_tokens\":1800,"
                   "\"cache_read_input_tokens\":0,\"output_tokens\":1}"),
             &fwd, &term);
    assert_int_equal(r->usage.cache_write_5m, 1800);
    assert_int_equal(r->usage.cache_write_1h, 0);
    req_free(r);

    r = req(NULL);
    on_event(r, "message_start",
             START("{\"input_tokens\":3,\"cache_creation\":{\"ephemeral_1h_input_tokens\":2048},"
                   "\"output_tokens\":1}"),
             &fwd, &term);
    assert_int_equal(r->usage.cache_write_1h, 2048);
    /* a new total without breakdown: the 1 h part is kept, the rest is 5 min */
    on_event(r, "message_delta",
             DELTA("{\"cache_creation_input_tokens\":3000,\"output_tokens\":9}"), &fwd, &term);
    assert_int_equal(r->usage.cache_write_1h, 2048);
    assert_int_equal(r->usage.cache_write_5m, 952);
    assert_int_equal(r->usage.output, 9);
    req_free(r);
}

/* A whole stream through the SSE parser, as the proxy stage runs it. */
typedef struct run_state {
    cg_req *r;
    int events, forwarded, terminal, usage_seen_at_stop;
} run_state;

static int run_cb(void *arg, const cg_sse_event *ev) {
    run_state *s = arg;
    int fwd = 1, term = 0;
    s->r->ops->on_event(s->r, ev, &fwd, &term);
    s->events++;
    s->forwarded += fwd;
    s->terminal += term;
    if (term)
        s->usage_seen_at_stop = s->r->usage_seen;
    return 0;
}

static void test_stream_end_to_end(void **state) {
    (void)state;
    const char *stream =
        "event: message_start\r\n"
        "data: " START(
            "{\"input_tokens\":25,\"cache_read_input_tokens\":100,\"output_tokens\":"
            "1}") "\r\n"
                  "\r\n"
                  "event: content_block_start\r\n"
                  "data: "
                  "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                  "\"type\":\"text\","
                  "\"text\":\"\"}}\r\n"
                  "\r\n"
                  "event: ping\r\n"
                  "data: {\"type\": \"ping\"}\r\n"
                  "\r\n"
                  "event: content_block_delta\r\n"
                  "data: "
                  "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                  "\"text_delta\","
                  "\"text\":\"Hi!\"}}\r\n"
                  "\r\n"
                  "event: content_block_stop\r\n"
                  "data: {\"type\":\"content_block_stop\",\"index\":0}\r\n"
                  "\r\n"
                  "event: message_delta\r\n"
                  "data: " DELTA("{\"output_tokens\":15}") "\r\n"
                                                           "\r\n"
                                                           "event: message_stop\r\n"
                                                           "data: {\"type\":\"message_stop\"}\r\n"
                                                           "\r\n";
    size_t n = strlen(stream);
    for (size_t step = 1; step <= n; step = step * 3 + 1) {
        run_state s = {.r = req(NULL)};
        for (size_t off = 0; off < n; off += step)
            assert_int_equal(
                cg_sse_feed(&s.r->sse, stream + off, n - off < step ? n - off : step, run_cb, &s),
                0);
        assert_int_equal(cg_sse_pending(&s.r->sse), 0);
        assert_int_equal(s.events, 7);
        assert_int_equal(s.forwarded, 7);
        assert_int_equal(s.terminal, 1);
        assert_int_equal(s.usage_seen_at_stop, 2); /* final usage known before message_stop */
        assert_int_equal(s.r->usage.input, 25);
        assert_int_equal(s.r->usage.cached_read, 100);
        assert_int_equal(s.r->usage.output, 15);
        assert_int_equal(s.r->out_chars, 3);
        req_free(s.r);
    }
}

/* ---- on_body ---- */

static void test_on_body(void **state) {
    (void)state;
    cg_req *r = req(NULL);
    json_t *j = json_loads(
        "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\","
        "\"thinking\":\"hmm\",\"signature\":\"sig\"},{\"type\":\"text\",\"text\":\"Hi! I'm "
        "Claude.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":1}}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":2095,"
        "\"cache_creation_input_tokens\":500,\"cache_read_input_tokens\":7000,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":500},"
        "\"output_tokens\":503,\"server_tool_use\":{\"web_search_requests\":1}}}",
        0, NULL);
    assert_non_null(j);
    OPS->on_body(r, j);
    json_decref(j);
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.input, 2095);
    assert_int_equal(r->usage.cached_read, 7000);
    assert_int_equal(r->usage.cache_write_5m, 0);
    assert_int_equal(r->usage.cache_write_1h, 500);
    assert_int_equal(r->usage.output, 503);
    assert_int_equal(r->usage.web_searches, 1);
    assert_string_equal(r->served_model, "claude-sonnet-4-5-20250929");
    /* "hmm" + "Hi! I'm Claude." + {"a":1} */
    assert_int_equal(r->out_chars, 3 + 15 + 7);
    req_free(r);

    r = req(NULL);
    j = json_loads("{\"content\":[],\"usage\":{\"input_tokens\":\"x\"}}", 0, NULL);
    OPS->on_body(r, j);
    json_decref(j);
    assert_int_equal(r->usage_seen, 0);
    req_free(r);
}

/* ---- error shapes ---- */

static void test_error_shapes(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 4096);
    OPS->error_body(&b, 400, "invalid_request_error", NULL, "max_tokens",
                    "max_tokens: Field required");
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "max_tokens: Field required");
    json_decref(j);
    cg_buf_reset(&b);
    OPS->stream_error(&b, "overloaded_error", "Overloaded \"now\"");
    const char *head = "event: error\ndata: ";
    assert_memory_equal(b.data, head, strlen(head));
    assert_memory_equal(b.data + b.len - 2, "\n\n", 2);
    j = json_loadb(b.data + strlen(head), b.len - strlen(head) - 2, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "Overloaded \"now\"");
    json_decref(j);
    cg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_start_then_delta),
        cmocka_unit_test(test_delta_without_start),
        cmocka_unit_test(test_event_name_decides),
        cmocka_unit_test(test_output_chars),
        cmocka_unit_test(test_cache_fields),
        cmocka_unit_test(test_cache_legacy_and_new_total),
        cmocka_unit_test(test_stream_end_to_end),
        cmocka_unit_test(test_on_body),
        cmocka_unit_test(test_error_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
