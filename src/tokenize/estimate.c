/* estimate: request body -> token bounds -> nano-USD range.
 *
 * Owns: choosing the counter per API, the output bound rules, and the
 * money arithmetic of the pre-call estimate (see estimate.h).
 */
#include "tokenize/estimate.h"

#include "core/money.h"
#include "tokenize/chat.h"
#include "tokenize/claude.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cg_tok_api cg_tok_api_from_path(const char *path) {
    if (!path)
        return CG_TOK_API_UNKNOWN;
    if (strstr(path, "/chat/completions"))
        return CG_TOK_API_OPENAI_CHAT;
    if (strstr(path, "/embeddings"))
        return CG_TOK_API_OPENAI_EMBEDDINGS;
    if (strstr(path, "/responses"))
        return CG_TOK_API_OPENAI_RESPONSES;
    if (strstr(path, "/messages") && !strstr(path, "count_tokens"))
        return CG_TOK_API_ANTHROPIC_MESSAGES;
    return CG_TOK_API_UNKNOWN;
}

const char *cg_tok_api_name(cg_tok_api api) {
    switch (api) {
    case CG_TOK_API_OPENAI_CHAT:
        return "openai-chat";
    case CG_TOK_API_OPENAI_EMBEDDINGS:
        return "openai-embeddings";
    case CG_TOK_API_OPENAI_RESPONSES:
        return "openai-responses";
    case CG_TOK_API_ANTHROPIC_MESSAGES:
        return "anthropic-messages";
    default:
        return "unknown";
    }
}

int64_t cg_estimate_cost(const cg_price *price, int batch, int64_t in, int64_t out) {
    if (!price)
        return 0;
    cg_price p;
    cg_price_effective(price, &p);
    int64_t pin = batch ? p.batch_input : p.input;
    int64_t pout = batch ? p.batch_output : p.output;
    __int128 f = 0;
    if (pin > 0 && in > 0)
        f += cg_money_tok_femto(in, pin);
    if (pout > 0 && out > 0)
        f += cg_money_tok_femto(out, pout);
    return cg_money_femto_to_nano(f);
}

