/* usage: provider usage objects -> cg_usage (see usage.h).
 *
 * Owns: reading OpenAI (Chat Completions and Responses), OpenAI embeddings
 * and Anthropic usage objects, including Anthropic stream deltas, with the
 * includes/excludes rules of usage.h. Every count must be a JSON integer in
 * [0, CG_USAGE_MAX_TOKENS]; a missing or null field counts as 0 / not
 * reported. Nothing is written to the output unless the whole object is valid.
 */
#include "cost/usage.h"

#include <string.h>

#include "core/log.h"
#include "cost/cost_internal.h"

/* Optional count: 0 with *present = 0 when missing or null; -1 when it is
 * not an integer or out of range. */
static int get_count(const json_t *obj, const char *key, int64_t *out, int *present) {
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = 0;
    *present = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -1;
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > CG_USAGE_MAX_TOKENS)
        return -1;
    *out = (int64_t)n;
    *present = 1;
    return 0;
}

/* Optional nested object: NULL when missing or null; -1 for another type. */
static int get_obj(const json_t *obj, const char *key, const json_t **out) {
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return -1;
    *out = v;
    return 0;
}

/* First present of two alternative names (Chat Completions vs Responses). */
static int get_count_alt(const json_t *obj, const char *a, const char *b, int64_t *out,
                         int *present) {
    int64_t vb;
    int pb;
    if (get_count(obj, a, out, present) != 0 || get_count(obj, b, &vb, &pb) != 0)
        return -1;
    if (!*present && pb) {
        *out = vb;
        *present = 1;
    }
    return 0;
}

static int get_obj_alt(const json_t *obj, const char *a, const char *b, const json_t **out) {
    const json_t *ob;
    if (get_obj(obj, a, out) != 0 || get_obj(obj, b, &ob) != 0)
        return -1;
    if (!*out)
        *out = ob;
    return 0;
}

int cg_usage_from_openai(const json_t *usage, cg_usage *out) {
    int64_t prompt, completion, cached = 0, reasoning = 0, total;
    int p_prompt, p_completion, p_cached = 0, p_reasoning = 0, p_total;
    const json_t *pd, *cd;
    memset(out, 0, sizeof *out);
    if (!json_is_object(usage))
        return -1;
    if (get_count_alt(usage, "prompt_tokens", "input_tokens", &prompt, &p_prompt) ||
        get_count_alt(usage, "completion_tokens", "output_tokens", &completion, &p_completion) ||
        get_count(usage, "total_tokens", &total, &p_total) ||
        get_obj_alt(usage, "prompt_tokens_details", "input_tokens_details", &pd) ||
        get_obj_alt(usage, "completion_tokens_details", "output_tokens_details", &cd))
        return -1;
    if (pd && get_count(pd, "cached_tokens", &cached, &p_cached) != 0)
        return -1;
    if (cd && get_count(cd, "reasoning_tokens", &reasoning, &p_reasoning) != 0)
        return -1;
    /* OpenAI: prompt includes cached, completion includes reasoning. */
    if (cached > prompt || reasoning > completion)
        return -1;
    out->input = prompt - cached;
    out->cached_read = cached;
    out->output = completion;
    out->reasoning = reasoning;
    if (p_prompt || p_cached)
        out->have |= CG_USAGE_HAVE_INPUT;
    if (p_completion || p_reasoning)
        out->have |= CG_USAGE_HAVE_OUTPUT;
    return 0;
}

int cg_usage_from_openai_embedding(const json_t *usage, cg_usage *out) {
    int64_t prompt, total;
    int p_prompt, p_total;
    memset(out, 0, sizeof *out);
    if (!json_is_object(usage))
        return -1;
    if (get_count(usage, "prompt_tokens", &prompt, &p_prompt) ||
        get_count(usage, "total_tokens", &total, &p_total))
        return -1;
    out->embedding = p_prompt ? prompt : total;
    if (p_prompt || p_total)
        out->have = CG_USAGE_HAVE_EMBED;
    return 0;
}

