/* mock_upstream: a small, fast, single-threaded OpenAI-shaped upstream for
 * bench/run.sh (raw epoll, HTTP/1.1 keep-alive, no dependencies).
 *
 *   cc -O2 bench/mock_upstream.c -o mock_upstream
 *   mock_upstream [--port N] [--port-file FILE]
 *     -> prints "MOCK_LISTENING <port>" once listening; SIGTERM/SIGINT exits.
 *
 * POST /v1/chat/completions
 *   body without "stream":true -> a chat.completion JSON (Content-Length) with
 *     usage incl. prompt_tokens_details / completion_tokens_details, and the
 *     x-request-id / openai-* / x-ratelimit-* headers the real API sends.
 *   body with "stream":true -> text/event-stream, chunked: a role chunk, 9
 *     content chunks, a finish chunk, a usage chunk when
 *     stream_options.include_usage is true, then "data: [DONE]". Every SSE
 *     event is its own HTTP chunk; the whole response is handed to the kernel
 *     in one write (no artificial delay: the benchmark measures the proxies,
 *     not a model's token rate).
 * GET /healthz -> 200. Anything else -> 404 JSON.
 *
 * The body is inspected with a tolerant key scanner, not a JSON parser: it is
 * a benchmark fixture, and the same bytes are served to every path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ (1u << 20)

typedef struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    int want_close;
    int sent_continue;
} conn;

static volatile sig_atomic_t g_stop;
static uint64_t g_counter;
static const char FINGERPRINT[] = "fp_7364236c9e";

static void on_signal(int s) {
    (void)s;
    g_stop = 1;
}

static void die(const char *m) {
    perror(m);
    exit(1);
}

static void out_reserve(conn *c, size_t extra) {
    if (c->out_len + extra <= c->out_cap)
        return;
    size_t n = c->out_cap ? c->out_cap : 4096;
    while (n < c->out_len + extra)
        n *= 2;
    c->out = realloc(c->out, n);
    if (!c->out)
        die("realloc");
    c->out_cap = n;
}

static void out_add(conn *c, const char *p, size_t n) {
    out_reserve(c, n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_printf(conn *c, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = c->out_cap - c->out_len;
        va_start(ap, fmt);
        int n = vsnprintf(c->out + c->out_len, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf");
        if ((size_t)n < room) {
            c->out_len += (size_t)n;
            return;
        }
        out_reserve(c, (size_t)n + 1);
    }
}

/* one HTTP chunk holding one SSE event */
static void out_chunk(conn *c, const char *p, size_t n) {
    out_printf(c, "%zx\r\n", n);
    out_add(c, p, n);
    out_add(c, "\r\n", 2);
}

/* Finds "key" : <value> in the body; returns a pointer to the value. */
static const char *find_key(const char *b, size_t n, const char *key) {
    size_t kl = strlen(key);
    const char *end = b + n;
    for (const char *p = b; p + kl + 2 <= end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + kl + 2 > end)
            return NULL;
        if (memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *v = p + kl + 2;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
                v++;
            if (v < end && *v == ':') {
                v++;
                while (v < end && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
                    v++;
                return v;
            }
        }
    }
    return NULL;
}

static int key_true(const char *b, size_t n, const char *key) {
    const char *v = find_key(b, n, key);
    return v && (size_t)(b + n - v) >= 4 && memcmp(v, "true", 4) == 0;
}

static void get_model(const char *b, size_t n, char *out, size_t cap) {
    snprintf(out, cap, "gpt-4o-mini");
    const char *v = find_key(b, n, "model");
    if (!v || *v != '"')
        return;
    v++;
    size_t i = 0;
    while (v + i < b + n && v[i] != '"' && v[i] != '\\' && i + 1 < cap)
        i++;
    if (i == 0 || v + i >= b + n || v[i] != '"')
        return;
    memcpy(out, v, i);
    out[i] = '\0';
}

