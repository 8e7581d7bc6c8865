/* buf: capped growable byte buffers (see buf.h). */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cg_buf_init(cg_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void cg_buf_free(cg_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cg_buf_reset(cg_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int reserve(cg_buf *b, size_t extra) {
    if (extra > b->max || b->len > b->max - extra)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap && b->data)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    char *p = realloc(b->data, ncap + 1);
    if (!p)
        return -1;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int cg_buf_append(cg_buf *b, const void *p, size_t n) {
    if (reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cg_buf_puts(cg_buf *b, const char *s) {
    return cg_buf_append(b, s, strlen(s));
}

int cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap) {
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0 || reserve(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cg_buf_printf(cg_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = cg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void cg_buf_consume(cg_buf *b, size_t n) {
    if (n >= b->len) {
        cg_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

int cg_buf_json_str(cg_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (cg_buf_append(b, "\"", 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        const char *out = NULL;
        size_t olen = 0;
        switch (c) {
        case '"':
            out = "\\\"";
            olen = 2;
            break;
        case '\\':
            out = "\\\\";
            olen = 2;
            break;
        case '\n':
            out = "\\n";
            olen = 2;
            break;
        case '\r':
            out = "\\r";
            olen = 2;
            break;
        case '\t':
            out = "\\t";
            olen = 2;
            break;
        default:
            if (c < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc[6] = 0;
                out = esc;
                olen = 6;
            }
        }
        if (out) {
            if (cg_buf_append(b, out, olen))
                return -1;
        } else if (cg_buf_append(b, &s[i], 1)) {
            return -1;
        }
    }
    return cg_buf_append(b, "\"", 1);
}

int cg_buf_read_file(cg_buf *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cg_buf_append(b, chunk, n) != 0) {
            rc = -1;
            break;
        }
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

size_t cg_strlcpy(char *dst, const char *src, size_t cap) {
    if (cap == 0)
        return 0;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}
