/* test_bandit: Thompson sampling over tiers (src/route/bandit.c): it learns
 * which tier pays off per intent, the cost penalty moves it to the cheaper
 * tier, exploration stays under its cap, a rating replaces the implicit
 * reward exactly, arms survive a restart through the ledger file, and the
 * Thompson draws follow Beta(alpha, beta) for any shape (checked through how
 * often an arm beats a uniform one: P(X > U) = E[X] = alpha / (alpha + beta)).
 * Threads record into their own rings and decide from their own views: what
 * two threads recorded is all in a snapshot (and can be rated) right after,
 * and the exploration cap holds over both threads' decisions. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "route/bandit.h"
#include "store/ledger.h"

static cg_tiering_cfg cfg(double lambda, double explore) {
    cg_tiering_cfg t;
    memset(&t, 0, sizeof t);
    t.enabled = 1;
    t.bandit = 1;
    t.n_tiers = 3;
    snprintf(t.tiers[0].name, sizeof t.tiers[0].name, "small");
    snprintf(t.tiers[1].name, sizeof t.tiers[1].name, "medium");
    snprintf(t.tiers[2].name, sizeof t.tiers[2].name, "large");
    t.lambda_per_usd = lambda;
    t.explore_max = explore;
    t.implicit_reward = 0.7;
    return t;
}

static const cg_bandit_arm *arm(const cg_bandit_arm *a, size_t n, const char *intent,
                                const char *tier) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].intent, intent) == 0 && strcmp(a[i].tier, tier) == 0)
            return &a[i];
    return NULL;
}

/* Rules say medium; small keeps failing and large keeps succeeding: with
 * unlimited exploration the bandit ends up preferring large. */
static void test_learns_the_tier_that_pays(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 1.0);
    cg_bandit *b = cg_bandit_new(&t, 42);
    for (int i = 0; i < 200; i++) {
        cg_bandit_record(b, NULL, "code", 0, 0.0, 0, 0);
        cg_bandit_record(b, NULL, "code", 1, 0.3, 0, 0);
        cg_bandit_record(b, NULL, "code", 2, 1.0, 0, 0);
    }
    int cand[3] = {1, 0, 2}, counts[3] = {0}, explored;
    for (int i = 0; i < 1000; i++)
        counts[cg_bandit_choose(b, "code", cand, 3, &explored)]++;
    assert_true(counts[2] > 900);
    assert_true(counts[0] < 10);
    /* another intent has learned nothing: not affected */
    int other[3] = {0};
    for (int i = 0; i < 300; i++)
        other[cg_bandit_choose(b, "chat", cand, 3, &explored)]++;
    assert_true(other[0] > 30 && other[1] > 30 && other[2] > 30);
    cg_bandit_free(b);
}

/* Equal quality, different cost: lambda x cost steers to the cheaper tier. */
static void test_cost_penalty_prefers_cheaper(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(100.0, 1.0); /* 100 per USD: $0.005 costs 0.5 of reward */
    cg_bandit *b = cg_bandit_new(&t, 7);
    for (int i = 0; i < 200; i++) {
        cg_bandit_record(b, NULL, "x", 0, 0.9, 100000, 0);  /* $0.0001 */
        cg_bandit_record(b, NULL, "x", 1, 0.9, 5000000, 0); /* $0.005 */
    }
    int cand[2] = {1, 0}, counts[2] = {0}, explored;
    for (int i = 0; i < 500; i++)
        counts[cg_bandit_choose(b, "x", cand, 2, &explored) == 0 ? 0 : 1]++;
    assert_true(counts[0] > 450);
    cg_bandit_free(b);
}

/* With a 10% cap, at most ~10% of decisions leave the rules' tier even when
 * the bandit would always leave. */
