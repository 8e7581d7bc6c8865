/* config_tiering: the `tiering` section of the config.
 *
 * Owns: parsing and validating model tiers (cheapest first, one model per
 * API each), routing rules (first match wins), which requests may be routed
 * (virtual models, keys allowed to be re-routed), the cascade's confidence
 * thresholds and refusal phrases, the bandit's parameters and the optional
 * learned-router file. Shaped like the seeds' config/tiering.yaml:
 *
 *   tiering:
 *     default_tier: medium
 *     virtual_models: ["costgate/auto"]
 *     routable_keys: ["app"]              # or ["*"]
 *     tiers:                              # cheapest first
 *       small:  {openai: gpt-4o-mini, anthropic: claude-haiku-4-5}
 *       medium: {openai: gpt-4o, anthropic: claude-sonnet-4-5}
 *       large:  {openai: o1, anthropic: claude-opus-4-1}
 *     rules:
 *       - {intent: small_talk, tier: small}
 *       - {segment: rnd_engineer, tier: large}
 *       - {complexity: simple, tier: small}
 *     cascade: {enabled: true, stream: buffer, min_mean_logprob: -1.0}
 *     bandit: {enabled: true, lambda_per_usd: 10, explore_max: 0.1}
 *     learned: {model: var/models/router.bin, threshold: 0.5}
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define RULES_MAX 256
#define LIST_MAX 256

static const char *const DEFAULT_REFUSALS[] = {"I can't help with that",
                                               "I cannot help with that",
                                               "I'm sorry, but I can't",
                                               "I am unable to",
                                               "I'm not able to",
                                               "As an AI language model",
                                               NULL};

static int tier_index(const cg_tiering_cfg *t, const char *name) {
    for (size_t i = 0; i < t->n_tiers; i++)
        if (strcmp(t->tiers[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int read_tier(cfg_ctx *x, const cfg_field *f, const cg_tiering_cfg *t, int *out) {
    char name[32];
    if (cfg_str(x, f, name, sizeof name) < 0)
        return -1;
    *out = tier_index(t, name);
    if (*out < 0)
        return cfg_fail(x, f->line, f->path, "unknown tier \"%s\" (not under tiering.tiers)", name);
    return 0;
}

/* A float in [lo, hi]. */
static int read_double(cfg_ctx *x, const cfg_field *f, double lo, double hi, double *out) {
    char s[64];
    if (cfg_str(x, f, s, sizeof s) < 0)
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return cfg_fail(x, f->line, f->path, "must be a number from %g to %g, got \"%.40s\"", lo,
                        hi, s);
    *out = v;
    return 0;
}

/* A sequence of strings -> a malloc'd array of malloc'd strings. */
static int read_list(cfg_ctx *x, const cfg_field *f, char ***out, size_t *n) {
    if (cfg_check_seq(x, f->v, f->path) < 0)
        return -1;
    size_t cnt = (size_t)(f->v->data.sequence.items.top - f->v->data.sequence.items.start);
    if (cnt > LIST_MAX)
        return cfg_fail(x, f->line, f->path, "too many entries (max %d)", LIST_MAX);
    *out = cnt ? calloc(cnt, sizeof **out) : NULL;
    if (cnt && !*out)
        return cfg_fail(x, f->line, f->path, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        cfg_field e;
        e.v = cfg_node(x, f->v->data.sequence.items.start[i]);
        e.line = cfg_line(e.v);
        cfg_path_idx(e.path, sizeof e.path, f->path, i);
        cg_buf b;
        cg_buf_init(&b, 4096);
        if (e.v->type != YAML_SCALAR_NODE) {
            cg_buf_free(&b);
            return cfg_fail(x, e.line, e.path, "expected a string, got %s", cfg_kind(e.v));
        }
        if (cfg_text(x, &e, &b) < 0) {
            cg_buf_free(&b);
            return -1;
        }
        if (b.len == 0) {
            cg_buf_free(&b);
            return cfg_fail(x, e.line, e.path, "must not be empty");
        }
        (*out)[i] = strndup(b.data, b.len);
        cg_buf_free(&b);
        if (!(*out)[i])
            return cfg_fail(x, e.line, e.path, "out of memory");
        (*n)++;
    }
    return 0;
}

