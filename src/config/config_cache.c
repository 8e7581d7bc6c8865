/* config_cache: the `cache` section of the config (the exact response cache).
 *
 * Owns: parsing and validating the cache's size bound, TTL policy (a default
 * and per intent, shaped like the seeds' config/cache_ttl.yaml, with
 * per-tenant overrides), partitions (tenant always; segment, user, feature
 * on request; explicit cross-tenant share groups), the sampling-temperature
 * ceiling, the write guard (answer size bound, deny patterns, tool calls)
 * and request coalescing. Errors name the file, the line and the field.
 *
 *   cache:
 *     max_bytes: 64MiB
 *     max_temperature: 1.0
 *     ttl:
 *       default: 3600
 *       by_intent: {knowledge_lookup: 86400, decision_support: 3600,
 *                   troubleshoot: 1800, small_talk: 0}
 *     partition_by: [segment]
 *     tenants:
 *       acme: {share_group: docs, ttl: {default: 600}}
 *       beta: {enabled: false}
 *     store_tool_calls: false
 *     guard: {max_bytes: 1MiB, deny: ["as an ai language model"]}
 *     coalesce: {enabled: true, wait_ms: 30000}
 *     semantic:                      # off unless enabled (docs/semantic-cache.md)
 *       enabled: true
 *       threshold: 0.98              # the floor; x-costgate-semantic-threshold may raise it
 *       gate_rules: default          # or a list / comma list of rule names (cache/gate.h)
 *       embedder: builtin            # or {url, model, api_key_env, dimensions, timeout_ms}
 *       model_file: var/models/use-lite.bin
 *       capacity_per_partition: 100000
 *       max_partitions: 4096
 *       index_dir: var/semantic
 *       single_turn: strict          # or same_context
 *       pool_threads: 2
 *       queue_max: 1024
 */
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/gate.h"
#include "config/config_internal.h"

#define TTL_MAX INT64_C(31536000) /* one year, in seconds */
#define DENY_MAX 64
#define INTENTS_MAX 256

/* The seeds' config/cache_ttl.yaml, used when ttl.by_intent is not given. */
static const cg_cache_intent_ttl DEFAULT_INTENTS[] = {
    {"knowledge_lookup", 86400},
    {"decision_support", 3600},
    {"troubleshoot", 1800},
    {"small_talk", 0},
};

