/* stages_proxy: the provider call and what follows it: upstream (stream
 * through as bytes arrive), settle (usage -> cost -> ledger, made durable
 * before the client gets the end of its response) and respond.
 *
 * Every exit settles: normal end, upstream error, timeout, cut stream and
 * client disconnect (the upstream is drained, bounded in time and bytes, to
 * read the usage; failing that the cost is estimated and flagged).
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "budget/budget.h"
#include "core/clock.h"
#include "budget/slo.h"
#include "core/log.h"
#include "core/money.h"
#include "http/hserve.h"
#include "http/server.h"
#include "obs/metrics.h"
#include "pipeline/engine.h"
#include "provider/provider.h"

#define CLIENT_HIGH_WATER (1u << 20)
#define ERROR_BODY_MAX (1u << 20)

/* Response headers passed on to the client: names with their lengths, so
 * each upstream header costs a length compare and, rarely, one strncasecmp. */
typedef struct hname {
    const char *s;
    size_t n;
} hname;
#define HNAME(lit)                                                                                 \
    { lit, sizeof lit - 1 }

static int forwardable(const char *name, size_t n) {
    static const hname exact[] = {HNAME("retry-after"),    HNAME("retry-after-ms"),
                                  HNAME("request-id"),     HNAME("x-request-id"),
                                  HNAME("openai-version"), HNAME("openai-processing-ms")};
    static const hname prefix[] = {HNAME("x-ratelimit-"), HNAME("anthropic-ratelimit-")};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (exact[i].n == n && strncasecmp(name, exact[i].s, n) == 0)
            return 1;
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (n > prefix[i].n && strncasecmp(name, prefix[i].s, prefix[i].n) == 0)
            return 1;
    return 0;
}

static void on_up_header(void *arg, const char *name, size_t nlen, const char *val, size_t vlen) {
    cg_req *r = arg;
    if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0) {
        r->up_sse = vlen >= 17 && strncasecmp(val, "text/event-stream", 17) == 0;
        return;
    }
    if (r->n_fwd >= CG_MAX_FWD_HEADERS || !forwardable(name, nlen) ||
        nlen >= sizeof r->fwd_name[0] || vlen >= sizeof r->fwd_val[0])
        return;
    memcpy(r->fwd_name[r->n_fwd], name, nlen);
    r->fwd_name[r->n_fwd][nlen] = '\0';
    memcpy(r->fwd_val[r->n_fwd], val, vlen);
    r->fwd_val[r->n_fwd][vlen] = '\0';
    r->n_fwd++;
}

static void on_up_headers_done(void *arg, long status) {
    cg_req *r = arg;
    r->up_status = status;
    if (r->call && !r->ttfb_us)
        r->ttfb_us = cg_upstream_ttfb_us(r->call);
    if (status < 200 || status >= 300) {
        r->up_sse = 0; /* error bodies are JSON, read whole */
        r->up_resp.max = ERROR_BODY_MAX;
    }
}

/* The budget and SLO actions among the ledger note's space-separated
 * items (budget_downgrade:, slo_fallback:, budget_dry_run:), into out; the
 * note's other items (tier reasons, cache and semantic notes) are not
 * budget actions and stay in the ledger only. Returns the length. */
static size_t budget_actions(const char *note, char *out, size_t cap) {
    static const char *const kinds[] = {"budget_downgrade:", "slo_fallback:", "budget_dry_run:"};
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = note; *p;) {
        /* every kind starts with 'b' or 's': other items (tier:, escalate:, ...)
         * are stepped over without measuring or comparing them */
        if (*p == 'b' || *p == 's') {
            size_t len = strcspn(p, " ");
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                size_t kl = strlen(kinds[k]);
                if (len > kl && strncmp(p, kinds[k], kl) == 0 && n + len + 2 <= cap) {
                    if (n)
                        out[n++] = ' ';
                    memcpy(out + n, p, len);
                    n += len;
                    out[n] = '\0';
                    break;
                }
            }
            p += len;
        } else {
            p = strchrnul(p, ' ');
        }
        while (*p == ' ')
            p++;
    }
    return n;
}

