/* admin_cache: the exact response cache over the admin API.
 *
 * Owns: POST /admin/cache/invalidate (by key, tags such as source document
 * ids, tenant, share group, prompt version, or all; the "source changed"
 * webhook), GET /admin/cache/stats, the cache series of /metrics, and the
 * cache's feedback hook (a thumbs down removes the entry that served, or
 * was written by, the rated request).
 *
 *   POST /admin/cache/invalidate
 *   {"key": "<64 hex>"} | {"tags": ["doc-17", ...], "tenant"?: "t1"}
 *   | {"tenant": "t1", "prompt_version": "v3"} | {"tenant": "t1"} | {"all": true}
 *   -> {"removed": N, "cause": "key|tag|tenant|prompt_version|all"}
 * Criteria combine with AND; tags match an entry holding any of them.
 */
#ifndef CG_HTTP_ADMIN_CACHE_H
#define CG_HTTP_ADMIN_CACHE_H

#include "http/hserve.h"
#include <jansson.h>

#include "core/buf.h"
#include "http/feedback.h"
#include "http/server.h"
#include "pipeline/gateway.h"

/* 1 when it answered the request. */
int cg_admin_cache_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri,
                          cg_hmethod m);
void cg_admin_cache_metrics(cg_gateway *gw, cg_buf *out);
/* The stats as JSON (also for tests). */
json_t *cg_admin_cache_stats_json(cg_gateway *gw);
/* The feedback hook; arg is the gateway. */
void cg_admin_cache_feedback_hook(void *arg, const cg_feedback *fb, json_t *reply);

#endif