/* A non-negative integer field, or -1 when absent/invalid. */
static int64_t int_field(const json_t *body, const char *key) {
    const json_t *v = json_object_get(body, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (int64_t)json_integer_value(v);
}

static int64_t output_bound(const json_t *body, const char *const *keys, const cg_price *price,
                            unsigned *flags) {
    int64_t out = -1;
    for (size_t i = 0; keys[i] && out < 0; i++)
        out = int_field(body, keys[i]);
    if (out < 0 && price && price->max_output_tokens > 0)
        out = price->max_output_tokens;
    if (out < 0) {
        *flags |= CG_EST_OUTPUT_UNBOUNDED;
        out = 0;
    }
    int64_t n = int_field(body, "n");
    if (n > 1 && n <= 128)
        out *= n;
    return out;
}

static int count_embeddings(const cg_tokenizer *t, const json_t *body, int64_t *tokens, char *err,
                            size_t errlen) {
    const json_t *in = json_object_get(body, "input");
    *tokens = 0;
    if (json_is_string(in)) {
        *tokens = cg_tok_count(t, json_string_value(in), json_string_length(in), 0);
        return *tokens < 0 ? -1 : 0;
    }
    if (!json_is_array(in)) {
        snprintf(err, errlen, "embeddings request has no \"input\"");
        return -1;
    }
    size_t i;
    json_t *v;
    int all_int = 1;
    json_array_foreach(in, i, v) {
        if (!json_is_integer(v))
            all_int = 0;
    }
    if (all_int) { /* one input given as token ids */
        *tokens = (int64_t)json_array_size(in);
        return 0;
    }
    json_array_foreach(in, i, v) {
        if (json_is_string(v)) {
            int64_t c = cg_tok_count(t, json_string_value(v), json_string_length(v), 0);
            if (c < 0)
                return -1;
            *tokens += c;
        } else if (json_is_array(v)) {
            *tokens += (int64_t)json_array_size(v);
        } else {
            snprintf(err, errlen, "embeddings input %zu is neither text nor token ids", i);
            return -1;
        }
    }
    return 0;
}

/* Responses API: input (string or items) + instructions, counted with the
 * chat rules by converting items to chat messages. Approximate framing. */
static int count_responses(const cg_tokenizer *t, const char *model, const json_t *body,
                           int64_t *tokens, unsigned *flags, char *err, size_t errlen) {
    json_t *chat = json_object();
    json_t *msgs = json_array();
    int rc = -1;
    if (!chat || !msgs)
        goto done;
    const json_t *ins = json_object_get(body, "instructions");
    if (json_is_string(ins))
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", ins));
    const json_t *in = json_object_get(body, "input");
    if (json_is_string(in)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", in));
    } else if (json_is_array(in)) {
        size_t i;
        json_t *item;
        json_array_foreach(in, i, item) {
            if (json_object_get(item, "role")) {
                json_array_append(msgs, item);
            } else { /* function_call, function_call_output, ...: their text */
                json_t *m = json_object();
                const json_t *v;
                if ((v = json_object_get(item, "arguments")) && json_is_string(v))
                    json_object_set(m, "content", (json_t *)v);
                else if ((v = json_object_get(item, "output")) && json_is_string(v))
                    json_object_set(m, "content", (json_t *)v);
                json_object_set_new(m, "role", json_string("tool"));
                json_array_append_new(msgs, m);
            }
        }
    } else {
        snprintf(err, errlen, "responses request has no \"input\"");
        goto done;
    }
    json_object_set(chat, "messages", msgs);
    const json_t *tools = json_object_get(body, "tools");
    if (json_is_array(tools)) { /* {type:function,name,...} -> {function:{...}} */
        json_t *ct = json_array();
        size_t i;
        json_t *tool;
        json_array_foreach(tools, i, tool) {
            json_array_append_new(ct,
                                  json_object_get(tool, "name")
                                      ? json_pack("{s:s,s:O}", "type", "function", "function", tool)
                                      : json_incref(tool));
        }
        json_object_set_new(chat, "tools", ct);
    }
    cg_chat_count cc;
    if (cg_chat_count_openai(t, model, chat, &cc, err, errlen) != 0)
        goto done;
    *tokens = cc.tokens;
    *flags |= CG_EST_APPROX | (cc.images_unknown ? CG_EST_IMAGES_UNKNOWN : 0);
    rc = 0;
done:
    json_decref(msgs);
    json_decref(chat);
    return rc;
}

int cg_estimate_request(cg_tok_api api, const char *model, const json_t *body,
                        const cg_price *price, int batch, cg_estimate *out, char *err,
                        size_t errlen) {
    static const char *const CHAT_KEYS[] = {"max_completion_tokens", "max_tokens", NULL};
    static const char *const RESP_KEYS[] = {"max_output_tokens", NULL};
    static const char *const ANTH_KEYS[] = {"max_tokens", NULL};
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    memset(out, 0, sizeof *out);
    out->api = api;
    out->encoding = CG_ENC_NONE;
    if (!json_is_object(body)) {
        snprintf(err, errlen, "request body is not a JSON object");
        return -1;
    }
    if (!model)
        model = json_string_value(json_object_get(body, "model"));
    if (!model) {
        snprintf(err, errlen, "request has no model");
        return -1;
    }
    if (batch)
        out->flags |= CG_EST_BATCH;
    if (!price)
        out->flags |= CG_EST_UNPRICED;

    if (api == CG_TOK_API_ANTHROPIC_MESSAGES) {
        const cg_tokenizer *t = cg_tok_get(CG_ENC_CL100K, err, errlen);
        cg_claude_count cc;
        if (!t || cg_claude_count_messages(t, model, body, &cc, err, errlen) != 0)
            return -1;
        out->encoding = CG_ENC_CL100K;
        out->input_tokens = cc.estimate;
        out->input_tokens_upper = cc.upper;
        out->flags |= CG_EST_CLAUDE | (cc.approx ? CG_EST_APPROX : 0) |
                      (cc.images_unknown ? CG_EST_IMAGES_UNKNOWN : 0);
        out->output_tokens_max = output_bound(body, ANTH_KEYS, price, &out->flags);
    } else if (api == CG_TOK_API_OPENAI_CHAT || api == CG_TOK_API_OPENAI_EMBEDDINGS ||
               api == CG_TOK_API_OPENAI_RESPONSES) {
        cg_encoding e = cg_encoding_for_model(model);
        if (e == CG_ENC_NONE) {
            snprintf(err, errlen, "no tokenizer known for model %s", model);
            return -1;
        }
        const cg_tokenizer *t = cg_tok_get(e, err, errlen);
        if (!t)
            return -1;
        out->encoding = e;
        if (api == CG_TOK_API_OPENAI_CHAT) {
            cg_chat_count cc;
            if (cg_chat_count_openai(t, model, body, &cc, err, errlen) != 0)
                return -1;
            out->input_tokens = cc.tokens;
            out->flags |= (cc.approx ? CG_EST_APPROX : CG_EST_EXACT) |
                          (cc.images_unknown ? CG_EST_IMAGES_UNKNOWN : 0);
            out->output_tokens_max = output_bound(body, CHAT_KEYS, price, &out->flags);
        } else if (api == CG_TOK_API_OPENAI_EMBEDDINGS) {
            if (count_embeddings(t, body, &out->input_tokens, err, errlen) != 0)
                return -1;
            out->flags |= CG_EST_EXACT;
        } else {
            if (count_responses(t, model, body, &out->input_tokens, &out->flags, err, errlen) != 0)
                return -1;
            out->output_tokens_max = output_bound(body, RESP_KEYS, price, &out->flags);
        }
        out->input_tokens_upper = out->input_tokens;
    } else {
        snprintf(err, errlen, "unknown API");
        return -1;
    }
    if (price && price->context_window > 0 && out->input_tokens > price->context_window)
        out->flags |= CG_EST_OVER_CONTEXT;
    out->cost_low = cg_estimate_cost(price, batch, out->input_tokens, 0);
    out->cost_high =
        cg_estimate_cost(price, batch, out->input_tokens_upper, out->output_tokens_max);
    return 0;
}