/* Budget state for the client: what is left (after this request's
 * reservation, or its actual cost once settled) and any action taken. */
static void budget_headers(cg_req *r, cg_hreq *h) {
    if (r->resv.remaining >= 0 && r->gw->budgets) {
        int64_t left = r->resv.remaining;
        /* settled: the reservation became the actual cost; a dry run breached
         * a limit, so what is left there stays 0 */
        if (r->resv.n == 0 && !r->resv.dry_run)
            left += r->resv.amount - r->cost.total;
        char usd[40];
        cg_hreq_add_header(h, "x-costgate-budget-remaining-usd",
                           cg_money_fmt(left < 0 ? 0 : left, usd, sizeof usd));
    }
    if (r->requested_model[0])
        cg_hreq_add_header(h, "x-costgate-downgraded-from", r->requested_model);
    char acts[sizeof r->note];
    if (budget_actions(r->note, acts, sizeof acts) > 0)
        cg_hreq_add_header(h, "x-costgate-budget-action", acts);
}

static void add_out_headers(cg_req *r, const char *content_type) {
    cg_hreq *h = r->hreq;
    cg_hreq_add_header(h, "Content-Type", content_type);
    for (int i = 0; i < r->n_fwd; i++)
        cg_hreq_add_header(h, r->fwd_name[i], r->fwd_val[i]);
    cg_engine_common_headers(r);
    cg_hreq_add_header(h, "x-costgate-model", r->served_model[0] ? r->served_model : r->model);
    if (r->tier >= 0)
        cg_hreq_add_header(h, "x-costgate-tier", r->gw->cfg->tiering.tiers[r->tier].name);
    cg_hreq_add_header(h, "x-costgate-cache", "miss");
    budget_headers(r, h);
}

static void on_client_drained(void *arg) {
    cg_req *r = arg;
    if (r->paused && r->call) {
        r->paused = 0;
        cg_upstream_resume(r->call);
    }
}

static void send_chunk(cg_req *r, const char *p, size_t n) {
    if (r->client_gone || !r->hreq || n == 0)
        return;
    if (!r->reply_started) {
        add_out_headers(r, "text/event-stream; charset=utf-8");
        cg_hreq_add_header(r->hreq, "Cache-Control", "no-cache");
        /* accepted sockets inherit TCP_NODELAY from the listener (server.c):
         * small stream events are never held back by Nagle */
        cg_hreq_on_drain(r->hreq, on_client_drained, r);
        cg_hreq_start(r->hreq, 200);
        r->reply_started = 1;
    }
    cg_hreq_chunk(r->hreq, p, n);
}

static int on_sse_event(void *arg, const cg_sse_event *ev) {
    cg_req *r = arg;
    int forward = 1, terminal = 0;
    if (r->xc.capture_on)
        cg_stage_cache_capture(r, ev->data, ev->data_len);
    r->ops->on_event(r, ev, &forward, &terminal);
    if (terminal) {
        r->saw_terminal = 1;
        cg_buf_append(&r->tail, ev->raw, ev->raw_len); /* released after the ledger commit */
        return 0;
    }
    if (forward && !r->client_gone)
        cg_buf_append(&r->out_batch, ev->raw, ev->raw_len); /* sent once per upstream read */
    return 0;
}

static int client_backlogged(cg_req *r) {
    if (r->client_gone || !r->hreq)
        return 0;
    return cg_hreq_unsent(r->hreq) > CLIENT_HIGH_WATER;
}

