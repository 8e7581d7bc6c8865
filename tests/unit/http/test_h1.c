/* test_h1: unit tests of src/http/h1.c.
 *
 * Owns: the response parser's contract: status line and headers, the
 * framings (Content-Length, chunked with extensions and trailers, read until
 * close, none for 204 and CL 0), 1xx interim responses skipped, keep-alive
 * rules, split independence (every one- and two-way split of the input, and
 * byte at a time, give the same headers and body as one feed), the header
 * block cap, every malformation reported as an error with a reason, EOF in
 * each state, restoring a copy taken in the body (the client's pause), and
 * the URL split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

typedef struct res {
    cg_h1_event last; /* DONE, ERROR or AGAIN (input ran out) */
    int status;
    char headers[4096]; /* "name=value\n" per header */
    size_t hlen;
    char body[8192];
    size_t blen;
    int head_done;
    int keep_alive;
    char error[128];
} res;

static void app(char *dst, size_t *len, size_t cap, const char *p, size_t n) {
    assert_true(*len + n < cap);
    memcpy(dst + *len, p, n);
    *len += n;
    dst[*len] = '\0';
}

/* Feeds in[0..n) split at the given cut points; eof: then signals EOF. */
static void run(const char *in, size_t n, const size_t *cuts, int ncuts, int eof, size_t head_max,
                res *r) {
    cg_h1_parser p;
    cg_h1_init(&p, head_max);
    memset(r, 0, sizeof *r);
    size_t from = 0;
    cg_h1_event ev = CG_H1_AGAIN;
    for (int c = 0; c <= ncuts && ev != CG_H1_DONE && ev != CG_H1_ERROR; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        size_t off = from;
        for (;;) {
            size_t used;
            cg_h1_span a, b;
            ev = cg_h1_next(&p, in + off, to - off, &used, &a, &b);
            assert_true(used <= to - off);
            off += used;
            if (ev == CG_H1_HEADER) {
                app(r->headers, &r->hlen, sizeof r->headers, a.p, a.n);
                app(r->headers, &r->hlen, sizeof r->headers, "=", 1);
                app(r->headers, &r->hlen, sizeof r->headers, b.p, b.n);
                app(r->headers, &r->hlen, sizeof r->headers, "\n", 1);
            } else if (ev == CG_H1_HEAD_DONE) {
                assert_false(r->head_done);
                r->head_done = 1;
                r->status = p.status;
                assert_true(cg_h1_in_body(&p));
            } else if (ev == CG_H1_BODY) {
                assert_true(a.n > 0);
                app(r->body, &r->blen, sizeof r->body, a.p, a.n);
            } else {
                break;
            }
        }
        if (ev == CG_H1_AGAIN)
            assert_int_equal(off, to);
        from = to;
    }
    if (ev == CG_H1_AGAIN && eof)
        ev = cg_h1_eof(&p);
    r->last = ev;
    if (ev == CG_H1_DONE)
        r->keep_alive = cg_h1_keep_alive(&p);
    snprintf(r->error, sizeof r->error, "%s", ev == CG_H1_ERROR ? p.error : "");
    cg_h1_free(&p);
}

static void same(const res *a, const res *b) {
    assert_int_equal(a->last, b->last);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->headers, b->headers);
    assert_int_equal(a->blen, b->blen);
    assert_memory_equal(a->body, b->body, a->blen);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_string_equal(a->error, b->error);
}

/* Whole, byte at a time, every single cut and (pairs = 1) every two cuts. */
static void splits(const char *in, int eof, size_t head_max, int pairs, res *whole) {
    size_t n = strlen(in);
    run(in, n, NULL, 0, eof, head_max, whole);
    res *r = malloc(sizeof *r);
    assert_non_null(r);
    size_t *all = malloc((n + 1) * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++)
        all[i] = i + 1;
    run(in, n, all, (int)n, eof, head_max, r);
    same(whole, r);
    for (size_t i = 0; i <= n; i++) {
        size_t cut[1] = {i};
        run(in, n, cut, 1, eof, head_max, r);
        same(whole, r);
        for (size_t j = i; pairs && j <= n; j++) {
            size_t cut2[2] = {i, j};
            run(in, n, cut2, 2, eof, head_max, r);
            same(whole, r);
        }
    }
    free(all);
    free(r);
}

static void test_content_length(void **state) {
    (void)state;
    res r;
    splits("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
           "X-Empty:\r\nX-Sp:   padded value  \r\n\r\n{\"a\":12345}",
           0, 1u << 16, 1, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.headers, "Content-Type=application/json\nContent-Length=11\nX-Empty=\n"
                                   "X-Sp=padded value\n");
    assert_string_equal(r.body, "{\"a\":12345}");
    assert_int_equal(r.keep_alive, 1);
}

