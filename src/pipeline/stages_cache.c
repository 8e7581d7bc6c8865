/* stages_cache: the exact response cache on the request path.
 *
 * Owns three stages and their glue (docs/cache.md):
 *   cache      (after admit)  policy (cache-control, TTL by intent and tenant,
 *                             temperature ceiling), the canonical key, the
 *                             lookup. A hit: the reservation settles at 0,
 *                             the hit's ledger row is queued, and the stage
 *                             waits for its commit (durable before release,
 *                             as the proxy's rows). A miss whose answer may
 *                             be stored leads or joins the coalescing of
 *                             identical in-flight requests.
 *   cache_hit  (next)         a hit: send the stored answer, replayed as SSE
 *                             in the API's format for a streaming request.
 *   store      (after retry)  the guarded write of the final attempt's answer;
 *                             waiters on this request are woken.
 * A hit's row: cache 'exact', zero token cost, baseline_cost = the stored
 * usage at the current price; a waiter served by the leader's answer is the
 * same plus the note "cache:coalesced". The semantic cache (the stage
 * between lookup and cache_hit, stages_semantic.c) serves its matches
 * through the same hit path (cg_stage_cache_serve): cache 'semantic', the
 * embedding's cost on its axis, the similarity and the entry matched; and
 * the store tells it about every entry written (cg_stage_semantic_stored).
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget/budget.h"
#include "budget/slo.h"
#include "cache/exact.h"
#include "cache/key.h"
#include "cache/policy.h"
#include "cache/replay.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/money.h"
#include "cost/meter.h"
#include "http/hserve.h"
#include "http/server.h"
#include "pipeline/engine.h"
#include "provider/provider.h"

#define CAPTURE_FACTOR 8 /* stream framing around the answer, at most this many times its size */
#define CTX_MAX 16384    /* canonical context ids / tags, bytes */

static const char *hdr(cg_req *r, const char *name) {
    return r->hreq ? cg_hreq_header(r->hreq, name) : NULL;
}

static void copy(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src ? src : "", cap - 1);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}
#define COPY(dst, src) copy((dst), sizeof(dst), (src))

/* A header of printable ASCII, 1..cap-1 bytes, into dst ("" when absent). */
static int take_printable(cg_req *r, const char *name, char *dst, size_t cap) {
    const char *v = hdr(r, name);
    dst[0] = '\0';
    if (!v)
        return 0;
    size_t n = strlen(v);
    int ok = n > 0 && n < cap;
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] >= 0x20 && v[i] < 0x7f;
    if (!ok)
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_header", name,
                           "Header %s must be 1 to %zu printable ASCII characters.", name, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

/* A comma-separated id list header, canonical, on the heap (NULL when absent
 * or empty). */
static int take_ids(cg_req *r, const char *name, char **out) {
    const char *v = hdr(r, name);
    *out = NULL;
    if (!v)
        return 0;
    char *buf = malloc(CTX_MAX), err[128];
    size_t n = 0;
    if (!buf)
        return cg_req_fail(r, 500, "api_error", NULL, NULL, "out of memory");
    if (cg_cache_ctx_ids(v, buf, CTX_MAX, &n, err, sizeof err) != 0) {
        free(buf);
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_header", name,
                           "Header %s is a comma-separated list of ids: %s.", name, err);
    }
    if (n == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    return 0;
}

/* x-costgate-permissions: the caller's permission context (an id list,
 * canonical: order and spaces do not matter), into r->xc.perms. */
static int take_perms(cg_req *r) {
    const char *v = hdr(r, "x-costgate-permissions");
    char err[128];
    size_t n = 0;
    r->xc.perms[0] = '\0';
    if (v && cg_cache_ctx_ids(v, r->xc.perms, sizeof r->xc.perms, &n, err, sizeof err) != 0)
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_header",
                           "x-costgate-permissions",
                           "Header x-costgate-permissions is a comma-separated list of ids (at "
                           "most %zu bytes): %s.",
                           sizeof r->xc.perms - 1, err);
    return 0;
}

static void release_slot(cg_req *r, int ok) {
    if (r->xc.slot) {
        cg_coalesce_done(r->gw->coalesce, r->xc.slot, ok);
        r->xc.slot = NULL;
    }
}

/* --- a hit ------------------------------------------------------------------ */

