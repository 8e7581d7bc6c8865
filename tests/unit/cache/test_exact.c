/* test_exact: unit tests of src/cache/exact.c (the store) and
 * src/cache/coalesce.c (the in-flight table).
 *
 * Owns: put/get, replacement, the byte bound with least-recently-used
 * eviction (a lookup refreshes), expiry against an injected clock, entries
 * kept alive by a reader's reference after eviction, invalidation by key,
 * tag, tenant, share group, prompt version, writer and all (criteria
 * combine with AND; no criterion removes nothing), the counters; many
 * threads putting and getting at once (under ASan in the sanitizer build);
 * and coalescing: one leader per key, every waiter notified once with the
 * leader's outcome, a cancelled waiter never notified; the remove hook
 * (every way an entry leaves), contains/fetch that count nothing, and
 * semantic hits counted apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/coalesce.h"
#include "cache/exact.h"

static long long g_now = 1000000;

static long long clock_fn(void *arg) {
    (void)arg;
    return g_now;
}

static cg_cache *make(int64_t max_bytes) {
    static cg_cache_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_bytes = max_bytes;
    cfg.guard_max_bytes = max_bytes;
    char err[128];
    cg_cache *c = cg_cache_new(&cfg, clock_fn, NULL, err, sizeof err);
    assert_non_null(c);
    return c;
}

static void key_n(uint8_t k[32], int n) {
    memset(k, 0, 32);
    memcpy(k, &n, sizeof n);
    k[31] = (uint8_t)(n * 7);
}

/* Entry n with meta m (writer "req_<n>" when m names none). */
static cg_cache_entry *entry_m(int n, size_t body_len, cg_cache_entry_meta m, const char *tags_csv,
                               int64_t ttl_ms) {
    uint8_t k[32];
    key_n(k, n);
    char *body = malloc(body_len + 1);
    memset(body, 'a' + n % 26, body_len);
    body[body_len] = '\0';
    const char *tags[8];
    size_t nt = 0;
    char buf[256] = "";
    if (tags_csv) {
        snprintf(buf, sizeof buf, "%s", tags_csv);
        for (char *s = strtok(buf, ","); s && nt < 8; s = strtok(NULL, ","))
            tags[nt++] = s;
    }
    char writer[32];
    snprintf(writer, sizeof writer, "req_%d", n);
    if (!m.writer_id)
        m.writer_id = writer;
    cg_cache_entry *e = cg_cache_entry_new(k, body, body_len, tags, nt, &m);
    free(body);
    assert_non_null(e);
    e->created_ms = g_now;
    e->expires_ms = g_now + ttl_ms;
    return e;
}

static cg_cache_entry *entry(int n, size_t body_len, const char *tenant, const char *tags_csv,
                             int64_t ttl_ms) {
    return entry_m(n, body_len, (cg_cache_entry_meta){.tenant = tenant}, tags_csv, ttl_ms);
}

static int present(cg_cache *c, int n) {
    uint8_t k[32];
    key_n(k, n);
    cg_cache_entry *e = cg_cache_get(c, k);
    if (e)
        cg_cache_entry_release(e);
    return e != NULL;
}

static void test_put_get_replace(void **state) {
    (void)state;
    cg_cache *c = make(1 << 20);
    assert_false(present(c, 1));
    assert_int_equal(cg_cache_put(c, entry(1, 100, "t1", NULL, 60000)), 0);
    uint8_t k[32];
    key_n(k, 1);
    cg_cache_entry *e = cg_cache_get(c, k);
    assert_non_null(e);
    assert_int_equal(e->body_len, 100);
    assert_string_equal(e->writer_id, "req_1");
    cg_cache_entry_release(e);
    /* same key again: replaced */
    cg_cache_entry *e2 =
        entry_m(1, 50, (cg_cache_entry_meta){.tenant = "t1", .writer_id = "req_new"}, NULL, 60000);
    assert_int_equal(cg_cache_put(c, e2), 0);
    e = cg_cache_get(c, k);
    assert_string_equal(e->writer_id, "req_new");
    assert_int_equal(e->body_len, 50);
    cg_cache_entry_release(e);
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.stores, 2);
    assert_int_equal(s.replaced, 1);
    assert_int_equal(s.lookups, 3);
    cg_cache_free(c);
}