static void test_chunked_every_split(void **state) {
    (void)state;
    res r;
    const char *in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n"
                     "1;name=value;x=\"q\"\r\n,\r\n"
                     "0000006\r\n world\r\n"
                     "A\r\n0123456789\r\n"
                     "0\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n";
    splits(in, 0, 1u << 16, 1, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_string_equal(r.body, "hello, world0123456789");
    assert_string_equal(r.headers, "Transfer-Encoding=chunked\n"); /* trailers are not headers */
    assert_int_equal(r.keep_alive, 1);
    /* bare LF line ends and upper-case hex */
    splits("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\n\nB\nhello world\n0\n\n", 0,
           1u << 16, 1, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_string_equal(r.body, "hello world");
}

static void test_until_close_and_no_body(void **state) {
    (void)state;
    res r;
    splits("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", 1, 1u << 16, 1, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_string_equal(r.body, "all of it");
    assert_int_equal(r.keep_alive, 0);
    /* a coding other than chunked last: read until close */
    splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw", 1, 1u << 16, 0, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_string_equal(r.body, "raw");
    assert_int_equal(r.keep_alive, 0);
    splits("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, 1u << 16, 0, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.blen, 0);
    splits("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 1u << 16, 0, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_int_equal(r.keep_alive, 1);
}

static void test_interim_responses_skipped(void **state) {
    (void)state;
    res r;
    splits("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n"
           "Content-Length: 99\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
           "Content-Length: 2\r\n\r\n{}",
           0, 1u << 16, 1, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.headers, "Retry-After=1\nContent-Length=2\n");
    assert_string_equal(r.body, "{}");
    const char *sw = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    run(sw, strlen(sw), NULL, 0, 0, 1u << 16, &r);
    assert_int_equal(r.last, CG_H1_ERROR);
}

static void test_keep_alive_rules(void **state) {
    (void)state;
    res r;
    splits("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 1u << 16, 0, &r);
    assert_int_equal(r.keep_alive, 0);
    splits("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", 0, 1u << 16,
           0, &r);
    assert_int_equal(r.keep_alive, 1);
    splits("HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx", 0, 1u << 16,
           0, &r);
    assert_int_equal(r.keep_alive, 0);
    splits("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "1\r\nx\r\n0\r\n\r\n",
           0, 1u << 16, 0, &r);
    assert_int_equal(r.last, CG_H1_DONE);
    assert_string_equal(r.body, "x"); /* chunked wins, and the connection is not reused */
    assert_int_equal(r.keep_alive, 0);
    /* duplicate equal Content-Length headers are fine */
    splits("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 0, 1u << 16, 0,
           &r);
    assert_int_equal(r.last, CG_H1_DONE);
}

static void expect_error(const char *in, int eof, size_t head_max, const char *reason) {
    res r;
    splits(in, eof, head_max, 0, &r);
    assert_int_equal(r.last, CG_H1_ERROR);
    if (!strstr(r.error, reason))
        fail_msg("error \"%s\" does not name \"%s\" for %s", r.error, reason, in);
}

static void test_malformed(void **state) {
    (void)state;
    expect_error("HTTP/2 200\r\n\r\n", 0, 1u << 16, "status line");
    expect_error("HTTP/1.1 20 OK\r\n\r\n", 0, 1u << 16, "status line");
    expect_error("HTTP/1.1 200OK\r\n\r\n", 0, 1u << 16, "status line");
    expect_error("ICY 200 OK\r\n\r\n", 0, 1u << 16, "status line");
    expect_error("\r\nHTTP/1.1 200 OK\r\n\r\n", 0, 1u << 16, "status line");
    expect_error("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", 0, 1u << 16, "header line");
    expect_error("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", 0, 1u << 16, "header line");
    expect_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 0, 1u << 16, "header name");
    expect_error("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", 0, 1u << 16, "folded");
    expect_error("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", 0, 1u << 16, "control character");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, 1u << 16, "Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 1u << 16, "Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, 1u << 16,
                 "Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, 1u << 16,
                 "conflicting");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 1u << 16,
                 "chunk size");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", 0, 1u << 16,
                 "chunk size");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 0,
                 1u << 16, "too large");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", 0, 1u << 16,
                 "CRLF after chunk");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\rx", 0, 1u << 16,
                 "chunk size line");
}

