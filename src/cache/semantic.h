/* semantic: the semantic cache's index of cached queries.
 *
 * Owns: which requests the semantic cache may consider (cg_semantic_eligible:
 * one last user turn of plain text, no tool turns, no tools offered; strict
 * single-turn or "same prior context"), the partition key (everything the
 * exact cache key covers except the last user turn's text, plus the
 * segment and the permissions context), the vectors of cached queries (one
 * HNSW index per partition, vector/partition.h), the map between a vector
 * id and the exact-cache entry it stands for (with that query's text, for
 * the second gate), the accept decision (cg_semantic_decide: the one place
 * that says whether a candidate may be served), deferred vector deletes,
 * and the index's persistence (snapshot directories under index_dir).
 *
 * It never serves an answer: a match names an exact-cache key, and the
 * caller fetches that entry; an entry that is gone is a miss. Entries leave
 * through cg_semantic_forget_key (the exact cache's remove hook:
 * invalidation, eviction, expiry, replacement), a partition's own LRU
 * bound, or reconciliation against the exact cache at load.
 *
 * Isolation: a lookup searches only its partition's own index, and a
 * candidate is served only when its recorded partition key equals the
 * query's, so no vector of one partition can answer another, whatever the
 * vectors are (tests/unit/cache/test_semantic.c drives 10,000+ identical
 * pairs across partitions).
 *
 * Threads: every call is thread-safe. The map's mutex is held only for map
 * updates and copies, never across a search, an insert or a gate check;
 * cg_semantic_forget_key is cheap (no vector work: the vector's delete is
 * queued for cg_semantic_reap), so it may run under the exact cache's lock.
 * Lock order: exact cache -> this map; nothing here calls the exact cache.
 * Searches and inserts are CPU work for a worker pool, not an event loop.
 */
#ifndef CG_CACHE_SEMANTIC_H
#define CG_CACHE_SEMANTIC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/gate.h"

/* Longest last-user-turn text looked up, in bytes: what the second gate
 * reads whole (a longer text is not eligible). */
#define CG_SEMANTIC_TEXT_MAX CG_GATE_SCAN_MAX
/* Candidates taken from the index per lookup (best first). */
#define CG_SEMANTIC_K 4
/* Longest embedder identity kept with a snapshot. */
#define CG_SEMANTIC_ID_MAX 1024

typedef struct cg_semantic cg_semantic;

/* --- eligibility and partition key (pure; any thread) --------------------- */

typedef enum {
    CG_SEM_OK = 0,
    CG_SEM_NOT_SINGLE_TURN, /* earlier turns (strict), or the last message is not the user's */
    CG_SEM_TOOLS,           /* tools offered, or tool calls / results in the conversation */
    CG_SEM_NOT_TEXT,        /* the last user turn has parts other than text */
    CG_SEM_TOO_LONG,        /* its text is longer than CG_SEMANTIC_TEXT_MAX */
    CG_SEM_EMPTY,           /* its text is empty */
    CG_SEM_SHAPE,           /* no messages array, or out of memory */
    CG_SEM_N
} cg_sem_elig;

const char *cg_sem_elig_name(cg_sem_elig e);

/* Checks a chat request body (anthropic: a Messages body, else an OpenAI
 * chat completion). strict (same_context 0): the conversation is system /
 * developer messages and exactly one user message, last; same_context: any
 * earlier turns without tools, the last one the user's. On CG_SEM_OK
 * writes the last user turn's text (text parts joined by "\n") to text
 * (cap > CG_SEMANTIC_TEXT_MAX, NUL-terminated) and *len, and sets
 * *part_body to a new reference: the body with that turn's content
 * replaced by null (the input of cg_semantic_partition; shallow copies,
 * the caller's body is not changed). */
cg_sem_elig cg_semantic_eligible(const json_t *body, int anthropic, int same_context, char *text,
                                 size_t cap, size_t *len, json_t **part_body);

typedef struct cg_semantic_part_in {
    const char *scope;             /* the exact cache's scope (cg_cache_key_scope) */
    const char *segment;           /* the request's segment ("" = none) */
    const char *permissions;       /* canonical x-costgate-permissions ("" = none) */
    const char *api;               /* "openai.chat_completions" | "anthropic.messages" */
    const char *prompt_version;    /* NULL = "" */
    const char *context_ids;       /* canonical, NULL = "" */
    const char *anthropic_version; /* NULL = "" */
    const char *anthropic_beta;    /* NULL = "" */
    const json_t *body;            /* part_body from cg_semantic_eligible */
} cg_semantic_part_in;

/* The 32-byte partition key: SHA-256 of the exact key's material
 * (cache/key.h) in which the scope is "costgate-semantic-partition v1"
 * followed by the length-prefixed scope, segment and permissions, and the
 * body is part_body. So two requests share a partition exactly when
 * everything but the last user turn's text would give them the same exact
 * key, and they have the same segment and permissions; and a partition key
 * never equals an exact-cache key. 0, or -1 (too long, out of memory). */
int cg_semantic_partition(const cg_semantic_part_in *in, uint8_t out[32]);

