/* admin: /metrics, /admin/costs and /v1/models (see admin.h). */
#include "http/admin.h"
#include "core/clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "core/money.h"
#include "budget/budget.h"
#include "http/admin_budget.h"
#include "http/admin_cache.h"
#include "obs/metrics.h"
#include "store/ledger.h"

static int authorised(cg_gateway *gw, cg_hreq *req, int on_admin_listener) {
    const cg_config *c = gw->cfg;
    if (!c->has_admin_key)
        return on_admin_listener;
    const char *auth = cg_hreq_header(req, "authorization");
    const char *key = NULL;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (!key)
        key = cg_hreq_header(req, "x-api-key");
    if (!key)
        return 0;
    uint8_t d[32];
    cg_sha256(key, strlen(key), d);
    return cg_ct_equal(d, c->admin_key_sha256, 32);
}

static void reply_metrics(cg_gateway *gw, cg_hreq *req) {
    cg_buf b;
    cg_buf_init(&b, 16u << 20);
    cg_metrics_render(gw->metrics, gw->ledger, &b);
    cg_admin_budget_metrics(gw, &b);
    cg_admin_cache_metrics(gw, &b);
    cg_hreq_add_header(req, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    cg_hreq_reply(req, 200, b.data, b.len);
    cg_buf_free(&b);
}

/* --- external cost ingestion --------------------------------------------- */

typedef struct ingest {
    cg_worker *w;
    cg_gateway *gw;
    cg_hreq *req;
    cg_ledger_row row;
    int ok;
} ingest;

static void ingest_done_on_loop(void *arg) {
    ingest *in = arg;
    char body[512];
    char usd[40];
    int n;
    if (in->ok && in->gw->budgets) { /* ingested spend counts against budgets too */
        cg_budget_who who = {in->row.tenant, in->row.user, in->row.segment, in->row.feature};
        cg_budgets_add_spent(in->gw->budgets, &who, in->row.ts_ms, in->row.cost_total);
    }
    if (in->ok) {
        n = snprintf(body, sizeof body,
                     "{\"id\":\"%s\",\"status\":\"recorded\",\"axis\":\"%s\",\"amount_nano_usd\":"
                     "%lld,\"amount_usd\":\"%s\"}",
                     in->row.request_id + 4, in->row.note, (long long)in->row.cost_total,
                     cg_money_fmt(in->row.cost_total, usd, sizeof usd));
        cg_server_reply_json(in->req, 201, body, (size_t)n);
    } else {
        cg_server_reply_error(in->req, CG_API_OPENAI, 409, "invalid_request_error", "duplicate_id",
                              "An external cost with this id is already in the ledger; it was "
                              "not recorded again.");
    }
    free(in);
}

static void ingest_done(void *arg, int ok) {
    ingest *in = arg;
    in->ok = ok;
    cg_worker_post(in->w, ingest_done_on_loop, in);
}

static int str_field(json_t *b, const char *name, char *dst, size_t cap, int required, char *err,
                     size_t errlen) {
    json_t *v = json_object_get(b, name);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "Missing required field '%s'.", name);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap) {
        snprintf(err, errlen, "Field '%s' must be a string of at most %zu characters.", name,
                 cap - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static void ingest_cost(cg_worker *w, cg_gateway *gw, cg_hreq *req) {
    char err[256] = "";
    ingest *in = calloc(1, sizeof *in);
    json_t *b = NULL;
    if (!in) {
        snprintf(err, sizeof err, "out of memory");
        goto bad;
    }
    size_t len;
    const char *body = cg_hreq_body(req, &len);
    json_error_t je;
    b = len ? json_loadb(body, len, 0, &je) : NULL;
    if (!json_is_object(b)) {
        snprintf(err, sizeof err, "The body must be a JSON object%s%s.", b ? "" : ": ",
                 b ? "" : (len ? je.text : "empty body"));
        goto bad;
    }
    cg_ledger_row *row = &in->row;
    char id[40] = "", axis[32] = "", amount[40] = "";
    if (str_field(b, "id", id, sizeof id, 1, err, sizeof err) ||
        str_field(b, "axis", axis, sizeof axis, 1, err, sizeof err) ||
        str_field(b, "amount_usd", amount, sizeof amount, 1, err, sizeof err) ||
        str_field(b, "tenant", row->tenant, sizeof row->tenant, 1, err, sizeof err) ||
        str_field(b, "user", row->user, sizeof row->user, 0, err, sizeof err) ||
        str_field(b, "segment", row->segment, sizeof row->segment, 0, err, sizeof err) ||
        str_field(b, "feature", row->feature, sizeof row->feature, 0, err, sizeof err) ||
        str_field(b, "intent", row->intent, sizeof row->intent, 0, err, sizeof err) ||
        str_field(b, "provider", row->provider, sizeof row->provider, 0, err, sizeof err) ||
        str_field(b, "description", row->error, sizeof row->error, 0, err, sizeof err))
        goto bad;
    if (!id[0]) {
        snprintf(err, sizeof err, "Field 'id' must not be empty.");
        goto bad;
    }
    int64_t nano;
    if (cg_money_parse_usd(amount, &nano) != 0) {
        snprintf(err, sizeof err,
                 "Field 'amount_usd' must be a decimal USD amount with at most 9 decimals, as a "
                 "string (e.g. \"12.50\").");
        goto bad;
    }
    if (strcmp(axis, "external_api") == 0)
        row->cost_external_api = nano;
    else if (strcmp(axis, "storage_compute") == 0)
        row->cost_storage_compute = nano;
    else {
        snprintf(err, sizeof err,
                 "Field 'axis' must be \"external_api\" or \"storage_compute\" (input, output and "
                 "embedding costs come from metered requests).");
        goto bad;
    }
    json_t *ts = json_object_get(b, "ts_ms");
    if (ts && !json_is_integer(ts)) {
        snprintf(err, sizeof err, "Field 'ts_ms' must be an integer (Unix epoch milliseconds).");
        goto bad;
    }
    row->ts_ms = ts ? json_integer_value(ts) : cg_wall_ms();
    snprintf(row->request_id, sizeof row->request_id, "ext_%s", id);
    row->attempt = 0;
    snprintf(row->kind, sizeof row->kind, "external");
    snprintf(row->api, sizeof row->api, "admin");
    snprintf(row->status, sizeof row->status, "ok");
    snprintf(row->cache, sizeof row->cache, "none");
    snprintf(row->note, sizeof row->note, "%s", axis);
    row->cost_total = nano;
    row->baseline_cost = nano;
    row->http_status = 201;
    in->w = w;
    in->gw = gw;
    in->req = req;
    json_decref(b);
    if (cg_ledger_submit(gw->ledger, row, ingest_done, in) != 0) {
        free(in);
        cg_server_reply_error(req, CG_API_OPENAI, 503, "api_error", NULL,
                              "The ledger is not accepting rows (shutting down).");
    }
    return;
bad:
    json_decref(b);
    free(in);
    cg_server_reply_error(req, CG_API_OPENAI, 400, "invalid_request_error", "invalid_value", err);
}

int cg_admin_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri, cg_hmethod m,
                    int on_admin_listener) {
    int is_admin_path = cg_path_is(uri, "/metrics") || strncmp(uri, "/admin/", 7) == 0;
    if (!is_admin_path)
        return 0;
    if (!authorised(gw, req, on_admin_listener)) {
        if (!on_admin_listener && !gw->cfg->has_admin_key)
            return 0; /* admin API not exposed on this listener */
        cg_server_reply_error(req, CG_API_OPENAI, 401, "invalid_request_error", "invalid_admin_key",
                              "A valid admin key is required.");
        return 1;
    }
    if (cg_path_is(uri, "/metrics") && m == CG_HM_GET) {
        reply_metrics(gw, req);
        return 1;
    }
    if (cg_path_is(uri, "/admin/costs") && m == CG_HM_POST) {
        ingest_cost(w, gw, req);
        return 1;
    }
    if (cg_admin_budget_handle(w, gw, req, uri, m))
        return 1;
    if (cg_admin_cache_handle(w, gw, req, uri, m))
        return 1;
    cg_server_reply_error(req, CG_API_OPENAI, 404, "invalid_request_error", "unknown_url",
                          "No such admin endpoint or method.");
    return 1;
}

void cg_admin_models(cg_gateway *gw, cg_hreq *req, cg_api api) {
    const char *auth = cg_hreq_header(req, "authorization");
    const char *key =
        auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : cg_hreq_header(req, "x-api-key");
    if (!key || !cg_config_key_lookup(gw->cfg, key, strlen(key))) {
        cg_server_reply_error(req, api, 401,
                              api == CG_API_ANTHROPIC ? "authentication_error"
                                                      : "invalid_request_error",
                              "invalid_api_key", "Invalid or missing gateway API key.");
        return;
    }
    json_t *data = json_array();
    size_t n = cg_prices_count(gw->prices);
    const char *first = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
        const cg_price *p = cg_prices_at(gw->prices, i);
        const cg_provider_cfg *prov = cg_config_provider_for(gw->cfg, api, p->model);
        if (!prov)
            continue;
        if (api == CG_API_ANTHROPIC && p->kind != CG_MODEL_CHAT)
            continue;
        json_t *o;
        if (api == CG_API_ANTHROPIC)
            o = json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", p->model, "display_name",
                          p->model, "created_at", "1970-01-01T00:00:00Z");
        else
            o = json_pack("{s:s,s:s,s:i,s:s}", "id", p->model, "object", "model", "created", 0,
                          "owned_by", prov->name);
        json_array_append_new(data, o);
        if (!first)
            first = p->model;
        last = p->model;
    }
    json_t *body = api == CG_API_ANTHROPIC
                       ? json_pack("{s:o,s:b,s:s?,s:s?}", "data", data, "has_more", 0, "first_id",
                                   first, "last_id", last)
                       : json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s)
        cg_server_reply_json(req, 200, s, strlen(s));
    else
        cg_server_reply_error(req, api, 500, "api_error", NULL, "out of memory");
    free(s);
}
