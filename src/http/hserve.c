/* hserve: HTTP/1.1 connections, request reading and response writing on a
 * libevent loop (see hserve.h).
 *
 * One cg_hreq per connection: it is both the connection and the request on
 * it, since a connection carries one request at a time (bytes of a
 * pipelined next request wait in the read buffer until the current
 * response is written). State moves: reading -> owned by the handler ->
 * writing the rest of the response -> reading again (keep-alive), or
 * closing (lingering when the client may still be sending).
 */
#include "http/hserve.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define IN_INIT (16u << 10)
#define IN_SLACK (4u << 10)
#define HDR_CAP (64u << 10)
#define LINGER_BYTES (64u << 20)
#define LINGER_MS 5000
#define ACCEPT_BATCH 64

struct cg_hserve {
    struct event_base *base;
    int lfd;
    struct event *lev;
    cg_hserve_opts o;
    cg_hserve_fn fn;
    void *arg;
    int stopping;
    struct cg_hreq *conns; /* every open (or handler-owned) connection */
    const struct timeval *tv_io, *tv_linger;
    time_t date_sec;
    char date[48]; /* "Date: ...\r\n" */
    size_t date_len;
};

struct cg_hreq {
    cg_hserve *s;
    struct cg_hreq *prev, *next;
    int fd;
    struct event *rev, *wev, *hup, *tmo;
    int rev_on, wev_on, hup_on;

    /* input */
    char *in;
    size_t in_len, in_cap;
    size_t scan;     /* cg_hp_head_end resume point */
    size_t head_len; /* 0 until the head is complete */
    int head_parsed;
    cg_hp_head head;
    size_t consumed; /* bytes of in belonging to the current request */
    cg_hp_chunked dech;
    cg_buf cbody; /* a chunked body, decoded */
    int sent_continue;

    /* the request handed to the handler */
    int owned;
    int in_dispatch;
    int bad_status;
    const char *bad_why;
    int too_large, too_exact;
    uint64_t too_size;
    const char *body;
    size_t body_len;
    void (*close_fn)(void *);
    void *close_arg;
    void (*drain_fn)(void *);
    void *drain_arg;

    /* connection fate */
    int dead;        /* the socket is closed */
    int notify;      /* the close callback is due (next loop turn) */
    int rd_eof;      /* the client shut down its sending side */
    int close_after; /* no further request on this connection */
    int linger;      /* close by discarding input until EOF (the client may still send) */
    int lingering;
    size_t lingered;

    /* response */
    char *hdr;
    size_t hdr_len, hdr_cap;
    char *out;
    size_t out_off, out_len, out_cap;
    int streaming;    /* cg_hreq_start() sent the head */
    int chunked;      /* ... with chunked framing (else close-delimited) */
    struct event fev; /* streamed chunks are sent once the current callback returns */
    int flush_soon;
};

typedef struct cg_hreq conn;

static void conn_after(conn *c);
static void on_flush_soon(evutil_socket_t fd, short what, void *arg);

/* --- small helpers ------------------------------------------------------- */

