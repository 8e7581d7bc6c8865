/* upstream: the provider HTTP/1.1 client on libevent (see upstream.h).
 *
 * Three layers, as curl's connection filters: a connection (one
 * bufferevent: a socket, or a socket under TLS) carries one call at a time;
 * the call owns one request/response exchange, parsed by h1.c, and its
 * timers; the client (one per loop) owns the pool of idle connections and
 * the DNS resolver. Failures found while a call is being set up are
 * reported from the loop (the kick event), never from inside
 * cg_upstream_start().
 */
#include "http/upstream.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/clock.h"
#include "http/h1.h"

#define HEAD_MAX (64u << 10)       /* response header block cap */
#define READ_MAX (256u << 10)      /* input buffered per connection before reads stop */
#define BATCH_MAX (READ_MAX + 64u) /* body bytes handed to on_data at once */
#define POOL_IDLE_MS 30000
#define DETAIL_MAX 256
#define TLS_CTX_MAX 16
#define CA_PATH_MAX 512

/* ---- TLS contexts: process-wide, one per CA file ------------------------- */

typedef struct tls_entry {
    char ca_file[CA_PATH_MAX]; /* "" = the system store */
    SSL_CTX *ctx;
} tls_entry;

static tls_entry g_tls[TLS_CTX_MAX];
static int g_ntls;
static pthread_mutex_t g_tls_mu = PTHREAD_MUTEX_INITIALIZER;

static void ssl_reason(char *out, size_t cap) {
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, cap);
    else
        snprintf(out, cap, "unknown TLS error");
    ERR_clear_error();
}

