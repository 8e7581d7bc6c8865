/* key: canonical exact-cache key material and its SHA-256 (see key.h). */
#include "cache/key.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cg_cache_key_ignored[] = {"user", "metadata", "stream", "stream_options", NULL};

/* Where the material goes: a buffer (tests, docs), or SHA-256. Small
 * material is hashed in one call from the staging buffer; larger material
 * streams through a digest context. */
typedef struct sink {
    cg_buf *buf;
    EVP_MD_CTX *md; /* created when the stage first fills */
    unsigned char stage[8192];
    size_t n;
    int failed;
} sink;

/* SHA-256 fetched once: OpenSSL 3 would otherwise look the algorithm up on
 * every digest (most of the cost of hashing a small request). */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) {
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void) {
    pthread_once(&g_sha256_once, fetch_sha256);
    return g_sha256 ? g_sha256 : EVP_sha256();
}

static int md_ready(sink *s) {
    if (!s->md) {
        s->md = EVP_MD_CTX_new();
        if (!s->md || !EVP_DigestInit_ex(s->md, sha256_md(), NULL))
            s->failed = 1;
    }
    return !s->failed;
}

static void sink_flush(sink *s) {
    if (s->failed || !s->n || !md_ready(s))
        return;
    if (!EVP_DigestUpdate(s->md, s->stage, s->n))
        s->failed = 1;
    s->n = 0;
}

static void put(sink *s, const void *p, size_t n) {
    if (s->failed)
        return;
    if (s->buf) {
        if (cg_buf_append(s->buf, p, n) != 0)
            s->failed = 1;
        return;
    }
    if (n > sizeof s->stage - s->n) {
        sink_flush(s);
        if (n > sizeof s->stage) {
            if (md_ready(s) && !EVP_DigestUpdate(s->md, p, n))
                s->failed = 1;
            return;
        }
    }
    memcpy(s->stage + s->n, p, n);
    s->n += n;
}

static void put_str(sink *s, const char *str) {
    put(s, str, strlen(str));
}

/* Decimal digits of n into the end of b (no printf on the hot path);
 * returns where they start. */
static char *decimal(char *end, uint64_t n) {
    do {
        *--end = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    return end;
}

/* tag DECIMAL(n) end */
static void put_len(sink *s, char tag, size_t n, char end) {
    char b[32];
    b[31] = end;
    char *p = decimal(b + 31, n);
    *--p = tag;
    put(s, p, (size_t)(b + 32 - p));
}

static void field(sink *s, const char *name, const char *v) {
    if (!v)
        v = "";
    size_t n = strlen(v);
    put_str(s, name);
    put_len(s, ':', n, ':');
    put(s, v, n);
    put(s, "\n", 1);
}

static int ignored(const char *k) {
    for (int i = 0; cg_cache_key_ignored[i]; i++)
        if (strcmp(k, cg_cache_key_ignored[i]) == 0)
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define KEYS_ON_STACK 32
#define DEPTH_MAX 512 /* deeper than any body jansson accepts (its limit is 2048) */

static int put_value(sink *s, const json_t *v, int depth, int top);

/* An object: '{', then its members as key (a string) and value, keys in
 * strcmp order, then '}'. At the top level the ignored fields are skipped. */
static int put_object(sink *s, const json_t *o, int depth, int top) {
    const char *stack_keys[KEYS_ON_STACK];
    size_t n = json_object_size(o), k = 0;
    const char **keys = n <= KEYS_ON_STACK ? stack_keys : malloc(n * sizeof *keys);
    if (!keys)
        return -1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        if (!top || !ignored(key))
            keys[k++] = key;
    }
    if (k > 1)
        qsort(keys, k, sizeof *keys, cmp_str);
    put(s, "{", 1);
    int rc = 0;
    for (size_t i = 0; i < k && rc == 0; i++) {
        size_t kl = strlen(keys[i]);
        put_len(s, 's', kl, ':');
        put(s, keys[i], kl);
        rc = put_value(s, json_object_get(o, keys[i]), depth + 1, 0);
    }
    put(s, "}", 1);
    if (keys != stack_keys)
        free(keys);
    return rc;
}

static int put_value(sink *s, const json_t *v, int depth, int top) {
    char b[48];
    int k;
    if (depth > DEPTH_MAX)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(s, v, depth, top);
    case JSON_ARRAY: {
        put(s, "[", 1);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (put_value(s, e, depth + 1, 0) != 0)
                return -1;
        }
        put(s, "]", 1);
        return 0;
    }
    case JSON_STRING:
        put_len(s, 's', json_string_length(v), ':');
        put(s, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        uint64_t mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
        b[sizeof b - 1] = ';';
        char *p = decimal(b + sizeof b - 1, mag);
        if (x < 0)
            *--p = '-';
        *--p = 'i';
        put(s, p, (size_t)(b + sizeof b - p));
        return 0;
    }
    case JSON_REAL:
        k = snprintf(b, sizeof b, "r%.17g;", json_real_value(v));
        put(s, b, (size_t)k);
        return 0;
    case JSON_TRUE:
        put(s, "t", 1);
        return 0;
    case JSON_FALSE:
        put(s, "f", 1);
        return 0;
    case JSON_NULL:
        put(s, "n", 1);
        return 0;
    }
    return -1;
}