static void fill_hit_row(cg_req *r, const cg_cache_entry *e, cg_ledger_row *row) {
    memset(row, 0, sizeof *row);
    COPY(row->request_id, r->id);
    row->attempt = r->attempt;
    row->ts_ms = r->ts_ms;
    COPY(row->kind, r->ep == CG_EP_CHAT ? "chat" : "messages");
    COPY(row->api, r->ops->name);
    COPY(row->tenant, r->tenant);
    COPY(row->user, r->user);
    COPY(row->segment, r->segment);
    COPY(row->feature, r->feature);
    COPY(row->intent, r->intent);
    COPY(row->key_name, r->key ? r->key->name : "");
    COPY(row->provider, r->prov ? r->prov->name : "");
    COPY(row->model_requested, r->requested_model[0] ? r->requested_model : r->model);
    COPY(row->model_served, e->model[0] ? e->model : r->model);
    row->stream = r->stream;
    COPY(row->status, "ok");
    row->http_status = 200;
    row->tok_input_predicted = r->predicted_input;
    row->baseline_cost = r->baseline_nano; /* token costs stay 0 */
    row->unpriced = r->unpriced;
    COPY(row->cache, r->xc.how == CG_CACHE_HIT_SEMANTIC ? "semantic" : "exact");
    COPY(row->cache_key, r->xc.key_hex);
    COPY(row->cache_src, e->writer_id);
    row->latency_us = r->latency_us;
    if (r->xc.coalesced) {
        size_t n = strlen(r->note);
        snprintf(r->note + n, sizeof r->note - n, "%scache:coalesced", n ? " " : "");
    }
    COPY(row->note, r->note);
    /* the embedding axis, similarity, entry matched (semantic) */
    cg_stage_semantic_row(r, row);
}

static void hit_row_on_loop(void *arg) {
    cg_engine_resume((cg_req *)arg);
}

static void hit_row_done(void *arg, int ok) {
    cg_req *r = arg;
    r->ledger_ok = ok;
    cg_worker_post(r->w, hit_row_on_loop, r);
}

cg_stage_rc cg_stage_cache_serve(cg_req *r, cg_cache_entry *e, int how) {
    cg_gateway *gw = r->gw;
    r->xc.entry = e;
    r->xc.hit = 1;
    r->xc.how = how;
    r->xc.coalesced = how == CG_CACHE_HIT_COALESCED;
    r->xc.store = 0;
    r->xc.capture_on = 0;
    /* what the call would have cost: its stored usage at today's prices */
    cg_cost cost;
    int64_t saved = 0, baseline;
    if (r->has_price) {
        cg_cost_compute(&r->price, &e->usage, 0, &cost);
        saved = cost.total;
    }
    baseline = saved;
    if (r->has_base_price) {
        cg_cost_compute(&r->base_price, &e->usage, 0, &cost);
        baseline = cost.total;
    }
    memset(&r->cost, 0, sizeof r->cost);
    cg_stage_semantic_settle(r); /* an HTTP embedder's cost, on the embedding axis */
    r->baseline_nano = baseline;
    r->xc.saved_nano = saved;
    if (r->resv.n)
        cg_budget_settle(gw->budgets, &r->resv, r->cost.total);
    if (gw->slos)
        cg_slos_record(gw->slos, r->segment, r->cost.total, cg_gateway_now_ms(gw));
    cg_cache_hit(gw->cache, e, saved, how);
    COPY(r->status, "ok");
    COPY(r->served_model, e->model);
    r->http_status = 200;
    r->latency_us = cg_mono_us() - r->t_start_us;
    cg_ledger_row row;
    fill_hit_row(r, e, &row);
    if (cg_ledger_append(gw->ledger, cg_worker_id(r->w), &row) == 0) {
        r->ledger_ok = 1;
        return CG_NEXT;
    }
    if (cg_ledger_submit(gw->ledger, &row, hit_row_done, r) != 0) {
        CG_ERROR("ledger: could not queue row %s", r->id);
        return CG_NEXT;
    }
    return CG_AGAIN;
}

