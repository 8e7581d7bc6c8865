/* tokenize: loading, special tokens and the encode/count/decode drivers.
 *
 * Owns: the encodings' fixed parameters (file name, sha256, special
 * tokens, scanner), the process-wide loaded tables, the rank-file search
 * path, and UTF-8 repair. The split is pretok.c, the merge is bpe.c.
 */
#include "tokenize/tokenize.h"

#include "core/hash.h"
#include "tokenize/bpe.h"
#include "tokenize/pretok.h"
#include "tokenize/uclass.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANK_FILE (16u << 20)

typedef struct special {
    const char *text;
    uint32_t id;
} special;

typedef size_t (*scan_fn)(const cg_pretok *pt, size_t i);

typedef struct enc_def {
    const char *name;
    const char *file;
    const char *sha256;
    scan_fn scan;
    const special *specials;
    size_t nspecials;
} enc_def;

static const special CL100K_SPECIALS[] = {
    {"<|endoftext|>", 100257},  {"<|fim_prefix|>", 100258},  {"<|fim_middle|>", 100259},
    {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276},
};
static const special O200K_SPECIALS[] = {
    {"<|endoftext|>", 199999},
    {"<|endofprompt|>", 200018},
};

static const enc_def ENCS[CG_ENC_COUNT] = {
    [CG_ENC_CL100K] = {"cl100k_base", "cl100k_base.tiktoken",
                       "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
                       cg_pretok_cl100k, CL100K_SPECIALS,
                       sizeof CL100K_SPECIALS / sizeof CL100K_SPECIALS[0]},
    [CG_ENC_O200K] = {"o200k_base", "o200k_base.tiktoken",
                      "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
                      cg_pretok_o200k, O200K_SPECIALS,
                      sizeof O200K_SPECIALS / sizeof O200K_SPECIALS[0]},
};

struct cg_tokenizer {
    uint32_t id; /* unique per load: tags this table's piece-cache entries */
    cg_encoding enc;
    const enc_def *def;
    cg_bpe *bpe;
    const uint8_t *uc;
};

const char *cg_encoding_name(cg_encoding e) {
    return (e >= 0 && e < CG_ENC_COUNT) ? ENCS[e].name : "none";
}

cg_encoding cg_encoding_from_name(const char *name) {
    for (int e = 0; e < CG_ENC_COUNT; e++) {
        if (name && strcmp(name, ENCS[e].name) == 0)
            return (cg_encoding)e;
    }
    return CG_ENC_NONE;
}

const char *cg_tok_sha256(cg_encoding e) {
    return (e >= 0 && e < CG_ENC_COUNT) ? ENCS[e].sha256 : NULL;
}

const char *cg_tok_file_name(cg_encoding e) {
    return (e >= 0 && e < CG_ENC_COUNT) ? ENCS[e].file : NULL;
}

cg_encoding cg_tok_encoding(const cg_tokenizer *t) {
    return t->enc;
}

size_t cg_tok_memory(const cg_tokenizer *t) {
    return sizeof *t + cg_bpe_memory(t->bpe);
}

