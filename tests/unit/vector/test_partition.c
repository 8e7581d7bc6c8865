/* test_partition: unit tests of src/vector/partition.c.
 *
 * Owns: the cg_vparts contract: isolation (identical vectors in two
 * partitions never cross), the per-partition capacity with LRU eviction
 * reported to the callback (touch refreshes), the bound on partitions
 * (whole least-recently-used partition evicted and reported), delete and
 * drop, save/load of a directory (same answers, same LRU order, a corrupt
 * partition file skipped with its ids reported lost, a corrupt manifest
 * refused, stale files removed), and exact id accounting under concurrent
 * adds, searches and evictions (run under ASan too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vector/partition.h"

#define D 16

static uint64_t rs;
static uint64_t rnd(void) {
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static void rvec(float *v) {
    for (int i = 0; i < D; i++)
        v[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 - 0.5);
}
static void key_of(uint8_t k[32], int n) {
    memset(k, 0, 32);
    k[0] = (uint8_t)n;
    k[31] = (uint8_t)(n * 7 + 1);
}

typedef struct evlog {
    pthread_mutex_t mu;
    uint64_t ids[4096];
    uint8_t keys[4096];
    int why[4096];
    int n;
    long total;
} evlog;

static void on_evict(void *ud, const uint8_t key[32], uint64_t id, cg_vevict_reason why) {
    evlog *e = ud;
    pthread_mutex_lock(&e->mu);
    if (e->n < 4096) {
        e->ids[e->n] = id;
        e->keys[e->n] = key[0];
        e->why[e->n] = why;
        e->n++;
    }
    e->total++;
    pthread_mutex_unlock(&e->mu);
}

static evlog *new_log(void) {
    evlog *e = calloc(1, sizeof(*e));
    pthread_mutex_init(&e->mu, NULL);
    return e;
}

static cg_vparts *new_set(evlog *e, uint32_t cap, uint32_t maxp) {
    cg_vparts_opts o = {
        .dim = D, .capacity = cap, .max_partitions = maxp, .on_evict = on_evict, .ud = e};
    o.index.brute_threshold = 8; /* exercise the graph even on small partitions */
    cg_vparts *p = cg_vparts_new(&o);
    assert_non_null(p);
    return p;
}

static void test_isolation(void **state) {
    (void)state;
    evlog *e = new_log();
    cg_vparts *p = new_set(e, 1000, 16);
    uint8_t ka[32], kb[32], kc[32];
    key_of(ka, 1);
    key_of(kb, 2);
    key_of(kc, 3);
    rs = 1;
    float v[200][D];
    for (int i = 0; i < 200; i++) {
        rvec(v[i]);
        /* the same vectors in both partitions, ids 1000+ in A, 2000+ in B */
        assert_int_equal(cg_vparts_add(p, ka, 1000 + (uint64_t)i, v[i]), CG_VE_OK);
        assert_int_equal(cg_vparts_add(p, kb, 2000 + (uint64_t)i, v[i]), CG_VE_OK);
    }
    assert_int_equal(cg_vparts_count(p), 2);
    assert_int_equal(cg_vparts_size(p, ka), 200);
    for (int i = 0; i < 200; i++) {
        cg_vhit h[20];
        int k = cg_vparts_search(p, ka, v[i], 20, h);
        assert_int_equal(k, 20);
        assert_int_equal(h[0].id, 1000 + (uint64_t)i);
        for (int j = 0; j < k; j++)
            assert_true(h[j].id >= 1000 && h[j].id < 1200);
        k = cg_vparts_search(p, kb, v[i], 20, h);
        assert_int_equal(k, 20);
        assert_int_equal(h[0].id, 2000 + (uint64_t)i);
        for (int j = 0; j < k; j++)
            assert_true(h[j].id >= 2000 && h[j].id < 2200);
        assert_int_equal(cg_vparts_search(p, kc, v[i], 20, h), 0); /* no partition, no hit */
    }
    assert_int_equal(cg_vparts_count(p), 2); /* a search creates nothing */
    /* the same id in two partitions is two entries */
    assert_int_equal(cg_vparts_add(p, kc, 1000, v[0]), CG_VE_OK);
    assert_int_equal(cg_vparts_delete(p, kc, 1000), CG_VE_OK);
    cg_vhit h[1];
    assert_int_equal(cg_vparts_search(p, ka, v[0], 1, h), 1);
    assert_int_equal(h[0].id, 1000);
    assert_int_equal(e->n, 0);
    cg_vparts_free(p);
    free(e);
}