static int grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int out_add(conn *c, const void *p, size_t n) {
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (grow(&c->out, &c->out_cap, c->out_len + n))
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static const char *reason(int st) {
    static const struct {
        int st;
        const char *s;
    } T[] = {{100, "Continue"},
             {200, "OK"},
             {201, "Created"},
             {202, "Accepted"},
             {204, "No Content"},
             {400, "Bad Request"},
             {401, "Unauthorized"},
             {402, "Payment Required"},
             {403, "Forbidden"},
             {404, "Not Found"},
             {405, "Method Not Allowed"},
             {408, "Request Timeout"},
             {409, "Conflict"},
             {413, "Payload Too Large"},
             {415, "Unsupported Media Type"},
             {422, "Unprocessable Entity"},
             {429, "Too Many Requests"},
             {431, "Request Header Fields Too Large"},
             {499, "Client Closed Request"},
             {500, "Internal Server Error"},
             {501, "Not Implemented"},
             {502, "Bad Gateway"},
             {503, "Service Unavailable"},
             {504, "Gateway Timeout"},
             {505, "HTTP Version Not Supported"},
             {529, "Overloaded"}};
    if (st == 200)
        return "OK";
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (T[i].st == st)
            return T[i].s;
    return "Status";
}

static void refresh_date(cg_hserve *s) {
    struct timeval tv;
    event_base_gettimeofday_cached(s->base, &tv);
    if (tv.tv_sec == s->date_sec && s->date_len)
        return;
    s->date_sec = tv.tv_sec;
    struct tm tm;
    gmtime_r(&s->date_sec, &tm);
    s->date_len = strftime(s->date, sizeof s->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static size_t put_uint(char *p, uint64_t v) {
    char t[24];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    return n;
}

/* The status line and header block, with framing, appended to out. */
static int put_head(conn *c, int status, int has_len, uint64_t len) {
    refresh_date(c->s);
    char line[96];
    status = status < 100 || status > 999 ? 500 : status;
    memcpy(line, "HTTP/1.1 ", 9);
    size_t n = 9 + put_uint(line + 9, (uint64_t)status);
    line[n++] = ' ';
    const char *rs = reason(status);
    size_t rl = strlen(rs);
    memcpy(line + n, rs, rl);
    n += rl;
    line[n++] = '\r';
    line[n++] = '\n';
    char tail[96];
    size_t t = 0;
    if (has_len) {
        memcpy(tail, "Content-Length: ", 16);
        t = 16 + put_uint(tail + 16, len);
        tail[t++] = '\r';
        tail[t++] = '\n';
    } else if (c->chunked) {
        memcpy(tail, "Transfer-Encoding: chunked\r\n", 28);
        t = 28;
    }
    if (c->close_after || c->s->stopping) {
        memcpy(tail + t, "Connection: close\r\n", 19);
        t += 19;
    } else if (c->head.minor == 0) {
        memcpy(tail + t, "Connection: keep-alive\r\n", 24);
        t += 24;
    }
    tail[t++] = '\r';
    tail[t++] = '\n';
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (grow(&c->out, &c->out_cap, c->out_len + n + c->s->date_len + c->hdr_len + t))
        return -1;
    char *o = c->out + c->out_len;
    memcpy(o, line, n);
    o += n;
    memcpy(o, c->s->date, c->s->date_len);
    o += c->s->date_len;
    if (c->hdr_len)
        memcpy(o, c->hdr, c->hdr_len);
    o += c->hdr_len;
    memcpy(o, tail, t);
    o += t;
    c->out_len = (size_t)(o - c->out);
    return 0;
}

/* --- events, closing ----------------------------------------------------- */

static void want_write(conn *c, int on) {
    if (on && !c->wev_on) {
        event_add(c->wev, NULL);
        c->wev_on = 1;
    } else if (!on && c->wev_on) {
        event_del(c->wev);
        c->wev_on = 0;
    }
}

static void want_read(conn *c, int on) {
    if (on && !c->rev_on) {
        event_add(c->rev, NULL);
        c->rev_on = 1;
    } else if (!on && c->rev_on) {
        event_del(c->rev);
        c->rev_on = 0;
    }
}

/* A handler that owns the request hears that its client left once,
 * through its close callback, on the next loop turn: never from inside its
 * own call into this module. */
static void tell_gone(conn *c) {
    if (c->owned && c->close_fn && !c->notify) {
        c->notify = 1;
        event_active(c->tmo, EV_TIMEOUT, 0);
    }
}

/* The client shut down its sending side (EOF, or EPOLLRDHUP) while the
 * handler owns its request: as in nginx it counts as gone, but it may still
 * read, so the reply is sent, then the connection closes. */
static void half_closed(conn *c) {
    c->rd_eof = 1;
    c->close_after = 1;
    c->linger = 0;
    want_read(c, 0);
    if (c->hup_on) {
        event_del(c->hup);
        c->hup_on = 0;
    }
    tell_gone(c);
}

/* The socket is gone (error, timeout, or we close it). */
static void conn_close_fd(conn *c) {
    if (c->dead)
        return;
    c->dead = 1;
    want_read(c, 0);
    want_write(c, 0);
    if (c->hup_on) {
        event_del(c->hup);
        c->hup_on = 0;
    }
    event_del(c->tmo);
    close(c->fd);
    c->fd = -1;
    c->out_off = c->out_len = 0;
    tell_gone(c);
}

static void conn_free(conn *c) {
    cg_hserve *s = c->s;
    c->close_fn = NULL;
    conn_close_fd(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->rev);
    event_free(c->wev);
    if (c->hup)
        event_free(c->hup);
    event_free(c->tmo);
    event_del(&c->fev);
    cg_buf_free(&c->cbody);
    free(c->in);
    free(c->hdr);
    free(c->out);
    free(c);
}

/* Writes what is queued. 0: all written; 1: waiting for the socket; -1:
 * the connection is gone. */
static int flush(conn *c) {
    if (c->dead)
        return -1;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wev_on) {
                want_write(c, 1);
                event_add(c->tmo, c->s->tv_io);
            }
            return 1;
        }
        conn_close_fd(c);
        return -1;
    }
    c->out_off = c->out_len = 0;
    if (c->wev_on) {
        want_write(c, 0);
        event_del(c->tmo);
    }
    return 0;
}

