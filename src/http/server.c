/* server: HTTP front end (http/hserve.c on libevent loops), worker
 * threads, dispatch, admin endpoints and graceful shutdown (see server.h). */
#include "http/server.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/money.h"
#include "http/admin.h"
#include "http/feedback.h"
#include "http/hserve.h"
#include "http/upstream.h"
#include "obs/metrics.h"
#include "pipeline/engine.h"
#include "provider/provider.h"

typedef struct post_item {
    struct post_item *next;
    void (*fn)(void *);
    void *arg;
} post_item;

struct cg_worker {
    int id;
    cg_server *srv;
    pthread_t thread;
    struct event_base *base;
    cg_hserve *http;
    cg_hserve *admin_http; /* worker 0 only, when admin.listen is set */
    cg_upstream *up;
    pthread_mutex_t post_mu;
    post_item *posts;
    struct event *post_ev;
    uint64_t rng[2];
    uint64_t counter;
    size_t inflight;
    int draining;
};

struct cg_server {
    cg_gateway *gw;
    int fd;
    int admin_fd;
    int port, admin_port;
    int n_workers;
    cg_worker *workers;
};

/* --- worker utilities ---------------------------------------------------- */

struct event_base *cg_worker_base(cg_worker *w) {
    return w->base;
}

int cg_worker_id(const cg_worker *w) {
    return w ? w->id : -1;
}

struct cg_upstream *cg_worker_upstream(cg_worker *w) {
    return w->up;
}

static void on_posts(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_worker *w = arg;
    pthread_mutex_lock(&w->post_mu);
    post_item *list = w->posts;
    w->posts = NULL;
    pthread_mutex_unlock(&w->post_mu);
    /* the list was pushed LIFO; run in submission order */
    post_item *rev = NULL;
    while (list) {
        post_item *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        post_item *n = rev->next;
        rev->fn(rev->arg);
        free(rev);
        rev = n;
    }
}

void cg_worker_post(cg_worker *w, void (*fn)(void *), void *arg) {
    post_item *it = malloc(sizeof *it);
    if (!it) {
        CG_ERROR("worker %d: out of memory posting work", w->id);
        return;
    }
    it->fn = fn;
    it->arg = arg;
    pthread_mutex_lock(&w->post_mu);
    int was_empty = w->posts == NULL;
    it->next = w->posts;
    w->posts = it;
    /* one wake-up per batch: a non-empty list already has one coming (the
     * loop takes the whole list under this lock before running it) */
    if (was_empty)
        event_active(w->post_ev, 0, 0);
    pthread_mutex_unlock(&w->post_mu);
}

static uint64_t rng_next(cg_worker *w) {
    /* xorshift128+ seeded from getrandom(); ids need uniqueness, not secrecy */
    uint64_t s1 = w->rng[0];
    const uint64_t s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rng[1] + s0;
}

void cg_worker_new_id(cg_worker *w, int64_t now_ms, char out[48]) {
    /* 48 bits of wall-clock milliseconds, then 48 random bits: ids sort by
     * time, so ledger inserts append to the primary-key B-tree instead of
     * touching random pages; the random part keeps them unique across
     * workers and restarts */
    uint64_t ms = (uint64_t)now_ms;
    uint64_t rnd = (rng_next(w) ^ ++w->counter) & 0xffffffffffffull;
    static const char hx[] = "0123456789abcdef";
    uint64_t v[2] = {ms & 0xffffffffffffull, rnd};
    memcpy(out, "req_", 4);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 12; i++)
            out[4 + k * 12 + i] = hx[(v[k] >> (44 - 4 * i)) & 15];
    out[28] = '\0';
}

static void maybe_exit(cg_worker *w) {
    if (w->draining && w->inflight == 0)
        event_base_loopexit(w->base, NULL);
}

void cg_worker_request_done(cg_worker *w) {
    if (w->inflight)
        w->inflight--;
    maybe_exit(w);
}

/* --- responses outside the pipeline -------------------------------------- */

static cg_api api_of(cg_hreq *req) {
    return cg_hreq_header(req, "anthropic-version") ? CG_API_ANTHROPIC : CG_API_OPENAI;
}

void cg_server_reply_json(cg_hreq *req, int status, const char *body, size_t len) {
    cg_hreq_add_header(req, "Content-Type", "application/json");
    cg_hreq_reply(req, status, body, len);
}

