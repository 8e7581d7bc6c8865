/* ledger: SQLite cost ledger with one writer thread and group commit
 * (see ledger.h). */
#include "store/ledger.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/ledger_schema.h"

typedef struct item {
    struct item *next;
    cg_ledger_row row;
    cg_ledger_done_fn fn;
    void *arg;
    cg_ledger_run_fn run; /* set: run(db, run_arg) instead of inserting row */
    void *run_arg;
} item;

struct cg_ledger {
    sqlite3 *db;
    sqlite3_stmt *ins;
    sqlite3_stmt *begin, *commit; /* prepared once, not re-parsed per batch */
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

static int bind_row(sqlite3_stmt *s, const cg_ledger_row *r) {
    int i = 1;
    /* UTC day of ts_ms, computed here instead of by strftime() per row */
    char day[48];
    time_t t = (time_t)(r->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(day, sizeof day, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
#define T(v) sqlite3_bind_text(s, i++, (v), -1, SQLITE_STATIC)
#define I(v) sqlite3_bind_int64(s, i++, (sqlite3_int64)(v))
    T(r->request_id);
    I(r->attempt);
    I(r->ts_ms);
    sqlite3_bind_text(s, i++, day, -1, SQLITE_TRANSIENT); /* a local: copied */
    T(r->kind);
    T(r->api);
    T(r->tenant);
    T(r->user);
    T(r->segment);
    T(r->feature);
    T(r->intent);
    T(r->key_name);
    T(r->provider);
    T(r->model_requested);
    T(r->model_served);
    T(r->tier);
    I(r->stream);
    T(r->status);
    I(r->http_status);
    I(r->upstream_status);
    I(r->tok_input_predicted);
    I(r->tok_input);
    I(r->tok_cached_read);
    I(r->tok_cache_write_5m);
    I(r->tok_cache_write_1h);
    I(r->tok_output);
    I(r->tok_reasoning);
    I(r->tok_embedding);
    I(r->web_searches);
    I(r->cost_input);
    I(r->cost_output);
    I(r->cost_embedding);
    I(r->cost_external_api);
    I(r->cost_storage_compute);
    I(r->cost_total);
    I(r->baseline_cost);
    I(r->estimated);
    I(r->unpriced);
    T(r->cache);
    T(r->cache_key);
    T(r->cache_src);
    if (r->has_similarity)
        sqlite3_bind_double(s, i++, r->cache_similarity);
    else
        sqlite3_bind_null(s, i++);
    T(r->cache_match);
    I(r->latency_us);
    I(r->ttfb_us);
    T(r->error);
    T(r->note);
#undef T
#undef I
    return 0;
}

static void *writer_main(void *arg) {
    cg_ledger *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->head && !l->closing)
            pthread_cond_wait(&l->cv, &l->mu);
        if (!l->head && l->closing)
            break;
        /* take up to batch_max rows */
        item *batch = l->head, *last = l->head;
        int n = 1;
        while (last->next && n < l->batch_max) {
            last = last->next;
            n++;
        }
        l->head = last->next;
        if (!l->head)
            l->tail = NULL;
        last->next = NULL;
        l->queued -= (size_t)n;
        l->in_flight = n;
        pthread_mutex_unlock(&l->mu);

        int txn_ok = sqlite3_step(l->begin) == SQLITE_DONE;
        sqlite3_reset(l->begin);
        int *ok = calloc((size_t)n, sizeof *ok);
        int k = 0;
        for (item *it = batch; it; it = it->next, k++) {
            if (it->run) {
                int r = it->run(l->db, it->run_arg);
                if (ok)
                    ok[k] = r == 0;
                continue;
            }
            bind_row(l->ins, &it->row);
            int rc = sqlite3_step(l->ins);
            if (ok)
                ok[k] = rc == SQLITE_DONE;
            if (rc != SQLITE_DONE)
                CG_ERROR("ledger: insert %s/%d failed: %s", it->row.request_id, it->row.attempt,
                         sqlite3_errmsg(l->db));
            sqlite3_reset(l->ins);
            sqlite3_clear_bindings(l->ins);
        }
        int commit_ok = txn_ok && sqlite3_step(l->commit) == SQLITE_DONE;
        sqlite3_reset(l->commit);
        if (!commit_ok) {
            CG_ERROR("ledger: commit failed: %s", sqlite3_errmsg(l->db));
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        }
        uint64_t good = 0, bad = 0;
        k = 0;
        for (item *it = batch; it;) {
            item *next = it->next;
            int row_ok = commit_ok && ok && ok[k];
            if (row_ok)
                good++;
            else
                bad++;
            if (it->fn)
                it->fn(it->arg, row_ok);
            free(it);
            it = next;
            k++;
        }
        free(ok);
        pthread_mutex_lock(&l->mu);
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

cg_ledger *cg_ledger_open(const char *path, int batch_max, char *err, size_t errlen) {
    cg_ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->batch_max = batch_max > 0 ? batch_max : 256;
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
    char ver[96];
    snprintf(ver, sizeof ver, "INSERT OR REPLACE INTO meta (k, v) VALUES ('schema_version', '%d')",
             CG_LEDGER_SCHEMA_VERSION);
    if (sqlite3_exec(l->db, ver, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot upgrade ledger %s: %s", path, emsg ? emsg : "?");
        goto fail;
    }
    if (sqlite3_prepare_v2(l->db, "BEGIN IMMEDIATE", -1, &l->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "COMMIT", -1, &l->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, INSERT_SQL, -1, &l->ins, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot prepare ledger insert: %s", sqlite3_errmsg(l->db));
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, writer_main, l) != 0) {
        snprintf(err, errlen, "cannot start ledger writer thread");
        goto fail;
    }
    return l;
fail:
    sqlite3_free(emsg);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    if (l->ins)
        sqlite3_finalize(l->ins);
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
    item *it = calloc(1, sizeof *it);
    if (!it)
        return -1;
    it->row = *row;
    it->fn = fn;
    it->arg = arg;
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

void cg_ledger_flush(cg_ledger *l) {
    pthread_mutex_lock(&l->mu);
    while (l->head || l->in_flight)
        pthread_cond_wait(&l->idle_cv, &l->mu);
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
    sqlite3_finalize(l->ins);
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
    *queued = l->queued;
    pthread_mutex_unlock(&l->mu);
}
