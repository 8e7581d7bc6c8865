/* key: canonical exact-cache key material and its SHA-256 (see key.h). */
#include "cache/key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

const char *const cg_cache_key_ignored[] = {"user", "metadata", "stream", "stream_options", NULL};

/* Where the material goes: a staging buffer, flushed to a cg_buf (tests,
 * docs) or to SHA-256. The material of most requests fits the stage and is
 * hashed in one call; larger material streams through a digest context
 * kept in the sink. Both outputs see the same bytes through the same code. */
#define STAGE 8192

typedef struct sink {
    cg_buf *buf;
    cg_sha256_ctx md; /* in use once the stage first fills (streaming) */
    int md_on;
    unsigned char *p;
    int failed;
    unsigned char stage[STAGE];
} sink;

/* Sends n bytes at p to the sink's output. */
static void emit(sink *s, const void *p, size_t n) {
    if (s->failed || !n)
        return;
    if (s->buf) {
        if (cg_buf_append(s->buf, p, n) != 0)
            s->failed = 1;
        return;
    }
    if (!s->md_on) {
        cg_sha256_init(&s->md);
        s->md_on = 1;
    }
    cg_sha256_update(&s->md, p, n);
}

static void sink_flush(sink *s) {
    emit(s, s->stage, (size_t)(s->p - s->stage));
    s->p = s->stage;
}

static void put_slow(sink *s, const void *p, size_t n) {
    sink_flush(s);
    if (n > STAGE) {
        emit(s, p, n);
        return;
    }
    memcpy(s->p, p, n);
    s->p += n;
}

static inline void put(sink *s, const void *p, size_t n) {
    if (n <= (size_t)(s->stage + STAGE - s->p)) {
        memcpy(s->p, p, n);
        s->p += n;
        return;
    }
    put_slow(s, p, n);
}

static inline void put1(sink *s, char c) {
    if (s->p == s->stage + STAGE)
        sink_flush(s);
    *s->p++ = (unsigned char)c;
}

#define PUT_LIT(s, lit) put((s), (lit), sizeof(lit) - 1)

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
static inline void put_len(sink *s, char tag, size_t n, char end) {
    char b[32];
    b[31] = end;
    char *p = decimal(b + 31, n);
    *--p = tag;
    put(s, p, (size_t)(b + 32 - p));
}

/* tag DECIMAL(n) ':' BYTES */
static inline void put_bytes(sink *s, char tag, const char *v, size_t n) {
    put_len(s, tag, n, ':');
    put(s, v, n);
}

static void field(sink *s, const char *name, size_t name_len, const char *v) {
    if (!v)
        v = "";
    put(s, name, name_len);
    put_bytes(s, ':', v, strlen(v));
    put1(s, '\n');
}

/* One of cg_cache_key_ignored (the key is n bytes, NUL-terminated). */
static int ignored(const char *k, size_t n) {
    for (int i = 0; cg_cache_key_ignored[i]; i++) {
        const char *ig = cg_cache_key_ignored[i];
        if (ig[0] == k[0] && strlen(ig) == n && memcmp(ig, k, n) == 0)
            return 1;
    }
    return 0;
}

/* An object member: its key (kn bytes; parsed JSON has no NUL in keys, so
 * byte order over (k, kn) is strcmp order) and value. */
typedef struct member {
    const char *k;
    size_t kn;
    json_t *v;
} member;

static inline int cmp_member(const member *a, const member *b) {
    unsigned char ca = a->kn ? (unsigned char)a->k[0] : 0, cb = b->kn ? (unsigned char)b->k[0] : 0;
    if (ca != cb)
        return ca < cb ? -1 : 1;
    size_t n = a->kn < b->kn ? a->kn : b->kn;
    int c = memcmp(a->k, b->k, n);
    return c ? c : (a->kn > b->kn) - (a->kn < b->kn);
}

static int cmp_member_q(const void *a, const void *b) {
    return cmp_member(a, b);
}

/* Keys are distinct, so any correct sort gives the one order: insertion
 * sort for the few keys of a typical object, qsort beyond. */
static void sort_members(member *m, size_t n) {
    if (n > 16) {
        qsort(m, n, sizeof *m, cmp_member_q);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        member x = m[i];
        size_t j = i;
        while (j > 0 && cmp_member(&m[j - 1], &x) > 0) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = x;
    }
}

