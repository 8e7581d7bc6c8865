/* replay: stream capture -> complete body, stored body -> SSE stream (see
 * replay.h). */
#include "cache/replay.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 256 /* choices x tool calls, or content blocks */

int cg_replay_capture(cg_buf *cap, const char *data, size_t len) {
    uint32_t n = (uint32_t)len;
    if (len > UINT32_MAX || cap->len + sizeof n + len > cap->max)
        return -1;
    if (cg_buf_append(cap, &n, sizeof n) != 0 || cg_buf_append(cap, data, len) != 0)
        return -1;
    return 0;
}

/* Calls fn on each captured event's parsed data; stops at the first
 * non-zero return. -1 on a malformed capture. */
static int each_event(const char *cap, size_t n, int (*fn)(void *arg, json_t *ev), void *arg) {
    size_t off = 0;
    while (off < n) {
        uint32_t len;
        if (n - off < sizeof len)
            return -1;
        memcpy(&len, cap + off, sizeof len);
        off += sizeof len;
        if (n - off < len)
            return -1;
        const char *d = cap + off;
        off += len;
        if (len == 6 && memcmp(d, "[DONE]", 6) == 0)
            continue;
        json_t *ev = json_loadb(d, len, 0, NULL);
        if (!ev)
            return -1;
        int rc = fn(arg, ev);
        json_decref(ev);
        if (rc)
            return rc;
    }
    return 0;
}

/* A new string: x followed by y (both strings). */
static json_t *concat(const json_t *x, const json_t *y) {
    size_t a = json_string_length(x), b = json_string_length(y);
    char *s = malloc(a + b + 1);
    if (!s)
        return NULL;
    memcpy(s, json_string_value(x), a);
    memcpy(s + a, json_string_value(y), b);
    s[a + b] = '\0';
    json_t *r = json_stringn_nocheck(s, a + b);
    free(s);
    return r;
}

/* obj[key] += piece (a string; anything else is ignored). */
static int str_append(json_t *obj, const char *key, const json_t *piece) {
    if (!json_is_string(piece))
        return 0;
    json_t *cur = json_object_get(obj, key);
    if (!json_is_string(cur))
        return json_object_set(obj, key, (json_t *)piece);
    json_t *n = concat(cur, piece);
    return n ? json_object_set_new(obj, key, n) : -1;
}

/* --- OpenAI --------------------------------------------------------------- */

typedef struct oai_acc {
    json_t *head;    /* id, created, model, system_fingerprint, service_tier */
    json_t *choices; /* index -> {message, logprobs, finish_reason} */
    json_t *usage;
} oai_acc;

static json_t *choice_at(oai_acc *a, size_t idx) {
    if (idx >= MAX_PARTS)
        return NULL;
    while (json_array_size(a->choices) <= idx) {
        json_t *c = json_pack("{s:I,s:{s:s,s:n,s:n},s:n,s:n}", "index",
                              (json_int_t)json_array_size(a->choices), "message", "role",
                              "assistant", "content", "refusal", "logprobs", "finish_reason");
        if (!c || json_array_append_new(a->choices, c) != 0)
            return NULL;
    }
    return json_array_get(a->choices, idx);
}

static int oai_tool_delta(json_t *msg, json_t *tcd) {
    json_t *tcs = json_object_get(msg, "tool_calls");
    if (!tcs) {
        tcs = json_array();
        if (json_object_set_new(msg, "tool_calls", tcs) != 0)
            return -1;
    }
    json_t *ix = json_object_get(tcd, "index");
    size_t k = json_is_integer(ix) ? (size_t)json_integer_value(ix) : json_array_size(tcs);
    if (k >= MAX_PARTS)
        return -1;
    while (json_array_size(tcs) <= k)
        if (json_array_append_new(tcs, json_pack("{s:s,s:{s:s,s:s}}", "type", "function",
                                                 "function", "name", "", "arguments", "")) != 0)
            return -1;
    json_t *tc = json_array_get(tcs, k);
    json_t *id = json_object_get(tcd, "id");
    if (json_is_string(id))
        json_object_set(tc, "id", id);
    json_t *ty = json_object_get(tcd, "type");
    if (json_is_string(ty))
        json_object_set(tc, "type", ty);
    json_t *fd = json_object_get(tcd, "function");
    json_t *fn = json_object_get(tc, "function");
    if (json_is_object(fd)) {
        if (str_append(fn, "name", json_object_get(fd, "name")) != 0 ||
            str_append(fn, "arguments", json_object_get(fd, "arguments")) != 0)
            return -1;
    }
    return 0;
}