static int on_up_data(void *arg, const char *p, size_t n) {
    cg_req *r = arg;
    if (r->client_gone) {
        r->drained_bytes += n;
        if (r->drained_bytes > r->gw->cfg->drain_max_bytes)
            return CG_UP_ABORT;
    }
    if (!r->up_sse)
        return cg_buf_append(&r->up_resp, p, n) == 0 ? CG_UP_CONTINUE : CG_UP_ABORT;
    if (client_backlogged(r)) {
        r->paused = 1; /* resumed by on_client_drained */
        return CG_UP_PAUSE;
    }
    int rc = cg_sse_feed(&r->sse, p, n, on_sse_event, r);
    if (r->out_batch.len) {
        send_chunk(r, r->out_batch.data, r->out_batch.len);
        cg_buf_reset(&r->out_batch);
    }
    return rc == 0 ? CG_UP_CONTINUE : CG_UP_ABORT;
}

static void on_up_done(void *arg, cg_up_result res, const char *detail) {
    cg_req *r = arg;
    r->call = NULL;
    r->up_res = res;
    cg_strlcpy(r->up_detail, detail, sizeof r->up_detail);
    if (r->drain_ev)
        evtimer_del(r->drain_ev);
    cg_engine_resume(r);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_req *r = arg;
    if (!r->call)
        return;
    cg_upstream_cancel(r->call);
    r->call = NULL;
    r->up_res = CG_UP_ABORTED;
    snprintf(r->up_detail, sizeof r->up_detail, "drain deadline after client disconnect");
    cg_engine_resume(r);
}

/* The client left before its response ended: keep reading the upstream
 * (bounded by drain_ms and drain_max_bytes) to learn the usage. */
static void client_left(cg_req *r) {
    if (r->client_gone || r->finished)
        return;
    r->client_gone = 1;
    cg_metrics_client_disconnect(r->gw->metrics);
    if (!r->call)
        return;
    if (!r->drain_ev)
        r->drain_ev = evtimer_new(cg_worker_base(r->w), on_drain_deadline, r);
    if (r->drain_ev) {
        int ms = r->gw->cfg->drain_timeout_ms;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(r->drain_ev, &tv);
    }
    if (r->paused) {
        r->paused = 0;
        cg_upstream_resume(r->call);
    }
}

/* The client closed its socket (EOF, reset, or a write that failed or
 * timed out) before its response ended. As in nginx, a half-close counts
 * as leaving. */
static void on_client_close(void *arg) {
    client_left((cg_req *)arg);
}

/* Whether this call records the pre-call input prediction although nothing
 * needs it before the call (budgets make it at admission, a call with no
 * usage makes it at settle): 1 call in ledger.predict_every per worker,
 * enough for `costgate report --predictions` without a tokenizer pass on
 * every request. */
static int predict_due(const cg_req *r) {
    static _Thread_local unsigned calls;
    int every = r->gw->cfg->ledger_predict_every;
    if (every <= 1)
        return every == 1;
    return ++calls % (unsigned)every == 0;
}

cg_stage_rc cg_stage_upstream(cg_req *r) {
    if (predict_due(r))
        cg_stage_estimate_input(r); /* unless admission made it */
    if (r->ops->build(r) != 0)
        return CG_ERROR;
    const cg_config *c = r->gw->cfg;
    cg_up_opts o = {
        .url = r->url,
        .headers = &r->up_headers,
        .body = r->up_body.data,
        .body_len = r->up_body.len,
        .ca_file = r->prov && r->prov->ca_file[0] ? r->prov->ca_file : NULL,
        .connect_timeout_ms = c->connect_timeout_ms,
        .first_byte_timeout_ms = c->first_byte_timeout_ms,
        .idle_timeout_ms = c->idle_timeout_ms,
    };
    static const cg_up_callbacks cb = {
        .on_header = on_up_header,
        .on_headers_done = on_up_headers_done,
        .on_data = on_up_data,
        .on_done = on_up_done,
    };
    r->call = cg_upstream_start(cg_worker_upstream(r->w), &o, &cb, r);
    if (!r->call) {
        cg_req_fail(r, 500, "api_error", NULL, NULL, "could not start the upstream call");
        return CG_ERROR;
    }
    if (r->hreq) {
        if (cg_hreq_client_gone(r->hreq))
            client_left(r);
        else
            cg_hreq_on_close(r->hreq, on_client_close, r);
    }
    return CG_AGAIN;
}

