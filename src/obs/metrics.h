/* metrics: process-wide counters and histograms, rendered as Prometheus text.
 *
 * Owns: the metric registry. Updates are lock-free atomics except the
 * per-model series (a small mutex-guarded table, touched once per request at
 * settle). Money series are integer nano-USD counters, named *_nano_usd.
 */
#ifndef CG_OBS_METRICS_H
#define CG_OBS_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "cost/meter.h"
#include "cost/usage.h"

struct cg_ledger;

typedef struct cg_metrics cg_metrics;

cg_metrics *cg_metrics_new(void);
void cg_metrics_free(cg_metrics *m);

/* A finished request. api: "openai"|"anthropic"; endpoint: chat|messages|
 * embeddings|models; http_status as sent to the client. */
void cg_metrics_request(cg_metrics *m, const char *api, const char *endpoint, int http_status,
                        int stream);
/* A settled upstream call (its ledger row). */
void cg_metrics_settle(cg_metrics *m, const char *model, const cg_usage *u, const cg_cost *c,
                       int estimated, int unpriced);
void cg_metrics_upstream_latency(cg_metrics *m, int64_t latency_us, int64_t ttfb_us);
void cg_metrics_inflight(cg_metrics *m, int delta);
void cg_metrics_client_disconnect(cg_metrics *m);
/* A budget or SLO action: scope is a budget scope name or "slo"; action is
 * reject | downgrade | dry_run | fallback. */
void cg_metrics_budget_action(cg_metrics *m, const char *scope, const char *action);
/* Appends the exposition text. ledger may be NULL. */
void cg_metrics_render(cg_metrics *m, struct cg_ledger *ledger, cg_buf *out);

#endif
