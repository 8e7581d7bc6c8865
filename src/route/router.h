/* router: the tier and model a request is served by.
 *
 * Owns: whether a request may be routed (a virtual model such as
 * costgate/auto always is; an explicit model only for keys listed in
 * tiering.routable_keys), the rule walk (first match on intent, segment,
 * feature, key and complexity wins), the fallback to the classifier's (or
 * the learned router's) suggestion, the bandit's choice among neighbouring
 * tiers, and tier arithmetic used by the cascade, budget downgrades and the
 * SLO fallback (next tier up, cheapest tier, the tier of a model).
 * Read-only after construction apart from the bandit, which synchronizes itself.
 */
#ifndef CG_ROUTE_ROUTER_H
#define CG_ROUTE_ROUTER_H

#include "config/config.h"
#include "route/bandit.h"

typedef struct cg_route_in {
    cg_api api;
    const char *model;    /* as requested */
    const char *key_name; /* gateway key entry */
    const char *intent, *segment, *feature;
    int complexity;             /* 0 simple, 1 medium, 2 complex; -1 unknown */
    const char *suggested_tier; /* the classifier's tier name, used when a tier has it */
    double p_strong;            /* learned router's P(strong model needed); < 0 = no model */
    /* optional: called at most once, when the decision first needs
     * complexity, suggested_tier or p_strong, with those three (as set
     * above) to fill in; a decision made by a rule on intent, segment,
     * feature and key alone never calls it */
    void (*classify)(void *arg, int *complexity, const char **suggested_tier, double *p_strong);
    void *classify_arg;
} cg_route_in;

typedef struct cg_route_out {
    int routed;   /* the model was chosen here (else the requested one is kept) */
    int tier;     /* tier index, -1 when the model is in no tier */
    int explored; /* the bandit went away from the rules' tier */
    int rule;     /* index of the matching rule, -1 none */
    char why[96]; /* short reason, for the ledger note */
    /* the model to serve: the chosen tier's model (in t) when routed, else
     * in->model itself; valid as long as those are (not copied: per request) */
    const char *model;
} cg_route_out;

/* 1 when `model` is a virtual model of the tiering config. */
int cg_router_is_virtual(const cg_tiering_cfg *t, const char *model);
/* Decides. b may be NULL (no bandit). Returns 0, or -1 when the request asks
 * for a virtual model and no tier has a model for its API (out->why says so). */
int cg_router_decide(const cg_tiering_cfg *t, cg_bandit *b, const cg_route_in *in,
                     cg_route_out *out);
/* The next more expensive tier above `tier` with a model for `api`, or -1. */
int cg_router_next_tier(const cg_tiering_cfg *t, cg_api api, int tier);
/* The next cheaper tier below `tier` with a model for `api`, or -1. */
int cg_router_prev_tier(const cg_tiering_cfg *t, cg_api api, int tier);
/* The cheapest tier with a model for `api`, or -1. */
int cg_router_cheapest(const cg_tiering_cfg *t, cg_api api);
/* The tier whose model for `api` is `model`, or -1. */
int cg_router_tier_of(const cg_tiering_cfg *t, cg_api api, const char *model);

#endif