static void test_capacity_lru(void **state) {
    (void)state;
    evlog *e = new_log();
    cg_vparts *p = new_set(e, 100, 16);
    uint8_t k[32];
    key_of(k, 9);
    rs = 2;
    float v[300][D];
    for (int i = 0; i < 300; i++)
        rvec(v[i]);
    for (int i = 0; i < 150; i++)
        assert_int_equal(cg_vparts_add(p, k, (uint64_t)i, v[i]), CG_VE_OK);
    assert_int_equal(cg_vparts_size(p, k), 100);
    assert_int_equal(e->n, 50);
    for (int i = 0; i < 50; i++) { /* oldest first */
        assert_int_equal(e->ids[i], (uint64_t)i);
        assert_int_equal(e->why[i], CG_VEVICT_CAPACITY);
        assert_int_equal(e->keys[i], 9);
    }
    for (int i = 0; i < 50; i++) {
        cg_vhit h[5];
        int n = cg_vparts_search(p, k, v[i], 5, h);
        for (int j = 0; j < n; j++)
            assert_true(h[j].id >= 50);
    }
    /* 50 is next in line; touching it makes 51 the victim */
    assert_int_equal(cg_vparts_touch(p, k, 50), CG_VE_OK);
    assert_int_equal(cg_vparts_touch(p, k, 3), CG_VE_NOTFOUND);
    assert_int_equal(cg_vparts_add(p, k, 150, v[150]), CG_VE_OK);
    assert_int_equal(e->n, 51);
    assert_int_equal(e->ids[50], 51);
    /* re-adding an existing id refreshes it and evicts nothing */
    assert_int_equal(cg_vparts_add(p, k, 52, v[52]), CG_VE_OK);
    assert_int_equal(e->n, 51);
    assert_int_equal(cg_vparts_add(p, k, 151, v[151]), CG_VE_OK);
    assert_int_equal(e->ids[51], 53);
    /* explicit delete is not reported */
    assert_int_equal(cg_vparts_delete(p, k, 100), CG_VE_OK);
    assert_int_equal(cg_vparts_delete(p, k, 100), CG_VE_NOTFOUND);
    assert_int_equal(e->n, 52);
    assert_int_equal(cg_vparts_size(p, k), 99);
    /* a bad vector evicts nothing */
    float z[D] = {0};
    assert_int_equal(cg_vparts_add(p, k, 999, z), CG_VE_INVAL);
    assert_int_equal(e->n, 52);
    /* long churn: size stays at capacity, every eviction reported once */
    for (int i = 152; i < 300; i++)
        assert_int_equal(cg_vparts_add(p, k, (uint64_t)i, v[i]), CG_VE_OK);
    assert_int_equal(cg_vparts_size(p, k), 100);
    assert_int_equal(e->n, 52 + 148 - 1);
    cg_vparts_free(p);
    free(e);
}

static void test_partition_bound(void **state) {
    (void)state;
    evlog *e = new_log();
    cg_vparts *p = new_set(e, 100, 3);
    uint8_t k[5][32];
    for (int i = 0; i < 5; i++)
        key_of(k[i], i + 1);
    rs = 3;
    float v[D];
    for (int pi = 0; pi < 3; pi++)
        for (int i = 0; i < 10; i++) {
            rvec(v);
            assert_int_equal(cg_vparts_add(p, k[pi], (uint64_t)(pi * 100 + i), v), CG_VE_OK);
        }
    assert_int_equal(cg_vparts_count(p), 3);
    /* use partition 1 (key 1 is now least recently used... unless searched) */
    cg_vhit h[1];
    assert_int_equal(cg_vparts_search(p, k[0], v, 1, h), 1);
    rvec(v);
    assert_int_equal(cg_vparts_add(p, k[3], 300, v), CG_VE_OK); /* evicts key 2 */
    assert_int_equal(cg_vparts_count(p), 3);
    assert_int_equal(e->n, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(e->why[i], CG_VEVICT_PARTITION);
        assert_int_equal(e->keys[i], 2);
        assert_int_equal(e->ids[i], 100 + (uint64_t)i); /* oldest first */
    }
    assert_int_equal(cg_vparts_size(p, k[1]), 0);
    assert_int_equal(cg_vparts_search(p, k[1], v, 1, h), 0);
    assert_int_equal(cg_vparts_size(p, k[0]), 10);
    /* drop reports too */
    assert_int_equal(cg_vparts_drop(p, k[2]), CG_VE_OK);
    assert_int_equal(cg_vparts_drop(p, k[2]), CG_VE_NOTFOUND);
    assert_int_equal(e->n, 20);
    assert_int_equal(e->why[10], CG_VEVICT_DROP);
    assert_int_equal(cg_vparts_count(p), 2);
    assert_true(cg_vparts_memory(p) > 0);
    cg_vparts_free(p);
    free(e);
}

