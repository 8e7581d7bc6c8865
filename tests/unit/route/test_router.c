/* test_router: tier decisions (src/route/router.c): who may be routed, rule
 * order, classifier and learned-router fallbacks, tiers that lack a model
 * for an API, and the tier arithmetic used by cascade, downgrade and SLO
 * fallback; plus the cascade's verifier (src/route/verify.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/router.h"
#include "route/verify.h"

static char *VIRT[] = {"costgate/auto"};
static char *ROUTABLE[] = {"app"};
static char *REFUSALS[] = {"I can't help with that"};

static cg_tiering_cfg cfg(void) {
    cg_tiering_cfg t;
    memset(&t, 0, sizeof t);
    t.enabled = 1;
    t.n_tiers = 4;
    const char *names[] = {"small", "medium", "large", "reasoning"};
    const char *oa[] = {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3"};
    const char *an[] = {"claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", ""};
    for (int i = 0; i < 4; i++) {
        snprintf(t.tiers[i].name, sizeof t.tiers[i].name, "%s", names[i]);
        snprintf(t.tiers[i].model[0], sizeof t.tiers[i].model[0], "%s", oa[i]);
        snprintf(t.tiers[i].model[1], sizeof t.tiers[i].model[1], "%s", an[i]);
    }
    t.default_tier = 1;
    t.virtual_models = VIRT;
    t.n_virtual = 1;
    t.routable_keys = ROUTABLE;
    t.n_routable = 1;
    t.learned_threshold = 0.5;
    t.min_mean_logprob = -1.0;
    t.min_token_logprob = -1000;
    t.refusal_phrases = REFUSALS;
    t.n_refusal = 1;
    return t;
}

static cg_route_in in(cg_api api, const char *model, const char *key) {
    cg_route_in i = {.api = api,
                     .model = model,
                     .key_name = key,
                     .intent = "",
                     .segment = "",
                     .feature = "",
                     .complexity = -1,
                     .p_strong = -1};
    return i;
}

static void test_who_is_routed(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg();
    cg_route_out o;
    cg_route_in x = in(CG_API_OPENAI, "gpt-4.1", "other");
    assert_int_equal(cg_router_decide(&t, NULL, &x, &o), 0);
    assert_int_equal(o.routed, 0);
    assert_string_equal(o.model, "gpt-4.1");
    assert_int_equal(o.tier, 2); /* still reported: the tier listing it */
    x = in(CG_API_OPENAI, "gpt-4.1", "app");
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.routed, 1);
    assert_string_equal(o.model, "gpt-4o"); /* default tier */
    x = in(CG_API_OPENAI, "costgate/auto", NULL);
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.routed, 1);
    t.enabled = 0;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.routed, 0);
}

static void test_rules_first_match_then_signals(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg();
    cg_tier_rule rules[3];
    memset(rules, 0, sizeof rules);
    snprintf(rules[0].intent, sizeof rules[0].intent, "small_talk");
    rules[0].complexity = -1;
    rules[0].tier = 0;
    snprintf(rules[1].segment, sizeof rules[1].segment, "rnd");
    rules[1].complexity = -1;
    rules[1].tier = 2;
    rules[2].complexity = 2;
    rules[2].tier = 3;
    t.rules = rules;
    t.n_rules = 3;
    cg_route_out o;
    cg_route_in x = in(CG_API_OPENAI, "costgate/auto", NULL);
    x.intent = "small_talk";
    x.segment = "rnd";
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 0); /* first match wins */
    assert_int_equal(o.rule, 0);
    x.intent = "";
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 2);
    x.segment = "";
    x.complexity = 2;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 3);
    assert_string_equal(o.model, "o3");
    /* the same rule for Anthropic: no reasoning model -> the nearest tier */
    x.api = CG_API_ANTHROPIC;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 2);
    assert_string_equal(o.model, "claude-opus-4-1");
    /* no rule: the classifier's complexity, then the learned router first */
    t.n_rules = 0;
    x.api = CG_API_OPENAI;
    x.complexity = 0;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 0);
    x.complexity = 2;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 2);
    x.p_strong = 0.2;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 0);
    assert_string_equal(o.why, "learned:0.20");
    x.p_strong = 0.8;
    cg_router_decide(&t, NULL, &x, &o);
    assert_int_equal(o.tier, 1);
}