#define MEMBERS_ON_STACK 16
#define DEPTH_MAX 512 /* deeper than any body jansson accepts (its limit is 2048) */

static int put_value(sink *s, const json_t *v, int depth, int top);

/* An object: '{', then its members as key (a string) and value, keys in
 * byte order, then '}'. At the top level the ignored fields are skipped. */
static int put_object(sink *s, const json_t *o, int depth, int top) {
    member stack_m[MEMBERS_ON_STACK];
    size_t n = json_object_size(o), k = 0;
    member *m = n <= MEMBERS_ON_STACK ? stack_m : malloc(n * sizeof *m);
    if (!m)
        return -1;
    for (void *it = json_object_iter((json_t *)o); it && k < n;
         it = json_object_iter_next((json_t *)o, it)) {
        const char *key = json_object_iter_key(it);
        size_t kn = json_object_iter_key_len(it);
        if (top && ignored(key, kn))
            continue;
        m[k].k = key;
        m[k].kn = kn;
        m[k].v = json_object_iter_value(it);
        k++;
    }
    sort_members(m, k);
    put1(s, '{');
    int rc = 0;
    for (size_t i = 0; i < k && rc == 0; i++) {
        put_bytes(s, 's', m[i].k, m[i].kn);
        rc = put_value(s, m[i].v, depth + 1, 0);
    }
    put1(s, '}');
    if (m != stack_m)
        free(m);
    return rc;
}

static int put_value(sink *s, const json_t *v, int depth, int top) {
    char b[48];
    int k;
    if (depth > DEPTH_MAX || !v)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(s, v, depth, top);
    case JSON_ARRAY: {
        put1(s, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            if (put_value(s, json_array_get(v, i), depth + 1, 0) != 0)
                return -1;
        put1(s, ']');
        return 0;
    }
    case JSON_STRING:
        put_bytes(s, 's', json_string_value(v), json_string_length(v));
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
        put1(s, 't');
        return 0;
    case JSON_FALSE:
        put1(s, 'f');
        return 0;
    case JSON_NULL:
        put1(s, 'n');
        return 0;
    }
    return -1;
}

#define FIELD(s, name, v) field((s), name, sizeof(name) - 1, (v))

static int material(const cg_cache_key_in *in, sink *s) {
    if (!json_is_object(in->body))
        return -1;
    PUT_LIT(s, CG_CACHE_KEY_VERSION "\n");
    FIELD(s, "scope", in->scope);
    FIELD(s, "api", in->api);
    FIELD(s, "prompt_version", in->prompt_version);
    FIELD(s, "context_ids", in->context_ids);
    FIELD(s, "anthropic_version", in->anthropic_version);
    FIELD(s, "anthropic_beta", in->anthropic_beta);
    PUT_LIT(s, "body:");
    return put_value(s, in->body, 0, 1) == 0 && !s->failed ? 0 : -1;
}

static void sink_init(sink *s, cg_buf *buf) {
    s->buf = buf;
    s->md_on = 0;
    s->p = s->stage;
    s->failed = 0;
}

int cg_cache_key_material(const cg_cache_key_in *in, cg_buf *out) {
    sink *s = malloc(sizeof *s); /* tests and docs only: off the request path */
    int rc = -1;
    if (!s)
        return -1;
    sink_init(s, out);
    if (material(in, s) == 0) {
        sink_flush(s);
        rc = s->failed ? -1 : 0;
    }
    free(s);
    return rc;
}

int cg_cache_key(const cg_cache_key_in *in, uint8_t out[32]) {
    sink s; /* the stage (8 KiB) on the stack: most requests hash it in one call */
    int rc = -1;
    sink_init(&s, NULL);
    if (material(in, &s) != 0)
        goto out;
    if (!s.md_on) { /* all of it in the stage */
        cg_sha256(s.stage, (size_t)(s.p - s.stage), out);
        rc = 0;
        goto out;
    }
    sink_flush(&s);
    cg_sha256_final(&s.md, out);
    rc = s.failed ? -1 : 0;
out:
    return rc;
}

void cg_cache_key_hex(const uint8_t key[32], char out[65]) {
    static const char pairs[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    for (size_t i = 0; i < 32; i++)
        memcpy(out + 2 * i, pairs + 2 * key[i], 2);
    out[64] = '\0';
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
