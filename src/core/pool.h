/* pool: a small fixed pool of threads for CPU work that must stay off the
 * event loops (sentence embeddings, vector search).
 *
 * Owns: the threads, a bounded FIFO of jobs and shutdown. A job's work()
 * runs on a pool thread; its done() is then handed to whoever submitted it
 * through the submitter's `post` function (for a request: cg_worker_post to
 * its own loop), so done() runs on the submitter's thread. A full queue
 * refuses the job (the caller goes on without it: a semantic lookup is an
 * optimisation, never a reason to wait). Thread-safe.
 */
#ifndef CG_CORE_POOL_H
#define CG_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_pool cg_pool;

typedef void (*cg_pool_post_fn)(void *target, void (*fn)(void *), void *arg);

typedef struct cg_pool_job {
    void (*work)(void *arg); /* on a pool thread */
    void (*done)(void *arg); /* then posted back through post(target, done, arg) */
    void *arg;
    cg_pool_post_fn post; /* NULL: done() runs on the pool thread */
    void *target;
} cg_pool_job;

/* threads >= 1; queue_max >= 1. NULL on failure. */
cg_pool *cg_pool_new(int threads, size_t queue_max);
/* 0 queued, -1 refused (full, stopping or out of memory). */
int cg_pool_submit(cg_pool *p, const cg_pool_job *job);
/* Jobs queued or running now. */
size_t cg_pool_pending(cg_pool *p);
/* Runs what is queued, joins the threads and frees the pool. */
void cg_pool_free(cg_pool *p);

#endif
