/* h1: incremental HTTP/1.1 response parser and URL split (see h1.h). */
#include "http/h1.h"
#include "core/find.h"
#include "core/hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    S_STATUS = 0,
    S_HEADER,
    /* states from here on are in the body (cg_h1_in_body) */
    S_BODY_NONE, /* complete; the next call reports CG_H1_DONE */
    S_BODY_CL,
    S_BODY_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_EXT,
    S_CHUNK_SIZE_LF,
    S_CHUNK_DATA,
    S_CHUNK_DATA_CR,
    S_CHUNK_DATA_LF,
    S_TRAILER_START,
    S_TRAILER_LINE,
    S_TRAILER_END_LF,
    S_DONE,
    S_ERROR,
};

enum {
    F_CL = 1u << 0,          /* Content-Length seen */
    F_TE = 1u << 1,          /* Transfer-Encoding seen */
    F_CHUNKED = 1u << 2,     /* ... and its last coding is chunked */
    F_CONN_CLOSE = 1u << 3,  /* Connection: close */
    F_CONN_KEEP = 1u << 4,   /* Connection: keep-alive */
    F_UNTIL_CLOSE = 1u << 5, /* the body ends when the connection does */
};

#define CHUNK_EXT_MAX 4096
#define CHUNK_DIGITS_MAX 15 /* < 2^60 bytes */
#define CONTENT_LENGTH_MAX (UINT64_C(1) << 62)

static void fail(cg_h1_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(cg_h1_parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->state = S_ERROR;
}

void cg_h1_init(cg_h1_parser *p, size_t head_max) {
    memset(p, 0, sizeof *p);
    p->head_max = head_max;
}

void cg_h1_reset(cg_h1_parser *p) {
    char *line = p->line;
    size_t cap = p->line_cap, max = p->head_max;
    memset(p, 0, sizeof *p);
    p->line = line;
    p->line_cap = cap;
    p->head_max = max;
}

void cg_h1_free(cg_h1_parser *p) {
    free(p->line);
    p->line = NULL;
    p->line_cap = p->line_len = 0;
}

int cg_h1_in_body(const cg_h1_parser *p) {
    return p->state >= S_BODY_NONE && p->state != S_ERROR;
}

/* RFC 9110 tchar: a header name's bytes. */
#define T1(c) [c] = 1
static const unsigned char TCHAR[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'),
    T1('^'), T1('_'), T1('`'), T1('|'), T1('~'), T1('0'),  T1('1'), T1('2'), T1('3'), T1('4'),
    T1('5'), T1('6'), T1('7'), T1('8'), T1('9'), T1('A'),  T1('B'), T1('C'), T1('D'), T1('E'),
    T1('F'), T1('G'), T1('H'), T1('I'), T1('J'), T1('K'),  T1('L'), T1('M'), T1('N'), T1('O'),
    T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'), T1('U'),  T1('V'), T1('W'), T1('X'), T1('Y'),
    T1('Z'), T1('a'), T1('b'), T1('c'), T1('d'), T1('e'),  T1('f'), T1('g'), T1('h'), T1('i'),
    T1('j'), T1('k'), T1('l'), T1('m'), T1('n'), T1('o'),  T1('p'), T1('q'), T1('r'), T1('s'),
    T1('t'), T1('u'), T1('v'), T1('w'), T1('x'), T1('y'),  T1('z'),
};
#undef T1

static int is_tchar(unsigned char c) {
    return TCHAR[c];
}

static int name_is(const char *s, size_t n, const char *lit) {
    size_t l = strlen(lit);
    return n == l && strncasecmp(s, lit, l) == 0;
}

/* The last comma-separated token of v, trimmed. */
static void last_token(const char *v, size_t n, const char **t, size_t *tn) {
    const char *s = v + n;
    while (s > v && s[-1] != ',')
        s--;
    const char *e = v + n;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *t = s;
    *tn = (size_t)(e - s);
}

static void connection_tokens(cg_h1_parser *p, const char *v, size_t n) {
    const char *s = v, *end = v + n;
    while (s < end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        const char *e = c ? c : end;
        const char *a = s, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (name_is(a, (size_t)(b - a), "close"))
            p->flags |= F_CONN_CLOSE;
        else if (name_is(a, (size_t)(b - a), "keep-alive"))
            p->flags |= F_CONN_KEEP;
        s = c ? c + 1 : end;
    }
}

static void content_length(cg_h1_parser *p, const char *v, size_t n) {
    uint64_t x = 0;
    if (n == 0 || n > 19) {
        fail(p, "bad Content-Length");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            fail(p, "bad Content-Length");
            return;
        }
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > CONTENT_LENGTH_MAX) {
        fail(p, "Content-Length too large");
        return;
    }
    if ((p->flags & F_CL) && p->content_length != x) {
        fail(p, "conflicting Content-Length headers");
        return;
    }
    p->flags |= F_CL;
    p->content_length = x;
}

