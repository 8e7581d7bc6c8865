/* jparse: fast JSON to jansson values, falling back to jansson (see
 * jparse.h). */
#include "core/jparse.h"
#include "core/find.h"
#include "core/hash.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
#define STACK_STR 128  /* decoded strings up to this size need no malloc */

typedef struct jp {
    const char *p, *end;
    int depth;
} jp;

static json_t *value(jp *j);

static void ws(jp *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* One UTF-8 sequence at s (first byte >= 0x80), as jansson accepts it: no
 * overlong forms, no surrogates, nothing past U+10FFFF. Its length, or 0. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0];
    size_t n;
    uint32_t v;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return n;
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = cg_hexval(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the escapes of the string body [s, e) (already validated up to
 * escapes) into out. Its length, or -1 (a bad escape, a NUL, a lone
 * surrogate). out has room for e - s bytes: no escape grows. */
static long unescape(const char *s, const char *e, char *out) {
    char *o = out;
    while (s < e) {
        if (*s != '\\') { /* the run up to the next escape, in one copy */
            size_t n = cg_find2(s, (size_t)(e - s), '\\', '\\');
            memcpy(o, s, n);
            o += n;
            s += n;
            continue;
        }
        s++;
        char c = *s++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            *o++ = c;
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s, &cp))
                return -1;
            s += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return -1;
                s += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;
            }
            if (cp == 0)
                return -1; /* jansson refuses NUL without JSON_ALLOW_NUL */
            o += put_utf8(o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)(o - out);
}

/* A string at j->p (the opening quote): its decoded bytes through *out /
 * *len, in buf (cap STACK_STR) or *heap (the caller frees it). 0 / -1.
 * The bytes are well-formed UTF-8 without NUL (a raw control byte is
 * refused, and unescape refuses \u0000), as the _nocheck calls need. */
static int string(jp *j, const char **out, size_t *len, char *buf, char **heap) {
    const char *s = ++j->p;
    int esc = 0;
    while (j->p < j->end) {
        j->p += cg_json_plain_len(j->p, (size_t)(j->end - j->p));
        if (j->p >= j->end)
            break;
        unsigned char c = (unsigned char)*j->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            esc = 1;
            if (j->end - j->p < 2)
                return -1;
            j->p += 2;
            continue;
        }
        size_t n = utf8_seq((const unsigned char *)j->p, (const unsigned char *)j->end);
        if (!n) /* c >= 0x80: well-formed UTF-8 only */
            return -1;
        j->p += n;
    }
    if (j->p >= j->end)
        return -1;
    const char *e = j->p++;
    if (!esc) {
        *out = s;
        *len = (size_t)(e - s);
        return 0;
    }
    size_t n = (size_t)(e - s);
    char *dst = buf;
    if (n > STACK_STR) {
        if (!(*heap = malloc(n)))
            return -1;
        dst = *heap;
    }
    long m = unescape(s, e, dst);
    if (m < 0)
        return -1;
    *out = dst;
    *len = (size_t)m;
    return 0;
}

static json_t *number(jp *j) {
    const char *s = j->p;
    int real = 0;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end)
        return NULL;
    if (*j->p == '0') {
        j->p++;
        if (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            return NULL;
    } else if (*j->p >= '1' && *j->p <= '9') {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    } else {
        return NULL;
    }
    if (j->p < j->end && *j->p == '.') {
        real = 1;
        j->p++;
        const char *d = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == d)
            return NULL;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        real = 1;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        const char *d = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == d)
            return NULL;
    }
    size_t n = (size_t)(j->p - s);
    char tmp[64];
    if (n >= sizeof tmp)
        return NULL; /* rare: jansson decides */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return NULL;
        return json_integer((json_int_t)v);
    }
    double d = strtod(tmp, NULL);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
        return NULL;
    return json_real(d);
}

/* After a member or element: 1 at a ',' (another follows), 0 at the
 * closing bracket (consumed), -1 otherwise. */
static int next_item(jp *j, char close) {
    ws(j);
    if (j->p < j->end && *j->p == ',') {
        j->p++;
        ws(j);
        return 1;
    }
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    return -1;
}

static json_t *object(jp *j) {
    json_t *o = json_object();
    char buf[STACK_STR];
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return o;
    }
    while (o) {
        if (j->p >= j->end || *j->p != '"')
            goto fail;
        const char *k;
        size_t kl;
        char *heap = NULL;
        if (string(j, &k, &kl, buf, &heap) != 0 ||
            json_object_getn(o, k, kl)) { /* a duplicate: jansson says so */
            free(heap);
            goto fail;
        }
        ws(j);
        json_t *v = NULL;
        if (j->p < j->end && *j->p == ':') {
            j->p++;
            ws(j);
            v = value(j);
        }
        if (!v || json_object_setn_new_nocheck(o, k, kl, v) != 0) {
            free(heap);
            goto fail;
        }
        free(heap);
        int more = next_item(j, '}');
        if (more == 0)
            return o;
        if (more < 0)
            goto fail;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *array(jp *j) {
    json_t *a = json_array();
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return a;
    }
    while (a) {
        json_t *v = value(j);
        if (!v || json_array_append_new(a, v) != 0)
            goto fail;
        int more = next_item(j, ']');
        if (more == 0)
            return a;
        if (more < 0)
            goto fail;
    }
fail:
    json_decref(a);
    return NULL;
}

/* Out of line: its buffer stays out of value()'s frame, which recursion
 * repeats once per nesting level. */
static __attribute__((noinline)) json_t *string_value(jp *j) {
    char buf[STACK_STR];
    char *heap = NULL;
    const char *s;
    size_t n;
    json_t *v = NULL;
    if (string(j, &s, &n, buf, &heap) == 0)
        v = json_stringn_nocheck(s, n);
    free(heap);
    return v;
}

static int literal(jp *j, const char *w, size_t n) {
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return 0;
    j->p += n;
    return 1;
}

static json_t *value(jp *j) {
    if (j->p >= j->end)
        return NULL;
    json_t *v = NULL;
    switch (*j->p) {
    case '{':
    case '[':
        if (++j->depth > MAX_DEPTH)
            return NULL;
        v = *j->p == '{' ? object(j) : array(j);
        j->depth--;
        return v;
    case '"':
        return string_value(j);
    case 't':
        return literal(j, "true", 4) ? json_true() : NULL;
    case 'f':
        return literal(j, "false", 5) ? json_false() : NULL;
    case 'n':
        return literal(j, "null", 4) ? json_null() : NULL;
    default:
        return number(j);
    }
}

json_t *cg_json_load_fast(const char *buf, size_t len) {
    jp j = {buf, buf + len, 0};
    ws(&j);
    json_t *v = value(&j);
    ws(&j);
    if (v && j.p != j.end) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

json_t *cg_json_load(const char *buf, size_t len, json_error_t *err) {
    json_t *v = cg_json_load_fast(buf, len);
    if (v)
        return v;
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, err);
}