static int material(const cg_cache_key_in *in, sink *s) {
    if (!json_is_object(in->body))
        return -1;
    put_str(s, CG_CACHE_KEY_VERSION "\n");
    field(s, "scope", in->scope);
    field(s, "api", in->api);
    field(s, "prompt_version", in->prompt_version);
    field(s, "context_ids", in->context_ids);
    field(s, "anthropic_version", in->anthropic_version);
    field(s, "anthropic_beta", in->anthropic_beta);
    put_str(s, "body:");
    return put_value(s, in->body, 0, 1) == 0 && !s->failed ? 0 : -1;
}

int cg_cache_key_material(const cg_cache_key_in *in, cg_buf *out) {
    sink s;
    s.buf = out;
    s.md = NULL;
    s.n = 0;
    s.failed = 0;
    return material(in, &s);
}

int cg_cache_key(const cg_cache_key_in *in, uint8_t out[32]) {
    sink s; /* the stage (8 KiB) on the stack: most requests hash it in one update */
    int rc = -1;
    s.buf = NULL;
    s.md = NULL;
    s.n = 0;
    s.failed = 0;
    if (material(in, &s) != 0)
        goto out;
    sink_flush(&s);
    unsigned int len = 0;
    if (s.failed || !EVP_DigestFinal_ex(s.md, out, &len) || len != 32)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(s.md);
    return rc;
}

/* --- context ids ----------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

int cg_cache_ctx_ids(const char *header, char *out, size_t cap, size_t *nout, char *err,
                     size_t errlen) {
    span ids[CG_CACHE_CTX_IDS_MAX];
    size_t n = 0;
    *nout = 0;
    if (cap)
        out[0] = '\0';
    if (!header)
        return 0;
    const char *p = header;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if (n == CG_CACHE_CTX_IDS_MAX) {
                snprintf(err, errlen, "at most %d ids are allowed", CG_CACHE_CTX_IDS_MAX);
                return -1;
            }
            if ((size_t)(b - a) > CG_CACHE_CTX_ID_LEN) {
                snprintf(err, errlen, "an id is longer than %d bytes", CG_CACHE_CTX_ID_LEN);
                return -1;
            }
            for (const char *q = a; q < b; q++)
                if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                    snprintf(err, errlen, "ids must not contain control characters");
                    return -1;
                }
            ids[n].p = a;
            ids[n].n = (size_t)(b - a);
            n++;
        }
        if (!e)
            break;
        p = e + 1;
    }
    qsort(ids, n, sizeof ids[0], cmp_span);
    size_t len = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && cmp_span(&ids[i - 1], &ids[i]) == 0)
            continue;
        size_t need = ids[i].n + (kept ? 1 : 0);
        if (len + need + 1 > cap) {
            snprintf(err, errlen, "the ids are too long in total");
            return -1;
        }
        if (kept)
            out[len++] = ',';
        memcpy(out + len, ids[i].p, ids[i].n);
        len += ids[i].n;
        kept++;
    }
    if (cap)
        out[len] = '\0';
    *nout = kept;
    return 0;
}

/* --- scope ----------------------------------------------------------------- */

/* Appends NAME "=" LEN ":" VALUE at out + *len. -1 when it does not fit. */
static int scope_part(char *out, size_t cap, size_t *len, const char *sep, const char *name,
                      const char *v) {
    char d[24];
    char *digits = decimal(d + sizeof d, strlen(v));
    size_t nd = (size_t)(d + sizeof d - digits), ns = strlen(sep), nn = strlen(name),
           nv = strlen(v);
    if (*len + ns + nn + 1 + nd + 1 + nv + 1 > cap)
        return -1;
    char *p = out + *len;
    memcpy(p, sep, ns);
    p += ns;
    memcpy(p, name, nn);
    p += nn;
    *p++ = '=';
    memcpy(p, digits, nd);
    p += nd;
    *p++ = ':';
    memcpy(p, v, nv);
    p += nv;
    *p = '\0';
    *len = (size_t)(p - out);
    return 0;
}

int cg_cache_key_scope(const char *tenant, const char *group, const cg_cache_scope_part *parts,
                       size_t n_parts, char *out, size_t cap) {
    size_t len = 0;
    int rc = group && *group ? scope_part(out, cap, &len, "", "group", group)
                             : scope_part(out, cap, &len, "", "tenant", tenant ? tenant : "");
    for (size_t i = 0; rc == 0 && i < n_parts; i++)
        rc = scope_part(out, cap, &len, ";", parts[i].name, parts[i].value ? parts[i].value : "");
    return rc;
}
