/* test_pool: the off-loop thread pool (src/core/pool.c): every job's work
 * and done run exactly once, done goes through the submitter's post
 * function, a full queue refuses, and freeing drains what was queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/pool.h"

typedef struct counter {
    atomic_int started, work, done, posted;
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int open;
} counter;

static void work(void *arg) {
    counter *c = arg;
    atomic_fetch_add(&c->started, 1);
    pthread_mutex_lock(&c->gate_mu);
    while (!c->open)
        pthread_cond_wait(&c->gate_cv, &c->gate_mu);
    pthread_mutex_unlock(&c->gate_mu);
    atomic_fetch_add(&c->work, 1);
}

static void done(void *arg) {
    counter *c = arg;
    atomic_fetch_add(&c->done, 1);
}

static void post(void *target, void (*fn)(void *), void *arg) {
    counter *c = target;
    atomic_fetch_add(&c->posted, 1);
    fn(arg);
}

static void open_gate(counter *c) {
    pthread_mutex_lock(&c->gate_mu);
    c->open = 1;
    pthread_cond_broadcast(&c->gate_cv);
    pthread_mutex_unlock(&c->gate_mu);
}

static void test_runs_each_job_once_and_posts_done(void **s) {
    (void)s;
    counter c = {
        .gate_mu = PTHREAD_MUTEX_INITIALIZER, .gate_cv = PTHREAD_COND_INITIALIZER, .open = 1};
    cg_pool *p = cg_pool_new(2, 1024);
    assert_non_null(p);
    cg_pool_job j = {.work = work, .done = done, .arg = &c, .post = post, .target = &c};
    for (int i = 0; i < 500; i++)
        assert_int_equal(cg_pool_submit(p, &j), 0);
    cg_pool_free(p); /* drains */
    assert_int_equal(atomic_load(&c.work), 500);
    assert_int_equal(atomic_load(&c.done), 500);
    assert_int_equal(atomic_load(&c.posted), 500);
}

static void test_full_queue_refuses(void **s) {
    (void)s;
    counter c = {
        .gate_mu = PTHREAD_MUTEX_INITIALIZER, .gate_cv = PTHREAD_COND_INITIALIZER, .open = 0};
    cg_pool *p = cg_pool_new(1, 4);
    cg_pool_job j = {.work = work, .done = done, .arg = &c};
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20; i++) {
        if (cg_pool_submit(p, &j) == 0)
            accepted++;
        else
            refused++;
        if (i == 0)
            while (atomic_load(&c.started) != 1)
                usleep(1000); /* the thread holds job 0 (blocked at the gate) */
    }
    /* one running (blocked) + 4 queued */
    assert_int_equal(accepted, 5);
    assert_int_equal(refused, 15);
    assert_int_equal(cg_pool_pending(p), 5);
    open_gate(&c);
    cg_pool_free(p);
    assert_int_equal(atomic_load(&c.work), 5);
    assert_int_equal(atomic_load(&c.done), 5); /* no post: done on the pool thread */
}

static void test_bad_arguments(void **s) {
    (void)s;
    assert_null(cg_pool_new(0, 4));
    assert_null(cg_pool_new(1, 0));
    cg_pool *p = cg_pool_new(1, 1);
    cg_pool_job j = {0};
    assert_int_equal(cg_pool_submit(p, &j), -1);
    cg_pool_free(p);
    cg_pool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_each_job_once_and_posts_done),
        cmocka_unit_test(test_full_queue_refuses),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