static void test_exploration_is_capped(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 0.1);
    cg_bandit *b = cg_bandit_new(&t, 9);
    for (int i = 0; i < 300; i++) {
        cg_bandit_record(b, NULL, "q", 0, 0.0, 0, 0);
        cg_bandit_record(b, NULL, "q", 1, 1.0, 0, 0);
    }
    int cand[2] = {0, 1}, away = 0, explored, flagged = 0;
    for (int i = 0; i < 1000; i++) {
        away += cg_bandit_choose(b, "q", cand, 2, &explored) != 0;
        flagged += explored;
    }
    assert_int_equal(away, flagged);
    assert_true(away <= 101);
    assert_true(away >= 90); /* it does use its budget when the arm pays */
    cg_bandit_free(b);
}

/* A thumbs down replaces the implicit 0.7 credited at settle by 0: the arm
 * ends as if the outcome had been a failure; unknown ids are refused and a
 * second rating of the same request is ignored. */
static void test_feedback_replaces_implicit_reward(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 0.1);
    cg_bandit *b = cg_bandit_new(&t, 1);
    cg_bandit_record(b, "req_a", "faq", 0, 0.7, 0, 1);
    cg_bandit_record(b, "req_b", "faq", 0, 0.7, 0, 1);
    assert_int_equal(cg_bandit_feedback(b, "req_a", -1), 0);
    assert_int_equal(cg_bandit_feedback(b, "req_a", -1), -1);
    assert_int_equal(cg_bandit_feedback(b, "req_zzz", 1), -1);
    assert_int_equal(cg_bandit_feedback(b, "req_b", 1), 0);
    cg_bandit_arm a[8];
    size_t n = cg_bandit_snapshot(b, a, 8);
    const cg_bandit_arm *x = arm(a, n, "faq", "small");
    assert_non_null(x);
    /* prior 1,1; a: +0 / +1 (after the rating); b: +1 / +0 */
    assert_true(x->alpha > 1.999 && x->alpha < 2.001);
    assert_true(x->beta > 1.999 && x->beta < 2.001);
    assert_int_equal(x->thumbs_up, 1);
    assert_int_equal(x->thumbs_down, 1);
    assert_int_equal(x->n, 2);
    cg_bandit_free(b);
}

static void test_persists_through_the_ledger(void **s) {
    (void)s;
    char dir[] = "/tmp/cg-bandit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    cg_tiering_cfg t = cfg(10, 0.1);
    cg_ledger *l = cg_ledger_open(path, &(cg_ledger_opts){.batch_max = 64}, err, sizeof err);
    assert_non_null(l);
    cg_bandit *b = cg_bandit_new(&t, 3);
    cg_bandit_set_ledger(b, l);
    cg_bandit_record(b, "r1", "faq", 0, 1.0, 2000000, 1); /* $0.002 -> penalty 0.02 */
    cg_bandit_record(b, "r2", "faq", 2, 0.0, 0, 1);
    cg_bandit_feedback(b, "r1", 1);
    cg_bandit_flush(b);
    cg_ledger_flush(l);
    cg_ledger_close(l);
    cg_bandit_arm before[8], after[8];
    size_t nb = cg_bandit_snapshot(b, before, 8);
    cg_bandit_free(b);

    cg_bandit *b2 = cg_bandit_new(&t, 3);
    assert_int_equal(cg_bandit_load(b2, path, err, sizeof err), 0);
    size_t na = cg_bandit_snapshot(b2, after, 8);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < nb; i++) {
        const cg_bandit_arm *y = arm(after, na, before[i].intent, before[i].tier);
        assert_non_null(y);
        assert_true(y->alpha == before[i].alpha && y->beta == before[i].beta);
        assert_int_equal(y->n, before[i].n);
        assert_int_equal(y->cost_nano, before[i].cost_nano);
        assert_int_equal(y->thumbs_up, before[i].thumbs_up);
    }
    const cg_bandit_arm *small = arm(after, na, "faq", "small");
    assert_true(small->alpha > 1.979 && small->alpha < 1.981); /* 1 + (1 - 0.02) */
    cg_bandit_free(b2);
    /* a ledger without the table (or no file at all) is a fresh start */
    cg_bandit *b3 = cg_bandit_new(&t, 3);
    assert_int_equal(cg_bandit_load(b3, "/nonexistent/dir/ledger.db", err, sizeof err), 0);
    assert_int_equal(cg_bandit_snapshot(b3, after, 8), 0);
    cg_bandit_free(b3);
    unlink(path);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    rmdir(dir);
}