static SSL_CTX *tls_ctx_new(const char *ca_file, char *err, size_t errlen) {
    char why[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot create a TLS context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* a peer that closes without close_notify ends the stream (the HTTP
     * framing, not TLS, tells a complete response from a cut one) */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    int ok;
    if (ca_file && *ca_file) {
        ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1;
    } else {
        /* the whole bundle now, so no handshake reads a CA file from disk */
        const char *f = getenv(X509_get_default_cert_file_env());
        ok = SSL_CTX_load_verify_locations(ctx, f && *f ? f : X509_get_default_cert_file(), NULL) ==
             1;
        if (!ok) {
            ERR_clear_error();
            ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
        }
    }
    if (!ok) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot load CA certificates from %s: %s",
                 ca_file && *ca_file ? ca_file : "the system store", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static SSL_CTX *tls_ctx_get(const char *ca_file, char *err, size_t errlen) {
    const char *key = ca_file ? ca_file : "";
    SSL_CTX *ctx = NULL;
    if (strlen(key) >= CA_PATH_MAX) {
        snprintf(err, errlen, "CA file path too long");
        return NULL;
    }
    pthread_mutex_lock(&g_tls_mu);
    for (int i = 0; i < g_ntls && !ctx; i++)
        if (strcmp(g_tls[i].ca_file, key) == 0)
            ctx = g_tls[i].ctx;
    if (!ctx) {
        if (g_ntls >= TLS_CTX_MAX) {
            snprintf(err, errlen, "too many distinct CA files (max %d)", TLS_CTX_MAX);
        } else if ((ctx = tls_ctx_new(key, err, errlen))) {
            snprintf(g_tls[g_ntls].ca_file, CA_PATH_MAX, "%s", key);
            g_tls[g_ntls++].ctx = ctx;
        }
    }
    pthread_mutex_unlock(&g_tls_mu);
    return ctx;
}

int cg_upstream_tls_prepare(const char *ca_file, char *err, size_t errlen) {
    return tls_ctx_get(ca_file, err, errlen) ? 0 : -1;
}

int cg_upstream_global_init(void) {
    return OPENSSL_init_ssl(0, NULL) == 1 ? 0 : -1;
}

/* ---- header lists -------------------------------------------------------- */

static int token_ok(const char *s) {
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return 0;
    }
    return 1;
}

int cg_up_headers_add(cg_up_headers *h, const char *name, const char *value) {
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection", NULL};
    if (!token_ok(name))
        return -1;
    for (int i = 0; reserved[i]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return -1;
    size_t nl = strlen(name), vl = strlen(value);
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    size_t need = h->len + nl + 2 + vl + 2;
    if (need > CG_UP_HEADERS_MAX)
        return -1;
    if (need > h->cap) {
        size_t cap = h->cap ? h->cap : 512;
        while (cap < need)
            cap *= 2;
        char *d = malloc(cap);
        if (!d)
            return -1;
        size_t len = h->len;
        if (len)
            memcpy(d, h->data, len);
        cg_up_headers_free(h); /* wipes the old copy */
        h->data = d;
        h->cap = cap;
        h->len = len;
    }
    char *p = h->data + h->len;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    h->len = need;
    return 0;
}

void cg_up_headers_reset(cg_up_headers *h) {
    if (h->data)
        memset(h->data, 0, h->cap);
    h->len = 0;
}

void cg_up_headers_free(cg_up_headers *h) {
    cg_up_headers_reset(h);
    free(h->data);
    h->data = NULL;
    h->cap = 0;
}

/* ---- types --------------------------------------------------------------- */

typedef struct up_host up_host;
typedef struct up_conn up_conn;

/* A pool key: scheme, host, port and TLS context (i.e. the CA file). */
struct up_host {
    up_host *next;
    int tls, port, literal;
    char host[CG_H1_HOST_MAX];
    char ca_file[CA_PATH_MAX];
    SSL_CTX *ctx;
    up_conn *idle; /* most recently used first */
};

/* A DNS lookup in flight; outlives a connection that stops waiting for it. */
typedef struct dns_wait {
    up_conn *k; /* NULL once abandoned */
} dns_wait;

struct up_conn {
    cg_upstream *u;
    up_host *h;
    up_conn *hprev, *hnext; /* the host's idle list */
    up_conn *lprev, *lnext; /* the client's idle list, for LRU eviction */
    int pooled;
    int connected;
    unsigned served; /* responses completed on this connection */
    struct bufferevent *bev;
    cg_up_call *call;
    struct event timer; /* connect deadline, then idle expiry in the pool */
    struct evutil_addrinfo *ai, *ai_next;
    struct evdns_getaddrinfo_request *dns_req;
    dns_wait *dns;
    char last_err[128];
};

struct cg_up_call {
    cg_upstream *u;
    cg_up_call *prev, *next; /* the client's calls */
    up_host *h;
    up_conn *k;
    cg_up_callbacks cb;
    void *arg;
    const cg_up_headers *headers;
    const char *body;
    size_t body_len;
    int connect_ms, idle_ms;
    int got_headers; /* the final response head was delivered */
    int got_bytes;   /* a response byte arrived on the current connection */
    int paused;
    int retried;
    int setting_up; /* inside start/retry: failures go through the kick */
    int in_cb;      /* inside a user callback */
    int cancelled;
    int eof;
    int pending; /* a deferred finish is queued on the kick */
    cg_up_result pend_res;
    int64_t t_start_us;
    int64_t ttfb_us;
    struct event deadline; /* first byte, then idle */
    struct event kick;     /* deferred work on the loop */
    cg_h1_parser ps;
    cg_buf batch;
    cg_h1_url url;
    char detail[DETAIL_MAX];
};

struct cg_upstream {
    struct event_base *base;
    struct evdns_base *dns;
    long max_conns;
    int pool_idle_ms;
    up_host *hosts;
    up_conn *lru_head, *lru_tail;
    size_t n_idle;
    cg_up_call *calls;
    size_t active;
    cg_upstream_stats st;
};

/* ---- client -------------------------------------------------------------- */

cg_upstream *cg_upstream_new(struct event_base *base, long max_conns) {
    cg_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->base = base;
    u->max_conns = max_conns;
    u->pool_idle_ms = POOL_IDLE_MS;
    /* reads resolv.conf and the hosts file now, before the loop runs */
    u->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!u->dns) {
        u->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (u->dns)
            evdns_base_load_hosts(u->dns, NULL);
    }
    if (!u->dns) {
        free(u);
        return NULL;
    }
    return u;
}

size_t cg_upstream_active(const cg_upstream *u) {
    return u->active;
}

void cg_upstream_set_pool_idle(cg_upstream *u, int ms) {
    u->pool_idle_ms = ms > 0 ? ms : POOL_IDLE_MS;
}

void cg_upstream_get_stats(const cg_upstream *u, cg_upstream_stats *out) {
    *out = u->st;
    out->idle = u->n_idle;
}

static up_host *host_get(cg_upstream *u, const cg_h1_url *url, const char *ca_file, char *err,
                         size_t errlen) {
    const char *ca = url->tls && ca_file ? ca_file : "";
    for (up_host *h = u->hosts; h; h = h->next)
        if (h->port == url->port && h->tls == url->tls && strcmp(h->host, url->host) == 0 &&
            strcmp(h->ca_file, ca) == 0)
            return h;
    if (strlen(ca) >= CA_PATH_MAX) {
        snprintf(err, errlen, "CA file path too long");
        return NULL;
    }
    SSL_CTX *ctx = NULL;
    if (url->tls && !(ctx = tls_ctx_get(ca, err, errlen)))
        return NULL;
    up_host *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->tls = url->tls;
    h->port = url->port;
    h->literal = url->literal;
    h->ctx = ctx;
    memcpy(h->host, url->host, sizeof h->host);
    snprintf(h->ca_file, sizeof h->ca_file, "%s", ca);
    h->next = u->hosts;
    u->hosts = h;
    return h;
}

/* ---- connections --------------------------------------------------------- */

static void pool_unlink(up_conn *k) {
    cg_upstream *u = k->u;
    if (!k->pooled)
        return;
    if (k->hprev)
        k->hprev->hnext = k->hnext;
    else
        k->h->idle = k->hnext;
    if (k->hnext)
        k->hnext->hprev = k->hprev;
    if (k->lprev)
        k->lprev->lnext = k->lnext;
    else
        u->lru_head = k->lnext;
    if (k->lnext)
        k->lnext->lprev = k->lprev;
    else
        u->lru_tail = k->lprev;
    k->hprev = k->hnext = k->lprev = k->lnext = NULL;
    k->pooled = 0;
    u->n_idle--;
}

static void conn_free(up_conn *k) {
    pool_unlink(k);
    if (k->dns) {
        k->dns->k = NULL; /* the callback frees it */
        k->dns = NULL;
        if (k->dns_req)
            evdns_getaddrinfo_cancel(k->dns_req);
        k->dns_req = NULL;
    }
    evtimer_del(&k->timer);
    if (k->bev)
        bufferevent_free(k->bev);
    if (k->ai)
        evutil_freeaddrinfo(k->ai);
    free(k);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void arm_timer(struct event *ev, int ms) {
    if (ms <= 0) {
        evtimer_del(ev);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void pool_put(up_conn *k) {
    cg_upstream *u = k->u;
    if (u->max_conns <= 0) {
        conn_free(k);
        return;
    }
    while (u->n_idle >= (size_t)u->max_conns && u->lru_tail)
        conn_free(u->lru_tail);
    up_host *h = k->h;
    k->hnext = h->idle;
    if (h->idle)
        h->idle->hprev = k;
    h->idle = k;
    k->lnext = u->lru_head;
    if (u->lru_head)
        u->lru_head->lprev = k;
    u->lru_head = k;
    if (!u->lru_tail)
        u->lru_tail = k;
    k->pooled = 1;
    u->n_idle++;
    arm_timer(&k->timer, u->pool_idle_ms); /* reading stays on: EOF closes it */
}

static up_conn *pool_take(up_host *h) {
    up_conn *k = h->idle;
    if (!k)
        return NULL;
    pool_unlink(k);
    evtimer_del(&k->timer);
    return k;
}

/* ---- calls: finishing ---------------------------------------------------- */

static void call_unlink(cg_up_call *c) {
    cg_upstream *u = c->u;
    if (c->prev)
        c->prev->next = c->next;
    else
        u->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    u->active--;
}

static void call_free(cg_up_call *c) {
    evtimer_del(&c->deadline);
    event_del(&c->kick);
    cg_h1_free(&c->ps);
    cg_buf_free(&c->batch);
    free(c);
}

/* Ends the call: its connection goes back to the pool (reusable) or is
 * closed, then on_done runs (which may start the next call at once, on the
 * same connection). */
static void finish(cg_up_call *c, cg_up_result res, const char *detail, int reusable) {
    up_conn *k = c->k;
    c->k = NULL;
    if (k) {
        k->call = NULL;
        if (reusable) {
            k->served++;
            pool_put(k);
        } else {
            conn_free(k);
        }
    }
    call_unlink(c);
    cg_up_callbacks cb = c->cb;
    void *arg = c->arg;
    char d[DETAIL_MAX];
    cg_strlcpy(d, detail, sizeof d);
    call_free(c);
    if (cb.on_done)
        cb.on_done(arg, res, d);
}

static void failf(cg_up_call *c, cg_up_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails the call now, or from the loop while it is being set up. */
static void failf(cg_up_call *c, cg_up_result res, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    if (c->setting_up) {
        c->pending = 1;
        c->pend_res = res;
        event_active(&c->kick, EV_TIMEOUT, 1);
        return;
    }
    finish(c, res, c->detail, 0);
}

/* ---- calls: connecting --------------------------------------------------- */

static void conn_try_next(up_conn *k);

static int conn_connect(up_conn *k, const struct sockaddr *sa, int salen) {
    cg_upstream *u = k->u;
    up_host *h = k->h;
    struct bufferevent *bev = NULL;
    if (k->bev) {
        bufferevent_free(k->bev);
        k->bev = NULL;
    }
    if (h->tls) {
        SSL *ssl = SSL_new(h->ctx);
        if (!ssl) {
            snprintf(k->last_err, sizeof k->last_err, "cannot create a TLS session");
            return -1;
        }
        int ok = 1;
        if (h->literal) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h->host) == 1;
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, h->host) == 1 && SSL_set_tlsext_host_name(ssl, h->host) == 1;
        }
        if (ok)
            bev = bufferevent_openssl_socket_new(u->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            SSL_free(ssl);
            ERR_clear_error();
            snprintf(k->last_err, sizeof k->last_err, "cannot set up a TLS session");
            return -1;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(u->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            snprintf(k->last_err, sizeof k->last_err, "out of memory");
            return -1;
        }
    }
    bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, k);
    bufferevent_setwatermark(bev, EV_READ, 0, READ_MAX);
    k->bev = bev;
    u->st.connects++;
    if (bufferevent_socket_connect(bev, (struct sockaddr *)sa, salen) != 0) {
        snprintf(k->last_err, sizeof k->last_err, "%s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        bufferevent_free(bev);
        k->bev = NULL;
        return -1;
    }
    evutil_socket_t fd = bufferevent_getfd(bev);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return 0;
}

static void conn_try_next(up_conn *k) {
    while (k->ai_next) {
        struct evutil_addrinfo *a = k->ai_next;
        k->ai_next = a->ai_next;
        if (conn_connect(k, a->ai_addr, (int)a->ai_addrlen) == 0)
            return;
    }
    cg_up_call *c = k->call;
    failf(c, CG_UP_CONNECT_FAILED, "could not connect to %s port %d: %s", k->h->host, k->h->port,
          k->last_err[0] ? k->last_err : "no address");
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg) {
    dns_wait *w = arg;
    up_conn *k = w->k;
    free(w);
    if (!k) { /* abandoned */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    k->dns = NULL;
    k->dns_req = NULL;
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        failf(k->call, CG_UP_CONNECT_FAILED, "could not resolve host %s: %s", k->h->host,
              evutil_gai_strerror(result));
        return;
    }
    k->ai = k->ai_next = res;
    conn_try_next(k);
}

/* A fresh connection for c: resolve (unless the host is an IP literal),
 * then connect to each address in turn. */
static void conn_open(cg_up_call *c) {
    cg_upstream *u = c->u;
    up_host *h = c->h;
    up_conn *k = calloc(1, sizeof *k);
    if (!k) {
        failf(c, CG_UP_CONNECT_FAILED, "out of memory");
        return;
    }
    k->u = u;
    k->h = h;
    k->call = c;
    c->k = k;
    evtimer_assign(&k->timer, u->base, conn_timer_cb, k);
    arm_timer(&k->timer, c->connect_ms);
    if (h->literal) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        int len = 0;
        if (evutil_inet_pton(AF_INET, h->host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)h->port);
            len = sizeof *s4;
        } else if (evutil_inet_pton(AF_INET6, h->host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)h->port);
            len = sizeof *s6;
        }
        if (len) {
            if (conn_connect(k, (struct sockaddr *)&ss, len) != 0)
                failf(c, CG_UP_CONNECT_FAILED, "could not connect to %s port %d: %s", h->host,
                      h->port, k->last_err);
            return;
        }
        /* digits and dots but not an address: let the resolver say so */
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    char port[8];
    snprintf(port, sizeof port, "%d", h->port);
    dns_wait *w = malloc(sizeof *w);
    if (!w) {
        failf(c, CG_UP_CONNECT_FAILED, "out of memory");
        return;
    }
    w->k = k;
    k->dns = w;
    /* may answer (hosts file) and call dns_cb before it returns */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(u->dns, h->host, port, &hints, dns_cb, w);
    if (k->dns)
        k->dns_req = req;
}

/* ---- calls: the exchange ------------------------------------------------- */

static void put(char **p, const char *s, size_t n) {
    memcpy(*p, s, n);
    *p += n;
}

/* Writes the request. Plain TCP: straight to the socket from here (no
 * write event, so no epoll_ctl pair and no loop turn per request); the
 * bufferevent writes what the socket did not take, and reports errors. */
static void send_request(cg_up_call *c) {
    struct bufferevent *bev = c->k->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    int direct = !c->h->tls && evbuffer_get_length(out) == 0;
    if (direct)
        bufferevent_disable(bev, EV_WRITE); /* adding below schedules nothing */
    const char *method = c->body ? "POST " : "GET ";
    char cl[48];
    size_t cln = 0;
    if (c->body) { /* "Content-Length: N\r\n" without printf */
        char digits[24];
        size_t nd = 0, v = c->body_len;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) && nd < sizeof digits);
        memcpy(cl, "Content-Length: ", 16);
        cln = 16;
        while (nd)
            cl[cln++] = digits[--nd];
        cl[cln++] = '\r';
        cl[cln++] = '\n';
    }
    size_t tn = c->url.target_len, an = strlen(c->url.authority);
    size_t hn = c->headers ? c->headers->len : 0;
    size_t total = strlen(method) + (size_t)c->url.slash + tn + 17 + an + 2 + cln + hn + 2;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1 || v.iov_len < total) {
        failf(c, CG_UP_CONNECT_FAILED, "out of memory for the request");
        return;
    }
    char *p = v.iov_base;
    put(&p, method, strlen(method));
    put(&p, "/", (size_t)c->url.slash);
    put(&p, c->url.target, tn);
    put(&p, " HTTP/1.1\r\nHost: ", 17);
    put(&p, c->url.authority, an);
    put(&p, "\r\n", 2);
    put(&p, cl, cln);
    if (hn)
        put(&p, c->headers->data, hn);
    put(&p, "\r\n", 2);
    v.iov_len = total;
    evbuffer_commit_space(out, &v, 1);
    if (c->body_len && evbuffer_add(out, c->body, c->body_len) != 0) {
        failf(c, CG_UP_CONNECT_FAILED, "out of memory for the request body");
        return;
    }
    if (direct) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
            ;
    }
    bufferevent_enable(bev, evbuffer_get_length(out) ? EV_READ | EV_WRITE : EV_READ);
}