static void make_id(char *out, size_t cap, const char *prefix) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t x = ++g_counter * 0x9e3779b97f4a7c15ull ^ 0xd1b54a32d192ed03ull;
    size_t pl = strlen(prefix);
    snprintf(out, cap, "%s", prefix);
    for (size_t i = 0; i < 29 && pl + i + 1 < cap; i++) {
        out[pl + i] = a[x % 62];
        x = x / 62 ^ (x << 7) ^ (uint64_t)i * 0x2545f4914f6cdd1dull;
        out[pl + i + 1] = '\0';
    }
}

static void common_headers(conn *c, int status, const char *reason, const char *ctype) {
    char rid[64];
    make_id(rid, sizeof rid, "req_");
    out_printf(c,
               "HTTP/1.1 %d %s\r\n"
               "Content-Type: %s\r\n"
               "x-request-id: %s\r\n"
               "openai-organization: mock-org\r\n"
               "openai-processing-ms: 1\r\n"
               "openai-version: 2020-10-01\r\n"
               "x-ratelimit-limit-requests: 10000\r\n"
               "x-ratelimit-remaining-requests: 9999\r\n"
               "x-ratelimit-reset-requests: 6ms\r\n"
               "x-ratelimit-limit-tokens: 30000000\r\n"
               "x-ratelimit-remaining-tokens: 29999000\r\n"
               "x-ratelimit-reset-tokens: 2ms\r\n"
               "Connection: %s\r\n",
               status, reason, ctype, rid, c->want_close ? "close" : "keep-alive");
}

static const char USAGE[] =
    "{\"prompt_tokens\":16,\"completion_tokens\":9,\"total_tokens\":25,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}";

static const char *const WORDS[] = {"Mock", " answer", " to:",   " Say",     " hello",
                                    " in",  " one",    " short", " sentence"};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

static void reply_chat(conn *c, const char *body, size_t blen) {
    char model[80], id[64], buf[1024];
    get_model(body, blen, model, sizeof model);
    make_id(id, sizeof id, "chatcmpl-");
    long created = (long)time(NULL);
    if (!key_true(body, blen, "stream")) {
        int n = snprintf(buf, sizeof buf,
                         "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%ld,"
                         "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"Mock answer to: Say hello in one short "
                         "sentence\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
                         "\"finish_reason\":\"stop\"}],\"usage\":%s,\"service_tier\":\"default\","
                         "\"system_fingerprint\":\"%s\"}",
                         id, created, model, USAGE, FINGERPRINT);
        common_headers(c, 200, "OK", "application/json");
        out_printf(c, "Content-Length: %d\r\n\r\n", n);
        out_add(c, buf, (size_t)n);
        return;
    }
    int inc = key_true(body, blen, "include_usage");
    const char *un = inc ? ",\"usage\":null" : "";
    common_headers(c, 200, "OK", "text/event-stream; charset=utf-8");
    out_printf(c, "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
    char head[384];
    snprintf(head, sizeof head,
             "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%ld,"
             "\"model\":\"%s\",\"service_tier\":\"default\",\"system_fingerprint\":\"%s\","
             "\"choices\":",
             id, created, model, FINGERPRINT);
    int n = snprintf(buf, sizeof buf,
                     "%s[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                     "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]%s}\n\n",
                     head, un);
    out_chunk(c, buf, (size_t)n);
    for (size_t i = 0; i < N_WORDS; i++) {
        n = snprintf(buf, sizeof buf,
                     "%s[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                     "\"finish_reason\":null}]%s}\n\n",
                     head, WORDS[i], un);
        out_chunk(c, buf, (size_t)n);
    }
    n = snprintf(buf, sizeof buf,
                 "%s[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]%s}"
                 "\n\n",
                 head, un);
    out_chunk(c, buf, (size_t)n);
    if (inc) {
        n = snprintf(buf, sizeof buf, "%s[],\"usage\":%s}\n\n", head, USAGE);
        out_chunk(c, buf, (size_t)n);
    }
    out_chunk(c, "data: [DONE]\n\n", 14);
    out_add(c, "0\r\n\r\n", 5);
}

static void reply_simple(conn *c, int status, const char *reason, const char *json) {
    common_headers(c, status, reason, "application/json");
    out_printf(c, "Content-Length: %zu\r\n\r\n%s", strlen(json), json);
}