/* The head (queued in out) and body in one sendmsg; the rest is queued. */
static int send_with_body(conn *c, const char *body, size_t len) {
    if (c->dead)
        return -1;
    size_t pend = c->out_len - c->out_off;
    struct iovec iov[2] = {{c->out + c->out_off, pend}, {(void *)body, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t n;
    do
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_close_fd(c);
        return -1;
    }
    size_t sent = n > 0 ? (size_t)n : 0;
    if (sent >= pend + len) {
        c->out_off = c->out_len = 0;
        return 0;
    }
    if (sent < pend) {
        c->out_off += sent;
        sent = 0;
    } else {
        c->out_off = c->out_len;
        sent -= pend;
    }
    if (out_add(c, body + sent, len - sent)) {
        conn_close_fd(c);
        return -1;
    }
    return flush(c);
}

/* --- reading requests ---------------------------------------------------- */

static void reset_request(conn *c) {
    /* keep the bytes of a pipelined next request */
    size_t rest = c->in_len - c->consumed;
    if (rest && c->consumed)
        memmove(c->in, c->in + c->consumed, rest);
    c->in_len = rest;
    c->consumed = 0;
    c->scan = 0;
    c->head_len = 0;
    c->head_parsed = 0;
    c->sent_continue = 0;
    c->bad_status = 0;
    c->bad_why = NULL;
    c->too_large = c->too_exact = 0;
    c->too_size = 0;
    c->body = NULL;
    c->body_len = 0;
    c->close_fn = c->drain_fn = NULL;
    c->notify = 0;
    c->hdr_len = 0;
    c->streaming = c->chunked = 0;
    cg_buf_reset(&c->cbody);
}

static void dispatch(conn *c) {
    c->owned = 1;
    event_del(c->tmo);
    c->in_dispatch++;
    c->s->fn(c, c->s->arg);
    c->in_dispatch--;
}

static void refuse(conn *c, int status, const char *why) {
    c->bad_status = status;
    c->bad_why = why;
    c->close_after = 1;
    c->linger = 1;
    c->consumed = c->in_len;
}

static int send_continue(conn *c) {
    if (c->sent_continue || !c->head.expect_continue || c->head.minor == 0)
        return 0;
    c->sent_continue = 1;
    static const char k[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (out_add(c, k, sizeof k - 1))
        return -1;
    return flush(c) < 0 ? -1 : 0;
}

/* The body so far: 1 when the request is complete (or refused), 0 when
 * more is needed, -1 when the connection is gone. */
static int read_body(conn *c) {
    const cg_hp_head *h = &c->head;
    size_t max_body = c->s->o.max_body;
    if (h->content_length >= 0) {
        uint64_t cl = (uint64_t)h->content_length;
        if (cl > max_body) {
            c->too_large = c->too_exact = 1;
            c->too_size = cl;
            c->close_after = c->linger = 1;
            c->consumed = c->in_len;
            return 1;
        }
        size_t need = c->head_len + (size_t)cl;
        if (c->in_len < need) {
            if (grow(&c->in, &c->in_cap, need + IN_SLACK))
                return -1;
            return send_continue(c) < 0 ? -1 : 0;
        }
        c->body = c->in + c->head_len;
        c->body_len = (size_t)cl;
        c->consumed = need;
        return 1;
    }
    if (!h->chunked) {
        c->consumed = c->head_len;
        return 1;
    }
    size_t used = 0;
    int over = 0;
    size_t raw = c->in_len - c->head_len;
    cg_hp_rc rc = cg_hp_chunked_feed(&c->dech, c->in + c->head_len, raw, &used, &c->cbody, &over);
    /* decoded bytes are in cbody: drop the raw ones (the head stays put) */
    memmove(c->in + c->head_len, c->in + c->head_len + used, raw - used);
    c->in_len -= used;
    if (rc == CG_HP_ERROR) {
        refuse(c, 400, "malformed chunked request body");
        return 1;
    }
    if (over) {
        c->too_large = 1;
        c->too_size = c->dech.total;
        c->close_after = c->linger = 1;
        c->consumed = c->in_len;
        return 1;
    }
    if (rc == CG_HP_MORE)
        return send_continue(c) < 0 ? -1 : 0;
    c->body = c->cbody.data ? c->cbody.data : "";
    c->body_len = c->cbody.len;
    c->consumed = c->head_len;
    return 1;
}

/* Parses what is buffered and hands a complete request to the handler. */
static void process(conn *c) {
    if (!c->head_len) {
        c->head_len = cg_hp_head_end(c->in, c->in_len, &c->scan);
        if (!c->head_len && c->in_len < c->s->o.max_head) {
            event_add(c->tmo, c->s->tv_io);
            return;
        }
        if (!c->head_len || c->head_len > c->s->o.max_head) {
            c->head_parsed = 1;
            c->head.n_fields = 0; /* nothing of this head was parsed */
            refuse(c, 431, "request head too large");
        }
    }
    if (!c->head_parsed) {
        const char *why = NULL;
        c->head_parsed = 1;
        cg_hp_chunked_init(&c->dech);
        int st = cg_hp_parse_head(c->in, c->head_len, &c->head, &why);
        if (st)
            refuse(c, st, why);
        else if (!c->head.keep_alive)
            c->close_after = 1;
    }
    if (!c->bad_status) {
        int rc = read_body(c);
        if (rc < 0) {
            conn_free(c);
            return;
        }
        if (rc == 0) {
            event_add(c->tmo, c->s->tv_io);
            return;
        }
    }
    dispatch(c);
    conn_after(c);
}

static void lingering_read(conn *c) {
    char tmp[16384];
    for (;;) {
        ssize_t n = read(c->fd, tmp, sizeof tmp);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > LINGER_BYTES)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EOF or error */
    }
    conn_free(c);
}

/* Room to read into. While the handler owns the request the buffer never
 * moves (the head and body point into it), so it does not grow then. */
static int make_room(conn *c) {
    if (c->owned || c->in_len < c->in_cap)
        return 0;
    size_t hard = c->s->o.max_head + c->s->o.max_body + IN_SLACK;
    size_t n = c->in_cap ? c->in_cap * 2 : IN_INIT;
    if (n > hard)
        n = hard;
    if (n <= c->in_cap)
        return -1; /* a head past max_head is refused before this */
    return grow(&c->in, &c->in_cap, n);
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    conn *c = arg;
    if (c->lingering) {
        lingering_read(c);
        return;
    }
    if (what & EV_CLOSED) { /* the hup watcher (read buffer full) */
        half_closed(c);
        return;
    }
    if (make_room(c) != 0) {
        conn_free(c);
        return;
    }
    size_t room = c->in_cap - c->in_len;
    if (room == 0) {
        /* the handler owns the request and a pipelined one filled the
         * buffer: stop reading, keep watching for the client leaving */
        want_read(c, 0);
        if (c->hup && !c->hup_on) {
            event_add(c->hup, NULL);
            c->hup_on = 1;
        }
        return;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, room);
    if (n == 0 && c->owned) {
        half_closed(c);
        return;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close_fd(c);
        if (!c->owned)
            conn_free(c);
        return;
    }
    if (n > 0)
        c->in_len += (size_t)n;
    if (!c->owned && c->in_len)
        process(c); /* also a pipelined request activated by conn_after */
}

static void on_write(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn *c = arg;
    size_t before = c->out_len - c->out_off;
    int rc = flush(c);
    if (rc == 1 && c->out_len - c->out_off < before)
        event_add(c->tmo, c->s->tv_io); /* progress: the client is reading */
    if (rc == 0 && c->owned && c->drain_fn)
        c->drain_fn(c->drain_arg);
    else if (rc != 1)
        conn_after(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->notify) {
        c->notify = 0;
        if (c->wev_on) /* activating the timer consumed a pending write timeout */
            event_add(c->tmo, c->s->tv_io);
        if (c->owned && c->close_fn) {
            void (*fn)(void *) = c->close_fn;
            c->close_fn = NULL;
            fn(c->close_arg);
        }
        return;
    }
    if (c->lingering) {
        conn_free(c);
        return;
    }
    conn_close_fd(c);
    if (!c->owned)
        conn_free(c);
}

/* The handler let go of the request, or output finished: what next. */
static void conn_after(conn *c) {
    if (c->in_dispatch)
        return; /* process() goes on when the handler returns */
    if (c->dead) {
        if (!c->owned)
            conn_free(c);
        return;
    }
    if (c->owned || c->out_off < c->out_len)
        return;
    if (c->close_after || c->s->stopping) {
        if (c->linger) {
            shutdown(c->fd, SHUT_WR);
            c->lingering = 1;
            want_read(c, 1);
            event_add(c->tmo, c->s->tv_linger);
            return;
        }
        conn_free(c);
        return;
    }
    reset_request(c);
    if (c->hup_on) {
        event_del(c->hup);
        c->hup_on = 0;
    }
    want_read(c, 1);
    event_add(c->tmo, c->s->tv_io);
    if (c->in_len)
        event_active(c->rev, EV_READ, 0); /* a pipelined request: next loop turn */
}

/* --- accepting ----------------------------------------------------------- */

static conn *conn_new(cg_hserve *s, int fd) {
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->fd = fd;
    cg_buf_init(&c->cbody, s->o.max_body);
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->tmo = evtimer_new(s->base, on_timeout, c);
    event_assign(&c->fev, s->base, -1, 0, on_flush_soon, c);
    if (event_base_get_features(s->base) & EV_FEATURE_EARLY_CLOSE)
        c->hup = event_new(s->base, fd, EV_CLOSED | EV_PERSIST, on_read, c);
    if (!c->rev || !c->wev || !c->tmo) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->tmo)
            event_free(c->tmo);
        if (c->hup)
            event_free(c->hup);
        free(c);
        return NULL;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    want_read(c, 1);
    event_add(c->tmo, s->tv_io);
    return c;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
    (void)what;
    cg_hserve *s = arg;
    for (int i = 0; i < ACCEPT_BATCH && !s->stopping; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                CG_WARN("accept: %s", strerror(errno));
            return; /* EAGAIN: another loop took it, or none left */
        }
        if (!conn_new(s, fd))
            close(fd);
    }
}

