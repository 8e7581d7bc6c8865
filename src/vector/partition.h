/* partition: the semantic cache's vector indexes, one per hard scope.
 *
 * Owns: cg_vparts, a set of cg_vindex keyed by a 32-byte scope key (the
 * caller's SHA-256 over tenant, model, system-prompt hash, tools hash and
 * sampling parameters). Partitions are created on first add. A query names
 * its key and only ever searches that partition's own index: there is no
 * shared graph, so a vector of one scope cannot be returned for another,
 * whatever the vectors are.
 *
 * Bounds: each partition holds at most `capacity` vectors; adding past it
 * evicts the least recently used one (use = add or cg_vparts_touch). At
 * most `max_partitions` partitions exist; creating one more evicts the
 * least recently used partition (use = add, search or touch) whole. Every
 * id that leaves other than by cg_vparts_delete is reported to on_evict
 * (after the locks are released) so the cache can drop its entry.
 *
 * Persistence: cg_vparts_save writes one index file per partition,
 * "<64 hex key>.cgv" (format in vector_io.c), then a manifest
 * "partitions.cgvm" listing the partitions (least recently used first) with
 * their ids in LRU order, each file written atomically. cg_vparts_load
 * rebuilds the set; a partition whose file is missing or corrupt is skipped
 * and its ids (known from the manifest) reported as CG_VEVICT_LOST.
 *
 * Threads: all calls are thread-safe. Searches of a partition run
 * concurrently with each other and with writes to it (see vector.h); the
 * set-wide mutex is held only for map lookups. on_evict must not call back
 * into the same set.
 */
#ifndef CG_VECTOR_PARTITION_H
#define CG_VECTOR_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "vector/vector.h"

typedef struct cg_vparts cg_vparts;

typedef enum {
    CG_VEVICT_CAPACITY = 1,  /* partition full: least recently used id evicted */
    CG_VEVICT_PARTITION = 2, /* too many partitions: whole partition evicted */
    CG_VEVICT_DROP = 3,      /* cg_vparts_drop */
    CG_VEVICT_LOST = 4       /* load: the partition's file was missing or corrupt */
} cg_vevict_reason;

typedef void (*cg_vparts_evict_fn)(void *ud, const uint8_t key[32], uint64_t id,
                                   cg_vevict_reason why);

typedef struct cg_vparts_opts {
    int dim;
    cg_vindex_opts index;    /* per-partition options; max_elements comes from capacity */
    uint32_t capacity;       /* vectors per partition; default 100,000 */
    uint32_t max_partitions; /* default 4096 */
    cg_vparts_evict_fn on_evict;
    void *ud;
} cg_vparts_opts;

#define CG_VPARTS_DEFAULT_CAPACITY 100000u
#define CG_VPARTS_DEFAULT_MAX 4096u
#define CG_VPARTS_MANIFEST "partitions.cgvm"

/* NULL on bad options (dim, index options, capacity > 2^30 - 1) or no memory. */
cg_vparts *cg_vparts_new(const cg_vparts_opts *o);
void cg_vparts_free(cg_vparts *p);

/* Adds (or replaces) id in key's partition, creating it if needed. */
int cg_vparts_add(cg_vparts *p, const uint8_t key[32], uint64_t id, const float *v);
/* Up to k hits from key's partition only; 0 when the partition does not
 * exist. */
int cg_vparts_search(cg_vparts *p, const uint8_t key[32], const float *q, int k, cg_vhit *out);
/* Marks id as used (a served cache hit) for the LRU. CG_VE_NOTFOUND if absent. */
int cg_vparts_touch(cg_vparts *p, const uint8_t key[32], uint64_t id);
/* Removes id (not reported to on_evict). CG_VE_NOTFOUND if absent. */
int cg_vparts_delete(cg_vparts *p, const uint8_t key[32], uint64_t id);
/* Removes a whole partition; its ids are reported as CG_VEVICT_DROP. */
int cg_vparts_drop(cg_vparts *p, const uint8_t key[32]);

size_t cg_vparts_count(cg_vparts *p);                       /* partitions */
size_t cg_vparts_size(cg_vparts *p, const uint8_t key[32]); /* vectors in one */
size_t cg_vparts_memory(cg_vparts *p);                      /* bytes, all indexes */

int cg_vparts_save(cg_vparts *p, const char *dir, char *err, size_t errlen);

typedef struct cg_vparts_load_stats {
    uint32_t loaded;  /* partitions restored */
    uint32_t skipped; /* partitions whose file was missing, corrupt or mismatched */
    uint64_t lost;    /* ids reported as CG_VEVICT_LOST (or evicted by today's bounds) */
} cg_vparts_load_stats;

/* Fills an empty set from dir. 0 when the manifest was read (partitions may
 * still have been skipped: see st); an error code with a message when the
 * manifest is missing or corrupt or the set is not empty. */
int cg_vparts_load(cg_vparts *p, const char *dir, cg_vparts_load_stats *st, char *err,
                   size_t errlen);

#endif
