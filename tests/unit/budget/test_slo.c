/* test_slo: burn-rate alerts and fallback of src/budget/slo.c on synthetic
 * traffic with a simulated clock: fires on a cost spike, clears after it,
 * fallback engages with the alert and releases only after the hold-down,
 * once (no flapping); daily-total SLOs; segment scoping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "budget/slo.h"

#define MIN INT64_C(60000)
#define USD(x) ((int64_t)((x)*1e9 + 0.5))

typedef struct log {
    int n;
    cg_slo_event_kind kind[64];
    char pair[64][8];
    int64_t at[64];
} log;

static void on_event(void *arg, const cg_slo_event *ev) {
    log *l = arg;
    if (l->n < 64) {
        l->kind[l->n] = ev->kind;
        snprintf(l->pair[l->n], sizeof l->pair[0], "%s", ev->pair);
        l->at[l->n] = ev->at_ms;
        l->n++;
    }
}

static int64_t first(const log *l, cg_slo_event_kind k, const char *pair) {
    for (int i = 0; i < l->n; i++)
        if (l->kind[i] == k && (!pair || strcmp(l->pair[i], pair) == 0))
            return l->at[i];
    return -1;
}

static int count(const log *l, cg_slo_event_kind k) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->kind[i] == k;
    return n;
}

/* one query a minute at `cost`, evaluated every minute */
static void run(cg_slos *s, const char *seg, int64_t *t, int minutes, int64_t cost, log *l) {
    for (int i = 0; i < minutes; i++) {
        cg_slos_record(s, seg, cost, *t);
        cg_slos_evaluate(s, *t, on_event, l);
        *t += MIN;
    }
}

static void test_avg_per_query_spike(void **state) {
    (void)state;
    cg_slo_def d;
    cg_slo_def_defaults(&d);
    snprintf(d.name, sizeof d.name, "avg_cost_per_query");
    d.kind = CG_SLO_AVG_PER_QUERY;
    d.target = USD(0.025);
    d.alert_threshold = USD(0.04); /* slow factor 1.6x */
    d.fallback = 1;
    cg_slos *s = cg_slos_new(&d, 1);
    log l = {0};
    int64_t t = INT64_C(1795341600000);
    run(s, "any", &t, 120, USD(0.01), &l);
    assert_int_equal(l.n, 0); /* 0.4x target: quiet */
    assert_false(cg_slos_fallback(s, "any"));
    int64_t spike = t;
    run(s, "any", &t, 60, USD(0.10), &l);
    /* fast pair: the 1 h average reaches 2x (0.05) after 27 minutes of spike */
    int64_t fired = first(&l, CG_SLO_EV_ALERT_FIRED, "fast");
    assert_true(fired >= spike + 26 * MIN && fired <= spike + 28 * MIN);
    assert_true(first(&l, CG_SLO_EV_FALLBACK_ON, NULL) == fired);
    assert_true(cg_slos_fallback(s, "any"));
    assert_true(cg_slos_fallback(s, "other")); /* a global SLO covers every segment */
    int64_t calm = t;
    run(s, "any", &t, 120, USD(0.01), &l);
    int64_t cleared = first(&l, CG_SLO_EV_ALERT_CLEARED, "fast");
    assert_true(cleared > calm && cleared <= calm + 6 * MIN);
    /* released once, only after hold-down since the last alerting minute */
    assert_int_equal(count(&l, CG_SLO_EV_FALLBACK_ON), 1);
    assert_int_equal(count(&l, CG_SLO_EV_FALLBACK_OFF), 1);
    int64_t last_alert = -1;
    for (int i = 0; i < l.n; i++)
        if (l.kind[i] == CG_SLO_EV_ALERT_CLEARED && l.at[i] > last_alert)
            last_alert = l.at[i];
    int64_t off = first(&l, CG_SLO_EV_FALLBACK_OFF, NULL);
    assert_true(off >= last_alert - MIN + d.hold_down_ms);
    assert_true(off <= last_alert + d.hold_down_ms + MIN);
    assert_false(cg_slos_fallback(s, "any"));
    cg_slo_status st;
    cg_slos_status(s, 0, &st);
    assert_false(st.fast_alert || st.slow_alert || st.fallback);
    cg_slos_free(s);
}

static void test_no_flapping_on_oscillation(void **state) {
    (void)state;
    cg_slo_def d;
    cg_slo_def_defaults(&d);
    snprintf(d.name, sizeof d.name, "osc");
    d.kind = CG_SLO_AVG_PER_QUERY;
    d.target = USD(0.01);
    d.alert_threshold = USD(0.01);
    d.fast_long_ms = 10 * MIN;
    d.fast_short_ms = 2 * MIN;
    d.fallback = 1;
    d.hold_down_ms = 20 * MIN;
    cg_slos *s = cg_slos_new(&d, 1);
    log l = {0};
    int64_t t = INT64_C(1795341600000);
    /* alternating 10-minute bursts and lulls: alerts come and go, the
     * fallback stays on throughout and toggles once each way at most */
    for (int k = 0; k < 6; k++) {
        run(s, "", &t, 10, USD(0.05), &l);
        run(s, "", &t, 10, USD(0.001), &l);
    }
    assert_true(count(&l, CG_SLO_EV_ALERT_FIRED) >= 3);
    assert_int_equal(count(&l, CG_SLO_EV_FALLBACK_ON), 1);
    assert_int_equal(count(&l, CG_SLO_EV_FALLBACK_OFF), 0);
    run(s, "", &t, 60, USD(0.001), &l);
    assert_int_equal(count(&l, CG_SLO_EV_FALLBACK_OFF), 1);
    cg_slos_free(s);
}

static void test_daily_total_segment(void **state) {
    (void)state;
    cg_slo_def d;
    cg_slo_def_defaults(&d);
    snprintf(d.name, sizeof d.name, "daily_cost_total");
    snprintf(d.segment, sizeof d.segment, "sales");
    d.kind = CG_SLO_DAILY_TOTAL;
    d.target = USD(1440); /* $1 a minute is on target */
    d.alert_threshold = USD(2160);
    cg_slos *s = cg_slos_new(&d, 1);
    log l = {0};
    int64_t t = INT64_C(1795341600000);
    run(s, "sales", &t, 90, USD(1.0), &l);
    run(s, "rnd", &t, 90, USD(100.0), &l); /* another segment never counts */
    assert_int_equal(l.n, 0);
    run(s, "sales", &t, 90, USD(3.0), &l); /* 3x the sustainable rate */
    assert_true(first(&l, CG_SLO_EV_ALERT_FIRED, "fast") > 0);
    assert_false(cg_slos_fallback(s, "sales")); /* fallback not configured */
    cg_slo_status st;
    cg_slos_status(s, 0, &st);
    assert_true(st.burn_fast_short >= 2900 && st.burn_fast_short <= 3100);
    cg_slos_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avg_per_query_spike),
        cmocka_unit_test(test_no_flapping_on_oscillation),
        cmocka_unit_test(test_daily_total_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
