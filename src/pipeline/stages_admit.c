/* stages_admit: admission. Prices the request before the call and enforces
 * budgets and cost SLOs on that price.
 *
 * Owns: the model's price (unknown model: 400 unless allowed), the pre-call
 * upper-bound estimate in nano-USD (input at the highest input-side rate,
 * plus the output bound at the output rate), SLO fallback to the cheapest
 * model, and the budget reservation with its actions: reject (400
 * cost_limit_exceeded per query, 402 budget_exceeded per period), downgrade
 * to a cheaper configured model that fits, or dry_run (admit and flag).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "budget/budget.h"
#include "budget/slo.h"
#include "core/money.h"
#include "obs/metrics.h"
#include "pipeline/engine.h"
#include "provider/provider.h"
#include "route/router.h"
#include "tokenize/estimate.h"

#define DEFAULT_OUTPUT_BOUND 4096 /* tokens, when neither request nor price table bounds it */
/* An estimate saturates here (~$2.25M) rather than wrap: reservations of
 * this size still fit int64 sums thousands at a time. */
#define ESTIMATE_MAX (INT64_MAX / 4096)

static int set_price(cg_req *r) {
    const cg_price *p = cg_prices_find(r->gw->prices, r->model);
    r->has_price = 0;
    r->unpriced = 0;
    if (p) {
        cg_price_effective(p, &r->price);
        r->has_price = 1;
        return 0;
    }
    if (r->gw->cfg->allow_unpriced) {
        r->unpriced = 1;
        return 0;
    }
    return cg_req_fail(r, 400, "invalid_request_error", "model_not_priced", "model",
                       "Model '%s' has no price in costgate's price table, so its cost cannot be "
                       "metered. Add it under pricing.models in the config, or set "
                       "pricing.unknown_model: allow.",
                       r->model);
}

/* The most this request can cost: every input token at the dearest
 * input-side rate (a cache write can cost 2x input), and the output bound
 * for each of OpenAI's n choices. */
static int64_t upper_bound(const cg_req *r) {
    if (!r->has_price)
        return 0;
    const cg_price *p = &r->price;
    if (r->ep == CG_EP_EMBEDDINGS)
        return cg_money_femto_to_nano(cg_money_tok_femto(r->est_input_tokens, p->input));
    int64_t in_rate = p->input;
    if (p->cache_write_5m > in_rate)
        in_rate = p->cache_write_5m;
    if (p->cache_write_1h > in_rate)
        in_rate = p->cache_write_1h;
    int64_t out = r->max_tokens > 0          ? r->max_tokens
                  : p->max_output_tokens > 0 ? p->max_output_tokens
                                             : DEFAULT_OUTPUT_BOUND;
    json_t *n = r->ep == CG_EP_CHAT ? json_object_get(r->body, "n") : NULL;
    if (json_is_integer(n) && json_integer_value(n) > 1)
        out = out > INT64_MAX / json_integer_value(n) ? INT64_MAX : out * json_integer_value(n);
    __int128 f =
        cg_money_tok_femto(r->est_input_tokens, in_rate) + cg_money_tok_femto(out, p->output);
    return f >= (__int128)ESTIMATE_MAX * 1000000 ? ESTIMATE_MAX : cg_money_femto_to_nano(f);
}

/* Serves `model` instead of the requested one, if a provider of this API
 * serves it and it has a price. The requested model's price stays the
 * baseline. 0, or -1 with nothing changed. */
static int switch_model(cg_req *r, const char *model, const char *why) {
    const cg_provider_cfg *prov = cg_config_provider_for(r->gw->cfg, r->api, model);
    const cg_price *p = cg_prices_find(r->gw->prices, model);
    if (!prov || !p || strlen(model) >= sizeof r->model)
        return -1;
    if (!r->requested_model[0]) {
        snprintf(r->requested_model, sizeof r->requested_model, "%s", r->model);
        if (r->has_price) {
            r->base_price = r->price;
            r->has_base_price = 1;
        }
    }
    snprintf(r->model, sizeof r->model, "%s", model);
    r->prov = prov;
    r->prov_key = r->gw->provider_keys[prov - r->gw->cfg->providers];
    cg_price_effective(p, &r->price);
    r->has_price = 1;
    r->unpriced = 0;
    json_object_set_new(r->body, "model", json_string(model));
    r->body_modified = 1;
    int tier = cg_router_tier_of(&r->gw->cfg->tiering, r->api, model);
    if (tier >= 0)
        r->tier = tier;
    r->cascade_armed = 0; /* a budget or SLO choice is not escalated past */
    size_t n = strlen(r->note);
    snprintf(r->note + n, sizeof r->note - n, "%s%s:%s->%s", n ? " " : "", why, r->requested_model,
             model);
    return 0;
}

/* The configured downgrade of `model`, else (with tiering) the model of the
 * next cheaper tier for this API. */
static const char *downgrade_of(const cg_config *c, cg_api api, const char *model) {
    for (size_t i = 0; i < c->budgets.n_downgrades; i++)
        if (strcmp(c->budgets.downgrades[i].from, model) == 0)
            return c->budgets.downgrades[i].to;
    const cg_tiering_cfg *t = &c->tiering;
    if (!t->enabled)
        return NULL;
    int tier = cg_router_tier_of(t, api, model);
    int lower = tier < 0 ? -1 : cg_router_prev_tier(t, api, tier);
    return lower < 0 ? NULL : t->tiers[lower].model[api];
}

