/* test_vindex: unit tests of src/vector/vector.c and vector_io.c.
 *
 * Owns: the cg_vindex contract: recall@1 of the HNSW path against exact
 * search on seeded random and clustered data (thresholds a broken graph
 * fails), exactness below the brute-force threshold, argument checks,
 * replace-on-add, the capacity bound, deletes (never returned, purge keeps
 * recall, re-add works, churn stays within the slot bound), save/load
 * giving identical results, corrupt / truncated / mutated files giving an
 * error and never a crash, float16 round trip, and concurrent searches
 * with a writer (run under ASan too).
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

#include "vector/vector.h"
#include "vector/vector_internal.h"

static uint64_t rs;
static uint64_t rnd(void) {
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double gauss(void) {
    double u = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static void unit(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    for (int i = 0; i < d; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

/* n random unit vectors (clusters == 0) or a Gaussian mixture. */
static float *make_data(int n, int d, int clusters, double spread, uint64_t seed) {
    rs = seed;
    float *v = malloc(sizeof(float) * (size_t)n * d);
    float *c = clusters ? malloc(sizeof(float) * (size_t)clusters * d) : NULL;
    assert_non_null(v);
    for (int j = 0; j < clusters; j++) {
        for (int i = 0; i < d; i++)
            c[j * d + i] = (float)gauss();
        unit(c + j * d, d);
    }
    for (int r = 0; r < n; r++) {
        float *x = v + (size_t)r * d;
        const float *ce = clusters ? c + (rnd() % clusters) * d : NULL;
        for (int i = 0; i < d; i++)
            x[i] = (float)(clusters ? ce[i] + spread / sqrt(d) * gauss() : gauss());
        unit(x, d);
    }
    free(c);
    return v;
}

static cg_vindex *build(const float *v, int n, int d, const cg_vindex_opts *o) {
    cg_vindex *ix = cg_vindex_new(d, o);
    assert_non_null(ix);
    for (int i = 0; i < n; i++)
        assert_int_equal(cg_vindex_add(ix, (uint64_t)i, v + (size_t)i * d), CG_VE_OK);
    return ix;
}

/* recall@1 of the graph against exact search over queries q. */
static double recall(cg_vindex *ix, const float *q, int nq, int d, int ef) {
    int ok = 0;
    for (int i = 0; i < nq; i++) {
        cg_vhit h[1], e[1];
        int a = cg_vindex_search_ef(ix, q + (size_t)i * d, 1, ef, h);
        int b = cg_vindex_search_exact(ix, q + (size_t)i * d, 1, e);
        assert_int_equal(b, 1);
        ok += a == 1 && (h[0].id == e[0].id || h[0].similarity >= e[0].similarity);
    }
    return (double)ok / nq;
}

static void test_basic(void **state) {
    (void)state;
    int d = 16;
    float *v = make_data(10, d, 0, 0, 1);
    cg_vindex *ix = cg_vindex_new(d, NULL);
    assert_non_null(ix);
    cg_vhit h[4];
    assert_int_equal(cg_vindex_search(ix, v, 1, h), 0); /* empty */
    for (int i = 0; i < 10; i++)
        assert_int_equal(cg_vindex_add(ix, 100 + (uint64_t)i, v + i * d), CG_VE_OK);
    assert_int_equal(cg_vindex_count(ix), 10);
    assert_true(cg_vindex_contains(ix, 105));
    assert_false(cg_vindex_contains(ix, 5));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cg_vindex_search(ix, v + i * d, 4, h), 4);
        assert_int_equal(h[0].id, 100 + (uint64_t)i);
        assert_true(fabsf(h[0].similarity - 1.0f) < 2e-3f);
        for (int j = 1; j < 4; j++)
            assert_true(h[j - 1].similarity >= h[j].similarity);
    }
    /* scale does not matter: cosine */
    float big[16];
    for (int i = 0; i < d; i++)
        big[i] = v[3 * d + i] * 1000.0f;
    assert_int_equal(cg_vindex_search(ix, big, 1, h), 1);
    assert_int_equal(h[0].id, 103);
    /* bad input */
    float bad[16] = {0};
    assert_int_equal(cg_vindex_add(ix, 1, bad), CG_VE_INVAL);
    assert_int_equal(cg_vindex_search(ix, bad, 1, h), CG_VE_INVAL);
    bad[3] = NAN;
    assert_int_equal(cg_vindex_add(ix, 1, bad), CG_VE_INVAL);
    bad[3] = INFINITY;
    assert_int_equal(cg_vindex_add(ix, 1, bad), CG_VE_INVAL);
    assert_int_equal(cg_vindex_search(ix, v, 0, h), CG_VE_INVAL);
    assert_int_equal(cg_vindex_count(ix), 10);
    assert_null(cg_vindex_new(0, NULL));
    cg_vindex_opts o = {.M = 1};
    assert_null(cg_vindex_new(8, &o));
    /* k larger than the index */
    cg_vhit many[20];
    assert_int_equal(cg_vindex_search(ix, v, 20, many), 10);
    cg_vindex_free(ix);
    free(v);
}