cg_hserve *cg_hserve_new(struct event_base *base, int listen_fd, const cg_hserve_opts *o,
                         cg_hserve_fn fn, void *arg) {
    cg_hserve *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->lfd = listen_fd;
    s->o = *o;
    if (s->o.max_head < 1024)
        s->o.max_head = 1024;
    if (s->o.timeout_ms <= 0)
        s->o.timeout_ms = 60000;
    s->fn = fn;
    s->arg = arg;
    struct timeval io = {s->o.timeout_ms / 1000, (s->o.timeout_ms % 1000) * 1000};
    struct timeval lg = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    /* common timeouts: O(1) adds for the per-connection timers */
    s->tv_io = event_base_init_common_timeout(base, &io);
    s->tv_linger = event_base_init_common_timeout(base, &lg);
    s->lev = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_accept, s);
    if (!s->tv_io || !s->tv_linger || !s->lev || event_add(s->lev, NULL) != 0) {
        if (s->lev)
            event_free(s->lev);
        free(s);
        return NULL;
    }
    return s;
}

void cg_hserve_stop_accepting(cg_hserve *s) {
    if (s->stopping)
        return;
    s->stopping = 1;
    event_del(s->lev);
    /* idle keep-alive connections close now; busy ones after their reply */
    conn *c = s->conns;
    while (c) {
        conn *n = c->next;
        if (!c->owned && !c->lingering && c->in_len == 0 && c->out_off == c->out_len)
            conn_free(c);
        c = n;
    }
}