/* --- settle --------------------------------------------------------------- */

static void estimate_usage(cg_req *r, cg_usage *u) {
    cg_stage_estimate_input(r); /* made now if the call was not sampled */
    *u = r->usage;
    if (r->ep == CG_EP_EMBEDDINGS) {
        if (!(u->have & CG_USAGE_HAVE_EMBED))
            u->embedding = r->est_input_tokens;
        return;
    }
    if (!(u->have & CG_USAGE_HAVE_INPUT))
        u->input = r->est_input_tokens;
    int64_t out_est = (r->out_chars + 3) / 4;
    if (u->output < out_est)
        u->output = out_est;
    if (u->output == 0 && r->up_status != 0)
        u->output = 1; /* something was generated; never price a billed call at zero */
}

/* Bounded string copy into a fixed row field (truncates, always ends). */
static void copy_field(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
#define COPY(dst, src) copy_field((dst), sizeof(dst), (src))

static void fill_row(cg_req *r, cg_ledger_row *row) {
    memset(row, 0, sizeof *row);
    COPY(row->request_id, r->id);
    row->attempt = r->attempt;
    if (r->tier >= 0)
        COPY(row->tier, r->gw->cfg->tiering.tiers[r->tier].name);
    row->ts_ms = r->ts_ms;
    COPY(row->kind, r->ep == CG_EP_CHAT       ? "chat"
                    : r->ep == CG_EP_MESSAGES ? "messages"
                                              : "embeddings");
    COPY(row->api, r->ops->name);
    COPY(row->tenant, r->tenant);
    COPY(row->user, r->user);
    COPY(row->segment, r->segment);
    COPY(row->feature, r->feature);
    COPY(row->intent, r->intent);
    COPY(row->key_name, r->key ? r->key->name : "");
    COPY(row->provider, r->prov ? r->prov->name : "");
    COPY(row->model_requested, r->requested_model[0] ? r->requested_model : r->model);
    COPY(row->model_served, r->served_model[0] ? r->served_model : r->model);
    row->stream = r->stream;
    COPY(row->status, r->status);
    row->http_status = r->http_status;
    row->upstream_status = (int)r->up_status;
    const cg_usage *u = &r->usage;
    row->tok_input_predicted = r->predicted_input;
    row->tok_input = u->input;
    row->tok_cached_read = u->cached_read;
    row->tok_cache_write_5m = u->cache_write_5m;
    row->tok_cache_write_1h = u->cache_write_1h;
    row->tok_output = u->output;
    row->tok_reasoning = u->reasoning;
    row->tok_embedding = u->embedding;
    row->web_searches = u->web_searches;
    row->cost_input = r->cost.input;
    row->cost_output = r->cost.output;
    row->cost_embedding = r->cost.embedding;
    row->cost_external_api = r->cost.external_api;
    row->cost_storage_compute = r->cost.storage_compute;
    row->cost_total = r->cost.total;
    row->baseline_cost = r->baseline_nano;
    row->estimated = r->estimated;
    row->unpriced = r->unpriced;
    snprintf(row->cache, sizeof row->cache, "miss");
    COPY(row->cache_key, r->xc.key_hex);
    row->latency_us = r->latency_us;
    row->ttfb_us = r->ttfb_us;
    COPY(row->error, r->up_detail);
    COPY(row->note, r->note);
    cg_stage_semantic_row(r, row); /* similarity, embedding tokens, notes */
}

static void ledger_done_on_loop(void *arg) {
    cg_engine_resume((cg_req *)arg);
}

static void ledger_done(void *arg, int ok) {
    cg_req *r = arg;
    r->ledger_ok = ok; /* read only after the post below hands r back to its loop */
    cg_worker_post(r->w, ledger_done_on_loop, r);
}

/* The HTTP status the client gets (or got) for this outcome. */
static int client_status(cg_req *r) {
    if (r->reply_started)
        return 200;
    if (r->up_status >= 200 && r->up_res == CG_UP_OK)
        return (int)r->up_status;
    switch (r->up_res) {
    case CG_UP_TIMEOUT_FIRST:
    case CG_UP_TIMEOUT_IDLE:
        return 504;
    default:
        return 502;
    }
}

cg_stage_rc cg_stage_settle(cg_req *r) {
    r->latency_us = cg_mono_us() - r->t_start_us;
    int up2xx = r->up_status >= 200 && r->up_status < 300;
    if (up2xx && !r->up_sse && r->up_resp.len &&
        cg_provider_fast_usage(r, r->up_resp.data, r->up_resp.len) != 0) {
        json_t *j = json_loadb(r->up_resp.data, r->up_resp.len, 0, NULL);
        if (j)
            r->ops->on_body(r, j);
        json_decref(j);
    }
    /* billed: the provider accepted the call (2xx), or it may have: the
     * request was sent and no answer came (first-byte timeout, or the drain
     * after a client disconnect gave up before the response headers) */
    int billed = up2xx || (r->up_status == 0 &&
                           (r->up_res == CG_UP_TIMEOUT_FIRST || r->up_res == CG_UP_ABORTED));
    if (r->client_gone)
        snprintf(r->status, sizeof r->status, "client_disconnected");
    else if (r->up_res == CG_UP_TIMEOUT_FIRST || r->up_res == CG_UP_TIMEOUT_IDLE)
        snprintf(r->status, sizeof r->status, "timeout");
    else if (r->up_res == CG_UP_CONNECT_FAILED)
        snprintf(r->status, sizeof r->status, "connect_failed");
    else if (r->up_res == CG_UP_BROKEN || r->up_res == CG_UP_ABORTED)
        snprintf(r->status, sizeof r->status, "cut");
    else if (!up2xx)
        snprintf(r->status, sizeof r->status, "upstream_error");
    else if (r->up_stream_error)
        snprintf(r->status, sizeof r->status, "upstream_error");
    else if (r->up_sse && !r->saw_terminal)
        snprintf(r->status, sizeof r->status, "cut");

    memset(&r->cost, 0, sizeof r->cost);
    if (billed) {
        if (r->usage_seen != 2) {
            cg_usage est;
            estimate_usage(r, &est);
            r->usage = est;
            r->estimated = 1;
        }
        if (r->has_price)
            cg_cost_compute(&r->price, &r->usage, 0, &r->cost);
    } else {
        memset(&r->usage, 0, sizeof r->usage);
    }
    /* baseline: the same usage at the requested model's price (a downgrade
     * or SLO fallback saved the difference) */
    r->baseline_nano = r->cost.total;
    if (billed && r->has_base_price) {
        cg_cost base;
        cg_cost_compute(&r->base_price, &r->usage, 0, &base);
        r->baseline_nano = base.total;
    }
    cg_stage_semantic_settle(r); /* a semantic lookup's embedding (not in the baseline) */
    if (r->resv.n)
        cg_budget_settle(r->gw->budgets, &r->resv, r->cost.total);
    if (r->gw->slos && billed) {
        cg_slos_record(r->gw->slos, r->segment, r->cost.total, cg_gateway_now_ms(r->gw));
    }
    r->http_status = r->client_gone ? 499 : client_status(r);
    cg_metrics_upstream_latency(r->gw->metrics, r->latency_us, r->ttfb_us);
    if (billed)
        cg_metrics_settle(r->gw->metrics, r->served_model[0] ? r->served_model : r->model,
                          &r->usage, &r->cost, r->estimated, r->unpriced);
    cg_ledger_row row;
    fill_row(r, &row);
    /* spooled: the row survives a crash from here on, so the answer goes
     * out now; a full spool waits for the commit instead */
    if (cg_ledger_append(r->gw->ledger, cg_worker_id(r->w), &row) == 0) {
        r->ledger_ok = 1;
        return CG_NEXT;
    }
    if (cg_ledger_submit(r->gw->ledger, &row, ledger_done, r) != 0) {
        CG_ERROR("ledger: could not queue row %s", r->id);
        return CG_NEXT;
    }
    return CG_AGAIN;
}

/* --- respond -------------------------------------------------------------- */

static void cost_header(cg_req *r) {
    char usd[40];
    cg_money_fmt(r->cost.total, usd, sizeof usd);
    cg_hreq_add_header(r->hreq, "x-costgate-cost-usd", usd);
    if (r->estimated)
        cg_hreq_add_header(r->hreq, "x-costgate-cost-estimated", "true");
}

cg_stage_rc cg_stage_respond(cg_req *r) {
    if (!r->hreq)
        return CG_DONE;
    if (r->reply_started) {
        cg_buf end;
        cg_buf_init(&end, 1u << 20);
        if (!r->saw_terminal && !r->up_stream_error) {
            char msg[384];
            snprintf(msg, sizeof msg, "The upstream stream ended early (%s).",
                     r->up_detail[0] ? r->up_detail : "no end event");
            r->ops->stream_error(&end, "api_error", msg);
        }
        char usd[40];
        cg_money_fmt(r->cost.total, usd, sizeof usd);
        /* an SSE comment: SDKs ignore it, curl users see the cost */
        cg_buf_printf(&end, ": x-costgate-cost-usd=%s%s request_id=%s\n\n", usd,
                      r->estimated ? " estimated=true" : "", r->id);
        cg_buf_append(&end, r->tail.data, r->tail.len);
        /* the tail and the end of the chunked body in one send */
        cg_hreq_end_with(r->hreq, r->client_gone ? NULL : end.data, r->client_gone ? 0 : end.len);
        cg_buf_free(&end);
        r->hreq = NULL;
        return CG_DONE;
    }
    if (r->client_gone && r->up_sse) {
        /* the stream went to nobody (a client that only half-closed still
         * reads this); its events were parsed, not kept, so no body to send */
        cg_req_fail(r, 499, "api_error", "client_closed", NULL,
                    "The client closed its connection before the stream started; the "
                    "upstream stream was drained to settle its cost.");
        cg_engine_send_error(r);
        return CG_DONE;
    }
    int status = client_status(r);
    if (r->stream_held && r->up_status >= 200 && r->up_status < 300 && r->up_res == CG_UP_OK) {
        cg_buf sse;
        cg_buf_init(&sse, r->up_resp.len * 16 + (64u << 10));
        if (cg_route_held_sse(r, &sse) == 0) {
            add_out_headers(r, "text/event-stream; charset=utf-8");
            cg_hreq_add_header(r->hreq, "Cache-Control", "no-cache");
            cg_hreq_reply(r->hreq, 200, sse.data, sse.len);
            r->hreq = NULL;
            cg_buf_free(&sse);
            return CG_DONE;
        }
        cg_buf_free(&sse);
        cg_req_fail(r, 502, "api_error", "upstream_error", NULL,
                    "The answer could not be replayed as a stream.");
        cg_engine_send_error(r);
        return CG_DONE;
    }
    if (r->up_status >= 200 && r->up_res == CG_UP_OK) {
        add_out_headers(r, "application/json");
        cost_header(r);
        cg_hreq_reply(r->hreq, status, r->up_resp.data, r->up_resp.len);
        r->hreq = NULL;
        return CG_DONE;
    }
    const char *what = r->up_res == CG_UP_TIMEOUT_FIRST    ? "did not answer in time"
                       : r->up_res == CG_UP_TIMEOUT_IDLE   ? "stalled mid-response"
                       : r->up_res == CG_UP_CONNECT_FAILED ? "could not be reached"
                                                           : "broke off the response";
    cg_req_fail(r, status, r->api == CG_API_ANTHROPIC ? "api_error" : "api_error",
                status == 504 ? "upstream_timeout" : "upstream_error", NULL,
                "The upstream provider '%s' %s (%s).", r->prov ? r->prov->name : "?", what,
                r->up_detail[0] ? r->up_detail : "no detail");
    cost_header(r);
    cg_engine_send_error(r);
    return CG_DONE;
}
