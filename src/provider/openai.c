/* openai: the OpenAI API adapter (chat completions and embeddings).
 *
 * Owns: validation of OpenAI request bodies, the upstream request (Bearer
 * auth; streams get stream_options.include_usage so usage is never lost),
 * dropping the extra usage chunk when the client did not ask for it, usage
 * extraction from bodies and chunks, and OpenAI's error shape.
 */
#include <stdio.h>
#include <string.h>

#include "core/find.h"
#include "cost/usage.h"
#include "provider/provider.h"

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int bad_type(cg_req *r, const char *field, const char *want, const json_t *got) {
    cg_req_fail(r, 400, "invalid_request_error", "invalid_type", field,
                "Invalid type for '%s': expected %s, but got %s instead.", field, want,
                type_name(got));
    return -1;
}

static int parse(cg_req *r) {
    json_t *b = r->body;
    json_t *model = json_object_get(b, "model");
    if (!model)
        return cg_req_fail(r, 400, "invalid_request_error", "missing_required_parameter", "model",
                           "you must provide a model parameter");
    if (!json_is_string(model))
        return bad_type(r, "model", "a string", model);
    if (json_string_length(model) == 0 || json_string_length(model) >= sizeof r->model)
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_value", "model",
                           "Invalid value for 'model': must be 1 to %zu characters.",
                           sizeof r->model - 1);
    cg_strlcpy(r->model, json_string_value(model), sizeof r->model);

    if (r->ep == CG_EP_EMBEDDINGS) {
        json_t *in = json_object_get(b, "input");
        if (!in)
            return cg_req_fail(r, 400, "invalid_request_error", "missing_required_parameter",
                               "input", "Missing required parameter: 'input'.");
        if (!json_is_string(in) && !json_is_array(in))
            return bad_type(r, "input", "a string or an array", in);
        return 0;
    }

    json_t *msgs = json_object_get(b, "messages");
    if (!msgs)
        return cg_req_fail(r, 400, "invalid_request_error", "missing_required_parameter",
                           "messages", "Missing required parameter: 'messages'.");
    if (!json_is_array(msgs))
        return bad_type(r, "messages", "an array", msgs);
    if (json_array_size(msgs) == 0)
        return cg_req_fail(r, 400, "invalid_request_error", "empty_array", "messages",
                           "Invalid 'messages': empty array. Expected an array with minimum "
                           "length 1, but got an empty array instead.");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            char field[48];
            snprintf(field, sizeof field, "messages[%zu].role", i);
            return cg_req_fail(r, 400, "invalid_request_error", "invalid_value", field,
                               "Invalid '%s': each message must be an object with a string "
                               "'role'.",
                               field);
        }
    }
    json_t *st = json_object_get(b, "stream");
    if (st && !json_is_null(st)) {
        if (!json_is_boolean(st))
            return bad_type(r, "stream", "a boolean", st);
        r->stream = json_is_true(st);
    }
    json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return bad_type(r, "stream_options", "an object", so);
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return bad_type(r, "stream_options.include_usage", "a boolean", iu);
        r->client_usage = iu && json_is_true(iu);
    }
    const char *mt_names[] = {"max_completion_tokens", "max_tokens"};
    for (int k = 0; k < 2; k++) {
        json_t *mt = json_object_get(b, mt_names[k]);
        if (!mt || json_is_null(mt))
            continue;
        if (!json_is_integer(mt))
            return bad_type(r, mt_names[k], "an integer", mt);
        if (json_integer_value(mt) < 1)
            return cg_req_fail(r, 400, "invalid_request_error", "integer_below_min_value",
                               mt_names[k],
                               "Invalid '%s': integer below minimum value. Expected a value >= 1, "
                               "but got %lld instead.",
                               mt_names[k], (long long)json_integer_value(mt));
        if (!r->max_tokens)
            r->max_tokens = json_integer_value(mt);
    }
    return 0;
}

