/* anthropic: the Anthropic Messages API adapter.
 *
 * Owns: validation of /v1/messages bodies, the upstream request (x-api-key,
 * anthropic-version and anthropic-beta passed through), usage from
 * message_start + message_delta events and from bodies, and Anthropic's
 * error shape ({"type":"error","error":{...}}) for bodies and stream events.
 */
#include <stdio.h>
#include <string.h>

#include "cost/usage.h"
#include "provider/provider.h"

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int bad(cg_req *r, const char *field, const char *want, const json_t *got) {
    if (!got)
        return cg_req_fail(r, 400, "invalid_request_error", NULL, field, "%s: Field required",
                           field);
    return cg_req_fail(r, 400, "invalid_request_error", NULL, field,
                       "%s: Input should be a valid %s (got %s)", field, want, type_name(got));
}

static int parse(cg_req *r) {
    json_t *b = r->body;
    json_t *model = json_object_get(b, "model");
    if (!json_is_string(model))
        return bad(r, "model", "string", model);
    if (json_string_length(model) == 0 || json_string_length(model) >= sizeof r->model)
        return cg_req_fail(r, 400, "invalid_request_error", NULL, "model",
                           "model: String should have 1 to %zu characters", sizeof r->model - 1);
    snprintf(r->model, sizeof r->model, "%s", json_string_value(model));
    json_t *mt = json_object_get(b, "max_tokens");
    if (!json_is_integer(mt))
        return bad(r, "max_tokens", "integer", mt);
    if (json_integer_value(mt) < 1)
        return cg_req_fail(r, 400, "invalid_request_error", NULL, "max_tokens",
                           "max_tokens: Input should be greater than or equal to 1");
    r->max_tokens = json_integer_value(mt);
    json_t *msgs = json_object_get(b, "messages");
    if (!json_is_array(msgs))
        return bad(r, "messages", "list", msgs);
    if (json_array_size(msgs) == 0)
        return cg_req_fail(r, 400, "invalid_request_error", NULL, "messages",
                           "messages: at least one message is required");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!json_is_string(role) || !(json_is_string(content) || json_is_array(content)))
            return cg_req_fail(r, 400, "invalid_request_error", NULL, "messages",
                               "messages.%zu: each message needs a string 'role' and a string "
                               "or list 'content'",
                               i);
    }
    json_t *sys = json_object_get(b, "system");
    if (sys && !json_is_string(sys) && !json_is_array(sys))
        return bad(r, "system", "string or list", sys);
    json_t *st = json_object_get(b, "stream");
    if (st && !json_is_null(st)) {
        if (!json_is_boolean(st))
            return bad(r, "stream", "boolean", st);
        r->stream = json_is_true(st);
    }
    return 0;
}

static int build(cg_req *r) {
    snprintf(r->url, sizeof r->url, "%s/v1/messages", r->prov->base_url);
    cg_up_headers *h = &r->up_headers;
    cg_up_headers_reset(h);
    if (cg_up_headers_add(h, "anthropic-version",
                          r->anthropic_version[0] ? r->anthropic_version : "2023-06-01") ||
        (r->anthropic_beta[0] && cg_up_headers_add(h, "anthropic-beta", r->anthropic_beta)))
        return cg_req_fail(r, 400, "invalid_request_error", NULL, NULL,
                           "anthropic-version or anthropic-beta holds a control character.");
    if (cg_up_headers_add(h, "Content-Type", "application/json") ||
        cg_up_headers_add(h, "Accept", r->stream ? "text/event-stream" : "application/json") ||
        (r->prov_key && cg_up_headers_add(h, "x-api-key", r->prov_key)))
        return cg_req_fail(r, 500, "api_error", NULL, NULL,
                           "The upstream request headers could not be built (a provider key with "
                           "a control character?).");
    if (cg_provider_body(r))
        return cg_req_fail(r, 413, "request_too_large", NULL, NULL, "Request body too large.");
    return 0;
}

static void take_model(cg_req *r, const json_t *msg) {
    const char *m = json_string_value(json_object_get(msg, "model"));
    if (m && !r->served_model[0])
        snprintf(r->served_model, sizeof r->served_model, "%s", m);
}

static int is_event(const cg_sse_event *ev, const char *name) {
    size_t n = strlen(name);
    return ev->event_len == n && memcmp(ev->event, name, n) == 0;
}

static void on_event(cg_req *r, const cg_sse_event *ev, int *forward, int *terminal) {
    static const char *const text_keys[] = {"\"text\"", "\"partial_json\"", "\"thinking\"", NULL};
    *forward = 1;
    *terminal = 0;
    if (is_event(ev, "content_block_delta")) {
        r->out_chars += cg_provider_scan_text(ev->data, ev->data_len, text_keys);
        return;
    }
    if (is_event(ev, "message_stop")) {
        *terminal = 1;
        return;
    }
    if (is_event(ev, "error")) {
        r->up_stream_error = 1; /* forwarded as is; the stream ends with it */
        return;
    }
    int start = is_event(ev, "message_start");
    if (!start && !is_event(ev, "message_delta"))
        return;
    json_t *j = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!j)
        return;
    if (start) {
        json_t *msg = json_object_get(j, "message");
        take_model(r, msg);
        json_t *u = json_object_get(msg, "usage");
        if (json_is_object(u) && cg_usage_from_anthropic(u, &r->usage) == 0)
            r->usage_seen = 1; /* input known; output final only at message_delta */
    } else {
        json_t *u = json_object_get(j, "usage");
        if (json_is_object(u) && cg_usage_anthropic_delta(&r->usage, u) == 0 && r->usage_seen)
            r->usage_seen = 2;
    }
    json_decref(j);
}

static void on_body(cg_req *r, const json_t *body) {
    take_model(r, body);
    json_t *u = json_object_get(body, "usage");
    if (json_is_object(u) && cg_usage_from_anthropic(u, &r->usage) == 0)
        r->usage_seen = 2;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(body, "content"), i, c) {
        const char *keys[] = {"text", "thinking", NULL};
        for (int k = 0; keys[k]; k++) {
            json_t *s = json_object_get(c, keys[k]);
            if (json_is_string(s))
                r->out_chars += (int64_t)json_string_length(s);
        }
        json_t *in = json_object_get(c, "input");
        if (in) {
            char *s = json_dumps(in, JSON_COMPACT);
            r->out_chars += s ? (int64_t)strlen(s) : 0;
            free(s);
        }
    }
}

static void error_body(cg_buf *out, int status, const char *type, const char *code,
                       const char *param, const char *msg) {
    (void)status;
    (void)code;
    (void)param;
    cg_buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":");
    cg_buf_json_str(out, type, strlen(type));
    cg_buf_puts(out, ",\"message\":");
    cg_buf_json_str(out, msg, strlen(msg));
    cg_buf_puts(out, "}}");
}

static void stream_error(cg_buf *out, const char *type, const char *msg) {
    cg_buf_puts(out, "event: error\ndata: ");
    error_body(out, 0, type, NULL, NULL, msg);
    cg_buf_puts(out, "\n\n");
}

const cg_provider_ops cg_provider_anthropic = {
    .name = "anthropic",
    .api = CG_API_ANTHROPIC,
    .parse = parse,
    .build = build,
    .on_event = on_event,
    .on_body = on_body,
    .error_body = error_body,
    .stream_error = stream_error,
};
