/* coalesce: one upstream call for concurrent identical cache misses.
 *
 * Owns: the in-flight table keyed by cache key. The first miss for a key
 * becomes its leader and goes upstream; later misses for the same key join
 * as waiters (possibly on other worker threads) until the leader is done.
 * The leader's cg_coalesce_done wakes every waiter through its notify
 * callback (which hands the waiter back to its own loop, e.g. with
 * cg_worker_post) with ok = 1 when the answer was stored in the cache (the
 * waiter then serves it from there) or 0 (the waiter goes upstream itself).
 * A waiter bounds its wait with its own timer; cg_coalesce_cancel tells it
 * whether it left in time (1) or a notify is already on its way (0).
 * Thread-safe (one mutex, held for a table operation only).
 */
#ifndef CG_CACHE_COALESCE_H
#define CG_CACHE_COALESCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_coalesce cg_coalesce;
typedef struct cg_coalesce_slot cg_coalesce_slot;

typedef struct cg_coalesce_waiter {
    void (*notify)(struct cg_coalesce_waiter *w); /* called on the leader's thread */
    void *arg;
    int ok;    /* set before notify: the leader stored its answer */
    int state; /* internal */
    struct cg_coalesce_waiter *next;
    cg_coalesce_slot *slot;
} cg_coalesce_waiter;

cg_coalesce *cg_coalesce_new(void);
void cg_coalesce_free(cg_coalesce *co);

/* Joins key's flight. Returns the new slot when the caller is the leader
 * (it must call cg_coalesce_done once), or NULL when it was added as a
 * waiter (w is then notified exactly once, unless cg_coalesce_cancel
 * returns 1). *err = 1 (and NULL) when out of memory: go on alone. */
cg_coalesce_slot *cg_coalesce_join(cg_coalesce *co, const uint8_t key[32], cg_coalesce_waiter *w,
                                   int *err);
/* The leader is done: wakes its waiters with ok and frees the slot. */
void cg_coalesce_done(cg_coalesce *co, cg_coalesce_slot *slot, int ok);
/* A waiter gives up (its timer fired): 1 when it was removed (no notify
 * will come), 0 when the leader already took it (a notify is coming). */
int cg_coalesce_cancel(cg_coalesce *co, cg_coalesce_waiter *w);
/* Keys in flight (stats). */
size_t cg_coalesce_inflight(cg_coalesce *co);

#endif