static int name_of(cfg_ctx *x, const yaml_node_t *k, const char *path, char *out, size_t cap) {
    size_t n = k->data.scalar.length;
    const char *s = (const char *)k->data.scalar.value;
    if (n == 0 || n >= cap || memchr(s, '\0', n) || strcspn(s, "\t\r\n") < n)
        return cfg_fail(x, cfg_line(k), path,
                        "name must be 1..%zu bytes without control characters", cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int ttl_value(cfg_ctx *x, const cfg_field *f, int64_t *out) {
    return cfg_int(x, f, 0, TTL_MAX, out);
}

/* ttl: {default: N, by_intent: {intent: N, ...}} */
static int parse_ttl(cfg_ctx *x, const yaml_node_t *n, const char *path, int64_t *dflt,
                     cg_cache_intent_ttl **by, size_t *n_by, int *have_by) {
    static const char *const keys[] = {"default", "by_intent", NULL};
    if (cfg_is_null(n))
        return cfg_fail(x, cfg_line(n), path, "expected a mapping with default and/or by_intent");
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    cfg_field f;
    if (cfg_field_get(x, n, path, "default", &f) && ttl_value(x, &f, dflt) < 0)
        return -1;
    if (!cfg_field_get(x, n, path, "by_intent", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t cnt = cfg_map_size(f.v);
    if (cnt > INTENTS_MAX)
        return cfg_fail(x, f.line, f.path, "at most %d intents", INTENTS_MAX);
    *by = cnt ? calloc(cnt, sizeof **by) : NULL;
    if (cnt && !*by)
        return cfg_fail(x, f.line, f.path, "out of memory");
    *have_by = 1;
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        cfg_field vf;
        cfg_path(vf.path, sizeof vf.path, f.path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        vf.v = cfg_node(x, pr->value);
        vf.line = cfg_line(vf.v);
        cg_cache_intent_ttl *t = &(*by)[i];
        if (name_of(x, k, vf.path, t->intent, sizeof t->intent) < 0)
            return -1;
        if (cfg_is_null(vf.v))
            return cfg_fail(x, vf.line, vf.path, "expected a TTL in seconds (0 = not cached)");
        if (ttl_value(x, &vf, &t->ttl_s) < 0)
            return -1;
        (*n_by)++;
    }
    return 0;
}

static int parse_tenants(cfg_ctx *x, const yaml_node_t *sec, cg_cache_cfg *k) {
    static const char *const keys[] = {"enabled", "share_group", "ttl", NULL};
    cfg_field f;
    if (!cfg_field_get(x, sec, "cache", "tenants", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = cfg_map_size(f.v);
    k->tenants = n ? calloc(n, sizeof *k->tenants) : NULL;
    if (n && !k->tenants)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *kn = cfg_node(x, pr->key);
        const yaml_node_t *v = cfg_node(x, pr->value);
        char path[CFG_PATH_MAX];
        cfg_path(path, sizeof path, f.path, (const char *)kn->data.scalar.value,
                 kn->data.scalar.length);
        cg_cache_tenant_cfg *t = &k->tenants[i];
        k->n_tenants++;
        t->enabled = 1;
        t->ttl_default = -1;
        if (name_of(x, kn, path, t->tenant, sizeof t->tenant) < 0)
            return -1;
        if (cfg_is_null(v))
            return cfg_fail(x, cfg_line(v), path, "expected a mapping (enabled, share_group, ttl)");
        if (cfg_check_map(x, v, path, keys) < 0)
            return -1;
        cfg_field g;
        if (cfg_field_get(x, v, path, "enabled", &g) && cfg_bool(x, &g, &t->enabled) < 0)
            return -1;
        if (cfg_field_get(x, v, path, "share_group", &g)) {
            if (cfg_str(x, &g, t->share_group, sizeof t->share_group) < 0)
                return -1;
            if (!t->share_group[0])
                return cfg_fail(x, g.line, g.path, "must not be empty");
        }
        int have_by = 0;
        if (cfg_field_get(x, v, path, "ttl", &g) &&
            parse_ttl(x, g.v, g.path, &t->ttl_default, &t->by_intent, &t->n_by_intent, &have_by) <
                0)
            return -1;
    }
    return 0;
}

static int parse_partition(cfg_ctx *x, const yaml_node_t *sec, cg_cache_cfg *k) {
    static const char *const names[] = {"tenant", "segment", "user", "feature", NULL};
    static const unsigned bits[] = {0, CG_CACHE_PART_SEGMENT, CG_CACHE_PART_USER,
                                    CG_CACHE_PART_FEATURE};
    cfg_field f;
    if (!cfg_field_get(x, sec, "cache", "partition_by", &f))
        return 0;
    if (cfg_check_seq(x, f.v, f.path) < 0)
        return -1;
    size_t n = (size_t)(f.v->data.sequence.items.top - f.v->data.sequence.items.start);
    for (size_t i = 0; i < n; i++) {
        cfg_field e;
        cfg_path_idx(e.path, sizeof e.path, f.path, i);
        e.v = cfg_node(x, f.v->data.sequence.items.start[i]);
        e.line = cfg_line(e.v);
        int which;
        if (cfg_is_null(e.v))
            return cfg_fail(x, e.line, e.path, "expected segment, user or feature");
        if (cfg_enum(x, &e, names, &which) < 0)
            return -1;
        k->partition_by |= bits[which];
    }
    return 0;
}

static int parse_guard(cfg_ctx *x, const yaml_node_t *sec, cg_cache_cfg *k) {
    static const char *const keys[] = {"max_bytes", "deny", NULL};
    cfg_field f, g;
    if (!cfg_field_get(x, sec, "cache", "guard", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, keys) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "max_bytes", &g) &&
        cfg_size(x, &g, 1024, INT64_C(64) << 20, &k->guard_max_bytes) < 0)
        return -1;
    if (!cfg_field_get(x, f.v, f.path, "deny", &g))
        return 0;
    if (cfg_check_seq(x, g.v, g.path) < 0)
        return -1;
    size_t n = (size_t)(g.v->data.sequence.items.top - g.v->data.sequence.items.start);
    if (n > DENY_MAX)
        return cfg_fail(x, g.line, g.path, "at most %d patterns", DENY_MAX);
    k->deny = n ? calloc(n, sizeof *k->deny) : NULL;
    if (n && !k->deny)
        return cfg_fail(x, g.line, g.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        cfg_field e;
        cfg_path_idx(e.path, sizeof e.path, g.path, i);
        e.v = cfg_node(x, g.v->data.sequence.items.start[i]);
        e.line = cfg_line(e.v);
        if (cfg_is_null(e.v))
            return cfg_fail(x, e.line, e.path, "expected a pattern");
        char pat[1024];
        if (cfg_str(x, &e, pat, sizeof pat) < 0)
            return -1;
        if (!pat[0])
            return cfg_fail(x, e.line, e.path, "must not be empty");
        regex_t re;
        int rc = regcomp(&re, pat, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char msg[160];
            regerror(rc, &re, msg, sizeof msg);
            return cfg_fail(x, e.line, e.path, "not a valid POSIX extended regular expression: %s",
                            msg);
        }
        regfree(&re);
        k->deny[i] = strdup(pat);
        if (!k->deny[i])
            return cfg_fail(x, e.line, e.path, "out of memory");
        k->n_deny++;
    }
    return 0;
}

static int parse_coalesce(cfg_ctx *x, const yaml_node_t *sec, cg_cache_cfg *k) {
    static const char *const keys[] = {"enabled", "wait_ms", NULL};
    cfg_field f, g;
    if (!cfg_field_get(x, sec, "cache", "coalesce", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, keys) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "enabled", &g) && cfg_bool(x, &g, &k->coalesce) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "wait_ms", &g) &&
        cfg_int(x, &g, 1, 600000, &k->coalesce_wait_ms) < 0)
        return -1;
    return 0;
}

static int parse_temperature(cfg_ctx *x, const cfg_field *f, double *out) {
    char s[64];
    if (cfg_str(x, f, s, sizeof s) < 0)
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end || !isfinite(v) || v < 0 || v > 2)
        return cfg_fail(x, f->line, f->path, "must be a number from 0 to 2, got \"%.40s\"", s);
    *out = v;
    return 0;
}

/* A threshold: a number in (0, 1]. */
static int parse_threshold(cfg_ctx *x, const cfg_field *f, double *out) {
    char s[64];
    if (cfg_str(x, f, s, sizeof s) < 0)
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end || !isfinite(v) || v <= 0 || v > 1)
        return cfg_fail(x, f->line, f->path,
                        "must be a number above 0 and at most 1, got \"%.40s\"", s);
    *out = v;
    return 0;
}