/* One allocation: the strings, tags and body are copies, cut to their caps;
 * `bytes` covers at least all of it, and the cache's total is the sum of
 * its entries' bytes. */
static void test_entry_layout(void **state) {
    (void)state;
    char long_tenant[200], long_model[300];
    memset(long_tenant, 'x', sizeof long_tenant - 1);
    long_tenant[sizeof long_tenant - 1] = '\0';
    memset(long_model, 'm', sizeof long_model - 1);
    long_model[sizeof long_model - 1] = '\0';
    char intent[] = "code";
    cg_cache_entry_meta m = {.tenant = long_tenant,
                             .model = long_model,
                             .intent = intent,
                             .prompt_version = "v7",
                             .writer_id = "req_abc"};
    const char *tags[] = {"doc-1", "doc-22"};
    uint8_t k[32];
    key_n(k, 9);
    cg_cache_entry *e = cg_cache_entry_new(k, "{\"a\":1}", 7, tags, 2, &m);
    assert_non_null(e);
    intent[0] = 'X'; /* copies, not references */
    assert_int_equal(strlen(e->tenant), CG_CACHE_TENANT_MAX);
    assert_int_equal(strlen(e->model), CG_CACHE_MODEL_MAX);
    assert_string_equal(e->intent, "code");
    assert_string_equal(e->share_group, "");
    assert_string_equal(e->prompt_version, "v7");
    assert_string_equal(e->writer_id, "req_abc");
    assert_int_equal(e->n_tags, 2);
    assert_string_equal(e->tags[0], "doc-1");
    assert_string_equal(e->tags[1], "doc-22");
    assert_int_equal(e->body_len, 7);
    assert_string_equal(e->body, "{\"a\":1}");
    size_t strings = CG_CACHE_TENANT_MAX + CG_CACHE_MODEL_MAX + 4 + 2 + 7 + 6 + 6 + 7;
    assert_true(e->bytes >= sizeof *e + 2 * sizeof(char *) + 8 + strings);
    /* every field lies inside the one block the entry starts */
    const char *lo = (const char *)e, *hi = lo + e->bytes;
    assert_true(e->body > lo && e->body < hi && e->tenant > lo && e->writer_id < hi);

    cg_cache_entry *none = cg_cache_entry_new(k, "x", 1, NULL, 0, NULL);
    assert_non_null(none);
    assert_string_equal(none->tenant, "");
    assert_string_equal(none->writer_id, "");
    assert_null(none->tags);

    cg_cache *c = make(1 << 20);
    size_t sum = e->bytes;
    assert_int_equal(cg_cache_put(c, e), 0);
    cg_cache_entry *o = entry(10, 3000, "t", "a,b,c", 60000);
    sum += o->bytes;
    assert_int_equal(cg_cache_put(c, o), 0);
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.bytes, sum);
    assert_int_equal(cg_cache_put(c, none), 0); /* replaces key 9 */
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 2);
    cg_cache_free(c);
}

static void test_lru_byte_bound(void **state) {
    (void)state;
    /* each entry counts its whole allocation (body, strings, the entry)
     * and its index slots: 6 bodies of 9 KiB fit under 64 KiB, the 7th
     * evicts the least recently used */
    cg_cache *c = make(64 << 10);
    for (int i = 1; i <= 6; i++)
        assert_int_equal(cg_cache_put(c, entry(i, 9 << 10, "t", NULL, 60000)), 0);
    for (int i = 1; i <= 6; i++)
        assert_true(present(c, i)); /* order of use now 1..6, 6 most recent */
    assert_true(present(c, 1));     /* 1 is now the most recent, 2 the least */
    assert_int_equal(cg_cache_put(c, entry(7, 9 << 10, "t", NULL, 60000)), 0);
    assert_false(present(c, 2));
    assert_true(present(c, 1));
    assert_true(present(c, 7));
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_true(s.bytes <= s.max_bytes);
    assert_int_equal(s.evictions, 1);
    /* an entry larger than the whole bound is refused, nothing evicted */
    assert_int_equal(cg_cache_put(c, entry(8, 70 << 10, "t", NULL, 60000)), -1);
    assert_true(present(c, 7));
    cg_cache_free(c);
}