static void test_tier_arithmetic(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg();
    assert_int_equal(cg_router_next_tier(&t, CG_API_OPENAI, 2), 3);
    assert_int_equal(cg_router_next_tier(&t, CG_API_ANTHROPIC, 2), -1);
    assert_int_equal(cg_router_prev_tier(&t, CG_API_OPENAI, 0), -1);
    assert_int_equal(cg_router_prev_tier(&t, CG_API_ANTHROPIC, 2), 1);
    assert_int_equal(cg_router_cheapest(&t, CG_API_ANTHROPIC), 0);
    assert_int_equal(cg_router_tier_of(&t, CG_API_ANTHROPIC, "claude-opus-4-1"), 2);
    assert_int_equal(cg_router_tier_of(&t, CG_API_OPENAI, "claude-opus-4-1"), -1);
    t.tiers[0].model[1][0] = '\0';
    assert_int_equal(cg_router_cheapest(&t, CG_API_ANTHROPIC), 1);
}

static void verdict(const char *json, cg_api api, int want_json, cg_verdict *v) {
    cg_tiering_cfg t = cfg();
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    cg_verify_answer(&t, api, j, want_json, v);
    json_decref(j);
}

static void test_verifier(void **s) {
    (void)s;
    cg_verdict v;
    verdict("{\"choices\":[{\"message\":{\"content\":\"Paris.\"},\"finish_reason\":\"stop\","
            "\"logprobs\":{\"content\":[{\"logprob\":-0.1},{\"logprob\":-0.3}]}}]}",
            CG_API_OPENAI, 0, &v);
    assert_int_equal(v.escalate, 0);
    assert_int_equal(v.n_logprobs, 2);
    verdict("{\"choices\":[{\"message\":{\"content\":\"Paris?\"},\"finish_reason\":\"stop\","
            "\"logprobs\":{\"content\":[{\"logprob\":-0.5},{\"logprob\":-2.5}]}}]}",
            CG_API_OPENAI, 0, &v);
    assert_int_equal(v.escalate, 1);
    assert_string_equal(v.why, "logprob_mean:-1.50");
    verdict("{\"choices\":[{\"message\":{\"content\":\"abc\"},\"finish_reason\":\"length\"}]}",
            CG_API_OPENAI, 0, &v);
    assert_string_equal(v.why, "finish:length");
    verdict("{\"choices\":[{\"message\":{\"content\":\"  \\n\"},\"finish_reason\":\"stop\"}]}",
            CG_API_OPENAI, 0, &v);
    assert_string_equal(v.why, "empty");
    verdict("{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"no\"},"
            "\"finish_reason\":\"stop\"}]}",
            CG_API_OPENAI, 0, &v);
    assert_string_equal(v.why, "refusal");
    verdict("{\"choices\":[{\"message\":{\"content\":\"{\\\"a\\\": 1\"},\"finish_reason\":"
            "\"stop\"}]}",
            CG_API_OPENAI, 1, &v);
    assert_string_equal(v.why, "invalid_json");
    verdict("{\"choices\":[{\"message\":{\"content\":\"{\\\"a\\\": 1}\"},\"finish_reason\":"
            "\"stop\"}]}",
            CG_API_OPENAI, 1, &v);
    assert_int_equal(v.escalate, 0);
    verdict("{\"content\":[{\"type\":\"text\",\"text\":\"Sorry, I can't help with that.\"}],"
            "\"stop_reason\":\"end_turn\"}",
            CG_API_ANTHROPIC, 0, &v);
    assert_string_equal(v.why, "refusal_phrase");
    verdict("{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"max_tokens\"}",
            CG_API_ANTHROPIC, 0, &v);
    assert_string_equal(v.why, "finish:max_tokens");
    verdict("{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}],"
            "\"stop_reason\":\"tool_use\"}",
            CG_API_ANTHROPIC, 0, &v);
    assert_int_equal(v.escalate, 0); /* a tool call has no text and is fine */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_who_is_routed),
        cmocka_unit_test(test_rules_first_match_then_signals),
        cmocka_unit_test(test_tier_arithmetic),
        cmocka_unit_test(test_verifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