static char tmpdir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cg_vparts_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_files(const char *suffix) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '%s$' > '%s/count.txt'", tmpdir, suffix, tmpdir);
    if (system(cmd) < 0)
        return -1;
    char path[600];
    snprintf(path, sizeof(path), "%s/count.txt", tmpdir);
    FILE *f = fopen(path, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        fclose(f);
    }
    unlink(path);
    return n;
}

static void test_save_load(void **state) {
    (void)state;
    evlog *e = new_log();
    cg_vparts *p = new_set(e, 50, 8);
    uint8_t k[4][32];
    rs = 4;
    float v[4][80][D];
    for (int pi = 0; pi < 4; pi++) {
        key_of(k[pi], pi + 1);
        for (int i = 0; i < 60; i++) { /* 10 evicted per partition */
            rvec(v[pi][i]);
            assert_int_equal(cg_vparts_add(p, k[pi], (uint64_t)(pi * 1000 + i), v[pi][i]), 0);
        }
        for (int i = 60; i < 80; i++)
            rvec(v[pi][i]);
    }
    assert_int_equal(cg_vparts_touch(p, k[0], 10), CG_VE_OK); /* 11 is now the oldest */
    char err[512];
    assert_int_equal(cg_vparts_save(p, tmpdir, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(count_files(".cgv"), 4);

    evlog *e2 = new_log();
    cg_vparts *q = new_set(e2, 50, 8);
    cg_vparts_load_stats st;
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(st.loaded, 4);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(cg_vparts_count(q), 4);
    for (int pi = 0; pi < 4; pi++) {
        assert_int_equal(cg_vparts_size(q, k[pi]), 50);
        for (int i = 0; i < 80; i++) {
            cg_vhit h1[3], h2[3];
            int n1 = cg_vparts_search(p, k[pi], v[pi][i], 3, h1);
            int n2 = cg_vparts_search(q, k[pi], v[pi][i], 3, h2);
            assert_int_equal(n1, n2);
            for (int j = 0; j < n1; j++)
                assert_int_equal(h1[j].id, h2[j].id);
        }
    }
    /* LRU order survived: the next add to partition 0 evicts 11 in both */
    int before = e->n;
    assert_int_equal(cg_vparts_add(p, k[0], 5000, v[0][70]), 0);
    assert_int_equal(cg_vparts_add(q, k[0], 5000, v[0][70]), 0);
    assert_int_equal(e->ids[before], 11);
    assert_int_equal(e2->ids[e2->n - 1], 11);
    /* loading into a non-empty set is refused */
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_INVAL);
    cg_vparts_free(q);

    /* a corrupt partition file: skipped, its ids reported lost */
    char path[600];
    snprintf(path, sizeof(path), "%s/02", tmpdir);
    for (int i = 1; i < 31; i++)
        strcat(path, "00");
    strcat(path, "0f.cgv"); /* key_of(2): k[0]=2, k[31]=15 */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 300, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    evlog *e3 = new_log();
    q = new_set(e3, 50, 8);
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(st.loaded, 3);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.lost, 50);
    assert_int_equal(e3->n, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(e3->why[i], CG_VEVICT_LOST);
        assert_int_equal(e3->keys[i], 2);
        assert_true(e3->ids[i] >= 1010 && e3->ids[i] < 1060);
    }
    assert_int_equal(cg_vparts_size(q, k[1]), 0);
    cg_vparts_free(q);

    /* fewer partitions allowed now: the least recently used go, reported */
    evlog *e4 = new_log();
    q = new_set(e4, 50, 2);
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(cg_vparts_count(q), 2);
    assert_true(st.lost >= 100);
    cg_vparts_free(q);

    /* a smaller capacity: the newest ids are kept, the rest reported */
    unlink(path);
    assert_int_equal(cg_vparts_save(p, tmpdir, err, sizeof(err)), CG_VE_OK);
    evlog *e5 = new_log();
    q = new_set(e5, 20, 8);
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(st.loaded, 4);
    assert_int_equal(cg_vparts_size(q, k[3]), 20);
    assert_int_equal(e5->n, 4 * 30);
    assert_int_equal(e5->why[0], CG_VEVICT_CAPACITY);
    cg_vhit h[1];
    assert_int_equal(cg_vparts_search(q, k[3], v[3][59], 1, h), 1);
    assert_int_equal(h[0].id, 3059);
    cg_vparts_free(q);

    /* a dropped partition's file is removed by the next save */
    assert_int_equal(cg_vparts_drop(p, k[2]), CG_VE_OK);
    assert_int_equal(cg_vparts_save(p, tmpdir, err, sizeof(err)), CG_VE_OK);
    assert_int_equal(count_files(".cgv"), 3);

    /* a corrupt or missing manifest is an error with a message */
    snprintf(path, sizeof(path), "%s/%s", tmpdir, CG_VPARTS_MANIFEST);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 30, SEEK_SET);
    fputc(0x77, f);
    fclose(f);
    q = new_set(e5, 20, 8);
    err[0] = 0;
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_CHECKSUM);
    assert_non_null(strstr(err, "checksum"));
    unlink(path);
    assert_int_equal(cg_vparts_load(q, tmpdir, &st, err, sizeof(err)), CG_VE_IO);
    cg_vparts_free(q);
    cg_vparts_free(p);
    free(e);
    free(e2);
    free(e3);
    free(e4);
    free(e5);
}