static void test_float16_roundtrip(void **state) {
    (void)state;
    float in[64], out[64];
    uint16_t h[64];
    rs = 9;
    for (int i = 0; i < 64; i++)
        in[i] = (float)(gauss() * (i < 32 ? 0.05 : 1e-6)); /* normal and subnormal halves */
    cg_v_f32_to_f16(in, h, 64);
    cg_v_f16_to_f32(h, out, 64);
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(out[i] - in[i]) <= fabsf(in[i]) * (1.0f / 1024) + 6e-8f);
    /* exact values survive */
    float ex[4] = {1.0f, -0.5f, 0.0f, 0.25f}, eo[4];
    uint16_t eh[4];
    cg_v_f32_to_f16(ex, eh, 4);
    cg_v_f16_to_f32(eh, eo, 4);
    assert_memory_equal(ex, eo, sizeof(ex));
    assert_int_equal(eh[0], 0x3c00);
    assert_int_equal(eh[1], 0xb800);
}

static void test_recall_random(void **state) {
    (void)state;
    int d = 32, n = 4000, nq = 300;
    float *v = make_data(n + nq, d, 0, 0, 42);
    cg_vindex_opts o = {.brute_threshold = 1, .ef_construction = 100};
    cg_vindex *ix = build(v, n, d, &o);
    double r = recall(ix, v + (size_t)n * d, nq, d, 64);
    print_message("recall@1 random d=%d n=%d ef=64: %.3f\n", d, n, r);
    assert_true(r >= 0.90);
    /* ef matters: a wider beam is not worse, a greedy walk (ef 1) is worse:
     * the graph is searched, not scanned */
    assert_true(recall(ix, v + (size_t)n * d, nq, d, 256) >= r - 0.01);
    double r1 = recall(ix, v + (size_t)n * d, nq, d, 1);
    print_message("recall@1 random ef=1: %.3f\n", r1);
    assert_true(r1 < r);
    cg_vindex_free(ix);
    free(v);
}

static void test_recall_clustered(void **state) {
    (void)state;
    int d = 64, n = 6000, nq = 300;
    float *v = make_data(n + nq, d, 60, 0.6, 7);
    cg_vindex_opts o = {.brute_threshold = 1, .ef_construction = 100};
    cg_vindex *ix = build(v, n, d, &o);
    double r = recall(ix, v + (size_t)n * d, nq, d, 64);
    print_message("recall@1 clustered d=%d n=%d ef=64: %.3f\n", d, n, r);
    assert_true(r >= 0.95);
    /* k = 10: sorted, unique, all live ids */
    cg_vhit h[10];
    assert_int_equal(cg_vindex_search(ix, v + (size_t)n * d, 10, h), 10);
    for (int i = 0; i < 10; i++) {
        assert_true(h[i].id < (uint64_t)n);
        for (int j = 0; j < i; j++)
            assert_true(h[j].id != h[i].id);
        if (i)
            assert_true(h[i - 1].similarity >= h[i].similarity);
    }
    cg_vindex_free(ix);
    free(v);
}

static void test_brute_exact(void **state) {
    (void)state;
    int d = 24, n = 500;
    float *v = make_data(n + 50, d, 0, 0, 3);
    cg_vindex_opts o = {.brute_threshold = 1000};
    cg_vindex *ix = build(v, n, d, &o);
    for (int i = 0; i < 50; i++) {
        cg_vhit h[5], e[5];
        assert_int_equal(cg_vindex_search_ef(ix, v + (size_t)(n + i) * d, 5, 5, h), 5);
        assert_int_equal(cg_vindex_search_exact(ix, v + (size_t)(n + i) * d, 5, e), 5);
        for (int j = 0; j < 5; j++)
            assert_int_equal(h[j].id, e[j].id);
    }
    cg_vindex_free(ix);
    free(v);
}

