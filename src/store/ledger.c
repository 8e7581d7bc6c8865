/* ledger: SQLite cost ledger with one writer thread and group commit
 * (see ledger.h). */
#include "store/ledger.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "store/ledger_schema.h"
#include "store/spool.h"

typedef struct item {
    struct item *next;
    cg_ledger_row row;
    cg_ledger_done_fn fn;
    void *arg;
    cg_ledger_run_fn run; /* set: run(db, run_arg) instead of inserting row */
    void *run_arg;
    int ok; /* writer: this row's insert (or run) succeeded */
} item;

/* The text columns of a row in INSERT_SQL order (day excluded: it is derived). */
#define CG_LEDGER_TEXT_COLUMNS(X)                                                                  \
    X(1, request_id)                                                                               \
    X(5, kind)                                                                                     \
    X(6, api)                                                                                      \
    X(7, tenant)                                                                                   \
    X(8, user)                                                                                     \
    X(9, segment)                                                                                  \
    X(10, feature)                                                                                 \
    X(11, intent)                                                                                  \
    X(12, key_name)                                                                                \
    X(13, provider)                                                                                \
    X(14, model_requested)                                                                         \
    X(15, model_served)                                                                            \
    X(16, tier)                                                                                    \
    X(18, status)                                                                                  \
    X(39, cache)                                                                                   \
    X(40, cache_key)                                                                               \
    X(41, cache_src)                                                                               \
    X(43, cache_match)                                                                             \
    X(46, error)                                                                                   \
    X(47, note)

/* The integer columns of a row in INSERT_SQL order. */
#define CG_LEDGER_INT_COLUMNS(X)                                                                   \
    X(2, attempt)                                                                                  \
    X(3, ts_ms)                                                                                    \
    X(17, stream)                                                                                  \
    X(19, http_status)                                                                             \
    X(20, upstream_status)                                                                         \
    X(21, tok_input_predicted)                                                                     \
    X(22, tok_input)                                                                               \
    X(23, tok_cached_read)                                                                         \
    X(24, tok_cache_write_5m)                                                                      \
    X(25, tok_cache_write_1h)                                                                      \
    X(26, tok_output)                                                                              \
    X(27, tok_reasoning)                                                                           \
    X(28, tok_embedding)                                                                           \
    X(29, web_searches)                                                                            \
    X(30, cost_input)                                                                              \
    X(31, cost_output)                                                                             \
    X(32, cost_embedding)                                                                          \
    X(33, cost_external_api)                                                                       \
    X(34, cost_storage_compute)                                                                    \
    X(35, cost_total)                                                                              \
    X(36, baseline_cost)                                                                           \
    X(37, estimated)                                                                               \
    X(38, unpriced)                                                                                \
    X(44, latency_us)                                                                              \
    X(45, ttfb_us)

#define DAY_PARAM 4
#define SIMILARITY_PARAM 42
#define N_PARAMS 47 /* per row */
/* Spooled rows go in 16 at a time, one INSERT of 16 VALUES tuples: SQLite's
 * per-statement work (step, halt, reset) is then paid once per 16 rows. */
#define MULTI_ROWS 16
#define DAY_S INT64_C(86400)

enum {
#define X(idx, f) TXT_##f,
    CG_LEDGER_TEXT_COLUMNS(X)
#undef X
        N_TEXT
};

/* ---- spool record: a compact encoding of a row --------------------------
 *
 * A row is ~1.9 KB of fixed-size fields, mostly empty; spooled as it is, the
 * event loop wrote ~30 cache lines of a cold ring slot per request. The
 * record is the integer columns (8 bytes each, in CG_LEDGER_INT_COLUMNS
 * order), has_similarity and cache_similarity, then each text column (in
 * CG_LEDGER_TEXT_COLUMNS order) as a 2-byte length and its bytes: ~400
 * bytes for a typical row. */

#define TXT_MAX_(idx, f) +(sizeof(((cg_ledger_row *)0)->f) - 1 + 2)
#define INT_N_(idx, f) +1
enum {
    N_INT = 0 CG_LEDGER_INT_COLUMNS(INT_N_),
    REC_FIXED = 8 * N_INT + 4 + 8, /* the integers, has_similarity, cache_similarity */
    REC_MAX = REC_FIXED CG_LEDGER_TEXT_COLUMNS(TXT_MAX_),
};
#undef TXT_MAX_
#undef INT_N_

