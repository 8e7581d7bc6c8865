/* test_hserve: unit tests of src/http/hserve.c and hparse.c over loopback.
 *
 * Owns: the server side's contract, with a real event loop on a thread and
 * a blocking client socket per test: keep-alive (two requests, one
 * connection), pipelined requests answered in order, a chunked request body
 * fed one byte at a time, Expect: 100-continue, a body over the limit
 * (refused with its declared size, the connection closed without a reset),
 * malformed heads (400 / 431 / 501 with a reason), streamed replies
 * (chunked for HTTP/1.1, close-delimited for HTTP/1.0), HEAD, header
 * injection refused, a client that leaves while the handler owns its
 * request (close callback), and one that half-closes (still answered).
 * Plus the parser alone on head and chunk edge cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/hserve.h"

/* ---- the server under test ------------------------------------------------ */

enum { H_ECHO = 0, H_STREAM, H_LATER, H_NEVER, H_INJECT };

typedef struct srv {
    struct event_base *base;
    cg_hserve *hs;
    pthread_t th;
    int lfd, port;
    atomic_int mode;
    atomic_int closed_calls;
    atomic_int requests;
    cg_hreq *held; /* H_LATER / H_NEVER: the request waiting for its reply */
    struct event *later;
    char seen[256]; /* what the handler saw of the last request */
} srv;

static srv S;

static void reply_later(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    if (S.held) {
        cg_hreq_add_header(S.held, "Content-Type", "text/plain");
        cg_hreq_reply(S.held, 200, "late", 4);
        S.held = NULL;
    }
}

static void on_close(void *arg) {
    (void)arg;
    atomic_fetch_add(&S.closed_calls, 1);
    if (atomic_load(&S.mode) == H_NEVER && S.held) {
        cg_hreq_abandon(S.held);
        S.held = NULL;
    }
}

static void handler(cg_hreq *r, void *arg) {
    (void)arg;
    atomic_fetch_add(&S.requests, 1);
    const char *why = "";
    int bad = cg_hreq_bad(r, &why);
    uint64_t big = 0;
    int exact = 0;
    if (bad) {
        snprintf(S.seen, sizeof S.seen, "bad %d %s", bad, why);
        cg_hreq_reply(r, bad, why, strlen(why));
        return;
    }
    if (cg_hreq_too_large(r, &big, &exact)) {
        snprintf(S.seen, sizeof S.seen, "big %llu %d", (unsigned long long)big, exact);
        cg_hreq_reply(r, 413, "too big", 7);
        return;
    }
    size_t len;
    const char *body = cg_hreq_body(r, &len);
    const char *x = cg_hreq_header(r, "X-TEST");
    snprintf(S.seen, sizeof S.seen, "%d %s x=%s len=%zu", (int)cg_hreq_method(r), cg_hreq_uri(r),
             x ? x : "-", len);
    switch (atomic_load(&S.mode)) {
    case H_ECHO:
        cg_hreq_add_header(r, "Content-Type", "application/octet-stream");
        cg_hreq_reply(r, 200, body, len);
        break;
    case H_STREAM:
        cg_hreq_start(r, 200);
        cg_hreq_chunk(r, "hello ", 6);
        cg_hreq_chunk(r, "world", 5);
        cg_hreq_end(r);
        break;
    case H_LATER: {
        S.held = r;
        cg_hreq_on_close(r, on_close, NULL);
        struct timeval tv = {0, 200000};
        evtimer_add(S.later, &tv);
        break;
    }
    case H_NEVER:
        S.held = r;
        cg_hreq_on_close(r, on_close, NULL);
        break;
    case H_INJECT:
        cg_hreq_add_header(r, "X-Ok", "fine");
        cg_hreq_add_header(r, "X-Bad", "a\r\nSet-Cookie: evil=1");
        cg_hreq_add_header(r, "X-Bad2\r\nEvil", "v");
        cg_hreq_reply(r, 200, "ok", 2);
        break;
    }
}