static void test_replace_and_full(void **state) {
    (void)state;
    int d = 8;
    float *v = make_data(120, d, 0, 0, 5);
    cg_vindex_opts o = {.max_elements = 100};
    cg_vindex *ix = build(v, 100, d, &o);
    assert_int_equal(cg_vindex_add(ix, 1000, v + 100 * d), CG_VE_FULL);
    /* replacing an existing id is not growth */
    assert_int_equal(cg_vindex_add(ix, 7, v + 101 * d), CG_VE_OK);
    assert_int_equal(cg_vindex_count(ix), 100);
    cg_vhit h[1];
    assert_int_equal(cg_vindex_search(ix, v + 101 * d, 1, h), 1);
    assert_int_equal(h[0].id, 7);
    assert_true(h[0].similarity > 0.999f);
    assert_int_equal(cg_vindex_search(ix, v + 7 * d, 1, h), 1);
    assert_true(h[0].id != 7 || h[0].similarity < 0.999f); /* old vector gone */
    assert_int_equal(cg_vindex_delete(ix, 3), CG_VE_OK);
    assert_int_equal(cg_vindex_add(ix, 1000, v + 100 * d), CG_VE_OK);
    assert_int_equal(cg_vindex_count(ix), 100);
    cg_vindex_free(ix);
    free(v);
}

static void test_delete(void **state) {
    (void)state;
    int d = 32, n = 3000;
    float *v = make_data(n, d, 30, 0.6, 11);
    /* slot allowance above 1/8 of n so the purge is ours to trigger */
    cg_vindex_opts o = {.brute_threshold = 1, .ef_construction = 100};
    cg_vindex *ix = build(v, n, d, &o);
    assert_int_equal(cg_vindex_delete(ix, 999999), CG_VE_NOTFOUND);
    int deleted = 0;
    for (int i = 0; i < n; i += 3) {
        assert_int_equal(cg_vindex_delete(ix, (uint64_t)i), CG_VE_OK);
        deleted++;
    }
    assert_int_equal(cg_vindex_delete(ix, 0), CG_VE_NOTFOUND);
    assert_int_equal(cg_vindex_count(ix), (size_t)(n - deleted));
    /* a deleted id is never returned, even for its own vector */
    for (int i = 0; i < n; i += 3) {
        cg_vhit h[10];
        int k = cg_vindex_search(ix, v + (size_t)i * d, 10, h);
        assert_int_equal(k, 10);
        for (int j = 0; j < k; j++)
            assert_true(h[j].id % 3 != 0);
        k = cg_vindex_search_exact(ix, v + (size_t)i * d, 10, h);
        for (int j = 0; j < k; j++)
            assert_true(h[j].id % 3 != 0);
        assert_false(cg_vindex_contains(ix, (uint64_t)i));
    }
    /* the purge (automatic: deletes passed 1/8) repaired the graph: the
     * survivors are still found */
    assert_int_equal(cg_vindex_purge(ix), CG_VE_OK);
    assert_int_equal(ix->ntomb, 0);
    int found = 0, tried = 0;
    for (int i = 1; i < n; i += 3, tried++) {
        cg_vhit h[1];
        assert_int_equal(cg_vindex_search(ix, v + (size_t)i * d, 1, h), 1);
        found += h[0].id == (uint64_t)i;
    }
    print_message("self-recall after deleting 1/3 and purging: %.3f\n", (double)found / tried);
    assert_true(found >= tried * 0.97);
    /* re-add works and reuses freed slots */
    uint32_t slots = ix->nslots;
    for (int i = 0; i < n; i += 3)
        assert_int_equal(cg_vindex_add(ix, (uint64_t)i, v + (size_t)i * d), CG_VE_OK);
    assert_int_equal(ix->nslots, slots);
    assert_int_equal(cg_vindex_count(ix), (size_t)n);
    found = 0;
    for (int i = 0; i < n; i += 3) {
        cg_vhit h[1];
        assert_int_equal(cg_vindex_search(ix, v + (size_t)i * d, 1, h), 1);
        found += h[0].id == (uint64_t)i;
    }
    assert_true(found >= (n / 3) * 0.97);
    cg_vindex_free(ix);
    free(v);
}

