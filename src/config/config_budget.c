/* config_budget: the `budgets` section of the config.
 *
 * Owns: parsing and validating spending limits shaped like the seeds'
 * config/cost.yaml (a default and per-segment max_per_query_usd and
 * daily_max_per_user_usd, plus a segment-wide daily limit), per-tenant
 * monthly, per-feature daily and global daily limits, the action on breach
 * (reject | downgrade | dry_run), the period time zone and the downgrade map.
 *
 *   budgets:
 *     timezone: UTC
 *     default: {max_per_query_usd: "0.05", daily_max_per_user_usd: "5.0", action: reject}
 *     per_segment:
 *       rnd_engineer: {max_per_query_usd: "0.20", daily_max_per_user_usd: "50"}
 *     per_tenant: {acme: {monthly_usd: "1000"}}
 *     per_feature: {search: {daily_usd: "20", action: dry_run}}
 *     global: {daily_usd: "500"}
 *     downgrade: {gpt-4o: gpt-4o-mini}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config_internal.h"

static const char *const ACTIONS[] = {"reject", "downgrade", "dry_run", NULL};

static int opt_limit(cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                     int64_t *out) {
    cfg_field f;
    if (!cfg_field_get(x, map, parent, key, &f))
        return 0;
    return cfg_usd(x, &f, out);
}

static int opt_action(cfg_ctx *x, const yaml_node_t *map, const char *parent,
                      cg_budget_action *out) {
    cfg_field f;
    int a;
    if (!cfg_field_get(x, map, parent, "action", &f))
        return 0;
    if (cfg_enum(x, &f, ACTIONS, &a) < 0)
        return -1;
    *out = (cg_budget_action)a;
    return 0;
}

static int parse_segment(cfg_ctx *x, const yaml_node_t *n, const char *path, cg_segment_budget *s) {
    static const char *const keys[] = {"max_per_query_usd", "daily_max_per_user_usd",
                                       "daily_max_usd", "action", NULL};
    if (cfg_is_null(n))
        return cfg_fail(x, cfg_line(n), path, "expected a mapping of limits, got nothing");
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    if (opt_limit(x, n, path, "max_per_query_usd", &s->max_per_query) < 0 ||
        opt_limit(x, n, path, "daily_max_per_user_usd", &s->daily_max_per_user) < 0 ||
        opt_limit(x, n, path, "daily_max_usd", &s->daily_max) < 0 ||
        opt_action(x, n, path, &s->action) < 0)
        return -1;
    return 0;
}

static int key_name(cfg_ctx *x, const yaml_node_t *k, const char *path, char *out, size_t cap) {
    size_t n = k->data.scalar.length;
    const char *s = (const char *)k->data.scalar.value;
    if (n == 0 || n >= cap || memchr(s, '\0', n) || strcspn(s, "\t\r\n") < n)
        return cfg_fail(x, cfg_line(k), path,
                        "name must be 1..%zu bytes without control characters", cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int parse_segments(cfg_ctx *x, const yaml_node_t *sec, cg_budgets_cfg *b) {
    cfg_field f;
    if (!cfg_field_get(x, sec, "budgets", "per_segment", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = cfg_map_size(f.v);
    b->segments = n ? calloc(n, sizeof *b->segments) : NULL;
    if (n && !b->segments)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        char path[CFG_PATH_MAX];
        cfg_path(path, sizeof path, f.path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        cg_segment_budget *s = &b->segments[i];
        *s = b->dflt; /* a segment inherits what it does not set */
        if (key_name(x, k, path, s->name, sizeof s->name) < 0 ||
            parse_segment(x, cfg_node(x, pr->value), path, s) < 0)
            return -1;
        b->n_segments++;
    }
    return 0;
}

