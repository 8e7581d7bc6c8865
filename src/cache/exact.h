/* exact: the exact response cache's store.
 *
 * Owns: the in-memory index (hash table on the 32-byte key, LRU list, byte
 * bound), entry lifetime (reference counted: a hit keeps its entry alive
 * while the answer is sent, even if it is evicted meanwhile), expiry against
 * the gateway clock, invalidation by key, tag, tenant, share group, prompt
 * version and writer request, the counters behind `GET /admin/cache/stats`,
 * and persistence in the ledger database (tables cache_entries,
 * cache_invalidations; ledger_schema.h), written on the ledger's writer
 * thread in its group commit, so no worker loop ever waits on disk. An
 * entry's row is written when it serves its first hit (a stored answer
 * nobody asks for again costs no write: misses stay as cheap as the plain
 * proxy) and, for the rest, at shutdown (cg_cache_persist_sync); its hit
 * counters at most every CG_CACHE_STATS_EVERY_MS; removals at once. So a
 * restart keeps every entry, a crash (kill -9) the ones that served a hit.
 * The entries are loaded back at start.
 *
 * Thread-safe: one mutex guards the index (held for a hash lookup or an
 * LRU move, never across I/O); entries are immutable once inserted except
 * their hit and saving counters.
 */
#ifndef CG_CACHE_EXACT_H
#define CG_CACHE_EXACT_H

#include <stddef.h>
#include <stdint.h>

#include "cache/policy.h"
#include "cost/usage.h"

struct cg_ledger;

#define CG_CACHE_TAGS_MAX 512 /* context ids (256) + cache tags */

typedef struct cg_cache cg_cache;

/* What an entry records beside its answer; NULL reads as "". Each string
 * is cut to its cap, in bytes without the NUL (CG_CACHE_*_MAX). */
typedef struct cg_cache_entry_meta {
    const char *tenant;      /* the writer's tenant */
    const char *share_group; /* "" = private to the tenant */
    const char *model;       /* the model that answered */
    const char *intent;
    const char *prompt_version;
    const char *writer_id; /* request that stored it */
} cg_cache_entry_meta;
#define CG_CACHE_TENANT_MAX 63
#define CG_CACHE_SHARE_GROUP_MAX 63
#define CG_CACHE_MODEL_MAX 127
#define CG_CACHE_INTENT_MAX 63
#define CG_CACHE_PROMPT_VERSION_MAX 127
#define CG_CACHE_WRITER_ID_MAX 47

/* One allocation holds the entry, its strings, its tags and its body, so
 * that `bytes` (what the cache's bound counts) is the memory it takes. */
typedef struct cg_cache_entry {
    /* immutable once inserted; the strings point into the entry's own
     * allocation (cg_cache_entry_meta) */
    uint8_t key[32];
    char key_hex[65];
    int api; /* cg_api */
    const char *tenant, *share_group, *model, *intent, *prompt_version, *writer_id;
    char **tags; /* n_tags strings */
    size_t n_tags;
    char *body; /* the answer, as a complete non-stream JSON body */
    size_t body_len;
    cg_usage usage; /* what the original call was billed for */
    int64_t created_ms, expires_ms;
    /* counters (atomic) */
    _Atomic int64_t hits;
    _Atomic int64_t saved_nano;
    /* internal */
    _Atomic int refs;
    int in_table;
    int persisted;          /* its row is (being) written (under the cache lock) */
    int dirty;              /* a write of it is queued (under the cache lock) */
    int64_t hits_persisted; /* hits as last written */
    int64_t stats_us;       /* when a counter update was last queued (monotonic) */
    size_t bytes;
    struct cg_cache_entry *prev, *next; /* LRU */
} cg_cache_entry;

/* Invalidation causes (stats, the cache_invalidations table). */
typedef enum {
    CG_INV_KEY = 0,
    CG_INV_TAG,
    CG_INV_TENANT,
    CG_INV_PROMPT_VERSION,
    CG_INV_FEEDBACK,
    CG_INV_ALL,
    CG_INV_N
} cg_inv_cause;
const char *cg_inv_cause_name(cg_inv_cause c);

typedef struct cg_cache_stats {
    uint64_t entries, bytes, max_bytes;
    uint64_t lookups, hits, misses, coalesced, bypassed;
    uint64_t stores, replaced, evictions, expirations;
    uint64_t rejects[CG_GUARD_N];
    uint64_t invalidated[CG_INV_N];
    uint64_t coalesce_waits, coalesce_timeouts, coalesce_leader_failed;
    uint64_t semantic_hits; /* entries served for a similar query (not in hits) */
    int64_t saved_nano;     /* exact and semantic hits */
} cg_cache_stats;

/* now_ms: the clock for expiry (the gateway's, settable in tests). */
typedef long long (*cg_cache_clock_fn)(void *arg);

