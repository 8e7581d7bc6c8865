/* router: tier decisions (see router.h). */
#include "route/router.h"

#include <stdio.h>
#include <string.h>

/* dst[cap] = a b (cut to fit, NUL-terminated): the reason strings are built
 * on every routed request, so without snprintf, and (a few bytes each) by a
 * byte loop rather than strnlen and memcpy calls. */
static void put2(char *dst, size_t cap, const char *a, const char *b) {
    size_t n = 0;
    while (n + 1 < cap && *a)
        dst[n++] = *a++;
    while (n + 1 < cap && *b)
        dst[n++] = *b++;
    dst[n] = '\0';
}

/* "rule" and the decimal digits of i. */
static void put_rule(char *dst, size_t cap, size_t i) {
    if (i < 10 && cap > 5) { /* the usual few rules: no digit loop */
        memcpy(dst, "rule", 4);
        dst[4] = (char)('0' + i);
        dst[5] = '\0';
        return;
    }
    char digits[24];
    size_t k = sizeof digits - 1;
    digits[k] = '\0';
    do {
        digits[--k] = (char)('0' + i % 10);
        i /= 10;
    } while (i && k);
    put2(dst, cap, "rule", digits + k);
}

int cg_router_is_virtual(const cg_tiering_cfg *t, const char *model) {
    for (size_t i = 0; i < t->n_virtual; i++)
        if (t->virtual_models[i][0] == model[0] && strcmp(t->virtual_models[i], model) == 0)
            return 1;
    return 0;
}

static int routable_key(const cg_tiering_cfg *t, const char *key) {
    for (size_t i = 0; i < t->n_routable; i++)
        if ((t->routable_keys[i][0] == '*' && !t->routable_keys[i][1]) ||
            (key && strcmp(t->routable_keys[i], key) == 0))
            return 1;
    return 0;
}

static int has(const cg_tiering_cfg *t, cg_api api, int tier) {
    return tier >= 0 && (size_t)tier < t->n_tiers && t->tiers[tier].model[api][0] != '\0';
}

int cg_router_next_tier(const cg_tiering_cfg *t, cg_api api, int tier) {
    for (int i = tier + 1; (size_t)i < t->n_tiers; i++)
        if (has(t, api, i))
            return i;
    return -1;
}

int cg_router_prev_tier(const cg_tiering_cfg *t, cg_api api, int tier) {
    for (int i = tier - 1; i >= 0; i--)
        if (has(t, api, i))
            return i;
    return -1;
}

int cg_router_cheapest(const cg_tiering_cfg *t, cg_api api) {
    return cg_router_next_tier(t, api, -1);
}

int cg_router_tier_of(const cg_tiering_cfg *t, cg_api api, const char *model) {
    for (size_t i = 0; i < t->n_tiers; i++)
        if (strcmp(t->tiers[i].model[api], model) == 0)
            return (int)i;
    return -1;
}

/* A rule's intent, segment, feature and key conditions (not complexity). */
static int rule_matches_request(const cg_tier_rule *r, const cg_route_in *in) {
    if (r->intent[0] && (!in->intent || strcmp(r->intent, in->intent) != 0))
        return 0;
    if (r->segment[0] && (!in->segment || strcmp(r->segment, in->segment) != 0))
        return 0;
    if (r->feature[0] && (!in->feature || strcmp(r->feature, in->feature) != 0))
        return 0;
    if (r->key[0] && (!in->key_name || strcmp(r->key, in->key_name) != 0))
        return 0;
    return 1;
}

/* The classifier's part of a decision, asked for (in->classify) only when
 * the decision first needs it. */
typedef struct class_part {
    int known;
    int complexity;
    const char *suggested;
    double p_strong;
} class_part;

static const class_part *class_of(const cg_route_in *in, class_part *cp) {
    if (!cp->known) {
        cp->known = 1;
        cp->complexity = in->complexity;
        cp->suggested = in->suggested_tier;
        cp->p_strong = in->p_strong;
        if (in->classify)
            in->classify(in->classify_arg, &cp->complexity, &cp->suggested, &cp->p_strong);
    }
    return cp;
}