static int oai_event(void *arg, json_t *ev) {
    oai_acc *a = arg;
    if (json_object_get(ev, "error"))
        return -1;
    static const char *const head_keys[] = {
        "id", "created", "model", "system_fingerprint", "service_tier", NULL};
    for (int i = 0; head_keys[i]; i++) {
        json_t *v = json_object_get(ev, head_keys[i]);
        if (v && !json_is_null(v) && !json_object_get(a->head, head_keys[i]))
            json_object_set(a->head, head_keys[i], v);
    }
    json_t *u = json_object_get(ev, "usage");
    if (json_is_object(u)) {
        json_decref(a->usage);
        a->usage = json_incref(u);
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(ev, "choices"), i, c) {
        json_t *ix = json_object_get(c, "index");
        json_t *ch = choice_at(a, json_is_integer(ix) ? (size_t)json_integer_value(ix) : 0);
        if (!ch)
            return -1;
        json_t *msg = json_object_get(ch, "message");
        json_t *d = json_object_get(c, "delta");
        if (json_is_object(d)) {
            if (str_append(msg, "content", json_object_get(d, "content")) != 0 ||
                str_append(msg, "refusal", json_object_get(d, "refusal")) != 0)
                return -1;
            json_t *role = json_object_get(d, "role");
            if (json_is_string(role))
                json_object_set(msg, "role", role);
            size_t t;
            json_t *tcd;
            json_array_foreach(json_object_get(d, "tool_calls"), t, tcd) {
                if (oai_tool_delta(msg, tcd) != 0)
                    return -1;
            }
        }
        json_t *lp = json_object_get(c, "logprobs");
        if (json_is_object(lp)) {
            json_t *have = json_object_get(ch, "logprobs");
            if (!json_is_object(have)) {
                have = json_pack("{s:[],s:n}", "content", "refusal");
                json_object_set_new(ch, "logprobs", have);
            }
            json_t *dst = json_object_get(have, "content");
            json_t *src = json_object_get(lp, "content");
            if (json_is_array(dst) && json_is_array(src))
                json_array_extend(dst, src);
        }
        json_t *fin = json_object_get(c, "finish_reason");
        if (json_is_string(fin))
            json_object_set(ch, "finish_reason", fin);
    }
    return 0;
}

static int rebuild_openai(const char *cap, size_t n, cg_buf *out) {
    oai_acc a = {json_object(), json_array(), NULL};
    int rc = -1;
    json_t *resp = NULL;
    if (!a.head || !a.choices || each_event(cap, n, oai_event, &a) != 0)
        goto done;
    if (!json_array_size(a.choices) || !a.usage)
        goto done;
    size_t i;
    json_t *ch;
    json_array_foreach(a.choices, i, ch) {
        if (json_is_null(json_object_get(ch, "finish_reason")))
            goto done; /* a choice that never finished */
    }
    resp = json_pack("{s:O?,s:s,s:O?,s:O?,s:O,s:O}", "id", json_object_get(a.head, "id"), "object",
                     "chat.completion", "created", json_object_get(a.head, "created"), "model",
                     json_object_get(a.head, "model"), "choices", a.choices, "usage", a.usage);
    if (!resp)
        goto done;
    json_t *v;
    if ((v = json_object_get(a.head, "service_tier")))
        json_object_set(resp, "service_tier", v);
    if ((v = json_object_get(a.head, "system_fingerprint")))
        json_object_set(resp, "system_fingerprint", v);
    char *s = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = s && cg_buf_puts(out, s) == 0 ? 0 : -1;
    free(s);
done:
    json_decref(resp);
    json_decref(a.head);
    json_decref(a.choices);
    json_decref(a.usage);
    return rc;
}

/* --- Anthropic ----------------------------------------------------------- */

