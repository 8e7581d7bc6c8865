/* admin_budget: budgets and SLOs over the admin API (see admin_budget.h). */
#include "http/admin_budget.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget/budget.h"
#include "budget/slo.h"
#include "budget/slo_runner.h"
#include "core/money.h"
#include "store/ledger.h"

static json_t *usd(int64_t nano) {
    char b[40];
    return json_string(cg_money_fmt(nano, b, sizeof b));
}

static void visit_json(void *arg, const char *scope, const char *who, int64_t limit, int64_t spent,
                       int64_t reserved, int64_t reset) {
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:I,s:I}", "scope", scope, "who", who, "spent_usd",
                          usd(spent), "reserved_usd", usd(reserved), "spent_nano",
                          (json_int_t)spent, "reset_at_ms", (json_int_t)reset);
    if (limit != CG_NO_LIMIT) {
        int64_t left = limit - spent - reserved;
        json_object_set_new(o, "limit_usd", usd(limit));
        json_object_set_new(o, "remaining_usd", usd(left < 0 ? 0 : left));
        json_object_set_new(o, "limit_nano", json_integer(limit));
    } else {
        json_object_set_new(o, "limit_usd", json_null());
        json_object_set_new(o, "remaining_usd", json_null());
    }
    json_array_append_new(arg, o);
}

static json_t *milli(int64_t v) {
    char b[40];
    snprintf(b, sizeof b, "%lld.%03lld", (long long)(v / 1000), (long long)(v % 1000));
    return json_string(b);
}

static void reply_state(cg_gateway *gw, cg_hreq *req, int status) {
    json_t *scopes = json_array();
    if (gw->budgets)
        cg_budget_visit(gw->budgets, visit_json, scopes);
    json_t *slos = json_array();
    for (size_t i = 0; gw->slos && i < cg_slos_count(gw->slos); i++) {
        cg_slo_status st;
        cg_slos_status(gw->slos, i, &st);
        json_array_append_new(
            slos,
            json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:b,s:b,s:b}", "name", st.name, "segment",
                      st.segment, "burn_fast_long", milli(st.burn_fast_long), "burn_fast_short",
                      milli(st.burn_fast_short), "burn_slow_long", milli(st.burn_slow_long),
                      "burn_slow_short", milli(st.burn_slow_short), "fast_alert", st.fast_alert,
                      "slow_alert", st.slow_alert, "fallback", st.fallback));
    }
    json_t *body = json_pack("{s:b,s:s,s:I,s:o,s:o}", "budgets_enabled", gw->budgets != NULL,
                             "timezone", gw->cfg->budgets.timezone, "now_ms",
                             (json_int_t)cg_gateway_now_ms(gw), "scopes", scopes, "slos", slos);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s)
        cg_server_reply_json(req, status, s, strlen(s));
    else
        cg_server_reply_error(req, CG_API_OPENAI, 500, "api_error", NULL, "out of memory");
    free(s);
}

/* --- PUT /admin/budgets ---------------------------------------------------- */

typedef struct limit_change {
    cg_worker *w;
    cg_gateway *gw;
    cg_hreq *req;
    char scope[16], name[64], field[32];
    int64_t limit;
    int action;
    int64_t at_ms;
    int ok;
} limit_change;