static size_t row_encode(const cg_ledger_row *r, unsigned char *out) {
    unsigned char *p = out;
#define X(idx, f)                                                                                  \
    {                                                                                              \
        int64_t v = (int64_t)r->f;                                                                 \
        memcpy(p, &v, 8);                                                                          \
        p += 8;                                                                                    \
    }
    CG_LEDGER_INT_COLUMNS(X)
#undef X
    int32_t hs = r->has_similarity;
    memcpy(p, &hs, 4);
    memcpy(p + 4, &r->cache_similarity, 8);
    p += 12;
#define X(idx, f)                                                                                  \
    {                                                                                              \
        uint16_t n = (uint16_t)strnlen(r->f, sizeof r->f - 1);                                     \
        memcpy(p, &n, 2);                                                                          \
        memcpy(p + 2, r->f, n);                                                                    \
        p += 2 + n;                                                                                \
    }
    CG_LEDGER_TEXT_COLUMNS(X)
#undef X
    return (size_t)(p - out);
}

/* The row of record p[0..n); -1 when the record is malformed (a text
 * longer than its field, or a length past the end). Every field is set
 * (each text NUL-terminated after its bytes), so r is not cleared first:
 * that was a 1.9 KB memset per row. On -1, r holds a part of the row. */
static int row_decode(const unsigned char *p, size_t n, cg_ledger_row *r) {
    const unsigned char *end = p + n;
    if (n < REC_FIXED)
        return -1;
#define X(idx, f)                                                                                  \
    {                                                                                              \
        int64_t v;                                                                                 \
        memcpy(&v, p, 8);                                                                          \
        r->f = (__typeof__(r->f))v;                                                                \
        p += 8;                                                                                    \
    }
    CG_LEDGER_INT_COLUMNS(X)
#undef X
    int32_t hs;
    memcpy(&hs, p, 4);
    r->has_similarity = hs;
    memcpy(&r->cache_similarity, p + 4, 8);
    p += 12;
#define X(idx, f)                                                                                  \
    {                                                                                              \
        uint16_t len;                                                                              \
        if (end - p < 2)                                                                           \
            return -1;                                                                             \
        memcpy(&len, p, 2);                                                                        \
        if (len > sizeof r->f - 1 || (size_t)(end - p - 2) < len)                                  \
            return -1;                                                                             \
        memcpy(r->f, p + 2, len);                                                                  \
        r->f[len] = '\0';                                                                          \
        p += 2 + len;                                                                              \
    }
    CG_LEDGER_TEXT_COLUMNS(X)
#undef X
    return p == end ? 0 : -1;
}

/* What the insert statement's parameters hold now. SQLite keeps bindings
 * across sqlite3_reset(), so a row only rebinds the columns that differ from
 * the previous row; text parameters are bound SQLITE_STATIC to the strings
 * here, which change only right before their parameter is rebound. */
typedef struct bound {
    int valid; /* 0: nothing bound yet, or a bind failed: bind every column */
    cg_ledger_row row;
    int text_len[N_TEXT];
    char day[32];                 /* YYYY-MM-DD of [day_from_s, day_to_s) */
    int64_t day_from_s, day_to_s; /* unix seconds */
} bound;

#define CG_SPOOL_MAX_RINGS 256
/* An idle writer looks at the rings this often even unkicked: the bound on
 * how long a row that raced the writer's sleep waits (cg_ledger_append). */
#define IDLE_RESCAN_MS 50

struct cg_ledger {
    sqlite3 *db;
    sqlite3_stmt *ins;             /* queued rows: a duplicate is an error the caller sees */
    sqlite3_stmt *ins_ign;         /* spooled rows: a duplicate is a replay, ignored */
    sqlite3_stmt *ins_multi;       /* the same, MULTI_ROWS rows a statement */
    bound *b_multi;                /* MULTI_ROWS: what each tuple's parameters hold */
    sqlite3_stmt *begin, *commit;  /* prepared once, not re-parsed per batch */
    bound b, b_ign;                /* writer thread only */
    cg_spool **rings;              /* one per producer (event-loop thread) */
    cg_ledger_row dec[MULTI_ROWS]; /* writer: spooled records decoded */
    uint64_t *ring_next;           /* writer: next record to read, per ring */
    int n_rings;
    int commit_delay_ms;
    _Atomic int sleeping;        /* the writer waits on cv and must be kicked */
    int kick;                    /* under mu: a spooled row arrived while it waited */
    int flushers;                /* under mu: threads in cg_ledger_flush (no commit delay) */
    _Atomic uint64_t spool_full; /* appends refused by a full ring */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* writer waits for work */
    pthread_cond_t idle_cv; /* flushers wait for the queue to drain */
    item *head, *tail;
    size_t queued;
    int in_flight; /* rows taken by the writer, not yet committed */
    int closing;
    int batch_max;
    uint64_t rows_committed, commits, errors;
};