/* --- the accept decision --------------------------------------------------- */

/* 1 when a candidate may be served: cosine similarity at or above the
 * threshold and the second gate (rules: cache/gate.h) passing on the two
 * query texts. Fills *gate (may be NULL) with the gate's verdict; a
 * candidate below the threshold leaves it at CG_GATE_PASS. */
int cg_semantic_decide(double similarity, double threshold, const char *asked, size_t asked_len,
                       const char *cached, size_t cached_len, unsigned rules, cg_gate_result *gate);

/* --- the index --------------------------------------------------------------- */

typedef struct cg_semantic_opts {
    int dim;                 /* vector length; 0 = fixed by the first vector added or loaded */
    uint32_t capacity;       /* vectors per partition (LRU); 0 = 100,000 */
    uint32_t max_partitions; /* 0 = 4096 */
    const char *embedder_id; /* what made the vectors (kept with a snapshot; another one's
                                snapshot is not loaded) */
} cg_semantic_opts;

/* NULL with a message on bad options or no memory. */
cg_semantic *cg_semantic_new(const cg_semantic_opts *o, char *err, size_t errlen);
void cg_semantic_free(cg_semantic *s);

/* Adds the cached query of exact-cache entry xkey (text: its last user
 * turn, at most CG_SEMANTIC_TEXT_MAX bytes) with its vector to partition
 * part, replacing the key's previous vector. 0, or a negative
 * vector-module error (CG_VE_INVAL for a vector of another length). */
int cg_semantic_add(cg_semantic *s, const uint8_t part[32], const uint8_t xkey[32],
                    const char *text, size_t len, const float *vec, int dim);

typedef struct cg_semantic_match {
    int found;               /* a candidate was accepted: xkey, id, similarity, text */
    uint8_t xkey[32];        /* the exact-cache entry to serve */
    uint64_t id;             /* its vector */
    float similarity;        /* the served candidate's cosine */
    int have_best;           /* the partition had a vector */
    float best;              /* the nearest vector's cosine */
    int candidates;          /* vectors at or above the threshold */
    int stale;               /* of those, ids without an entry (being removed) */
    cg_gate_reason rejected; /* the first gate refusal among them (CG_GATE_PASS = none) */
    char gate_detail[96];
    char text[CG_SEMANTIC_TEXT_MAX + 1]; /* the cached query */
    size_t text_len;
} cg_semantic_match;

/* Searches partition part for the query vector and runs the accept
 * decision on the candidates, best first: the first accepted one is the
 * match. 0 (see m->found), or a negative vector-module error. */
int cg_semantic_lookup(cg_semantic *s, const uint8_t part[32], const float *vec, int dim,
                       const char *asked, size_t asked_len, double threshold, unsigned rules,
                       cg_semantic_match *m);

/* Marks a served vector as used (its partition's LRU). */
void cg_semantic_touch(cg_semantic *s, const uint8_t part[32], uint64_t id);

/* Drops the vector standing for exact-cache key xkey, if any: the mapping
 * at once (it can no longer match), the vector itself at the next
 * cg_semantic_reap. Cheap; safe under the exact cache's lock. 1 when one
 * was mapped. */
int cg_semantic_forget_key(cg_semantic *s, const uint8_t xkey[32]);
/* Deletes the vectors whose mappings were dropped. Vector work: call on a
 * worker, not an event loop. */
void cg_semantic_reap(cg_semantic *s);
/* Drops every mapping whose exact-cache key live() says is gone (live is
 * called without the map's lock held). Returns how many went. */
size_t cg_semantic_reconcile(cg_semantic *s, int (*live)(void *arg, const uint8_t xkey[32]),
                             void *arg);

size_t cg_semantic_count(cg_semantic *s);      /* mapped vectors */
size_t cg_semantic_partitions(cg_semantic *s); /* partitions with an index */
int cg_semantic_dim(cg_semantic *s);           /* 0 until known */

/* Writes a snapshot under dir (created if needed): dir/snap-<N>/ holds the
 * partition indexes (vector/partition.h) and entries.cgse (ids, partition
 * keys, exact keys, texts, the embedder identity; SHA-256 checked), then
 * dir/CURRENT names it, replaced atomically; the previous snapshot is
 * removed. Call with no concurrent writers (at stop). 0, or -1 with a
 * message. */
int cg_semantic_save(cg_semantic *s, const char *dir, char *err, size_t errlen);

typedef struct cg_semantic_load_stats {
    int found;           /* dir held a snapshot */
    int discarded;       /* ... made by another embedder or dimension: not loaded */
    size_t entries;      /* mappings restored */
    uint32_t partitions; /* partition indexes restored */
    uint64_t lost;       /* vectors of partitions whose file was missing or corrupt */
} cg_semantic_load_stats;

/* Loads the snapshot dir/CURRENT names into an empty index. No snapshot,
 * or one of another embedder, is not an error (see st). -1 with a message
 * when the snapshot is unreadable or corrupt, or the index is not empty. */
int cg_semantic_load(cg_semantic *s, const char *dir, cg_semantic_load_stats *st, char *err,
                     size_t errlen);

#endif
