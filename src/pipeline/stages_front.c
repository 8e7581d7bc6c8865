/* stages_front: the stages before the provider call: parse, identify,
 * route (admit is in stages_admit.c). Each either lets the request go on or records a
 * provider-shaped error naming the problem. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/jparse.h"
#include "http/hserve.h"
#include "pipeline/engine.h"
#include "provider/provider.h"

cg_stage_rc cg_stage_parse(cg_req *r) {
    uint64_t big = 0;
    int exact = 1;
    if (cg_hreq_too_large(r->hreq, &big, &exact)) {
        cg_req_fail(r, 413, "invalid_request_error", "request_too_large", NULL,
                    "Request body is %s%llu bytes; this gateway accepts at most %zu bytes "
                    "(server.max_body_bytes).",
                    exact ? "" : "more than ",
                    exact ? (unsigned long long)big
                          : (unsigned long long)r->gw->cfg->max_body_bytes,
                    r->gw->cfg->max_body_bytes);
        return CG_ERROR;
    }
    size_t len;
    const char *in = cg_hreq_body(r->hreq, &len);
    if (len == 0) {
        cg_req_fail(r, 400, "invalid_request_error", "invalid_json", NULL,
                    "The request body is empty; expected a JSON object.");
        return CG_ERROR;
    }
    if (cg_buf_append(&r->body_raw, in, len)) {
        cg_req_fail(r, 500, "api_error", NULL, NULL, "out of memory reading the request body");
        return CG_ERROR;
    }
    json_error_t je;
    /* any top-level value, so a non-object gets its own message below */
    r->body = cg_json_load(r->body_raw.data, r->body_raw.len, &je);
    if (!r->body) {
        cg_req_fail(r, 400, "invalid_request_error", "invalid_json", NULL,
                    "We could not parse the JSON body of your request: %s (line %d, column %d).",
                    je.text, je.line, je.column);
        return CG_ERROR;
    }
    if (!json_is_object(r->body)) {
        static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                            "a number",  "true",     "false",    "null"};
        cg_req_fail(r, 400, "invalid_request_error", "invalid_json", NULL,
                    "The request body must be a JSON object, not %s.", names[json_typeof(r->body)]);
        return CG_ERROR;
    }
    return r->ops->parse(r) == 0 ? CG_NEXT : CG_ERROR;
}

/* Attribution header values: 1..63 printable ASCII characters. */
static int take_attr(cg_req *r, const char *name, char *dst, size_t cap) {
    const char *v = cg_hreq_header(r->hreq, name);
    if (!v)
        return 0;
    size_t n = strlen(v);
    int ok = n > 0 && n < cap;
    for (size_t i = 0; ok && i < n; i++)
        ok = isprint((unsigned char)v[i]);
    if (!ok)
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_header", name,
                           "Header %s must be 1 to %zu printable ASCII characters.", name, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

cg_stage_rc cg_stage_identify(cg_req *r) {
    const char *key = NULL;
    const char *auth = cg_hreq_header(r->hreq, "authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (!key || !*key)
        key = cg_hreq_header(r->hreq, "x-api-key");
    int anth = r->api == CG_API_ANTHROPIC;
    if (!key || !*key) {
        cg_req_fail(r, 401, anth ? "authentication_error" : "invalid_request_error",
                    "missing_api_key", NULL,
                    "No API key provided. Send your costgate gateway key as "
                    "'Authorization: Bearer <key>' or 'x-api-key: <key>'.");
        return CG_ERROR;
    }
    r->key = cg_config_key_lookup(r->gw->cfg, key, strlen(key));
    if (!r->key) {
        /* never echo the key, not even a prefix */
        cg_req_fail(r, 401, anth ? "authentication_error" : "invalid_request_error",
                    "invalid_api_key", NULL, "Invalid gateway API key.");
        return CG_ERROR;
    }
    cg_strlcpy(r->tenant, r->key->tenant, sizeof r->tenant);
    cg_strlcpy(r->user, r->key->user, sizeof r->user);
    cg_strlcpy(r->segment, r->key->segment, sizeof r->segment);
    if (r->key->allow_attribution) {
        if (take_attr(r, "x-costgate-user", r->user, sizeof r->user) ||
            take_attr(r, "x-costgate-segment", r->segment, sizeof r->segment) ||
            take_attr(r, "x-costgate-feature", r->feature, sizeof r->feature) ||
            take_attr(r, "x-costgate-intent", r->intent, sizeof r->intent))
            return CG_ERROR;
    }
    const char *v = cg_hreq_header(r->hreq, "anthropic-version");
    if (v)
        cg_strlcpy(r->anthropic_version, v, sizeof r->anthropic_version);
    v = cg_hreq_header(r->hreq, "anthropic-beta");
    if (v)
        cg_strlcpy(r->anthropic_beta, v, sizeof r->anthropic_beta);
    return CG_NEXT;
}

cg_stage_rc cg_stage_route(cg_req *r) {
    const cg_config *c = r->gw->cfg;
    r->prov = cg_config_provider_for(c, r->api, r->model);
    if (!r->prov) {
        cg_req_fail(r, 404,
                    r->api == CG_API_ANTHROPIC ? "not_found_error" : "invalid_request_error",
                    "model_not_found", "model",
                    "The model '%s' is not served by any configured %s provider.", r->model,
                    r->api == CG_API_ANTHROPIC ? "Anthropic" : "OpenAI");
        return CG_ERROR;
    }
    r->prov_key = r->gw->provider_keys[r->prov - c->providers];
    return CG_NEXT;
}