/* gate_rules: "default" | "all" | "none" | "numbers,negation" | [numbers, negation] */
static int parse_gate_rules(cfg_ctx *x, const cfg_field *f, unsigned *out) {
    char list[1024] = "";
    if (f->v->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(f->v->data.sequence.items.top - f->v->data.sequence.items.start);
        size_t used = 0;
        if (n == 0) {
            snprintf(list, sizeof list, "none");
        }
        for (size_t i = 0; i < n; i++) {
            cfg_field e;
            char name[64];
            cfg_path_idx(e.path, sizeof e.path, f->path, i);
            e.v = cfg_node(x, f->v->data.sequence.items.start[i]);
            e.line = cfg_line(e.v);
            if (cfg_is_null(e.v))
                return cfg_fail(x, e.line, e.path, "expected a gate rule name");
            if (cfg_str(x, &e, name, sizeof name) < 0)
                return -1;
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "", name);
            if (w < 0 || (size_t)w >= sizeof list - used)
                return cfg_fail(x, f->line, f->path, "too many rules");
            used += (size_t)w;
        }
    } else if (cfg_str(x, f, list, sizeof list) < 0) {
        return -1;
    }
    if (cg_gate_rules_parse(list, out) != 0)
        return cfg_fail(x, f->line, f->path,
                        "unknown gate rule in \"%.80s\" (length, numbers, negation, quotes, "
                        "entities, direction, qword, time, units, code, order; or default, all, "
                        "none)",
                        list);
    return 0;
}

