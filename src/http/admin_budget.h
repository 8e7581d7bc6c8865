/* admin_budget: the admin API of budgets and cost SLOs.
 *
 * Owns: GET /admin/budgets (spend, in-flight reservations and what is left
 * per scope in the current periods, plus SLO burn rates and fallback state),
 * PUT /admin/budgets (change a limit at run time; persisted in the ledger
 * database's budget_limits table through the ledger writer, and re-applied
 * at start), POST /admin/test/clock (only with COSTGATE_TEST_CLOCK=1), and
 * the budget/SLO series of /metrics.
 */
#ifndef CG_HTTP_ADMIN_BUDGET_H
#define CG_HTTP_ADMIN_BUDGET_H

#include "http/hserve.h"

#include "core/buf.h"
#include "http/server.h"
#include "pipeline/gateway.h"

int cg_admin_budget_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri,
                           cg_hmethod m);
void cg_admin_budget_metrics(cg_gateway *gw, cg_buf *out);
/* Re-applies persisted limit changes (call at start). 0 or -1 with err. */
int cg_admin_budget_load(cg_gateway *gw, const char *ledger_path, char *err, size_t errlen);

#endif
