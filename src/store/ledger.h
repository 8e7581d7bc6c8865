/* ledger: the cost ledger's writer (SQLite, WAL, group commit).
 *
 * Owns: the ledger file, its schema (ledger_schema.h), its spool rings
 * (spool.h; "<path>-spool-<pid>-<n>") and the single writer thread. Two ways
 * in, neither blocks on I/O:
 *
 * - cg_ledger_append: an event-loop thread writes a settled request's row
 *   into its own spool ring (a copy into a shared file mapping). The row
 *   then survives a crash of the process, so the response may be released
 *   at once; the writer moves spooled rows into SQLite in large transactions
 *   (waiting commit_delay_ms after the first to gather more). Rings a crashed
 *   process left are moved into the ledger by the next cg_ledger_open, with
 *   INSERT OR IGNORE, so a row is never written twice.
 * - cg_ledger_submit / cg_ledger_run: a row (or a function) is queued, and
 *   the writer commits everything queued in one transaction, then calls each
 *   item's done callback (on the writer thread) with ok = 1 once it is
 *   durable in the database file (synchronous=NORMAL in WAL mode: it
 *   survives a process crash). A duplicate (request_id, attempt) is refused
 *   by the primary key, reported as ok = 0, and never written twice. Spooled
 *   rows are in the ledger before a queued item that was queued after them
 *   runs (a feedback rating finds the row of the answer it rates).
 */
#ifndef CG_STORE_LEDGER_H
#define CG_STORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_ledger cg_ledger;
struct sqlite3;

typedef struct cg_ledger_row {
    char request_id[48];
    int attempt;
    int64_t ts_ms;
    char kind[16];
    char api[16];
    char tenant[64], user[128], segment[64], feature[64], intent[64], key_name[64];
    char provider[64];
    char model_requested[128], model_served[128];
    char tier[32];
    int stream;
    char status[32];
    int http_status, upstream_status;
    int64_t tok_input_predicted; /* pre-call prediction of all input tokens */
    int64_t tok_input, tok_cached_read, tok_cache_write_5m, tok_cache_write_1h, tok_output,
        tok_reasoning, tok_embedding, web_searches;
    int64_t cost_input, cost_output, cost_embedding, cost_external_api, cost_storage_compute,
        cost_total, baseline_cost;
    int estimated, unpriced;
    char cache[16];
    char cache_key[65]; /* exact cache key (hex) the request looked up, "" = none */
    char cache_src[48]; /* a hit: the request that wrote the entry it served */
    int has_similarity; /* v4: a semantic lookup ran: cache_similarity is set */
    double cache_similarity;
    char cache_match[65]; /* v4: a semantic hit: the entry it served (hex key) */
    int64_t latency_us, ttfb_us;
    char error[256];
    char note[256];
} cg_ledger_row;

typedef void (*cg_ledger_done_fn)(void *arg, int ok);

typedef struct cg_ledger_opts {
    int batch_max;        /* queued items per transaction; 0 = 256 */
    int spool_rings;      /* producers with a spool ring (event-loop threads); 0 = no spool */
    uint32_t spool_slots; /* rows per ring; 0 = 4096 */
    int commit_delay_ms;  /* the writer's wait after a first spooled row; 0 = none */
} cg_ledger_opts;

/* Opens (creating) the ledger, moves rows left in spool rings of crashed
 * processes into it, creates this process's rings and starts the writer.
 * opts may be NULL (defaults, no spool). NULL with a message in err on
 * failure. */
cg_ledger *cg_ledger_open(const char *path, const cg_ledger_opts *opts, char *err, size_t errlen);
/* Spools a row on ring `producer` (only ever called by that one thread).
 * Returns 0: the row survives a process crash and reaches the ledger
 * shortly; -1: there is no such ring, or it is full (the writer is behind):
 * use cg_ledger_submit and wait for its callback instead. */
int cg_ledger_append(cg_ledger *l, int producer, const cg_ledger_row *row);
/* Appends refused because a ring was full, since open. */
uint64_t cg_ledger_spool_full(cg_ledger *l);
/* Queues a row. fn may be NULL. Returns 0, or -1 when the ledger is closed or
 * out of memory (fn is then not called). Thread-safe, never blocks on I/O. */
int cg_ledger_submit(cg_ledger *l, const cg_ledger_row *row, cg_ledger_done_fn fn, void *arg);
/* Runs run(db, run_arg) on the writer thread inside its next transaction
 * (e.g. persisting a budget limit), then fn(arg, run's result == 0). The db
 * handle must not be kept. Same threading rules as cg_ledger_submit. */
typedef int (*cg_ledger_run_fn)(struct sqlite3 *db, void *run_arg);
int cg_ledger_run(cg_ledger *l, cg_ledger_run_fn run, void *run_arg, cg_ledger_done_fn fn,
                  void *arg);
/* Blocks until everything queued or spooled so far is committed. For tests
 * and shutdown. */
void cg_ledger_flush(cg_ledger *l);
/* Flushes, stops the writer and closes the file. */
void cg_ledger_close(cg_ledger *l);
/* Counters for /metrics (queued: queued items and spooled rows not yet
 * committed). */
void cg_ledger_stats(cg_ledger *l, uint64_t *rows_committed, uint64_t *commits, uint64_t *errors,
                     uint64_t *queued);

#endif
