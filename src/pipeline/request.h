/* request: the state of one proxied request as it moves through the stages.
 *
 * Owns: the cg_req struct and its lifetime. A request is reference counted;
 * today the stage loop holds the only reference, carried across each wait
 * on I/O (the upstream call, the ledger commit) by the callback that resumes
 * it, and drops it when the last stage ends. The client connection may go
 * away first (the close callback of http/hserve.h): the request then
 * finishes without it. Everything here is touched only by the worker thread
 * that accepted the request.
 */
#ifndef CG_PIPELINE_REQUEST_H
#define CG_PIPELINE_REQUEST_H

#include <jansson.h>
#include <stdint.h>

#include "budget/budget.h"
#include "cache/coalesce.h"
#include "config/config.h"
#include "core/buf.h"
#include "cost/meter.h"
#include "cost/prices.h"
#include "cost/usage.h"
#include "http/sse.h"
#include "http/upstream.h"
#include "pipeline/gateway.h"

struct cg_hreq;
struct event;
struct cg_worker;
struct cg_provider_ops;

typedef enum { CG_EP_CHAT = 0, CG_EP_EMBEDDINGS, CG_EP_MESSAGES } cg_endpoint;

#define CG_MAX_FWD_HEADERS 16

typedef struct cg_req {
    struct cg_worker *w;
    cg_gateway *gw;
    int refs;
    int stage;    /* index into the stage list */
    int finished; /* the response to the client is complete (or abandoned) */

    /* client side */
    struct cg_hreq *hreq; /* until the response is handed over (http/hserve.h) */
    int client_gone;
    int reply_started;
    char id[48];
    cg_endpoint ep;
    cg_api api;
    const struct cg_provider_ops *ops;
    cg_buf body_raw;
    json_t *body;
    char model[128];
    int stream;
    int client_usage; /* OpenAI: the client itself asked for stream usage */
    int64_t max_tokens;
    char anthropic_version[32];
    char anthropic_beta[256];

    /* identity and attribution */
    const cg_key_cfg *key;
    char tenant[64], user[128], segment[64], feature[64], intent[64];

    /* budgets and model changes */
    cg_reservation resv;
    char requested_model[128]; /* set when the served model was changed here */
    cg_price base_price;       /* the requested model's price: baseline cost */
    int has_base_price;
    int body_modified;     /* r->body differs from body_raw: serialise it */
    int64_t estimate_nano; /* pre-call upper bound reserved against budgets */
    int64_t baseline_nano; /* cost with no optimisation (requested model) */
    char note[256];        /* budget / fallback actions, for the ledger */

    /* tiering and attempts (stages_route.c) */
    int attempt;            /* 1, 2, ...: the ledger row key with id */
    int tier;               /* index into cfg->tiering.tiers, -1 = none */
    int routed;             /* the model was chosen by the router */
    int cascade_armed;      /* this attempt's answer is verified and may escalate */
    int added_logprobs;     /* the gateway asked for logprobs the client did not */
    int failed_over;        /* a failover to another provider was used */
    int stream_held;        /* a stream fetched whole for the cascade, replayed as SSE */
    json_t *stream_options; /* the client's, restored on an attempt that streams */
    int escalate_to;        /* set by verify: the tier the next attempt uses, -1 = none */
    cg_buf prev_resp;       /* the escalated attempt's answer, served if the next is refused */
    cg_cost prev_cost;
    char prev_model[128];

    /* admission and routing */
    const cg_provider_cfg *prov;
    const char *prov_key;
    cg_price price;
    int has_price;
    int unpriced;
    int64_t est_input_tokens; /* upper bound of input tokens (budgets, estimates) */
    int64_t predicted_input;  /* predicted prompt tokens, recorded next to the actual */
    int input_estimated;      /* the two above are set (cg_stage_estimate_input) */

    /* upstream */
    char url[1024];
    cg_up_headers up_headers; /* owned; wiped when freed (it holds the provider key) */
    cg_buf up_body;
    cg_up_call *call;
    long up_status;
    int up_sse;
    cg_buf up_resp;
    cg_sse sse;
    char fwd_name[CG_MAX_FWD_HEADERS][48];
    char fwd_val[CG_MAX_FWD_HEADERS][160];
    int n_fwd;
    cg_up_result up_res;
    char up_detail[256];
    size_t drained_bytes;
    int saw_terminal;
    int up_stream_error; /* the provider sent an error event mid-stream */
    int paused;
    struct event *drain_ev; /* bounds draining after a client disconnect */
    int ledger_ok;

    /* timing (monotonic microseconds) */
    int64_t t_start_us;
    int64_t ts_ms; /* wall clock at start */
    int64_t ttfb_us;
    int64_t latency_us;

    /* results */
    cg_usage usage;
    int usage_seen;
    int64_t out_chars;
    char served_model[128];
    cg_cost cost;
    int estimated;
    char status[32];
    int http_status;
    cg_buf out_batch; /* SSE events of one upstream read, forwarded as one chunk */
    cg_buf tail;      /* stream bytes held back until the ledger row is durable */

    /* error to return (set by a stage that fails) */
    int err_status;
    char err_type[48];
    char err_code[48];
    char err_param[64];
    char err_msg[512];
    char err_reset[32]; /* budget_exceeded: when the period resets (ISO 8601) */

    /* exact response cache (pipeline/stages_cache.c, docs/cache.md): the
     * key looked up, and what the request does with the cache */
    struct {
        int looked_up; /* the cache stage ran (first attempt only) */
        int store;     /* a miss whose final answer may be stored */
        int hit;       /* served from the cache: entry is set */
        int how;       /* a hit: CG_CACHE_HIT_EXACT | _COALESCED | _SEMANTIC (cache/exact.h) */
        int coalesced; /* ... after waiting on an identical request */
        int no_lookup; /* cache-control: no-cache (fetch and replace) */
        uint8_t key[32];
        char key_hex[65];
        char scope[1280]; /* the key's partition part (cg_cache_key_scope) */
        char perms[512];  /* canonical x-costgate-permissions ("" = none) */
        int64_t ttl_s;
        char prompt_version[128];     /* x-costgate-prompt-version */
        char *ctx_ids;                /* canonical x-costgate-context-ids (tags), heap */
        char *tags;                   /* canonical x-costgate-cache-tags, heap */
        struct cg_cache_entry *entry; /* a hit: the entry served (a reference) */
        cg_coalesce_slot *slot;       /* leader of identical in-flight misses */
        cg_coalesce_waiter waiter;    /* waiting on another request's answer */
        struct event *wait_ev;        /* bounds that wait */
        int capture_on;               /* a streamed miss: events captured for the store */
        cg_buf capture;
        int64_t saved_nano; /* a hit: what it would have cost */
    } xc;

    /* semantic cache (pipeline/stages_semantic.c): NULL unless the request
     * was eligible for a semantic lookup */
    struct cg_sem_req *sem;
} cg_req;

cg_req *cg_req_new(struct cg_worker *w, cg_gateway *gw, struct cg_hreq *hreq);
void cg_req_ref(cg_req *r);
void cg_req_unref(cg_req *r);
/* Clears what one upstream attempt left (response, usage, cost, status) and
 * counts the next attempt; identity, body and reservations are kept. */
void cg_req_next_attempt(cg_req *r);
/* Records an error for the client (the engine sends it in the API's shape); returns -1. */
int cg_req_fail(cg_req *r, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