void cg_tok_free(cg_tokenizer *t) {
    if (!t)
        return;
    cg_bpe_free(t->bpe);
    free(t);
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) {
    int rc = -1;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (size_t)st.st_size > MAX_RANK_FILE) {
        snprintf(err, errlen, "%s: unexpected size", path);
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: short read", path);
        goto done;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

cg_tokenizer *cg_tok_load(cg_encoding e, const char *path, char *err, size_t errlen) {
    char dummy[8], *data = NULL;
    size_t len = 0;
    cg_tokenizer *t = NULL;
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (e < 0 || e >= CG_ENC_COUNT) {
        snprintf(err, errlen, "unknown encoding");
        return NULL;
    }
    if (read_file(path, &data, &len, err, errlen) != 0)
        return NULL;
    uint8_t digest[32];
    char hex[65];
    cg_sha256(data, len, digest);
    cg_hex(digest, 32, hex);
    if (strcmp(hex, ENCS[e].sha256) != 0) {
        snprintf(err, errlen, "%s: sha256 %s does not match the expected %s", path, hex,
                 ENCS[e].sha256);
        goto done;
    }
    t = calloc(1, sizeof *t);
    const uint8_t *uc = cg_uclass_table();
    if (!t || !uc) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    static _Atomic uint32_t next_id = 1;
    t->id = atomic_fetch_add(&next_id, 1);
    t->enc = e;
    t->def = &ENCS[e];
    t->uc = uc;
    t->bpe = cg_bpe_parse(data, len, err, errlen);
    if (!t->bpe) {
        cg_tok_free(t);
        t = NULL;
    }
done:
    free(data);
    return t;
}

/* ---- process-wide tables ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(cg_tokenizer *) g_tok[CG_ENC_COUNT];
static char g_dir[PATH_MAX];

void cg_tok_set_data_dir(const char *dir) {
    pthread_mutex_lock(&g_mu);
    snprintf(g_dir, sizeof g_dir, "%s", dir ? dir : "");
    pthread_mutex_unlock(&g_mu);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds the rank file of e; 0 with the path in out, or -1. */
static int find_file(cg_encoding e, char *out, size_t outlen) {
    const char *file = ENCS[e].file, *rel = "node_modules/gpt-tokenizer/data";
    const char *env;
    if (g_dir[0]) {
        snprintf(out, outlen, "%s/%s", g_dir, file);
        return exists(out) ? 0 : -1;
    }
    if ((env = getenv("CG_TIKTOKEN_DIR")) && *env) {
        snprintf(out, outlen, "%s/%s", env, file);
        return exists(out) ? 0 : -1;
    }
    if ((env = getenv("CG_SOURCE_DIR")) && *env) {
        snprintf(out, outlen, "%s/%s/%s", env, rel, file);
        if (exists(out))
            return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            snprintf(out, outlen, "%s/%s/%s", exe, rel, file);
            if (exists(out))
                return 0;
        }
    }
    snprintf(out, outlen, "%s/%s", rel, file);
    return exists(out) ? 0 : -1;
}

const cg_tokenizer *cg_tok_get(cg_encoding e, char *err, size_t errlen) {
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (e < 0 || e >= CG_ENC_COUNT) {
        snprintf(err, errlen, "unknown encoding");
        return NULL;
    }
    cg_tokenizer *t = atomic_load_explicit(&g_tok[e], memory_order_acquire);
    if (t)
        return t;
    pthread_mutex_lock(&g_mu);
    t = atomic_load_explicit(&g_tok[e], memory_order_relaxed);
    if (!t) {
        char path[PATH_MAX + 64];
        if (find_file(e, path, sizeof path) != 0) {
            snprintf(err, errlen,
                     "%s not found (run scripts/setup.sh, or set CG_TIKTOKEN_DIR to the "
                     "directory holding it)",
                     ENCS[e].file);
        } else {
            t = cg_tok_load(e, path, err, errlen);
            if (t)
                atomic_store_explicit(&g_tok[e], t, memory_order_release);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return t;
}

/* ---- UTF-8 ---- */

int cg_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else
            return 0;
        if (i + need >= n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        }
        i += need + 1;
    }
    return 1;
}

int cg_utf8_sanitize(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) {
    static const uint8_t FFFD[3] = {0xEF, 0xBF, 0xBD};
    if (n > SIZE_MAX / 3)
        return -1;
    uint8_t *o = malloc(n * 3 + 1);
    size_t w = 0;
    if (!o)
        return -1;
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            o[w++] = b;
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else {
            memcpy(o + w, FFFD, 3);
            w += 3;
            i++;
            continue;
        }
        /* consume continuation bytes while they are in range; a bad one
         * ends the maximal subpart and is reprocessed */
        size_t k = 1;
        while (k <= need && i + k < n) {
            uint8_t c = s[i + k];
            if (c < lo || c > hi)
                break;
            lo = 0x80;
            hi = 0xBF;
            k++;
        }
        if (k == need + 1) {
            memcpy(o + w, s + i, k);
            w += k;
        } else {
            memcpy(o + w, FFFD, 3);
            w += 3;
        }
        i += k;
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return 0;
}