/* A connection for c: a pooled one (unless retrying), else a new one. */
static void attach(cg_up_call *c, int fresh) {
    up_conn *k = fresh ? NULL : pool_take(c->h);
    if (!k) {
        conn_open(c);
        return;
    }
    c->u->st.reused++;
    k->call = c;
    c->k = k;
    send_request(c);
}

/* The request on a reused connection failed before any response byte: the
 * server had closed it. Once per call, on a fresh connection. */
static int maybe_retry(cg_up_call *c) {
    up_conn *k = c->k;
    if (c->retried || c->got_bytes || !k || k->served == 0)
        return 0;
    c->retried = 1;
    c->u->st.retries++;
    k->call = NULL;
    c->k = NULL;
    conn_free(k);
    cg_h1_reset(&c->ps);
    c->eof = 0;
    c->setting_up = 1;
    attach(c, 1);
    c->setting_up = 0;
    return 1;
}

/* Runs a user callback; 1 if the call was cancelled from inside it (and is
 * now gone). */
static int after_cb(cg_up_call *c) {
    c->in_cb = 0;
    if (!c->cancelled)
        return 0;
    finish(c, CG_UP_ABORTED, NULL, 0);
    return 1;
}

enum { RUN_MORE = 0, RUN_GONE = 1, RUN_PAUSED = 2 };