/* Arms with fractional shapes (below 1 too: the boost branch) are loaded
 * from a ledger file; tier 0 ("small") is a fresh Beta(1, 1) arm, so the
 * share of draws where "medium" wins is E[Beta(alpha, beta)]. */
static void test_draws_follow_the_posterior(void **s) {
    (void)s;
    static const struct {
        double a, b;
    } shapes[] = {{0.5, 1.0}, {1.0, 0.3}, {0.2, 0.2}, {3.7, 1.3}, {40.0, 60.0}, {2.0, 8.0}};
    enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };
    char dir[] = "/tmp/cg-bandit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/arms.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE bandit_arms (intent TEXT NOT NULL, tier TEXT NOT "
                                  "NULL, alpha REAL NOT NULL, beta REAL NOT NULL, n INTEGER NOT "
                                  "NULL, cost_nano INTEGER NOT NULL, thumbs_up INTEGER NOT NULL "
                                  "DEFAULT 0, thumbs_down INTEGER NOT NULL DEFAULT 0, PRIMARY "
                                  "KEY (intent, tier))",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < N_SHAPES; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "INSERT INTO bandit_arms VALUES ('c%d', 'medium', %.17g, %.17g, 10, 0, 0, 0)", i,
                 shapes[i].a, shapes[i].b);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    cg_tiering_cfg t = cfg(0, 1.0);
    cg_bandit *b = cg_bandit_new(&t, 12345);
    assert_int_equal(cg_bandit_load(b, path, err, sizeof err), 0);
    int cand[2] = {0, 1}, explored;
    const int draws = 40000;
    for (int i = 0; i < N_SHAPES; i++) {
        char intent[8];
        snprintf(intent, sizeof intent, "c%d", i);
        int wins = 0;
        for (int d = 0; d < draws; d++)
            wins += cg_bandit_choose(b, intent, cand, 2, &explored) == 1;
        double want = shapes[i].a / (shapes[i].a + shapes[i].b), got = (double)wins / draws;
        if (got < want - 0.015 || got > want + 0.015) /* about 6 standard errors */
            fail_msg("Beta(%g, %g): medium won %.4f of the draws, expected %.4f", shapes[i].a,
                     shapes[i].b, got, want);
    }
    cg_bandit_free(b);
    unlink(path);
    rmdir(dir);
}

/* Two threads record outcomes at once (each ends with some still in its
 * ring): a snapshot taken right after sees every one, and a rating finds a
 * request whose outcome was not merged yet. */
typedef struct rec_arg {
    cg_bandit *b;
    int thread;
} rec_arg;

enum { PER_THREAD = 1000 }; /* not a multiple of the ring: some stay in it */

static void *record_many(void *p) {
    const rec_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d_%d", a->thread, i);
        cg_bandit_record(a->b, id, "mt", a->thread, 1.0, 1000, 1);
    }
    return NULL;
}