void cg_hserve_free(cg_hserve *s) {
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    event_free(s->lev);
    free(s);
}

/* --- the request API ----------------------------------------------------- */

cg_hmethod cg_hreq_method(const cg_hreq *r) {
    return r->head_parsed && !r->bad_status ? r->head.method : CG_HM_OTHER;
}

const char *cg_hreq_uri(const cg_hreq *r) {
    return r->head_parsed && !r->bad_status ? r->in + r->head.target_off : "/";
}

int cg_hreq_admin(const cg_hreq *r) {
    return r->s->o.admin;
}

const char *cg_hreq_header(const cg_hreq *r, const char *name) {
    /* a refused head still has the fields read before the problem */
    if (!r->head_parsed)
        return NULL;
    return cg_hp_find(r->in, &r->head, name);
}

const char *cg_hreq_body(const cg_hreq *r, size_t *len) {
    *len = r->body ? r->body_len : 0;
    return r->body ? r->body : "";
}

int cg_hreq_too_large(const cg_hreq *r, uint64_t *size, int *exact) {
    if (size)
        *size = r->too_size;
    if (exact)
        *exact = r->too_exact;
    return r->too_large;
}

int cg_hreq_bad(const cg_hreq *r, const char **why) {
    if (why)
        *why = r->bad_why ? r->bad_why : "";
    return r->bad_status;
}