static int build(cg_req *r) {
    const char *path = r->ep == CG_EP_EMBEDDINGS ? "/v1/embeddings" : "/v1/chat/completions";
    size_t bl = strnlen(r->prov->base_url, sizeof r->url - 1), pl = strlen(path);
    if (bl + pl >= sizeof r->url)
        pl = sizeof r->url - 1 - bl; /* as snprintf would cut it */
    memcpy(r->url, r->prov->base_url, bl);
    memcpy(r->url + bl, path, pl);
    r->url[bl + pl] = '\0';
    cg_up_headers *h = &r->up_headers;
    cg_up_headers_reset(h);
    int bad = cg_up_headers_add(h, "Content-Type", "application/json") ||
              cg_up_headers_add(h, "Accept", r->stream ? "text/event-stream" : "application/json");
    if (r->prov_key) {
        char auth[1024];
        size_t kl = strnlen(r->prov_key, sizeof auth - 8);
        memcpy(auth, "Bearer ", 7);
        memcpy(auth + 7, r->prov_key, kl);
        auth[7 + kl] = '\0';
        bad = bad || cg_up_headers_add(h, "Authorization", auth);
        explicit_bzero(auth, 8 + kl); /* no copy of the key left on the stack */
    }
    if (bad)
        return cg_req_fail(r, 500, "api_error", NULL, NULL,
                           "The upstream request headers could not be built (a provider key with "
                           "a control character?).");
    if (r->stream && !r->client_usage) {
        /* ask for usage on the stream; the extra chunk is dropped in on_event */
        json_t *copy = json_copy(r->body);
        json_t *so = json_object_get(copy, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(copy, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
        char *s = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
        int rc = s ? cg_buf_puts(&r->up_body, s) : -1;
        free(s);
        if (rc)
            return cg_req_fail(r, 413, "invalid_request_error", "request_too_large", NULL,
                               "Request body too large.");
    } else if (cg_provider_body(r)) {
        return cg_req_fail(r, 413, "invalid_request_error", "request_too_large", NULL,
                           "Request body too large.");
    }
    return 0;
}

static void take_model(cg_req *r, const json_t *obj) {
    const char *m = json_string_value(json_object_get(obj, "model"));
    if (m && !r->served_model[0])
        cg_strlcpy(r->served_model, m, sizeof r->served_model);
}

static void on_event(cg_req *r, const cg_sse_event *ev, int *forward, int *terminal) {
    static const char *const text_keys[] = {"\"content\"", "\"arguments\"", "\"refusal\"", NULL};
    *forward = 1;
    *terminal = 0;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        *terminal = 1;
        return;
    }
    if (ev->data_len >= 8 && memcmp(ev->data, "{\"error\"", 8) == 0) {
        r->up_stream_error = 1; /* forwarded as is; the stream ends with it */
        return;
    }
    /* one pass over the chunk, without parsing it: its text, model, usage */
    cg_event_scan sc;
    cg_provider_scan_event(ev->data, ev->data_len, text_keys, &sc);
    if (!r->served_model[0] && sc.model && sc.model_len < sizeof r->served_model) {
        memcpy(r->served_model, sc.model, sc.model_len);
        r->served_model[sc.model_len] = '\0';
    }
    if (sc.usage) {
        /* parse only the usage object */
        const char *os, *oe;
        if (cg_provider_usage_object(ev->data, ev->data_len, 0, &os, &oe) == 0 &&
            cg_provider_read_usage(CG_API_OPENAI, 0, os, (size_t)(oe - os), &r->usage) == 0) {
            r->usage_seen = 2;
            if (!r->client_usage && sc.choices_empty)
                *forward = 0;
        }
    }
    r->out_chars += sc.text_chars;
}

static void on_body(cg_req *r, const json_t *body) {
    take_model(r, body);
    json_t *u = json_object_get(body, "usage");
    if (json_is_object(u)) {
        int rc = r->ep == CG_EP_EMBEDDINGS ? cg_usage_from_openai_embedding(u, &r->usage)
                                           : cg_usage_from_openai(u, &r->usage);
        if (rc == 0)
            r->usage_seen = 2;
    }
    json_t *ch = json_object_get(body, "choices");
    size_t i;
    json_t *c;
    json_array_foreach(ch, i, c) {
        json_t *msg = json_object_get(c, "message");
        const char *keys[] = {"content", "refusal", NULL};
        for (int k = 0; keys[k]; k++) {
            json_t *s = json_object_get(msg, keys[k]);
            if (json_is_string(s))
                r->out_chars += (int64_t)json_string_length(s);
        }
        json_t *tcs = json_object_get(msg, "tool_calls");
        size_t t;
        json_t *tc;
        json_array_foreach(tcs, t, tc) {
            json_t *a = json_object_get(json_object_get(tc, "function"), "arguments");
            if (json_is_string(a))
                r->out_chars += (int64_t)json_string_length(a);
        }
    }
}

static void error_body(cg_buf *out, int status, const char *type, const char *code,
                       const char *param, const char *msg) {
    (void)status;
    cg_buf_puts(out, "{\"error\":{\"message\":");
    cg_buf_json_str(out, msg, strlen(msg));
    cg_buf_puts(out, ",\"type\":");
    cg_buf_json_str(out, type, strlen(type));
    cg_buf_puts(out, ",\"param\":");
    if (param && *param)
        cg_buf_json_str(out, param, strlen(param));
    else
        cg_buf_puts(out, "null");
    cg_buf_puts(out, ",\"code\":");
    if (code && *code)
        cg_buf_json_str(out, code, strlen(code));
    else
        cg_buf_puts(out, "null");
    cg_buf_puts(out, "}}");
}

static void stream_error(cg_buf *out, const char *type, const char *msg) {
    cg_buf_puts(out, "data: ");
    error_body(out, 0, type, NULL, NULL, msg);
    cg_buf_puts(out, "\n\n");
}

const cg_provider_ops cg_provider_openai = {
    .name = "openai",
    .api = CG_API_OPENAI,
    .parse = parse,
    .build = build,
    .on_event = on_event,
    .on_body = on_body,
    .error_body = error_body,
    .stream_error = stream_error,
};