typedef struct ant_acc {
    json_t *msg;   /* from message_start */
    json_t *parts; /* partial_json per block index (strings) */
    int stopped;   /* a message_delta with a stop_reason came */
} ant_acc;

static int ant_event(void *arg, json_t *ev) {
    ant_acc *a = arg;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return -1;
    if (strcmp(type, "message_start") == 0) {
        json_t *m = json_object_get(ev, "message");
        if (!json_is_object(m) || a->msg)
            return -1;
        a->msg = json_deep_copy(m);
        if (!a->msg || json_object_set_new(a->msg, "content", json_array()) != 0)
            return -1;
        return 0;
    }
    if (strcmp(type, "error") == 0 || !a->msg)
        return -1;
    json_t *content = json_object_get(a->msg, "content");
    json_t *ix = json_object_get(ev, "index");
    size_t idx = json_is_integer(ix) ? (size_t)json_integer_value(ix) : 0;
    if (strcmp(type, "content_block_start") == 0) {
        json_t *b = json_object_get(ev, "content_block");
        if (!json_is_object(b) || !json_is_string(json_object_get(b, "type")) ||
            idx != json_array_size(content) || idx >= MAX_PARTS)
            return -1;
        if (json_array_append_new(content, json_deep_copy(b)) != 0 ||
            json_array_append_new(a->parts, json_string("")) != 0)
            return -1;
        return 0;
    }
    if (strcmp(type, "content_block_delta") == 0) {
        json_t *b = json_array_get(content, idx);
        json_t *d = json_object_get(ev, "delta");
        const char *dt = json_string_value(json_object_get(d, "type"));
        if (!b || !dt)
            return -1;
        if (strcmp(dt, "text_delta") == 0)
            return str_append(b, "text", json_object_get(d, "text"));
        if (strcmp(dt, "thinking_delta") == 0)
            return str_append(b, "thinking", json_object_get(d, "thinking"));
        if (strcmp(dt, "signature_delta") == 0)
            return json_object_set(b, "signature", json_object_get(d, "signature"));
        if (strcmp(dt, "input_json_delta") == 0) {
            json_t *frag = json_object_get(d, "partial_json");
            if (!json_is_string(frag))
                return 0;
            json_t *n = concat(json_array_get(a->parts, idx), frag);
            return n ? json_array_set_new(a->parts, idx, n) : -1;
        }
        if (strcmp(dt, "citations_delta") == 0) {
            json_t *cits = json_object_get(b, "citations");
            if (!json_is_array(cits)) {
                cits = json_array();
                json_object_set_new(b, "citations", cits);
            }
            return json_array_append(cits, json_object_get(d, "citation"));
        }
        return 0; /* an unknown delta: ignored */
    }
    if (strcmp(type, "content_block_stop") == 0) {
        json_t *b = json_array_get(content, idx);
        json_t *p = json_array_get(a->parts, idx);
        if (!b)
            return -1;
        if (json_string_length(p) > 0) {
            json_t *in = json_loadb(json_string_value(p), json_string_length(p), 0, NULL);
            if (!in)
                return -1;
            json_object_set_new(b, "input", in);
        }
        return 0;
    }
    if (strcmp(type, "message_delta") == 0) {
        json_t *d = json_object_get(ev, "delta");
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v) {
            json_object_set(a->msg, k, v);
        }
        if (json_is_string(json_object_get(d, "stop_reason")))
            a->stopped = 1;
        json_t *u = json_object_get(ev, "usage");
        json_t *mu = json_object_get(a->msg, "usage");
        if (json_is_object(u) && json_is_object(mu)) {
            json_object_foreach(u, k, v) {
                if (!json_is_null(v))
                    json_object_set(mu, k, v);
            }
        }
        return 0;
    }
    return 0; /* ping, message_stop */
}