/* Hands the body batch to on_data. RUN_MORE, RUN_GONE or RUN_PAUSED. */
static int deliver(cg_up_call *c, const char *p, size_t n) {
    if (!n || !c->cb.on_data)
        return RUN_MORE;
    c->in_cb = 1;
    int rc = c->cb.on_data(c->arg, p, n);
    if (after_cb(c))
        return RUN_GONE;
    if (rc == CG_UP_ABORT) {
        finish(c, CG_UP_ABORTED, "the receiver stopped the transfer", 0);
        return RUN_GONE;
    }
    if (rc == CG_UP_PAUSE)
        return RUN_PAUSED;
    arm_timer(&c->deadline, c->idle_ms);
    return RUN_MORE;
}

/* Parses what the connection has read: headers go to on_header, body
 * slices of one pass to on_data at once. RUN_MORE, RUN_GONE or RUN_PAUSED. */
static int process(cg_up_call *c) {
    struct evbuffer *in = bufferevent_get_input(c->k->bev);
    if (c->paused || evbuffer_get_length(in) == 0)
        return c->paused ? RUN_PAUSED : RUN_MORE;
    if (!c->got_bytes) {
        c->got_bytes = 1;
        if (!c->ttfb_us)
            c->ttfb_us = cg_mono_us() - c->t_start_us;
    }
    struct evbuffer_iovec vec[16];
    int nvec = evbuffer_peek(in, -1, NULL, vec, 16);
    if (nvec > 16)
        nvec = 16; /* the rest on the next pass */
    size_t consumed = 0, snap_off = 0;
    const char *first = NULL;
    size_t first_n = 0;
    int have = 0, multi = 0, outcome = 0; /* 1 done, 2 error */
    cg_h1_parser snap, pre;
    cg_h1_span a, b;
    for (int i = 0; i < nvec && !outcome; i++) {
        const char *base = vec[i].iov_base;
        size_t len = vec[i].iov_len, off = 0;
        for (;;) {
            if (cg_h1_in_body(&c->ps))
                pre = c->ps; /* to undo a pause or a full batch */
            size_t used;
            cg_h1_event ev = cg_h1_next(&c->ps, base + off, len - off, &used, &a, &b);
            size_t at = consumed + off;
            off += used;
            if (ev == CG_H1_AGAIN)
                break;
            if (ev == CG_H1_DONE) {
                outcome = 1;
                consumed += off;
                break;
            }
            if (ev == CG_H1_ERROR) {
                outcome = 2;
                consumed += off;
                break;
            }
            if (ev == CG_H1_HEADER) {
                if (c->cb.on_header) {
                    c->in_cb = 1;
                    c->cb.on_header(c->arg, a.p, a.n, b.p, b.n);
                    if (after_cb(c))
                        return RUN_GONE;
                }
            } else if (ev == CG_H1_HEAD_DONE) {
                c->got_headers = 1;
                arm_timer(&c->deadline, c->idle_ms);
                if (c->cb.on_headers_done) {
                    c->in_cb = 1;
                    c->cb.on_headers_done(c->arg, c->ps.status);
                    if (after_cb(c))
                        return RUN_GONE;
                }
            } else if (!have) { /* CG_H1_BODY */
                have = 1;
                snap = pre;
                snap_off = at;
                first = a.p;
                first_n = a.n;
            } else {
                int full = 0;
                if (!multi) {
                    cg_buf_reset(&c->batch);
                    full = cg_buf_append(&c->batch, first, first_n) != 0;
                    multi = !full;
                }
                if (full || cg_buf_append(&c->batch, a.p, a.n) != 0) {
                    /* over the batch cap: stop before this slice, the rest next pass */
                    c->ps = pre;
                    off = at - consumed;
                    consumed += off;
                    goto flush;
                }
            }
        }
        if (!outcome)
            consumed += len;
    }
flush:
    if (have) {
        int rc = multi ? deliver(c, c->batch.data, c->batch.len) : deliver(c, first, first_n);
        if (rc == RUN_GONE)
            return RUN_GONE;
        if (rc == RUN_PAUSED && outcome != 2) {
            /* leave the batch unconsumed: parse it again after resume */
            c->ps = snap;
            evbuffer_drain(in, snap_off);
            c->paused = 1;
            evtimer_del(&c->deadline);
            bufferevent_disable(c->k->bev, EV_READ);
            return RUN_PAUSED;
        }
    }
    evbuffer_drain(in, consumed);
    if (outcome == 1) {
        int reusable = cg_h1_keep_alive(&c->ps) && evbuffer_get_length(in) == 0 &&
                       evbuffer_get_length(bufferevent_get_output(c->k->bev)) == 0;
        finish(c, CG_UP_OK, "", reusable);
        return RUN_GONE;
    }
    if (outcome == 2) {
        failf(c, CG_UP_BROKEN, "malformed response from %s: %s", c->h->host, c->ps.error);
        return RUN_GONE;
    }
    return evbuffer_get_length(in) ? process(c) : RUN_MORE;
}

