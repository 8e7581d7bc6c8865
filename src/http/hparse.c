/* hparse: request head parsing and chunked-body decoding (see hparse.h). */
#include "http/hparse.h"
#include "core/hash.h"

#include <string.h>
#include <strings.h>

#define SIZE_LINE_MAX 4096u
#define TRAILER_MAX (16u << 10)
#define CHUNK_SIZE_MAX (1ull << 40)

size_t cg_hp_head_end(const char *buf, size_t len, size_t *scan) {
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            break;
        size_t at = (size_t)(nl - buf);
        if (at + 1 >= len) {
            *scan = at;
            return 0;
        }
        if (buf[at + 1] == '\n')
            return at + 2;
        if (buf[at + 1] == '\r') {
            if (at + 2 >= len) {
                *scan = at;
                return 0;
            }
            if (buf[at + 2] == '\n')
                return at + 3;
        }
        i = at + 1;
    }
    *scan = len;
    return 0;
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static cg_hmethod method_of(const char *m, size_t n) {
    static const struct {
        const char *s;
        cg_hmethod m;
    } T[] = {{"GET", CG_HM_GET}, {"POST", CG_HM_POST},     {"HEAD", CG_HM_HEAD},
             {"PUT", CG_HM_PUT}, {"DELETE", CG_HM_DELETE}, {"OPTIONS", CG_HM_OPTIONS}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strlen(T[i].s) == n && memcmp(T[i].s, m, n) == 0)
            return T[i].m;
    return CG_HM_OTHER;
}

/* Does the comma-separated list v contain token t (any case)? */
static int has_token(const char *v, const char *t) {
    size_t tn = strlen(t);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *s = v;
        while (*v && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tn && strncasecmp(s, t, tn) == 0)
            return 1;
    }
    return 0;
}

/* The framing headers: 0 or a status with *why. */
static int framing(char *buf, cg_hp_head *h, const char **why) {
    int seen_te = 0;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        const char *name = buf + h->f[i].name_off;
        const char *val = buf + h->f[i].val_off;
        if (strcasecmp(name, "content-length") == 0) {
            if (h->f[i].val_len == 0 || h->f[i].val_len > 15) {
                *why = "invalid Content-Length";
                return 400;
            }
            int64_t n = 0;
            for (const char *p = val; *p; p++) {
                if (*p < '0' || *p > '9') {
                    *why = "invalid Content-Length";
                    return 400;
                }
                n = n * 10 + (*p - '0');
            }
            if (h->content_length >= 0 && h->content_length != n) {
                *why = "conflicting Content-Length headers";
                return 400;
            }
            h->content_length = n;
        } else if (strcasecmp(name, "transfer-encoding") == 0) {
            if (seen_te++ || strcasecmp(val, "chunked") != 0) {
                *why = "unsupported Transfer-Encoding (only chunked is accepted)";
                return 501;
            }
            h->chunked = 1;
        } else if (strcasecmp(name, "connection") == 0) {
            if (has_token(val, "close"))
                h->keep_alive = 0;
            else if (has_token(val, "keep-alive"))
                h->keep_alive = 1;
        } else if (strcasecmp(name, "expect") == 0) {
            if (strcasecmp(val, "100-continue") == 0)
                h->expect_continue = 1;
        }
    }
    if (h->chunked && h->content_length >= 0) {
        *why = "both Content-Length and Transfer-Encoding";
        return 400;
    }
    if (h->chunked && h->minor == 0) {
        *why = "Transfer-Encoding in an HTTP/1.0 request";
        return 400;
    }
    return 0;
}

/* One line [*p, nl): returns its end (before CR) and moves *p past the LF. */
static char *next_line(char **p, char *end, char **line_end) {
    char *s = *p;
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return NULL;
    char *e = nl;
    if (e > s && e[-1] == '\r')
        e--;
    *line_end = e;
    *p = nl + 1;
    return s;
}

static int request_line(char *buf, char *s, char *e, cg_hp_head *h, const char **why) {
    char *sp1 = memchr(s, ' ', (size_t)(e - s));
    if (!sp1 || sp1 == s || sp1 - s > 16) {
        *why = "malformed request line";
        return 400;
    }
    for (char *q = s; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) {
            *why = "malformed request method";
            return 400;
        }
    h->method = method_of(s, (size_t)(sp1 - s));
    char *t = sp1 + 1;
    char *sp2 = memchr(t, ' ', (size_t)(e - t));
    if (!sp2 || sp2 == t) {
        *why = "malformed request line";
        return 400;
    }
    for (char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f) {
            *why = "invalid character in the request target";
            return 400;
        }
    char *v = sp2 + 1;
    if (e - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1')) {
        *why = "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are accepted)";
        return (e - v == 8 && memcmp(v, "HTTP/", 5) == 0) ? 505 : 400;
    }
    h->minor = v[7] - '0';
    h->keep_alive = h->minor == 1;
    *sp1 = '\0';
    *sp2 = '\0';
    h->target_off = (uint32_t)(t - buf);
    h->target_len = (uint32_t)(sp2 - t);
    return 0;
}

