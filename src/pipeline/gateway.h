/* gateway: the process-wide, read-mostly context every request sees.
 *
 * Owns: the clock budgets and SLOs read (real, or set by tests); otherwise it
 * ties together the loaded config, the price table,
 * the ledger writer, the metrics registry and the provider API keys read from
 * the environment at start (never logged).
 */
#ifndef CG_PIPELINE_GATEWAY_H
#define CG_PIPELINE_GATEWAY_H

#include "config/config.h"
#include "cost/prices.h"
#include "store/ledger.h"

struct cg_metrics;
struct cg_budgets;
struct cg_slos;
struct cg_slo_runner;

typedef struct cg_gateway {
    const cg_config *cfg;
    cg_price_table *prices;
    cg_ledger *ledger;
    struct cg_metrics *metrics;
    char **provider_keys;       /* parallel to cfg->providers; NULL when unset */
    struct cg_budgets *budgets; /* NULL when no budgets section */
    struct cg_slos *slos;       /* NULL when no SLOs */
    struct cg_slo_runner *slo_runner;
    struct cg_bandit *bandit;         /* NULL unless tiering.bandit is enabled */
    struct cg_classifier *classifier; /* NULL unless tiering is enabled */
    struct cg_learned_model *learned; /* tiering.learned.model, NULL when none */
    struct cg_cache *cache;           /* exact response cache, NULL when off */
    struct cg_coalesce *coalesce;     /* identical in-flight misses, NULL when off */
    struct cg_semrt *semantic;        /* semantic cache (stages_semantic.h), NULL when off */
    int test_clock;                   /* COSTGATE_TEST_CLOCK=1: admin may set the time */
    _Atomic long long test_now_ms;    /* 0 = real time */
} cg_gateway;

/* Wall-clock milliseconds for budgets and SLOs (the test clock when set). */
long long cg_gateway_now_ms(void *gw);

#endif
