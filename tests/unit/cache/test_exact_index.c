/* test_exact_index: the exact cache's index against a reference model.
 *
 * Owns: after every operation of long random sequences (put, replace, get,
 * invalidate by key, expiry at lookup, LRU eviction past the byte bound),
 * the index answers exactly like a plain list of the live keys: every key
 * present is found with its own entry, every key absent is not; entry and
 * byte counts agree; the LRU order agrees. Keys are drawn from a pool where
 * many share their first 16 bytes (long hash chains, removal from the
 * middle of a chain) and from random SHA-like keys (growth of the table
 * well past its initial size). Also: cg_cache_key_hex (the entries' and
 * the ledger's hex of a key) is cg_hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/exact.h"
#include "cache/key.h"
#include "core/hash.h"

static long long g_now = 1000000;

static long long clock_fn(void *arg) {
    (void)arg;
    return g_now;
}

static uint64_t g_rng = 0x5851f42d4c957f2dull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

#define POOL 3000

typedef struct model_entry {
    uint8_t key[32];
    int live;
    long long expires;
    uint64_t lru; /* higher = more recent */
    size_t bytes;
} model_entry;

static model_entry g_m[POOL];
static uint64_t g_tick;

/* Key i of the pool: a third share their first 16 bytes (one hash), a
 * third share the hash's home bits only, the rest are random. */
static void pool_init(void) {
    for (int i = 0; i < POOL; i++) {
        uint8_t *k = g_m[i].key;
        for (int b = 0; b < 32; b++)
            k[b] = (uint8_t)rnd();
        if (i % 3 == 0)
            memset(k, 0xab, 16); /* same hash */
        else if (i % 3 == 1)
            memset(k, 0, 2); /* same low bits: same home in a small table */
        memcpy(k + 28, &i, sizeof i);
        g_m[i].live = 0;
    }
}

typedef struct visit_state {
    uint64_t prev_lru;
    size_t n;
    int ordered;
} visit_state;

static model_entry *find_model(const uint8_t key[32]) {
    for (int i = 0; i < POOL; i++)
        if (memcmp(g_m[i].key, key, 32) == 0)
            return &g_m[i];
    return NULL;
}

static void visit(void *arg, const cg_cache_entry *e) {
    visit_state *v = arg;
    model_entry *m = find_model(e->key);
    assert_non_null(m);
    assert_true(m->live);
    if (v->n && m->lru >= v->prev_lru)
        v->ordered = 0; /* the LRU list runs from the most recent */
    v->prev_lru = m->lru;
    v->n++;
}

static void check_all(cg_cache *c) {
    size_t live = 0, bytes = 0;
    for (int i = 0; i < POOL; i++) {
        int want = g_m[i].live && g_m[i].expires > g_now;
        assert_int_equal(cg_cache_contains(c, g_m[i].key), want);
        if (g_m[i].live) {
            live++;
            bytes += g_m[i].bytes;
        }
    }
    cg_cache_stats st;
    cg_cache_stats_get(c, &st);
    assert_int_equal(st.entries, live);
    assert_int_equal(st.bytes, bytes);
    visit_state v = {0, 0, 1};
    cg_cache_visit(c, visit, &v);
    assert_int_equal(v.n, live);
    assert_true(v.ordered);
}

/* The model's eviction: least recently used first. */
static void model_evict(size_t need, size_t max) {
    size_t bytes = 0;
    for (int i = 0; i < POOL; i++)
        bytes += g_m[i].live ? g_m[i].bytes : 0;
    while (bytes + need > max) {
        int lru = -1;
        for (int i = 0; i < POOL; i++)
            if (g_m[i].live && (lru < 0 || g_m[i].lru < g_m[lru].lru))
                lru = i;
        if (lru < 0)
            break;
        g_m[lru].live = 0;
        bytes -= g_m[lru].bytes;
    }
}

static void run(size_t max_bytes, int ops, int check_every) {
    static cg_cache_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_bytes = (int64_t)max_bytes;
    cfg.guard_max_bytes = (int64_t)max_bytes;
    char err[128];
    cg_cache *c = cg_cache_new(&cfg, clock_fn, NULL, err, sizeof err);
    assert_non_null(c);
    pool_init();
    for (int op = 0; op < ops; op++) {
        int i = (int)(rnd() % POOL);
        model_entry *m = &g_m[i];
        switch (rnd() % 8) {
        case 0:
        case 1:
        case 2: { /* put (or replace) */
            size_t body = 1 + rnd() % 64;
            cg_cache_entry *e = cg_cache_entry_new(m->key, "x", 1, NULL, 0, NULL);
            assert_non_null(e);
            e->bytes += body; /* varied sizes */
            e->expires_ms = g_now + 1 + (long long)(rnd() % 5000);
            size_t bytes = e->bytes;
            long long expires = e->expires_ms;
            m->live = 0; /* replaced */
            model_evict(bytes, max_bytes);
            assert_int_equal(cg_cache_put(c, e), 0);
            m->live = 1;
            m->bytes = bytes;
            m->expires = expires;
            m->lru = ++g_tick;
            break;
        }
        case 3:
        case 4:
        case 5: { /* get: a hit refreshes, an expired entry goes */
            cg_cache_entry *e = cg_cache_get(c, m->key);
            int want = m->live && m->expires > g_now;
            assert_int_equal(e != NULL, want);
            if (e) {
                assert_memory_equal(e->key, m->key, 32);
                cg_cache_entry_release(e);
                m->lru = ++g_tick;
            } else {
                m->live = 0;
            }
            break;
        }
        case 6: { /* invalidate by key */
            cg_cache_filter f = {.key = m->key};
            size_t removed = cg_cache_invalidate(c, &f, CG_INV_KEY, NULL);
            assert_int_equal(removed, (size_t)m->live);
            m->live = 0;
            break;
        }
        default:
            g_now += (long long)(rnd() % 50);
        }
        if (check_every && op % check_every == 0)
            check_all(c);
    }
    check_all(c);
    cg_cache_free(c);
}

static void test_small_bound_many_collisions(void **state) {
    (void)state;
    run(40 * 600, 20000, 97); /* ~40 entries: eviction all the time */
}

static void test_growth(void **state) {
    (void)state;
    run((size_t)1 << 30, 30000, 1009); /* up to the whole pool: the table grows */
}

static void test_key_hex(void **state) {
    (void)state;
    for (int n = 0; n < 2000; n++) {
        uint8_t k[32];
        char a[65], b[65];
        for (int i = 0; i < 32; i++)
            k[i] = (uint8_t)(n < 256 ? (n + i) & 0xff : rnd());
        cg_hex(k, 32, a);
        cg_cache_key_hex(k, b);
        assert_string_equal(a, b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_bound_many_collisions),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_key_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