static int rebuild_anthropic(const char *cap, size_t n, cg_buf *out) {
    ant_acc a = {NULL, json_array(), 0};
    int rc = -1;
    if (!a.parts || each_event(cap, n, ant_event, &a) != 0 || !a.msg || !a.stopped ||
        !json_is_object(json_object_get(a.msg, "usage")))
        goto done;
    char *s = json_dumps(a.msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = s && cg_buf_puts(out, s) == 0 ? 0 : -1;
    free(s);
done:
    json_decref(a.msg);
    json_decref(a.parts);
    return rc;
}

int cg_replay_rebuild(int anthropic, const char *cap, size_t cap_len, cg_buf *out) {
    return anthropic ? rebuild_anthropic(cap, cap_len, out) : rebuild_openai(cap, cap_len, out);
}

/* --- SSE replay -------------------------------------------------------------- */

static int emit(cg_buf *out, const char *event, json_t *data) {
    char *s = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    if (!s)
        return -1;
    int rc = 0;
    if (event)
        rc |= cg_buf_printf(out, "event: %s\n", event);
    rc |= cg_buf_puts(out, "data: ");
    rc |= cg_buf_puts(out, s);
    rc |= cg_buf_puts(out, "\n\n");
    free(s);
    return rc ? -1 : 0;
}

/* A chunk with the response's id/created/model/fingerprint and one choice
 * (or none, for the usage chunk). */
static json_t *chunk(const json_t *resp, json_t *choice, int include_usage) {
    json_t *c = json_object();
    if (!c)
        return NULL;
    static const char *const keys[] = {
        "id", "created", "model", "service_tier", "system_fingerprint", NULL};
    json_object_set(c, "id", json_object_get(resp, keys[0]));
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    for (int i = 1; keys[i]; i++) {
        json_t *v = json_object_get(resp, keys[i]);
        if (v)
            json_object_set(c, keys[i], v);
    }
    json_t *arr = json_array();
    if (choice)
        json_array_append_new(arr, choice);
    json_object_set_new(c, "choices", arr);
    if (include_usage)
        json_object_set_new(c, "usage", json_null());
    return c;
}

static json_t *choice_delta(json_int_t index, json_t *delta, json_t *logprobs, json_t *finish) {
    return json_pack("{s:I,s:o,s:o,s:o}", "index", index, "delta", delta, "logprobs",
                     logprobs ? logprobs : json_null(), "finish_reason",
                     finish ? finish : json_null());
}

static int sse_openai(const json_t *resp, int include_usage, cg_buf *out) {
    json_t *choices = json_object_get(resp, "choices");
    if (!json_is_array(choices) || !json_array_size(choices))
        return -1;
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch) {
        json_int_t index = json_is_integer(json_object_get(ch, "index"))
                               ? json_integer_value(json_object_get(ch, "index"))
                               : (json_int_t)i;
        json_t *msg = json_object_get(ch, "message");
        json_t *content = json_object_get(msg, "content");
        json_t *tcs = json_object_get(msg, "tool_calls");
        json_t *role = json_object();
        if (!role)
            return -1;
        json_object_set_new(role, "role", json_string("assistant"));
        json_object_set_new(role, "content",
                            json_is_string(content) ? json_string("") : json_null());
        json_object_set_new(role, "refusal", json_null());
        if (emit(out, NULL, chunk(resp, choice_delta(index, role, NULL, NULL), include_usage)))
            return -1;
        if (json_is_string(content) && json_string_length(content)) {
            json_t *lp = json_object_get(ch, "logprobs");
            json_t *d = json_pack("{s:O}", "content", content);
            if (emit(
                    out, NULL,
                    chunk(resp,
                          choice_delta(index, d, json_is_object(lp) ? json_incref(lp) : NULL, NULL),
                          include_usage)))
                return -1;
        }
        if (json_is_array(tcs) && json_array_size(tcs)) {
            json_t *arr = json_array();
            size_t t;
            json_t *tc;
            json_array_foreach(tcs, t, tc) {
                json_t *fn = json_object_get(tc, "function");
                json_array_append_new(arr, json_pack("{s:I,s:O?,s:s,s:{s:O?,s:O?}}", "index",
                                                     (json_int_t)t, "id", json_object_get(tc, "id"),
                                                     "type", "function", "function", "name",
                                                     json_object_get(fn, "name"), "arguments",
                                                     json_object_get(fn, "arguments")));
            }
            json_t *d = json_pack("{s:o}", "tool_calls", arr);
            if (emit(out, NULL, chunk(resp, choice_delta(index, d, NULL, NULL), include_usage)))
                return -1;
        }
        json_t *fin = json_object_get(ch, "finish_reason");
        if (emit(out, NULL,
                 chunk(resp,
                       choice_delta(index, json_object(), NULL,
                                    json_is_string(fin) ? json_incref(fin) : json_string("stop")),
                       include_usage)))
            return -1;
    }
    if (include_usage) {
        json_t *c = chunk(resp, NULL, 0);
        json_t *u = json_object_get(resp, "usage");
        if (!c)
            return -1;
        json_object_set(c, "usage", u ? u : json_null());
        if (emit(out, NULL, c))
            return -1;
    }
    return 0;
}