/* Every Anthropic usage field, with presence. */
typedef struct anth_fields {
    int64_t in, out, read, create, w5, w1, web;
    int p_in, p_out, p_read, p_create, p_w5, p_w1, p_web;
} anth_fields;

static int anth_parse(const json_t *u, anth_fields *f) {
    const json_t *cc, *stu;
    memset(f, 0, sizeof *f);
    if (!json_is_object(u))
        return -1;
    if (get_count(u, "input_tokens", &f->in, &f->p_in) ||
        get_count(u, "output_tokens", &f->out, &f->p_out) ||
        get_count(u, "cache_read_input_tokens", &f->read, &f->p_read) ||
        get_count(u, "cache_creation_input_tokens", &f->create, &f->p_create) ||
        get_obj(u, "cache_creation", &cc) || get_obj(u, "server_tool_use", &stu))
        return -1;
    if (cc && (get_count(cc, "ephemeral_5m_input_tokens", &f->w5, &f->p_w5) ||
               get_count(cc, "ephemeral_1h_input_tokens", &f->w1, &f->p_w1)))
        return -1;
    if (stu && get_count(stu, "web_search_requests", &f->web, &f->p_web))
        return -1;
    if ((f->p_w5 || f->p_w1) && f->p_create && f->w5 + f->w1 != f->create)
        CG_DEBUG("usage: anthropic cache_creation breakdown %lld+%lld != "
                 "cache_creation_input_tokens %lld; using the breakdown",
                 (long long)f->w5, (long long)f->w1, (long long)f->create);
    return 0;
}

int cg_usage_from_anthropic(const json_t *usage, cg_usage *out) {
    anth_fields f;
    memset(out, 0, sizeof *out);
    if (anth_parse(usage, &f) != 0)
        return -1;
    /* Anthropic: input_tokens excludes cache reads and writes. The 5m/1h
     * breakdown, when present, is authoritative; never add both. */
    out->input = f.in;
    out->cached_read = f.read;
    if (f.p_w5 || f.p_w1) {
        out->cache_write_5m = f.w5;
        out->cache_write_1h = f.w1;
    } else {
        out->cache_write_5m = f.create;
    }
    out->output = f.out;
    out->web_searches = f.web;
    if (f.p_in || f.p_read || f.p_create || f.p_w5 || f.p_w1)
        out->have |= CG_USAGE_HAVE_INPUT;
    if (f.p_out)
        out->have |= CG_USAGE_HAVE_OUTPUT;
    return 0;
}

int cg_usage_anthropic_delta(cg_usage *acc, const json_t *delta_usage) {
    anth_fields f;
    if (!acc || anth_parse(delta_usage, &f) != 0)
        return -1; /* acc untouched */
    /* Cumulative values: each field present replaces the one it names. */
    if (f.p_in)
        acc->input = f.in;
    if (f.p_read)
        acc->cached_read = f.read;
    if (f.p_w5 || f.p_w1) {
        if (f.p_w5)
            acc->cache_write_5m = f.w5;
        if (f.p_w1)
            acc->cache_write_1h = f.w1;
    } else if (f.p_create && f.create != acc->cache_write_5m + acc->cache_write_1h) {
        /* A new total without breakdown: keep the known 1 h part, the rest
         * is 5 min (the default TTL). */
        if (acc->cache_write_1h > f.create)
            acc->cache_write_1h = 0;
        acc->cache_write_5m = f.create - acc->cache_write_1h;
    }
    if (f.p_out) {
        acc->output = f.out;
        acc->have |= CG_USAGE_HAVE_OUTPUT;
    }
    if (f.p_web)
        acc->web_searches = f.web;
    if (f.p_in || f.p_read || f.p_create || f.p_w5 || f.p_w1)
        acc->have |= CG_USAGE_HAVE_INPUT;
    return 0;
}

int64_t cg_usage_input_total(const cg_usage *u) {
    return u->input + u->cached_read + u->cache_write_5m + u->cache_write_1h;
}
