/* slo_runner: the thread that evaluates cost SLOs and acts on their events.
 *
 * Owns: the evaluation timer (config slo_eval_interval_ms), and the actions
 * on each SLO event: a log line, a counter for /metrics, and a webhook POST
 * with a JSON body (config slo_webhook; 5 s timeout, sent from this thread,
 * never from an event loop). The fallback state itself lives in cg_slos and
 * is read by the request path.
 */
#ifndef CG_BUDGET_SLO_RUNNER_H
#define CG_BUDGET_SLO_RUNNER_H

#include <stdint.h>

#include "budget/slo.h"
#include "core/buf.h"

typedef struct cg_slo_runner cg_slo_runner;

/* clock NULL = real time. Starts the thread when there are SLOs. */
cg_slo_runner *cg_slo_runner_start(cg_slos *slos, int interval_ms, const char *webhook,
                                   int64_t (*clock)(void *), void *clock_arg);
void cg_slo_runner_stop(cg_slo_runner *r);
/* Runs one evaluation now (tests and admin). */
void cg_slo_runner_tick(cg_slo_runner *r);
/* Prometheus series for the SLOs (burn rates, alert and fallback gauges,
 * event and webhook counters). */
void cg_slo_runner_metrics(cg_slo_runner *r, cg_buf *out);

#endif
