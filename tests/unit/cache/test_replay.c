/* test_replay: unit tests of src/cache/replay.c.
 *
 * Owns: the SSE replay of a stored answer is well-formed in each API's
 * format (every event parses with the gateway's own SSE parser, OpenAI
 * chunks are chat.completion.chunk with the response's id and model, the
 * deltas concatenate to the stored text and tool arguments, each choice
 * ends with its finish reason, the usage chunk comes only when asked for;
 * Anthropic events come in the protocol's order with matching indexes,
 * text, thinking and tool input round-trip, message_delta carries the stop
 * reason and output tokens); a captured stream rebuilds into the complete
 * body (and stream -> body -> stream -> body is stable); incomplete or
 * broken captures are refused; the capture is bounded.
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

#include "cache/replay.h"
#include "http/sse.h"

typedef struct evs {
    int n;
    char event[64][48];
    json_t *data[64];
} evs;

static int on_ev(void *arg, const cg_sse_event *ev) {
    evs *e = arg;
    if (e->n >= 64)
        fail_msg("too many events");
    snprintf(e->event[e->n], sizeof e->event[0], "%.*s", (int)ev->event_len, ev->event);
    e->data[e->n] = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!e->data[e->n])
        fail_msg("event %d data is not JSON: %.*s", e->n, (int)ev->data_len, ev->data);
    e->n++;
    return 0;
}

static void parse_sse(const cg_buf *b, evs *e) {
    memset(e, 0, sizeof *e);
    cg_sse p;
    cg_sse_init(&p, 1 << 20);
    assert_int_equal(cg_sse_feed(&p, b->data, b->len, on_ev, e), 0);
    cg_sse_free(&p);
}

static void free_evs(evs *e) {
    for (int i = 0; i < e->n; i++)
        json_decref(e->data[i]);
}

static const char *OAI_BODY =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello \\\"world\\\" \\u00e9\\n\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":"
    "\"stop\"},{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
    "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":"
    "\"{\\\"a\\\":1}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":"
    "{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15},\"system_fingerprint\":"
    "\"fp_x\"}";

static void test_openai_sse_well_formed(void **state) {
    (void)state;
    for (int usage = 0; usage <= 1; usage++) {
        cg_buf b;
        cg_buf_init(&b, 1 << 20);
        assert_int_equal(cg_replay_sse(0, OAI_BODY, strlen(OAI_BODY), usage, &b), 0);
        assert_null(strstr(b.data, "[DONE]")); /* the caller adds the terminal event */
        assert_int_equal(cg_buf_puts(&b, cg_replay_terminal(0)), 0);
        evs e;
        /* the terminal "[DONE]" is not JSON: parse what precedes it */
        b.len -= strlen(cg_replay_terminal(0));
        parse_sse(&b, &e);
        char content[256] = "", args[256] = "";
        const char *fin[2] = {NULL, NULL};
        int usage_chunks = 0;
        for (int i = 0; i < e.n; i++) {
            json_t *c = e.data[i];
            assert_string_equal(json_string_value(json_object_get(c, "object")),
                                "chat.completion.chunk");
            assert_string_equal(json_string_value(json_object_get(c, "id")), "chatcmpl-1");
            assert_string_equal(json_string_value(json_object_get(c, "model")), "gpt-4o-mini");
            json_t *u = json_object_get(c, "usage");
            json_t *choices = json_object_get(c, "choices");
            if (json_array_size(choices) == 0) {
                usage_chunks++;
                assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 5);
                assert_int_equal(i, e.n - 1); /* the usage chunk is last */
                continue;
            }
            if (usage)
                assert_true(json_is_null(u));
            else
                assert_null(u);
            json_t *ch = json_array_get(choices, 0);
            json_int_t idx = json_integer_value(json_object_get(ch, "index"));
            json_t *d = json_object_get(ch, "delta");
            const char *t = json_string_value(json_object_get(d, "content"));
            if (t && idx == 0)
                strncat(content, t, sizeof content - strlen(content) - 1);
            json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
            const char *a =
                json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
            if (a && idx == 1)
                strncat(args, a, sizeof args - strlen(args) - 1);
            const char *f = json_string_value(json_object_get(ch, "finish_reason"));
            if (f) {
                assert_null(fin[idx]); /* one finish per choice */
                fin[idx] = f;
            }
        }
        assert_string_equal(content, "Hello \"world\" \xc3\xa9\n");
        assert_string_equal(args, "{\"a\":1}");
        assert_string_equal(fin[0], "stop");
        assert_string_equal(fin[1], "tool_calls");
        assert_int_equal(usage_chunks, usage);
        free_evs(&e);
        cg_buf_free(&b);
    }
}