static void test_header_cap(void **state) {
    (void)state;
    char *big = malloc(4000);
    assert_non_null(big);
    int n = snprintf(big, 4000, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(big + n, 'a', 2000);
    snprintf(big + n + 2000, 4000 - (size_t)n - 2000, "\r\nContent-Length: 0\r\n\r\n");
    expect_error(big, 0, 1024, "exceeds 1024 bytes");
    res r;
    splits(big, 0, 4096, 0, &r); /* fits a bigger cap */
    assert_int_equal(r.last, CG_H1_DONE);
    /* many small headers add up; interim responses count too */
    big[0] = '\0';
    strcat(big, "HTTP/1.1 100 Continue\r\n");
    for (int i = 0; i < 60; i++)
        strcat(big, "X-Some-Header: 0123456789\r\n");
    strcat(big, "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    expect_error(big, 0, 1024, "exceeds 1024 bytes");
    /* trailers are capped too */
    snprintf(big, 4000, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ");
    n = (int)strlen(big);
    memset(big + n, 't', 1100);
    snprintf(big + n + 1100, 4000 - (size_t)n - 1100, "\r\n\r\n");
    expect_error(big, 0, 1024, "trailers exceed");
    free(big);
}

static void test_eof_states(void **state) {
    (void)state;
    res r;
    run("", 0, NULL, 0, 1, 1024, &r);
    assert_int_equal(r.last, CG_H1_ERROR);
    assert_string_equal(r.error, "empty reply from server");
    expect_error("HTTP/1.1 200 O", 1, 1024, "inside the response headers");
    expect_error("HTTP/1.1 200 OK\r\nA: b\r\n", 1, 1024, "inside the response headers");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, 1024,
                 "7 of 10 body bytes missing");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, 1024,
                 "inside the chunked body");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 1, 1024,
                 "inside the chunked body");
}

/* The client pauses by restoring a copy taken before a body slice; parsing
 * the same bytes again from it gives the same body. */
static void test_restore_copy(void **state) {
    (void)state;
    const char *in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    size_t n = strlen(in), off = 0, used;
    cg_h1_parser p, copy;
    cg_h1_span a, b;
    cg_h1_init(&p, 1024);
    while (!cg_h1_in_body(&p)) {
        cg_h1_next(&p, in + off, n - off, &used, &a, &b);
        off += used;
    }
    char body[2][16];
    size_t bl[2] = {0, 0};
    for (int round = 0; round < 2; round++) {
        copy = p;
        size_t o = off;
        cg_h1_event ev;
        while ((ev = cg_h1_next(&p, in + o, n - o, &used, &a, &b)) == CG_H1_BODY) {
            memcpy(body[round] + bl[round], a.p, a.n);
            bl[round] += a.n;
            o += used;
        }
        o += used;
        assert_int_equal(ev, CG_H1_DONE);
        assert_int_equal(o, n);
        p = copy; /* back to the start of the body */
    }
    assert_int_equal(bl[0], 7);
    assert_int_equal(bl[1], 7);
    assert_memory_equal(body[0], "abcdefg", 7);
    assert_memory_equal(body[1], "abcdefg", 7);
    cg_h1_free(&p);
}

/* The request target of u, as sent. */
static const char *target(const cg_h1_url *u) {
    static char t[CG_H1_TARGET_MAX + 2];
    snprintf(t, sizeof t, "%s%.*s", u->slash ? "/" : "", (int)u->target_len, u->target);
    return t;
}

static void test_url(void **state) {
    (void)state;
    cg_h1_url u;
    char err[128];
    assert_int_equal(
        cg_h1_url_parse("http://127.0.0.1:8080/v1/chat/completions", &u, err, sizeof err), 0);
    assert_int_equal(u.tls, 0);
    assert_int_equal(u.port, 8080);
    assert_int_equal(u.literal, 1);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.authority, "127.0.0.1:8080");
    assert_string_equal(target(&u), "/v1/chat/completions");
    assert_int_equal(cg_h1_url_parse("HTTPS://api.openai.com/v1/x?y=1#frag", &u, err, sizeof err),
                     0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 443);
    assert_int_equal(u.literal, 0);
    assert_string_equal(u.authority, "api.openai.com");
    assert_string_equal(target(&u), "/v1/x?y=1");
    assert_int_equal(cg_h1_url_parse("https://[::1]:8443", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authority, "[::1]:8443");
    assert_string_equal(target(&u), "/");
    assert_int_equal(u.literal, 1);
    assert_int_equal(cg_h1_url_parse("http://localhost:80?q", &u, err, sizeof err), 0);
    assert_string_equal(u.authority, "localhost"); /* the default port is not repeated */
    assert_string_equal(target(&u), "/?q");
    const char *bad[] = {"ftp://x/",         "http://",        "http://:80/",      "http://a b/",
                         "http://u:p@host/", "http://host:0/", "http://h:99999/",  "http://[::1/",
                         "http://h/a b",     "http://h:8x/",   "http://h/\r\nX: y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cg_h1_url_parse(bad[i], &u, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_every_split),
        cmocka_unit_test(test_until_close_and_no_body),
        cmocka_unit_test(test_interim_responses_skipped),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_eof_states),
        cmocka_unit_test(test_restore_copy),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