static const char *INSERT_SQL =
    "INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, tenant, user, segment,"
    " feature, intent, key_name, provider, model_requested, model_served, tier, stream, status,"
    " http_status, upstream_status, tok_input_predicted, tok_input, tok_cached_read,"
    " tok_cache_write_5m,"
    " tok_cache_write_1h, tok_output, tok_reasoning, tok_embedding, web_searches, cost_input,"
    " cost_output, cost_embedding, cost_external_api, cost_storage_compute, cost_total,"
    " baseline_cost, estimated, unpriced, cache, cache_key, cache_src, cache_similarity,"
    " cache_match, latency_us, ttfb_us, error, note)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
    "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/* floor(a / b) for b > 0 */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Writes the UTC day (YYYY-MM-DD) of unix-epoch day number z into out, as
 * gmtime_r + "%04d-%02d-%02d" would (H. Hinnant's civil_from_days). Returns
 * its length. */
static int civil_day(int64_t z, char *out, size_t cap) {
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 0 || y > 9999) {
        int n = snprintf(out, cap, "%04lld-%02d-%02d", (long long)y, m, d);
        return n < 0 ? 0 : n >= (int)cap ? (int)cap - 1 : n;
    }
    int yy = (int)y;
    out[0] = (char)('0' + yy / 1000);
    out[1] = (char)('0' + yy / 100 % 10);
    out[2] = (char)('0' + yy / 10 % 10);
    out[3] = (char)('0' + yy % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
    return 10;
}

/* Binds r to s, rebinding only what differs from the previous row. Returns 0,
 * or -1 when a bind failed (everything is rebound for the next row). */
static int bind_row(sqlite3_stmt *s, bound *b, const cg_ledger_row *r, int base) {
    int all = !b->valid, rc = SQLITE_OK;
    b->valid = 0; /* until every bind below succeeded */
#define X(idx, f)                                                                                  \
    do {                                                                                           \
        int n = (int)strnlen(r->f, sizeof r->f - 1);                                               \
        if (all || n != b->text_len[TXT_##f] || memcmp(r->f, b->row.f, (size_t)n) != 0) {          \
            memcpy(b->row.f, r->f, (size_t)n);                                                     \
            b->row.f[n] = '\0';                                                                    \
            b->text_len[TXT_##f] = n;                                                              \
            rc |= sqlite3_bind_text(s, base + idx, b->row.f, n, SQLITE_STATIC);                    \
        }                                                                                          \
    } while (0);
    CG_LEDGER_TEXT_COLUMNS(X)
#undef X
#define X(idx, f)                                                                                  \
    if (all || r->f != b->row.f) {                                                                 \
        b->row.f = r->f;                                                                           \
        rc |= sqlite3_bind_int64(s, base + idx, (sqlite3_int64)r->f);                              \
    }
    CG_LEDGER_INT_COLUMNS(X)
#undef X
    /* the UTC day of ts_ms (of its whole seconds, as gmtime_r of ts_ms / 1000
     * gave), recomputed only when ts_ms leaves the day of the previous row */
    int64_t t = r->ts_ms / 1000;
    if (all || t < b->day_from_s || t >= b->day_to_s) {
        int64_t z = floor_div(t, DAY_S);
        int n = civil_day(z, b->day, sizeof b->day);
        b->day_from_s = z * DAY_S;
        b->day_to_s = b->day_from_s + DAY_S; /* |t| <= INT64_MAX / 1000: no overflow */
        rc |= sqlite3_bind_text(s, base + DAY_PARAM, b->day, n, SQLITE_STATIC);
    }
    int has_sim = r->has_similarity != 0;
    if (all || has_sim != b->row.has_similarity ||
        (has_sim && memcmp(&r->cache_similarity, &b->row.cache_similarity, sizeof(double)))) {
        b->row.has_similarity = has_sim;
        b->row.cache_similarity = r->cache_similarity;
        rc |= has_sim ? sqlite3_bind_double(s, base + SIMILARITY_PARAM, r->cache_similarity)
                      : sqlite3_bind_null(s, base + SIMILARITY_PARAM);
    }
    b->valid = rc == SQLITE_OK;
    return b->valid ? 0 : -1;
}

/* Binds and inserts one spooled row with INSERT OR IGNORE. Returns 1 when
 * it was inserted, 0 when it was already there (a replay) or failed. */
static int insert_spooled(cg_ledger *l, const cg_ledger_row *row) {
    int ok =
        bind_row(l->ins_ign, &l->b_ign, row, 0) == 0 && sqlite3_step(l->ins_ign) == SQLITE_DONE;
    sqlite3_reset(l->ins_ign);
    if (!ok) {
        CG_ERROR("ledger: insert %.47s/%d failed: %s", row->request_id, row->attempt,
                 sqlite3_errmsg(l->db));
        return 0;
    }
    if (sqlite3_changes(l->db) == 0) {
        CG_ERROR("ledger: row %.47s/%d is already in the ledger; not written twice",
                 row->request_id, row->attempt);
        return 0;
    }
    return 1;
}

/* Inserts MULTI_ROWS spooled rows with one statement; a statement that
 * fails (it changes nothing) is retried row by row, so one bad row costs
 * only itself. Adds the rows inserted to *good, the others to *bad. */
static void insert_group(cg_ledger *l, const cg_ledger_row *const *rows, uint64_t *good,
                         uint64_t *bad) {
    int ok = 1;
    for (int j = 0; ok && j < MULTI_ROWS; j++)
        ok = bind_row(l->ins_multi, &l->b_multi[j], rows[j], j * N_PARAMS) == 0;
    ok = ok && sqlite3_step(l->ins_multi) == SQLITE_DONE;
    sqlite3_reset(l->ins_multi);
    if (!ok) {
        for (int j = 0; j < MULTI_ROWS; j++)
            if (insert_spooled(l, rows[j]))
                (*good)++;
            else
                (*bad)++;
        return;
    }
    int n = sqlite3_changes(l->db);
    if (n < MULTI_ROWS)
        CG_ERROR("ledger: %d of %d rows from %.47s on were already in the ledger; not written "
                 "twice",
                 MULTI_ROWS - n, MULTI_ROWS, rows[0]->request_id);
    *good += (uint64_t)n;
    *bad += (uint64_t)(MULTI_ROWS - n);
}

/* Record seq of ring s, decoded into *row: 0, or -1 (logged) when it is
 * not there or is malformed, which a committed ring never holds. */
static int spooled_row(const cg_spool *s, uint64_t seq, cg_ledger_row *row) {
    uint32_t n = 0;
    const unsigned char *p = cg_spool_get_len(s, seq, &n);
    if (p && row_decode(p, n, row) == 0)
        return 0;
    CG_ERROR("ledger: spooled record %llu is unreadable (%u bytes); skipped",
             (unsigned long long)seq, (unsigned)n);
    return -1;
}

/* The last published record of each ring (from ring_next on) into upto;
 * returns how many records that is in all. Writer thread. */
static uint64_t scan_rings(cg_ledger *l, uint64_t *upto) {
    uint64_t n = 0;
    for (int k = 0; k < l->n_rings; k++) {
        uint64_t seq = l->ring_next[k];
        while (cg_spool_get(l->rings[k], seq))
            seq++;
        upto[k] = seq - 1;
        n += seq - l->ring_next[k];
    }
    return n;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void *writer_main(void *arg) {
    cg_ledger *l = arg;
    /* SCHED_BATCH: a submit does not preempt the event loop that made it.
     * The writer then runs when the loop waits for I/O (or on another
     * core), and takes everything queued by then in one commit. */
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) != 0)
        CG_DEBUG("ledger: SCHED_BATCH not available; the writer keeps the default policy");
    uint64_t upto[CG_SPOOL_MAX_RINGS];
    pthread_mutex_lock(&l->mu);
    for (;;) {
        /* take up to batch_max queued items */
        item *batch = NULL;
        int n = 0;
        if (l->head) {
            item *last = l->head;
            batch = l->head;
            n = 1;
            while (last->next && n < l->batch_max) {
                last = last->next;
                n++;
            }
            l->head = last->next;
            if (!l->head)
                l->tail = NULL;
            last->next = NULL;
            l->queued -= (size_t)n;
        }
        l->in_flight = n;
        pthread_mutex_unlock(&l->mu);

        /* every row spooled by now: after the queue was taken, so a queued
         * run (e.g. feedback on a request) sees the rows answered before it */
        uint64_t spooled = scan_rings(l, upto);
        if (!batch && spooled == 0) {
            pthread_mutex_lock(&l->mu);
            if (l->head)
                continue;
            if (l->closing)
                break;
            atomic_store(&l->sleeping, 1);
            atomic_thread_fence(memory_order_seq_cst);
            if (scan_rings(l, upto) > 0) { /* a row raced the flag: no wait */
                atomic_store(&l->sleeping, 0);
                continue;
            }
            while (!l->head && !l->kick && !l->closing) {
                struct timespec dl;
                clock_gettime(CLOCK_REALTIME, &dl);
                dl.tv_nsec += IDLE_RESCAN_MS * 1000000L;
                dl.tv_sec += dl.tv_nsec / 1000000000L;
                dl.tv_nsec %= 1000000000L;
                if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) != 0)
                    break; /* nothing for a while: look at the rings again */
            }
            int linger = l->kick && !l->head && !l->closing && !l->flushers;
            l->kick = 0;
            atomic_store(&l->sleeping, 0);
            if (linger && l->commit_delay_ms > 0) {
                /* a first row was spooled: give the loops commit_delay_ms to
                 * spool more, so one commit carries them all (a flush, a
                 * queued item or closing ends the wait) */
                struct timespec dl;
                clock_gettime(CLOCK_REALTIME, &dl);
                dl.tv_nsec += (long)(l->commit_delay_ms % 1000) * 1000000L;
                dl.tv_sec += l->commit_delay_ms / 1000 + dl.tv_nsec / 1000000000L;
                dl.tv_nsec %= 1000000000L;
                while (!l->head && !l->closing && !l->flushers)
                    if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) != 0)
                        break;
            }
            continue;
        }

        int txn_ok = sqlite3_step(l->begin) == SQLITE_DONE;
        sqlite3_reset(l->begin);
        uint64_t spool_good = 0, spool_bad = 0;
        const cg_ledger_row *grp[MULTI_ROWS];
        int ng = 0;
        for (int k = 0; txn_ok && k < l->n_rings; k++)
            for (uint64_t seq = l->ring_next[k]; seq <= upto[k]; seq++) {
                if (spooled_row(l->rings[k], seq, &l->dec[ng]) != 0) {
                    spool_bad++;
                    continue;
                }
                grp[ng] = &l->dec[ng];
                ng++;
                if (ng == MULTI_ROWS) {
                    insert_group(l, grp, &spool_good, &spool_bad);
                    ng = 0;
                }
            }
        for (int j = 0; j < ng; j++) /* the rest, one by one */
            if (insert_spooled(l, grp[j]))
                spool_good++;
            else
                spool_bad++;
        for (item *it = batch; it; it = it->next) {
            if (it->run) {
                it->ok = it->run(l->db, it->run_arg) == 0;
                continue;
            }
            int bound_ok = bind_row(l->ins, &l->b, &it->row, 0) == 0;
            it->ok = bound_ok && sqlite3_step(l->ins) == SQLITE_DONE;
            if (!it->ok)
                CG_ERROR("ledger: insert %.47s/%d failed: %s", it->row.request_id, it->row.attempt,
                         bound_ok ? sqlite3_errmsg(l->db) : "cannot bind the row");
            /* the bindings stay: the next row rebinds only what differs */
            sqlite3_reset(l->ins);
        }
        int commit_ok = txn_ok && sqlite3_step(l->commit) == SQLITE_DONE;
        sqlite3_reset(l->commit);
        if (!commit_ok) {
            CG_ERROR("ledger: commit failed: %s", sqlite3_errmsg(l->db));
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        } else {
            /* durable in the ledger: the rings may reuse those slots */
            for (int k = 0; k < l->n_rings; k++) {
                cg_spool_set_committed(l->rings[k], upto[k]);
                l->ring_next[k] = upto[k] + 1;
            }
        }
        uint64_t good = commit_ok ? spool_good : 0, bad = commit_ok ? spool_bad : 0;
        for (item *it = batch; it;) {
            item *next = it->next;
            int row_ok = commit_ok && it->ok;
            if (row_ok)
                good++;
            else
                bad++;
            if (it->fn)
                it->fn(it->arg, row_ok);
            free(it);
            it = next;
        }
        if (!commit_ok && spooled)
            sleep_ms(100); /* the spooled rows stay and are retried: not in a busy loop */
        pthread_mutex_lock(&l->mu);
        if (!commit_ok && l->closing)
            break; /* what is still spooled is recovered at the next start */
        l->rows_committed += good;
        l->errors += bad;
        l->commits++;
        l->in_flight = 0;
        if (!l->head)
            pthread_cond_broadcast(&l->idle_cv);
    }
    pthread_cond_broadcast(&l->idle_cv);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* A signature of cg_ledger_row's layout: a spool written by a build whose
 * rows are laid out otherwise is not read as rows of this one. */