static const char *ANT_BODY =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"sig==\"},{\"type\":"
    "\"text\",\"text\":\"Hi there\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\","
    "\"input\":{\"q\":\"x\",\"n\":[1,2]}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":3,\"output_tokens\":9}}";

static void test_anthropic_sse_well_formed(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b, 1 << 20);
    assert_int_equal(cg_replay_sse(1, ANT_BODY, strlen(ANT_BODY), 0, &b), 0);
    assert_int_equal(cg_buf_puts(&b, cg_replay_terminal(1)), 0);
    evs e;
    parse_sse(&b, &e);
    assert_string_equal(e.event[0], "message_start");
    json_t *m = json_object_get(e.data[0], "message");
    assert_string_equal(json_string_value(json_object_get(m, "id")), "msg_1");
    assert_int_equal(json_array_size(json_object_get(m, "content")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(m, "usage"), "input_tokens")), 12);
    assert_string_equal(e.event[e.n - 1], "message_stop");
    assert_string_equal(e.event[e.n - 2], "message_delta");
    json_t *md = e.data[e.n - 2];
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "tool_use");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(md, "usage"), "output_tokens")), 9);
    /* blocks: start, deltas, stop with one index each, in order */
    int open = -1, next = 0;
    char thinking[64] = "", text[64] = "", json_in[128] = "", sig[32] = "";
    for (int i = 1; i < e.n - 2; i++) {
        json_t *d = e.data[i];
        assert_string_equal(json_string_value(json_object_get(d, "type")), e.event[i]);
        int idx = (int)json_integer_value(json_object_get(d, "index"));
        if (!strcmp(e.event[i], "content_block_start")) {
            assert_int_equal(open, -1);
            assert_int_equal(idx, next);
            open = idx;
        } else if (!strcmp(e.event[i], "content_block_stop")) {
            assert_int_equal(idx, open);
            open = -1;
            next++;
        } else {
            assert_string_equal(e.event[i], "content_block_delta");
            assert_int_equal(idx, open);
            json_t *dl = json_object_get(d, "delta");
            const char *t = json_string_value(json_object_get(dl, "type"));
            const char *v;
            if (!strcmp(t, "text_delta") && (v = json_string_value(json_object_get(dl, "text"))))
                strncat(text, v, sizeof text - strlen(text) - 1);
            if (!strcmp(t, "thinking_delta") &&
                (v = json_string_value(json_object_get(dl, "thinking"))))
                strncat(thinking, v, sizeof thinking - strlen(thinking) - 1);
            if (!strcmp(t, "signature_delta") &&
                (v = json_string_value(json_object_get(dl, "signature"))))
                strncat(sig, v, sizeof sig - strlen(sig) - 1);
            if (!strcmp(t, "input_json_delta") &&
                (v = json_string_value(json_object_get(dl, "partial_json"))))
                strncat(json_in, v, sizeof json_in - strlen(json_in) - 1);
        }
    }
    assert_int_equal(next, 3);
    assert_string_equal(text, "Hi there");
    assert_string_equal(thinking, "hmm");
    assert_string_equal(sig, "sig==");
    json_t *in = json_loads(json_in, 0, NULL);
    json_t *want = json_loads("{\"q\":\"x\",\"n\":[1,2]}", 0, NULL);
    assert_true(json_equal(in, want));
    json_decref(in);
    json_decref(want);
    free_evs(&e);
    cg_buf_free(&b);
}

/* Captures the data of each event of an SSE text. */
static int cap_ev(void *arg, const cg_sse_event *ev) {
    return cg_replay_capture(arg, ev->data, ev->data_len);
}

static void capture_of(const char *sse, cg_buf *cap) {
    cg_sse p;
    cg_sse_init(&p, 1 << 20);
    assert_int_equal(cg_sse_feed(&p, sse, strlen(sse), cap_ev, cap), 0);
    cg_sse_free(&p);
}

