/* engine: runs a request through the ordered stage list.
 *
 * Owns: the stage list (one table, in request-path order, as nginx phases)
 * and the rules for moving through it: a stage returns CG_NEXT (go on),
 * CG_DONE (a response was produced), CG_AGAIN (suspended on I/O; the engine
 * is resumed at the next stage by cg_engine_resume) or CG_ERROR (the error
 * recorded with cg_req_fail is sent in the API's own shape).
 */
#ifndef CG_PIPELINE_ENGINE_H
#define CG_PIPELINE_ENGINE_H

#include "pipeline/request.h"

typedef enum { CG_NEXT = 0, CG_DONE, CG_AGAIN, CG_ERROR } cg_stage_rc;

typedef struct cg_stage {
    const char *name;
    cg_stage_rc (*run)(cg_req *r);
} cg_stage;

/* Starts at the first stage. Takes over the caller's reference. */
void cg_engine_start(cg_req *r);
/* Continues a suspended request at the stage after the one that returned
 * CG_AGAIN. */
void cg_engine_resume(cg_req *r);
/* The stage list, for docs and tests. */
const cg_stage *cg_engine_stages(int *n);

/* Stages (pipeline/stages_*.c). */
cg_stage_rc cg_stage_parse(cg_req *r);
cg_stage_rc cg_stage_identify(cg_req *r);
cg_stage_rc cg_stage_admit(cg_req *r);
/* The pre-call input estimate (est_input_tokens, predicted_input), once per
 * request: at admission when budgets need it, else right before the first
 * upstream call (a cache hit makes no call and predicts nothing). */
void cg_stage_estimate_input(cg_req *r);
cg_stage_rc cg_stage_route(cg_req *r);
cg_stage_rc cg_stage_upstream(cg_req *r);
cg_stage_rc cg_stage_settle(cg_req *r);
cg_stage_rc cg_stage_respond(cg_req *r);
cg_stage_rc cg_stage_tier(cg_req *r);   /* stages_route.c */
cg_stage_rc cg_stage_verify(cg_req *r); /* stages_route.c */
cg_stage_rc cg_stage_retry(cg_req *r);  /* stages_route.c */
/* Budgets refused an escalated attempt: serve the previous attempt's answer
 * (jumps to respond). 0, or -1 when there is none. */
int cg_route_keep_previous(cg_req *r);
/* The answer of a stream held for the cascade (r->stream_held), as the SSE
 * stream the client asked for (events, cost comment, terminal). 0 / -1. */
int cg_route_held_sse(cg_req *r, cg_buf *out);

/* The exact response cache (stages_cache.c). */
cg_stage_rc cg_stage_cache(cg_req *r);     /* lookup; a hit's row; coalescing */
cg_stage_rc cg_stage_cache_hit(cg_req *r); /* a hit: send the stored answer */
cg_stage_rc cg_stage_store(cg_req *r);     /* guarded write of the final answer */
/* A stream event of a miss being captured for the store (stages_proxy.c). */
void cg_stage_cache_capture(cg_req *r, const char *data, size_t len);
/* The request is finished: waiters on it go on (engine.c). */
void cg_stage_cache_finish(cg_req *r);
/* Frees the request's cache state (request.c). */
void cg_stage_cache_free(cg_req *r);
/* Makes r a hit on entry e (taking the reference; how: CG_CACHE_HIT_*),
 * settles it and queues its ledger row. CG_AGAIN: the commit resumes the
 * engine at the stage after the current one (cache_hit sends the answer);
 * CG_NEXT: the row could not be queued, go on at once. */
struct cg_cache_entry;
cg_stage_rc cg_stage_cache_serve(cg_req *r, struct cg_cache_entry *e, int how);

/* The semantic cache (stages_semantic.c; docs/semantic-cache.md). */
cg_stage_rc cg_stage_semantic(cg_req *r); /* after an exact miss: embed, search, gate */
/* Adds the lookup's embedding cost (an HTTP embedder's) to r->cost, once. */
void cg_stage_semantic_settle(cg_req *r);
/* The semantic columns of r's ledger row: similarity, entry matched,
 * embedding tokens (cost: cg_stage_semantic_settle), notes. */
void cg_stage_semantic_row(cg_req *r, cg_ledger_row *row);
/* Response headers of a semantic hit (similarity). */
void cg_stage_semantic_headers(cg_req *r);
/* The exact store wrote entry `key` for r: its query joins the index, on a
 * low-priority thread once the request is done (cg_stage_semantic_finish,
 * engine.c). */
void cg_stage_semantic_stored(cg_req *r, const uint8_t key[32]);
void cg_stage_semantic_finish(cg_req *r);
/* Frees r's semantic state (request.c). */
void cg_stage_semantic_free(cg_req *r);

/* Makes the stage named `name` the next one to run once the current stage
 * returns CG_NEXT (a new attempt goes back to admission). */
void cg_engine_goto(cg_req *r, const char *name);

/* Sends the recorded error (r->err_*) to the client and finishes it. */
void cg_engine_send_error(cg_req *r);
/* Adds x-costgate-* headers common to every response. */
void cg_engine_common_headers(cg_req *r);

#endif
