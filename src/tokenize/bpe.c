/* bpe: rank table (parse, hash lookup) and the byte-pair merge.
 *
 * Owns: the table layout (a byte pool with per-rank offsets, and a power of
 * two open-addressing array of 16-byte slots holding the key's first 8
 * bytes, its length, a hash tag and rank + 1), the hash function, and both merge strategies.
 * Results are identical to tiktoken's byte_pair_merge: repeatedly merge the adjacent pair whose
 * concatenation has the lowest rank, leftmost first on ties.
 */
#include "tokenize/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANKS (1u << 22)
#define MAX_TOKEN_LEN 4096u
#define HOT_RANKS 16384u       /* BPE ranks follow merge order, so low ranks are frequent */
#define FILTER_BITS (1u << 21) /* 256 KiB: rejects most absent keys without a table probe */

/* One hash slot: the first (up to) 8 token bytes inline, so short keys are
 * compared without touching the pool. */
typedef struct slot {
    uint64_t k8;   /* first min(len, 8) bytes, zero padded */
    uint32_t rank; /* rank + 1; 0 = empty */
    uint32_t meta; /* (hash tag << 16) | len */
} slot;

struct cg_bpe {
    uint8_t *pool;
    size_t pool_len;
    uint32_t *off; /* by rank; UINT32_MAX = no such rank */
    uint32_t *len;
    uint32_t nranks;
    slot *hot; /* ranks below HOT_RANKS: the frequent tokens, cache resident */
    uint64_t hot_mask;
    slot *slots; /* the other ranks */
    uint64_t mask;
    uint32_t *rank2;  /* all 65536 two-byte keys: rank or CG_BPE_NO_RANK */
    uint64_t *filter; /* FILTER_BITS-bit presence filter of the longer tokens */
    uint32_t byte_rank[256];
};

/* The first min(n, 8) bytes, zero padded, without a variable-length copy:
 * two overlapping loads put the shared bytes at the same bit positions. */
static inline uint64_t load8(const uint8_t *p, size_t n) {
    uint64_t v;
    if (n >= 8) {
        memcpy(&v, p, 8);
        return v;
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return (uint64_t)lo | ((uint64_t)hi << (8 * (n - 4)));
    }
    if (n >= 2) {
        uint16_t lo, hi;
        memcpy(&lo, p, 2);
        memcpy(&hi, p + n - 2, 2);
        return (uint64_t)lo | ((uint64_t)hi << (8 * (n - 2)));
    }
    return n ? p[0] : 0;
}

/* Keys of up to 8 bytes hash from their inline word alone. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t k8) {
    uint64_t h = k8 ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    for (size_t i = 8; i < n; i += 8) {
        uint64_t v = load8(p + i, n - i);
        h = (h * 0xBF58476D1CE4E5B9ull) ^ v;
    }
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h;
}

static inline uint32_t meta_of(uint64_t h, size_t n) {
    return (uint32_t)((h >> 48) << 16) | (uint32_t)n;
}

static inline uint32_t probe_in(const cg_bpe *b, const slot *t, uint64_t mask, const uint8_t *p,
                                size_t n, uint64_t k8, uint64_t h) {
    uint32_t meta = meta_of(h, n);
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        const slot *s = &t[i];
        if (!s->rank)
            return CG_BPE_NO_RANK;
        if (s->meta == meta && s->k8 == k8 &&
            (n <= 8 || memcmp(b->pool + b->off[s->rank - 1] + 8, p + 8, n - 8) == 0))
            return s->rank - 1;
    }
}

static uint32_t probe(const cg_bpe *b, const uint8_t *p, size_t n, uint64_t k8, uint64_t h) {
    uint32_t r = probe_in(b, b->hot, b->hot_mask, p, n, k8, h);
    return r != CG_BPE_NO_RANK ? r : probe_in(b, b->slots, b->mask, p, n, k8, h);
}

static inline int filter_has(const cg_bpe *b, uint64_t h) {
    uint64_t bit = (h >> 40) & (FILTER_BITS - 1);
    return (int)((b->filter[bit >> 6] >> (bit & 63)) & 1);
}

uint32_t cg_bpe_rank(const cg_bpe *b, const uint8_t *p, size_t n) {
    if (n == 1)
        return b->byte_rank[p[0]];
    if (n == 2 && b->rank2)
        return b->rank2[(uint32_t)p[0] << 8 | p[1]];
    if (n > 0xFFFF)
        return CG_BPE_NO_RANK;
    uint64_t k8 = load8(p, n);
    uint64_t h = hash_bytes(p, n, k8);
    if (b->rank2 && !filter_has(b, h))
        return CG_BPE_NO_RANK;
    return probe(b, p, n, k8, h);
}

void cg_bpe_key_prep(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_key *k) {
    k->k8 = load8(p, n < 0xFFFF ? n : 8);
    k->h = hash_bytes(p, n < 0xFFFF ? n : 8, k->k8);
    __builtin_prefetch(&b->filter[((k->h >> 40) & (FILTER_BITS - 1)) >> 6]);
    __builtin_prefetch(&b->hot[k->h & b->hot_mask]);
    __builtin_prefetch(&b->slots[k->h & b->mask]);
}

uint32_t cg_bpe_size(const cg_bpe *b) {
    return b->nranks;
}

const uint8_t *cg_bpe_bytes(const cg_bpe *b, uint32_t rank, size_t *len) {
    if (rank >= b->nranks || b->off[rank] == UINT32_MAX)
        return NULL;
    *len = b->len[rank];
    return b->pool + b->off[rank];
}

size_t cg_bpe_memory(const cg_bpe *b) {
    return sizeof *b + b->pool_len + (size_t)b->nranks * 8 +
           (size_t)(b->mask + b->hot_mask + 2) * sizeof(slot) + 65536 * sizeof(uint32_t);
}

void cg_bpe_free(cg_bpe *b) {
    if (!b)
        return;
    free(b->pool);
    free(b->off);
    free(b->len);
    free(b->slots);
    free(b->hot);
    free(b->filter);
    free(b->rank2);
    free(b);
}

static int b64val(uint8_t c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard padded base64 s[0..n) into out; returns bytes or -1. */
static long b64dec(const uint8_t *s, size_t n, uint8_t *out) {
    if (n == 0 || n % 4)
        return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = (s[i + k] == '=' && i + 4 == n && k >= 2) ? 0 : b64val(s[i + k]);
            if (v[k] < 0)
                return -1;
        }
        uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                     (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (s[i + 2] != '=')
            out[o++] = (uint8_t)(w >> 8);
        if (s[i + 3] != '=')
            out[o++] = (uint8_t)w;
        if (s[i + 2] == '=' && s[i + 3] != '=')
            return -1;
    }
    return o;
}

