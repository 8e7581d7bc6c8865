/* test_eval: unit tests of src/route/eval.c and eval_data.c.
 *
 * Owns: the call-performance curve, PGR, CPT and APGR on hand-made
 * examples with answers worked out by hand (including ties, a router that
 * beats the strong model, a zero gap and the random-routing line), exact
 * operating points and costs, the deterministic split, and loading the
 * shared replay data ($CG_SHARED_DIR/data): row counts, model qualities
 * checked against an independent count of the files, prices and their
 * sources, and refusal when a price is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cost/prices.h"
#include "route/eval.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* Four prompts. weak right on 0 and 3, strong right on 0, 1, 2:
 * r(weak) = 0.5, r(strong) = 0.75, gap 0.25. The router ranks 1, 2, 0, 3.
 * Curve (share, quality, PGR): (0, .5, 0) (.25, .75, 1) (.5, 1, 2)
 * (.75, 1, 2) (1, .75, 1).
 * CPT(50%) = .125, CPT(80%) = .2, CPT(95%) = .2375 (linear on the first
 * segment); APGR = .125 + .375 + .5 + .375 = 1.375. */
static const double QW[4] = {1, 0, 0, 1}, QS[4] = {1, 1, 1, 0};
static const int64_t CW[4] = {10, 20, 30, 40}, CS[4] = {100, 200, 300, 400};
static const double SC[4] = {0.5, 0.9, 0.8, 0.1};

static void test_hand_example(void **state) {
    (void)state;
    cg_route_data d = {4, QW, QS, CW, CS};
    cg_curve_pt pts[5];
    size_t n;
    assert_int_equal(cg_route_curve(&d, SC, pts, &n), 0);
    assert_int_equal(n, 5);
    const double share[5] = {0, .25, .5, .75, 1}, q[5] = {.5, .75, 1, 1, .75};
    const int64_t cost[5] = {100, 280, 550, 640, 1000};
    for (size_t k = 0; k < 5; k++) {
        assert_true(NEAR(pts[k].share, share[k]));
        assert_true(NEAR(pts[k].quality, q[k]));
        assert_int_equal(pts[k].cost, cost[k]);
    }
    assert_true(NEAR(cg_route_pgr(1.0, .5, .75), 2.0));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .50), .125));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .80), .2));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .95), .2375));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, 2.0), .5));
    assert_true(isnan(cg_route_cpt(pts, n, .5, .75, 2.5))); /* never reached */
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, 0.0), 0.0));
    assert_true(NEAR(cg_route_apgr(pts, n, .5, .75), 1.375));
    /* cost along the curve, linear between operating points */
    assert_true(NEAR(cg_route_cost_at(pts, n, .125), 190.0));
    assert_true(NEAR(cg_route_cost_at(pts, n, 1.0), 1000.0));
    assert_true(isnan(cg_route_cost_at(pts, n, NAN)));
}

/* A router that ranks the worst first: APGR below 0.5, CPT(50%) late. */
static void test_reversed_router(void **state) {
    (void)state;
    const double rev[4] = {0.5, 0.1, 0.2, 0.9}; /* order 3, 0, 2, 1 */
    cg_route_data d = {4, QW, QS, NULL, NULL};
    cg_curve_pt pts[5];
    size_t n;
    assert_int_equal(cg_route_curve(&d, rev, pts, &n), 0);
    /* (0,.5,0) (.25,.25,-1) (.5,.25,-1) (.75,.5,0) (1,.75,1) */
    assert_true(NEAR(pts[1].quality, .25));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .5), .875));
    /* area: -.125 - .25 - .125 + .125 = -.375 */
    assert_true(NEAR(cg_route_apgr(pts, n, .5, .75), -.375));
    assert_int_equal(pts[4].cost, 0); /* no costs given */
}

/* All scores tie: one step from all-weak to all-strong, the random-routing
 * expectation: CPT(x) = x and APGR = 0.5 exactly. */