static int parse_named(cfg_ctx *x, const yaml_node_t *sec, const char *key, const char *limit_key,
                       cg_named_budget **out, size_t *nout) {
    cfg_field f;
    if (!cfg_field_get(x, sec, "budgets", key, &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = cfg_map_size(f.v);
    *out = n ? calloc(n, sizeof **out) : NULL;
    if (n && !*out)
        return cfg_fail(x, f.line, f.path, "out of memory");
    const char *keys[] = {limit_key, "action", NULL};
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        const yaml_node_t *v = cfg_node(x, pr->value);
        char path[CFG_PATH_MAX];
        cfg_path(path, sizeof path, f.path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        cg_named_budget *nb = &(*out)[i];
        nb->limit = CG_NO_LIMIT;
        if (key_name(x, k, path, nb->name, sizeof nb->name) < 0)
            return -1;
        if (cfg_is_null(v))
            return cfg_fail(x, cfg_line(v), path, "expected a mapping with %s", limit_key);
        if (cfg_check_map(x, v, path, keys) < 0)
            return -1;
        cfg_field lf;
        if (!cfg_field_get(x, v, path, limit_key, &lf))
            return cfg_required(x, &lf);
        if (cfg_usd(x, &lf, &nb->limit) < 0 || opt_action(x, v, path, &nb->action) < 0)
            return -1;
        (*nout)++;
    }
    return 0;
}

static int parse_downgrade(cfg_ctx *x, const yaml_node_t *sec, cg_budgets_cfg *b) {
    cfg_field f;
    if (!cfg_field_get(x, sec, "budgets", "downgrade", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = cfg_map_size(f.v);
    b->downgrades = n ? calloc(n, sizeof *b->downgrades) : NULL;
    if (n && !b->downgrades)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        cfg_field vf;
        cfg_path(vf.path, sizeof vf.path, f.path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        vf.v = cfg_node(x, pr->value);
        vf.line = cfg_line(vf.v);
        cg_downgrade *d = &b->downgrades[i];
        if (key_name(x, k, vf.path, d->from, sizeof d->from) < 0)
            return -1;
        if (cfg_is_null(vf.v))
            return cfg_fail(x, vf.line, vf.path, "expected the name of a cheaper model");
        if (cfg_str(x, &vf, d->to, sizeof d->to) < 0)
            return -1;
        if (!d->to[0] || strcmp(d->to, d->from) == 0)
            return cfg_fail(x, vf.line, vf.path, "must name a different, non-empty model");
        b->n_downgrades++;
    }
    return 0;
}

static int check_timezone(cfg_ctx *x, const cfg_field *f, const char *tz) {
    if (strcmp(tz, "UTC") == 0)
        return 0;
    int ok = tz[0] != '\0' && tz[0] != '/' && !strstr(tz, "..");
    for (const char *p = tz; ok && *p; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
             *p == '/' || *p == '_' || *p == '-' || *p == '+';
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    if (!ok || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return cfg_fail(x, f->line, f->path,
                        "unknown time zone '%.64s' (an IANA name such as Europe/Berlin, or UTC)",
                        tz);
    return 0;
}

int cfg_parse_budgets(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {"timezone",    "default", "per_segment", "per_tenant",
                                       "per_feature", "global",  "downgrade",   NULL};
    static const char *const gkeys[] = {"daily_usd", "action", NULL};
    cg_budgets_cfg *b = &c->budgets;
    snprintf(b->timezone, sizeof b->timezone, "UTC");
    b->dflt.max_per_query = b->dflt.daily_max_per_user = b->dflt.daily_max = CG_NO_LIMIT;
    b->global_daily = CG_NO_LIMIT;
    cfg_field sec, f;
    if (!cfg_field_get(x, root, "", "budgets", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "budgets", keys) < 0)
        return -1;
    b->enabled = 1;
    if (cfg_field_get(x, sec.v, "budgets", "timezone", &f) &&
        (cfg_str(x, &f, b->timezone, sizeof b->timezone) < 0 ||
         check_timezone(x, &f, b->timezone) < 0))
        return -1;
    if (cfg_field_get(x, sec.v, "budgets", "default", &f) &&
        parse_segment(x, f.v, f.path, &b->dflt) < 0)
        return -1;
    if (parse_segments(x, sec.v, b) < 0 ||
        parse_named(x, sec.v, "per_tenant", "monthly_usd", &b->tenants, &b->n_tenants) < 0 ||
        parse_named(x, sec.v, "per_feature", "daily_usd", &b->features, &b->n_features) < 0 ||
        parse_downgrade(x, sec.v, b) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "budgets", "global", &f)) {
        if (cfg_check_map(x, f.v, f.path, gkeys) < 0)
            return -1;
        cfg_field g;
        if (!cfg_field_get(x, f.v, f.path, "daily_usd", &g))
            return cfg_required(x, &g);
        if (cfg_usd(x, &g, &b->global_daily) < 0 ||
            opt_action(x, f.v, f.path, &b->global_action) < 0)
            return -1;
    }
    return 0;
}

void cfg_free_budgets(cg_budgets_cfg *b) {
    free(b->segments);
    free(b->tenants);
    free(b->features);
    free(b->downgrades);
    memset(b, 0, sizeof *b);
}

/* --- slos ------------------------------------------------------------------- */

/* "90s", "5m", "1h", "7d" -> milliseconds (1 s .. 30 d). */
static int duration_ms(cfg_ctx *x, const cfg_field *f, int64_t *out) {
    char s[32];
    if (cfg_str(x, f, s, sizeof s) < 0)
        return -1;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    int64_t unit = !end || end == s        ? 0
                   : strcmp(end, "s") == 0 ? 1000
                   : strcmp(end, "m") == 0 ? 60000
                   : strcmp(end, "h") == 0 ? 3600000
                   : strcmp(end, "d") == 0 ? 86400000
                                           : 0;
    if (!unit || v < 1 || v * unit > INT64_C(30) * 86400000)
        return cfg_fail(x, f->line, f->path,
                        "must be a duration like 30s, 5m, 1h or 7d (1 s to 30 d), got \"%.31s\"",
                        s);
    *out = v * unit;
    return 0;
}

/* A decimal ratio like "2" or "14.4" -> milli (1000 = 1.0x), exactly. */
static int factor_milli(cfg_ctx *x, const cfg_field *f, int64_t *out) {
    int64_t nano;
    if (cfg_usd(x, f, &nano) < 0)
        return -1;
    if (nano % 1000000 != 0 || nano < 1000000000)
        return cfg_fail(x, f->line, f->path, "must be a ratio >= 1 with at most 3 decimals");
    *out = nano / 1000000;
    return 0;
}

static int parse_pair(cfg_ctx *x, const yaml_node_t *n, const char *parent, const char *key,
                      int64_t *lng, int64_t *shrt, int64_t *factor) {
    static const char *const keys[] = {"long", "short", "factor", NULL};
    cfg_field f, g;
    if (!cfg_field_get(x, n, parent, key, &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, keys) < 0)
        return -1;
    if ((cfg_field_get(x, f.v, f.path, "long", &g) && duration_ms(x, &g, lng) < 0) ||
        (cfg_field_get(x, f.v, f.path, "short", &g) && duration_ms(x, &g, shrt) < 0) ||
        (cfg_field_get(x, f.v, f.path, "factor", &g) && factor_milli(x, &g, factor) < 0))
        return -1;
    if (*shrt >= *lng)
        return cfg_fail(x, f.line, f.path, "short window must be shorter than long");
    if (*lng > 86400000)
        return cfg_fail(x, f.line, f.path, "long window must be at most 1d");
    return 0;
}

static int parse_slo(cfg_ctx *x, const yaml_node_t *n, const char *path, cg_slo_def *d) {
    static const char *const keys[] = {"name",   "kind",    "target",   "alert_threshold",
                                       "window", "segment", "fallback", "hold_down",
                                       "fast",   "slow",    NULL};
    static const char *const kinds[] = {"avg_cost_per_query", "daily_cost_total", NULL};
    cfg_field f;
    cg_slo_def_defaults(d);
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    cfg_field namef;
    if (!cfg_field_get(x, n, path, "name", &namef))
        return cfg_required(x, &namef);
    if (cfg_str(x, &namef, d->name, sizeof d->name) < 0)
        return -1;
    int kind = -1;
    if (cfg_field_get(x, n, path, "kind", &f)) {
        if (cfg_enum(x, &f, kinds, &kind) < 0)
            return -1;
    } else {
        for (int i = 0; kinds[i]; i++)
            if (strcmp(d->name, kinds[i]) == 0)
                kind = i;
        if (kind < 0)
            return cfg_fail(x, namef.line, namef.path,
                            "names neither kind; add kind: avg_cost_per_query | daily_cost_total");
    }
    d->kind = (cg_slo_kind)kind;
    if (!cfg_field_get(x, n, path, "target", &f))
        return cfg_required(x, &f);
    if (cfg_usd(x, &f, &d->target) < 0)
        return -1;
    if (d->target <= 0)
        return cfg_fail(x, f.line, f.path, "must be greater than 0");
    d->alert_threshold = d->target;
    if (cfg_field_get(x, n, path, "alert_threshold", &f) && cfg_usd(x, &f, &d->alert_threshold) < 0)
        return -1;
    int64_t window;
    if (cfg_field_get(x, n, path, "window", &f) && duration_ms(x, &f, &window) < 0)
        return -1; /* the SLO period, as in the seeds; alerting uses the pairs */
    if (cfg_field_get(x, n, path, "segment", &f) &&
        cfg_str(x, &f, d->segment, sizeof d->segment) < 0)
        return -1;
    if (cfg_field_get(x, n, path, "fallback", &f) && cfg_bool(x, &f, &d->fallback) < 0)
        return -1;
    if (cfg_field_get(x, n, path, "hold_down", &f) && duration_ms(x, &f, &d->hold_down_ms) < 0)
        return -1;
    return parse_pair(x, n, path, "fast", &d->fast_long_ms, &d->fast_short_ms,
                      &d->fast_factor_milli) < 0 ||
                   parse_pair(x, n, path, "slow", &d->slow_long_ms, &d->slow_short_ms,
                              &d->slow_factor_milli) < 0
               ? -1
               : 0;
}

int cfg_parse_slos(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const fkeys[] = {"openai", "anthropic", NULL};
    cfg_field f, g;
    c->slo_eval_interval_ms = 10000;
    if (cfg_field_get(x, root, "", "slo_webhook", &f) &&
        cfg_str(x, &f, c->slo_webhook, sizeof c->slo_webhook) < 0)
        return -1;
    if (c->slo_webhook[0] && strncmp(c->slo_webhook, "http://", 7) != 0 &&
        strncmp(c->slo_webhook, "https://", 8) != 0)
        return cfg_fail(x, f.line, f.path, "must start with http:// or https://");
    if (cfg_field_get(x, root, "", "slo_eval_interval_ms", &f)) {
        int64_t v;
        if (cfg_int(x, &f, 100, 600000, &v) < 0)
            return -1;
        c->slo_eval_interval_ms = (int)v;
    }
    if (cfg_field_get(x, root, "", "fallback_models", &f)) {
        if (cfg_check_map(x, f.v, f.path, fkeys) < 0)
            return -1;
        for (int i = 0; i < 2; i++)
            if (cfg_field_get(x, f.v, f.path, fkeys[i], &g) &&
                cfg_str(x, &g, c->fallback_model[i], sizeof c->fallback_model[i]) < 0)
                return -1;
    }
    if (!cfg_field_get(x, root, "", "slos", &f))
        return 0;
    if (cfg_check_seq(x, f.v, f.path) < 0)
        return -1;
    size_t n = (size_t)(f.v->data.sequence.items.top - f.v->data.sequence.items.start);
    c->slos = n ? calloc(n, sizeof *c->slos) : NULL;
    if (n && !c->slos)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char path[CFG_PATH_MAX];
        cfg_path_idx(path, sizeof path, f.path, i);
        const yaml_node_t *it = cfg_node(x, f.v->data.sequence.items.start[i]);
        if (parse_slo(x, it, path, &c->slos[i]) < 0)
            return -1;
        if (c->slos[i].fallback && !c->fallback_model[0][0] && !c->fallback_model[1][0])
            return cfg_fail(x, cfg_line(it), path,
                            "fallback: true needs fallback_models (the cheapest model per API)");
        c->n_slos++;
    }
    return 0;
}
