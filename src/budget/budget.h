/* budget: spending limits enforced by reservation before the call.
 *
 * Owns: the in-memory state of every budget scope (spent + reserved per
 * period), the atomic reserve / settle protocol, period boundaries (day and
 * month in the configured time zone, via an injectable clock), runtime limit
 * overrides, and the rebuild of spent amounts from the ledger at start so
 * state survives a restart and agrees with the ledger.
 *
 * Scopes of one request (tenant T, user U, segment S, feature F):
 *   query         S's max_per_query vs this request's upper-bound estimate
 *   user_day      (T, U) per day        limit S.daily_max_per_user
 *   segment_day   (T, S) per day        limit S.daily_max
 *   tenant_month  T per month           limit per_tenant[T]
 *   feature_day   (T, F) per day        limit per_feature[F]
 *   global_day    everything per day    limit global.daily_usd
 * A request is admitted only if the estimate fits every scope at once; the
 * estimate is then reserved in all of them under one lock, and on settle the
 * reservation is replaced by the actual cost. Committed spend can exceed a
 * limit only if the actual cost exceeds the reserved upper bound.
 */
#ifndef CG_BUDGET_BUDGET_H
#define CG_BUDGET_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef enum {
    CG_SCOPE_QUERY = 0,
    CG_SCOPE_USER_DAY,
    CG_SCOPE_SEGMENT_DAY,
    CG_SCOPE_TENANT_MONTH,
    CG_SCOPE_FEATURE_DAY,
    CG_SCOPE_GLOBAL_DAY,
    CG_SCOPE_COUNT
} cg_scope;

typedef struct cg_budgets cg_budgets;
typedef int64_t (*cg_clock_fn)(void *arg); /* Unix epoch milliseconds */

typedef struct cg_budget_who {
    const char *tenant, *user, *segment, *feature;
} cg_budget_who;

struct cg_budget_entry;

typedef struct cg_reservation {
    int n;
    struct cg_budget_entry *e[CG_SCOPE_COUNT];
    int64_t amount;    /* reserved in each entry */
    int64_t remaining; /* least headroom left across limited scopes after reserving; -1 none */
    int dry_run;       /* a dry_run scope was breached: admitted anyway, flag the row */
    char dry_run_scope[32];
} cg_reservation;

typedef struct cg_budget_verdict {
    int admitted;
    cg_scope scope;          /* the breached scope when not admitted (or dry-run) */
    cg_budget_action action; /* that scope's action */
    char scope_name[160];    /* e.g. "user_day tenant=acme user=bob" */
    int64_t limit, spent, reserved, estimate;
    int64_t reset_at_ms; /* when the breached period resets (0 for query) */
} cg_budget_verdict;

/* clock NULL = the real clock. The config must outlive the budgets. */
cg_budgets *cg_budgets_new(const cg_config *cfg, cg_clock_fn clock, void *clock_arg);
void cg_budgets_free(cg_budgets *b);
int cg_budgets_enabled(const cg_budgets *b);
int64_t cg_budgets_now(const cg_budgets *b);

/* Adds committed spend from the ledger for the current periods (call once at
 * start, before serving). 0, or -1 with a message. */
int cg_budgets_load_ledger(cg_budgets *b, const char *ledger_path, char *err, size_t errlen);
/* Adds committed spend for one settled row (used by load and by tests). */
void cg_budgets_add_spent(cg_budgets *b, const cg_budget_who *w, int64_t ts_ms, int64_t nano);

/* Tries to reserve `estimate` nano-USD in every scope of w. On success fills
 * res (admitted, possibly dry_run) and returns 1; on breach of a reject or
 * downgrade scope returns 0 with v describing the first such breach and
 * nothing reserved. Thread-safe. */
int cg_budget_reserve(cg_budgets *b, const cg_budget_who *w, int64_t estimate, cg_reservation *res,
                      cg_budget_verdict *v);
/* Replaces the reservation by the actual cost (>= 0). Idempotent per res. */
void cg_budget_settle(cg_budgets *b, cg_reservation *res, int64_t actual);

/* Runtime override of a limit: scope is one of the names "default",
 * "segment", "tenant", "feature", "global"; field for default/segment is
 * "max_per_query" | "daily_max_per_user" | "daily_max"; limit CG_NO_LIMIT
 * removes it. 0, or -1 with a message. */
int cg_budget_set_limit(cg_budgets *b, const char *scope, const char *name, const char *field,
                        int64_t limit, int action /* -1 = keep */, char *err, size_t errlen);

/* Visits every live scope entry of the current periods. */
typedef void (*cg_budget_visit_fn)(void *arg, const char *scope, const char *key, int64_t limit,
                                   int64_t spent, int64_t reserved, int64_t reset_at_ms);
void cg_budget_visit(cg_budgets *b, cg_budget_visit_fn fn, void *arg);

const char *cg_scope_name(cg_scope s);
const char *cg_budget_action_name(cg_budget_action a);

#endif