/* Delete the oldest and add new ones far past capacity: slots stay
 * bounded, recall stays up, every delete is honoured. */
static void test_churn(void **state) {
    (void)state;
    int d = 32, cap = 1000, total = 6000, nq = 200;
    float *v = make_data(total + nq, d, 40, 0.6, 21);
    cg_vindex_opts o = {
        .brute_threshold = 1, .ef_construction = 100, .max_elements = (uint32_t)cap};
    cg_vindex *ix = cg_vindex_new(d, &o);
    for (int i = 0; i < total; i++) {
        if (i >= cap)
            assert_int_equal(cg_vindex_delete(ix, (uint64_t)(i - cap)), CG_VE_OK);
        assert_int_equal(cg_vindex_add(ix, (uint64_t)i, v + (size_t)i * d), CG_VE_OK);
        assert_true(ix->nslots <= ix->slot_cap);
    }
    assert_int_equal(cg_vindex_count(ix), (size_t)cap);
    double r = recall(ix, v + (size_t)total * d, nq, d, 64);
    print_message("recall@1 after 5x churn: %.3f (slots %u of cap %u)\n", r, ix->nslots,
                  ix->slot_cap);
    assert_true(r >= 0.93);
    for (int i = 0; i < total - cap; i += 7) {
        cg_vhit h[5];
        int k = cg_vindex_search(ix, v + (size_t)i * d, 5, h);
        for (int j = 0; j < k; j++)
            assert_true(h[j].id >= (uint64_t)(total - cap));
    }
    cg_vindex_free(ix);
    free(v);
}

