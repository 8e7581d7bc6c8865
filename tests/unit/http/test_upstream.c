/* test_upstream: unit tests of src/http/upstream.c over loopback.
 *
 * Owns: the client's contract against a small HTTP/1.1 server running on the
 * same event loop (scenario per test): keep-alive reuse (one connection for
 * sequential calls), a stale pooled connection retried once on a fresh one
 * (and not retried once a response byte arrived), the pool's idle expiry and
 * max_conns bound, chunked bodies handed over one batch per read, a large
 * body, read-until-close, pause and resume (the held bytes come again,
 * nothing lost or doubled), abort and cancel, the first-byte and idle
 * timeouts, an oversized header block and a malformed response (errors with
 * a reason), connect refused, a bad URL reported from the loop (never from
 * inside start), async DNS of "localhost", and the request bytes the server
 * sees (method, target, Host, Content-Length, headers, body).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/upstream.h"

/* ---- the server ----------------------------------------------------------- */

enum {
    M_OK = 0,
    M_CHUNKS,         /* 40 small chunks in one write */
    M_CLOSE_SECOND,   /* connection 1 closes on its second request, unanswered */
    M_PARTIAL_SECOND, /* ... after sending a status line */
    M_BIG_HEADERS,    /* a 70 KB header block */
    M_SILENT,         /* never answers */
    M_STALL,          /* headers and half the body, then nothing */
    M_MALFORMED,
    M_UNTIL_CLOSE, /* no framing: body, then close */
    M_LARGE,       /* a 700 KB body */
};

#define LARGE_N (700u << 10)

#define SRV_CONNS 64

typedef struct sconn sconn;

typedef struct srv {
    struct event_base *base;
    struct evconnlistener *lis;
    int port;
    int mode;
    int nconn, nreq, nclosed;
    sconn *conns[SRV_CONNS]; /* open ones, by id - 1 */
    char last_req[8192];
} srv;

struct sconn {
    srv *s;
    struct bufferevent *bev;
    int id, nreq;
};

static void s_close(struct bufferevent *bev) {
    sconn *c = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, (void **)&c);
    c->s->nclosed++;
    c->s->conns[c->id - 1] = NULL;
    free(c);
    bufferevent_free(bev);
}

static void s_write_then_close(struct bufferevent *bev, void *arg) {
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        s_close(bev);
}

static void s_event(struct bufferevent *bev, short what, void *arg) {
    (void)what;
    (void)arg;
    s_close(bev);
}

/* Answers one request; 1 when it closed the connection at once. */
static int respond(struct bufferevent *bev, sconn *c) {
    srv *s = c->s;
    struct evbuffer *out = bufferevent_get_output(bev);
    char body[64];
    int bn = snprintf(body, sizeof body, "hello %d/%d", c->id, c->nreq);
    switch (s->mode) {
    case M_CLOSE_SECOND:
    case M_PARTIAL_SECOND:
        if (c->id == 1 && c->nreq == 2) {
            if (s->mode == M_CLOSE_SECOND) {
                s_close(bev);
                return 1;
            }
            evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n");
            bufferevent_setcb(bev, NULL, s_write_then_close, s_event, c);
            return 0;
        }
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bn, body);
        return 0;
    case M_CHUNKS:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 40; i++)
            evbuffer_add_printf(out, "%x\r\ndata: %02d\n\n\r\n", 10, i);
        evbuffer_add_printf(out, "0\r\n\r\n");
        return 0;
    case M_BIG_HEADERS:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < 700; i++)
            evbuffer_add_printf(out, "X-Filler-%03d: %0100d\r\n", i, 0);
        evbuffer_add_printf(out, "Content-Length: 2\r\n\r\nok");
        return 0;
    case M_SILENT:
        return 0;
    case M_STALL:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.");
        return 0;
    case M_MALFORMED:
        evbuffer_add_printf(out, "HTTP/1.1 abc\r\n\r\n");
        return 0;
    case M_UNTIL_CLOSE:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n\r\n%s", body);
        bufferevent_setcb(bev, NULL, s_write_then_close, s_event, c);
        return 0;
    case M_LARGE: {
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", LARGE_N);
        char *big = malloc(LARGE_N);
        assert_non_null(big);
        for (size_t i = 0; i < LARGE_N; i++)
            big[i] = (char)('a' + i % 26);
        evbuffer_add(out, big, LARGE_N);
        free(big);
        return 0;
    }
    default:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Conn: %d\r\n\r\n%s",
                            bn, c->id, body);
        return 0;
    }
}