static void test_expiry_with_clock(void **state) {
    (void)state;
    cg_cache *c = make(1 << 20);
    g_now = 5000000;
    assert_int_equal(cg_cache_put(c, entry(1, 10, "t", NULL, 1800 * 1000)), 0);
    g_now += 1800 * 1000 - 1;
    assert_true(present(c, 1));
    g_now += 1;
    assert_false(present(c, 1)); /* at expires_ms it is gone */
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.expirations, 1);
    assert_int_equal(s.entries, 0);
    cg_cache_free(c);
}

static void test_reference_outlives_eviction(void **state) {
    (void)state;
    cg_cache *c = make(64 << 10);
    assert_int_equal(cg_cache_put(c, entry(1, 30 << 10, "t", NULL, 60000)), 0);
    uint8_t k[32];
    key_n(k, 1);
    cg_cache_entry *e = cg_cache_get(c, k);
    assert_non_null(e);
    assert_int_equal(cg_cache_put(c, entry(2, 40 << 10, "t", NULL, 60000)), 0); /* evicts 1 */
    assert_false(present(c, 1));
    /* the reader's body is intact (ASan would flag a use after free) */
    for (size_t i = 0; i < e->body_len; i++)
        assert_int_equal(e->body[i], 'b');
    cg_cache_entry_release(e);
    cg_cache_free(c);
}

static void test_invalidate(void **state) {
    (void)state;
    cg_cache *c = make(1 << 20);
    cg_cache_put(c, entry(1, 10, "t1", "doc-1,doc-2", 60000));
    cg_cache_put(c, entry(2, 10, "t1", "doc-3", 60000));
    cg_cache_put(c, entry(3, 10, "t2", "doc-1", 60000));
    cg_cache_put(c, entry_m(4, 10,
                            (cg_cache_entry_meta){
                                .tenant = "t2", .prompt_version = "v1", .share_group = "docs"},
                            NULL, 60000));
    cg_cache_put(c, entry_m(5, 10, (cg_cache_entry_meta){.tenant = "t2", .prompt_version = "v2"},
                            NULL, 60000));

    cg_cache_filter none = {0};
    assert_int_equal(cg_cache_invalidate(c, &none, CG_INV_ALL, ""), 0);

    const char *t1[] = {"doc-1"};
    cg_cache_filter f = {.tags = t1, .n_tags = 1, .tenant = "t1"};
    assert_int_equal(cg_cache_invalidate(c, &f, CG_INV_TAG, "doc-1 of t1"), 1);
    assert_false(present(c, 1));
    assert_true(present(c, 3)); /* t2's doc-1 entry stays: AND */

    cg_cache_filter pv = {.tenant = "t2", .prompt_version = "v1"};
    assert_int_equal(cg_cache_invalidate(c, &pv, CG_INV_PROMPT_VERSION, ""), 1);
    assert_false(present(c, 4));
    assert_true(present(c, 5));

    uint8_t k[32];
    key_n(k, 5);
    cg_cache_filter wrong_writer = {.key = k, .writer_id = "req_other"};
    assert_int_equal(cg_cache_invalidate(c, &wrong_writer, CG_INV_FEEDBACK, ""), 0);
    cg_cache_filter writer = {.key = k, .writer_id = "req_5"};
    assert_int_equal(cg_cache_invalidate(c, &writer, CG_INV_FEEDBACK, ""), 1);
    assert_false(present(c, 5));

    cg_cache_filter tenant = {.tenant = "t2"};
    assert_int_equal(cg_cache_invalidate(c, &tenant, CG_INV_TENANT, ""), 1);
    assert_true(present(c, 2));
    cg_cache_filter all = {.all = 1};
    assert_int_equal(cg_cache_invalidate(c, &all, CG_INV_ALL, ""), 1);
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.invalidated[CG_INV_TAG], 1);
    assert_int_equal(s.invalidated[CG_INV_FEEDBACK], 1);
    assert_int_equal(s.invalidated[CG_INV_ALL], 1);
    cg_cache_free(c);
}