static int table_insert(cg_bpe *b, uint32_t rank) {
    const uint8_t *p = b->pool + b->off[rank];
    size_t n = b->len[rank];
    if (n == 1) /* looked up through byte_rank, not the table */
        return b->byte_rank[p[0]] == rank ? 0 : -1;
    if (cg_bpe_rank(b, p, n) != CG_BPE_NO_RANK)
        return -1;
    uint64_t k8 = load8(p, n);
    uint64_t h = hash_bytes(p, n, k8);
    slot *t = rank < HOT_RANKS ? b->hot : b->slots;
    uint64_t mask = rank < HOT_RANKS ? b->hot_mask : b->mask;
    uint64_t i = h & mask;
    while (t[i].rank)
        i = (i + 1) & mask;
    t[i] = (slot){k8, rank + 1, meta_of(h, n)};
    uint64_t bit = (h >> 40) & (FILTER_BITS - 1);
    b->filter[bit >> 6] |= 1ull << (bit & 63);
    return 0;
}

cg_bpe *cg_bpe_parse(const char *data, size_t len, char *err, size_t errlen) {
    const uint8_t *d = (const uint8_t *)data;
    cg_bpe *b = calloc(1, sizeof *b);
    size_t lines = 0, line_no = 0;
    const char *why = NULL;
    if (!b)
        goto oom;
    for (size_t i = 0; i < len; i++)
        lines += d[i] == '\n';
    lines++;
    if (lines > MAX_RANKS) {
        why = "too many lines";
        goto fail;
    }
    /* The pool never exceeds the base64 text. */
    b->pool = malloc(len + 1);
    b->off = malloc(lines * sizeof *b->off);
    b->len = malloc(lines * sizeof *b->len);
    if (!b->pool || !b->off || !b->len)
        goto oom;
    memset(b->off, 0xFF, lines * sizeof *b->off);
    memset(b->len, 0, lines * sizeof *b->len);
    for (size_t i = 0; i < 256; i++)
        b->byte_rank[i] = CG_BPE_NO_RANK;
    size_t ntok = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && d[e] != '\n')
            e++;
        line_no++;
        size_t sp = i;
        while (sp < e && d[sp] != ' ')
            sp++;
        if (e == i) { /* blank line (the trailing newline) */
            i = e + 1;
            continue;
        }
        if (sp == e || sp - i > MAX_TOKEN_LEN * 2) {
            why = "malformed line";
            goto fail;
        }
        uint64_t rank = 0;
        size_t k = sp + 1;
        if (k == e) {
            why = "missing rank";
            goto fail;
        }
        for (; k < e; k++) {
            if (d[k] < '0' || d[k] > '9' || rank >= MAX_RANKS) {
                why = "bad rank";
                goto fail;
            }
            rank = rank * 10 + (d[k] - '0');
        }
        if (rank >= lines || b->off[rank] != UINT32_MAX) {
            why = "rank out of range or repeated";
            goto fail;
        }
        long n = b64dec(d + i, sp - i, b->pool + b->pool_len);
        if (n <= 0 || (size_t)n > MAX_TOKEN_LEN) {
            why = "bad base64 token";
            goto fail;
        }
        b->off[rank] = (uint32_t)b->pool_len;
        b->len[rank] = (uint32_t)n;
        b->pool_len += (size_t)n;
        if (rank + 1 > b->nranks)
            b->nranks = (uint32_t)rank + 1;
        if (n == 1)
            b->byte_rank[b->pool[b->off[rank]]] = (uint32_t)rank;
        ntok++;
        i = e + 1;
    }
    for (size_t i = 0; i < 256; i++) {
        if (b->byte_rank[i] == CG_BPE_NO_RANK) {
            why = "a single byte has no rank";
            goto fail;
        }
    }
    size_t cap = 16, hot = 16;
    while (cap < ntok * 2)
        cap <<= 1;
    while (hot < HOT_RANKS * 2)
        hot <<= 1;
    b->mask = cap - 1;
    b->hot_mask = hot - 1;
    b->slots = calloc(cap, sizeof *b->slots);
    b->hot = calloc(hot, sizeof *b->hot);
    b->filter = calloc(FILTER_BITS / 64, sizeof *b->filter);
    if (!b->slots || !b->hot || !b->filter)
        goto oom;
    for (uint32_t r = 0; r < b->nranks; r++) {
        if (b->off[r] != UINT32_MAX && table_insert(b, r) != 0) {
            why = "duplicate token bytes";
            goto fail;
        }
    }
    b->rank2 = malloc(65536 * sizeof *b->rank2);
    if (!b->rank2)
        goto oom;
    for (uint32_t k = 0; k < 65536; k++) {
        uint8_t two[2] = {(uint8_t)(k >> 8), (uint8_t)k};
        uint64_t k8 = load8(two, 2);
        b->rank2[k] = probe(b, two, 2, k8, hash_bytes(two, 2, k8));
    }
    return b;
