/* feedback: POST /v1/feedback and its hook list (see feedback.h). */
#include "http/feedback.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "store/ledger.h"

#define COMMENT_MAX 1024

typedef struct hook {
    char name[32];
    cg_feedback_hook_fn fn;
    void *arg;
} hook;

static hook g_hooks[CG_FEEDBACK_HOOKS_MAX];
static int g_n_hooks;

int cg_feedback_hook_add(const char *name, cg_feedback_hook_fn fn, void *arg) {
    if (g_n_hooks >= CG_FEEDBACK_HOOKS_MAX || !fn)
        return -1;
    hook *h = &g_hooks[g_n_hooks++];
    snprintf(h->name, sizeof h->name, "%s", name ? name : "");
    h->fn = fn;
    h->arg = arg;
    return 0;
}

void cg_feedback_hooks_clear(void) {
    memset(g_hooks, 0, sizeof g_hooks);
    g_n_hooks = 0;
}

typedef struct fb_ctx {
    cg_worker *w;
    cg_gateway *gw;
    cg_hreq *req;
    cg_api api;
    char request_id[48];
    int rating;
    char comment[COMMENT_MAX];
    char tenant[64], key_name[64];
    int64_t ts_ms;
    int found;
    int db_ok;
    char model_served[128], intent[64], tier[32], cache[16], cache_key[65], cache_src[48],
        cache_match[65];
    int64_t cost_total;
} fb_ctx;

static void col(char *dst, size_t cap, sqlite3_stmt *s, int i) {
    const char *v = (const char *)sqlite3_column_text(s, i);
    snprintf(dst, cap, "%s", v ? v : "");
}