int cg_hp_parse_head(char *buf, size_t head_len, cg_hp_head *h, const char **why) {
    memset(h, 0, offsetof(cg_hp_head, f));
    h->content_length = -1;
    *why = "";
    char *p = buf, *end = buf + head_len, *e;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++; /* RFC 9112 2.2: empty lines before the request line */
    char *s = next_line(&p, end, &e);
    if (!s) {
        *why = "malformed request line";
        return 400;
    }
    int st = request_line(buf, s, e, h, why);
    if (st)
        return st;
    while ((s = next_line(&p, end, &e)) != NULL && e > s) {
        if (*s == ' ' || *s == '\t') {
            *why = "obsolete header line folding";
            return 400;
        }
        char *colon = memchr(s, ':', (size_t)(e - s));
        if (!colon || colon == s) {
            *why = "malformed header line";
            return 400;
        }
        for (char *q = s; q < colon; q++)
            if (!is_tchar((unsigned char)*q)) {
                *why = "invalid character in a header name";
                return 400;
            }
        char *v = colon + 1;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        char *ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (char *q = v; q < ve; q++)
            if (*q == '\0' || *q == '\r' || *q == '\n') {
                *why = "invalid character in a header value";
                return 400;
            }
        if (h->n_fields == CG_HP_MAX_HEADERS) {
            *why = "too many header fields";
            return 431;
        }
        cg_hp_field *f = &h->f[h->n_fields++];
        *colon = '\0';
        *ve = '\0'; /* ve is trailing space, CR or LF: never the value */
        f->name_off = (uint32_t)(s - buf);
        f->name_len = (uint32_t)(colon - s);
        f->val_off = (uint32_t)(v - buf);
        f->val_len = (uint32_t)(ve - v);
    }
    return framing(buf, h, why);
}

const char *cg_hp_find(const char *buf, const cg_hp_head *h, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < h->n_fields; i++)
        if (h->f[i].name_len == n && strncasecmp(buf + h->f[i].name_off, name, n) == 0)
            return buf + h->f[i].val_off;
    return NULL;
}

/* --- chunked bodies ------------------------------------------------------ */

enum {
    C_SIZE0 = 0, /* the first hex digit of a size line */
    C_SIZE,      /* more hex digits */
    C_EXT,       /* a chunk extension, skipped to the end of the line */
    C_SIZE_LF,   /* CR seen at the end of a size line */
    C_DATA,
    C_DATA_CR, /* CRLF after the data */
    C_DATA_LF,
    C_TR_START, /* start of a trailer line (or the final empty line) */
    C_TR_LINE,
    C_END_LF, /* CR of the final empty line seen */
};

void cg_hp_chunked_init(cg_hp_chunked *d) {
    memset(d, 0, sizeof *d);
}

/* The size line ended: data or, for size 0, the trailers. */
static void size_done(cg_hp_chunked *d) {
    d->line = 0;
    d->state = d->remaining ? C_DATA : C_TR_START;
}

cg_hp_rc cg_hp_chunked_feed(cg_hp_chunked *d, const char *in, size_t n, size_t *used, cg_buf *out,
                            int *over) {
    size_t i = 0;
    cg_hp_rc rc = CG_HP_MORE;
    while (i < n && rc == CG_HP_MORE) {
        char c = in[i];
        switch (d->state) {
        case C_SIZE0:
        case C_SIZE: {
            int v = cg_hexval(c);
            if (v >= 0) {
                if (d->remaining > CHUNK_SIZE_MAX) {
                    rc = CG_HP_ERROR;
                    break;
                }
                d->remaining = d->remaining * 16 + (uint64_t)v;
                d->state = C_SIZE;
                i++;
            } else if (d->state == C_SIZE0) {
                rc = CG_HP_ERROR;
            } else if (c == ';' || c == ' ' || c == '\t') {
                d->state = C_EXT;
                i++;
            } else if (c == '\r') {
                d->state = C_SIZE_LF;
                i++;
            } else if (c == '\n') {
                size_done(d);
                i++;
            } else {
                rc = CG_HP_ERROR;
            }
            break;
        }
        case C_EXT:
            if (++d->line > SIZE_LINE_MAX) {
                rc = CG_HP_ERROR;
            } else if (c == '\n') {
                size_done(d);
            } else if (c == '\r') {
                d->state = C_SIZE_LF;
            }
            i++;
            break;
        case C_SIZE_LF:
            if (c != '\n') {
                rc = CG_HP_ERROR;
                break;
            }
            size_done(d);
            i++;
            break;
        case C_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > d->remaining)
                take = (size_t)d->remaining;
            if (!*over && cg_buf_append(out, in + i, take) != 0)
                *over = 1;
            d->total += take;
            d->remaining -= take;
            i += take;
            if (d->remaining == 0)
                d->state = C_DATA_CR;
            break;
        }
        case C_DATA_CR:
            if (c == '\r')
                d->state = C_DATA_LF;
            else if (c == '\n')
                d->state = C_SIZE0;
            else
                rc = CG_HP_ERROR;
            if (rc == CG_HP_MORE)
                i++;
            break;
        case C_DATA_LF:
            if (c != '\n') {
                rc = CG_HP_ERROR;
                break;
            }
            d->state = C_SIZE0;
            i++;
            break;
        case C_TR_START:
            if (c == '\r') {
                d->state = C_END_LF;
            } else if (c == '\n') {
                rc = CG_HP_DONE;
            } else {
                d->state = C_TR_LINE;
            }
            i++;
            if (++d->trailer > TRAILER_MAX)
                rc = CG_HP_ERROR;
            break;
        case C_TR_LINE:
            if (c == '\n')
                d->state = C_TR_START;
            i++;
            if (++d->trailer > TRAILER_MAX)
                rc = CG_HP_ERROR;
            break;
        case C_END_LF:
            if (c != '\n') {
                rc = CG_HP_ERROR;
                break;
            }
            rc = CG_HP_DONE;
            i++;
            break;
        default:
            rc = CG_HP_ERROR;
        }
    }
    *used = i;
    return rc;
}