/* ---- concurrency: exact accounting of every id ---- */

typedef struct pctx {
    cg_vparts *p;
    evlog *e;
    int tid;
    int bad;
} pctx;

#define NKEYS 5
#define PER_THREAD 1500

static void *worker(void *arg) {
    pctx *c = arg;
    uint64_t s = 1000 + (uint64_t)c->tid;
    for (int i = 0; i < PER_THREAD; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint8_t k[32];
        /* four busy keys and a rare fifth: with 4 partitions allowed, the
         * fifth keeps evicting whole partitions while the others fill up */
        key_of(k, (s >> 33) % 16 == 0 ? 5 : 1 + (int)((s >> 37) % 4));
        float v[D];
        for (int j = 0; j < D; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[j] = (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
        }
        uint64_t id = ((uint64_t)c->tid << 32) | (uint64_t)i;
        if (cg_vparts_add(c->p, k, id, v) != CG_VE_OK)
            c->bad = 1;
        cg_vhit h[4];
        int n = cg_vparts_search(c->p, k, v, 4, h);
        if (n < 0)
            c->bad = 1;
        for (int j = 0; j < n; j++) /* ids carry their key in no way: check range */
            if ((h[j].id >> 32) > 3 || (h[j].id & 0xffffffff) >= PER_THREAD)
                c->bad = 1;
    }
    return NULL;
}

static long total_size(cg_vparts *p) {
    long n = 0;
    for (int i = 1; i <= NKEYS; i++) {
        uint8_t k[32];
        key_of(k, i);
        n += (long)cg_vparts_size(p, k);
    }
    return n;
}

static void test_concurrent(void **state) {
    (void)state;
    evlog *e = new_log();
    /* capacity and partition bound both bite */
    cg_vparts *p = new_set(e, 20, 4);
    pthread_t th[4];
    pctx c[4];
    for (int t = 0; t < 4; t++) {
        c[t] = (pctx){.p = p, .e = e, .tid = t};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &c[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_false(c[t].bad);
    }
    assert_true(cg_vparts_count(p) <= 4);
    /* every add is either still there or was reported exactly once */
    long live = total_size(p);
    int why[5] = {0};
    for (int i = 0; i < e->n; i++)
        why[e->why[i]]++;
    print_message("concurrent: %ld live + %ld evicted (first %d: %d capacity, %d partition) = %d "
                  "adds\n",
                  live, e->total, e->n, why[CG_VEVICT_CAPACITY], why[CG_VEVICT_PARTITION],
                  4 * PER_THREAD);
    assert_true(why[CG_VEVICT_CAPACITY] > 0 && why[CG_VEVICT_PARTITION] > 0);
    assert_int_equal(live + e->total, 4 * PER_THREAD);
    cg_vparts_free(p);
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_capacity_lru),
        cmocka_unit_test(test_partition_bound),
        cmocka_unit_test_setup_teardown(test_save_load, setup_dir, teardown_dir),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