static void s_read(struct bufferevent *bev, void *arg) {
    sconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (e.pos < 0)
            return;
        size_t head = (size_t)e.pos + 4;
        char *h = (char *)evbuffer_pullup(in, (ev_ssize_t)head);
        size_t cl = 0;
        const char *p = memmem(h, head, "Content-Length: ", 16);
        if (p)
            cl = strtoul(p + 16, NULL, 10); /* digits, then CR: stops inside the head */
        if (evbuffer_get_length(in) < head + cl)
            return;
        size_t keep = head + cl < sizeof c->s->last_req ? head + cl : sizeof c->s->last_req - 1;
        evbuffer_copyout(in, c->s->last_req, keep);
        c->s->last_req[keep] = '\0';
        evbuffer_drain(in, head + cl);
        c->nreq++;
        c->s->nreq++;
        if (respond(bev, c))
            return; /* bev is gone */
    }
}

static void s_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                     void *arg) {
    (void)l;
    (void)sa;
    (void)len;
    srv *s = arg;
    sconn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->s = s;
    c->id = ++s->nconn;
    assert_true(c->id <= SRV_CONNS);
    s->conns[c->id - 1] = c;
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->bev = bev;
    bufferevent_setcb(bev, s_read, NULL, s_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int listen_port(struct evconnlistener *l) {
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl);
    return ntohs(sin.sin_port);
}

static void srv_start(srv *s, struct event_base *base, int mode) {
    memset(s, 0, sizeof *s);
    s->base = base;
    s->mode = mode;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lis = evconnlistener_new_bind(base, s_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     16, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(s->lis);
    s->port = listen_port(s->lis);
}

/* ---- the client side ------------------------------------------------------ */

typedef struct got {
    int done;
    cg_up_result res;
    char detail[256];
    long status;
    char *body;
    size_t blen, bcap;
    int ndata;
    int pauses; /* answer PAUSE this many times (resumed from a timer) */
    int abort;
    char conn_hdr[16];
    cg_up_call *call;
    struct event *resume_ev;
} got;

static void on_header(void *arg, const char *n, size_t nl, const char *v, size_t vl) {
    got *g = arg;
    if (nl == 6 && strncasecmp(n, "X-Conn", 6) == 0 && vl < sizeof g->conn_hdr) {
        memcpy(g->conn_hdr, v, vl);
        g->conn_hdr[vl] = '\0';
    }
}

static void on_headers_done(void *arg, long status) {
    ((got *)arg)->status = status;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    got *g = arg;
    cg_upstream_resume(g->call);
}

static int on_data(void *arg, const char *p, size_t n) {
    got *g = arg;
    g->ndata++;
    if (g->abort)
        return CG_UP_ABORT;
    if (g->pauses > 0) {
        g->pauses--;
        struct timeval tv = {0, 1000};
        evtimer_add(g->resume_ev, &tv);
        return CG_UP_PAUSE;
    }
    if (g->blen + n > g->bcap) {
        g->bcap = (g->blen + n) * 2;
        g->body = realloc(g->body, g->bcap + 1);
        assert_non_null(g->body);
    }
    memcpy(g->body + g->blen, p, n);
    g->blen += n;
    g->body[g->blen] = '\0';
    return CG_UP_CONTINUE;
}

static void on_done(void *arg, cg_up_result res, const char *detail) {
    got *g = arg;
    g->done = 1;
    g->res = res;
    snprintf(g->detail, sizeof g->detail, "%s", detail ? detail : "");
}

static const cg_up_callbacks CB = {on_header, on_headers_done, on_data, on_done};

typedef struct fixture {
    struct event_base *base;
    cg_upstream *u;
    srv s;
    struct event *guard;
    int guard_fired;
} fixture;

static void guard_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ((fixture *)arg)->guard_fired = 1;
}

static void fx_init(fixture *f, int mode, long max_conns) {
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->u = cg_upstream_new(f->base, max_conns);
    assert_non_null(f->u);
    srv_start(&f->s, f->base, mode);
    f->guard = evtimer_new(f->base, guard_cb, f);
}

static void fx_free(fixture *f) {
    cg_upstream_free(f->u);
    evconnlistener_free(f->s.lis);
    for (int i = 0; i < SRV_CONNS; i++)
        if (f->s.conns[i])
            s_close(f->s.conns[i]->bev);
    event_free(f->guard);
    event_base_free(f->base);
}

/* Runs the loop until *flag (a generous guard turns a hang into a failure). */
static void run_until(fixture *f, const int *flag) {
    struct timeval tv = {20, 0};
    evtimer_add(f->guard, &tv);
    while (!*flag && !f->guard_fired)
        event_base_loop(f->base, EVLOOP_ONCE);
    evtimer_del(f->guard);
    if (f->guard_fired)
        fail_msg("the loop did not reach the expected state");
}

static void got_init(fixture *f, got *g) {
    memset(g, 0, sizeof *g);
    g->resume_ev = evtimer_new(f->base, resume_cb, g);
}

static void got_free(got *g) {
    free(g->body);
    event_free(g->resume_ev);
}

static void call(fixture *f, got *g, const char *url, int fb_ms, int idle_ms) {
    static const char body[] = "{\"model\":\"m\"}";
    cg_up_headers h = {0};
    assert_int_equal(cg_up_headers_add(&h, "Content-Type", "application/json"), 0);
    assert_int_equal(cg_up_headers_add(&h, "Authorization", "Bearer sk-x"), 0);
    char u[256];
    if (!url) {
        snprintf(u, sizeof u, "http://127.0.0.1:%d/v1/chat/completions?x=1", f->s.port);
        url = u;
    }
    cg_up_opts o = {.url = url,
                    .headers = &h,
                    .body = body,
                    .body_len = strlen(body),
                    .connect_timeout_ms = 5000,
                    .first_byte_timeout_ms = fb_ms,
                    .idle_timeout_ms = idle_ms};
    g->call = cg_upstream_start(f->u, &o, &CB, g);
    assert_non_null(g->call);
    assert_int_equal(g->done, 0); /* never from inside start */
    run_until(f, &g->done);
    cg_up_headers_free(&h);
}

static void test_keep_alive_and_request_bytes(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_OK, 16);
    for (int i = 1; i <= 5; i++) {
        got g;
        got_init(&f, &g);
        call(&f, &g, NULL, 5000, 5000);
        assert_int_equal(g.res, CG_UP_OK);
        assert_int_equal(g.status, 200);
        char want[32];
        snprintf(want, sizeof want, "hello 1/%d", i);
        assert_string_equal(g.body, want);
        assert_string_equal(g.conn_hdr, "1");
        got_free(&g);
    }
    assert_int_equal(f.s.nconn, 1);
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 4);
    assert_int_equal(st.idle, 1);
    char want[512];
    snprintf(want, sizeof want,
             "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 13\r\nContent-Type: application/json\r\n"
             "Authorization: Bearer sk-x\r\n\r\n{\"model\":\"m\"}",
             f.s.port);
    assert_string_equal(f.s.last_req, want);
    fx_free(&f);
}