static void *loop_main(void *arg) {
    (void)arg;
    event_base_dispatch(S.base);
    return NULL;
}

static void stop_loop(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopexit(S.base, NULL);
}

static int setup(void **state) {
    (void)state;
    memset(&S, 0, sizeof S);
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    S.base = event_base_new();
    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(S.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(S.lfd, 64), 0);
    socklen_t sl = sizeof a;
    getsockname(S.lfd, (struct sockaddr *)&a, &sl);
    S.port = ntohs(a.sin_port);
    cg_hserve_opts o = {.max_body = 1000, .max_head = 2048, .timeout_ms = 5000};
    S.hs = cg_hserve_new(S.base, S.lfd, &o, handler, NULL);
    assert_non_null(S.hs);
    S.later = evtimer_new(S.base, reply_later, NULL);
    assert_int_equal(pthread_create(&S.th, NULL, loop_main, NULL), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    event_base_once(S.base, -1, EV_TIMEOUT, stop_loop, NULL, NULL);
    pthread_join(S.th, NULL);
    event_free(S.later);
    cg_hserve_free(S.hs);
    close(S.lfd);
    event_base_free(S.base);
    return 0;
}

/* ---- the client ----------------------------------------------------------- */

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)S.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void put(int fd, const char *s) {
    size_t n = strlen(s);
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until `want` occurs `times` times in what arrived, EOF or timeout. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want, int times) {
    size_t len = 0;
    buf[0] = '\0';
    for (;;) {
        int seen = 0;
        for (const char *p = buf; want && (p = strstr(p, want)) != NULL; p += strlen(want))
            seen++;
        if (want && seen >= times)
            break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

static void test_keep_alive(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    int fd = dial();
    char buf[8192];
    put(fd, "POST /a?q=1 HTTP/1.1\r\nHost: x\r\nx-test: one\r\nContent-Length: 5\r\n\r\nhello");
    read_until(fd, buf, sizeof buf, "hello", 1);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Length: 5\r\n"));
    assert_non_null(strstr(buf, "\r\nDate: "));
    assert_null(strstr(buf, "Connection: close"));
    assert_string_equal(S.seen, "3 /a?q=1 x=one len=5");
    /* the same connection again, header any case */
    put(fd, "GET /b HTTP/1.1\r\nX-Test:  two  \r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n", 1);
    assert_non_null(strstr(buf, "Content-Length: 0\r\n"));
    assert_string_equal(S.seen, "1 /b x=two len=0");
    close(fd);
}

static void test_pipelined(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    int fd = dial();
    char buf[8192];
    put(fd, "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nonePOST /2 HTTP/1.1\r\nContent-Length: "
            "3\r\n\r\ntwoGET /3 HTTP/1.1\r\nConnection: close\r\n\r\n");
    size_t n = read_until(fd, buf, sizeof buf, NULL, 0); /* until the close */
    assert_true(n > 0);
    char *one = strstr(buf, "one"), *two = strstr(buf, "two"),
         *cl = strstr(buf, "Connection: close");
    assert_non_null(one);
    assert_non_null(two);
    assert_non_null(cl);
    assert_true(one < two && two < cl);
    close(fd);
}

static void test_chunked_request_byte_by_byte(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    int fd = dial();
    char buf[8192];
    const char *req = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n";
    for (const char *p = req; *p; p++) {
        assert_int_equal(send(fd, p, 1, MSG_NOSIGNAL), 1);
        usleep(200);
    }
    read_until(fd, buf, sizeof buf, "hello world", 1);
    assert_non_null(strstr(buf, "Content-Length: 11\r\n\r\nhello world"));
    close(fd);
}

static void test_expect_continue(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    int fd = dial();
    char buf[8192];
    put(fd, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n", 1);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    put(fd, "body");
    read_until(fd, buf, sizeof buf, "body", 1);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    close(fd);
}

static void test_too_large(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    int fd = dial();
    char buf[8192];
    put(fd, "POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    /* the client keeps sending its body: no reset, the answer is readable */
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send(fd, chunk, sizeof chunk, MSG_NOSIGNAL), (ssize_t)sizeof chunk);
    size_t n = read_until(fd, buf, sizeof buf, NULL, 0);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 413 Payload Too Large\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_string_equal(S.seen, "big 5000 1");
    close(fd);
    /* chunked over the limit: the size is a lower bound */
    fd = dial();
    put(fd, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n");
    for (int i = 0; i < 2; i++)
        send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
    read_until(fd, buf, sizeof buf, NULL, 0);
    assert_non_null(strstr(buf, "413"));
    assert_int_equal(strncmp(S.seen, "big ", 4), 0);
    assert_int_equal(S.seen[strlen(S.seen) - 1], '0'); /* not exact */
    close(fd);
}

static void check_bad(const char *req, const char *status, const char *why) {
    int fd = dial();
    char buf[8192];
    put(fd, req);
    read_until(fd, buf, sizeof buf, NULL, 0);
    if (!strstr(buf, status))
        print_error("request %.40s: got %.200s\n", req, buf);
    assert_non_null(strstr(buf, status));
    assert_non_null(strstr(buf, "Connection: close"));
    assert_non_null(strstr(S.seen, why));
    close(fd);
}

static void test_malformed(void **state) {
    (void)state;
    atomic_store(&S.mode, H_ECHO);
    check_bad("GARBAGE\r\n\r\n", "HTTP/1.1 400 ", "malformed request line");
    check_bad("GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505 ", "unsupported HTTP version");
    check_bad("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 ",
              "Transfer-Encoding");
    check_bad("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
              "HTTP/1.1 400 ", "both Content-Length and Transfer-Encoding");
    check_bad("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
              "HTTP/1.1 400 ", "conflicting Content-Length");
    check_bad("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", "HTTP/1.1 400 ", "header name");
    check_bad("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "HTTP/1.1 400 ", "folding");
    char big[4096];
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: %03000d\r\n\r\n", 0);
    check_bad(big, "HTTP/1.1 431 ", "too large");
    /* the server still serves */
    int fd = dial();
    char buf[1024];
    put(fd, "GET /ok HTTP/1.1\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n", 1);
    assert_non_null(strstr(buf, "200 OK"));
    close(fd);
}

static void test_stream_and_head(void **state) {
    (void)state;
    atomic_store(&S.mode, H_STREAM);
    int fd = dial();
    char buf[8192];
    put(fd, "GET /s HTTP/1.1\r\n\r\n");
    read_until(fd, buf, sizeof buf, "0\r\n\r\n", 1);
    assert_non_null(strstr(buf, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"));
    close(fd);
    /* HTTP/1.0: no chunked framing, the close ends the body */
    fd = dial();
    put(fd, "GET /s HTTP/1.0\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL, 0);
    assert_null(strstr(buf, "chunked"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\nhello world"));
    close(fd);
    /* HEAD: the length, no body */
    atomic_store(&S.mode, H_INJECT);
    fd = dial();
    put(fd, "HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL, 0);
    assert_non_null(strstr(buf, "Content-Length: 2\r\n"));
    char *end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end + 4, "");
    close(fd);
}

static void test_header_injection_dropped(void **state) {
    (void)state;
    atomic_store(&S.mode, H_INJECT);
    int fd = dial();
    char buf[8192];
    put(fd, "GET /i HTTP/1.1\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\nok", 1);
    assert_non_null(strstr(buf, "X-Ok: fine\r\n"));
    assert_null(strstr(buf, "evil"));
    assert_null(strstr(buf, "Evil"));
    close(fd);
}

static void wait_for(atomic_int *v, int want) {
    for (int i = 0; i < 300 && atomic_load(v) < want; i++)
        usleep(10000);
}

static void test_client_leaves_and_half_close(void **state) {
    (void)state;
    /* leaves while the handler owns the request: the close callback runs */
    atomic_store(&S.mode, H_NEVER);
    int c0 = atomic_load(&S.closed_calls);
    int fd = dial();
    put(fd, "GET /gone HTTP/1.1\r\n\r\n");
    usleep(50000);
    close(fd);
    wait_for(&S.closed_calls, c0 + 1);
    assert_int_equal(atomic_load(&S.closed_calls), c0 + 1);
    /* half-close: counted as gone, still answered */
    atomic_store(&S.mode, H_LATER);
    fd = dial();
    char buf[4096];
    put(fd, "GET /half HTTP/1.1\r\n\r\n");
    shutdown(fd, SHUT_WR);
    read_until(fd, buf, sizeof buf, NULL, 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "\r\n\r\nlate"));
    assert_int_equal(atomic_load(&S.closed_calls), c0 + 2);
    close(fd);
}

/* ---- the parser alone ------------------------------------------------------ */

static void test_parser(void **state) {
    (void)state;
    size_t scan = 0;
    const char *s = "GET / HTTP/1.1\r\nA: b\r";
    assert_int_equal(cg_hp_head_end(s, strlen(s), &scan), 0);
    s = "GET / HTTP/1.1\r\nA: b\r\n\r\nrest";
    assert_int_equal(cg_hp_head_end(s, strlen(s), &scan), strlen(s) - 4);
    scan = 0;
    s = "GET / HTTP/1.0\nA: b\n\n";
    assert_int_equal(cg_hp_head_end(s, strlen(s), &scan), strlen(s));

    char h[] = "\r\nPOST /x HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 12\r\n"
               "Expect: 100-continue\r\nEmpty:\r\n\r\n";
    cg_hp_head hd;
    const char *why;
    assert_int_equal(cg_hp_parse_head(h, strlen(h), &hd, &why), 0);
    assert_int_equal(hd.method, CG_HM_POST);
    assert_int_equal(hd.minor, 0);
    assert_int_equal(hd.keep_alive, 1);
    assert_int_equal(hd.content_length, 12);
    assert_int_equal(hd.expect_continue, 1);
    assert_string_equal(h + hd.target_off, "/x");
    assert_string_equal(cg_hp_find(h, &hd, "empty"), "");
    assert_null(cg_hp_find(h, &hd, "missing"));

    char te10[] = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(cg_hp_parse_head(te10, strlen(te10), &hd, &why), 400);
    char cl[] = "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n";
    assert_int_equal(cg_hp_parse_head(cl, strlen(cl), &hd, &why), 400);

    /* chunked: bad size, an oversized extension, a size past the bound */
    cg_hp_chunked d;
    cg_buf out;
    cg_buf_init(&out, 16);
    size_t used;
    int over = 0;
    cg_hp_chunked_init(&d);
    assert_int_equal(cg_hp_chunked_feed(&d, "zz\r\n", 4, &used, &out, &over), CG_HP_ERROR);
    cg_hp_chunked_init(&d);
    assert_int_equal(cg_hp_chunked_feed(&d, "ffffffffffffffffff\r\n", 20, &used, &out, &over),
                     CG_HP_ERROR);
    cg_hp_chunked_init(&d);
    char ext[5000];
    memset(ext, 'e', sizeof ext);
    ext[0] = '1';
    ext[1] = ';';
    assert_int_equal(cg_hp_chunked_feed(&d, ext, sizeof ext, &used, &out, &over), CG_HP_ERROR);
    /* over the cap: counted, flagged, not stored */
    cg_hp_chunked_init(&d);
    cg_buf_reset(&out);
    const char *big = "14\r\n01234567890123456789\r\n0\r\n\r\nNEXT";
    assert_int_equal(cg_hp_chunked_feed(&d, big, strlen(big), &used, &out, &over), CG_HP_DONE);
    assert_int_equal(over, 1);
    assert_int_equal(d.total, 20);
    assert_int_equal(used, strlen(big) - 4);
    cg_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_chunked_request_byte_by_byte),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_stream_and_head),
        cmocka_unit_test(test_header_injection_dropped),
        cmocka_unit_test(test_client_leaves_and_half_close),
        cmocka_unit_test(test_parser),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