void cg_server_reply_error(cg_hreq *req, cg_api api, int status, const char *type, const char *code,
                           const char *msg) {
    cg_buf b;
    cg_buf_init(&b, 4096);
    cg_provider_for_api(api)->error_body(&b, status, type, code, NULL, msg);
    cg_server_reply_json(req, status, b.data, b.len);
    cg_buf_free(&b);
}

/* --- dispatch ------------------------------------------------------------ */

int cg_path_is(const char *uri, const char *path) {
    size_t n = strlen(path);
    return strncmp(uri, path, n) == 0 && (uri[n] == '\0' || uri[n] == '?');
}

static void start_proxy(cg_worker *w, cg_hreq *req, cg_endpoint ep, cg_api api) {
    cg_req *r = cg_req_new(w, w->srv->gw, req);
    if (!r) {
        cg_server_reply_error(req, api, 500, "api_error", NULL, "out of memory");
        return;
    }
    r->ep = ep;
    r->api = api;
    r->ops = cg_provider_for_api(api);
    w->inflight++;
    cg_engine_start(r);
}

static void on_request(cg_hreq *req, void *arg) {
    cg_worker *w = arg;
    const char *uri = cg_hreq_uri(req);
    cg_hmethod m = cg_hreq_method(req);
    cg_api api = api_of(req);
    int admin = cg_hreq_admin(req);

    const char *why;
    int bad = cg_hreq_bad(req, &why);
    if (bad) {
        char msg[192];
        snprintf(msg, sizeof msg, "Malformed HTTP request: %s.", why);
        cg_server_reply_error(req, api, bad, "invalid_request_error", "bad_request", msg);
        return;
    }
    if (cg_admin_handle(w, w->srv->gw, req, uri, m, admin))
        return;
    if (admin) {
        cg_server_reply_error(req, api, 404, "not_found_error", "not_found",
                              "No such admin endpoint.");
        return;
    }
    if (cg_path_is(uri, "/v1/chat/completions") || cg_path_is(uri, "/chat/completions") ||
        cg_path_is(uri, "/v1/embeddings") || cg_path_is(uri, "/embeddings")) {
        if (m != CG_HM_POST) {
            cg_server_reply_error(req, CG_API_OPENAI, 405, "invalid_request_error",
                                  "method_not_allowed", "This endpoint only accepts POST.");
            return;
        }
        int emb = strstr(uri, "embeddings") != NULL;
        start_proxy(w, req, emb ? CG_EP_EMBEDDINGS : CG_EP_CHAT, CG_API_OPENAI);
        return;
    }
    if (cg_path_is(uri, "/v1/messages")) {
        if (m != CG_HM_POST) {
            cg_server_reply_error(req, CG_API_ANTHROPIC, 405, "invalid_request_error", NULL,
                                  "This endpoint only accepts POST.");
            return;
        }
        start_proxy(w, req, CG_EP_MESSAGES, CG_API_ANTHROPIC);
        return;
    }
    if (cg_path_is(uri, "/v1/feedback")) {
        cg_feedback_handle(w, w->srv->gw, req, m);
        return;
    }
    if (cg_path_is(uri, "/v1/models") || cg_path_is(uri, "/models")) {
        cg_admin_models(w->srv->gw, req, api);
        return;
    }
    if (cg_path_is(uri, "/healthz")) {
        cg_server_reply_json(req, 200, "{\"status\":\"ok\"}", 15);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "Unknown endpoint: %.160s", uri);
    cg_server_reply_error(req, api, 404,
                          api == CG_API_ANTHROPIC ? "not_found_error" : "invalid_request_error",
                          "unknown_url", msg);
}

/* --- sockets and threads ------------------------------------------------- */

