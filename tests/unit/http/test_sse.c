/* test_sse: unit tests of src/http/sse.c.
 *
 * Owns: the incremental SSE parser's contract: events split on blank lines
 * with LF, CRLF and CR line ends (and mixes), comment lines, multi-line data
 * joined with '\n', the optional space after the colon, event names (and their
 * truncation), ignored fields, exact raw bytes (emitted raw + pending == what
 * was fed), chunking independence (byte-at-a-time and every two-way split
 * give the same events as feeding all at once), the per-event cap (-1) and
 * propagation of the callback's stop value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"

#define MAX_EV 32

typedef struct rec {
    int n;
    char raw[MAX_EV][512];
    size_t raw_len[MAX_EV];
    char event[MAX_EV][80];
    char data[MAX_EV][512];
    size_t data_len[MAX_EV];
    int stop_at; /* return stop_rc from the stop_at-th event (1-based); 0 = never */
    int stop_rc;
} rec;

static int cb(void *arg, const cg_sse_event *ev) {
    rec *r = arg;
    if (r->n >= MAX_EV)
        fail_msg("too many events");
    assert_true(ev->raw_len < sizeof r->raw[0]);
    assert_true(ev->data_len < sizeof r->data[0]);
    assert_int_equal(strlen(ev->event), ev->event_len);
    memcpy(r->raw[r->n], ev->raw, ev->raw_len);
    r->raw_len[r->n] = ev->raw_len;
    memcpy(r->event[r->n], ev->event, ev->event_len + 1);
    memcpy(r->data[r->n], ev->data, ev->data_len);
    r->data[r->n][ev->data_len] = '\0';
    r->data_len[r->n] = ev->data_len;
    r->n++;
    return r->stop_at && r->n == r->stop_at ? r->stop_rc : 0;
}

/* Feeds s in pieces of `step` bytes (0 = all at once) into a fresh parser. */
static rec *feed(const char *s, size_t n, size_t step, size_t *pending) {
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    cg_sse p;
    cg_sse_init(&p, 1u << 16);
    if (step == 0)
        step = n ? n : 1;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        assert_int_equal(cg_sse_feed(&p, s + off, k, cb, r), 0);
    }
    if (pending)
        *pending = cg_sse_pending(&p);
    /* raw exactness: emitted raw bytes then the pending bytes are the input */
    size_t off = 0;
    for (int i = 0; i < r->n; i++) {
        assert_true(off + r->raw_len[i] <= n);
        assert_memory_equal(r->raw[i], s + off, r->raw_len[i]);
        off += r->raw_len[i];
    }
    assert_int_equal(off + cg_sse_pending(&p), n);
    if (cg_sse_pending(&p))
        assert_memory_equal(p.pending.data, s + off, cg_sse_pending(&p));
    cg_sse_free(&p);
    return r;
}

static void same_events(const rec *a, const rec *b, const char *what) {
    if (a->n != b->n)
        fail_msg("%s: %d events vs %d", what, a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        if (a->raw_len[i] != b->raw_len[i] || memcmp(a->raw[i], b->raw[i], a->raw_len[i]) ||
            strcmp(a->event[i], b->event[i]) || a->data_len[i] != b->data_len[i] ||
            memcmp(a->data[i], b->data[i], a->data_len[i]))
            fail_msg("%s: event %d differs (data \"%s\" vs \"%s\")", what, i, a->data[i],
                     b->data[i]);
    }
}

/* All at once, one byte at a time, and every split in two: same events. */
static rec *parse_all_ways(const char *s) {
    size_t n = strlen(s), pend_whole, pend;
    rec *whole = feed(s, n, 0, &pend_whole);
    rec *r = feed(s, n, 1, &pend);
    same_events(whole, r, "byte at a time");
    assert_int_equal(pend, pend_whole);
    free(r);
    for (size_t cut = 1; cut < n; cut++) {
        rec *two = calloc(1, sizeof *two);
        assert_non_null(two);
        cg_sse p;
        cg_sse_init(&p, 1u << 16);
        assert_int_equal(cg_sse_feed(&p, s, cut, cb, two), 0);
        assert_int_equal(cg_sse_feed(&p, s + cut, n - cut, cb, two), 0);
        char what[64];
        snprintf(what, sizeof what, "split at %zu", cut);
        same_events(whole, two, what);
        assert_int_equal(cg_sse_pending(&p), pend_whole);
        cg_sse_free(&p);
        free(two);
    }
    return whole;
}

