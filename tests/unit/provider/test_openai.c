/* test_openai: unit tests of src/provider/openai.c (the OpenAI adapter).
 *
 * Owns: request validation (every error is a 400 whose param and message name
 * the offending field), stream / stream_options.include_usage detection,
 * max_completion_tokens vs max_tokens, the upstream body (include_usage
 * forced on streams whose client did not ask for it), on_event (usage
 * extraction, dropping the usage-only chunk only when the client did not ask
 * for it, [DONE] terminal, output characters), on_body for chat and
 * embeddings, and the error shapes. A cg_req is built by hand (no worker).
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

static const cg_provider_ops *OPS = &cg_provider_openai;

static cg_req *req(cg_endpoint ep, const char *body) {
    cg_req *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->ep = ep;
    r->api = CG_API_OPENAI;
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

static cg_req *parse_ok(cg_endpoint ep, const char *body) {
    cg_req *r = req(ep, body);
    if (OPS->parse(r) != 0)
        fail_msg("refused (%s): %s", r->err_msg, body);
    assert_int_equal(r->err_status, 0);
    return r;
}

/* Refused with a 400 whose param is `field` and whose message names it. */
static void parse_bad(cg_endpoint ep, const char *body, const char *field, const char *msg_part) {
    cg_req *r = req(ep, body);
    if (OPS->parse(r) != -1)
        fail_msg("accepted: %s", body);
    assert_int_equal(r->err_status, 400);
    assert_string_equal(r->err_type, "invalid_request_error");
    assert_string_equal(r->err_param, field);
    if (!strstr(r->err_msg, field))
        fail_msg("message does not name '%s': %s", field, r->err_msg);
    if (msg_part && !strstr(r->err_msg, msg_part))
        fail_msg("message lacks \"%s\": %s", msg_part, r->err_msg);
    req_free(r);
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_parse_chat_ok(void **state) {
    (void)state;
    cg_req *r = parse_ok(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"temperature\":0.2}");
    assert_string_equal(r->model, "gpt-4o");
    assert_int_equal(r->stream, 0);
    assert_int_equal(r->client_usage, 0);
    assert_int_equal(r->max_tokens, 0);
    req_free(r);
    /* tool messages, null content, multimodal content: roles are what is checked */
    r = parse_ok(CG_EP_CHAT,
                 "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
                 "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"ok\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}");
    assert_string_equal(r->model, "gpt-4o-mini");
    req_free(r);
    /* the longest model name that fits */
    char body[512];
    char name[128];
    memset(name, 'm', 127);
    name[127] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"%s\"," MSGS "}", name);
    r = parse_ok(CG_EP_CHAT, body);
    assert_string_equal(r->model, name);
    req_free(r);
}

static void test_parse_chat_errors(void **state) {
    (void)state;
    parse_bad(CG_EP_CHAT, "{" MSGS "}", "model", NULL);
    parse_bad(CG_EP_CHAT, "{\"model\":4," MSGS "}", "model",
              "expected a string, but got an integer");
    parse_bad(CG_EP_CHAT, "{\"model\":null," MSGS "}", "model", "got null");
    parse_bad(CG_EP_CHAT, "{\"model\":[\"gpt-4o\"]," MSGS "}", "model", "got an array");
    parse_bad(CG_EP_CHAT, "{\"model\":\"\"," MSGS "}", "model", NULL);
    char body[512], name[129];
    memset(name, 'm', 128);
    name[128] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"%s\"," MSGS "}", name);
    parse_bad(CG_EP_CHAT, body, "model", "1 to 127 characters");

    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"}", "messages", "Missing required parameter");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\",\"messages\":{}}", "messages",
              "expected an array, but got an object");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\",\"messages\":\"hi\"}", "messages", "got a string");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\",\"messages\":[]}", "messages", "empty array");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\",\"messages\":[{\"content\":\"x\"}]}",
              "messages[0].role", NULL);
    parse_bad(CG_EP_CHAT,
              "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},5]}",
              "messages[1].role", NULL);
    parse_bad(CG_EP_CHAT,
              "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
              "{\"role\":\"user\",\"content\":\"b\"},{\"role\":1,\"content\":\"c\"}]}",
              "messages[2].role", NULL);

    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"stream\":\"true\"}", "stream",
              "expected a boolean, but got a string");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"stream\":1}", "stream", NULL);
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"stream\":true,\"stream_options\":[]}",
              "stream_options", "expected an object");
    parse_bad(CG_EP_CHAT,
              "{\"model\":\"gpt-4o\"," MSGS
              ",\"stream\":true,\"stream_options\":{\"include_usage\":\"yes\"}}",
              "stream_options.include_usage", "expected a boolean");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"max_tokens\":0}", "max_tokens",
              "got 0 instead");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"max_tokens\":-5}", "max_tokens",
              "got -5 instead");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"max_tokens\":\"10\"}", "max_tokens",
              "expected an integer, but got a string");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"max_completion_tokens\":1.5}",
              "max_completion_tokens", "expected an integer, but got a number");
    parse_bad(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS ",\"max_completion_tokens\":false}",
              "max_completion_tokens", "got a boolean");
    /* both are validated even when one is fine */
    parse_bad(CG_EP_CHAT,
              "{\"model\":\"gpt-4o\"," MSGS ",\"max_completion_tokens\":100,\"max_tokens\":0}",
              "max_tokens", NULL);
}

