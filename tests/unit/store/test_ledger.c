/* test_ledger: store/ledger's writer. Every column of every row reads back as
 * submitted even though the writer rebinds only the columns that changed since
 * the previous row (empty after non-empty, NULL similarity after a value, a
 * duplicate between two good rows, a run() between rows); `day` is the UTC day
 * of ts_ms as gmtime_r gave it; a duplicate (request_id, attempt) is refused
 * (ok = 0) and stored once; run() executes inside the writer's transaction.
 * Spooled rows: read back like queued ones; a process killed (SIGKILL) with
 * rows spooled and not committed leaves them to the next open, which moves
 * them into the ledger once, even when they had been committed and only the
 * ring did not know yet; a feedback-style run() queued after spooled rows
 * sees them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/ledger.h"

typedef struct fixture {
    char path[64];
} fixture;

typedef struct tally {
    int ok, bad, calls;
} tally;

static void done(void *arg, int ok) {
    tally *t = arg;
    t->calls++;
    if (ok)
        t->ok++;
    else
        t->bad++;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->path, sizeof f->path, "/tmp/cg_test_ledger_XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    unlink(f->path); /* the ledger creates it */
    *state = f;
    return 0;
}

/* Spool rings of the ledger at path still on disk. remove: delete them. */
static int count_rings(const char *path, int remove) {
    const char *base = strrchr(path, '/') + 1;
    char prefix[80], file[400];
    snprintf(prefix, sizeof prefix, "%s-spool-", base);
    DIR *d = opendir("/tmp");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
            snprintf(file, sizeof file, "/tmp/%s", e->d_name);
            if (remove)
                unlink(file);
        }
    closedir(d);
    return n;
}

static int teardown(void **state) {
    fixture *f = *state;
    char side[80];
    count_rings(f->path, 1);
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    free(f);
    return 0;
}

/* Row i of a sequence whose columns change in different rhythms: some every
 * row, some every other or third row, some toggle between "" / 0 and a value. */
static void make_row(int i, cg_ledger_row *r) {
    static const int64_t TS[] = {
        1740787199999LL, /* 2025-02-28 23:59:59.999 */
        1740787200000LL, /* 2025-03-01 00:00:00.000 */
        1740787200000LL,
        951782400000LL,  /* 2000-02-29 */
        4107542400000LL, /* 2100-03-01 */
        -1LL,            /* whole seconds: 1970-01-01 */
        -86400001LL,     /* 1969-12-31 */
        0LL,
        253402300799000LL, /* 9999-12-31 23:59:59 */
        1740873600000LL,
    };
    memset(r, 0, sizeof *r);
    snprintf(r->request_id, sizeof r->request_id, "req_%06d", i / 2);
    r->attempt = 1 + i % 2;
    r->ts_ms = TS[i % (int)(sizeof TS / sizeof TS[0])];
    snprintf(r->kind, sizeof r->kind, "%s", i % 3 ? "chat" : "messages");
    snprintf(r->api, sizeof r->api, "%s", i % 3 ? "openai" : "anthropic");
    snprintf(r->tenant, sizeof r->tenant, "%s", i % 4 == 1 ? "" : "acme");
    snprintf(r->user, sizeof r->user, "user-%d", i % 3);
    snprintf(r->segment, sizeof r->segment, "%s", i % 2 ? "seg" : "");
    snprintf(r->feature, sizeof r->feature, "%s", i % 5 == 0 ? "summarise" : "");
    snprintf(r->intent, sizeof r->intent, "%s", i % 2 ? "" : "qa");
    snprintf(r->key_name, sizeof r->key_name, "k%d", i % 2);
    snprintf(r->provider, sizeof r->provider, "%s", i % 3 ? "openai" : "anthropic");
    snprintf(r->model_requested, sizeof r->model_requested, "m-%d", i % 4);
    snprintf(r->model_served, sizeof r->model_served, "%s", i % 4 == 3 ? "" : "served");
    snprintf(r->tier, sizeof r->tier, "%s", i % 6 == 0 ? "small" : "");
    r->stream = i % 2;
    snprintf(r->status, sizeof r->status, "%s", i % 7 == 3 ? "upstream_error" : "ok");
    r->http_status = i % 7 == 3 ? 502 : 200;
    r->upstream_status = i % 7 == 3 ? 500 : 200;
    r->tok_input_predicted = i * 3;
    r->tok_input = i % 2 ? 16 : 0;
    r->tok_cached_read = i % 3;
    r->tok_cache_write_5m = i % 4 == 0 ? 7 : 0;
    r->tok_cache_write_1h = i % 5;
    r->tok_output = 9;
    r->tok_reasoning = i % 2 ? 0 : INT64_MAX;
    r->tok_embedding = i % 2 ? INT64_MIN : 0;
    r->web_searches = i % 3 == 2;
    r->cost_input = 2400 + i;
    r->cost_output = i % 2 ? 5400 : 0;
    r->cost_embedding = 11;
    r->cost_external_api = i % 3 ? 0 : 13;
    r->cost_storage_compute = i;
    r->cost_total = 7800 + 2 * i;
    r->baseline_cost = i % 2 ? 7800 : 9000;
    r->estimated = i % 3 == 1;
    r->unpriced = i % 5 == 4;
    snprintf(r->cache, sizeof r->cache, "%s", i % 4 == 2 ? "exact" : "miss");
    if (i % 4 == 2) {
        memset(r->cache_key, 'a' + i % 6, 64);
        snprintf(r->cache_src, sizeof r->cache_src, "req_src_%d", i);
    }
    r->has_similarity = i % 3 != 0;
    r->cache_similarity = i % 3 == 1 ? 0.875 : 0.5;
    if (i % 3 == 2)
        memset(r->cache_match, 'f', 64);
    r->latency_us = 885 + i;
    r->ttfb_us = 695;
    if (i % 4 == 3)
        memset(r->error, 'e', sizeof r->error - 1); /* the longest a column gets */
    snprintf(r->note, sizeof r->note, "%s", i % 5 == 1 ? "budget:warn" : "");
}

