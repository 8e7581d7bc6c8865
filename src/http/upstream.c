/* upstream: libcurl multi driven by libevent (see upstream.h). */
#include "http/upstream.h"
#include "core/clock.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define EASY_POOL_MAX 64

struct cg_upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    size_t active;
    CURL *pool[EASY_POOL_MAX]; /* reset easy handles kept for reuse */
    int npool;
};

struct cg_up_call {
    cg_upstream *u;
    CURL *easy;
    cg_up_callbacks cb;
    void *arg;
    struct event *deadline; /* first-byte, then idle timer */
    int idle_ms;
    int got_headers;
    int paused;
    int finishing;
    cg_up_result forced; /* set when we stop the call ourselves */
    int64_t t_start_us;
    int64_t ttfb_us;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct sock_ctx {
    struct event ev; /* re-assigned in place when curl changes the interest */
    int added;
    cg_upstream *u;
} sock_ctx;

int cg_upstream_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void finish(cg_up_call *c, cg_up_result res, const char *detail) {
    cg_upstream *u = c->u;
    curl_multi_remove_handle(u->multi, c->easy);
    if (u->npool < EASY_POOL_MAX) {
        curl_easy_reset(c->easy);
        u->pool[u->npool++] = c->easy;
    } else {
        curl_easy_cleanup(c->easy);
    }
    event_free(c->deadline);
    u->active--;
    cg_up_callbacks cb = c->cb;
    void *arg = c->arg;
    char detail_copy[CURL_ERROR_SIZE];
    snprintf(detail_copy, sizeof detail_copy, "%s", detail ? detail : "");
    free(c);
    if (cb.on_done)
        cb.on_done(arg, res, detail_copy);
}

static void check_done(cg_upstream *u) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        cg_up_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode rc = m->data.result;
        cg_up_result res;
        const char *detail = rc == CURLE_OK ? ""
                             : c->errbuf[0] ? c->errbuf
                                            : curl_easy_strerror(rc);
        if (c->forced != CG_UP_OK)
            res = c->forced;
        else if (rc == CURLE_OK)
            res = CG_UP_OK;
        else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                 rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                 (rc == CURLE_OPERATION_TIMEDOUT && !c->got_headers))
            res = CG_UP_CONNECT_FAILED;
        else if (rc == CURLE_WRITE_ERROR)
            res = CG_UP_ABORTED;
        else
            res = CG_UP_BROKEN;
        finish(c, res, detail);
    }
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg) {
    cg_upstream *u = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    check_done(u);
}

static void on_multi_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_upstream *u = arg;
    int running;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)e;
    cg_upstream *u = userp;
    sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            if (sc->added)
                event_del(&sc->ev);
            free(sc);
            curl_multi_assign(u->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc)
            return -1;
        sc->u = u;
        curl_multi_assign(u->multi, s, sc);
    } else if (sc->added) {
        event_del(&sc->ev);
    }
    if (event_assign(&sc->ev, u->base, s, kind, on_sock_event, u) != 0)
        return -1;
    sc->added = event_add(&sc->ev, NULL) == 0;
    return sc->added ? 0 : -1;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    cg_upstream *u = userp;
    if (timeout_ms < 0) {
        evtimer_del(u->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(u->timer, &tv);
    return 0;
}

cg_upstream *cg_upstream_new(struct event_base *base, long max_conns) {
    cg_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->base = base;
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, on_multi_timer, u);
    if (!u->multi || !u->timer) {
        cg_upstream_free(u);
        return NULL;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, max_conns);
    return u;
}

void cg_upstream_free(cg_upstream *u) {
    if (!u)
        return;
    while (u->npool > 0)
        curl_easy_cleanup(u->pool[--u->npool]);
    if (u->multi)
        curl_multi_cleanup(u->multi);
    if (u->timer)
        event_free(u->timer);
    free(u);
}

size_t cg_upstream_active(const cg_upstream *u) {
    return u->active;
}

static void arm(cg_up_call *c, int ms) {
    if (ms <= 0) {
        evtimer_del(c->deadline);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_up_call *c = arg;
    cg_up_result why = c->got_headers ? CG_UP_TIMEOUT_IDLE : CG_UP_TIMEOUT_FIRST;
    finish(c, why,
           why == CG_UP_TIMEOUT_IDLE ? "upstream idle timeout" : "upstream first-byte timeout");
}

static void mark_first_byte(cg_up_call *c) {
    if (!c->ttfb_us)
        c->ttfb_us = cg_mono_us() - c->t_start_us;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg) {
    cg_up_call *c = arg;
    size_t len = size * n;
    mark_first_byte(c);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        return len;
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && !c->got_headers) {
            c->got_headers = 1;
            arm(c, c->idle_ms);
            if (c->cb.on_headers_done)
                c->cb.on_headers_done(c->arg, status);
        }
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || !c->cb.on_header)
        return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    const char *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    c->cb.on_header(c->arg, p, nlen, v, (size_t)(end - v));
    return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
    cg_up_call *c = arg;
    size_t len = size * n;
    mark_first_byte(c);
    int rc = c->cb.on_data ? c->cb.on_data(c->arg, p, len) : CG_UP_CONTINUE;
    if (rc == CG_UP_PAUSE) {
        c->paused = 1;
        evtimer_del(c->deadline);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc == CG_UP_ABORT) {
        c->forced = CG_UP_ABORTED;
        return 0;
    }
    arm(c, c->idle_ms);
    return len;
}

cg_up_call *cg_upstream_start(cg_upstream *u, const cg_up_opts *o, const cg_up_callbacks *cb,
                              void *arg) {
    cg_up_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->u = u;
    c->cb = *cb;
    c->arg = arg;
    c->idle_ms = o->idle_timeout_ms;
    c->t_start_us = cg_mono_us();
    c->easy = u->npool ? u->pool[--u->npool] : curl_easy_init();
    c->deadline = evtimer_new(u->base, on_deadline, c);
    if (!c->easy || !c->deadline)
        goto fail;
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* no proxy from the environment: saves a getenv()/parse per call; an
     * explicit proxy would be configured per provider */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (o->body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    }
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
        goto fail;
    u->active++;
    arm(c, o->first_byte_timeout_ms);
    return c;
fail:
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->deadline)
        event_free(c->deadline);
    free(c);
    return NULL;
}

void cg_upstream_cancel(cg_up_call *c) {
    if (!c)
        return;
    c->cb.on_done = NULL;
    finish(c, CG_UP_ABORTED, NULL);
}

void cg_upstream_resume(cg_up_call *c) {
    if (!c || !c->paused)
        return;
    c->paused = 0;
    arm(c, c->idle_ms);
    curl_easy_pause(c->easy, CURLPAUSE_CONT);
}

void cg_upstream_set_idle_timeout(cg_up_call *c, int ms) {
    c->idle_ms = ms;
    if (!c->paused)
        arm(c, ms);
}

int64_t cg_upstream_ttfb_us(const cg_up_call *c) {
    return c->ttfb_us;
}