static void test_parse_stream_and_usage(void **state) {
    (void)state;
    static const struct {
        const char *extra;
        int stream, client_usage;
    } cases[] = {
        {"", 0, 0},
        {",\"stream\":null", 0, 0},
        {",\"stream\":false", 0, 0},
        {",\"stream\":true", 1, 0},
        {",\"stream\":true,\"stream_options\":null", 1, 0},
        {",\"stream\":true,\"stream_options\":{}", 1, 0},
        {",\"stream\":true,\"stream_options\":{\"include_usage\":false}", 1, 0},
        {",\"stream\":true,\"stream_options\":{\"include_usage\":true}", 1, 1},
        {",\"stream\":true,\"stream_options\":{\"include_obfuscation\":false,"
         "\"include_usage\":true}",
         1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"model\":\"gpt-4o\"," MSGS "%s}", cases[i].extra);
        cg_req *r = parse_ok(CG_EP_CHAT, body);
        if (r->stream != cases[i].stream || r->client_usage != cases[i].client_usage)
            fail_msg("%s: stream %d client_usage %d", body, r->stream, r->client_usage);
        req_free(r);
    }
}

static void test_parse_max_tokens(void **state) {
    (void)state;
    static const struct {
        const char *extra;
        int64_t want;
    } cases[] = {
        {"", 0},
        {",\"max_tokens\":200", 200},
        {",\"max_completion_tokens\":100", 100},
        {",\"max_completion_tokens\":100,\"max_tokens\":200", 100}, /* the newer name wins */
        {",\"max_tokens\":200,\"max_completion_tokens\":100", 100}, /* whatever the order */
        {",\"max_completion_tokens\":null,\"max_tokens\":50", 50},
        {",\"max_tokens\":null", 0},
        {",\"max_tokens\":1", 1},
        {",\"max_completion_tokens\":9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"model\":\"o3-mini\"," MSGS "%s}", cases[i].extra);
        cg_req *r = parse_ok(CG_EP_CHAT, body);
        if (r->max_tokens != cases[i].want)
            fail_msg("%s: max_tokens %lld", body, (long long)r->max_tokens);
        req_free(r);
    }
}

static void test_parse_embeddings(void **state) {
    (void)state;
    const char *ok[] = {
        "{\"model\":\"text-embedding-3-small\",\"input\":\"hello\"}",
        "{\"model\":\"text-embedding-3-large\",\"input\":[\"a\",\"b\"],\"dimensions\":256}",
        "{\"model\":\"text-embedding-ada-002\",\"input\":[[1,2,3]],\"encoding_format\":\"base64\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cg_req *r = parse_ok(CG_EP_EMBEDDINGS, ok[i]);
        assert_int_equal(r->stream, 0);
        req_free(r);
    }
    /* no messages needed; input is */
    parse_bad(CG_EP_EMBEDDINGS, "{\"model\":\"text-embedding-3-small\"}", "input",
              "Missing required parameter");
    parse_bad(CG_EP_EMBEDDINGS, "{\"model\":\"text-embedding-3-small\",\"input\":42}", "input",
              "expected a string or an array, but got an integer");
    parse_bad(CG_EP_EMBEDDINGS, "{\"model\":\"text-embedding-3-small\",\"input\":null}", "input",
              NULL);
    parse_bad(CG_EP_EMBEDDINGS, "{\"input\":\"x\"}", "model", NULL);
}

static const cg_provider_cfg PROV = {
    .name = "openai", .api = CG_API_OPENAI, .base_url = "https://api.example.test/prefix"};