/* The SLO fallback: fallback_models, else the cheapest tier's model. */
static const char *fallback_of(const cg_config *c, cg_api api) {
    const char *fb = c->fallback_model[api == CG_API_ANTHROPIC ? 1 : 0];
    if (fb[0] || !c->tiering.enabled)
        return fb;
    int cheap = cg_router_cheapest(&c->tiering, api);
    return cheap < 0 ? "" : c->tiering.tiers[cheap].model[api];
}

static void iso_time(int64_t ms, char *out, size_t cap) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* model: the one v's estimate was made for (a failed downgrade has moved
 * r->model on to a cheaper one). */
static cg_stage_rc reject(cg_req *r, const cg_budget_verdict *v, const char *model) {
    char est[40], lim[40], spent[40], resv[40];
    cg_money_fmt(v->estimate, est, sizeof est);
    cg_money_fmt(v->limit, lim, sizeof lim);
    cg_money_fmt(v->spent, spent, sizeof spent);
    cg_money_fmt(v->reserved, resv, sizeof resv);
    cg_metrics_budget_action(r->gw->metrics, cg_scope_name(v->scope), "reject");
    if (v->scope == CG_SCOPE_QUERY) {
        cg_req_fail(r, 400, "invalid_request_error", "cost_limit_exceeded", NULL,
                    "This request may cost up to $%s (%s), above the per-query limit of $%s for "
                    "segment '%s'. Lower max_tokens or the prompt size, or use a cheaper model.",
                    est, model, lim, r->segment);
        return CG_ERROR;
    }
    char reset[32];
    iso_time(v->reset_at_ms, reset, sizeof reset);
    cg_req_fail(r, 402, "budget_exceeded", "budget_exceeded", NULL,
                "Budget exhausted: %s has spent $%s (+$%s in flight) of its $%s limit, and this "
                "request may cost up to $%s. It resets at %s.",
                v->scope_name, spent, resv, lim, est, reset);
    snprintf(r->err_reset, sizeof r->err_reset, "%s", reset);
    return CG_ERROR;
}

/* Input tokens before the call: exact for OpenAI models (BPE + chat
 * framing), the calibrated p95 bound for Claude. A model the tokenizer does
 * not know falls back to a deliberately high character count (4 characters a
 * token over all request text, keys included), flagged in the ledger note. */
void cg_stage_estimate_input(cg_req *r) {
    if (r->input_estimated)
        return;
    r->input_estimated = 1;
    cg_tok_api api = r->ep == CG_EP_CHAT         ? CG_TOK_API_OPENAI_CHAT
                     : r->ep == CG_EP_EMBEDDINGS ? CG_TOK_API_OPENAI_EMBEDDINGS
                                                 : CG_TOK_API_ANTHROPIC_MESSAGES;
    cg_estimate est;
    char err[256];
    if (cg_estimate_request(api, r->model, r->body, r->has_price ? &r->price : NULL, 0, &est, err,
                            sizeof err) == 0) {
        r->est_input_tokens = est.input_tokens_upper;
        r->predicted_input = est.input_tokens;
        return;
    }
    r->est_input_tokens = (cg_provider_text_chars(r->body) + 3) / 4 + 8;
    r->predicted_input = r->est_input_tokens;
    size_t n = strlen(r->note);
    snprintf(r->note + n, sizeof r->note - n, "%sestimate:chars", n ? " " : "");
}

cg_stage_rc cg_stage_admit(cg_req *r) {
    cg_gateway *gw = r->gw;
    if (set_price(r) != 0)
        return CG_ERROR;
    if (gw->slos && cg_slos_fallback(gw->slos, r->segment)) {
        const char *fb = fallback_of(gw->cfg, r->api);
        if (fb[0] && strcmp(fb, r->model) != 0 && switch_model(r, fb, "slo_fallback") == 0) {
            cg_metrics_budget_action(gw->metrics, "slo", "fallback");
        }
    }
    if (!gw->budgets)
        return CG_NEXT; /* the estimate waits for the upstream call, if any */
    /* pre-call input estimate (tokenizer): replaced by reported usage when
     * there is any */
    cg_stage_estimate_input(r);
    cg_budget_who who = {r->tenant, r->user, r->segment, r->feature};
    cg_budget_verdict v, first;
    r->estimate_nano = upper_bound(r);
    if (cg_budget_reserve(gw->budgets, &who, r->estimate_nano, &r->resv, &v))
        goto admitted;
    first = v;
    char first_model[sizeof r->model];
    snprintf(first_model, sizeof first_model, "%s", r->model);
    /* downgrade: walk the configured chain until a model fits */
    for (int hops = 0; v.action == CG_ACT_DOWNGRADE && hops < 8; hops++) {
        const char *to = downgrade_of(gw->cfg, r->api, r->model);
        if (!to || switch_model(r, to, "budget_downgrade") != 0)
            break;
        r->estimate_nano = upper_bound(r);
        if (cg_budget_reserve(gw->budgets, &who, r->estimate_nano, &r->resv, &v)) {
            cg_metrics_budget_action(gw->metrics, cg_scope_name(first.scope), "downgrade");
            goto admitted;
        }
    }
    if (cg_route_keep_previous(r) == 0)
        return CG_NEXT; /* an escalation the budget cannot afford: keep the answer we have */
    return reject(r, &first, first_model);
admitted:
    if (r->resv.dry_run) {
        size_t n = strlen(r->note);
        snprintf(r->note + n, sizeof r->note - n, "%sbudget_dry_run:%s", n ? " " : "",
                 r->resv.dry_run_scope);
        cg_metrics_budget_action(gw->metrics, r->resv.dry_run_scope, "dry_run");
    }
    return CG_NEXT;
}