static int sse_anthropic(const json_t *msg, cg_buf *out) {
    json_t *content = json_object_get(msg, "content");
    json_t *usage = json_object_get(msg, "usage");
    if (!json_is_array(content) || !json_is_object(usage))
        return -1;
    json_t *start = json_deep_copy(msg);
    if (!start)
        return -1;
    json_object_set_new(start, "content", json_array());
    json_object_set_new(start, "stop_reason", json_null());
    json_object_set_new(start, "stop_sequence", json_null());
    json_t *su = json_object_get(start, "usage");
    json_object_set_new(su, "output_tokens", json_integer(1));
    if (emit(out, "message_start",
             json_pack("{s:s,s:o}", "type", "message_start", "message", start)))
        return -1;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        json_t *sb = json_deep_copy(b);
        json_t *delta = NULL, *delta2 = NULL;
        if (!sb || !type) {
            json_decref(sb);
            return -1;
        }
        if (strcmp(type, "text") == 0) {
            json_t *t = json_object_get(b, "text");
            json_object_set_new(sb, "text", json_string(""));
            if (json_string_length(t))
                delta = json_pack("{s:s,s:O}", "type", "text_delta", "text", t);
        } else if (strcmp(type, "thinking") == 0) {
            json_t *t = json_object_get(b, "thinking");
            json_t *sig = json_object_get(b, "signature");
            json_object_set_new(sb, "thinking", json_string(""));
            json_object_set_new(sb, "signature", json_string(""));
            if (json_string_length(t))
                delta = json_pack("{s:s,s:O}", "type", "thinking_delta", "thinking", t);
            if (json_is_string(sig))
                delta2 = json_pack("{s:s,s:O}", "type", "signature_delta", "signature", sig);
        } else if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0) {
            json_t *in = json_object_get(b, "input");
            json_object_set_new(sb, "input", json_object());
            char *s =
                in ? json_dumps(in, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
            if (s)
                delta = json_pack("{s:s,s:s}", "type", "input_json_delta", "partial_json", s);
            free(s);
        }
        if (emit(out, "content_block_start",
                 json_pack("{s:s,s:I,s:o}", "type", "content_block_start", "index", (json_int_t)i,
                           "content_block", sb)))
            return -1;
        json_t *ds[2] = {delta, delta2};
        for (int k = 0; k < 2; k++) {
            if (ds[k] && emit(out, "content_block_delta",
                              json_pack("{s:s,s:I,s:o}", "type", "content_block_delta", "index",
                                        (json_int_t)i, "delta", ds[k])))
                return -1;
        }
        if (emit(out, "content_block_stop",
                 json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)i)))
            return -1;
    }
    json_t *ot = json_object_get(usage, "output_tokens");
    json_t *md = json_pack("{s:s,s:{s:O?,s:O?},s:{s:O?}}", "type", "message_delta", "delta",
                           "stop_reason", json_object_get(msg, "stop_reason"), "stop_sequence",
                           json_object_get(msg, "stop_sequence"), "usage", "output_tokens", ot);
    return emit(out, "message_delta", md);
}

int cg_replay_sse(int anthropic, const char *body, size_t len, int include_usage, cg_buf *out) {
    json_t *resp = json_loadb(body, len, 0, NULL);
    if (!json_is_object(resp)) {
        json_decref(resp);
        return -1;
    }
    int rc = anthropic ? sse_anthropic(resp, out) : sse_openai(resp, include_usage, out);
    json_decref(resp);
    return rc;
}

const char *cg_replay_terminal(int anthropic) {
    return anthropic ? "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
                     : "data: [DONE]\n\n";
}