static int parse_tiers(cfg_ctx *x, const cfg_field *f, cg_tiering_cfg *t) {
    static const char *const apis[] = {"openai", "anthropic", NULL};
    if (cfg_check_map(x, f->v, f->path, NULL) < 0)
        return -1;
    size_t n = cfg_map_size(f->v);
    if (n == 0 || n > CG_TIERS_MAX)
        return cfg_fail(x, f->line, f->path, "needs 1 to %d tiers, cheapest first", CG_TIERS_MAX);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f->v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        const yaml_node_t *v = cfg_node(x, pr->value);
        char path[CFG_PATH_MAX];
        cfg_path(path, sizeof path, f->path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        cg_tier_cfg *tc = &t->tiers[i];
        size_t kl = k->data.scalar.length;
        if (kl == 0 || kl >= sizeof tc->name ||
            strcspn((const char *)k->data.scalar.value, " \t\r\n") < kl)
            return cfg_fail(x, cfg_line(k), path, "tier name must be 1..%zu bytes, no spaces",
                            sizeof tc->name - 1);
        memcpy(tc->name, k->data.scalar.value, kl);
        tc->line = cfg_line(v);
        if (cfg_is_null(v))
            return cfg_fail(x, cfg_line(v), path, "expected {openai: MODEL, anthropic: MODEL}");
        if (cfg_check_map(x, v, path, apis) < 0)
            return -1;
        int any = 0;
        for (int a = 0; a < 2; a++) {
            cfg_field m;
            if (cfg_field_get(x, v, path, apis[a], &m)) {
                if (cfg_str(x, &m, tc->model[a], sizeof tc->model[a]) < 0)
                    return -1;
                any |= tc->model[a][0] != '\0';
            }
        }
        if (!any)
            return cfg_fail(x, cfg_line(v), path, "names no model (openai: or anthropic:)");
        t->n_tiers++;
    }
    return 0;
}

static int parse_rule(cfg_ctx *x, const yaml_node_t *n, const char *path, cg_tiering_cfg *t,
                      cg_tier_rule *r) {
    static const char *const keys[] = {"intent",     "segment", "feature", "key",
                                       "complexity", "tier",    NULL};
    static const char *const cx[] = {"simple", "medium", "complex", NULL};
    if (cfg_is_null(n))
        return cfg_fail(x, cfg_line(n), path, "expected a rule mapping with a tier");
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    r->line = cfg_line(n);
    r->complexity = -1;
    cfg_field f;
    struct {
        const char *k;
        char *dst;
        size_t cap;
    } s[] = {{"intent", r->intent, sizeof r->intent},
             {"segment", r->segment, sizeof r->segment},
             {"feature", r->feature, sizeof r->feature},
             {"key", r->key, sizeof r->key}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (cfg_field_get(x, n, path, s[i].k, &f) && cfg_str(x, &f, s[i].dst, s[i].cap) < 0)
            return -1;
    if (cfg_field_get(x, n, path, "complexity", &f) && cfg_enum(x, &f, cx, &r->complexity) < 0)
        return -1;
    if (!cfg_field_get(x, n, path, "tier", &f))
        return cfg_required(x, &f);
    return read_tier(x, &f, t, &r->tier);
}

static int parse_rules(cfg_ctx *x, const cfg_field *f, cg_tiering_cfg *t) {
    if (cfg_check_seq(x, f->v, f->path) < 0)
        return -1;
    size_t n = (size_t)(f->v->data.sequence.items.top - f->v->data.sequence.items.start);
    if (n > RULES_MAX)
        return cfg_fail(x, f->line, f->path, "too many rules (max %d)", RULES_MAX);
    t->rules = n ? calloc(n, sizeof *t->rules) : NULL;
    if (n && !t->rules)
        return cfg_fail(x, f->line, f->path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[CFG_PATH_MAX];
        cfg_path_idx(path, sizeof path, f->path, i);
        if (parse_rule(x, cfg_node(x, f->v->data.sequence.items.start[i]), path, t, &t->rules[i]) <
            0)
            return -1;
        t->n_rules++;
    }
    return 0;
}

static int parse_cascade(cfg_ctx *x, const cfg_field *sec, cg_tiering_cfg *t) {
    static const char *const keys[] = {
        "enabled",         "stream", "request_logprobs", "min_mean_logprob", "min_token_logprob",
        "refusal_phrases", NULL};
    static const char *const modes[] = {"off", "buffer", NULL};
    if (cfg_check_map(x, sec->v, sec->path, keys) < 0)
        return -1;
    t->cascade = 1;
    cfg_field f;
    if (cfg_field_get(x, sec->v, sec->path, "enabled", &f) && cfg_bool(x, &f, &t->cascade) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "stream", &f) &&
        cfg_enum(x, &f, modes, &t->cascade_stream) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "request_logprobs", &f) &&
        cfg_bool(x, &f, &t->request_logprobs) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "min_mean_logprob", &f) &&
        read_double(x, &f, -100, 0, &t->min_mean_logprob) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "min_token_logprob", &f) &&
        read_double(x, &f, -1000, 0, &t->min_token_logprob) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "refusal_phrases", &f)) {
        for (size_t i = 0; i < t->n_refusal; i++)
            free(t->refusal_phrases[i]);
        free(t->refusal_phrases);
        t->refusal_phrases = NULL;
        t->n_refusal = 0;
        if (read_list(x, &f, &t->refusal_phrases, &t->n_refusal) < 0)
            return -1;
    }
    return 0;
}