cg_cache *cg_cache_new(const cg_cache_cfg *cfg, cg_cache_clock_fn clock, void *clock_arg, char *err,
                       size_t errlen);
void cg_cache_free(cg_cache *c);
const cg_cache_guard *cg_cache_guard_of(const cg_cache *c);
long long cg_cache_now(const cg_cache *c);

/* Persistence: changes are queued for the ledger writer from now on. */
void cg_cache_attach_ledger(cg_cache *c, struct cg_ledger *l);
/* Loads the unexpired entries of the ledger file (newest first, up to the
 * byte bound) and queues the removal of expired ones. Call at start, before
 * any request. 0, or -1 with a message. */
int cg_cache_load(cg_cache *c, const char *db_path, char *err, size_t errlen);
/* Writes everything queued and every changed hit counter, drops the
 * statements kept on the ledger's connection, and waits for it. Call at
 * shutdown, before the ledger closes. */
void cg_cache_persist_sync(cg_cache *c);

/* A new entry (not yet in the cache): copies body, tags and meta (which may
 * be NULL: every string ""). Its `bytes` is the allocator's size of it
 * plus its share of the index. NULL when out of memory. */
cg_cache_entry *cg_cache_entry_new(const uint8_t key[32], const char *body, size_t body_len,
                                   const char *const *tags, size_t n_tags,
                                   const cg_cache_entry_meta *meta);
/* Drops a reference (a lookup's, or an unused new entry's). Any thread. */
void cg_cache_entry_release(cg_cache_entry *e);

/* The live entry for key, with a reference the caller releases, or NULL
 * (absent or expired: an expired entry is removed). Counts a lookup. */
cg_cache_entry *cg_cache_get(cg_cache *c, const uint8_t key[32]);
/* The same without counting a lookup (the semantic cache fetching the entry
 * its index matched). */
cg_cache_entry *cg_cache_fetch(cg_cache *c, const uint8_t key[32]);
/* Counts a served hit and its saving on e (and in the totals). An entry's
 * counters reach the file at most every CG_CACHE_STATS_EVERY_MS, and at
 * shutdown: a hit costs no extra write. */
#define CG_CACHE_STATS_EVERY_MS 10000
/* How the entry was found: by its own key, by waiting on an identical
 * request, or by the semantic cache for a similar query (counted apart:
 * the exact hit rate stays the exact key's). */
enum { CG_CACHE_HIT_EXACT = 0, CG_CACHE_HIT_COALESCED = 1, CG_CACHE_HIT_SEMANTIC = 2 };
void cg_cache_hit(cg_cache *c, cg_cache_entry *e, int64_t saved_nano, int how);
/* 1 when a live (unexpired) entry has this key. Counts nothing, moves
 * nothing in the LRU. */
int cg_cache_contains(cg_cache *c, const uint8_t key[32]);

/* Called for every entry that leaves the index for any reason (invalidation,
 * eviction, expiry, replacement by a new answer for the same key), with the
 * cache lock held: fn must be quick and must not call back into the cache.
 * One hook; set it before requests start. cg_cache_free does not call it. */
typedef void (*cg_cache_remove_fn)(void *arg, const uint8_t key[32]);
void cg_cache_set_remove_hook(cg_cache *c, cg_cache_remove_fn fn, void *arg);
/* Inserts e (taking the caller's reference), replacing an entry with the
 * same key, evicting least recently used entries past the byte bound. -1
 * (e released) when e alone exceeds the bound. */
int cg_cache_put(cg_cache *c, cg_cache_entry *e);

/* Counters kept for the stats. */
void cg_cache_count_miss(cg_cache *c);
void cg_cache_count_bypass(cg_cache *c);
void cg_cache_count_reject(cg_cache *c, cg_guard_reason r);
void cg_cache_count_coalesce(cg_cache *c, int waited, int timed_out, int leader_failed);

/* Invalidation: an entry is removed when it matches EVERY criterion given
 * (NULL / 0 = not a criterion; tags match when the entry has any of them).
 * A filter with no criterion removes nothing, unless all is set. Returns the
 * number removed and records the invalidation (cause, detail) for the
 * audit. */
typedef struct cg_cache_filter {
    const uint8_t *key;
    const char *const *tags;
    size_t n_tags;
    const char *tenant;
    const char *share_group;
    const char *prompt_version;
    const char *writer_id;
    int all;
} cg_cache_filter;
size_t cg_cache_invalidate(cg_cache *c, const cg_cache_filter *f, cg_inv_cause cause,
                           const char *detail);

void cg_cache_stats_get(cg_cache *c, cg_cache_stats *out);

/* Visits live entries (for tests and stats), under the lock: fn must not
 * call back into the cache. */
void cg_cache_visit(cg_cache *c, void (*fn)(void *arg, const cg_cache_entry *e), void *arg);

#endif