static cg_h1_event status_line(cg_h1_parser *p, const char *s, size_t n) {
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
        s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (n > 12 && s[12] != ' ')) {
        fail(p, "malformed status line");
        return CG_H1_ERROR;
    }
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    p->flags = 0;
    p->state = S_HEADER;
    return CG_H1_AGAIN;
}

static cg_h1_event head_end(cg_h1_parser *p) {
    if (p->status < 200) {
        if (p->status == 101) {
            fail(p, "unexpected 101 Switching Protocols");
            return CG_H1_ERROR;
        }
        p->state = S_STATUS; /* an interim response: the real one follows */
        return CG_H1_AGAIN;
    }
    if (p->status == 204 || p->status == 304) {
        p->state = S_BODY_NONE;
    } else if (p->flags & F_TE) {
        if (p->flags & F_CHUNKED) {
            p->state = S_CHUNK_SIZE;
            p->remaining = 0;
        } else {
            p->state = S_BODY_CLOSE;
            p->flags |= F_UNTIL_CLOSE;
        }
    } else if (p->flags & F_CL) {
        p->remaining = p->content_length;
        p->state = p->remaining ? S_BODY_CL : S_BODY_NONE;
    } else {
        p->state = S_BODY_CLOSE;
        p->flags |= F_UNTIL_CLOSE;
    }
    return CG_H1_HEAD_DONE;
}

static cg_h1_event header_line(cg_h1_parser *p, const char *s, size_t n, cg_h1_span *a,
                               cg_h1_span *b) {
    if (s[0] == ' ' || s[0] == '\t') {
        fail(p, "folded response header line");
        return CG_H1_ERROR;
    }
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) {
        fail(p, "malformed response header line");
        return CG_H1_ERROR;
    }
    size_t nn = (size_t)(colon - s);
    for (size_t i = 0; i < nn; i++)
        if (!is_tchar((unsigned char)s[i])) {
            fail(p, "malformed response header name");
            return CG_H1_ERROR;
        }
    const char *v = colon + 1, *e = s + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t vn = (size_t)(e - v);
    if (cg_header_ctl_len(v, vn) != vn) {
        fail(p, "control character in a response header value");
        return CG_H1_ERROR;
    }
    if (p->status < 200)
        return CG_H1_AGAIN; /* an interim response's headers are skipped */
    if (name_is(s, nn, "content-length")) {
        content_length(p, v, vn);
        if (p->state == S_ERROR)
            return CG_H1_ERROR;
    } else if (name_is(s, nn, "transfer-encoding")) {
        const char *t;
        size_t tn;
        last_token(v, vn, &t, &tn);
        p->flags |= F_TE;
        if (name_is(t, tn, "chunked"))
            p->flags |= F_CHUNKED;
        else
            p->flags &= ~(unsigned)F_CHUNKED;
    } else if (name_is(s, nn, "connection")) {
        connection_tokens(p, v, vn);
    }
    a->p = s;
    a->n = nn;
    b->p = v;
    b->n = vn;
    return CG_H1_HEADER;
}