static int parse_bandit(cfg_ctx *x, const cfg_field *sec, cg_tiering_cfg *t) {
    static const char *const keys[] = {"enabled", "lambda_per_usd", "explore_max",
                                       "implicit_reward", NULL};
    if (cfg_check_map(x, sec->v, sec->path, keys) < 0)
        return -1;
    t->bandit = 1;
    cfg_field f;
    if (cfg_field_get(x, sec->v, sec->path, "enabled", &f) && cfg_bool(x, &f, &t->bandit) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "lambda_per_usd", &f) &&
        read_double(x, &f, 0, 1e9, &t->lambda_per_usd) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "explore_max", &f) &&
        read_double(x, &f, 0, 1, &t->explore_max) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "implicit_reward", &f) &&
        read_double(x, &f, 0, 1, &t->implicit_reward) < 0)
        return -1;
    return 0;
}

static int parse_learned(cfg_ctx *x, const cfg_field *sec, cg_tiering_cfg *t) {
    static const char *const keys[] = {"model", "threshold", NULL};
    if (cfg_check_map(x, sec->v, sec->path, keys) < 0)
        return -1;
    cfg_field f;
    if (!cfg_field_get(x, sec->v, sec->path, "model", &f))
        return cfg_required(x, &f);
    if (cfg_str(x, &f, t->learned_model, sizeof t->learned_model) < 0)
        return -1;
    if (cfg_field_get(x, sec->v, sec->path, "threshold", &f) &&
        read_double(x, &f, 0, 1, &t->learned_threshold) < 0)
        return -1;
    return 0;
}

static int defaults(cfg_ctx *x, int line, cg_tiering_cfg *t) {
    t->default_tier = -1;
    t->min_mean_logprob = -1.0;
    t->min_token_logprob = -1000;
    t->request_logprobs = 1;
    t->lambda_per_usd = 10;
    t->explore_max = 0.1;
    t->implicit_reward = 0.7;
    t->learned_threshold = 0.5;
    size_t n = 0;
    while (DEFAULT_REFUSALS[n])
        n++;
    t->refusal_phrases = calloc(n, sizeof *t->refusal_phrases);
    if (!t->refusal_phrases)
        return cfg_fail(x, line, "tiering", "out of memory");
    for (size_t i = 0; i < n; i++) {
        t->refusal_phrases[i] = strdup(DEFAULT_REFUSALS[i]);
        if (!t->refusal_phrases[i])
            return cfg_fail(x, line, "tiering", "out of memory");
        t->n_refusal++;
    }
    return 0;
}

