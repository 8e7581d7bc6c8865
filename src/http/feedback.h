/* feedback: client ratings of answers, POST /v1/feedback on the main listener.
 *
 * Owns: the endpoint and the list of rating consumers. A client rates one
 * of its own requests with its gateway key (a key may rate only requests of
 * its own tenant; any other id is answered 404, as an unknown one):
 *
 *   POST /v1/feedback
 *   {"request_id": "req_...", "rating": "up"|"down" (or 1 / -1), "comment": "..."}
 *
 * The rating is recorded in the ledger database's `feedback` table (one per
 * request and key name; rating again replaces it), through the ledger
 * writer. Then every registered hook sees it, on the worker loop that
 * answers the request, with the rated request's ledger facts (model,
 * intent, tier, cache key). The exact cache's hook removes, on a thumbs
 * down, the entry that served the request (or that the request wrote); the
 * semantic cache's, the entry a semantic hit served (cache_match);
 * model tiering's bandit can register its own hook the same way. A hook
 * may add fields to the JSON reply (e.g. "cache_removed": 1).
 *
 * Hooks are registered at start, before the server runs; they must not
 * block (no disk, no long locks).
 */
#ifndef CG_HTTP_FEEDBACK_H
#define CG_HTTP_FEEDBACK_H

#include "http/hserve.h"
#include <jansson.h>

#include "http/server.h"
#include "pipeline/gateway.h"

#define CG_FEEDBACK_HOOKS_MAX 8

typedef struct cg_feedback {
    const char *request_id;
    int rating; /* +1 up, -1 down */
    const char *comment;
    const char *tenant;   /* the rating key's (= the request's) tenant */
    const char *key_name; /* the rating key's name */
    int64_t ts_ms;
    /* the rated request, from its ledger row (its last attempt) */
    const char *model_served;
    const char *intent;
    const char *tier;
    const char *cache;       /* miss | exact | semantic */
    const char *cache_key;   /* hex, "" when the cache was not consulted */
    const char *cache_src;   /* a hit: the request that wrote the entry it served */
    const char *cache_match; /* a semantic hit: the entry it served (hex), else "" */
    int64_t cost_total;      /* nano-USD */
} cg_feedback;

typedef void (*cg_feedback_hook_fn)(void *arg, const cg_feedback *fb, json_t *reply);

/* Registers a consumer (at start). 0, or -1 when the list is full. */
int cg_feedback_hook_add(const char *name, cg_feedback_hook_fn fn, void *arg);
/* Drops every hook (tests, shutdown). */
void cg_feedback_hooks_clear(void);

/* Handles POST /v1/feedback. */
void cg_feedback_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, cg_hmethod m);

#endif