static void test_ties_are_the_random_line(void **state) {
    (void)state;
    const double same[4] = {0.3, 0.3, 0.3, 0.3};
    cg_route_data d = {4, QW, QS, CW, CS};
    cg_curve_pt pts[5];
    size_t n;
    assert_int_equal(cg_route_curve(&d, same, pts, &n), 0);
    assert_int_equal(n, 2);
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .5), .5));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .8), .8));
    assert_true(NEAR(cg_route_cpt(pts, n, .5, .75, .95), .95));
    assert_true(NEAR(cg_route_apgr(pts, n, .5, .75), .5));
    /* Partial ties: {0.9, 0.9} then {0.1, 0.1}: three points. */
    const double two[4] = {0.9, 0.1, 0.9, 0.1};
    assert_int_equal(cg_route_curve(&d, two, pts, &n), 0);
    assert_int_equal(n, 3);
    assert_true(NEAR(pts[1].share, .5));
    assert_true(NEAR(pts[1].quality, .75)); /* items 0 and 2: +0 +1 */
    /* NaN scores sort last. */
    const double withnan[4] = {NAN, 0.9, 0.8, 0.1};
    assert_int_equal(cg_route_curve(&d, withnan, pts, &n), 0);
    /* order 1, 2, 3, then the NaN item 0: .5 -> .75 -> 1 -> .75 -> .75 */
    assert_true(NEAR(pts[2].quality, 1.0));
    assert_true(NEAR(pts[3].quality, .75));
    assert_true(NEAR(pts[3].share, .75));
}

static void test_zero_gap(void **state) {
    (void)state;
    const double a[2] = {1, 0}, b[2] = {0, 1}, s[2] = {1, 0};
    cg_route_data d = {2, a, b, NULL, NULL};
    cg_curve_pt pts[3];
    size_t n;
    assert_int_equal(cg_route_curve(&d, s, pts, &n), 0);
    assert_true(isnan(cg_route_pgr(.5, .5, .5)));
    assert_true(isnan(cg_route_cpt(pts, n, .5, .5, .8)));
    assert_true(isnan(cg_route_apgr(pts, n, .5, .5)));
    cg_route_data empty = {0, a, b, NULL, NULL};
    assert_int_equal(cg_route_curve(&empty, s, pts, &n), -1);
}

static void test_operating_points(void **state) {
    (void)state;
    cg_route_data d = {4, QW, QS, CW, CS};
    const double tie[4] = {0.5, 0.5, 0.5, 0.1};
    const uint64_t tb[4] = {3, 2, 1, 0};
    size_t order[4];
    assert_int_equal(cg_route_order(tie, tb, 4, order), 0);
    assert_int_equal(order[0], 2); /* ties broken by tiebreak ascending */
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 0);
    assert_int_equal(order[3], 3);
    double q;
    int64_t c;
    cg_route_at_k(&d, order, 0, &q, &c);
    assert_true(NEAR(q, .5));
    assert_int_equal(c, 100);
    cg_route_at_k(&d, order, 2, &q, &c); /* items 2, 1 strong */
    assert_true(NEAR(q, 1.0));
    assert_int_equal(c, 200 + 300 + 10 + 40);
    cg_route_at_k(&d, order, 9, &q, &c); /* clamped to all */
    assert_int_equal(c, 1000);
}

static void test_split(void **state) {
    (void)state;
    size_t cnt[3] = {0};
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(buf, sizeof buf, "prompt number %d", i);
        cg_split s = cg_eval_split(buf, (size_t)n);
        assert_int_equal(s, cg_eval_split(buf, (size_t)n)); /* deterministic */
        cnt[s]++;
        double u = cg_eval_unit(buf, (size_t)n, 3);
        assert_true(u >= 0.0 && u < 1.0);
    }
    assert_true(cnt[CG_SPLIT_TRAIN] > 9600 && cnt[CG_SPLIT_TRAIN] < 10400);
    assert_true(cnt[CG_SPLIT_VAL] > 3700 && cnt[CG_SPLIT_VAL] < 4300);
    assert_true(cnt[CG_SPLIT_TEST] > 5600 && cnt[CG_SPLIT_TEST] < 6400);
    assert_true(cg_eval_unit("x", 1, 1) != cg_eval_unit("x", 1, 2)); /* seeds differ */
    assert_string_equal(cg_split_name(CG_SPLIT_TEST), "test");
}