/* An http(s) URL with a host, without spaces, credentials or a fragment. */
static int parse_url(cfg_ctx *x, const cfg_field *f, char *out, size_t cap) {
    if (cfg_str(x, f, out, cap) < 0)
        return -1;
    size_t skip = strncmp(out, "https://", 8) == 0 ? 8 : strncmp(out, "http://", 7) == 0 ? 7 : 0;
    const char *host = out + skip;
    size_t hlen = strcspn(host, "/?#");
    const char *problem = NULL;
    if (!skip)
        problem = "must start with http:// or https://";
    else if (hlen == 0 || host[0] == ':')
        problem = "has no host";
    else if (memchr(host, '@', hlen))
        problem = "must not contain credentials (name the key's variable in api_key_env)";
    else if (strchr(out, '#'))
        problem = "must not contain a fragment";
    for (const char *p = out; *p && !problem; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            problem = "must not contain spaces or control characters";
    return problem ? cfg_fail(x, f->line, f->path, "%s", problem) : 0;
}

/* embedder: builtin | {url, model, api_key_env, dimensions, timeout_ms} */
static int parse_embedder(cfg_ctx *x, const cfg_field *f, cg_semantic_cfg *s) {
    static const char *const keys[] = {"url",        "model",      "api_key_env",
                                       "dimensions", "timeout_ms", NULL};
    if (f->v->type == YAML_SCALAR_NODE) {
        static const char *const names[] = {"builtin", NULL};
        int which;
        return cfg_enum(x, f, names, &which);
    }
    if (cfg_check_map(x, f->v, f->path, keys) < 0)
        return -1;
    cfg_field g;
    s->kind = CG_SEM_EMBED_HTTP;
    if (!cfg_field_get(x, f->v, f->path, "url", &g))
        return cfg_required(x, &g);
    if (parse_url(x, &g, s->url, sizeof s->url) < 0)
        return -1;
    if (!cfg_field_get(x, f->v, f->path, "model", &g))
        return cfg_required(x, &g);
    if (cfg_str(x, &g, s->model, sizeof s->model) < 0)
        return -1;
    if (!s->model[0] || strpbrk(s->model, " \t\r\n\"\\"))
        return cfg_fail(x, g.line, g.path, "must be a model name without spaces or quotes");
    if (cfg_field_get(x, f->v, f->path, "api_key_env", &g)) {
        if (cfg_str(x, &g, s->api_key_env, sizeof s->api_key_env) < 0)
            return -1;
        const char *p = s->api_key_env;
        int ok = !*p || (*p < '0' || *p > '9');
        for (; *p && ok; p++)
            ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                 *p == '_';
        if (!ok)
            return cfg_fail(x, g.line, g.path,
                            "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    }
    int64_t v;
    if (cfg_field_get(x, f->v, f->path, "dimensions", &g)) {
        if (cfg_int(x, &g, 1, 4096, &v) < 0)
            return -1;
        s->dimensions = (int)v;
    }
    if (cfg_field_get(x, f->v, f->path, "timeout_ms", &g)) {
        if (cfg_int(x, &g, 1, 600000, &v) < 0)
            return -1;
        s->timeout_ms = (int)v;
    }
    return 0;
}

static int parse_semantic(cfg_ctx *x, const yaml_node_t *sec, cg_cache_cfg *k) {
    static const char *const keys[] = {"enabled",        "threshold",  "gate_rules",
                                       "embedder",       "model_file", "capacity_per_partition",
                                       "max_partitions", "index_dir",  "single_turn",
                                       "pool_threads",   "queue_max",  NULL};
    cg_semantic_cfg *s = &k->semantic;
    s->threshold = 0.98;
    s->gate_rules = CG_GATE_DEFAULT_RULES;
    s->kind = CG_SEM_EMBED_BUILTIN;
    snprintf(s->model_file, sizeof s->model_file, "var/models/use-lite.bin");
    s->timeout_ms = 2000;
    s->capacity = 100000;
    s->max_partitions = 4096;
    snprintf(s->index_dir, sizeof s->index_dir, "var/semantic");
    s->pool_threads = 2;
    s->queue_max = 1024;
    cfg_field f, g;
    if (!cfg_field_get(x, sec, "cache", "semantic", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, keys) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "enabled", &g) && cfg_bool(x, &g, &s->enabled) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "threshold", &g) && parse_threshold(x, &g, &s->threshold) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "gate_rules", &g) &&
        parse_gate_rules(x, &g, &s->gate_rules) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "embedder", &g) && parse_embedder(x, &g, s) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "model_file", &g)) {
        if (cfg_str(x, &g, s->model_file, sizeof s->model_file) < 0)
            return -1;
        if (!s->model_file[0])
            return cfg_fail(x, g.line, g.path, "must not be empty");
    }
    if (cfg_field_get(x, f.v, f.path, "capacity_per_partition", &g) &&
        cfg_int(x, &g, 1, (INT64_C(1) << 30) - 1, &s->capacity) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "max_partitions", &g) &&
        cfg_int(x, &g, 1, 1000000, &s->max_partitions) < 0)
        return -1;
    if (cfg_field_get(x, f.v, f.path, "index_dir", &g)) {
        if (cfg_str(x, &g, s->index_dir, sizeof s->index_dir) < 0)
            return -1;
        if (!s->index_dir[0])
            return cfg_fail(x, g.line, g.path, "must not be empty");
    }
    if (cfg_field_get(x, f.v, f.path, "single_turn", &g)) {
        static const char *const modes[] = {"strict", "same_context", NULL};
        if (cfg_enum(x, &g, modes, &s->same_context) < 0)
            return -1;
    }
    int64_t v;
    if (cfg_field_get(x, f.v, f.path, "pool_threads", &g)) {
        if (cfg_int(x, &g, 1, 64, &v) < 0)
            return -1;
        s->pool_threads = (int)v;
    }
    if (cfg_field_get(x, f.v, f.path, "queue_max", &g)) {
        if (cfg_int(x, &g, 1, 1000000, &v) < 0)
            return -1;
        s->queue_max = (int)v;
    }
    if (s->enabled && !k->enabled)
        return cfg_fail(x, f.line, "cache.semantic.enabled",
                        "the semantic cache serves the exact cache's entries: it needs the cache "
                        "section enabled");
    return 0;
}