static cg_h1_event head_line(cg_h1_parser *p, const char *s, size_t n, cg_h1_span *a,
                             cg_h1_span *b) {
    if (n && s[n - 1] == '\r')
        n--;
    if (p->state == S_STATUS)
        return status_line(p, s, n);
    if (n == 0)
        return head_end(p);
    return header_line(p, s, n, a, b);
}

static int line_append(cg_h1_parser *p, const char *s, size_t n) {
    if (p->line_len + n > p->line_cap) {
        size_t cap = p->line_cap ? p->line_cap : 256;
        while (cap < p->line_len + n)
            cap *= 2;
        char *nl = realloc(p->line, cap);
        if (!nl)
            return -1;
        p->line = nl;
        p->line_cap = cap;
    }
    memcpy(p->line + p->line_len, s, n);
    p->line_len += n;
    return 0;
}

static void size_line_done(cg_h1_parser *p) {
    p->ext_bytes = 0;
    p->state = p->remaining ? S_CHUNK_DATA : S_TRAILER_START;
}

/* Chunk framing and trailers, one byte at a time. */
static void chunk_byte(cg_h1_parser *p, unsigned char c) {
    switch (p->state) {
    case S_CHUNK_SIZE: {
        int h = cg_hexval(c);
        if (h >= 0) {
            if (++p->ext_bytes > CHUNK_DIGITS_MAX) {
                fail(p, "chunk size too large");
                return;
            }
            p->remaining = p->remaining * 16 + (uint64_t)h;
        } else if (p->ext_bytes == 0) {
            fail(p, "malformed chunk size");
        } else if (c == ';' || c == ' ' || c == '\t') {
            p->ext_bytes = 0;
            p->state = S_CHUNK_EXT;
        } else if (c == '\r') {
            p->state = S_CHUNK_SIZE_LF;
        } else if (c == '\n') {
            size_line_done(p);
        } else {
            fail(p, "malformed chunk size");
        }
        return;
    }
    case S_CHUNK_EXT:
        if (c == '\n')
            size_line_done(p);
        else if (++p->ext_bytes > CHUNK_EXT_MAX)
            fail(p, "chunk extension too long");
        return;
    case S_CHUNK_SIZE_LF:
        if (c == '\n')
            size_line_done(p);
        else
            fail(p, "malformed chunk size line");
        return;
    case S_CHUNK_DATA_CR:
        if (c == '\r')
            p->state = S_CHUNK_DATA_LF;
        else if (c == '\n')
            p->state = S_CHUNK_SIZE;
        else
            fail(p, "missing CRLF after chunk data");
        return;
    case S_CHUNK_DATA_LF:
        if (c == '\n')
            p->state = S_CHUNK_SIZE;
        else
            fail(p, "missing CRLF after chunk data");
        return;
    case S_TRAILER_START:
    case S_TRAILER_LINE:
    case S_TRAILER_END_LF:
        if (++p->head_bytes > p->head_max) {
            fail(p, "response trailers exceed %zu bytes", p->head_max);
            return;
        }
        if (p->state == S_TRAILER_LINE) {
            if (c == '\n')
                p->state = S_TRAILER_START;
        } else if (p->state == S_TRAILER_END_LF) {
            if (c == '\n')
                p->state = S_BODY_NONE;
            else
                fail(p, "malformed chunked trailer");
        } else {
            p->state = c == '\r' ? S_TRAILER_END_LF : c == '\n' ? S_BODY_NONE : S_TRAILER_LINE;
        }
        return;
    default:
        fail(p, "internal parser state");
        return;
    }
}

