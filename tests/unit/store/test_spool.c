/* test_spool: store/spool's ring file. Records come back as put, in order,
 * across wrap-around; a full ring refuses (never overwrites an uncommitted
 * record); committing frees slots; a record whose trailer or length does not
 * match (a torn write) is not returned; a ring held by a live user is
 * reported busy; a ring of another layout opens only when it holds nothing
 * uncommitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/spool.h"

typedef struct rec {
    uint64_t n;
    char text[100];
} rec;

static char path[64];

static int setup(void **state) {
    (void)state;
    snprintf(path, sizeof path, "/tmp/cg_test_spool_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(path);
    return 0;
}

static void make(uint64_t n, rec *r) {
    memset(r, 0, sizeof *r);
    r->n = n;
    snprintf(r->text, sizeof r->text, "record %llu", (unsigned long long)n);
}

static void test_put_get_wrap(void **state) {
    (void)state;
    char err[256] = "";
    cg_spool *s = cg_spool_create(path, 8, sizeof(rec), 77, err, sizeof err);
    assert_non_null(s);
    rec r, *g;
    uint64_t next = 1, put = 0;
    for (int round = 0; round < 5; round++) {
        /* fill the ring: the ninth put is refused */
        while (put - cg_spool_committed(s) < 8) {
            make(++put, &r);
            assert_int_equal(cg_spool_put(s, &r), 0);
        }
        make(put + 1, &r);
        assert_int_equal(cg_spool_put(s, &r), -1);
        assert_int_equal(cg_spool_pending(s), 8);
        /* read three, commit them: three more fit */
        for (int k = 0; k < 3; k++, next++) {
            g = (rec *)cg_spool_get(s, next);
            assert_non_null(g);
            assert_int_equal(g->n, next);
            make(next, &r);
            assert_memory_equal(g, &r, sizeof r);
        }
        assert_null(cg_spool_get(s, put + 1)); /* not published */
        cg_spool_set_committed(s, next - 1);
        assert_int_equal(cg_spool_pending(s), 5);
    }
    assert_true(put > 8); /* wrapped */
    cg_spool_close(s, 1);
    assert_int_equal(access(path, F_OK), -1); /* removed */
}

static void test_torn_record(void **state) {
    (void)state;
    char err[256] = "";
    cg_spool *s = cg_spool_create(path, 4, sizeof(rec), 1, err, sizeof err);
    assert_non_null(s);
    rec r;
    make(1, &r);
    assert_int_equal(cg_spool_put(s, &r), 0);
    make(2, &r);
    assert_int_equal(cg_spool_put(s, &r), 0);
    assert_non_null(cg_spool_get(s, 2));
    /* record 2's trailer (last 8 bytes of its slot) lost, as a power loss
     * could leave it: a slot is 16 + record + 8 bytes rounded up to a power
     * of two, after the 4 KiB header */
    size_t slot = 64;
    while (slot < 16 + sizeof(rec) + 8)
        slot <<= 1;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint64_t zero = 0;
    assert_int_equal(pwrite(fd, &zero, 8, (off_t)(4096 + 2 * slot - 8)), 8);
    close(fd);
    assert_non_null(cg_spool_get(s, 1));
    assert_null(cg_spool_get(s, 2));
    cg_spool_close(s, 0);
}

/* Records shorter than rec_size keep their length; a longer one is refused
 * and takes no slot. */
static void test_put_len(void **state) {
    (void)state;
    char err[256] = "";
    cg_spool *s = cg_spool_create(path, 4, 100, 1, err, sizeof err);
    assert_non_null(s);
    char buf[101];
    for (int i = 0; i < 101; i++)
        buf[i] = (char)i;
    assert_int_equal(cg_spool_put_len(s, buf, 101), -1);
    assert_int_equal(cg_spool_put_len(s, buf, 0), 0);
    assert_int_equal(cg_spool_put_len(s, buf, 37), 0);
    assert_int_equal(cg_spool_put_len(s, buf, 100), 0);
    uint32_t n = 999;
    assert_non_null(cg_spool_get_len(s, 1, &n));
    assert_int_equal(n, 0);
    const char *g = cg_spool_get_len(s, 2, &n);
    assert_non_null(g);
    assert_int_equal(n, 37);
    assert_memory_equal(g, buf, 37);
    g = cg_spool_get_len(s, 3, &n);
    assert_int_equal(n, 100);
    assert_memory_equal(g, buf, 100);
    assert_null(cg_spool_get_len(s, 4, &n)); /* the refused record took no slot */
    cg_spool_close(s, 0);
}

static void test_busy_and_layout(void **state) {
    (void)state;
    char err[256] = "";
    int busy = 0;
    uint64_t stale = 0;
    cg_spool *s = cg_spool_create(path, 4, sizeof(rec), 5, err, sizeof err);
    assert_non_null(s);
    rec r;
    make(1, &r);
    assert_int_equal(cg_spool_put(s, &r), 0);
    /* held by a live user (its flock): busy, not taken */
    assert_null(cg_spool_open(path, sizeof(rec), 5, &busy, &stale, err, sizeof err));
    assert_int_equal(busy, 1);
    cg_spool_close(s, 0);
    /* released: opens, the record is there */
    s = cg_spool_open(path, sizeof(rec), 5, &busy, &stale, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(busy, 0);
    assert_int_equal(cg_spool_committed(s), 0);
    const rec *g = cg_spool_get(s, 1);
    assert_non_null(g);
    assert_int_equal(g->n, 1);
    cg_spool_close(s, 0);
    /* another layout with a record left: refused, counted, named */
    assert_null(cg_spool_open(path, sizeof(rec), 6, &busy, &stale, err, sizeof err));
    assert_int_equal(busy, 0);
    assert_int_equal(stale, 1);
    assert_non_null(strstr(err, "another row layout"));
    /* committed: another layout opens, with nothing to read */
    s = cg_spool_open(path, sizeof(rec), 5, &busy, &stale, err, sizeof err);
    assert_non_null(s);
    cg_spool_set_committed(s, 1);
    cg_spool_close(s, 0);
    s = cg_spool_open(path, sizeof(rec), 6, &busy, &stale, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(stale, 0);
    assert_null(cg_spool_get(s, 2));
    cg_spool_close(s, 0);
    /* not a spool file */
    int fd = open(path, O_RDWR | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    assert_null(cg_spool_open(path, sizeof(rec), 5, &busy, &stale, err, sizeof err));
    assert_non_null(strstr(err, "not a costgate spool file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_and_layout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
