/* request: lifetime of cg_req (see request.h). */
#include "pipeline/request.h"
#include "core/clock.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/hserve.h"
#include "http/server.h"
#include "http/upstream.h"
#include "pipeline/engine.h"

#define SSE_EVENT_MAX (4u << 20)
#define TAIL_MAX (64u << 10)
#define UP_RESP_MAX (64u << 20)

/* Freed requests are kept per thread for reuse, up to REQ_POOL_MAX: a
 * cg_req is about 10 KB and calloc'ing it was ~13k instructions a request
 * (bench/profile.sh), zeroing a reused one a few hundred. Not in sanitizer
 * builds, where reuse would hide a use after free. */
#if defined(__SANITIZE_ADDRESS__)
#define REQ_POOL_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_POOL_MAX 0
#endif
#endif
#ifndef REQ_POOL_MAX
#define REQ_POOL_MAX 64
#endif

typedef struct req_pool {
    void *head; /* each free block starts with the next one's address */
    int n;
} req_pool;

static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_pool_key;
static int g_pool_ok;

static void pool_destroy(void *p) {
    req_pool *rp = p;
    while (rp->head) {
        void *next;
        memcpy(&next, rp->head, sizeof next);
        free(rp->head);
        rp->head = next;
    }
    free(rp);
}

static void pool_init(void) {
    g_pool_ok = pthread_key_create(&g_pool_key, pool_destroy) == 0;
}

static req_pool *pool_get(void) {
    if (REQ_POOL_MAX == 0)
        return NULL;
    pthread_once(&g_pool_once, pool_init);
    if (!g_pool_ok)
        return NULL;
    req_pool *rp = pthread_getspecific(g_pool_key);
    if (!rp && (rp = calloc(1, sizeof *rp)) != NULL && pthread_setspecific(g_pool_key, rp) != 0) {
        free(rp);
        rp = NULL;
    }
    return rp;
}

static cg_req *req_alloc(void) {
    req_pool *rp = pool_get();
    if (!rp || !rp->head)
        return calloc(1, sizeof(cg_req));
    void *b = rp->head;
    memcpy(&rp->head, b, sizeof rp->head);
    rp->n--;
    memset(b, 0, sizeof(cg_req));
    return b;
}

static void req_release(cg_req *r) {
    req_pool *rp = pool_get();
    if (!rp || rp->n >= REQ_POOL_MAX) {
        free(r);
        return;
    }
    memcpy((void *)r, &rp->head, sizeof rp->head);
    rp->head = r;
    rp->n++;
}

cg_req *cg_req_new(struct cg_worker *w, cg_gateway *gw, struct cg_hreq *hreq) {
    cg_req *r = req_alloc();
    if (!r)
        return NULL;
    r->w = w;
    r->gw = gw;
    r->resv.remaining = -1;
    r->attempt = 1;
    r->tier = -1;
    r->escalate_to = -1;
    cg_buf_init(&r->prev_resp, UP_RESP_MAX);
    r->refs = 1;
    r->hreq = hreq;
    r->t_start_us = cg_mono_us();
    r->ts_ms = cg_wall_ms();
    cg_worker_new_id(w, r->ts_ms, r->id); /* ids sort by ts_ms */
    cg_buf_init(&r->body_raw, gw->cfg->max_body_bytes);
    cg_buf_init(&r->up_body, gw->cfg->max_body_bytes + 4096);
    cg_buf_init(&r->up_resp, UP_RESP_MAX);
    cg_buf_init(&r->tail, TAIL_MAX);
    cg_buf_init(&r->out_batch, SSE_EVENT_MAX * 2);
    cg_sse_init(&r->sse, SSE_EVENT_MAX);
    snprintf(r->status, sizeof r->status, "ok");
    return r;
}

void cg_req_ref(cg_req *r) {
    r->refs++;
}

void cg_req_unref(cg_req *r) {
    if (--r->refs > 0)
        return;
    if (r->call)
        cg_upstream_cancel(r->call);
    if (r->drain_ev)
        event_free(r->drain_ev);
    if (r->hreq) /* never answered (a bug elsewhere): close, do not leak */
        cg_hreq_abandon(r->hreq);
    cg_stage_cache_free(r);
    cg_stage_semantic_free(r);
    json_decref(r->body);
    json_decref(r->stream_options);
    cg_up_headers_free(&r->up_headers);
    cg_buf_free(&r->body_raw);
    cg_buf_free(&r->up_body);
    cg_buf_free(&r->up_resp);
    cg_buf_free(&r->prev_resp);
    cg_buf_free(&r->tail);
    cg_buf_free(&r->out_batch);
    cg_sse_free(&r->sse);
    req_release(r);
}

void cg_req_next_attempt(cg_req *r) {
    cg_up_headers_free(&r->up_headers);
    cg_buf_reset(&r->up_body);
    r->up_status = 0;
    r->up_sse = 0;
    cg_buf_reset(&r->up_resp);
    r->up_resp.max = UP_RESP_MAX;
    cg_sse_free(&r->sse);
    cg_sse_init(&r->sse, SSE_EVENT_MAX);
    r->n_fwd = 0;
    r->up_res = CG_UP_OK;
    r->up_detail[0] = '\0';
    r->drained_bytes = 0;
    r->saw_terminal = 0;
    r->up_stream_error = 0;
    r->paused = 0;
    memset(&r->usage, 0, sizeof r->usage);
    r->usage_seen = 0;
    r->input_estimated = 0; /* the next attempt's model is estimated again */
    r->out_chars = 0;
    r->served_model[0] = '\0';
    memset(&r->cost, 0, sizeof r->cost);
    r->estimated = 0;
    snprintf(r->status, sizeof r->status, "ok");
    r->http_status = 0;
    cg_buf_reset(&r->out_batch);
    cg_buf_reset(&r->tail);
    r->ttfb_us = 0;
    r->ledger_ok = 0;
    r->estimate_nano = 0;
    r->cascade_armed = 0;
    r->attempt++;
}

int cg_req_fail(cg_req *r, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) {
    r->err_status = status;
    snprintf(r->err_type, sizeof r->err_type, "%s", type ? type : "api_error");
    snprintf(r->err_code, sizeof r->err_code, "%s", code ? code : "");
    snprintf(r->err_param, sizeof r->err_param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
    va_end(ap);
    return -1;
}