static void test_hit_counters(void **state) {
    (void)state;
    cg_cache *c = make(1 << 20);
    cg_cache_put(c, entry(1, 10, "t", NULL, 60000));
    uint8_t k[32];
    key_n(k, 1);
    cg_cache_entry *e = cg_cache_get(c, k);
    cg_cache_hit(c, e, 1500, 0);
    cg_cache_hit(c, e, 1500, 1);
    assert_int_equal(e->hits, 2);
    assert_int_equal(e->saved_nano, 3000);
    cg_cache_entry_release(e);
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.coalesced, 1);
    assert_int_equal(s.saved_nano, 3000);
    cg_cache_free(c);
}

typedef struct worker_arg {
    cg_cache *c;
    int id;
} worker_arg;

static void *hammer(void *arg) {
    worker_arg *w = arg;
    for (int i = 0; i < 2000; i++) {
        int n = (i * 31 + w->id * 7) % 300;
        if (i % 3 == 0)
            cg_cache_put(w->c, entry(n, 200 + (size_t)n, "t", "x", 60000));
        uint8_t k[32];
        key_n(k, n);
        cg_cache_entry *e = cg_cache_get(w->c, k);
        if (e) {
            assert_int_equal(e->body[0], 'a' + n % 26);
            cg_cache_hit(w->c, e, 1, 0);
            cg_cache_entry_release(e);
        }
        if (i % 500 == 0) {
            const char *t[] = {"x"};
            cg_cache_filter f = {.tags = t, .n_tags = 1};
            cg_cache_invalidate(w->c, &f, CG_INV_TAG, "");
        }
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    cg_cache *c = make(64 << 10); /* small: constant eviction */
    pthread_t th[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){c, i};
        pthread_create(&th[i], NULL, hammer, &a[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cg_cache_stats s;
    cg_cache_stats_get(c, &s);
    assert_true(s.bytes <= s.max_bytes);
    cg_cache_free(c);
}

/* --- coalescing ------------------------------------------------------------- */

typedef struct waiter_rec {
    cg_coalesce_waiter w;
    atomic_int notified;
    int ok;
} waiter_rec;

static void on_notify(cg_coalesce_waiter *w) {
    waiter_rec *r = w->arg;
    r->ok = w->ok;
    atomic_fetch_add(&r->notified, 1);
}

static void test_coalesce(void **state) {
    (void)state;
    cg_coalesce *co = cg_coalesce_new();
    uint8_t k1[32], k2[32];
    key_n(k1, 1);
    key_n(k2, 2);
    int err;
    waiter_rec w[4];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 4; i++) {
        w[i].w.notify = on_notify;
        w[i].w.arg = &w[i];
    }
    cg_coalesce_slot *lead = cg_coalesce_join(co, k1, &w[0].w, &err);
    assert_non_null(lead);
    assert_null(cg_coalesce_join(co, k1, &w[1].w, &err));
    assert_int_equal(err, 0);
    assert_null(cg_coalesce_join(co, k1, &w[2].w, &err));
    cg_coalesce_slot *lead2 = cg_coalesce_join(co, k2, &w[3].w, &err);
    assert_non_null(lead2); /* another key: its own leader */
    assert_int_equal(cg_coalesce_inflight(co), 2);
    /* waiter 2 gives up; 1 stays */
    assert_int_equal(cg_coalesce_cancel(co, &w[2].w), 1);
    cg_coalesce_done(co, lead, 1);
    assert_int_equal(w[1].notified, 1);
    assert_int_equal(w[1].ok, 1);
    assert_int_equal(w[2].notified, 0);
    /* a cancel after the leader took it: too late, the notify came */
    assert_int_equal(cg_coalesce_cancel(co, &w[1].w), 0);
    /* the key is free again: the next one leads */
    cg_coalesce_slot *again = cg_coalesce_join(co, k1, &w[1].w, &err);
    assert_non_null(again);
    assert_null(cg_coalesce_join(co, k2, &w[2].w, &err));
    cg_coalesce_done(co, lead2, 0);
    assert_int_equal(w[2].notified, 1);
    assert_int_equal(w[2].ok, 0);
    cg_coalesce_done(co, again, 1);
    assert_int_equal(cg_coalesce_inflight(co), 0);
    cg_coalesce_free(co);
}

/* The remove hook sees every entry that leaves: replacement, eviction,
 * expiry, invalidation; never a load or the final free. */
typedef struct removed_log {
    int n;
    int keys[64];
} removed_log;

static void on_remove(void *arg, const uint8_t key[32]) {
    removed_log *l = arg;
    int k;
    memcpy(&k, key, sizeof k);
    if (l->n < 64)
        l->keys[l->n++] = k;
}

static void test_remove_hook_and_contains(void **state) {
    (void)state;
    cg_cache *c = make(64 * 1024);
    removed_log log = {0};
    cg_cache_set_remove_hook(c, on_remove, &log);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cg_cache_put(c, entry(i, 100, "t1", i == 2 ? "doc" : NULL, 1000)), 0);
    uint8_t k[32];
    key_n(k, 1);
    assert_true(cg_cache_contains(c, k));
    cg_cache_stats st;
    cg_cache_stats_get(c, &st);
    assert_int_equal(st.lookups, 0); /* contains counts nothing */
    /* replacement */
    assert_int_equal(cg_cache_put(c, entry(1, 120, "t1", NULL, 1000)), 0);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.keys[0], 1);
    /* invalidation by tag */
    const char *tags[] = {"doc"};
    cg_cache_filter f = {.tags = tags, .n_tags = 1};
    assert_int_equal(cg_cache_invalidate(c, &f, CG_INV_TAG, "doc"), 1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.keys[1], 2);
    /* expiry: seen by contains at once, removed (and reported) at a fetch */
    g_now += 2000;
    key_n(k, 3);
    assert_false(cg_cache_contains(c, k));
    assert_null(cg_cache_fetch(c, k));
    assert_int_equal(log.n, 3);
    assert_int_equal(log.keys[2], 3);
    cg_cache_stats_get(c, &st);
    assert_int_equal(st.lookups, 0); /* fetch counts nothing either */
    /* eviction past the byte bound */
    log.n = 0;
    for (int i = 10; i < 200; i++)
        assert_int_equal(cg_cache_put(c, entry(i, 1000, "t1", NULL, 100000)), 0);
    assert_true(log.n > 0);
    /* a semantic hit counts apart from exact hits */
    key_n(k, 199);
    cg_cache_entry *e = cg_cache_fetch(c, k);
    assert_non_null(e);
    cg_cache_hit(c, e, 77, CG_CACHE_HIT_SEMANTIC);
    cg_cache_entry_release(e);
    cg_cache_stats_get(c, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.semantic_hits, 1);
    assert_int_equal(st.saved_nano, 77);
    int before = log.n;
    cg_cache_set_remove_hook(c, NULL, NULL);
    cg_cache_filter all = {.all = 1};
    cg_cache_invalidate(c, &all, CG_INV_ALL, "");
    assert_int_equal(log.n, before); /* unset: not called */
    cg_cache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_entry_layout),
        cmocka_unit_test(test_lru_byte_bound),
        cmocka_unit_test(test_expiry_with_clock),
        cmocka_unit_test(test_reference_outlives_eviction),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_hit_counters),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_remove_hook_and_contains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