static void test_build(void **state) {
    (void)state;
    /* a stream whose client did not ask for usage: include_usage is forced on */
    cg_req *r = parse_ok(CG_EP_CHAT, "{\"model\":\"gpt-4o\"," MSGS
                                     ",\"stream\":true,\"stream_options\":{\"x\":1}}");
    r->prov = &PROV;
    r->prov_key = "sk-test";
    assert_int_equal(OPS->build(r), 0);
    assert_string_equal(r->url, "https://api.example.test/prefix/v1/chat/completions");
    json_t *up = json_loadb(r->up_body.data, r->up_body.len, 0, NULL);
    assert_non_null(up);
    json_t *so = json_object_get(up, "stream_options");
    assert_true(json_is_true(json_object_get(so, "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(so, "x")), 1); /* others kept */
    assert_true(json_equal(json_object_get(up, "messages"), json_object_get(r->body, "messages")));
    json_decref(up);
    int auth = 0, accept = 0;
    auth += header_lines(&r->up_headers, "Authorization: Bearer sk-test");
    accept += header_lines(&r->up_headers, "Accept: text/event-stream");
    assert_int_equal(auth, 1);
    assert_int_equal(accept, 1);
    req_free(r);

    /* the client asked for usage, or no stream: its bytes go up unchanged */
    const char *same[] = {
        "{\"model\":\"gpt-4o\"," MSGS
        ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
        "{\"model\":\"gpt-4o\", " MSGS "}",
    };
    for (int i = 0; i < 2; i++) {
        r = parse_ok(CG_EP_CHAT, same[i]);
        r->prov = &PROV;
        assert_int_equal(OPS->build(r), 0);
        assert_int_equal(r->up_body.len, strlen(same[i]));
        assert_memory_equal(r->up_body.data, same[i], r->up_body.len);
        req_free(r);
    }
    r = parse_ok(CG_EP_EMBEDDINGS, "{\"model\":\"text-embedding-3-small\",\"input\":\"x\"}");
    r->prov = &PROV;
    assert_int_equal(OPS->build(r), 0);
    assert_string_equal(r->url, "https://api.example.test/prefix/v1/embeddings");
    req_free(r);
}

/* ---- on_event ---- */

static cg_sse_event ev_data(const char *data) {
    cg_sse_event ev = {.raw = data,
                       .raw_len = strlen(data),
                       .event = "",
                       .event_len = 0,
                       .data = data,
                       .data_len = strlen(data)};
    return ev;
}

static void on_event(cg_req *r, const char *data, int *forward, int *terminal) {
    cg_sse_event ev = ev_data(data);
    *forward = 7;
    *terminal = 7;
    OPS->on_event(r, &ev, forward, terminal);
}

#define USAGE_CHUNK                                                                                \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\"," \
    "\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":40,\"total_tokens\":"  \
    "1240,\"prompt_tokens_details\":{\"cached_tokens\":1024},\"completion_tokens_details\":{"      \
    "\"reasoning_tokens\":8}}}"

static void test_on_event_content(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    r->stream = 1;
    int fwd, term;
    on_event(r,
             "{\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,"
             "\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"}}],\"usage\":null}",
             &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(term, 0);
    assert_string_equal(r->served_model, "gpt-4o-2024-08-06");
    assert_int_equal(r->out_chars, 5);
    assert_int_equal(r->usage_seen, 0); /* "usage":null is no usage */
    on_event(r,
             "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
             "\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}",
             &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(r->out_chars, 5 + 7); /* {\"a\":1} counts as 7 characters */
    req_free(r);
}

static void test_on_event_usage_dropped_when_not_asked(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    r->stream = 1;
    r->client_usage = 0;
    int fwd, term;
    on_event(r, USAGE_CHUNK, &fwd, &term);
    assert_int_equal(fwd, 0); /* the gateway asked for it, the client did not */
    assert_int_equal(term, 0);
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.input, 1200 - 1024);
    assert_int_equal(r->usage.cached_read, 1024);
    assert_int_equal(r->usage.output, 40);
    assert_int_equal(r->usage.reasoning, 8);
    req_free(r);
}

static void test_on_event_usage_kept_when_asked(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    r->stream = 1;
    r->client_usage = 1;
    int fwd, term;
    on_event(r, USAGE_CHUNK, &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.input, 176);
    req_free(r);
}

static void test_on_event_usage_with_choices_forwarded(void **state) {
    (void)state;
    /* usage on a chunk that also carries choices is never dropped */
    cg_req *r = req(CG_EP_CHAT, NULL);
    int fwd, term;
    on_event(r,
             "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
             "\"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 3}}",
             &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(r->usage_seen, 2); /* "usage": { with a space is found too */
    assert_int_equal(r->usage.input, 9);
    assert_int_equal(r->usage.output, 3);
    req_free(r);
}

static void test_on_event_bad_usage(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    int fwd, term;
    on_event(r, "{\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":-1}}", &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(r->usage_seen, 0);
    on_event(r, "{\"usage\":{\"prompt_tokens\":5,", &fwd, &term); /* not JSON */
    assert_int_equal(fwd, 1);
    assert_int_equal(term, 0);
    assert_int_equal(r->usage_seen, 0);
    req_free(r);
}

static void test_on_event_done(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    int fwd, term;
    on_event(r, "[DONE]", &fwd, &term);
    assert_int_equal(term, 1);
    assert_int_equal(fwd, 1);
    on_event(r, "[DONE]x", &fwd, &term);
    assert_int_equal(term, 0);
    on_event(r, "", &fwd, &term); /* a comment or keep-alive event */
    assert_int_equal(term, 0);
    assert_int_equal(fwd, 1);
    req_free(r);
}

static void test_on_event_error(void **state) {
    (void)state;
    /* a provider error event mid-stream: forwarded, marks the stream as
     * ended by the provider (so the gateway adds no second error) */
    cg_req *r = req(CG_EP_CHAT, NULL);
    int fwd, term;
    on_event(r, "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", &fwd, &term);
    assert_int_equal(r->up_stream_error, 0);
    on_event(r,
             "{\"error\":{\"message\":\"The server had an error while processing your "
             "request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}",
             &fwd, &term);
    assert_int_equal(fwd, 1);
    assert_int_equal(term, 0);
    assert_int_equal(r->up_stream_error, 1);
    req_free(r);
    r = req(CG_EP_CHAT, NULL);
    on_event(r, "{\"error\"", &fwd, &term); /* shortest prefix */
    assert_int_equal(r->up_stream_error, 1);
    req_free(r);
    r = req(CG_EP_CHAT, NULL);
    on_event(r, "{\"errors\":[]}", &fwd, &term); /* another key */
    on_event(r, "{\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"error\"}}]}", &fwd, &term);
    assert_int_equal(r->up_stream_error, 0);
    req_free(r);
}

/* A whole stream through the SSE parser, as the proxy stage runs it. */
typedef struct run_state {
    cg_req *r;
    int forwarded, dropped, terminal;
} run_state;

static int run_cb(void *arg, const cg_sse_event *ev) {
    run_state *s = arg;
    int fwd = 1, term = 0;
    s->r->ops->on_event(s->r, ev, &fwd, &term);
    s->forwarded += fwd;
    s->dropped += !fwd;
    s->terminal += term;
    return 0;
}

static void test_stream_end_to_end(void **state) {
    (void)state;
    const char *stream =
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":"
        "{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\r\n\r\n"
        "data: {\"id\":\"c\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":"
        "{\"content\":\"Hi there\"}}],\"usage\":null}\r\n\r\n"
        "data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":null}\r\n\r\n"
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
        "\"completion_tokens\":2,\"total_tokens\":14}}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    for (int client_usage = 0; client_usage < 2; client_usage++) {
        for (size_t step = 1; step <= 64; step *= 4) {
            cg_req *r = req(CG_EP_CHAT, NULL);
            r->stream = 1;
            r->client_usage = client_usage;
            run_state s = {.r = r};
            size_t n = strlen(stream);
            for (size_t off = 0; off < n; off += step)
                assert_int_equal(
                    cg_sse_feed(&r->sse, stream + off, n - off < step ? n - off : step, run_cb, &s),
                    0);
            assert_int_equal(cg_sse_pending(&r->sse), 0);
            assert_int_equal(s.terminal, 1);
            assert_int_equal(s.dropped, client_usage ? 0 : 1);
            assert_int_equal(s.forwarded, client_usage ? 5 : 4);
            assert_int_equal(r->usage_seen, 2);
            assert_int_equal(r->usage.input, 12);
            assert_int_equal(r->usage.output, 2);
            assert_int_equal(r->out_chars, 8);
            assert_string_equal(r->served_model, "gpt-4o-mini-2024-07-18");
            req_free(r);
        }
    }
}