int cg_hreq_client_gone(const cg_hreq *r) {
    return r->dead || r->rd_eof;
}

static int header_ok(const char *s, size_t *len) {
    size_t n = strcspn(s, "\r\n");
    if (s[n])
        return 0;
    *len = n;
    return 1;
}

void cg_hreq_add_header(cg_hreq *r, const char *name, const char *value) {
    size_t nl = 0, vl = 0;
    if (!name || !value || r->streaming || !header_ok(name, &nl) || !nl || !header_ok(value, &vl))
        return;
    size_t need = r->hdr_len + nl + vl + 4;
    if (need > HDR_CAP || grow(&r->hdr, &r->hdr_cap, need))
        return;
    char *p = r->hdr + r->hdr_len;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    r->hdr_len = need;
}

/* The handler is done with the request. */
static void release(conn *c) {
    c->owned = 0;
    c->close_fn = NULL;
    c->drain_fn = NULL;
    c->notify = 0;
    conn_after(c);
}

void cg_hreq_reply(cg_hreq *r, int status, const char *body, size_t len) {
    r->close_fn = NULL;
    if (!r->dead && !r->streaming) {
        int head_only = r->head_parsed && r->head.method == CG_HM_HEAD;
        if (put_head(r, status, 1, len) != 0)
            conn_close_fd(r);
        else
            send_with_body(r, body, head_only ? 0 : len);
    }
    release(r);
}