cg_stage_rc cg_stage_cache_hit(cg_req *r) {
    if (!r->xc.hit)
        return CG_NEXT;
    cg_cache_entry *e = r->xc.entry;
    if (!r->hreq)
        return CG_DONE;
    cg_hreq *h = r->hreq;
    cg_buf sse;
    cg_buf_init(&sse, e->body_len * 16 + (64u << 10));
    int anth = r->api == CG_API_ANTHROPIC;
    char usd[40];
    cg_money_fmt(r->cost.total, usd, sizeof usd); /* 0, or a semantic lookup's embedding */
    if (r->stream) {
        if (cg_replay_sse(anth, e->body, e->body_len, r->client_usage, &sse) != 0 ||
            cg_buf_printf(&sse, ": x-costgate-cost-usd=%s request_id=%s\n\n", usd, r->id) != 0 ||
            cg_buf_puts(&sse, cg_replay_terminal(anth)) != 0) {
            /* a stored body that does not replay: answer as an error (the row says ok) */
            cg_buf_free(&sse);
            CG_ERROR("cache: entry %.12s could not be replayed as a stream", e->key_hex);
            cg_req_fail(r, 500, "api_error", "cache_replay_failed", NULL,
                        "The cached answer could not be replayed as a stream.");
            cg_engine_send_error(r);
            return CG_DONE;
        }
        cg_hreq_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
        cg_hreq_add_header(h, "Cache-Control", "no-cache");
    } else {
        cg_hreq_add_header(h, "Content-Type", "application/json");
    }
    cg_engine_common_headers(r);
    cg_hreq_add_header(h, "x-costgate-model", e->model[0] ? e->model : r->model);
    int semantic = r->xc.how == CG_CACHE_HIT_SEMANTIC;
    cg_hreq_add_header(h, "x-costgate-cache", semantic ? "semantic" : "exact");
    if (semantic)
        cg_stage_semantic_headers(r);
    char v[48];
    long long age = (cg_cache_now(r->gw->cache) - e->created_ms) / 1000;
    char *d = v + sizeof v - 1;
    *d = '\0';
    unsigned long long a = age < 0 ? 0 : (unsigned long long)age;
    do { /* seconds, without printf on the hit path */
        *--d = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    cg_hreq_add_header(h, "x-costgate-cache-age", d);
    cg_hreq_add_header(h, "x-costgate-cost-usd", usd);
    if (r->resv.remaining >= 0 && r->gw->budgets) {
        int64_t left = r->resv.remaining + (r->resv.dry_run ? 0 : r->resv.amount);
        cg_hreq_add_header(h, "x-costgate-budget-remaining-usd",
                           cg_money_fmt(left < 0 ? 0 : left, v, sizeof v));
    }
    if (r->requested_model[0])
        cg_hreq_add_header(h, "x-costgate-downgraded-from", r->requested_model);
    /* the entry stays referenced by the request until it is freed; the reply
     * is written (or copied into the connection's queue) right here */
    if (r->stream)
        cg_hreq_reply(h, 200, sse.data, sse.len);
    else
        cg_hreq_reply(h, 200, e->body, e->body_len);
    cg_buf_free(&sse);
    r->hreq = NULL;
    return CG_DONE;
}

/* --- coalescing --------------------------------------------------------------- */

static void waiter_resume(cg_req *r, int leader_ok) {
    cg_cache *c = r->gw->cache;
    if (leader_ok) {
        cg_cache_entry *e = cg_cache_get(c, r->xc.key);
        if (e) {
            if (cg_stage_cache_serve(r, e, CG_CACHE_HIT_COALESCED) == CG_NEXT)
                cg_engine_resume(r); /* no row queued: send now */
            return;
        }
    } else {
        cg_cache_count_coalesce(c, 0, 0, 1);
    }
    /* the leader failed or its answer was not stored: go upstream alone */
    cg_cache_count_miss(c);
    cg_engine_resume(r); /* cache_hit (not a hit), then upstream */
}

static void waiter_wake_on_loop(void *arg) {
    cg_req *r = arg;
    if (r->xc.wait_ev) {
        event_free(r->xc.wait_ev);
        r->xc.wait_ev = NULL;
    }
    waiter_resume(r, r->xc.waiter.ok);
}

/* On the leader's thread. */
static void on_leader_done(cg_coalesce_waiter *w) {
    cg_req *r = w->arg;
    cg_worker_post(r->w, waiter_wake_on_loop, r);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    cg_req *r = arg;
    if (!cg_coalesce_cancel(r->gw->coalesce, &r->xc.waiter))
        return; /* the leader finished meanwhile: its wake-up is on the way */
    cg_cache_count_coalesce(r->gw->cache, 0, 1, 0);
    cg_cache_count_miss(r->gw->cache);
    cg_engine_resume(r);
}

/* 1: r waits on an identical request (resumed later); 0: go on. */
static int coalesce(cg_req *r) {
    const cg_cache_cfg *cfg = &r->gw->cfg->cache;
    if (!cfg->coalesce || !r->gw->coalesce || r->xc.no_lookup)
        return 0;
    int err = 0;
    r->xc.waiter.notify = on_leader_done;
    r->xc.waiter.arg = r;
    cg_coalesce_slot *s = cg_coalesce_join(r->gw->coalesce, r->xc.key, &r->xc.waiter, &err);
    if (s || err) {
        r->xc.slot = s; /* the leader (or alone, out of memory) */
        return 0;
    }
    cg_cache_count_coalesce(r->gw->cache, 1, 0, 0);
    r->xc.wait_ev = evtimer_new(cg_worker_base(r->w), on_wait_timeout, r);
    if (!r->xc.wait_ev) {
        /* no timer: leave at once, unless the leader's wake-up is already coming */
        if (cg_coalesce_cancel(r->gw->coalesce, &r->xc.waiter))
            return 0;
        return 1;
    }
    struct timeval tv = {(time_t)(cfg->coalesce_wait_ms / 1000),
                         (suseconds_t)(cfg->coalesce_wait_ms % 1000) * 1000};
    evtimer_add(r->xc.wait_ev, &tv);
    return 1;
}

/* --- lookup ------------------------------------------------------------------- */

cg_stage_rc cg_stage_cache(cg_req *r) {
    cg_cache *c = r->gw->cache;
    if (r->attempt > 1 && r->xc.capture_on)
        cg_buf_reset(&r->xc.capture); /* a new attempt streams its own events */
    if (!c || r->xc.looked_up || (r->ep != CG_EP_CHAT && r->ep != CG_EP_MESSAGES))
        return CG_NEXT;
    r->xc.looked_up = 1;
    const cg_cache_cfg *cfg = &r->gw->cfg->cache;
    unsigned cc = cg_cache_control(hdr(r, "cache-control"));
    int64_t ttl = cg_cache_ttl(cfg, r->tenant, r->intent);
    if ((cc & CG_CC_NO_STORE) || ttl <= 0 || !cg_cache_temperature_ok(cfg, r->body)) {
        cg_cache_count_bypass(c);
        return CG_NEXT;
    }
    if (take_printable(r, "x-costgate-prompt-version", r->xc.prompt_version,
                       sizeof r->xc.prompt_version) ||
        take_perms(r) || take_ids(r, "x-costgate-context-ids", &r->xc.ctx_ids) ||
        take_ids(r, "x-costgate-cache-tags", &r->xc.tags))
        return CG_ERROR;
    const cg_cache_tenant_cfg *tc = cg_cache_tenant(cfg, r->tenant);
    cg_cache_scope_part parts[4];
    size_t np = 0;
    /* a permissions context partitions the cache (present only when sent:
     * keys of requests without it are unchanged) */
    if (r->xc.perms[0])
        parts[np++] = (cg_cache_scope_part){"permissions", r->xc.perms};
    if (cfg->partition_by & CG_CACHE_PART_SEGMENT)
        parts[np++] = (cg_cache_scope_part){"segment", r->segment};
    if (cfg->partition_by & CG_CACHE_PART_USER)
        parts[np++] = (cg_cache_scope_part){"user", r->user};
    if (cfg->partition_by & CG_CACHE_PART_FEATURE)
        parts[np++] = (cg_cache_scope_part){"feature", r->feature};
    char scope[sizeof r->xc.scope];
    int anth = r->api == CG_API_ANTHROPIC;
    cg_cache_key_in in = {
        .scope = scope,
        .api = anth ? "anthropic.messages" : "openai.chat_completions",
        .prompt_version = r->xc.prompt_version,
        .context_ids = r->xc.ctx_ids,
        .anthropic_version = anth ? r->anthropic_version : "",
        .anthropic_beta = anth ? r->anthropic_beta : "",
        .body = r->body,
    };
    if (cg_cache_key_scope(r->tenant, tc ? tc->share_group : NULL, parts, np, scope,
                           sizeof scope) != 0 ||
        cg_cache_key(&in, r->xc.key) != 0) {
        cg_cache_count_bypass(c);
        return CG_NEXT;
    }
    COPY(r->xc.scope, scope);
    cg_cache_key_hex(r->xc.key, r->xc.key_hex);
    r->xc.ttl_s = ttl;
    r->xc.no_lookup = (cc & CG_CC_NO_CACHE) != 0;
    if (!r->xc.no_lookup) {
        cg_cache_entry *e = cg_cache_get(c, r->xc.key);
        if (e)
            return cg_stage_cache_serve(r, e, CG_CACHE_HIT_EXACT);
    }
    r->xc.store = 1;
    if (r->stream) {
        cg_buf_init(&r->xc.capture, (size_t)cfg->guard_max_bytes * CAPTURE_FACTOR);
        r->xc.capture_on = 1;
    }
    if (coalesce(r))
        return CG_AGAIN; /* resumed by the leader's wake-up or the wait's timer */
    cg_cache_count_miss(c);
    return CG_NEXT;
}

/* --- store -------------------------------------------------------------------- */

void cg_stage_cache_capture(cg_req *r, const char *data, size_t len) {
    if (cg_replay_capture(&r->xc.capture, data, len) != 0) {
        r->xc.capture_on = 0; /* too large to store: dropped */
        cg_buf_free(&r->xc.capture);
    }
}

/* Splits a canonical comma list into tags[] (pointers into s, which is
 * modified). */
static size_t split_tags(char *s, const char **tags, size_t n, size_t cap) {
    while (s && *s && n < cap) {
        tags[n++] = s;
        s = strchr(s, ',');
        if (s)
            *s++ = '\0';
    }
    return n;
}

static cg_guard_reason store(cg_req *r) {
    cg_gateway *gw = r->gw;
    cg_cache *c = gw->cache;
    int anth = r->api == CG_API_ANTHROPIC;
    if (r->client_gone || r->up_res != CG_UP_OK || r->up_status != 200 || r->up_stream_error ||
        strcmp(r->status, "ok") != 0 || (r->up_sse && !r->saw_terminal))
        return CG_GUARD_STATUS;
    if (r->usage_seen != 2 || r->estimated)
        return CG_GUARD_NO_USAGE;
    cg_buf rebuilt;
    cg_buf_init(&rebuilt, (size_t)gw->cfg->cache.guard_max_bytes + 1);
    const char *body = r->up_resp.data;
    size_t len = r->up_resp.len;
    cg_guard_reason why = CG_GUARD_OK;
    cg_cache_entry *e = NULL;
    if (r->up_sse) {
        if (!r->xc.capture_on) {
            why = CG_GUARD_TOO_LARGE;
            goto out;
        }
        if (cg_replay_rebuild(anth, r->xc.capture.data, r->xc.capture.len, &rebuilt) != 0) {
            why = rebuilt.len >= rebuilt.max ? CG_GUARD_TOO_LARGE : CG_GUARD_INVALID;
            goto out;
        }
        body = rebuilt.data;
        len = rebuilt.len;
    }
    if (!body || !len) {
        why = CG_GUARD_INVALID;
        goto out;
    }
    if ((int64_t)len > gw->cfg->cache.guard_max_bytes) {
        why = CG_GUARD_TOO_LARGE;
        goto out;
    }
    why = cg_cache_guard_check(cg_cache_guard_of(c), anth, body, len);
    if (why != CG_GUARD_OK)
        goto out;
    const char *tags[CG_CACHE_TAGS_MAX];
    size_t nt = split_tags(r->xc.ctx_ids, tags, 0, CG_CACHE_TAGS_MAX);
    nt = split_tags(r->xc.tags, tags, nt, CG_CACHE_TAGS_MAX);
    const cg_cache_tenant_cfg *tc = cg_cache_tenant(&gw->cfg->cache, r->tenant);
    cg_cache_entry_meta meta = {
        .tenant = r->tenant,
        .share_group = tc ? tc->share_group : "",
        .model = r->served_model[0] ? r->served_model : r->model,
        .intent = r->intent,
        .prompt_version = r->xc.prompt_version,
        .writer_id = r->id,
    };
    e = cg_cache_entry_new(r->xc.key, body, len, tags, nt, &meta);
    if (!e) {
        why = CG_GUARD_INVALID;
        goto out;
    }
    e->api = r->api;
    e->usage = r->usage;
    e->created_ms = cg_cache_now(c);
    e->expires_ms = e->created_ms + r->xc.ttl_s * 1000;
    if (cg_cache_put(c, e) != 0)
        why = CG_GUARD_TOO_LARGE;
    else
        cg_stage_semantic_stored(r, r->xc.key); /* its query joins the semantic index */
out:
    cg_buf_free(&rebuilt);
    return why;
}

cg_stage_rc cg_stage_store(cg_req *r) {
    if (!r->xc.store || r->xc.hit || !r->gw->cache) {
        release_slot(r, 0);
        return CG_NEXT;
    }
    r->xc.store = 0;
    cg_guard_reason why = store(r);
    if (why != CG_GUARD_OK)
        cg_cache_count_reject(r->gw->cache, why);
    cg_buf_free(&r->xc.capture);
    r->xc.capture_on = 0;
    release_slot(r, why == CG_GUARD_OK);
    return CG_NEXT;
}

void cg_stage_cache_finish(cg_req *r) {
    release_slot(r, 0);
}

void cg_stage_cache_free(cg_req *r) {
    release_slot(r, 0);
    if (r->xc.wait_ev)
        event_free(r->xc.wait_ev);
    if (r->xc.entry)
        cg_cache_entry_release(r->xc.entry);
    free(r->xc.ctx_ids);
    free(r->xc.tags);
    cg_buf_free(&r->xc.capture);
}