/* ---- on_body ---- */

static void on_body(cg_req *r, const char *text) {
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    OPS->on_body(r, j);
    json_decref(j);
}

static void test_on_body_chat(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    on_body(
        r, "{\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\","
           "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
           "\"Hello!\",\"refusal\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
           "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
           "\"finish_reason\":\"stop\"},{\"index\":1,\"message\":{\"role\":\"assistant\","
           "\"content\":null,\"refusal\":\"No.\"}}],"
           "\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,\"total_tokens\":2306,"
           "\"prompt_tokens_details\":{\"cached_tokens\":1920,\"audio_tokens\":0},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":64}}}");
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.input, 86);
    assert_int_equal(r->usage.cached_read, 1920);
    assert_int_equal(r->usage.output, 300);
    assert_int_equal(r->usage.reasoning, 64);
    assert_int_equal(r->usage.embedding, 0);
    assert_string_equal(r->served_model, "gpt-4o-2024-08-06");
    assert_int_equal(r->out_chars, 6 + 2 + 3); /* "Hello!", "{}", "No." */
    req_free(r);
}

static void test_on_body_no_usage(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_CHAT, NULL);
    on_body(r, "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"content\":\"abc\"}}]}");
    assert_int_equal(r->usage_seen, 0);
    assert_int_equal(r->out_chars, 3);
    on_body(r, "{\"usage\":{\"prompt_tokens\":\"many\"}}");
    assert_int_equal(r->usage_seen, 0);
    on_body(r, "{\"choices\":\"not an array\",\"usage\":[]}"); /* odd shapes are ignored */
    assert_int_equal(r->usage_seen, 0);
    req_free(r);
}