static void test_stale_connection_retried(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_CLOSE_SECOND, 16);
    got g;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    got_free(&g);
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000); /* goes out on the pooled connection, which dies */
    assert_int_equal(g.res, CG_UP_OK);
    assert_string_equal(g.body, "hello 2/1");
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.connects, 2);
    assert_int_equal(f.s.nconn, 2);
    got_free(&g);
    fx_free(&f);
}

static void test_no_retry_after_a_response_byte(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_PARTIAL_SECOND, 16);
    got g;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    got_free(&g);
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_BROKEN);
    assert_non_null(strstr(g.detail, "inside the response headers"));
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(f.s.nreq, 2);
    got_free(&g);
    fx_free(&f);
}

static void test_pool_idle_expiry_and_bound(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_OK, 1);
    cg_upstream_set_pool_idle(f.u, 20);
    got g[3];
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.s.port);
    cg_up_opts o = {.url = url, .connect_timeout_ms = 5000, .first_byte_timeout_ms = 5000};
    for (int i = 0; i < 3; i++) {
        got_init(&f, &g[i]);
        g[i].call = cg_upstream_start(f.u, &o, &CB, &g[i]);
        assert_non_null(g[i].call);
    }
    assert_int_equal(cg_upstream_active(f.u), 3);
    run_until(&f, &g[0].done);
    run_until(&f, &g[1].done);
    run_until(&f, &g[2].done);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].res, CG_UP_OK);
        got_free(&g[i]);
    }
    assert_string_equal(f.s.last_req + strlen(f.s.last_req) - 4, "\r\n\r\n"); /* a GET */
    assert_int_equal(strncmp(f.s.last_req, "GET / HTTP/1.1\r\n", 16), 0);
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.connects, 3);
    assert_true(st.idle <= 1); /* max_conns */
    assert_int_equal(cg_upstream_active(f.u), 0);
    /* the pooled one is closed when idle too long; the server sees all closed */
    struct timeval tv = {20, 0};
    evtimer_add(f.guard, &tv);
    while (f.s.nclosed < 3 && !f.guard_fired)
        event_base_loop(f.base, EVLOOP_ONCE);
    assert_int_equal(f.s.nclosed, 3);
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.idle, 0);
    fx_free(&f);
}