static int routed(const cg_tiering_cfg *t, const cg_route_in *in, int *virt) {
    *virt = cg_router_is_virtual(t, in->model);
    return t->enabled && (*virt || routable_key(t, in->key_name));
}

/* The nearest tier to `want` that has a model for api (cheaper first on ties). */
static int nearest(const cg_tiering_cfg *t, cg_api api, int want) {
    if (has(t, api, want))
        return want;
    for (int d = 1; d < (int)t->n_tiers; d++) {
        if (has(t, api, want - d))
            return want - d;
        if (has(t, api, want + d))
            return want + d;
    }
    return -1;
}

/* The request keeps its model: out->tier is the tier listing it, if any. */
static void keep_model(const cg_tiering_cfg *t, const cg_route_in *in, cg_route_out *out) {
    out->tier = cg_router_tier_of(t, in->api, in->model);
    out->model = in->model;
}

int cg_router_decide(const cg_tiering_cfg *t, cg_bandit *b, const cg_route_in *in,
                     cg_route_out *out) {
    /* every field set below; no memset of the whole (this runs per request) */
    out->routed = 0;
    out->explored = 0;
    out->rule = -1;
    out->why[0] = '\0';
    int virt;
    if (!routed(t, in, &virt)) {
        keep_model(t, in, out);
        return 0;
    }

    int tier = -1;
    class_part cp = {0};
    for (size_t i = 0; i < t->n_rules; i++) {
        const cg_tier_rule *rule = &t->rules[i];
        if (rule_matches_request(rule, in) &&
            (rule->complexity < 0 || rule->complexity == class_of(in, &cp)->complexity)) {
            tier = rule->tier;
            out->rule = (int)i;
            put_rule(out->why, sizeof out->why, i);
            break;
        }
    }
    if (tier < 0 && class_of(in, &cp)->p_strong >= 0) {
        int cheap = cg_router_cheapest(t, in->api);
        tier = cp.p_strong >= t->learned_threshold ? t->default_tier : cheap;
        snprintf(out->why, sizeof out->why, "learned:%.2f", cp.p_strong);
    }
    if (tier < 0 && cp.suggested) {
        for (size_t i = 0; i < t->n_tiers; i++)
            if (strcmp(t->tiers[i].name, cp.suggested) == 0) {
                tier = (int)i;
                put2(out->why, sizeof out->why, "classifier:", cp.suggested);
            }
    }
    if (tier < 0 && cp.complexity >= 0) {
        int cheap = cg_router_cheapest(t, in->api);
        int up = cg_router_next_tier(t, in->api, t->default_tier);
        tier = cp.complexity == 0   ? cheap
               : cp.complexity == 1 ? t->default_tier
                                    : (up >= 0 ? up : t->default_tier);
        put2(out->why, sizeof out->why, "complexity:",
             cp.complexity == 0   ? "simple"
             : cp.complexity == 1 ? "medium"
                                  : "complex");
    }
    if (tier < 0) {
        tier = t->default_tier;
        put2(out->why, sizeof out->why, "default", "");
    }
    tier = nearest(t, in->api, tier);
    if (tier < 0) {
        keep_model(t, in, out);
        if (!virt)
            return 0;
        put2(out->why, sizeof out->why, "no tier has a model for this API", "");
        return -1;
    }
    if (b && t->bandit) {
        int cand[3] = {tier, 0, 0}, n = 1;
        int lo = cg_router_prev_tier(t, in->api, tier), hi = cg_router_next_tier(t, in->api, tier);
        if (lo >= 0)
            cand[n++] = lo;
        if (hi >= 0)
            cand[n++] = hi;
        int pick = cg_bandit_choose(b, in->intent, cand, n, &out->explored);
        if (pick >= 0 && pick != tier) {
            size_t w = strnlen(out->why, sizeof out->why - 1); /* append "+bandit", cut to fit */
            put2(out->why + w, sizeof out->why - w, "+bandit", "");
            tier = pick;
        }
    }
    out->routed = 1;
    out->tier = tier;
    out->model = t->tiers[tier].model[in->api];
    return 0;
}
