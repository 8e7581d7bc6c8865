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

static size_t map_size(const yaml_node_t *n) {
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static int parse_segments(cfg_ctx *x, const yaml_node_t *sec, cg_budgets_cfg *b) {
    cfg_field f;
    if (!cfg_field_get(x, sec, "budgets", "per_segment", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = map_size(f.v);
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
    size_t n = map_size(f.v);
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
    size_t n = map_size(f.v);
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
