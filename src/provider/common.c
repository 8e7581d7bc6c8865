/* common: helpers shared by the provider adapters (see provider.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/find.h"
#include "cost/usage.h"
#include "provider/provider.h"

const cg_provider_ops *cg_provider_for_api(cg_api api) {
    return api == CG_API_ANTHROPIC ? &cg_provider_anthropic : &cg_provider_openai;
}

/* Every string value and object key below v: a deliberate over-count of the
 * text a provider tokenizes (roles and keys included), so estimates err high. */
static int64_t chars_in(const json_t *v) {
    int64_t n = 0;
    if (json_is_string(v))
        return (int64_t)json_string_length(v);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) n += chars_in(e);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) n += (int64_t)strlen(k) + chars_in(e);
    }
    return n;
}

int64_t cg_provider_text_chars(const json_t *v) {
    int64_t n = 0;
    const char *keys[] = {"messages", "system", "tools", "input", "functions", NULL};
    for (int i = 0; keys[i]; i++)
        n += chars_in(json_object_get(v, keys[i]));
    return n;
}

/* The closing quote of the JSON string whose text starts at s (just after
 * its opening quote), or NULL when it does not end before end: the first
 * quote not escaped, a backslash escaping the byte after it. */
static const char *string_end(const char *s, const char *end) {
    const char *q = s;
    while (q < end) {
        q += cg_find2(q, (size_t)(end - q), '"', '\\');
        if (q >= end)
            return NULL;
        if (*q == '"')
            return q;
        q += 2; /* a backslash and the byte it escapes */
    }
    return NULL;
}

/* Characters of the string text s[0..e): bytes, an escape's backslash not
 * counted ("\\n" is one, "\\u00e9" five). */
static int64_t string_chars(const char *s, const char *e) {
    int64_t n = (int64_t)(e - s);
    for (const char *b = s; b < e && (b = memchr(b, '\\', (size_t)(e - b))); b += 2)
        if (b + 1 < e)
            n--; /* a lone backslash at a cut-off end counts itself */
    return n;
}

static int is_key(const char *const *keys, const char *k, size_t kl) {
    /* k is a key with its quotes (kl >= 2): its first letter rules out most
     * names before a length is taken */
    for (int i = 0; keys[i]; i++)
        if (keys[i][1] == k[1] && strlen(keys[i]) == kl && memcmp(keys[i], k, kl) == 0)
            return 1;
    return 0;
}