int cfg_parse_tiering(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {
        "enabled", "default_tier", "virtual_models", "routable_keys", "tiers",
        "rules",   "cascade",      "bandit",         "learned",       NULL};
    cg_tiering_cfg *t = &c->tiering;
    cfg_field sec, f;
    if (!cfg_field_get(x, root, "", "tiering", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "tiering", keys) < 0)
        return -1;
    t->line = sec.line;
    t->enabled = 1;
    if (defaults(x, sec.line, t) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "tiering", "enabled", &f) && cfg_bool(x, &f, &t->enabled) < 0)
        return -1;
    if (!cfg_field_get(x, sec.v, "tiering", "tiers", &f))
        return cfg_required(x, &f);
    if (parse_tiers(x, &f, t) < 0)
        return -1;
    t->default_tier = t->n_tiers > 1 ? 1 : 0; /* medium-ish unless said */
    if (cfg_field_get(x, sec.v, "tiering", "default_tier", &f) &&
        read_tier(x, &f, t, &t->default_tier) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "tiering", "rules", &f) && parse_rules(x, &f, t) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "tiering", "virtual_models", &f)) {
        if (read_list(x, &f, &t->virtual_models, &t->n_virtual) < 0)
            return -1;
    } else {
        t->virtual_models = calloc(1, sizeof *t->virtual_models);
        if (!t->virtual_models || !(t->virtual_models[0] = strdup("costgate/auto")))
            return cfg_fail(x, sec.line, "tiering", "out of memory");
        t->n_virtual = 1;
    }
    if (cfg_field_get(x, sec.v, "tiering", "routable_keys", &f) &&
        read_list(x, &f, &t->routable_keys, &t->n_routable) < 0)
        return -1;
    for (size_t i = 0; i < t->n_routable; i++) {
        if (strcmp(t->routable_keys[i], "*") == 0)
            continue;
        size_t k = 0;
        while (k < c->n_keys && strcmp(c->keys[k].name, t->routable_keys[i]) != 0)
            k++;
        if (k == c->n_keys) {
            char path[CFG_PATH_MAX];
            cfg_path_idx(path, sizeof path, "tiering.routable_keys", i);
            return cfg_fail(x, f.line, path, "names no key under keys: (\"%s\")",
                            t->routable_keys[i]);
        }
    }
    if (cfg_field_get(x, sec.v, "tiering", "cascade", &f) && parse_cascade(x, &f, t) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "tiering", "bandit", &f) && parse_bandit(x, &f, t) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "tiering", "learned", &f) && parse_learned(x, &f, t) < 0)
        return -1;
    /* every tier model must be served by a configured provider of its API */
    for (size_t i = 0; i < t->n_tiers; i++)
        for (int a = 0; a < 2; a++) {
            const char *m = t->tiers[i].model[a];
            if (m[0] && !cg_config_provider_for(c, (cg_api)a, m)) {
                char path[CFG_PATH_MAX];
                snprintf(path, sizeof path, "tiering.tiers.%s.%s", t->tiers[i].name,
                         a ? "anthropic" : "openai");
                return cfg_fail(x, t->tiers[i].line, path,
                                "model \"%s\" is not served by any %s provider", m,
                                a ? "Anthropic" : "OpenAI");
            }
        }
    return 0;
}

void cfg_free_tiering(cg_tiering_cfg *t) {
    char **lists[] = {t->virtual_models, t->routable_keys, t->refusal_phrases};
    size_t ns[] = {t->n_virtual, t->n_routable, t->n_refusal};
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < ns[l]; i++)
            free(lists[l][i]);
        free(lists[l]);
    }
    free(t->rules);
    memset(t, 0, sizeof *t);
}
