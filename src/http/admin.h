/* admin: endpoints outside the proxy path.
 *
 * Owns: /metrics (Prometheus text), POST /admin/costs (ingestion of
 * external-API and storage/compute costs into the ledger, idempotent by id),
 * GET /v1/models (the models this gateway serves and can price), and the
 * admin authorisation rule: on the admin listener, the admin key if one is
 * configured; on the main listener, only with the admin key.
 */
#ifndef CG_HTTP_ADMIN_H
#define CG_HTTP_ADMIN_H

#include "http/hserve.h"

#include "http/server.h"
#include "pipeline/gateway.h"

/* Returns 1 if it handled (answered) the request. */
int cg_admin_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri, cg_hmethod m,
                    int on_admin_listener);
void cg_admin_models(cg_gateway *gw, cg_hreq *req, cg_api api);

#endif
