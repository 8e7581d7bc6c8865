/* engine: the stage list and the loop that walks it (see engine.h). */
#include "pipeline/engine.h"

#include <stdio.h>
#include <string.h>

#include "budget/budget.h"
#include "http/hserve.h"
#include "http/server.h"
#include "obs/metrics.h"
#include "provider/provider.h"

/* The request path, in order. Later features (caches, tiering, shaping,
 * budgets) insert their stages here, and only here. */
static const cg_stage STAGES[] = {
    {"parse", cg_stage_parse},         /* body -> JSON, provider adapter validation */
    {"identify", cg_stage_identify},   /* gateway key -> tenant/user/segment, attribution */
    {"tier", cg_stage_tier},           /* classify, pick tier and model (tiering) */
    {"route", cg_stage_route},         /* model -> provider (an unserved model is a 404) */
    {"admit", cg_stage_admit},         /* price known? pre-call estimate */
    {"cache", cg_stage_cache},         /* exact cache lookup; coalesce identical misses */
    {"semantic", cg_stage_semantic},   /* semantic cache: embed + search on the pool, gate */
    {"cache_hit", cg_stage_cache_hit}, /* a hit: send the stored answer (row is durable) */
    {"upstream", cg_stage_upstream},   /* the provider call, streamed through */
    {"verify", cg_stage_verify},       /* cascade: escalate a low-confidence answer? */
    {"settle", cg_stage_settle},       /* usage -> cost -> ledger (durable before release) */
    {"retry", cg_stage_retry},         /* next attempt: escalation or failover */
    {"store", cg_stage_store},         /* guarded exact-cache write of the final answer */
    {"respond", cg_stage_respond},     /* release the response / the stream's tail */
};
#define N_STAGES ((int)(sizeof STAGES / sizeof STAGES[0]))

const cg_stage *cg_engine_stages(int *n) {
    *n = N_STAGES;
    return STAGES;
}

void cg_engine_goto(cg_req *r, const char *name) {
    for (int i = 0; i < N_STAGES; i++)
        if (strcmp(STAGES[i].name, name) == 0) {
            r->stage = i - 1; /* the engine steps to i on CG_NEXT */
            return;
        }
}

static const char *ep_name(const cg_req *r) {
    return r->ep == CG_EP_CHAT ? "chat" : r->ep == CG_EP_MESSAGES ? "messages" : "embeddings";
}

static void finish(cg_req *r) {
    if (r->finished)
        return;
    r->finished = 1;
    if (r->hreq)
        cg_hreq_on_close(r->hreq, NULL, NULL);
    cg_stage_cache_finish(r);    /* identical requests waiting on this one go on */
    cg_stage_semantic_finish(r); /* a stored answer's query joins the semantic index */
    /* a reservation still held (the call never happened) is released */
    if (r->resv.n)
        cg_budget_settle(r->gw->budgets, &r->resv, r->cost.total);
    cg_metrics_request(r->gw->metrics, r->ops ? r->ops->name : "openai", ep_name(r), r->http_status,
                       r->stream);
    cg_metrics_inflight(r->gw->metrics, -1);
    cg_worker_request_done(r->w);
}

void cg_engine_common_headers(cg_req *r) {
    if (!r->hreq)
        return;
    cg_hreq_add_header(r->hreq, "x-costgate-request-id", r->id);
}

void cg_engine_send_error(cg_req *r) {
    const cg_provider_ops *ops = r->ops ? r->ops : &cg_provider_openai;
    cg_buf b;
    cg_buf_init(&b, 8192);
    ops->error_body(&b, r->err_status, r->err_type, r->err_code, r->err_param, r->err_msg);
    if (!r->client_gone) /* else it stays 499 */
        r->http_status = r->err_status;
    if (r->hreq) {
        cg_hreq_add_header(r->hreq, "Content-Type", "application/json");
        cg_engine_common_headers(r);
        if (r->err_reset[0])
            cg_hreq_add_header(r->hreq, "x-costgate-budget-reset", r->err_reset);
        cg_hreq_reply(r->hreq, r->err_status, b.data, b.len);
        r->hreq = NULL;
    }
    cg_buf_free(&b);
    finish(r);
}

static void run(cg_req *r) {
    while (r->stage < N_STAGES) {
        cg_stage_rc rc = STAGES[r->stage].run(r);
        switch (rc) {
        case CG_NEXT:
            r->stage++;
            continue;
        case CG_AGAIN:
            r->stage++;
            return; /* the I/O callback holds a reference and resumes */
        case CG_DONE:
            r->stage = N_STAGES;
            finish(r);
            cg_req_unref(r);
            return;
        case CG_ERROR:
            r->stage = N_STAGES;
            cg_engine_send_error(r);
            cg_req_unref(r);
            return;
        }
    }
    finish(r);
    cg_req_unref(r);
}

void cg_engine_start(cg_req *r) {
    cg_metrics_inflight(r->gw->metrics, 1);
    r->stage = 0;
    run(r);
}

void cg_engine_resume(cg_req *r) {
    run(r);
}