int cfg_parse_cache(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {
        "enabled", "max_bytes",        "max_temperature", "ttl",      "partition_by",
        "tenants", "store_tool_calls", "guard",           "coalesce", "semantic",
        NULL};
    cg_cache_cfg *k = &c->cache;
    k->max_bytes = INT64_C(64) << 20;
    k->ttl_default = 3600;
    k->max_temperature = 1.0;
    k->guard_max_bytes = INT64_C(1) << 20;
    k->coalesce = 1;
    k->coalesce_wait_ms = 30000;
    cfg_field sec, f;
    if (!cfg_field_get(x, root, "", "cache", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "cache", keys) < 0)
        return -1;
    k->enabled = 1;
    if (cfg_field_get(x, sec.v, "cache", "enabled", &f) && cfg_bool(x, &f, &k->enabled) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "cache", "max_bytes", &f) &&
        cfg_size(x, &f, 64 * 1024, CFG_SIZE_MAX, &k->max_bytes) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "cache", "max_temperature", &f) &&
        parse_temperature(x, &f, &k->max_temperature) < 0)
        return -1;
    int have_by = 0;
    if (cfg_field_get(x, sec.v, "cache", "ttl", &f) &&
        parse_ttl(x, f.v, f.path, &k->ttl_default, &k->by_intent, &k->n_by_intent, &have_by) < 0)
        return -1;
    if (!have_by) {
        size_t n = sizeof DEFAULT_INTENTS / sizeof DEFAULT_INTENTS[0];
        k->by_intent = malloc(sizeof DEFAULT_INTENTS);
        if (!k->by_intent)
            return cfg_fail(x, sec.line, "cache.ttl", "out of memory");
        memcpy(k->by_intent, DEFAULT_INTENTS, sizeof DEFAULT_INTENTS);
        k->n_by_intent = n;
    }
    if (parse_partition(x, sec.v, k) < 0 || parse_tenants(x, sec.v, k) < 0 ||
        parse_guard(x, sec.v, k) < 0 || parse_coalesce(x, sec.v, k) < 0 ||
        parse_semantic(x, sec.v, k) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "cache", "store_tool_calls", &f) &&
        cfg_bool(x, &f, &k->store_tool_calls) < 0)
        return -1;
    if (k->guard_max_bytes > k->max_bytes)
        return cfg_fail(x, sec.line, "cache.guard.max_bytes",
                        "must not exceed cache.max_bytes (%lld)", (long long)k->max_bytes);
    return 0;
}

void cfg_free_cache(cg_cache_cfg *k) {
    for (size_t i = 0; i < k->n_tenants; i++)
        free(k->tenants[i].by_intent);
    free(k->tenants);
    free(k->by_intent);
    for (size_t i = 0; i < k->n_deny; i++)
        free(k->deny[i]);
    free(k->deny);
    memset(k, 0, sizeof *k);
}