static int persist(sqlite3 *db, void *arg) {
    limit_change *c = arg;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(
            db,
            "INSERT OR REPLACE INTO budget_limits(scope,name,field,limit_nano,action,"
            "updated_ms) VALUES (?,?,?,?,?,?)",
            -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, c->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->field, -1, SQLITE_STATIC);
    if (c->limit == CG_NO_LIMIT)
        sqlite3_bind_null(st, 4);
    else
        sqlite3_bind_int64(st, 4, c->limit);
    sqlite3_bind_int(st, 5, c->action);
    sqlite3_bind_int64(st, 6, c->at_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
out:
    sqlite3_finalize(st);
    return rc;
}

static void persisted_on_loop(void *arg) {
    limit_change *c = arg;
    if (c->ok)
        reply_state(c->gw, c->req, 200);
    else
        cg_server_reply_error(c->req, CG_API_OPENAI, 500, "api_error", NULL,
                              "The limit is in force but could not be saved to the ledger "
                              "database; it will not survive a restart.");
    free(c);
}

static void persisted(void *arg, int ok) {
    limit_change *c = arg;
    c->ok = ok;
    cg_worker_post(c->w, persisted_on_loop, c);
}

static int str_of(json_t *b, const char *k, char *out, size_t cap) {
    json_t *v = json_object_get(b, k);
    if (!v || json_is_null(v)) {
        out[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static void put_limit(cg_worker *w, cg_gateway *gw, cg_hreq *req) {
    char err[256] = "";
    limit_change *c = calloc(1, sizeof *c);
    size_t len;
    const char *body = cg_hreq_body(req, &len);
    json_t *b = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (!c || !json_is_object(b)) {
        snprintf(err, sizeof err, "The body must be a JSON object.");
        goto bad;
    }
    if (!gw->budgets) {
        snprintf(err, sizeof err, "Budgets are not enabled: add a budgets section to the config.");
        goto bad;
    }
    char action[16];
    if (str_of(b, "scope", c->scope, sizeof c->scope) || !c->scope[0] ||
        str_of(b, "name", c->name, sizeof c->name) ||
        str_of(b, "field", c->field, sizeof c->field) ||
        str_of(b, "action", action, sizeof action)) {
        snprintf(err, sizeof err,
                 "Fields: scope (string, required), name, field, action (strings), limit_usd "
                 "(decimal string or null).");
        goto bad;
    }
    json_t *lim = json_object_get(b, "limit_usd");
    c->limit = CG_NO_LIMIT;
    if (!lim) {
        snprintf(err, sizeof err, "Missing limit_usd (a decimal USD string, or null to remove).");
        goto bad;
    }
    if (!json_is_null(lim) &&
        (!json_is_string(lim) || cg_money_parse_usd(json_string_value(lim), &c->limit) != 0)) {
        snprintf(err, sizeof err,
                 "limit_usd must be a decimal USD string like \"12.50\", or null.");
        goto bad;
    }
    c->action = -1;
    if (action[0]) {
        static const char *names[] = {"reject", "downgrade", "dry_run"};
        for (int i = 0; i < 3; i++)
            if (strcmp(action, names[i]) == 0)
                c->action = i;
        if (c->action < 0) {
            snprintf(err, sizeof err, "action must be reject, downgrade or dry_run.");
            goto bad;
        }
    }
    if (cg_budget_set_limit(gw->budgets, c->scope, c->name, c->field[0] ? c->field : NULL, c->limit,
                            c->action, err, sizeof err) != 0)
        goto bad;
    json_decref(b);
    c->w = w;
    c->gw = gw;
    c->req = req;
    c->at_ms = cg_gateway_now_ms(gw);
    if (cg_ledger_run(gw->ledger, persist, c, persisted, c) != 0) {
        free(c);
        cg_server_reply_error(req, CG_API_OPENAI, 503, "api_error", NULL,
                              "The ledger is not accepting writes (shutting down).");
    }
    return;
bad:
    json_decref(b);
    free(c);
    cg_server_reply_error(req, CG_API_OPENAI, 400, "invalid_request_error", "invalid_value", err);
}

int cg_admin_budget_load(cg_gateway *gw, const char *path, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT scope, name, field, limit_nano, action FROM budget_limits "
                           "ORDER BY updated_ms",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read budget_limits in %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *field = (const char *)sqlite3_column_text(st, 2);
        int64_t limit =
            sqlite3_column_type(st, 3) == SQLITE_NULL ? CG_NO_LIMIT : sqlite3_column_int64(st, 3);
        char e[256];
        if (cg_budget_set_limit(gw->budgets, (const char *)sqlite3_column_text(st, 0),
                                (const char *)sqlite3_column_text(st, 1),
                                field && *field ? field : NULL, limit, sqlite3_column_int(st, 4), e,
                                sizeof e) != 0) {
            snprintf(err, errlen, "a saved budget limit does not apply: %s", e);
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* --- the test clock ---------------------------------------------------------- */

static void set_clock(cg_gateway *gw, cg_hreq *req) {
    size_t len;
    const char *body = cg_hreq_body(req, &len);
    json_t *b = len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *v = json_object_get(b, "now_ms");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        json_decref(b);
        cg_server_reply_error(req, CG_API_OPENAI, 400, "invalid_request_error", "invalid_value",
                              "Body must be {\"now_ms\": N} (0 = real time).");
        return;
    }
    atomic_store(&gw->test_now_ms, (long long)json_integer_value(v));
    json_decref(b);
    if (gw->slo_runner)
        cg_slo_runner_tick(gw->slo_runner); /* test-only: evaluate at the new time now */
    reply_state(gw, req, 200);
}

int cg_admin_budget_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri,
                           cg_hmethod m) {
    if (cg_path_is(uri, "/admin/budgets") && m == CG_HM_GET) {
        reply_state(gw, req, 200);
        return 1;
    }
    if (cg_path_is(uri, "/admin/budgets") && m == CG_HM_PUT) {
        put_limit(w, gw, req);
        return 1;
    }
    if (cg_path_is(uri, "/admin/test/clock") && m == CG_HM_POST && gw->test_clock) {
        set_clock(gw, req);
        return 1;
    }
    return 0;
}

static void visit_metrics(void *arg, const char *scope, const char *who, int64_t limit,
                          int64_t spent, int64_t reserved, int64_t reset) {
    (void)reset;
    cg_buf *out = arg;
    if (limit == CG_NO_LIMIT || strcmp(scope, "user_day") == 0)
        return; /* per-user series would be unbounded; see GET /admin/budgets */
    cg_buf_printf(out, "costgate_budget_spent_nano_usd{scope=\"%s\",who=\"%s\"} %lld\n", scope, who,
                  (long long)spent);
    cg_buf_printf(out, "costgate_budget_reserved_nano_usd{scope=\"%s\",who=\"%s\"} %lld\n", scope,
                  who, (long long)reserved);
    cg_buf_printf(out, "costgate_budget_limit_nano_usd{scope=\"%s\",who=\"%s\"} %lld\n", scope, who,
                  (long long)limit);
}

void cg_admin_budget_metrics(cg_gateway *gw, cg_buf *out) {
    if (gw->budgets) {
        cg_buf_puts(out, "# HELP costgate_budget_spent_nano_usd Committed spend in the current "
                         "period per limited scope (user scopes: GET /admin/budgets).\n"
                         "# TYPE costgate_budget_spent_nano_usd gauge\n"
                         "# HELP costgate_budget_reserved_nano_usd In-flight reservations.\n"
                         "# TYPE costgate_budget_reserved_nano_usd gauge\n"
                         "# HELP costgate_budget_limit_nano_usd The limit in force.\n"
                         "# TYPE costgate_budget_limit_nano_usd gauge\n");
        cg_budget_visit(gw->budgets, visit_metrics, out);
    }
    if (gw->slo_runner)
        cg_slo_runner_metrics(gw->slo_runner, out);
}