/* ------------------------------------------------------------------ */
/* Real data                                                            */

static char data_dir[1024], prices_path[1100];

static int have_data(void) {
    const char *dir = getenv("CG_SHARED_DIR");
    if (!dir)
        return 0;
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    snprintf(prices_path, sizeof prices_path,
             "%s/prices/litellm_model_prices_and_context_window.json", data_dir);
    return access(prices_path, R_OK) == 0;
}

static void check_set(const char *name, const cg_price_table *b, const cg_price_table *l,
                      size_t want_n, double want_qw, double want_qs) {
    cg_eval_load_opts o = {data_dir, b, l, 0, 0};
    cg_eval_set s;
    char err[512];
    if (cg_eval_load(name, &o, &s, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    assert_int_equal(s.n, want_n);
    double qw = 0, qs = 0;
    size_t split[3] = {0};
    for (size_t i = 0; i < s.n; i++) {
        qw += s.items[i].q_weak;
        qs += s.items[i].q_strong;
        split[s.items[i].split]++;
        assert_true(s.items[i].len > 0);
        assert_int_equal(s.items[i].len, strlen(s.items[i].prompt));
        assert_true(s.items[i].cost_strong > 0 && s.items[i].cost_weak > 0);
    }
    if (fabs(qw / (double)s.n - want_qw) > 1e-6 || fabs(qs / (double)s.n - want_qs) > 1e-6)
        fail_msg("%s: qualities %.6f %.6f, want %.6f %.6f", name, qw / (double)s.n,
                 qs / (double)s.n, want_qw, want_qs);
    assert_true(split[CG_SPLIT_TEST] > want_n / 5); /* roughly 30% */
    assert_true(s.price_weak[0] && s.price_strong[0] && s.cost_note[0]);
    cg_eval_set_free(&s);
}

static void test_load_real_data(void **state) {
    (void)state;
    if (!have_data()) {
        skip();
        return;
    }
    cg_price_table *b = cg_prices_builtin(), *l = cg_prices_new();
    char err[512];
    assert_non_null(b);
    assert_true(cg_prices_load_litellm(l, prices_path, 1, err, sizeof err) > 0);
    /* Expected qualities: counted independently from the files (True rows
     * / rows; mean of judge scores; mean RouterArena score). */
    check_set("gsm8k", b, l, 1319, 842.0 / 1319, 1130.0 / 1319);
    check_set("mmlu", b, l, 14042, 9560.0 / 14042, 11315.0 / 14042);
    check_set("mt-bench", b, l, 80, 8.340625, 9.228125);
    check_set("routerarena", b, l, 809, 0.5233560759175242, 0.6901193045257853);

    /* Price sources: gpt-4-1106-preview and Mixtral are not built in. */
    cg_eval_load_opts o = {data_dir, b, l, 200, 0};
    cg_eval_set s;
    assert_int_equal(cg_eval_load("gsm8k", &o, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 200); /* subsample */
    assert_non_null(strstr(s.price_strong, "LiteLLM file entry \"gpt-4-1106-preview\""));
    assert_non_null(strstr(s.price_weak, "mistral/open-mixtral-8x7b"));
    /* cost = tokens x price, exactly: gpt-4-1106-preview is $10 / $30 per 1M */
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.items[i].cost_strong,
                         s.items[i].in_strong * 10000 + s.items[i].out_strong * 30000);
    cg_eval_set_free(&s);
    assert_int_equal(cg_eval_load("routerarena", &o, &s, err, sizeof err), 0);
    assert_non_null(strstr(s.price_weak, "built-in table, entry \"claude-3-haiku\""));
    cg_eval_set_free(&s);

    /* Without the LiteLLM file the missing price is an error, never zero. */
    o.litellm = NULL;
    assert_int_equal(cg_eval_load("gsm8k", &o, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "no price for"));
    assert_int_equal(cg_eval_load("nope", &o, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown data set"));
    cg_prices_free(b);
    cg_prices_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_example),
        cmocka_unit_test(test_reversed_router),
        cmocka_unit_test(test_ties_are_the_random_line),
        cmocka_unit_test(test_zero_gap),
        cmocka_unit_test(test_operating_points),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_load_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