static uint64_t row_layout_sig(void) {
    uint64_t h = UINT64_C(1469598103934665603);
#define MIX(v) h = (h ^ (uint64_t)(v)) * UINT64_C(1099511628211)
#define X(idx, f)                                                                                  \
    MIX(idx);                                                                                      \
    MIX(offsetof(cg_ledger_row, f));                                                               \
    MIX(sizeof(((cg_ledger_row *)0)->f));
    CG_LEDGER_TEXT_COLUMNS(X)
    CG_LEDGER_INT_COLUMNS(X)
#undef X
    MIX(offsetof(cg_ledger_row, has_similarity));
    MIX(offsetof(cg_ledger_row, cache_similarity));
    MIX(sizeof(cg_ledger_row));
    MIX(CG_LEDGER_SCHEMA_VERSION);
    MIX(REC_MAX);
    MIX(2); /* records: row_encode's compact encoding (1: the row struct as is) */
#undef MIX
    return h;
}

/* Moves the rows of one ring left by a process that is gone into the ledger
 * (INSERT OR IGNORE: a row that was committed just before the crash is not
 * written twice), then removes the ring. */
static int recover_ring(cg_ledger *l, const char *path, char *err, size_t errlen) {
    int busy = 0;
    uint64_t stale = 0, moved = 0, dup = 0;
    cg_spool *s = cg_spool_open(path, REC_MAX, row_layout_sig(), &busy, &stale, err, errlen);
    if (!s) {
        if (busy) {
            CG_INFO("ledger: spool %s belongs to a running gateway; left alone", path);
            return 0;
        }
        return -1;
    }
    uint64_t seq = cg_spool_committed(s) + 1;
    while (cg_spool_get(s, seq)) {
        if (sqlite3_step(l->begin) != SQLITE_DONE) {
            sqlite3_reset(l->begin);
            snprintf(err, errlen, "cannot recover spool %s: %s", path, sqlite3_errmsg(l->db));
            cg_spool_close(s, 0);
            return -1;
        }
        sqlite3_reset(l->begin);
        uint64_t first = seq;
        for (; seq - first < (uint64_t)l->batch_max && cg_spool_get(s, seq); seq++) {
            if (spooled_row(s, seq, &l->dec[0]) == 0 && insert_spooled(l, &l->dec[0]))
                moved++;
            else
                dup++;
        }
        int ok = sqlite3_step(l->commit) == SQLITE_DONE;
        sqlite3_reset(l->commit);
        if (!ok) {
            snprintf(err, errlen, "cannot recover spool %s: %s", path, sqlite3_errmsg(l->db));
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
            cg_spool_close(s, 0);
            return -1;
        }
        cg_spool_set_committed(s, seq - 1);
    }
    if (moved || dup)
        CG_WARN("ledger: recovered %llu rows from %s (%llu already in the ledger or unreadable)",
                (unsigned long long)moved, path, (unsigned long long)dup);
    cg_spool_close(s, 1);
    return 0;
}