void cg_hreq_start(cg_hreq *r, int status) {
    if (r->dead || r->streaming)
        return;
    r->streaming = 1;
    r->chunked = r->head.minor >= 1;
    if (!r->chunked)
        r->close_after = 1; /* HTTP/1.0: the end of the stream is the close */
    if (put_head(r, status, 0, 0) != 0)
        conn_close_fd(r);
    /* not flushed: the head goes out with the first chunk or the end */
}

/* Adds a chunk to the output; nonzero when it did not fit. */
static int out_chunk(cg_hreq *r, const char *p, size_t n) {
    if (!r->chunked)
        return out_add(r, p, n);
    /* the chunk-size line, hex, without printf (once per streamed chunk) */
    char sz[24];
    char *e = sz + sizeof sz, *s = e - 2;
    size_t v = n;
    s[0] = '\r';
    s[1] = '\n';
    do {
        *--s = "0123456789abcdef"[v & 15];
    } while ((v >>= 4) != 0 && s > sz);
    return out_add(r, s, (size_t)(e - s)) || out_add(r, p, n) || out_add(r, "\r\n", 2);
}

void cg_hreq_end_with(cg_hreq *r, const char *p, size_t n) {
    if (!r->dead && r->streaming && n && out_chunk(r, p, n))
        conn_close_fd(r);
    cg_hreq_end(r);
}

/* Chunks queued while one callback runs (the events of one upstream read,
 * and often the end of the stream after them) leave in one send, made when
 * that callback has returned: libevent runs an activated event in the same
 * loop turn. */
static void on_flush_soon(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn *c = arg;
    c->flush_soon = 0;
    if (!c->dead && !c->wev_on && c->out_len > c->out_off)
        flush(c);
}

void cg_hreq_chunk(cg_hreq *r, const char *p, size_t n) {
    if (r->dead || !r->streaming || n == 0)
        return;
    if (out_chunk(r, p, n)) {
        conn_close_fd(r);
    } else if (!r->wev_on && !r->flush_soon) { /* else a send is already due */
        r->flush_soon = 1;
        event_active(&r->fev, EV_TIMEOUT, 0);
    }
}

void cg_hreq_end(cg_hreq *r) {
    r->close_fn = NULL;
    if (!r->dead && r->streaming) {
        if (r->chunked && out_add(r, "0\r\n\r\n", 5) != 0)
            conn_close_fd(r);
        else if (!r->wev_on)
            flush(r);
    } else if (!r->dead) {
        r->close_after = 1; /* ended without a response: nothing valid was sent */
        r->linger = 0;
    }
    release(r);
}

void cg_hreq_abandon(cg_hreq *r) {
    r->close_fn = NULL;
    if (!r->dead)
        conn_close_fd(r);
    release(r);
}

size_t cg_hreq_unsent(const cg_hreq *r) {
    return r->dead ? 0 : r->out_len - r->out_off;
}

void cg_hreq_on_close(cg_hreq *r, void (*fn)(void *), void *arg) {
    r->close_fn = fn;
    r->close_arg = arg;
}

void cg_hreq_on_drain(cg_hreq *r, void (*fn)(void *), void *arg) {
    r->drain_fn = fn;
    r->drain_arg = arg;
}
