/* pool: fixed thread pool with a bounded job queue (see pool.h). */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_THREADS_MAX 64

struct cg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cg_pool_job *ring;
    size_t cap, head, count, running;
    int stopping;
    pthread_t threads[POOL_THREADS_MAX];
    int n_threads;
};

static void *run(void *arg) {
    cg_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->count && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->count)
            break; /* stopping and drained */
        cg_pool_job job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        job.work(job.arg);
        if (job.done) {
            if (job.post)
                job.post(job.target, job.done, job.arg);
            else
                job.done(job.arg);
        }
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cg_pool *cg_pool_new(int threads, size_t queue_max) {
    if (threads < 1 || threads > POOL_THREADS_MAX || queue_max < 1)
        return NULL;
    cg_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ring = calloc(queue_max, sizeof *p->ring);
    if (!p->ring) {
        free(p);
        return NULL;
    }
    p->cap = queue_max;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, run, p) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        cg_pool_free(p);
        return NULL;
    }
    return p;
}

int cg_pool_submit(cg_pool *p, const cg_pool_job *job) {
    int rc = -1;
    if (!job || !job->work)
        return -1;
    pthread_mutex_lock(&p->mu);
    if (!p->stopping && p->count < p->cap) {
        p->ring[(p->head + p->count) % p->cap] = *job;
        p->count++;
        pthread_cond_signal(&p->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t cg_pool_pending(cg_pool *p) {
    pthread_mutex_lock(&p->mu);
    size_t n = p->count + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void cg_pool_free(cg_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->ring);
    free(p);
}