oom:
    why = "out of memory";
fail:
    if (err && errlen)
        snprintf(err, errlen, "rank file: %s (line %zu)", why, line_no);
    cg_bpe_free(b);
    return NULL;
}

int cg_bpe_sink_grow(cg_bpe_sink *s, uint32_t id) {
    if (s->n >= s->max) {
        s->failed = 1;
        return -1;
    }
    if (!s->count_only) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 256;
            if (nc > s->max)
                nc = s->max;
            uint32_t *v = realloc(s->ids, nc * sizeof *v);
            if (!v) {
                s->failed = 1;
                return -1;
            }
            s->ids = v;
            s->cap = nc;
        }
        s->ids[s->n] = id;
    }
    s->n++;
    return 0;
}

/* tiktoken's algorithm for short pieces: parts in arrays, linear min scan. */
size_t cg_bpe_merge_small(const cg_bpe *b, const uint8_t *p, size_t n, uint32_t *tk) {
    uint32_t st[CG_BPE_SMALL_PIECE + 1], rk[CG_BPE_SMALL_PIECE];
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        st[i] = (uint32_t)i;
        tk[i] = b->byte_rank[p[i]];
        rk[i] = i + 1 < n ? cg_bpe_rank(b, p + i, 2) : CG_BPE_NO_RANK;
    }
    st[n] = (uint32_t)n;
    for (;;) {
        uint32_t best = CG_BPE_NO_RANK;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            if (rk[i] < best) {
                best = rk[i];
                bi = i;
            }
        }
        if (best == CG_BPE_NO_RANK)
            break;
        tk[bi] = best;
        memmove(&st[bi + 1], &st[bi + 2], (m - bi - 1) * sizeof st[0]);
        memmove(&tk[bi + 1], &tk[bi + 2], (m - bi - 2) * sizeof tk[0]);
        memmove(&rk[bi + 1], &rk[bi + 2], (m - bi - 2) * sizeof rk[0]);
        m--;
        rk[bi] = bi + 1 < m ? cg_bpe_rank(b, p + st[bi], st[bi + 2] - st[bi]) : CG_BPE_NO_RANK;
        if (bi > 0)
            rk[bi - 1] = cg_bpe_rank(b, p + st[bi - 1], st[bi + 1] - st[bi - 1]);
    }
    return m;
}

static int merge_small(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out) {
    uint32_t tk[CG_BPE_SMALL_PIECE];
    size_t m = cg_bpe_merge_small(b, p, n, tk);
    for (size_t i = 0; i < m; i++) {
        if (cg_bpe_sink_push(out, tk[i]) != 0)
            return -1;
    }
    return 0;
}