static void test_chunked_one_batch(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_CHUNKS, 16);
    got g;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    char want[512] = "";
    for (int i = 0; i < 40; i++) {
        char ev[16];
        snprintf(ev, sizeof ev, "data: %02d\n\n", i);
        strcat(want, ev);
    }
    assert_string_equal(g.body, want);
    assert_true(g.ndata < 40); /* chunks of one read come as one slice */
    got_free(&g);
    /* and again, pausing twice: the held bytes come again, none lost or doubled */
    got_init(&f, &g);
    g.pauses = 2;
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    assert_string_equal(g.body, want);
    got_free(&g);
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.connects, 1);
    fx_free(&f);
}

static void test_large_body_and_until_close(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_LARGE, 16);
    got g;
    got_init(&f, &g);
    g.pauses = 3;
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    assert_int_equal(g.blen, LARGE_N);
    for (size_t i = 0; i < LARGE_N; i++)
        if (g.body[i] != (char)('a' + i % 26))
            fail_msg("body byte %zu differs", i);
    got_free(&g);
    f.s.mode = M_UNTIL_CLOSE;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    assert_string_equal(g.body, "hello 1/2");
    got_free(&g);
    cg_upstream_stats st;
    cg_upstream_get_stats(f.u, &st);
    assert_int_equal(st.idle, 0); /* not reusable */
    fx_free(&f);
}

static void test_errors(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_BIG_HEADERS, 16);
    got g;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_BROKEN);
    assert_non_null(strstr(g.detail, "header block exceeds 65536 bytes"));
    got_free(&g);

    f.s.mode = M_MALFORMED;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_BROKEN);
    assert_non_null(strstr(g.detail, "malformed status line"));
    got_free(&g);

    f.s.mode = M_SILENT;
    got_init(&f, &g);
    call(&f, &g, NULL, 50, 5000);
    assert_int_equal(g.res, CG_UP_TIMEOUT_FIRST);
    got_free(&g);

    f.s.mode = M_STALL;
    got_init(&f, &g);
    call(&f, &g, NULL, 5000, 50);
    assert_int_equal(g.res, CG_UP_TIMEOUT_IDLE);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "half.");
    got_free(&g);

    f.s.mode = M_OK;
    got_init(&f, &g);
    g.abort = 1;
    call(&f, &g, NULL, 5000, 5000);
    assert_int_equal(g.res, CG_UP_ABORTED);
    got_free(&g);

    /* refused: a port nobody listens on any more */
    struct evconnlistener *l = evconnlistener_new_bind(
        f.base, s_accept, &f.s, LEV_OPT_CLOSE_ON_FREE, 1,
        (struct sockaddr *)&(struct sockaddr_in){.sin_family = AF_INET,
                                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        sizeof(struct sockaddr_in));
    int dead = listen_port(l);
    evconnlistener_free(l);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead);
    got_init(&f, &g);
    call(&f, &g, url, 5000, 5000);
    assert_int_equal(g.res, CG_UP_CONNECT_FAILED);
    assert_non_null(strstr(g.detail, "could not connect"));
    got_free(&g);

    got_init(&f, &g);
    call(&f, &g, "ftp://example.com/", 5000, 5000);
    assert_int_equal(g.res, CG_UP_CONNECT_FAILED);
    assert_non_null(strstr(g.detail, "bad upstream URL"));
    got_free(&g);
    fx_free(&f);
}