static void test_on_body_embeddings(void **state) {
    (void)state;
    cg_req *r = req(CG_EP_EMBEDDINGS, NULL);
    on_body(r, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
               "\"embedding\":[0.0023,-0.0093]}],\"model\":\"text-embedding-3-small\","
               "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}");
    assert_int_equal(r->usage_seen, 2);
    assert_int_equal(r->usage.embedding, 8);
    assert_int_equal(r->usage.input, 0);
    assert_int_equal(r->usage.output, 0);
    assert_true(r->usage.have & CG_USAGE_HAVE_EMBED);
    assert_string_equal(r->served_model, "text-embedding-3-small");
    req_free(r);
    r = req(CG_EP_EMBEDDINGS, NULL);
    on_body(r, "{\"usage\":{\"total_tokens\":42}}");
    assert_int_equal(r->usage.embedding, 42);
    req_free(r);
}

/* ---- error shapes ---- */

static void test_error_body(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 4096);
    OPS->error_body(&b, 400, "invalid_request_error", "invalid_type", "max_tokens",
                    "Invalid \"max_tokens\"\n");
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "Invalid \"max_tokens\"\n");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(e, "param")), "max_tokens");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "invalid_type");
    json_decref(j);
    cg_buf_reset(&b);
    OPS->error_body(&b, 500, "api_error", NULL, "", "boom");
    j = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(j);
    e = json_object_get(j, "error");
    assert_true(json_is_null(json_object_get(e, "param")));
    assert_true(json_is_null(json_object_get(e, "code")));
    json_decref(j);
    cg_buf_reset(&b);
    OPS->stream_error(&b, "api_error", "upstream broke");
    assert_true(b.len > 8);
    assert_memory_equal(b.data, "data: {", 7);
    assert_memory_equal(b.data + b.len - 2, "\n\n", 2);
    j = json_loadb(b.data + 6, b.len - 8, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    cg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_chat_ok),
        cmocka_unit_test(test_parse_chat_errors),
        cmocka_unit_test(test_parse_stream_and_usage),
        cmocka_unit_test(test_parse_max_tokens),
        cmocka_unit_test(test_parse_embeddings),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_on_event_content),
        cmocka_unit_test(test_on_event_usage_dropped_when_not_asked),
        cmocka_unit_test(test_on_event_usage_kept_when_asked),
        cmocka_unit_test(test_on_event_usage_with_choices_forwarded),
        cmocka_unit_test(test_on_event_bad_usage),
        cmocka_unit_test(test_on_event_done),
        cmocka_unit_test(test_on_event_error),
        cmocka_unit_test(test_stream_end_to_end),
        cmocka_unit_test(test_on_body_chat),
        cmocka_unit_test(test_on_body_no_usage),
        cmocka_unit_test(test_on_body_embeddings),
        cmocka_unit_test(test_error_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