/* Binary min-heap of (rank << 32 | position) keys. */
typedef struct heap {
    uint64_t *v;
    size_t n, cap;
} heap;

static int heap_push(heap *h, uint64_t key) {
    if (h->n == h->cap) {
        size_t nc = h->cap * 2;
        uint64_t *v = realloc(h->v, nc * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent] <= key)
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = key;
    return 0;
}

static uint64_t heap_pop(heap *h) {
    uint64_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c])
            c++;
        if (last <= h->v[c])
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

#define NONE UINT32_MAX

/* Long pieces: doubly linked parts, lazy-deletion heap. O(n log n). */
static int merge_large(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out) {
    int rc = -1;
    uint32_t *nxt = malloc(n * sizeof *nxt), *prv = malloc(n * sizeof *prv);
    uint32_t *tk = malloc(n * sizeof *tk), *rk = malloc(n * sizeof *rk);
    uint8_t *dead = calloc(n, 1);
    heap h = {malloc(n * sizeof(uint64_t)), 0, n};
    if (!nxt || !prv || !tk || !rk || !dead || !h.v)
        goto done;
    for (size_t i = 0; i < n; i++) {
        nxt[i] = i + 1 < n ? (uint32_t)(i + 1) : NONE;
        prv[i] = i ? (uint32_t)(i - 1) : NONE;
        tk[i] = b->byte_rank[p[i]];
        rk[i] = i + 1 < n ? cg_bpe_rank(b, p + i, 2) : CG_BPE_NO_RANK;
        if (rk[i] != CG_BPE_NO_RANK)
            h.v[h.n++] = ((uint64_t)rk[i] << 32) | i;
    }
    /* heapify */
    for (size_t k = h.n / 2; k-- > 0;) {
        uint64_t key = h.v[k];
        size_t i = k;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= h.n)
                break;
            if (c + 1 < h.n && h.v[c + 1] < h.v[c])
                c++;
            if (key <= h.v[c])
                break;
            h.v[i] = h.v[c];
            i = c;
        }
        h.v[i] = key;
    }
    while (h.n) {
        uint64_t key = heap_pop(&h);
        uint32_t r = (uint32_t)(key >> 32), i = (uint32_t)key;
        if (dead[i] || rk[i] != r)
            continue;
        uint32_t j = nxt[i];
        tk[i] = r;
        dead[j] = 1;
        nxt[i] = nxt[j];
        if (nxt[j] != NONE)
            prv[nxt[j]] = i;
        if (nxt[i] != NONE) {
            size_t end = nxt[nxt[i]] == NONE ? n : nxt[nxt[i]];
            rk[i] = cg_bpe_rank(b, p + i, end - i);
            if (rk[i] != CG_BPE_NO_RANK && heap_push(&h, ((uint64_t)rk[i] << 32) | i) != 0)
                goto done;
        } else {
            rk[i] = CG_BPE_NO_RANK;
        }
        if (prv[i] != NONE) {
            uint32_t k = prv[i];
            size_t end = nxt[i] == NONE ? n : nxt[i];
            rk[k] = cg_bpe_rank(b, p + k, end - k);
            if (rk[k] != CG_BPE_NO_RANK && heap_push(&h, ((uint64_t)rk[k] << 32) | k) != 0)
                goto done;
        }
    }
    for (uint32_t i = 0; i != NONE; i = nxt[i]) {
        if (cg_bpe_sink_push(out, tk[i]) != 0)
            goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        out->failed = 1;
    free(nxt);
    free(prv);
    free(tk);
    free(rk);
    free(dead);
    free(h.v);
    return rc;
}

uint32_t cg_bpe_rank_key(const cg_bpe *b, const uint8_t *p, size_t n, const cg_bpe_key *k) {
    if (n <= 2 || n > 0xFFFF)
        return cg_bpe_rank(b, p, n);
    return filter_has(b, k->h) ? probe(b, p, n, k->k8, k->h) : CG_BPE_NO_RANK;
}

int cg_bpe_merge(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out) {
    if (n <= CG_BPE_SMALL_PIECE)
        return merge_small(b, p, n, out);
    if (n >= NONE) {
        out->failed = 1;
        return -1;
    }
    return merge_large(b, p, n, out);
}

int cg_bpe_encode_piece(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out) {
    if (n == 0)
        return 0;
    cg_bpe_key k;
    cg_bpe_key_prep(b, p, n, &k);
    uint32_t r = cg_bpe_rank_key(b, p, n, &k);
    return r != CG_BPE_NO_RANK ? cg_bpe_sink_push(out, r) : cg_bpe_merge(b, p, n, out);
}