static cg_h1_event body_slice(cg_h1_parser *p, const char *in, size_t avail, size_t *i,
                              cg_h1_span *a, int next_state) {
    size_t take = avail;
    if (p->state != S_BODY_CLOSE && p->remaining < take)
        take = (size_t)p->remaining;
    a->p = in + *i;
    a->n = take;
    *i += take;
    if (p->state != S_BODY_CLOSE) {
        p->remaining -= take;
        if (!p->remaining)
            p->state = next_state;
    }
    return CG_H1_BODY;
}

cg_h1_event cg_h1_next(cg_h1_parser *p, const char *in, size_t n, size_t *used, cg_h1_span *a,
                       cg_h1_span *b) {
    size_t i = 0;
    cg_h1_event ev = CG_H1_AGAIN;
    while (ev == CG_H1_AGAIN) {
        switch (p->state) {
        case S_DONE:
            ev = CG_H1_DONE;
            break;
        case S_ERROR:
            ev = CG_H1_ERROR;
            break;
        case S_BODY_NONE:
            p->state = S_DONE;
            ev = CG_H1_DONE;
            break;
        case S_STATUS:
        case S_HEADER: {
            if (i >= n)
                goto out;
            const char *nl = memchr(in + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (in + i)) + 1 : n - i;
            if (p->head_bytes + p->line_len + take > p->head_max) {
                fail(p, "response header block exceeds %zu bytes", p->head_max);
                break;
            }
            if (!nl || p->line_len) {
                if (line_append(p, in + i, take) != 0) {
                    fail(p, "out of memory for a response header line");
                    break;
                }
                i += take;
                if (!nl)
                    goto out;
                size_t len = p->line_len - 1;
                p->line_len = 0;
                p->head_bytes += len + 1;
                ev = head_line(p, p->line, len, a, b);
            } else {
                const char *s = in + i;
                i += take;
                p->head_bytes += take;
                ev = head_line(p, s, take - 1, a, b);
            }
            break;
        }
        case S_BODY_CL:
            if (i >= n)
                goto out;
            ev = body_slice(p, in, n - i, &i, a, S_BODY_NONE);
            break;
        case S_BODY_CLOSE:
            if (i >= n)
                goto out;
            ev = body_slice(p, in, n - i, &i, a, S_BODY_CLOSE);
            break;
        case S_CHUNK_DATA:
            if (i >= n)
                goto out;
            ev = body_slice(p, in, n - i, &i, a, S_CHUNK_DATA_CR);
            break;
        default:
            if (i >= n)
                goto out;
            chunk_byte(p, (unsigned char)in[i++]);
            break;
        }
    }
out:
    *used = i;
    return ev;
}

cg_h1_event cg_h1_eof(cg_h1_parser *p) {
    switch (p->state) {
    case S_BODY_CLOSE:
    case S_BODY_NONE:
        p->state = S_DONE;
        return CG_H1_DONE;
    case S_DONE:
        return CG_H1_DONE;
    case S_ERROR:
        return CG_H1_ERROR;
    case S_STATUS:
        if (p->head_bytes == 0 && p->line_len == 0)
            fail(p, "empty reply from server");
        else
            fail(p, "connection closed inside the response headers");
        return CG_H1_ERROR;
    case S_HEADER:
        fail(p, "connection closed inside the response headers");
        return CG_H1_ERROR;
    case S_BODY_CL:
        fail(p, "connection closed with %llu of %llu body bytes missing",
             (unsigned long long)p->remaining, (unsigned long long)p->content_length);
        return CG_H1_ERROR;
    default:
        fail(p, "connection closed inside the chunked body");
        return CG_H1_ERROR;
    }
}

int cg_h1_keep_alive(const cg_h1_parser *p) {
    if (p->state != S_DONE || (p->flags & F_UNTIL_CLOSE) || (p->flags & F_CONN_CLOSE))
        return 0;
    if ((p->flags & F_CL) && (p->flags & F_TE))
        return 0; /* both framings: RFC 9112 says close after */
    return p->minor >= 1 || (p->flags & F_CONN_KEEP);
}

/* ---- URLs ---------------------------------------------------------------- */