/* ---- encode ---- */

#define BATCH 8
#define CACHE_SLOTS 8192u
#define CACHE_KEY 48u
#define CACHE_IDS 12u

/* Per-thread direct-mapped cache of pieces that are not single tokens
 * (piece bytes -> ids), like gpt-tokenizer's merge cache: words that need
 * merging repeat (names, code identifiers, CJK phrases, system prompts).
 * Entries carry the table's id and the full piece, so a hit is exact. About
 * 0.9 MB per thread that encodes, allocated on first use and freed when the
 * thread exits. */
typedef struct cache_entry {
    uint64_t h;
    uint32_t owner;
    uint8_t len, nids;
    uint8_t bytes[CACHE_KEY];
    uint32_t ids[CACHE_IDS];
} cache_entry;

static _Thread_local cache_entry *t_cache;
static pthread_key_t g_cache_key;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void) {
    pthread_key_create(&g_cache_key, free);
}

static cache_entry *thread_cache(void) {
    if (!t_cache) {
        pthread_once(&g_cache_once, cache_key_init);
        t_cache = calloc(CACHE_SLOTS, sizeof *t_cache);
        if (t_cache)
            pthread_setspecific(g_cache_key, t_cache);
    }
    return t_cache;
}

static int resolve_piece(const cg_tokenizer *t, const uint8_t *p, size_t n, const cg_bpe_key *k,
                         cg_bpe_sink *sink) {
    uint32_t r = cg_bpe_rank_key(t->bpe, p, n, k);
    if (r != CG_BPE_NO_RANK)
        return cg_bpe_sink_push(sink, r);
    cache_entry *cache = n <= CACHE_KEY ? thread_cache() : NULL;
    if (!cache)
        return cg_bpe_merge(t->bpe, p, n, sink);
    cache_entry *c = &cache[k->h & (CACHE_SLOTS - 1)];
    uint32_t ids[CACHE_KEY];
    size_t m;
    if (c->owner == t->id && c->h == k->h && c->len == n && memcmp(c->bytes, p, n) == 0) {
        m = c->nids;
        memcpy(ids, c->ids, m * sizeof ids[0]);
    } else {
        m = cg_bpe_merge_small(t->bpe, p, n, ids);
        if (m <= CACHE_IDS) {
            c->owner = t->id;
            c->h = k->h;
            c->len = (uint8_t)n;
            c->nids = (uint8_t)m;
            memcpy(c->bytes, p, n);
            memcpy(c->ids, ids, m * sizeof ids[0]);
        }
    }
    for (size_t i = 0; i < m; i++) {
        if (cg_bpe_sink_push(sink, ids[i]) != 0)
            return -1;
    }
    return 0;
}

/* Splits a batch of pieces ahead and prefetches their hash slots before
 * resolving them, so the table's cache misses overlap. */
static int encode_ordinary(const cg_tokenizer *t, const uint8_t *s, size_t n, cg_bpe_sink *sink) {
    cg_pretok pt = {s, n, t->uc};
    scan_fn scan = t->def->scan;
    size_t i = 0, start[BATCH + 1];
    cg_bpe_key key[BATCH];
    while (i < n) {
        size_t k = 0;
        start[0] = i;
        while (k < BATCH && i < n) {
            i = scan(&pt, i);
            cg_bpe_key_prep(t->bpe, s + start[k], i - start[k], &key[k]);
            start[++k] = i;
        }
        for (size_t j = 0; j < k; j++) {
            if (resolve_piece(t, s + start[j], start[j + 1] - start[j], &key[j], sink) != 0)
                return -1;
        }
    }
    return 0;
}