/* The connection ended (EOF or error) while c was on it. */
static void on_conn_end(cg_up_call *c, const char *why) {
    if (process(c) != RUN_MORE)
        return; /* finished, or paused: the end is handled after resume */
    if (maybe_retry(c))
        return;
    if (why) {
        failf(c, CG_UP_BROKEN, "connection to %s failed: %s", c->h->host, why);
        return;
    }
    if (cg_h1_eof(&c->ps) == CG_H1_DONE) {
        finish(c, CG_UP_OK, "", 0);
        return;
    }
    failf(c, CG_UP_BROKEN, "%s (from %s)", c->ps.error, c->h->host);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_up_call *c = arg;
    if (c->pending) {
        finish(c, c->pend_res, c->detail, 0);
        return;
    }
    if (c->paused || !c->k || !c->k->connected)
        return;
    if (c->eof) {
        on_conn_end(c, NULL);
        return;
    }
    process(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_up_call *c = arg;
    if (c->got_headers)
        finish(c, CG_UP_TIMEOUT_IDLE, "upstream idle timeout", 0);
    else
        finish(c, CG_UP_TIMEOUT_FIRST, "upstream first-byte timeout", 0);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    up_conn *k = arg;
    if (!k->call) { /* idle in the pool too long */
        conn_free(k);
        return;
    }
    cg_up_call *c = k->call;
    failf(c, CG_UP_CONNECT_FAILED, "connect to %s port %d timed out after %d ms", k->h->host,
          k->h->port, c->connect_ms);
}

/* libevent 2.1's socket bufferevent reads at most 4 KiB per readiness
 * event (after an ioctl(FIONREAD)). When its read may have stopped at that
 * cap, the rest is read here at once, so a response that arrived whole is
 * parsed, and answered, in one pass: no second loop turn, ioctl and client
 * send. An EOF or error is left in the socket for the bufferevent's next
 * read to report. Plain TCP only (TLS records are read by OpenSSL). */
#define TOP_UP_FROM 4096u
#define TOP_UP_MAX (32u << 10)

static void top_up(up_conn *k) {
    if (k->h->tls)
        return;
    struct evbuffer *in = bufferevent_get_input(k->bev);
    size_t have = evbuffer_get_length(in);
    if (have < TOP_UP_FROM || have + TOP_UP_MAX > READ_MAX)
        return;
    /* the bufferevent keeps its input's end frozen outside its own reads */
    evbuffer_unfreeze(in, 0);
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(in, TOP_UP_MAX, v, 2);
    ssize_t n = -1;
    if (nv >= 1) {
        do
            n = readv(bufferevent_getfd(k->bev), (struct iovec *)v, nv);
        while (n < 0 && errno == EINTR);
    }
    size_t left = n > 0 ? (size_t)n : 0;
    int used = 0;
    for (; used < nv && left; used++) {
        size_t take = v[used].iov_len < left ? v[used].iov_len : left;
        v[used].iov_len = take;
        left -= take;
    }
    evbuffer_commit_space(in, v, used);
    evbuffer_freeze(in, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
    (void)bev;
    up_conn *k = arg;
    if (!k->call) { /* bytes on an idle connection: not ours to read */
        conn_free(k);
        return;
    }
    if (!k->call->pending) { /* else it is about to fail from the kick */
        top_up(k);
        process(k->call);
    }
}

/* Why a TLS handshake failed, from the verify result or OpenSSL's queue. */
static void tls_failure(up_conn *k, char *out, size_t cap) {
    SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = bufferevent_get_openssl_error(k->bev);
    if (vr != X509_V_OK) {
        snprintf(out, cap, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    } else if (e) {
        char why[160];
        ERR_error_string_n(e, why, sizeof why);
        snprintf(out, cap, "TLS handshake failed: %s", why);
    } else {
        out[0] = '\0';
    }
    while (bufferevent_get_openssl_error(k->bev))
        ;
    ERR_clear_error();
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    up_conn *k = arg;
    cg_up_call *c = k->call;
    if (!c) { /* idle: closed by the server, or an error */
        conn_free(k);
        return;
    }
    if (c->pending)
        return; /* about to fail from the kick */
    if (what & BEV_EVENT_CONNECTED) {
        k->connected = 1;
        evtimer_del(&k->timer);
        if (k->ai) {
            evutil_freeaddrinfo(k->ai);
            k->ai = k->ai_next = NULL;
        }
        send_request(c);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    if (!k->connected) {
        char why[200];
        why[0] = '\0';
        if (k->h->tls)
            tls_failure(k, why, sizeof why);
        if (why[0]) {
            failf(c, CG_UP_CONNECT_FAILED, "%s port %d: %s", k->h->host, k->h->port, why);
            return;
        }
        snprintf(k->last_err, sizeof k->last_err, "%s",
                 (what & BEV_EVENT_EOF) || !err ? "connection closed during connect"
                                                : evutil_socket_error_to_string(err));
        conn_try_next(k);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->eof = 1;
        on_conn_end(c, NULL);
        return;
    }
    char why[200];
    why[0] = '\0';
    if (k->h->tls)
        tls_failure(k, why, sizeof why);
    if (!why[0])
        snprintf(why, sizeof why, "%s", err ? evutil_socket_error_to_string(err) : "I/O error");
    c->eof = 1;
    on_conn_end(c, why);
}

/* ---- public call API ----------------------------------------------------- */

cg_up_call *cg_upstream_start(cg_upstream *u, const cg_up_opts *o, const cg_up_callbacks *cb,
                              void *arg) {
    cg_up_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->u = u;
    c->cb = *cb;
    c->arg = arg;
    c->headers = o->headers;
    c->body = o->body;
    c->body_len = o->body ? o->body_len : 0;
    c->connect_ms = o->connect_timeout_ms;
    c->idle_ms = o->idle_timeout_ms;
    c->t_start_us = cg_mono_us();
    evtimer_assign(&c->deadline, u->base, deadline_cb, c);
    event_assign(&c->kick, u->base, -1, 0, kick_cb, c);
    cg_h1_init(&c->ps, HEAD_MAX);
    cg_buf_init(&c->batch, BATCH_MAX);
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    u->active++;
    arm_timer(&c->deadline, o->first_byte_timeout_ms);
    c->setting_up = 1;
    char err[192];
    if (cg_h1_url_parse(o->url ? o->url : "", &c->url, err, sizeof err) != 0)
        failf(c, CG_UP_CONNECT_FAILED, "bad upstream URL: %s", err);
    else if (!(c->h = host_get(u, &c->url, o->ca_file, err, sizeof err)))
        failf(c, CG_UP_CONNECT_FAILED, "%s", err);
    else
        attach(c, 0);
    c->setting_up = 0;
    return c;
}

void cg_upstream_cancel(cg_up_call *c) {
    if (!c)
        return;
    c->cb.on_done = NULL;
    if (c->in_cb) {
        c->cancelled = 1; /* finished when the callback returns */
        return;
    }
    finish(c, CG_UP_ABORTED, NULL, 0);
}

void cg_upstream_resume(cg_up_call *c) {
    if (!c || !c->paused)
        return;
    c->paused = 0;
    arm_timer(&c->deadline, c->idle_ms);
    if (c->k && c->k->bev)
        bufferevent_enable(c->k->bev, EV_READ);
    event_active(&c->kick, EV_TIMEOUT, 1);
}

void cg_upstream_set_idle_timeout(cg_up_call *c, int ms) {
    c->idle_ms = ms;
    if (!c->paused && c->got_headers)
        arm_timer(&c->deadline, ms);
}

int64_t cg_upstream_ttfb_us(const cg_up_call *c) {
    return c->ttfb_us;
}

void cg_upstream_free(cg_upstream *u) {
    if (!u)
        return;
    while (u->calls) {
        cg_up_call *c = u->calls;
        if (c->k) {
            c->k->call = NULL;
            conn_free(c->k);
            c->k = NULL;
        }
        call_unlink(c);
        call_free(c);
    }
    while (u->lru_head)
        conn_free(u->lru_head);
    while (u->hosts) {
        up_host *h = u->hosts;
        u->hosts = h->next;
        free(h);
    }
    if (u->dns)
        evdns_base_free(u->dns, 1);
    free(u);
}