static int host_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int cg_h1_url_parse(const char *url, cg_h1_url *o, char *err, size_t errlen) {
    const char *s;
    o->tls = o->literal = o->slash = 0;
    o->host[0] = o->authority[0] = '\0';
    o->target = "";
    o->target_len = 0;
    if (strncasecmp(url, "http://", 7) == 0) {
        s = url + 7;
        o->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        s = url + 8;
        o->tls = 1;
        o->port = 443;
    } else {
        snprintf(err, errlen, "URL must start with http:// or https://");
        return -1;
    }
    size_t alen = strcspn(s, "/?#");
    const char *host = s, *hend, *after;
    if (memchr(s, '@', alen)) {
        snprintf(err, errlen, "URL must not carry user info");
        return -1;
    }
    if (alen && s[0] == '[') {
        const char *close = memchr(s, ']', alen);
        if (!close) {
            snprintf(err, errlen, "URL has a malformed IPv6 host");
            return -1;
        }
        host = s + 1;
        hend = close;
        after = close + 1;
        for (const char *q = host; q < hend; q++)
            if (cg_hexval((unsigned char)*q) < 0 && *q != ':' && *q != '.') {
                snprintf(err, errlen, "URL has a malformed IPv6 host");
                return -1;
            }
        o->literal = 1;
    } else {
        const char *colon = memchr(s, ':', alen);
        hend = colon ? colon : s + alen;
        after = hend;
        int digits_dots = 1;
        for (const char *q = host; q < hend; q++) {
            if (!host_char((unsigned char)*q)) {
                snprintf(err, errlen, "URL host has a bad character");
                return -1;
            }
            if (!(*q == '.' || (*q >= '0' && *q <= '9')))
                digits_dots = 0;
        }
        o->literal = digits_dots;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof o->host) {
        snprintf(err, errlen, hlen ? "URL host too long" : "URL has no host");
        return -1;
    }
    memcpy(o->host, host, hlen);
    o->host[hlen] = '\0';
    int explicit_port = 0;
    if (after < s + alen) {
        if (*after != ':') {
            snprintf(err, errlen, "URL has a malformed host");
            return -1;
        }
        const char *pp = after + 1;
        size_t plen = (size_t)(s + alen - pp);
        long pv = 0;
        for (size_t i = 0; i < plen; i++)
            pv = (pp[i] >= '0' && pp[i] <= '9' && pv <= 65535) ? pv * 10 + (pp[i] - '0') : 99999;
        if (plen == 0 || pv < 1 || pv > 65535) {
            snprintf(err, errlen, "URL has a bad port");
            return -1;
        }
        o->port = (int)pv;
        explicit_port = o->port != (o->tls ? 443 : 80);
    }
    size_t alen_host = (size_t)(hend - s) + (s[0] == '[' ? 1 : 0);
    /* host[:port], without printf (a URL is split on every upstream call) */
    size_t an = alen_host < sizeof o->authority - 7 ? alen_host : sizeof o->authority - 7;
    memcpy(o->authority, s, an);
    if (explicit_port) {
        char d[8], *e = d + sizeof d, *q = e;
        unsigned pv = (unsigned)o->port;
        do
            *--q = (char)('0' + pv % 10);
        while ((pv /= 10) != 0 && q > d);
        o->authority[an++] = ':';
        memcpy(o->authority + an, q, (size_t)(e - q));
        an += (size_t)(e - q);
    }
    o->authority[an] = '\0';
    const char *t = s + alen;
    size_t tlen = strcspn(t, "#");
    o->slash = tlen == 0 || t[0] == '?';
    if (o->slash + tlen > CG_H1_TARGET_MAX) {
        snprintf(err, errlen, "URL too long");
        return -1;
    }
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= ' ' || c == 0x7f) {
            snprintf(err, errlen, "URL has a space or control character");
            return -1;
        }
    }
    o->target = t;
    o->target_len = tlen;
    return 0;
}