/* On the ledger writer thread: find the rated request, record the rating. */
static int fb_run(sqlite3 *db, void *arg) {
    fb_ctx *x = arg;
    sqlite3_stmt *s = NULL;
    int rc = -1;
    char tenant[64] = "";
    if (sqlite3_prepare_v2(db,
                           "SELECT tenant, model_served, intent, tier, cache, cache_key, cache_src,"
                           " cost_total, cache_match FROM ledger WHERE request_id = ?"
                           " ORDER BY attempt DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, x->request_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        col(tenant, sizeof tenant, s, 0);
        col(x->model_served, sizeof x->model_served, s, 1);
        col(x->intent, sizeof x->intent, s, 2);
        col(x->tier, sizeof x->tier, s, 3);
        col(x->cache, sizeof x->cache, s, 4);
        col(x->cache_key, sizeof x->cache_key, s, 5);
        col(x->cache_src, sizeof x->cache_src, s, 6);
        x->cost_total = sqlite3_column_int64(s, 7);
        col(x->cache_match, sizeof x->cache_match, s, 8);
    } else if (step != SQLITE_DONE) {
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    /* another tenant's request is answered exactly as an unknown one */
    x->found = step == SQLITE_ROW && strcmp(tenant, x->tenant) == 0;
    if (!x->found) {
        rc = 0;
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO feedback (request_id, key_name, ts_ms, rating,"
                           " tenant, comment) VALUES (?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, x->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, x->key_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, x->ts_ms);
    sqlite3_bind_int(s, 4, x->rating);
    sqlite3_bind_text(s, 5, x->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, x->comment, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
out:
    if (rc)
        CG_ERROR("feedback: cannot record the rating of %s: %s", x->request_id, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return rc;
}

static void fb_reply_on_loop(void *arg) {
    fb_ctx *x = arg;
    if (!x->db_ok) {
        cg_server_reply_error(x->req, x->api, 500, "api_error", NULL,
                              "The rating could not be recorded in the ledger database.");
        free(x);
        return;
    }
    if (!x->found) {
        char msg[160];
        snprintf(msg, sizeof msg, "No request %s of this key's tenant is in the ledger.",
                 x->request_id);
        cg_server_reply_error(x->req, x->api, 404,
                              x->api == CG_API_ANTHROPIC ? "not_found_error"
                                                         : "invalid_request_error",
                              "request_not_found", msg);
        free(x);
        return;
    }
    cg_feedback fb = {
        .request_id = x->request_id,
        .rating = x->rating,
        .comment = x->comment,
        .tenant = x->tenant,
        .key_name = x->key_name,
        .ts_ms = x->ts_ms,
        .model_served = x->model_served,
        .intent = x->intent,
        .tier = x->tier,
        .cache = x->cache,
        .cache_key = x->cache_key,
        .cache_src = x->cache_src,
        .cache_match = x->cache_match,
        .cost_total = x->cost_total,
    };
    json_t *reply = json_pack("{s:s,s:s,s:b}", "request_id", x->request_id, "rating",
                              x->rating > 0 ? "up" : "down", "recorded", 1);
    for (int i = 0; reply && i < g_n_hooks; i++)
        g_hooks[i].fn(g_hooks[i].arg, &fb, reply);
    char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    if (s)
        cg_server_reply_json(x->req, 200, s, strlen(s));
    else
        cg_server_reply_error(x->req, x->api, 500, "api_error", NULL, "out of memory");
    free(s);
    free(x);
}

static void fb_done(void *arg, int ok) {
    fb_ctx *x = arg;
    x->db_ok = ok;
    cg_worker_post(x->w, fb_reply_on_loop, x);
}

static int parse_rating(json_t *v, int *out) {
    if (json_is_integer(v) && (json_integer_value(v) == 1 || json_integer_value(v) == -1)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (!strcasecmp(s, "up") || !strcmp(s, "+1") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcasecmp(s, "down") || !strcmp(s, "-1"))
        *out = -1;
    else
        return -1;
    return 0;
}

void cg_feedback_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, cg_hmethod m) {
    cg_api api = cg_hreq_header(req, "anthropic-version") ? CG_API_ANTHROPIC : CG_API_OPENAI;
    const char *bad_type = "invalid_request_error"; /* the same name in both APIs */
    char err[512];
    json_t *b = NULL;
    fb_ctx *x = NULL;
    if (m != CG_HM_POST) {
        cg_server_reply_error(req, api, 405, bad_type, "method_not_allowed",
                              "This endpoint only accepts POST.");
        return;
    }
    const char *auth = cg_hreq_header(req, "authorization");
    const char *key = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
    if (!key || !*key)
        key = cg_hreq_header(req, "x-api-key");
    const cg_key_cfg *k = key && *key ? cg_config_key_lookup(gw->cfg, key, strlen(key)) : NULL;
    if (!k) {
        cg_server_reply_error(req, api, 401,
                              api == CG_API_ANTHROPIC ? "authentication_error"
                                                      : "invalid_request_error",
                              "invalid_api_key", "Invalid or missing gateway API key.");
        return;
    }
    size_t len;
    const char *body = cg_hreq_body(req, &len);
    json_error_t je;
    b = len && len <= 65536 ? json_loadb(body, len, 0, &je) : NULL;
    if (!json_is_object(b)) {
        snprintf(err, sizeof err,
                 "The body must be a JSON object {\"request_id\": \"req_...\", \"rating\": "
                 "\"up\"|\"down\", \"comment\": \"...\"}%s%s.",
                 len && !b && len <= 65536 ? ": " : "", len && !b && len <= 65536 ? je.text : "");
        goto bad;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, sizeof err, "out of memory");
        goto bad;
    }
    json_t *id = json_object_get(b, "request_id");
    if (!json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) >= sizeof x->request_id) {
        snprintf(err, sizeof err,
                 "Field 'request_id' must be the x-costgate-request-id of a request (a string "
                 "of at most %zu characters).",
                 sizeof x->request_id - 1);
        goto bad;
    }
    if (parse_rating(json_object_get(b, "rating"), &x->rating) != 0) {
        snprintf(err, sizeof err, "Field 'rating' must be \"up\" or \"down\" (or 1 / -1).");
        goto bad;
    }
    json_t *cm = json_object_get(b, "comment");
    if (cm && !json_is_null(cm) &&
        (!json_is_string(cm) || json_string_length(cm) >= sizeof x->comment)) {
        snprintf(err, sizeof err, "Field 'comment' must be a string of at most %zu bytes.",
                 sizeof x->comment - 1);
        goto bad;
    }
    snprintf(x->request_id, sizeof x->request_id, "%s", json_string_value(id));
    snprintf(x->comment, sizeof x->comment, "%s", json_is_string(cm) ? json_string_value(cm) : "");
    snprintf(x->tenant, sizeof x->tenant, "%s", k->tenant);
    snprintf(x->key_name, sizeof x->key_name, "%s", k->name);
    x->ts_ms = cg_gateway_now_ms(gw);
    x->w = w;
    x->gw = gw;
    x->req = req;
    x->api = api;
    json_decref(b);
    if (cg_ledger_run(gw->ledger, fb_run, x, fb_done, x) != 0) {
        free(x);
        cg_server_reply_error(req, api, 503, "api_error", NULL,
                              "The ledger is not accepting writes (shutting down).");
    }
    return;
bad:
    json_decref(b);
    free(x);
    cg_server_reply_error(req, api, 400, bad_type, "invalid_value", err);
}