static void test_cancel(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_SILENT, 16);
    got g;
    got_init(&f, &g);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.s.port);
    cg_up_opts o = {.url = url, .first_byte_timeout_ms = 5000};
    g.call = cg_upstream_start(f.u, &o, &CB, &g);
    run_until(&f, &f.s.nreq);
    cg_upstream_cancel(g.call);
    assert_int_equal(cg_upstream_active(f.u), 0);
    run_until(&f, &f.s.nclosed); /* the server sees the connection go */
    assert_int_equal(g.done, 0);
    /* cancelled while still resolving: nothing left behind either */
    snprintf(url, sizeof url, "http://localhost:%d/", f.s.port);
    o.url = url;
    g.call = cg_upstream_start(f.u, &o, &CB, &g);
    cg_upstream_cancel(g.call);
    assert_int_equal(g.done, 0);
    got_free(&g);
    fx_free(&f);
}

static void test_dns_localhost(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, M_OK, 16);
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/v1/x", f.s.port);
    got g;
    got_init(&f, &g);
    call(&f, &g, url, 5000, 5000);
    assert_int_equal(g.res, CG_UP_OK);
    assert_string_equal(g.body, "hello 1/1");
    char want[64];
    snprintf(want, sizeof want, "POST /v1/x HTTP/1.1\r\nHost: localhost:%d\r\n", f.s.port);
    assert_int_equal(strncmp(f.s.last_req, want, strlen(want)), 0);
    got_free(&g);
    fx_free(&f);
}

static void test_header_list(void **state) {
    (void)state;
    cg_up_headers h = {0};
    assert_int_equal(cg_up_headers_add(&h, "X-A", "1"), 0);
    assert_int_equal(cg_up_headers_add(&h, "Bad Name", "1"), -1);
    assert_int_equal(cg_up_headers_add(&h, "X-B", "a\r\nInjected: yes"), -1);
    assert_int_equal(cg_up_headers_add(&h, "Host", "evil"), -1);
    assert_int_equal(cg_up_headers_add(&h, "content-length", "1"), -1);
    assert_int_equal(cg_up_headers_add(&h, "", "1"), -1);
    char big[2048];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int n = 0;
    while (cg_up_headers_add(&h, "X-Big", big) == 0)
        n++;
    assert_true(h.len <= CG_UP_HEADERS_MAX);
    assert_true(n >= 7);
    assert_int_equal(memcmp(h.data, "X-A: 1\r\nX-Big: vv", 17), 0);
    cg_up_headers_free(&h);
    assert_null(h.data);
    assert_int_equal(h.len, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_and_request_bytes),
        cmocka_unit_test(test_stale_connection_retried),
        cmocka_unit_test(test_no_retry_after_a_response_byte),
        cmocka_unit_test(test_pool_idle_expiry_and_bound),
        cmocka_unit_test(test_chunked_one_batch),
        cmocka_unit_test(test_large_body_and_until_close),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_dns_localhost),
        cmocka_unit_test(test_header_list),
    };
    signal(SIGPIPE, SIG_IGN); /* as costgate serve: a write to a closed socket is an error */
    if (cg_upstream_global_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