/* Recovers every ring of this ledger ("<path>-spool-*") that no running
 * process holds. */
static int recover_rings(cg_ledger *l, const char *path, char *err, size_t errlen) {
    char dir[1024], prefix[1100], file[2200];
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (!dir[0])
            snprintf(dir, sizeof dir, "/");
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    snprintf(prefix, sizeof prefix, "%s-spool-", slash ? slash + 1 : path);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
        rc = recover_ring(l, file, err, errlen);
    }
    closedir(d);
    return rc;
}

/* One ring per producer, named after this process. */
static int create_rings(cg_ledger *l, const char *path, const cg_ledger_opts *o, char *err,
                        size_t errlen) {
    int n = o->spool_rings;
    if (n <= 0)
        return 0;
    if (n > CG_SPOOL_MAX_RINGS)
        n = CG_SPOOL_MAX_RINGS;
    l->rings = calloc((size_t)n, sizeof *l->rings);
    l->ring_next = calloc((size_t)n, sizeof *l->ring_next);
    if (!l->rings || !l->ring_next) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++) {
        char file[1200];
        snprintf(file, sizeof file, "%s-spool-%ld-%d", path, (long)getpid(), k);
        l->rings[k] = cg_spool_create(file, o->spool_slots ? o->spool_slots : 4096, REC_MAX,
                                      row_layout_sig(), err, errlen);
        if (!l->rings[k]) {
            size_t n = strlen(err);
            snprintf(err + n, errlen > n ? errlen - n : 0,
                     " (ledger.spool: false runs without spool rings)");
            return -1;
        }
        l->ring_next[k] = 1;
        l->n_rings = k + 1;
    }
    return 0;
}