static int listen_on(const char *host, int port, int *bound_port, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, ports, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* accepted sockets inherit it on Linux: no Nagle delay on replies */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
            break;
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    evutil_make_socket_nonblocking(fd);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static cg_hserve *make_http(cg_worker *w, int fd, int admin) {
    const cg_config *c = w->srv->gw->cfg;
    /* idle client connections and stalled writes; never shorter than an
     * upstream wait */
    int wait_ms = c->first_byte_timeout_ms > c->idle_timeout_ms ? c->first_byte_timeout_ms
                                                                : c->idle_timeout_ms;
    cg_hserve_opts o = {
        .max_body = c->max_body_bytes,
        .max_head = 64 * 1024,
        .timeout_ms = wait_ms + 5000,
        .admin = admin,
    };
    return cg_hserve_new(w->base, fd, &o, on_request, w);
}

static void *worker_main(void *arg) {
    cg_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static void stop_worker(void *arg) {
    cg_worker *w = arg;
    w->draining = 1;
    cg_hserve_stop_accepting(w->http);
    if (w->admin_http)
        cg_hserve_stop_accepting(w->admin_http);
    maybe_exit(w);
}

cg_server *cg_server_start(cg_gateway *gw, char *err, size_t errlen) {
    const cg_config *c = gw->cfg;
    evthread_use_pthreads();
    cg_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->gw = gw;
    s->admin_fd = -1;
    s->fd = listen_on(c->listen_host, c->listen_port, &s->port, err, errlen);
    if (s->fd < 0)
        goto fail;
    if (c->admin_listen_host[0]) {
        s->admin_fd =
            listen_on(c->admin_listen_host, c->admin_listen_port, &s->admin_port, err, errlen);
        if (s->admin_fd < 0)
            goto fail;
    }
    s->n_workers = c->workers > 0 ? c->workers : 1;
    s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
    if (!s->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_workers; i++) {
        cg_worker *w = &s->workers[i];
        w->id = i;
        w->srv = s;
        pthread_mutex_init(&w->post_mu, NULL);
        if (getrandom(w->rng, sizeof w->rng, 0) != sizeof w->rng) {
            w->rng[0] = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20 ^ (uint64_t)i;
            w->rng[1] = w->rng[0] * 0x9e3779b97f4a7c15ull;
        }
        w->rng[0] |= 1;
        w->base = event_base_new();
        if (!w->base) {
            snprintf(err, errlen, "cannot create event loop");
            goto fail;
        }
        w->post_ev = event_new(w->base, -1, 0, on_posts, w);
        w->up = cg_upstream_new(w->base, 512);
        w->http = make_http(w, s->fd, 0);
        if (!w->post_ev || !w->up || !w->http) {
            snprintf(err, errlen, "cannot set up worker %d", i);
            goto fail;
        }
        if (i == 0 && s->admin_fd >= 0) {
            w->admin_http = make_http(w, s->admin_fd, 1);
            if (!w->admin_http) {
                snprintf(err, errlen, "cannot set up the admin listener");
                goto fail;
            }
        }
    }
    for (int i = 0; i < s->n_workers; i++)
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            /* threads already started are stopped by cg_server_stop */
            s->n_workers = i;
            cg_server_stop(s, 0);
            return NULL;
        }
    return s;
fail:
    /* nothing runs yet: free what was made */
    for (int i = 0; s->workers && i < s->n_workers; i++) {
        cg_worker *w = &s->workers[i];
        cg_hserve_free(w->admin_http);
        cg_hserve_free(w->http);
        cg_upstream_free(w->up);
        if (w->post_ev)
            event_free(w->post_ev);
        if (w->base)
            event_base_free(w->base);
        pthread_mutex_destroy(&w->post_mu);
    }
    free(s->workers);
    if (s->fd >= 0)
        close(s->fd);
    if (s->admin_fd >= 0)
        close(s->admin_fd);
    free(s);
    return NULL;
}

int cg_server_port(const cg_server *s) {
    return s->port;
}

int cg_server_admin_port(const cg_server *s) {
    return s->admin_port;
}

static void force_exit(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_worker *w = arg;
    if (w->inflight)
        CG_WARN("worker %d: %zu requests still in flight at the shutdown deadline", w->id,
                w->inflight);
    event_base_loopexit(w->base, NULL);
}

void cg_server_stop(cg_server *s, int grace_ms) {
    struct event **timers = calloc((size_t)s->n_workers, sizeof *timers);
    for (int i = 0; i < s->n_workers; i++) {
        cg_worker *w = &s->workers[i];
        if (timers) {
            timers[i] = evtimer_new(w->base, force_exit, w);
            struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
            if (timers[i])
                evtimer_add(timers[i], &tv);
        }
        cg_worker_post(w, stop_worker, w);
    }
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (int i = 0; i < s->n_workers; i++) {
        cg_worker *w = &s->workers[i];
        if (timers && timers[i])
            event_free(timers[i]);
        cg_hserve_free(w->admin_http);
        cg_hserve_free(w->http);
        cg_upstream_free(w->up);
        event_free(w->post_ev);
        event_base_free(w->base);
        pthread_mutex_destroy(&w->post_mu);
    }
    free(timers);
    close(s->fd);
    if (s->admin_fd >= 0)
        close(s->admin_fd);
    free(s->workers);
    free(s);
}
