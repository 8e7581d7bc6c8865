/* gateway: the process-wide, read-mostly context every request sees.
 *
 * Owns: nothing itself; it ties together the loaded config, the price table,
 * the ledger writer, the metrics registry and the provider API keys read from
 * the environment at start (never logged).
 */
#ifndef CG_PIPELINE_GATEWAY_H
#define CG_PIPELINE_GATEWAY_H

#include "config/config.h"
#include "cost/prices.h"
#include "store/ledger.h"

struct cg_metrics;

typedef struct cg_gateway {
    const cg_config *cfg;
    cg_price_table *prices;
    cg_ledger *ledger;
    struct cg_metrics *metrics;
    char **provider_keys; /* parallel to cfg->providers; NULL when unset */
} cg_gateway;

#endif