static void close_rings(cg_ledger *l) {
    for (int k = 0; k < l->n_rings; k++)
        cg_spool_close(l->rings[k], cg_spool_pending(l->rings[k]) == 0);
    free(l->rings);
    free(l->ring_next);
    l->rings = NULL;
    l->ring_next = NULL;
    l->n_rings = 0;
}

cg_ledger *cg_ledger_open(const char *path, const cg_ledger_opts *opts, char *err, size_t errlen) {
    static const cg_ledger_opts defaults = {0};
    const cg_ledger_opts *o = opts ? opts : &defaults;
    cg_ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->batch_max = o->batch_max > 0 ? o->batch_max : 256;
    l->commit_delay_ms = o->commit_delay_ms > 0 ? o->commit_delay_ms : 0;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_cond_init(&l->idle_cv, NULL);
    char *emsg = NULL;
    if (sqlite3_open_v2(path, &l->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger %s: %s", path,
                 l->db ? sqlite3_errmsg(l->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(l->db, 5000);
    if (sqlite3_exec(l->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA "
                     "wal_autocheckpoint=4000;" CG_LEDGER_SCHEMA_SQL,
                     NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot initialise ledger %s: %s", path, emsg ? emsg : "?");
        goto fail;
    }
    /* ledgers made before a column existed get it added (v2: tok_input_predicted;
     * v3: cache_key, cache_src; v4: cache_similarity, cache_match; the new
     * tables of v3 and v4 come from the schema above) */
    static const char *const upgrades[][2] = {
        {"tok_input_predicted", "tok_input_predicted INTEGER NOT NULL DEFAULT 0"},
        {"cache_key", "cache_key TEXT NOT NULL DEFAULT ''"},
        {"cache_src", "cache_src TEXT NOT NULL DEFAULT ''"},
        {"cache_similarity", "cache_similarity REAL"},
        {"cache_match", "cache_match TEXT NOT NULL DEFAULT ''"},
    };
    for (size_t u = 0; u < sizeof upgrades / sizeof upgrades[0]; u++) {
        char sql[160];
        sqlite3_stmt *probe = NULL;
        snprintf(sql, sizeof sql, "SELECT %s FROM ledger LIMIT 0", upgrades[u][0]);
        int have = sqlite3_prepare_v2(l->db, sql, -1, &probe, NULL) == SQLITE_OK;
        sqlite3_finalize(probe);
        if (have)
            continue;
        snprintf(sql, sizeof sql, "ALTER TABLE ledger ADD COLUMN %s", upgrades[u][1]);
        if (sqlite3_exec(l->db, sql, NULL, NULL, &emsg) != SQLITE_OK) {
            snprintf(err, errlen, "cannot upgrade ledger %s: %s", path, emsg ? emsg : "?");
            goto fail;
        }
    }
    /* v5: the day index went (its upkeep was a quarter of a row's insert) */
    if (sqlite3_exec(l->db, "DROP INDEX IF EXISTS ledger_day", NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot upgrade ledger %s: %s", path, emsg ? emsg : "?");
        goto fail;
    }
    char ver[96];
    snprintf(ver, sizeof ver, "INSERT OR REPLACE INTO meta (k, v) VALUES ('schema_version', '%d')",
             CG_LEDGER_SCHEMA_VERSION);
    if (sqlite3_exec(l->db, ver, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot upgrade ledger %s: %s", path, emsg ? emsg : "?");
        goto fail;
    }
    char ign[2048]; /* "INSERT OR IGNORE INTO ledger ..." */
    snprintf(ign, sizeof ign, "INSERT OR IGNORE%s", INSERT_SQL + strlen("INSERT"));
    /* the same with MULTI_ROWS tuples of parameters */
    char multi[2048 + MULTI_ROWS * (2 * N_PARAMS + 4)];
    const char *tuple = strstr(ign, " VALUES (");
    int mlen = snprintf(multi, sizeof multi, "%.*s VALUES ", (int)(tuple - ign), ign);
    for (int j = 0; j < MULTI_ROWS; j++) {
        multi[mlen++] = j ? ',' : ' ';
        multi[mlen++] = '(';
        for (int k = 0; k < N_PARAMS; k++) {
            multi[mlen++] = '?';
            multi[mlen++] = k + 1 < N_PARAMS ? ',' : ')';
        }
    }
    multi[mlen] = '\0';
    l->b_multi = calloc(MULTI_ROWS, sizeof *l->b_multi);
    if (!l->b_multi) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (sqlite3_prepare_v2(l->db, "BEGIN IMMEDIATE", -1, &l->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "COMMIT", -1, &l->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, INSERT_SQL, -1, &l->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, ign, -1, &l->ins_ign, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, multi, -1, &l->ins_multi, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot prepare ledger insert: %s", sqlite3_errmsg(l->db));
        goto fail;
    }
    if (sqlite3_bind_parameter_count(l->ins_ign) != N_PARAMS ||
        sqlite3_bind_parameter_count(l->ins_multi) != N_PARAMS * MULTI_ROWS) {
        snprintf(err, errlen, "ledger insert: parameter count mismatch (a build defect)");
        goto fail;
    }
    /* rows answered before a crash that never reached the ledger */
    if (recover_rings(l, path, err, errlen) != 0 || create_rings(l, path, o, err, errlen) != 0)
        goto fail;
    if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
        snprintf(err, errlen, "cannot start ledger writer thread");
        goto fail;
    }
    return l;
fail:
    sqlite3_free(emsg);
    close_rings(l);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    sqlite3_finalize(l->ins);
    sqlite3_finalize(l->ins_ign);
    sqlite3_finalize(l->ins_multi);
    free(l->b_multi);
    if (l->db)
        sqlite3_close(l->db);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    pthread_cond_destroy(&l->idle_cv);
    free(l);
    return NULL;
}

static int enqueue(cg_ledger *l, item *it);

int cg_ledger_submit(cg_ledger *l, const cg_ledger_row *row, cg_ledger_done_fn fn, void *arg) {
    item *it = malloc(sizeof *it); /* every field is set: no zeroing of the row */
    if (!it)
        return -1;
    it->next = NULL;
    it->row = *row;
    it->fn = fn;
    it->arg = arg;
    it->run = NULL;
    it->run_arg = NULL;
    it->ok = 0;
    if (enqueue(l, it) != 0) {
        free(it);
        return -1;
    }
    return 0;
}

static int enqueue(cg_ledger *l, item *it) {
    pthread_mutex_lock(&l->mu);
    if (l->closing) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->queued++;
    /* the writer waits only while the queue is empty (it rechecks under mu) */
    if (l->queued == 1)
        pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int cg_ledger_run(cg_ledger *l, cg_ledger_run_fn run, void *run_arg, cg_ledger_done_fn fn,
                  void *arg) {
    item *it = calloc(1, sizeof *it);
    if (!it)
        return -1;
    it->run = run;
    it->run_arg = run_arg;
    it->fn = fn;
    it->arg = arg;
    if (enqueue(l, it) != 0) {
        free(it);
        return -1;
    }
    return 0;
}

static uint64_t spool_pending(cg_ledger *l) {
    uint64_t n = 0;
    for (int k = 0; k < l->n_rings; k++)
        n += cg_spool_pending(l->rings[k]);
    return n;
}

int cg_ledger_append(cg_ledger *l, int producer, const cg_ledger_row *row) {
    if (producer < 0 || producer >= l->n_rings)
        return -1;
    unsigned char rec[REC_MAX];
    if (cg_spool_put_len(l->rings[producer], rec, (uint32_t)row_encode(row, rec)) != 0) {
        atomic_fetch_add_explicit(&l->spool_full, 1, memory_order_relaxed);
        return -1;
    }
    /* No fence here (a full barrier after every row was ~1% of the loop's
     * CPU): in the rare race where the writer sets its flag while this row
     * is still in the store buffer, neither sees the other and the row
     * waits for the writer's next look at the rings, IDLE_RESCAN_MS later.
     * The row is in the spool either way. */
    if (atomic_load_explicit(&l->sleeping, memory_order_relaxed) &&
        atomic_exchange(&l->sleeping, 0)) {
        pthread_mutex_lock(&l->mu);
        l->kick = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    return 0;
}

void cg_ledger_flush(cg_ledger *l) {
    pthread_mutex_lock(&l->mu);
    l->flushers++;
    pthread_cond_signal(&l->cv); /* ends a commit delay */
    while (l->head || l->in_flight || spool_pending(l)) {
        if (!l->head && !l->in_flight) {
            l->kick = 1; /* do not wait out the commit delay */
            pthread_cond_signal(&l->cv);
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 1;
        pthread_cond_timedwait(&l->idle_cv, &l->mu, &dl);
    }
    l->flushers--;
    pthread_mutex_unlock(&l->mu);
}

void cg_ledger_close(cg_ledger *l) {
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->closing = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    close_rings(l); /* removed when empty; a ring left with rows is recovered at the next start */
    sqlite3_finalize(l->ins);
    sqlite3_finalize(l->ins_ign);
    sqlite3_finalize(l->ins_multi);
    free(l->b_multi);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    sqlite3_close(l->db);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    pthread_cond_destroy(&l->idle_cv);
    free(l);
}

void cg_ledger_stats(cg_ledger *l, uint64_t *rows_committed, uint64_t *commits, uint64_t *errors,
                     uint64_t *queued) {
    pthread_mutex_lock(&l->mu);
    *rows_committed = l->rows_committed;
    *commits = l->commits;
    *errors = l->errors;
    *queued = l->queued + spool_pending(l);
    pthread_mutex_unlock(&l->mu);
}

uint64_t cg_ledger_spool_full(cg_ledger *l) {
    return atomic_load_explicit(&l->spool_full, memory_order_relaxed);
}
