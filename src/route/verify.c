/* verify: confidence of a cheaper tier's answer (see verify.h). */
#include "route/verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT_MAX (256u << 10)

int cg_verify_wants_json(cg_api api, const json_t *req) {
    if (api != CG_API_OPENAI)
        return 0;
    const char *t =
        json_string_value(json_object_get(json_object_get(req, "response_format"), "type"));
    return t && (strcmp(t, "json_object") == 0 || strcmp(t, "json_schema") == 0);
}

/* Case-insensitive substring search within the first n bytes of s. */
static int contains_ci(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0 || m > n)
        return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(s + i, needle, m) == 0)
            return 1;
    return 0;
}

/* Concatenated answer text (bounded) into buf; returns its length. */
static size_t answer_text(cg_api api, const json_t *resp, char *buf, size_t cap) {
    size_t n = 0;
    if (api == CG_API_OPENAI) {
        json_t *msg =
            json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message");
        const char *c = json_string_value(json_object_get(msg, "content"));
        if (c) {
            size_t l = strlen(c);
            n = l < cap ? l : cap;
            memcpy(buf, c, n);
        }
        return n;
    }
    json_t *content = json_object_get(resp, "content");
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk) {
        const char *c = json_string_value(json_object_get(blk, "text"));
        if (!c)
            continue;
        size_t l = strlen(c);
        if (l > cap - n)
            l = cap - n;
        memcpy(buf + n, c, l);
        n += l;
    }
    return n;
}

static int only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static void logprob_stats(const json_t *resp, cg_verdict *v) {
    json_t *lp = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "logprobs");
    json_t *content = json_object_get(lp, "content");
    size_t i;
    json_t *tok;
    double sum = 0, min = 0;
    int n = 0;
    json_array_foreach(content, i, tok) {
        json_t *l = json_object_get(tok, "logprob");
        if (!json_is_number(l))
            continue;
        double x = json_number_value(l);
        if (!isfinite(x))
            continue;
        sum += x;
        if (n == 0 || x < min)
            min = x;
        n++;
    }
    v->n_logprobs = n;
    v->mean_logprob = n ? sum / n : 0;
    v->min_logprob = min;
}

void cg_verify_answer(const cg_tiering_cfg *t, cg_api api, const json_t *resp, int want_json,
                      cg_verdict *v) {
    memset(v, 0, sizeof *v);
    char *buf = malloc(TEXT_MAX);
    if (!buf)
        return; /* no verdict: keep the answer */
    const char *finish = NULL;
    int refused = 0, has_tool = 0;
    if (api == CG_API_OPENAI) {
        json_t *ch = json_array_get(json_object_get(resp, "choices"), 0);
        finish = json_string_value(json_object_get(ch, "finish_reason"));
        json_t *msg = json_object_get(ch, "message");
        refused = json_is_string(json_object_get(msg, "refusal"));
        has_tool = json_array_size(json_object_get(msg, "tool_calls")) > 0;
    } else {
        finish = json_string_value(json_object_get(resp, "stop_reason"));
        refused = finish && strcmp(finish, "refusal") == 0;
        size_t i;
        json_t *blk;
        json_array_foreach(json_object_get(resp, "content"), i, blk) {
            const char *ty = json_string_value(json_object_get(blk, "type"));
            has_tool |= ty && strcmp(ty, "tool_use") == 0;
        }
    }
    size_t n = answer_text(api, resp, buf, TEXT_MAX);
    if (api == CG_API_OPENAI)
        logprob_stats(resp, v);
    if (refused) {
        v->escalate = 1;
        snprintf(v->why, sizeof v->why, "refusal");
    } else if (finish && (strcmp(finish, "length") == 0 || strcmp(finish, "max_tokens") == 0)) {
        v->escalate = 1;
        snprintf(v->why, sizeof v->why, "finish:%s", finish);
    } else if (!has_tool && only_space(buf, n)) {
        v->escalate = 1;
        snprintf(v->why, sizeof v->why, "empty");
    } else if (v->n_logprobs && v->mean_logprob < t->min_mean_logprob) {
        v->escalate = 1;
        snprintf(v->why, sizeof v->why, "logprob_mean:%.2f", v->mean_logprob);
    } else if (v->n_logprobs && v->min_logprob < t->min_token_logprob) {
        v->escalate = 1;
        snprintf(v->why, sizeof v->why, "logprob_min:%.2f", v->min_logprob);
    } else if (want_json && !has_tool) {
        json_t *j = json_loadb(buf, n, JSON_DECODE_ANY, NULL);
        if (!j) {
            v->escalate = 1;
            snprintf(v->why, sizeof v->why, "invalid_json");
        }
        json_decref(j);
    }
    if (!v->escalate && !has_tool) {
        for (size_t i = 0; i < t->n_refusal; i++)
            if (contains_ci(buf, n < 400 ? n : 400, t->refusal_phrases[i])) {
                v->escalate = 1;
                snprintf(v->why, sizeof v->why, "refusal_phrase");
                break;
            }
    }
    free(buf);
}

void cg_verify_strip_logprobs(json_t *resp) {
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(resp, "choices"), i, ch) {
        if (json_object_get(ch, "logprobs"))
            json_object_set_new(ch, "logprobs", json_null()); /* as if never asked */
    }
}