static const char *hdr(const char *h, size_t hl, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *p = h, *end = h + hl;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Handles every complete request in c->in. Returns -1 to close. */
static int process(conn *c) {
    size_t off = 0;
    for (;;) {
        char *start = c->in + off;
        size_t avail = c->in_len - off;
        char *eoh = memmem(start, avail, "\r\n\r\n", 4);
        if (!eoh) {
            if (avail > 64 * 1024)
                return -1;
            break;
        }
        size_t hlen = (size_t)(eoh - start) + 4;
        char *eol = memmem(start, hlen, "\r\n", 2);
        size_t vlen = 0;
        const char *v = hdr(eol + 2, hlen - (size_t)(eol + 2 - start), "content-length", &vlen);
        size_t clen = v ? strtoul(v, NULL, 10) : 0;
        if (clen > MAX_REQ)
            return -1;
        if (avail < hlen + clen) {
            const char *ex = hdr(eol + 2, hlen - (size_t)(eol + 2 - start), "expect", &vlen);
            if (ex && !c->sent_continue) {
                out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->sent_continue = 1;
            }
            break;
        }
        c->sent_continue = 0;
        const char *cn = hdr(eol + 2, hlen - (size_t)(eol + 2 - start), "connection", &vlen);
        if (cn && vlen >= 5 && strncasecmp(cn, "close", 5) == 0)
            c->want_close = 1;
        if (memcmp(start, "HTTP/1.0", 8) == 0 ||
            memmem(start, (size_t)(eol - start), "HTTP/1.0", 8))
            c->want_close = 1;
        const char *body = start + hlen;
        if (strncmp(start, "POST /v1/chat/completions ", 26) == 0)
            reply_chat(c, body, clen);
        else if (strncmp(start, "GET /healthz ", 13) == 0)
            reply_simple(c, 200, "OK", "{\"status\":\"ok\"}");
        else
            reply_simple(c, 404, "Not Found",
                         "{\"error\":{\"message\":\"Unknown endpoint\",\"type\":"
                         "\"invalid_request_error\",\"param\":null,\"code\":\"unknown_url\"}}");
        off += hlen + clen;
        if (c->want_close)
            break;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return 0;
}

/* Writes what is pending. Returns 1 when all is written, 0 when the socket
 * is full, -1 on error. */
static int flush_out(conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 1;
}

static void close_conn(int ep, conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static void on_readable(int ep, conn *c) {
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            size_t n = c->in_cap ? c->in_cap * 2 : 32768;
            if (n > MAX_REQ + 65536) {
                close_conn(ep, c);
                return;
            }
            c->in = realloc(c->in, n);
            if (!c->in)
                die("realloc");
            c->in_cap = n;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n == 0) {
            close_conn(ep, c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            close_conn(ep, c);
            return;
        }
        c->in_len += (size_t)n;
        if ((size_t)n < room)
            break; /* short read: drained */
    }
    if (process(c) != 0) {
        close_conn(ep, c);
        return;
    }
    int rc = flush_out(c);
    if (rc < 0 || (rc == 1 && c->want_close)) {
        close_conn(ep, c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | (rc == 0 ? EPOLLOUT : 0), .data.ptr = c};
    if (rc == 0)
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_writable(int ep, conn *c) {
    int rc = flush_out(c);
    if (rc < 0 || (rc == 1 && c->want_close)) {
        close_conn(ep, c);
        return;
    }
    if (rc == 1) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

int main(int argc, char **argv) {
    int port = 0;
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--port N] [--port-file FILE]\n", argv[0]);
            return 2;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0)
        die("bind");
    if (listen(lfd, 4096) != 0)
        die("listen");
    socklen_t sl = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    port = ntohs(sin.sin_port);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f)
            die("port file");
        fprintf(f, "%d\n", port);
        fclose(f);
        rename(tmp, port_file);
    }
    printf("MOCK_LISTENING %d\n", port);
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_wait(ep, evs, 256, 500);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("calloc");
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                on_writable(ep, c);
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(ep, c);
        }
    }
    return 0;
}