static const char *skip_ws(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

void cg_provider_scan_event(const char *p, size_t n, const char *const *keys, cg_event_scan *out) {
    memset(out, 0, sizeof *out);
    const char *end = p + n, *s = p;
    /* string by string: a string followed by ':' is a key */
    while (s < end && (s += cg_find2(s, (size_t)(end - s), '"', '"')) < end) {
        const char *c = string_end(s + 1, end);
        if (!c)
            break;
        const char *t = skip_ws(c + 1, end);
        if (t >= end || *t != ':') {
            s = c + 1; /* a string value */
            continue;
        }
        const char *k = s;
        size_t kl = (size_t)(c - s) + 1; /* with its quotes */
        const char *v = skip_ws(t + 1, end);
        s = v;
        if (v >= end)
            break;
        if (*v == '"') {
            if (keys && is_key(keys, k, kl)) {
                const char *ve = string_end(v + 1, end);
                out->text_chars += string_chars(v + 1, ve ? ve : end);
                if (!ve)
                    break;
                s = ve + 1;
            } else if (kl == 7 && memcmp(k, "\"model\"", 7) == 0 && !out->model) {
                const char *ve = string_end(v + 1, end);
                if (ve && !memchr(v + 1, '\\', (size_t)(ve - v - 1))) {
                    out->model = v + 1;
                    out->model_len = (size_t)(ve - v - 1);
                }
            }
        } else if (*v == '{' && kl == 7 && memcmp(k, "\"usage\"", 7) == 0) {
            if (!out->usage)
                out->usage = v;
        } else if (*v == '[' && kl == 9 && memcmp(k, "\"choices\"", 9) == 0) {
            const char *w = skip_ws(v + 1, end);
            if (w < end && *w == ']')
                out->choices_empty = 1;
        }
    }
}

int64_t cg_provider_scan_text(const char *p, size_t n, const char *const *keys) {
    cg_event_scan sc;
    cg_provider_scan_event(p, n, keys, &sc);
    return sc.text_chars;
}

int cg_provider_body(cg_req *r) {
    if (!r->body_modified)
        return cg_buf_append(&r->up_body, r->body_raw.data, r->body_raw.len);
    char *s = json_dumps(r->body, JSON_COMPACT);
    int rc = s ? cg_buf_puts(&r->up_body, s) : -1;
    free(s);
    return rc;
}

/* The last occurrence of needle in p[0..n), or NULL: found from its first
 * byte backwards with memrchr. */
static const char *memrmem(const char *p, size_t n, const char *needle, size_t nl) {
    if (nl == 0 || nl > n)
        return NULL;
    size_t lim = n - nl + 1; /* a match starts below p + lim */
    while (lim > 0) {
        const char *q = memrchr(p, needle[0], lim);
        if (!q)
            return NULL;
        if (memcmp(q, needle, nl) == 0)
            return q;
        lim = (size_t)(q - p);
    }
    return NULL;
}

/* The JSON object starting at p (after optional spaces), as [start, end). */
static int object_at(const char *p, const char *end, const char **os, const char **oe) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= end || *p != '{')
        return -1;
    int depth = 0;
    for (const char *q = p; q < end; q++) {
        char ch = *q;
        if (ch == '"') {
            q = string_end(q + 1, end); /* strings 16 bytes at a time */
            if (!q)
                return -1;
        } else if (ch == '{') {
            depth++;
        } else if (ch == '}' && --depth == 0) {
            *os = p;
            *oe = q + 1;
            return 0;
        }
    }
    return -1;
}

int cg_provider_usage_object(const char *p, size_t n, int last, const char **os, const char **oe) {
    const char *u = last ? memrmem(p, n, "\"usage\":", 8) : cg_memmem(p, n, "\"usage\":", 8);
    return u ? object_at(u + 8, p + n, os, oe) : -1;
}

int cg_provider_read_usage(cg_api api, int embedding, const char *p, size_t n, cg_usage *out) {
    cg_usage u;
    if (cg_provider_scan_usage(api, embedding, p, n, &u) == 0) {
        *out = u;
        return 0;
    }
    json_t *j = json_loadb(p, n, 0, NULL);
    if (!j)
        return -1;
    int rc = api == CG_API_ANTHROPIC ? cg_usage_from_anthropic(j, out)
             : embedding             ? cg_usage_from_openai_embedding(j, out)
                                     : cg_usage_from_openai(j, out);
    json_decref(j);
    return rc;
}

int cg_provider_fast_usage(cg_req *r, const char *body, size_t n) {
    /* a key with unescaped quotes cannot occur inside a JSON string, so the
     * last "usage": is the top-level one (it follows the choices) */
    const char *os, *oe;
    if (cg_provider_usage_object(body, n, 1, &os, &oe) != 0)
        return -1;
    if (cg_provider_read_usage(r->api, r->ep == CG_EP_EMBEDDINGS, os, (size_t)(oe - os),
                               &r->usage) != 0)
        return -1;
    const char *m = cg_memmem(body, n, "\"model\":", 8);
    if (m && !r->served_model[0]) {
        const char *v = m + 8, *end = body + n;
        while (v < end && *v == ' ')
            v++;
        if (v < end && *v == '"') {
            const char *q = memchr(v + 1, '"', (size_t)(end - v - 1));
            size_t len = q ? (size_t)(q - v - 1) : 0;
            if (q && len < sizeof r->served_model && !memchr(v + 1, '\\', len)) {
                memcpy(r->served_model, v + 1, len);
                r->served_model[len] = '\0';
            }
        }
    }
    r->usage_seen = 2;
    return 0;
}