/* The day gmtime_r gives for ts_ms (what the writer stored before). */
static void gm_day(int64_t ts_ms, char out[32]) {
    time_t t = (time_t)(ts_ms / 1000);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    snprintf(out, 32, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static const char *col_text(sqlite3_stmt *s, int c) {
    const unsigned char *v = sqlite3_column_text(s, c);
    assert_non_null(v); /* NOT NULL columns: never NULL, "" at most */
    return (const char *)v;
}

/* Checks that the stored (request_id, attempt) row equals r. */
static void check_row(sqlite3 *db, const cg_ledger_row *r) {
    sqlite3_stmt *s = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(
            db,
            "SELECT ts_ms, day, kind, api, tenant, user, segment, feature, intent, key_name,"
            " provider, model_requested, model_served, tier, stream, status, http_status,"
            " upstream_status, tok_input_predicted, tok_input, tok_cached_read,"
            " tok_cache_write_5m, tok_cache_write_1h, tok_output, tok_reasoning,"
            " tok_embedding, web_searches, cost_input, cost_output, cost_embedding,"
            " cost_external_api, cost_storage_compute, cost_total, baseline_cost, estimated,"
            " unpriced, cache, cache_key, cache_src, cache_similarity, cache_match,"
            " latency_us, ttfb_us, error, note FROM ledger WHERE request_id = ? AND attempt = ?",
            -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_text(s, 1, r->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, r->attempt);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int c = 0;
    char day[32];
    gm_day(r->ts_ms, day);
#define T(f) assert_string_equal(col_text(s, c++), r->f)
#define I(f) assert_true(sqlite3_column_int64(s, c++) == (sqlite3_int64)r->f)
    I(ts_ms);
    assert_string_equal(col_text(s, c++), day);
    T(kind);
    T(api);
    T(tenant);
    T(user);
    T(segment);
    T(feature);
    T(intent);
    T(key_name);
    T(provider);
    T(model_requested);
    T(model_served);
    T(tier);
    I(stream);
    T(status);
    I(http_status);
    I(upstream_status);
    I(tok_input_predicted);
    I(tok_input);
    I(tok_cached_read);
    I(tok_cache_write_5m);
    I(tok_cache_write_1h);
    I(tok_output);
    I(tok_reasoning);
    I(tok_embedding);
    I(web_searches);
    I(cost_input);
    I(cost_output);
    I(cost_embedding);
    I(cost_external_api);
    I(cost_storage_compute);
    I(cost_total);
    I(baseline_cost);
    I(estimated);
    I(unpriced);
    T(cache);
    T(cache_key);
    T(cache_src);
    if (r->has_similarity) {
        assert_int_equal(sqlite3_column_type(s, c), SQLITE_FLOAT);
        assert_true(sqlite3_column_double(s, c) == r->cache_similarity);
    } else {
        assert_int_equal(sqlite3_column_type(s, c), SQLITE_NULL);
    }
    c++;
    T(cache_match);
    I(latency_us);
    I(ttfb_us);
    T(error);
    T(note);
#undef T
#undef I
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
}

static int64_t count_rows(const char *path, const char *where) {
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ledger WHERE %s", where);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static int run_insert_meta(sqlite3 *db, void *arg) {
    int *n = arg;
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta (k, v) VALUES ('test_run', '%d')", *n);
    /* inside the writer's transaction: autocommit is off */
    if (sqlite3_get_autocommit(db))
        return -1;
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

enum { N_ROWS = 60 };

/* Rows in batches of every size from 1 up, with duplicates and run() items
 * between them: all stored exactly as submitted. */
static void test_rows_read_back(void **state) {
    fixture *f = *state;
    char err[256] = "";
    cg_ledger *l = cg_ledger_open(f->path, &(cg_ledger_opts){.batch_max = 4}, err, sizeof err);
    assert_non_null(l);
    tally t = {0};
    tally dup = {0};
    tally ran = {0};
    int run_arg = 42;
    static cg_ledger_row rows[N_ROWS];
    int i = 0, batch = 1;
    while (i < N_ROWS) {
        for (int k = 0; k < batch && i < N_ROWS; k++, i++) {
            make_row(i, &rows[i]);
            assert_int_equal(cg_ledger_submit(l, &rows[i], done, &t), 0);
            if (i % 9 == 4) {
                /* a duplicate of an earlier row, with other values: refused */
                cg_ledger_row d;
                make_row(i + 1, &d);
                memcpy(d.request_id, rows[i / 2].request_id, sizeof d.request_id);
                d.attempt = rows[i / 2].attempt;
                assert_int_equal(cg_ledger_submit(l, &d, done, &dup), 0);
            }
            if (i % 11 == 5)
                assert_int_equal(cg_ledger_run(l, run_insert_meta, &run_arg, done, &ran), 0);
        }
        cg_ledger_flush(l);
        batch = batch % 5 + 1;
    }
    assert_int_equal(t.ok, N_ROWS);
    assert_int_equal(t.bad, 0);
    assert_true(dup.calls > 0);
    assert_int_equal(dup.ok, 0);
    assert_int_equal(dup.bad, dup.calls);
    assert_true(ran.calls > 0);
    assert_int_equal(ran.ok, ran.calls);
    uint64_t committed, commits, errors, queued;
    cg_ledger_stats(l, &committed, &commits, &errors, &queued);
    assert_int_equal(committed, (uint64_t)(N_ROWS + ran.calls));
    assert_int_equal(errors, (uint64_t)dup.calls);
    assert_int_equal(queued, 0);
    cg_ledger_close(l);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (i = 0; i < N_ROWS; i++)
        check_row(db, &rows[i]);
    sqlite3_close(db);
    assert_int_equal(count_rows(f->path, "1"), N_ROWS);
    assert_int_equal(count_rows(f->path, "day = '2025-03-01'"), 2 * N_ROWS / 10);
}

/* A row submitted twice in one batch and again after a reopen: one row, the
 * first, and the others reported ok = 0. */
static void test_duplicate_once(void **state) {
    fixture *f = *state;
    char err[256] = "";
    cg_ledger *l = cg_ledger_open(f->path, NULL, err, sizeof err);
    assert_non_null(l);
    tally t = {0};
    cg_ledger_row a, b;
    make_row(3, &a);
    make_row(8, &b);
    memcpy(b.request_id, a.request_id, sizeof b.request_id);
    b.attempt = a.attempt;
    assert_int_equal(cg_ledger_submit(l, &a, done, &t), 0);
    assert_int_equal(cg_ledger_submit(l, &b, done, &t), 0);
    cg_ledger_flush(l);
    assert_int_equal(t.ok, 1);
    assert_int_equal(t.bad, 1);
    cg_ledger_close(l);
    l = cg_ledger_open(f->path, NULL, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(cg_ledger_submit(l, &a, done, &t), 0);
    cg_ledger_close(l); /* flushes */
    assert_int_equal(t.ok, 1);
    assert_int_equal(t.bad, 2);
    assert_int_equal(count_rows(f->path, "1"), 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    check_row(db, &a);
    sqlite3_close(db);
}

/* Text columns longer than their buffer (no NUL) are cut at the buffer, not
 * read past it. */
static void test_unterminated_text(void **state) {
    fixture *f = *state;
    char err[256] = "";
    cg_ledger *l = cg_ledger_open(f->path, NULL, err, sizeof err);
    assert_non_null(l);
    tally t = {0};
    cg_ledger_row r;
    make_row(0, &r);
    memset(r.tenant, 'x', sizeof r.tenant); /* no terminator */
    assert_int_equal(cg_ledger_submit(l, &r, done, &t), 0);
    cg_ledger_close(l);
    assert_int_equal(t.ok, 1);
    char where[128];
    snprintf(where, sizeof where, "length(tenant) = %zu", sizeof r.tenant - 1);
    assert_int_equal(count_rows(f->path, where), 1);
}

/* Spooled rows read back exactly, and a run() queued after them sees them. */
static int run_count_rows(sqlite3 *db, void *arg) {
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *(int *)arg = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static void test_spooled_rows(void **state) {
    fixture *f = *state;
    char err[256] = "";
    cg_ledger_opts o = {.spool_rings = 2, .spool_slots = 64, .commit_delay_ms = 50};
    cg_ledger *l = cg_ledger_open(f->path, &o, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(count_rings(f->path, 0), 2);
    static cg_ledger_row rows[N_ROWS];
    for (int i = 0; i < N_ROWS; i++) {
        make_row(i, &rows[i]);
        assert_int_equal(cg_ledger_append(l, i % 2, &rows[i]), 0);
    }
    assert_int_equal(cg_ledger_append(l, 2, &rows[0]), -1); /* no such ring */
    int seen = -1;
    tally ran = {0};
    assert_int_equal(cg_ledger_run(l, run_count_rows, &seen, done, &ran), 0);
    cg_ledger_flush(l);
    assert_int_equal(ran.ok, 1);
    assert_int_equal(seen, N_ROWS); /* the spooled rows went in first */
    /* a whole 16-row statement of rows already there (a replay): none
     * written twice, each counted as an error */
    uint64_t c0, m0, e0, q0, c1, m1, e1, q1;
    cg_ledger_stats(l, &c0, &m0, &e0, &q0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(cg_ledger_append(l, 0, &rows[i]), 0);
    cg_ledger_flush(l);
    cg_ledger_stats(l, &c1, &m1, &e1, &q1);
    assert_int_equal(e1 - e0, 16);
    assert_int_equal(c1 - c0, 0);
    assert_int_equal(count_rows(f->path, "1"), N_ROWS);
    /* a full ring refuses; the caller then queues and waits */
    cg_ledger_opts tiny = {.spool_rings = 1, .spool_slots = 64, .commit_delay_ms = 1000};
    cg_ledger_close(l);
    assert_int_equal(count_rings(f->path, 0), 0); /* drained and removed */
    l = cg_ledger_open(f->path, &tiny, err, sizeof err);
    assert_non_null(l);
    /* the writer, kicked by a first row, waits a second for more: the ring
     * fills and refuses (until then the writer, just started, may also
     * have taken a first few rows at once) */
    int refused = 0, sent = 0;
    for (int i = 0; i < 5000 && refused < 10; i++, sent++) {
        cg_ledger_row r;
        make_row(1000 + i, &r);
        if (cg_ledger_append(l, 0, &r) != 0)
            refused++;
    }
    assert_int_equal(refused, 10);
    assert_int_equal(cg_ledger_spool_full(l), (uint64_t)refused);
    cg_ledger_close(l);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < N_ROWS; i++)
        check_row(db, &rows[i]);
    sqlite3_close(db);
    assert_int_equal(count_rows(f->path, "1"), N_ROWS + sent - refused);
}

/* The spool's compact record carries every field whole: rows with every
 * text field at its longest (and one unterminated, cut to its longest as a
 * queued row is) read back column by column. */
static void fill(char *f, size_t cap, int k, int terminate) {
    for (size_t i = 0; i < cap; i++)
        f[i] = (char)('a' + (int)((i * 7 + (size_t)k) % 26));
    if (terminate)
        f[cap - 1] = '\0';
}

static void test_spooled_longest_fields(void **state) {
    fixture *f = *state;
    char err[256] = "";
    cg_ledger_opts o = {.spool_rings = 1, .spool_slots = 64, .commit_delay_ms = 5};
    cg_ledger *l = cg_ledger_open(f->path, &o, err, sizeof err);
    assert_non_null(l);
    static cg_ledger_row rows[3];
    for (int i = 0; i < 3; i++) {
        cg_ledger_row *r = &rows[i];
        make_row(2 * i, r);
        int t = 1, k = i;
#define F(x) fill(r->x, sizeof r->x, k++, t)
        F(kind), F(api), F(tenant), F(user), F(segment), F(feature), F(intent), F(key_name);
        F(provider), F(model_requested), F(model_served), F(tier), F(status), F(cache);
        F(cache_src), F(error), F(note);
        t = i != 2; /* the last row's cache_key and cache_match are unterminated */
        F(cache_key), F(cache_match);
#undef F
        r->has_similarity = 1;
        r->cache_similarity = 0.9876543210123;
        r->latency_us = INT64_MAX;
        r->ttfb_us = INT64_MIN;
        assert_int_equal(cg_ledger_append(l, 0, r), 0);
    }
    /* then short rows, decoded into the slots the longest ones used (the
     * writer does not clear a slot: each text must end at its own length) */
    cg_ledger_flush(l);
    static cg_ledger_row short_rows[3];
    for (int i = 0; i < 3; i++) {
        make_row(100 + 2 * i, &short_rows[i]);
        assert_int_equal(cg_ledger_append(l, 0, &short_rows[i]), 0);
    }
    cg_ledger_close(l);
    for (int i = 0; i < 3; i++) { /* what a reader sees: texts cut to their field */
        rows[i].cache_key[sizeof rows[i].cache_key - 1] = '\0';
        rows[i].cache_match[sizeof rows[i].cache_match - 1] = '\0';
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < 3; i++) {
        check_row(db, &rows[i]);
        check_row(db, &short_rows[i]);
    }
    sqlite3_close(db);
    assert_int_equal(count_rows(f->path, "length(error) = 255 AND length(user) = 127"), 3);
}

/* A child spools n rows and dies by SIGKILL before its writer commits them
 * (commit delay 10 s). With recommit set, the rows are committed first and
 * the ring's committed mark is then rewound, as when the process dies
 * between the commit and the mark. */
static void crash_child(const char *path, int n, int recommit) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* a child stuck on a lock some parent thread held at fork: die, not hang */
        char err[256];
        cg_ledger_opts o = {.spool_rings = 1, .spool_slots = 256, .commit_delay_ms = 10000};
        cg_ledger *l = cg_ledger_open(path, &o, err, sizeof err);
        if (!l)
            _exit(2);
        for (int i = 0; i < n; i++) {
            cg_ledger_row r;
            make_row(i, &r);
            if (cg_ledger_append(l, 0, &r) != 0)
                _exit(3);
        }
        if (recommit) {
            cg_ledger_flush(l);
            char file[200];
            snprintf(file, sizeof file, "%s-spool-%ld-0", path, (long)getpid());
            int fd = open(file, O_RDWR);
            uint64_t zero = 0;
            if (fd < 0 || pwrite(fd, &zero, 8, 64) != 8)
                _exit(4);
            close(fd);
        }
        raise(SIGKILL);
        _exit(5);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_crash_recovery(void **state) {
    fixture *f = *state;
    char err[256] = "";
    crash_child(f->path, 40, 0);
    assert_int_equal(count_rings(f->path, 0), 1);
    assert_int_equal(count_rows(f->path, "1"), 0); /* nothing committed */
    cg_ledger *l = cg_ledger_open(f->path, NULL, err, sizeof err);
    assert_non_null(l);
    cg_ledger_close(l);
    assert_int_equal(count_rings(f->path, 0), 0);
    assert_int_equal(count_rows(f->path, "1"), 40);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < 40; i++) {
        cg_ledger_row r;
        make_row(i, &r);
        check_row(db, &r);
    }
    sqlite3_close(db);
    /* committed, the mark rewound: replayed, ignored, still one row each */
    unlink(f->path);
    char side[80];
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    crash_child(f->path, 30, 1);
    assert_int_equal(count_rows(f->path, "1"), 30);
    l = cg_ledger_open(f->path, NULL, err, sizeof err);
    assert_non_null(l);
    cg_ledger_close(l);
    assert_int_equal(count_rows(f->path, "1"), 30);
    assert_int_equal(count_rings(f->path, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rows_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unterminated_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spooled_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spooled_longest_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