static char tmpdir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cg_vtest_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_save_load(void **state) {
    (void)state;
    int d = 48, n = 2500, nq = 200;
    float *v = make_data(n + nq, d, 25, 0.6, 33);
    cg_vindex_opts o = {.brute_threshold = 1, .ef_construction = 80, .ef_search = 40, .M = 12};
    cg_vindex *ix = build(v, n, d, &o);
    for (int i = 0; i < 100; i++) /* leave tombstones in the file */
        assert_int_equal(cg_vindex_delete(ix, (uint64_t)(i * 5)), CG_VE_OK);
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/ix.cgv", tmpdir);
    assert_int_equal(cg_vindex_save(ix, path, err, sizeof(err)), CG_VE_OK);
    cg_vindex *lx = NULL;
    assert_int_equal(cg_vindex_load(path, &lx, err, sizeof(err)), CG_VE_OK);
    assert_non_null(lx);
    cg_vindex_opts a, b;
    cg_vindex_get_opts(ix, &a);
    cg_vindex_get_opts(lx, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(cg_vindex_count(lx), cg_vindex_count(ix));
    for (int i = 0; i < nq; i++) {
        cg_vhit h1[5], h2[5];
        int k1 = cg_vindex_search(ix, v + (size_t)(n + i) * d, 5, h1);
        int k2 = cg_vindex_search(lx, v + (size_t)(n + i) * d, 5, h2);
        assert_int_equal(k1, 5);
        assert_int_equal(k1, k2);
        for (int j = 0; j < k1; j++) {
            assert_int_equal(h1[j].id, h2[j].id);
            assert_memory_equal(&h1[j].similarity, &h2[j].similarity, sizeof(float));
        }
    }
    /* the loaded index keeps working: same inserts, same answers */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(cg_vindex_add(ix, 90000 + (uint64_t)i, v + (size_t)(n + i) * d), 0);
        assert_int_equal(cg_vindex_add(lx, 90000 + (uint64_t)i, v + (size_t)(n + i) * d), 0);
    }
    for (int i = 0; i < nq; i++) {
        cg_vhit h1[3], h2[3];
        assert_int_equal(cg_vindex_search(ix, v + (size_t)i * d, 3, h1), 3);
        assert_int_equal(cg_vindex_search(lx, v + (size_t)i * d, 3, h2), 3);
        for (int j = 0; j < 3; j++)
            assert_int_equal(h1[j].id, h2[j].id);
    }
    /* no temp file left behind */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q tmp", tmpdir);
    assert_int_not_equal(system(cmd), 0);
    cg_vindex_free(ix);
    cg_vindex_free(lx);
    free(v);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static int try_load(const char *path, char *err, size_t errlen) {
    cg_vindex *lx = (cg_vindex *)(uintptr_t)1;
    err[0] = 0;
    int rc = cg_vindex_load(path, &lx, err, errlen);
    if (rc == CG_VE_OK) {
        /* whatever loaded must be searchable without crashing */
        float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        cg_vhit h[3];
        assert_true(cg_vindex_search(lx, q, 3, h) >= 0);
        cg_vindex_free(lx);
    } else {
        assert_null(lx);
        assert_true(strlen(err) > 0);
        assert_non_null(strstr(err, path));
    }
    return rc;
}

static void test_corrupt_files(void **state) {
    (void)state;
    int d = 8, n = 300;
    float *v = make_data(n, d, 0, 0, 77);
    cg_vindex_opts o = {.brute_threshold = 1, .M = 4, .ef_construction = 20};
    cg_vindex *ix = build(v, n, d, &o);
    for (int i = 0; i < 10; i++)
        cg_vindex_delete(ix, (uint64_t)i);
    char path[512], bad[512], err[512];
    snprintf(path, sizeof(path), "%s/good.cgv", tmpdir);
    snprintf(bad, sizeof(bad), "%s/bad.cgv", tmpdir);
    assert_int_equal(cg_vindex_save(ix, path, err, sizeof(err)), CG_VE_OK);
    size_t len;
    unsigned char *good = slurp(path, &len);
    unsigned char *b = malloc(len + 16);

    /* missing */
    snprintf(err, sizeof(err), "x");
    assert_int_equal(try_load("/nonexistent/dir/x.cgv", err, sizeof(err)), CG_VE_IO);
    /* truncated at many lengths */
    size_t cuts[] = {0, 1, 7, 8, 64, 127, 128, 129, 200, len / 2, len - 13, len - 12, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        spit(bad, good, cuts[i]);
        int rc = try_load(bad, err, sizeof(err));
        assert_int_equal(rc, CG_VE_TRUNCATED);
        assert_non_null(strstr(err, "truncated"));
    }
    /* trailing garbage */
    memcpy(b, good, len);
    memset(b + len, 0xab, 16);
    spit(bad, b, len + 16);
    assert_int_equal(try_load(bad, err, sizeof(err)), CG_VE_FORMAT);
    /* not an index */
    memcpy(b, good, len);
    memcpy(b, "GARBAGE!", 8);
    spit(bad, b, len);
    assert_int_equal(try_load(bad, err, sizeof(err)), CG_VE_FORMAT);
    /* another version (header checksum fixed so the version check speaks) */
    memcpy(b, good, len);
    b[8] = 2;
    uint32_t hc = cg_crc32c(0, b, 124);
    memcpy(b + 124, &hc, 4);
    spit(bad, b, len);
    assert_int_equal(try_load(bad, err, sizeof(err)), CG_VE_FORMAT);
    assert_non_null(strstr(err, "version 2"));
    /* every single-byte flip is caught (checksums) */
    for (size_t pos = 0; pos < len; pos += 7) {
        memcpy(b, good, len);
        b[pos] ^= 0x20;
        spit(bad, b, len);
        int rc = try_load(bad, err, sizeof(err));
        assert_true(rc == CG_VE_CHECKSUM || rc == CG_VE_FORMAT || rc == CG_VE_TRUNCATED);
    }
    /* structural checks behind a valid checksum: random body mutations with
     * the CRC recomputed must load cleanly or fail cleanly */
    rs = 1234;
    int ok = 0, rejected = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(b, good, len);
        int nmut = 1 + (int)(rnd() % 4);
        for (int m = 0; m < nmut; m++) {
            size_t pos = 128 + rnd() % (len - 128 - 12);
            b[pos] = (unsigned char)rnd();
        }
        uint32_t bc = cg_crc32c(0, b + 128, len - 128 - 12);
        memcpy(b + len - 12, &bc, 4);
        spit(bad, b, len);
        int rc = try_load(bad, err, sizeof(err));
        if (rc == CG_VE_OK)
            ok++;
        else
            rejected++;
    }
    print_message("mutated files: %d loaded (e.g. a changed vector), %d rejected\n", ok, rejected);
    assert_true(rejected > 0);
    /* a link pointing past the slots, checksum valid */
    memcpy(b, good, len);
    uint32_t n0;
    memcpy(&n0, b + 128 + 4 + 8, 4);
    if (b[128] != 0 && n0 > 0) {
        uint32_t badid = 0xfffffff0u;
        memcpy(b + 128 + 4 + 8 + 4, &badid, 4);
        uint32_t bc = cg_crc32c(0, b + 128, len - 128 - 12);
        memcpy(b + len - 12, &bc, 4);
        spit(bad, b, len);
        assert_int_equal(try_load(bad, err, sizeof(err)), CG_VE_FORMAT);
        assert_non_null(strstr(err, "slot"));
    }
    /* the good file still loads */
    assert_int_equal(try_load(path, err, sizeof(err)), CG_VE_OK);
    /* saving over an unwritable path fails cleanly */
    assert_int_equal(cg_vindex_save(ix, "/nonexistent/dir/x.cgv", err, sizeof(err)), CG_VE_IO);
    free(b);
    free(good);
    cg_vindex_free(ix);
    free(v);
}

