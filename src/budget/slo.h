/* slo: cost SLOs with multi-window burn-rate alerts and automatic fallback.
 *
 * Owns: per-SLO minute buckets of cost and query counts, the burn-rate
 * evaluation over a fast window pair and a slow window pair (Google SRE
 * workbook, ch. 5, adapted to cost), alert state with firing/clearing
 * transitions, and the cheap-tier fallback with hold-down (hysteresis).
 *
 * Two SLO kinds, as in the seeds' config/cost_slo.yaml:
 *  - avg_cost_per_query: burn = (cost / queries in the window) / target
 *  - daily_cost_total:   burn = (cost in the window / window length) /
 *                               (target / 1 day)
 * A pair alerts when the burn rate over BOTH its long and short window is at
 * least the pair's factor. While any pair alerts and the SLO has fallback on,
 * its segment is forced to the cheapest model; the fallback is released only
 * after no pair has alerted for the hold-down time (no flapping).
 * All money is integer nano-USD; burn rates are kept as integer milli-ratios.
 */
#ifndef CG_BUDGET_SLO_H
#define CG_BUDGET_SLO_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CG_SLO_AVG_PER_QUERY = 0, CG_SLO_DAILY_TOTAL = 1 } cg_slo_kind;

typedef struct cg_slo_def {
    char name[64];
    cg_slo_kind kind;
    char segment[64];        /* "" = all traffic */
    int64_t target;          /* nano-USD (per query, or per day) */
    int64_t alert_threshold; /* nano-USD, same unit; informs the slow factor */
    int64_t fast_long_ms, fast_short_ms, fast_factor_milli;
    int64_t slow_long_ms, slow_short_ms, slow_factor_milli;
    int fallback; /* force the cheapest model while burning */
    int64_t hold_down_ms;
} cg_slo_def;

/* The default pairs: fast 1 h / 5 min at 2.0x, slow 6 h / 30 min at
 * alert_threshold / target (at least 1.0x); hold-down 30 min. */
void cg_slo_def_defaults(cg_slo_def *d);

typedef struct cg_slos cg_slos;

typedef enum {
    CG_SLO_EV_ALERT_FIRED = 1,
    CG_SLO_EV_ALERT_CLEARED,
    CG_SLO_EV_FALLBACK_ON,
    CG_SLO_EV_FALLBACK_OFF
} cg_slo_event_kind;

typedef struct cg_slo_event {
    cg_slo_event_kind kind;
    const char *slo;     /* name */
    const char *segment; /* "" = all */
    const char *pair;    /* "fast" | "slow" | "" */
    int64_t burn_long_milli, burn_short_milli, factor_milli;
    int64_t at_ms;
} cg_slo_event;

typedef void (*cg_slo_event_fn)(void *arg, const cg_slo_event *ev);

cg_slos *cg_slos_new(const cg_slo_def *defs, size_t n);
void cg_slos_free(cg_slos *s);
/* One settled query (cost >= 0) of `segment` at time now_ms. Thread-safe. */
void cg_slos_record(cg_slos *s, const char *segment, int64_t cost, int64_t now_ms);
/* Re-evaluates every SLO at now_ms, calling fn for each state change. */
void cg_slos_evaluate(cg_slos *s, int64_t now_ms, cg_slo_event_fn fn, void *arg);
/* 1 if `segment` is under fallback now (by a segment SLO or a global one). */
int cg_slos_fallback(cg_slos *s, const char *segment);

typedef struct cg_slo_status {
    const char *name, *segment;
    int64_t burn_fast_long, burn_fast_short, burn_slow_long, burn_slow_short; /* milli */
    int fast_alert, slow_alert, fallback;
} cg_slo_status;
size_t cg_slos_count(const cg_slos *s);
void cg_slos_status(cg_slos *s, size_t i, cg_slo_status *out);

#endif