static void test_openai_rebuild(void **state) {
    (void)state;
    const char *sse =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
        "data: [DONE]\n\n";
    cg_buf cap, body;
    cg_buf_init(&cap, 1 << 20);
    cg_buf_init(&body, 1 << 20);
    capture_of(sse, &cap);
    assert_int_equal(cg_replay_rebuild(0, cap.data, cap.len, &body), 0);
    json_t *j = json_loads(body.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ch, "message"), "content")), "Hello");
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 2);
    /* body -> stream -> body: the same answer */
    cg_buf sse2, cap2, body2;
    cg_buf_init(&sse2, 1 << 20);
    cg_buf_init(&cap2, 1 << 20);
    cg_buf_init(&body2, 1 << 20);
    assert_int_equal(cg_replay_sse(0, body.data, body.len, 1, &sse2), 0);
    capture_of(sse2.data, &cap2);
    assert_int_equal(cg_replay_rebuild(0, cap2.data, cap2.len, &body2), 0);
    json_t *j2 = json_loads(body2.data, 0, NULL);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    /* no usage chunk, or a choice without its finish: not a complete answer */
    const char *cut = strstr(sse, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
                                  "\"created\":5,\"model\":\"m\",\"choices\":[]");
    char *partial = strndup(sse, (size_t)(cut - sse));
    cg_buf_reset(&cap);
    cg_buf_reset(&body);
    capture_of(partial, &cap);
    assert_int_equal(cg_replay_rebuild(0, cap.data, cap.len, &body), -1);
    free(partial);
    const char *err = "data: {\"error\":{\"message\":\"boom\"}}\n\n";
    cg_buf_reset(&cap);
    capture_of(err, &cap);
    assert_int_equal(cg_replay_rebuild(0, cap.data, cap.len, &body), -1);
    cg_buf_free(&cap);
    cg_buf_free(&body);
    cg_buf_free(&sse2);
    cg_buf_free(&cap2);
    cg_buf_free(&body2);
}

static void test_anthropic_rebuild_round_trip(void **state) {
    (void)state;
    cg_buf sse, cap, body;
    cg_buf_init(&sse, 1 << 20);
    cg_buf_init(&cap, 1 << 20);
    cg_buf_init(&body, 1 << 20);
    assert_int_equal(cg_replay_sse(1, ANT_BODY, strlen(ANT_BODY), 0, &sse), 0);
    cg_buf_puts(&sse, cg_replay_terminal(1));
    capture_of(sse.data, &cap);
    assert_int_equal(cg_replay_rebuild(1, cap.data, cap.len, &body), 0);
    json_t *a = json_loads(ANT_BODY, 0, NULL), *b = json_loads(body.data, 0, NULL);
    assert_non_null(b);
    if (!json_equal(a, b))
        fail_msg("rebuilt body differs:\n%s\n%s", ANT_BODY, body.data);
    json_decref(a);
    json_decref(b);
    /* without its message_delta (cut), not complete */
    char *cutp = strstr(sse.data, "event: message_delta");
    assert_non_null(cutp);
    *cutp = '\0';
    cg_buf_reset(&cap);
    cg_buf_reset(&body);
    capture_of(sse.data, &cap);
    assert_int_equal(cg_replay_rebuild(1, cap.data, cap.len, &body), -1);
    cg_buf_free(&sse);
    cg_buf_free(&cap);
    cg_buf_free(&body);
}

static void test_capture_bounded(void **state) {
    (void)state;
    cg_buf cap;
    cg_buf_init(&cap, 100);
    char data[60];
    memset(data, 'x', sizeof data);
    assert_int_equal(cg_replay_capture(&cap, data, sizeof data), 0);
    assert_int_equal(cg_replay_capture(&cap, data, sizeof data), -1);
    /* a malformed capture is refused, not read past its end */
    cg_buf body;
    cg_buf_init(&body, 1 << 20);
    assert_int_equal(cg_replay_rebuild(0, cap.data, cap.len - 1, &body), -1);
    assert_int_equal(cg_replay_sse(0, "not json", 8, 0, &body), -1);
    cg_buf_free(&cap);
    cg_buf_free(&body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_sse_well_formed),
        cmocka_unit_test(test_anthropic_sse_well_formed),
        cmocka_unit_test(test_openai_rebuild),
        cmocka_unit_test(test_anthropic_rebuild_round_trip),
        cmocka_unit_test(test_capture_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