/* ---- concurrency: searchers and one writer ---- */

typedef struct cctx {
    cg_vindex *ix;
    const float *v;
    int d, n0, n1;
    int stop;
    long searches;
    int bad;
} cctx;

static void *searcher(void *p) {
    cctx *c = p;
    uint64_t seed = (uint64_t)(uintptr_t)&seed;
    long n = 0;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) || n < 200) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int qi = (int)((seed >> 33) % (uint64_t)c->n1);
        cg_vhit h[8];
        int k = cg_vindex_search(c->ix, c->v + (size_t)qi * c->d, 8, h);
        if (k < 0 || k > 8)
            __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
        for (int j = 0; j < k; j++)
            if (h[j].id >= (uint64_t)c->n1 || h[j].similarity > 1.01f || h[j].similarity < -1.01f)
                __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
        n++;
    }
    __atomic_add_fetch(&c->searches, n, __ATOMIC_RELAXED);
    return NULL;
}

static void *writer(void *p) {
    cctx *c = p;
    for (int i = c->n0; i < c->n1; i++) {
        if (cg_vindex_add(c->ix, (uint64_t)i, c->v + (size_t)i * c->d) != CG_VE_OK)
            __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
        if (i % 4 == 0 && cg_vindex_delete(c->ix, (uint64_t)(i - c->n0)) != CG_VE_OK)
            __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    int d = 32, n0 = 1500, n1 = 4000;
    float *v = make_data(n1, d, 20, 0.6, 55);
    cg_vindex_opts o = {.brute_threshold = 256, .ef_construction = 60};
    cctx c = {.v = v, .d = d, .n0 = n0, .n1 = n1};
    c.ix = build(v, n0, d, &o);
    pthread_t th[5];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, searcher, &c), 0);
    assert_int_equal(pthread_create(&th[4], NULL, writer, &c), 0);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    assert_false(c.bad);
    int deleted = 0;
    for (int i = n0; i < n1; i += 4)
        deleted++;
    assert_int_equal(cg_vindex_count(c.ix), (size_t)(n1 - deleted));
    print_message("concurrent: %ld searches during %d inserts and %d deletes\n", c.searches,
                  n1 - n0, deleted);
    /* the result is a sound index: deleted ids gone, survivors found */
    int found = 0, tried = 0;
    for (int i = 0; i < n1; i++) {
        int gone = (i < n1 - n0) && ((i + n0) % 4 == 0);
        cg_vhit h[1];
        assert_int_equal(cg_vindex_search(c.ix, v + (size_t)i * d, 1, h), 1);
        if (gone) {
            assert_true(h[0].id != (uint64_t)i);
        } else {
            tried++;
            found += h[0].id == (uint64_t)i;
        }
    }
    assert_true(found >= tried * 0.97);
    cg_vindex_free(c.ix);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_float16_roundtrip),
        cmocka_unit_test(test_recall_random),
        cmocka_unit_test(test_recall_clustered),
        cmocka_unit_test(test_brute_exact),
        cmocka_unit_test(test_replace_and_full),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_churn),
        cmocka_unit_test_setup_teardown(test_save_load, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_files, setup_dir, teardown_dir),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