/* Leftmost special token at or after from; returns its offset (n if none). */
static size_t next_special(const enc_def *d, const uint8_t *s, size_t n, size_t from,
                           const special **which) {
    for (size_t i = from; i + 1 < n; i++) {
        const uint8_t *p = memchr(s + i, '<', n - i);
        if (!p)
            break;
        i = (size_t)(p - s);
        if (i + 1 >= n || s[i + 1] != '|')
            continue;
        for (size_t k = 0; k < d->nspecials; k++) {
            size_t len = strlen(d->specials[k].text);
            if (len <= n - i && memcmp(s + i, d->specials[k].text, len) == 0) {
                *which = &d->specials[k];
                return i;
            }
        }
    }
    return n;
}

static int encode_bytes(const cg_tokenizer *t, const uint8_t *s, size_t n, unsigned flags,
                        cg_bpe_sink *sink) {
    if (!(flags & CG_TOK_ALLOW_SPECIAL))
        return encode_ordinary(t, s, n, sink);
    size_t i = 0;
    while (i <= n) {
        const special *sp = NULL;
        size_t at = next_special(t->def, s, n, i, &sp);
        if (encode_ordinary(t, s + i, at - i, sink) != 0)
            return -1;
        if (!sp)
            break;
        if (cg_bpe_sink_push(sink, sp->id) != 0)
            return -1;
        i = at + strlen(sp->text);
    }
    return 0;
}

static int encode_any(const cg_tokenizer *t, const char *text, size_t len, unsigned flags,
                      cg_bpe_sink *sink) {
    const uint8_t *s = (const uint8_t *)text;
    if (cg_utf8_valid(s, len))
        return encode_bytes(t, s, len, flags, sink);
    uint8_t *fixed = NULL;
    size_t flen = 0;
    if (cg_utf8_sanitize(s, len, &fixed, &flen) != 0)
        return -1;
    int rc = encode_bytes(t, fixed, flen, flags, sink);
    free(fixed);
    return rc;
}

void cg_tok_ids_free(cg_tok_ids *ids) {
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

int cg_tok_encode(const cg_tokenizer *t, const char *text, size_t len, unsigned flags,
                  size_t max_ids, cg_tok_ids *out) {
    cg_bpe_sink sink = {out->v, out->n, out->cap, max_ids, 0, 0};
    int rc = encode_any(t, text, len, flags, &sink);
    out->v = sink.ids;
    out->n = sink.n;
    out->cap = sink.cap;
    return rc == 0 && !sink.failed ? 0 : -1;
}

int64_t cg_tok_count(const cg_tokenizer *t, const char *text, size_t len, unsigned flags) {
    cg_bpe_sink sink = {NULL, 0, 0, SIZE_MAX, 1, 0};
    if (encode_any(t, text, len, flags, &sink) != 0 || sink.failed)
        return -1;
    return (int64_t)sink.n;
}

int cg_tok_decode(const cg_tokenizer *t, const uint32_t *ids, size_t n, char **out,
                  size_t *out_len) {
    size_t total = 0, blen;
    for (size_t i = 0; i < n; i++) {
        const special *sp = NULL;
        for (size_t k = 0; k < t->def->nspecials; k++) {
            if (t->def->specials[k].id == ids[i])
                sp = &t->def->specials[k];
        }
        if (sp)
            total += strlen(sp->text);
        else if (cg_bpe_bytes(t->bpe, ids[i], &blen))
            total += blen;
        else
            return -1;
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return -1;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = NULL;
        for (size_t k = 0; k < t->def->nspecials; k++) {
            if (t->def->specials[k].id == ids[i]) {
                p = (const uint8_t *)t->def->specials[k].text;
                blen = strlen(t->def->specials[k].text);
            }
        }
        if (!p)
            p = cg_bpe_bytes(t->bpe, ids[i], &blen);
        memcpy(buf + w, p, blen);
        w += blen;
    }
    buf[w] = '\0';
    *out = buf;
    *out_len = w;
    return 0;
}

int64_t cg_tok_count_model(const char *model, const char *text, size_t len) {
    cg_encoding e = cg_encoding_for_model(model);
    const cg_tokenizer *t = e == CG_ENC_NONE ? NULL : cg_tok_get(e, NULL, 0);
    return t ? cg_tok_count(t, text, len, 0) : -1;
}