static const char *const OAI_LF =
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static char *replace_eol(const char *s, const char *eol) {
    size_t el = strlen(eol);
    char *out = malloc(strlen(s) * el + 1);
    assert_non_null(out);
    char *o = out;
    for (; *s; s++) {
        if (*s == '\n') {
            memcpy(o, eol, el);
            o += el;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static void check_oai_events(const rec *r) {
    assert_int_equal(r->n, 3);
    assert_string_equal(r->data[0],
                        "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}");
    assert_string_equal(r->data[1],
                        "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3}}");
    assert_string_equal(r->data[2], "[DONE]");
    for (int i = 0; i < 3; i++)
        assert_string_equal(r->event[i], "");
}

static void test_lf(void **state) {
    (void)state;
    rec *r = parse_all_ways(OAI_LF);
    check_oai_events(r);
    assert_int_equal(r->raw_len[2], strlen("data: [DONE]\n\n"));
    free(r);
}

static void test_crlf(void **state) {
    (void)state;
    char *s = replace_eol(OAI_LF, "\r\n");
    rec *r = parse_all_ways(s);
    check_oai_events(r);
    assert_memory_equal(r->raw[2], "data: [DONE]\r\n\r\n", 16);
    free(r);
    free(s);
}

static void test_cr(void **state) {
    (void)state;
    char *s = replace_eol(OAI_LF, "\r");
    size_t pend;
    rec *r = feed(s, strlen(s), 0, &pend);
    /* a final CR might still be followed by LF: the last event waits */
    assert_int_equal(r->n, 2);
    assert_int_equal(pend, strlen("data: [DONE]\r\r"));
    free(r);
    /* any next byte settles it */
    char *s2 = malloc(strlen(s) + 2);
    assert_non_null(s2);
    sprintf(s2, "%s:", s);
    r = parse_all_ways(s2);
    check_oai_events(r);
    assert_memory_equal(r->raw[2], "data: [DONE]\r\r", 14);
    free(r);
    free(s2);
    free(s);
}

/* Regression: a CRLF stream cut right after "\r\n\r" merged the event with
 * the next one (the scan resumed past the blank line's first terminator),
 * so an OpenAI usage chunk and [DONE] arrived as one unparsable event. */
static void test_crlf_split_inside_blank_line(void **state) {
    (void)state;
    const char *a = "data: {\"usage\":{\"prompt_tokens\":9}}\r\n\r";
    const char *b = "\ndata: [DONE]\r\n\r\n";
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    cg_sse p;
    cg_sse_init(&p, 4096);
    assert_int_equal(cg_sse_feed(&p, a, strlen(a), cb, r), 0);
    assert_int_equal(r->n, 0);
    assert_int_equal(cg_sse_feed(&p, b, strlen(b), cb, r), 0);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->data[0], "{\"usage\":{\"prompt_tokens\":9}}");
    assert_string_equal(r->data[1], "[DONE]");
    assert_int_equal(cg_sse_pending(&p), 0);
    cg_sse_free(&p);
    free(r);
    /* the same with LF then CR as the blank line */
    rec *m = parse_all_ways("data: a\n\rdata: b\n\r\n");
    assert_int_equal(m->n, 2);
    assert_string_equal(m->data[0], "a");
    assert_string_equal(m->data[1], "b");
    free(m);
}

static void test_mixed_eol(void **state) {
    (void)state;
    rec *r = parse_all_ways("data: a\r\n\r\n"
                            "data: b\n\n"
                            "data: c\r\r"
                            "data: d\r\n\n"
                            "data: e\n\r\n"
                            "data: f\n\r"
                            "data: g\r\n\r\n");
    assert_int_equal(r->n, 7);
    const char *want[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 7; i++)
        assert_string_equal(r->data[i], want[i]);
    free(r);
}

static void test_comments(void **state) {
    (void)state;
    rec *r = parse_all_ways(": keep-alive\n"
                            "\n"
                            "event: message_start\n"
                            ": a comment between fields\n"
                            "data: x\n"
                            "\n"
                            ":\n"
                            "\n");
    assert_int_equal(r->n, 3);
    /* a comment-only block is still an event (forwarded as is), with no data */
    assert_string_equal(r->event[0], "");
    assert_int_equal(r->data_len[0], 0);
    assert_memory_equal(r->raw[0], ": keep-alive\n\n", 14);
    assert_string_equal(r->event[1], "message_start");
    assert_string_equal(r->data[1], "x");
    assert_int_equal(r->data_len[2], 0);
    free(r);
}

static void test_multiline_data(void **state) {
    (void)state;
    rec *r = parse_all_ways("data: {\"a\":\n"
                            "data: 1}\n"
                            "\n"
                            "data:first\n"
                            "data:\n"
                            "data:  third\n"
                            "\n"
                            "data\n"
                            "\n"
                            "data:x\r\n"
                            "data:y\r\n"
                            "\r\n");
    assert_int_equal(r->n, 4);
    assert_string_equal(r->data[0], "{\"a\":\n1}");
    /* only the first space after the colon is removed; empty lines count */
    assert_string_equal(r->data[1], "first\n\n third");
    assert_int_equal(r->data_len[2], 0); /* "data" alone: an empty value */
    assert_string_equal(r->data[3], "x\ny");
    free(r);
}

static void test_event_names(void **state) {
    (void)state;
    char long_name[200];
    memset(long_name, 'n', 100);
    long_name[100] = '\0';
    char s[512];
    snprintf(s, sizeof s,
             "event: message_delta\n"
             "data: {\"usage\":{\"output_tokens\":15}}\n"
             "\n"
             "data: no name here\n"
             "\n"
             "event:nospace\n"
             "\n"
             "event: first\n"
             "event: second\n"
             "data: d\n"
             "\n"
             "event: %s\n"
             "\n",
             long_name);
    rec *r = parse_all_ways(s);
    assert_int_equal(r->n, 5);
    assert_string_equal(r->event[0], "message_delta");
    assert_string_equal(r->data[0], "{\"usage\":{\"output_tokens\":15}}");
    assert_string_equal(r->event[1], ""); /* names do not leak into the next event */
    assert_string_equal(r->event[2], "nospace");
    assert_int_equal(r->data_len[2], 0);
    assert_string_equal(r->event[3], "second"); /* the last one wins */
    assert_int_equal(strlen(r->event[4]), 63);  /* truncated to the buffer */
    free(r);
}

static void test_other_fields_ignored(void **state) {
    (void)state;
    rec *r = parse_all_ways("id: 42\n"
                            "retry: 3000\n"
                            "foo: bar\n"
                            "event : spaced\n"
                            " data: leading space\n"
                            "data: kept\n"
                            "\n");
    assert_int_equal(r->n, 1);
    assert_string_equal(r->event[0], ""); /* "event " is not "event" */
    assert_string_equal(r->data[0], "kept");
    free(r);
}

static void test_pending(void **state) {
    (void)state;
    const char *s = "data: one\n\ndata: two\n";
    size_t pend;
    rec *r = feed(s, strlen(s), 0, &pend);
    assert_int_equal(r->n, 1);
    assert_int_equal(pend, strlen("data: two\n")); /* a cut stream leaves these */
    free(r);
    r = feed("", 0, 0, &pend);
    assert_int_equal(r->n, 0);
    assert_int_equal(pend, 0);
    free(r);
}

static void test_raw_exact(void **state) {
    (void)state;
    const char *s = ": c\r\n"
                    "event: x\r\n"
                    "data: 1\r\n"
                    "\r\n"
                    "data: \xf0\x9f\x90\xb1\n"
                    "\n"
                    "\n"
                    "\n"
                    "data: tail";
    rec *r = parse_all_ways(s);
    assert_int_equal(r->n, 3);
    assert_memory_equal(r->raw[0], ": c\r\nevent: x\r\ndata: 1\r\n\r\n", 26);
    assert_string_equal(r->data[1], "\xf0\x9f\x90\xb1");
    assert_int_equal(r->raw_len[2], 2); /* a bare blank line pair */
    free(r);
}

static void test_binary_bytes(void **state) {
    (void)state;
    const char s[] = "data: a\0b\n\n";
    size_t pend;
    rec *r = feed(s, sizeof s - 1, 1, &pend);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->data_len[0], 3);
    assert_memory_equal(r->data[0], "a\0b", 3);
    free(r);
}

static void test_cap_exceeded(void **state) {
    (void)state;
    rec r;
    memset(&r, 0, sizeof r);
    cg_sse p;
    cg_sse_init(&p, 16);
    /* events under the cap pass, however many */
    for (int i = 0; i < 5; i++)
        assert_int_equal(cg_sse_feed(&p, "data: 12345\n\n", 13, cb, &r), 0);
    assert_int_equal(r.n, 5);
    /* one event that grows past 16 bytes */
    assert_int_equal(cg_sse_feed(&p, "data: 1234", 10, cb, &r), 0);
    assert_int_equal(cg_sse_feed(&p, "5678", 4, cb, &r), 0);
    assert_int_equal(cg_sse_feed(&p, "9ab", 3, cb, &r), -1);
    assert_int_equal(r.n, 5);
    assert_true(cg_sse_pending(&p) <= 16);
    cg_sse_free(&p);

    cg_sse_init(&p, 8);
    assert_int_equal(cg_sse_feed(&p, "data: 123456\n\n", 14, cb, &r), -1); /* one big chunk */
    cg_sse_free(&p);
}

static void test_stop_value_propagates(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->stop_at = 1;
    r->stop_rc = 42;
    cg_sse p;
    cg_sse_init(&p, 4096);
    const char *s = "data: a\n\ndata: b\n\ndata: c\n";
    assert_int_equal(cg_sse_feed(&p, s, strlen(s), cb, r), 42);
    assert_int_equal(r->n, 1); /* stopped right after the first event */
    assert_string_equal(r->data[0], "a");
    /* nothing after it was consumed: its bytes stay pending */
    assert_int_equal(cg_sse_pending(&p), strlen(s) - strlen("data: a\n\n"));
    assert_memory_equal(p.pending.data, "data: b\n\ndata: c\n", cg_sse_pending(&p));
    cg_sse_free(&p);

    /* a negative value is passed through too */
    memset(r, 0, sizeof *r);
    r->stop_at = 2;
    r->stop_rc = -7;
    cg_sse_init(&p, 4096);
    assert_int_equal(cg_sse_feed(&p, s, strlen(s), cb, r), -7);
    assert_int_equal(r->n, 2);
    cg_sse_free(&p);
    free(r);
}

static void test_anthropic_stream_chunked(void **state) {
    (void)state;
    const char *lf =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,"
        "\"output_tokens\":1}}}\n"
        "\n"
        "event: ping\n"
        "data: {\"type\": \"ping\"}\n"
        "\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"text_delta\",\"text\":\"Hello\"}}\n"
        "\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n"
        "\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n"
        "\n";
    const char *eols[] = {"\n", "\r\n", "\r"};
    for (int e = 0; e < 3; e++) {
        char *s = replace_eol(lf, eols[e]);
        char *s2 = malloc(strlen(s) + 2);
        assert_non_null(s2);
        sprintf(s2, "%s:", s); /* settles a trailing CR */
        rec *r = parse_all_ways(s2);
        assert_int_equal(r->n, 5);
        const char *names[] = {"message_start", "ping", "content_block_delta", "message_delta",
                               "message_stop"};
        for (int i = 0; i < 5; i++)
            assert_string_equal(r->event[i], names[i]);
        assert_string_equal(r->data[4], "{\"type\":\"message_stop\"}");
        free(r);
        free(s2);
        free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_cr),
        cmocka_unit_test(test_crlf_split_inside_blank_line),
        cmocka_unit_test(test_mixed_eol),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_other_fields_ignored),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_raw_exact),
        cmocka_unit_test(test_binary_bytes),
        cmocka_unit_test(test_cap_exceeded),
        cmocka_unit_test(test_stop_value_propagates),
        cmocka_unit_test(test_anthropic_stream_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
