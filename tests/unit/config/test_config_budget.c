/* test_config_budget: the `budgets` config section (config_budget.c):
 * a full section into the struct, inheritance of segment limits from the
 * default, and errors that name file, line and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

static const char *BASE = "providers:\n"
                          "  - {name: openai, api: openai}\n"
                          "keys:\n"
                          "  - {name: k, sha256: "
                          "\"0000000000000000000000000000000000000000000000000000000000000001\", "
                          "tenant: t}\n";

static int load(const char *budgets, cg_config **c, char *err, size_t errlen) {
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s%s", BASE, budgets);
    return cg_config_load_string("b.yaml", yaml, strlen(yaml), c, err, errlen);
}

static void test_full_section(void **state) {
    (void)state;
    cg_config *c = NULL;
    char err[512] = "";
    int rc = load("budgets:\n"
                  "  timezone: Europe/Berlin\n"
                  "  default: {max_per_query_usd: \"0.05\", daily_max_per_user_usd: 5.0}\n"
                  "  per_segment:\n"
                  "    rnd: {max_per_query_usd: \"0.20\", action: downgrade}\n"
                  "  per_tenant: {acme: {monthly_usd: \"1000\"}}\n"
                  "  per_feature: {search: {daily_usd: \"20\", action: dry_run}}\n"
                  "  global: {daily_usd: \"500\"}\n"
                  "  downgrade: {gpt-4o: gpt-4o-mini}\n",
                  &c, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    const cg_budgets_cfg *b = &c->budgets;
    assert_true(b->enabled);
    assert_string_equal(b->timezone, "Europe/Berlin");
    assert_int_equal(b->dflt.max_per_query, 50000000);
    assert_int_equal(b->dflt.daily_max_per_user, 5000000000);
    assert_int_equal(b->dflt.daily_max, CG_NO_LIMIT);
    assert_int_equal(b->n_segments, 1);
    assert_string_equal(b->segments[0].name, "rnd");
    assert_int_equal(b->segments[0].max_per_query, 200000000);
    assert_int_equal(b->segments[0].daily_max_per_user, 5000000000); /* inherited */
    assert_int_equal(b->segments[0].action, CG_ACT_DOWNGRADE);
    assert_int_equal(b->n_tenants, 1);
    assert_int_equal(b->tenants[0].limit, INT64_C(1000000000000));
    assert_int_equal(b->features[0].action, CG_ACT_DRY_RUN);
    assert_int_equal(b->global_daily, INT64_C(500000000000));
    assert_string_equal(b->downgrades[0].from, "gpt-4o");
    assert_string_equal(b->downgrades[0].to, "gpt-4o-mini");
    cg_config_free(c);
    /* no section: disabled, no limits */
    assert_int_equal(load("", &c, err, sizeof err), 0);
    assert_false(c->budgets.enabled);
    assert_int_equal(c->budgets.global_daily, CG_NO_LIMIT);
    cg_config_free(c);
}

static void expect_error(const char *section, const char *prefix) {
    cg_config *c = NULL;
    char err[512] = "";
    assert_int_equal(load(section, &c, err, sizeof err), -1);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fprintf(stderr, "got: %s\nwant prefix: %s\n", err, prefix);
    assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("budgets:\n  defualt: {}\n", "b.yaml:6: budgets.defualt:");
    expect_error("budgets:\n  default: {max_per_query_usd: \"abc\"}\n",
                 "b.yaml:6: budgets.default.max_per_query_usd:");
    expect_error("budgets:\n  default: {action: block}\n", "b.yaml:6: budgets.default.action:");
    expect_error("budgets:\n  timezone: Mars/Olympus\n",
                 "b.yaml:6: budgets.timezone: unknown time zone");
    expect_error("budgets:\n  per_tenant: {acme: {action: reject}}\n",
                 "b.yaml:6: budgets.per_tenant.acme.monthly_usd: is required");
    expect_error("budgets:\n  global: {daily: \"5\"}\n", "b.yaml:6: budgets.global.daily:");
    expect_error("budgets:\n  downgrade: {gpt-4o: gpt-4o}\n",
                 "b.yaml:6: budgets.downgrade.gpt-4o: must name a different");
    expect_error("budgets:\n  per_segment:\n    rnd: {daily_max_per_user_usd: \"1.0000000001\"}\n",
                 "b.yaml:7: budgets.per_segment.rnd.daily_max_per_user_usd: must be a non-negative "
                 "decimal USD amount with");
}

static void test_slos(void **state) {
    (void)state;
    cg_config *c = NULL;
    char err[512] = "";
    int rc = load("slos:\n"
                  "  - name: avg_cost_per_query\n"
                  "    target: 0.025\n"
                  "    window: 7d\n"
                  "    alert_threshold: 0.04\n"
                  "    fallback: true\n"
                  "    hold_down: 15m\n"
                  "  - name: sales daily\n"
                  "    kind: daily_cost_total\n"
                  "    segment: sales\n"
                  "    target: 500\n"
                  "    fast: {long: 2h, short: 10m, factor: \"14.4\"}\n"
                  "slo_webhook: http://127.0.0.1:9/hook\n"
                  "fallback_models: {openai: gpt-4o-mini, anthropic: claude-haiku-4-5}\n",
                  &c, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c->n_slos, 2);
    assert_int_equal(c->slos[0].kind, CG_SLO_AVG_PER_QUERY);
    assert_int_equal(c->slos[0].target, 25000000);
    assert_int_equal(c->slos[0].alert_threshold, 40000000);
    assert_true(c->slos[0].fallback);
    assert_int_equal(c->slos[0].hold_down_ms, 15 * 60000);
    assert_int_equal(c->slos[0].fast_long_ms, 3600000); /* default pair */
    assert_int_equal(c->slos[1].kind, CG_SLO_DAILY_TOTAL);
    assert_string_equal(c->slos[1].segment, "sales");
    assert_int_equal(c->slos[1].fast_long_ms, 7200000);
    assert_int_equal(c->slos[1].fast_factor_milli, 14400);
    assert_string_equal(c->slo_webhook, "http://127.0.0.1:9/hook");
    assert_string_equal(c->fallback_model[1], "claude-haiku-4-5");
    cg_config_free(c);
    expect_error("slos:\n  - name: x\n    target: 1\n",
                 "b.yaml:6: slos[0].name: names neither kind");
    expect_error("slos:\n  - name: daily_cost_total\n    target: 1\n    hold_down: 5y\n",
                 "b.yaml:8: slos[0].hold_down: must be a duration");
    expect_error("slos:\n  - {name: daily_cost_total, target: 1, fallback: true}\n",
                 "b.yaml:6: slos[0]: fallback: true needs fallback_models");
    expect_error("slos:\n  - {name: daily_cost_total, target: 1, fast: {long: 5m, short: 1h}}\n",
                 "b.yaml:6: slos[0].fast: short window must be shorter");
    expect_error("slo_webhook: ftp://x\n", "b.yaml:5: slo_webhook: must start with http");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_section),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_slos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
