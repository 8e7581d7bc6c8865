/* model_splice: the top-level "model" value of a JSON body, found and
 * replaced in place (see model_splice.h). */
#include "route/model_splice.h"

#include <stdint.h>
#include <string.h>

static size_t skip_ws(const char *p, size_t n, size_t i) {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* p[i] is an opening quote: the index just past the closing one, or 0 when
 * the string does not end. A quote ends the string when an even number of
 * backslashes precedes it. */
static size_t skip_string(const char *p, size_t n, size_t i) {
    size_t j = i + 1;
    while (j < n) {
        const char *q = memchr(p + j, '"', n - j);
        if (!q)
            return 0;
        size_t k = (size_t)(q - p), b = k;
        while (b > i + 1 && p[b - 1] == '\\')
            b--;
        if (((k - b) & 1) == 0)
            return k + 1;
        j = k + 1;
    }
    return 0;
}

/* The index just past the JSON value starting at p[i], or 0. Containers are
 * skipped by depth (the parse stage has already checked that brackets pair
 * up); strings inside them by skip_string, so brackets and quotes in text
 * do not count. */
static size_t skip_value(const char *p, size_t n, size_t i) {
    if (i >= n)
        return 0;
    if (p[i] == '"')
        return skip_string(p, n, i);
    if (p[i] == '{' || p[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, n, i);
                if (!i)
                    return 0;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return 0;
    }
    size_t s = i;
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
           p[i] != '\n' && p[i] != '\r')
        i++;
    return i > s ? i : 0;
}

/* cg_model_span; with `first`, the first top-level "model" member is taken
 * and the rest of the object is not looked at (cg_model_splice_parsed). */
static int span(const char *p, size_t n, int first, size_t *start, size_t *end) {
    if (!p || !start || !end)
        return -1;
    size_t i = skip_ws(p, n, 0), s = 0, e = 0;
    int found = 0;
    if (i >= n || p[i] != '{')
        return -1;
    i = skip_ws(p, n, i + 1);
    for (;;) {
        if (i >= n || p[i] != '"')
            return -1; /* also an empty object: it has no model */
        size_t ke = skip_string(p, n, i);
        if (!ke)
            return -1;
        size_t klen = ke - i - 2;
        if (memchr(p + i + 1, '\\', klen))
            return -1; /* an escaped key might spell "model" */
        int is_model = klen == 5 && memcmp(p + i + 1, "model", 5) == 0;
        i = skip_ws(p, n, ke);
        if (i >= n || p[i] != ':')
            return -1;
        i = skip_ws(p, n, i + 1);
        size_t ve = skip_value(p, n, i);
        if (!ve)
            return -1;
        if (is_model) {
            if (found || p[i] != '"')
                return -1;
            found = 1;
            s = i;
            e = ve;
            if (first)
                break;
        }
        i = skip_ws(p, n, ve);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, n, i + 1);
            continue;
        }
        if (i < n && p[i] == '}')
            break;
        return -1;
    }
    if (!found || (!first && skip_ws(p, n, i + 1) != n))
        return -1;
    *start = s;
    *end = e;
    return 0;
}

int cg_model_span(const char *p, size_t n, size_t *start, size_t *end) {
    return span(p, n, 0, start, end);
}

/* 1 when s[0..n) is valid UTF-8 (what a JSON parser accepts in a string). */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t len;
        uint32_t v, min;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF)
            len = 2, v = b & 0x1F, min = 0x80;
        else if (b >= 0xE0 && b <= 0xEF)
            len = 3, v = b & 0x0F, min = 0x800;
        else if (b >= 0xF0 && b <= 0xF4)
            len = 4, v = b & 0x07, min = 0x10000;
        else
            return 0;
        if (len > n - i)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            v = (v << 6) | (s[i + k] & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* The JSON string literal of s[0..n) into out (room for 6 n + 2 bytes). */
static size_t json_literal(const char *s, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char short_esc = c == '"'    ? '"'
                         : c == '\\' ? '\\'
                         : c == '\n' ? 'n'
                         : c == '\r' ? 'r'
                         : c == '\t' ? 't'
                         : c == '\b' ? 'b'
                         : c == '\f' ? 'f'
                                     : 0;
        if (short_esc) {
            out[o++] = '\\';
            out[o++] = short_esc;
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

static int splice(cg_buf *b, const char *model, size_t len, int first) {
    char lit[CG_MODEL_NAME_MAX * 6 + 2];
    size_t s, e;
    if (!b || !model || len > CG_MODEL_NAME_MAX || !valid_utf8((const unsigned char *)model, len) ||
        span(b->data, b->len, first, &s, &e) != 0)
        return -1;
    size_t m = json_literal(model, len, lit);
    size_t old = e - s, tail = b->len - e;
    if (m > old) {
        /* grow first (the appended bytes are overwritten below); the cap applies */
        if (cg_buf_append(b, lit, m - old) != 0)
            return -1;
        memmove(b->data + s + m, b->data + e, tail);
    } else {
        memmove(b->data + s + m, b->data + e, tail);
        b->len -= old - m;
        b->data[b->len] = '\0';
    }
    memcpy(b->data + s, lit, m);
    return 0;
}

int cg_model_splice(cg_buf *b, const char *model, size_t len) {
    return splice(b, model, len, 0);
}

int cg_model_splice_parsed(cg_buf *b, const char *model, size_t len) {
    return splice(b, model, len, 1);
}