static void test_records_from_two_threads_are_all_seen(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 0.1);
    cg_bandit *b = cg_bandit_new(&t, 5);
    pthread_t th[2];
    rec_arg args[2] = {{b, 0}, {b, 1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, record_many, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(cg_bandit_feedback(b, "t1_999", -1), 0); /* the last one, unmerged */
    cg_bandit_arm a[8];
    size_t n = cg_bandit_snapshot(b, a, 8);
    assert_int_equal(n, 2);
    for (int k = 0; k < 2; k++) {
        const cg_bandit_arm *x = arm(a, n, "mt", k ? "medium" : "small");
        assert_non_null(x);
        assert_int_equal(x->n, PER_THREAD);
        assert_int_equal(x->cost_nano, (int64_t)PER_THREAD * 1000);
        /* prior 1, 1; every outcome +1 / +0, but the rated one +0 / +1 */
        double want_alpha = 1.0 + PER_THREAD - k, want_beta = 1.0 + k;
        assert_true(x->alpha > want_alpha - 1e-6 && x->alpha < want_alpha + 1e-6);
        assert_true(x->beta > want_beta - 1e-6 && x->beta < want_beta + 1e-6);
        assert_int_equal(x->thumbs_down, k);
    }
    cg_bandit_free(b);
}

/* Two threads deciding at once, each from its own view and counters: the
 * share of decisions away from the rules' tier stays within explore_max
 * (give or take one per thread), and the budget is used. */
typedef struct choose_arg {
    cg_bandit *b;
    int away, flagged;
} choose_arg;

enum { DECISIONS = 2000 };

static void *choose_many(void *p) {
    choose_arg *a = p;
    int cand[2] = {0, 1}, explored;
    for (int i = 0; i < DECISIONS; i++) {
        a->away += cg_bandit_choose(a->b, "q", cand, 2, &explored) != 0;
        a->flagged += explored;
        if (i % 10 == 0) /* outcomes keep arriving: views refresh meanwhile */
            cg_bandit_record(a->b, NULL, "q", 1, 1.0, 0, 0);
    }
    return NULL;
}

static void test_exploration_is_capped_across_threads(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 0.1);
    cg_bandit *b = cg_bandit_new(&t, 11);
    for (int i = 0; i < 300; i++) {
        cg_bandit_record(b, NULL, "q", 0, 0.0, 0, 0);
        cg_bandit_record(b, NULL, "q", 1, 1.0, 0, 0);
    }
    pthread_t th[2];
    choose_arg args[2] = {{b, 0, 0}, {b, 0, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, choose_many, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    int away = args[0].away + args[1].away;
    assert_int_equal(away, args[0].flagged + args[1].flagged);
    assert_true(away <= (int)(0.1 * 2 * DECISIONS) + 2);
    assert_true(away >= (int)(0.09 * 2 * DECISIONS));
    cg_bandit_arm a[8];
    size_t n = cg_bandit_snapshot(b, a, 8);
    const cg_bandit_arm *x = arm(a, n, "q", "medium");
    assert_non_null(x);
    assert_int_equal(x->n, 300 + 2 * (DECISIONS / 10));
    cg_bandit_free(b);
}

/* More intents than a thread keeps views of: the rest take the locked path
 * and every outcome still lands on its arm; decisions for them still work. */
static void test_many_intents_take_the_locked_path(void **s) {
    (void)s;
    cg_tiering_cfg t = cfg(0, 1.0);
    cg_bandit *b = cg_bandit_new(&t, 13);
    enum { INTENTS = 100 };
    int cand[2] = {0, 1}, explored;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < INTENTS; i++) {
            char intent[16];
            snprintf(intent, sizeof intent, "i%d", i);
            int pick = cg_bandit_choose(b, intent, cand, 2, &explored);
            assert_true(pick == 0 || pick == 1);
            cg_bandit_record(b, NULL, intent, 1, 1.0, 0, 0);
        }
    cg_bandit_arm a[2 * INTENTS];
    size_t n = cg_bandit_snapshot(b, a, 2 * INTENTS);
    assert_int_equal(n, 2 * INTENTS); /* both candidates of every intent have an arm */
    for (int i = 0; i < INTENTS; i++) {
        char intent[16];
        snprintf(intent, sizeof intent, "i%d", i);
        const cg_bandit_arm *x = arm(a, n, intent, "medium");
        assert_non_null(x);
        assert_int_equal(x->n, 3);
        assert_true(x->alpha > 3.999 && x->alpha < 4.001);
    }
    cg_bandit_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_the_tier_that_pays),
        cmocka_unit_test(test_cost_penalty_prefers_cheaper),
        cmocka_unit_test(test_exploration_is_capped),
        cmocka_unit_test(test_feedback_replaces_implicit_reward),
        cmocka_unit_test(test_persists_through_the_ledger),
        cmocka_unit_test(test_draws_follow_the_posterior),
        cmocka_unit_test(test_records_from_two_threads_are_all_seen),
        cmocka_unit_test(test_exploration_is_capped_across_threads),
        cmocka_unit_test(test_many_intents_take_the_locked_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
