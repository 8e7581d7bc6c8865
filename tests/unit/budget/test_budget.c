/* test_budget: the reservation engine of src/budget/budget.c with an injected
 * clock: limits per scope, reserve/settle arithmetic, concurrency (no
 * overspend), period resets in UTC and another time zone, dry-run, runtime
 * limits and the rebuild of spend from a ledger file. */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget/budget.h"
#include "store/ledger_schema.h"

#define USD(x) ((int64_t)((x)*1000000000.0 + 0.5))

static int64_t g_now;
static int64_t fake_clock(void *arg) {
    (void)arg;
    return g_now;
}

/* 2026-11-22T10:00:00Z */
#define T0 INT64_C(1795341600000)

static const char *BASE = "providers:\n"
                          "  - {name: openai, api: openai, models: [\"gpt-*\"]}\n"
                          "keys:\n"
                          "  - {name: k, sha256: "
                          "\"0000000000000000000000000000000000000000000000000000000000000001\", "
                          "tenant: t}\n";

static cg_config *load(const char *budgets) {
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s%s", BASE, budgets);
    cg_config *c = NULL;
    char err[512];
    int rc = cg_config_load_string("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "config: %s\n", err);
    assert_int_equal(rc, 0);
    return c;
}

static const char *LIMITS = "budgets:\n"
                            "  default: {max_per_query_usd: \"0.05\", daily_max_per_user_usd: "
                            "\"1.00\"}\n"
                            "  per_segment:\n"
                            "    rnd: {max_per_query_usd: \"0.20\", daily_max_per_user_usd: "
                            "\"50\", daily_max_usd: \"60\"}\n"
                            "    trial: {daily_max_per_user_usd: \"0.10\", action: dry_run}\n"
                            "  per_tenant: {t: {monthly_usd: \"100\"}}\n"
                            "  per_feature: {search: {daily_usd: \"0.30\"}}\n"
                            "  global: {daily_usd: \"1000\"}\n";

static void test_query_and_user_day(void **state) {
    (void)state;
    cg_config *c = load(LIMITS);
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_budget_who w = {"t", "alice", "default", ""};
    cg_reservation r;
    cg_budget_verdict v;
    /* per query: 0.06 > 0.05 */
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.06), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_QUERY);
    assert_int_equal(v.limit, USD(0.05));
    assert_int_equal(v.reset_at_ms, 0);
    /* 20 x 0.05 fits the 1.00 daily limit exactly; the 21st does not */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(cg_budget_reserve(b, &w, USD(0.05), &r, &v), 1);
        cg_budget_settle(b, &r, USD(0.05));
    }
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.01), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_USER_DAY);
    assert_int_equal(v.spent, USD(1.00));
    /* resets at the next UTC midnight */
    assert_int_equal(v.reset_at_ms, INT64_C(1795392000000));
    assert_string_equal(v.scope_name, "user_day tenant=t user=alice");
    /* another user is unaffected */
    cg_budget_who w2 = {"t", "bob", "default", ""};
    assert_int_equal(cg_budget_reserve(b, &w2, USD(0.05), &r, &v), 1);
    cg_budget_settle(b, &r, 0);
    cg_budgets_free(b);
    cg_config_free(c);
}

static void test_settle_replaces_reservation(void **state) {
    (void)state;
    cg_config *c = load(LIMITS);
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_budget_who w = {"t", "u", "default", ""};
    cg_reservation r[25];
    cg_budget_verdict v;
    /* 20 reservations of 0.05 hold the whole 1.00 while in flight */
    for (int i = 0; i < 20; i++)
        assert_int_equal(cg_budget_reserve(b, &w, USD(0.05), &r[i], &v), 1);
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.001), &r[20], &v), 0);
    assert_int_equal(v.reserved, USD(1.00));
    /* actual costs are lower: settling frees the difference */
    for (int i = 0; i < 20; i++)
        cg_budget_settle(b, &r[i], USD(0.01));
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.05), &r[20], &v), 1);
    assert_int_equal(r[20].remaining, USD(1.00) - USD(0.20) - USD(0.05));
    cg_budget_settle(b, &r[20], USD(0.05));
    cg_budget_settle(b, &r[20], USD(0.05)); /* idempotent */
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.05), &r[21], &v), 1);
    assert_int_equal(r[21].remaining, USD(1.00) - USD(0.25) - USD(0.05));
    cg_budget_settle(b, &r[21], 0);
    cg_budgets_free(b);
    cg_config_free(c);
}

typedef struct race {
    cg_budgets *b;
    int admitted;
    unsigned seed;
} race;

static void *racer(void *arg) {
    race *x = arg;
    cg_budget_who w = {"t", "shared", "rnd", "search"};
    for (int i = 0; i < 2000; i++) {
        cg_reservation r;
        cg_budget_verdict v;
        int64_t est = USD(0.01) + (int64_t)(rand_r(&x->seed) % 1000) * 10000;
        if (cg_budget_reserve(x->b, &w, est, &r, &v)) {
            x->admitted++;
            /* the actual cost never exceeds the reserved upper bound */
            cg_budget_settle(x->b, &r, est - (int64_t)(rand_r(&x->seed) % 3) * 1000);
        }
    }
    return NULL;
}

typedef struct sum {
    int64_t feature_spent, feature_limit, feature_reserved;
} sum;

static void visit(void *arg, const char *scope, const char *key, int64_t limit, int64_t spent,
                  int64_t reserved, int64_t reset) {
    (void)key;
    (void)reset;
    sum *s = arg;
    if (strcmp(scope, "feature_day") == 0) {
        s->feature_spent = spent;
        s->feature_limit = limit;
        s->feature_reserved = reserved;
    }
}

static void test_concurrent_never_overspends(void **state) {
    (void)state;
    cg_config *c = load(LIMITS);
    g_now = T0;
    for (int k = 2; k <= 64; k *= 4) {
        cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
        pthread_t th[64];
        race rs[64];
        for (int i = 0; i < k; i++) {
            rs[i] = (race){b, 0, (unsigned)(i * 7919 + k)};
            pthread_create(&th[i], NULL, racer, &rs[i]);
        }
        int admitted = 0;
        for (int i = 0; i < k; i++) {
            pthread_join(th[i], NULL);
            admitted += rs[i].admitted;
        }
        sum s = {0};
        cg_budget_visit(b, visit, &s);
        assert_int_equal(s.feature_limit, USD(0.30));
        assert_true(s.feature_spent <= USD(0.30));
        assert_true(s.feature_spent > USD(0.25)); /* and the budget was actually used */
        assert_int_equal(s.feature_reserved, 0);
        assert_true(admitted > 0);
        cg_budgets_free(b);
    }
    cg_config_free(c);
}

static void test_period_reset_and_month(void **state) {
    (void)state;
    cg_config *c = load(LIMITS);
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_budget_who w = {"t", "u", "rnd", ""};
    cg_reservation r;
    cg_budget_verdict v;
    /* one user: the user's daily 50 binds (before the segment's 60) */
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 1);
    cg_budget_settle(b, &r, USD(49.9));
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_USER_DAY);
    /* one millisecond before midnight: still blocked; at midnight: reset */
    g_now = INT64_C(1795392000000) - 1;
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 0);
    g_now = INT64_C(1795392000000);
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 1);
    cg_budget_settle(b, &r, USD(0.2));
    /* the tenant's month (100) keeps counting across days */
    cg_budget_who w2 = {"t", "u2", "rnd", ""};
    for (int i = 0; i < 250; i++) {
        if (!cg_budget_reserve(b, &w2, USD(0.20), &r, &v))
            break;
        cg_budget_settle(b, &r, USD(0.2));
    }
    assert_int_equal(cg_budget_reserve(b, &w2, USD(0.20), &r, &v), 0);
    /* the tenant's month (49.9 + 0.2 already) binds before the segment's 60 a day */
    assert_int_equal(v.scope, CG_SCOPE_TENANT_MONTH);
    assert_true(v.spent <= USD(100) && v.spent > USD(99.7));
    cg_budgets_free(b);
    cg_config_free(c);
}

static void test_tenant_month(void **state) {
    (void)state;
    cg_config *c = load("budgets:\n  per_tenant: {t: {monthly_usd: \"1.00\"}}\n");
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_reservation r;
    cg_budget_verdict v;
    for (int day = 0; day < 5; day++) {
        g_now = T0 + (int64_t)day * 86400000;
        cg_budget_who w = {"t", "u", "default", ""};
        assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 1);
        cg_budget_settle(b, &r, USD(0.20));
    }
    g_now = T0 + 5 * INT64_C(86400000);
    cg_budget_who w = {"t", "u", "default", ""};
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_TENANT_MONTH);
    assert_int_equal(v.reset_at_ms, INT64_C(1796083200000)); /* 2026-12-01T00:00Z */
    g_now = INT64_C(1796083200000);
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.20), &r, &v), 1);
    cg_budget_settle(b, &r, 0);
    cg_budgets_free(b);
    cg_config_free(c);
}

static void test_timezone_day(void **state) {
    (void)state;
    setenv("TZ", "Asia/Seoul", 1);
    tzset();
    cg_config *c = load("budgets:\n  timezone: Asia/Seoul\n  default: {daily_max_per_user_usd: "
                        "\"0.10\"}\n");
    /* 2026-11-22T14:59:59.999Z is 23:59:59.999 in Seoul */
    g_now = INT64_C(1795359599999);
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_budget_who w = {"t", "u", "default", ""};
    cg_reservation r;
    cg_budget_verdict v;
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.10), &r, &v), 1);
    cg_budget_settle(b, &r, USD(0.10));
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.01), &r, &v), 0);
    assert_int_equal(v.reset_at_ms, INT64_C(1795359600000));
    g_now = INT64_C(1795359600000); /* Seoul midnight */
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.01), &r, &v), 1);
    cg_budget_settle(b, &r, 0);
    cg_budgets_free(b);
    cg_config_free(c);
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_dry_run_and_runtime_limits(void **state) {
    (void)state;
    cg_config *c = load(LIMITS);
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    cg_budget_who w = {"t", "tr", "trial", ""};
    cg_reservation r;
    cg_budget_verdict v;
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.04), &r, &v), 1);
    assert_int_equal(r.dry_run, 0);
    cg_budget_settle(b, &r, USD(0.09));
    /* over the trial segment's 0.10: admitted but flagged */
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.04), &r, &v), 1);
    assert_int_equal(r.dry_run, 1);
    assert_string_equal(r.dry_run_scope, "user_day");
    cg_budget_settle(b, &r, USD(0.04));
    /* tighten at run time: now it rejects */
    char err[256];
    assert_int_equal(cg_budget_set_limit(b, "segment", "trial", "daily_max_per_user", USD(0.10), 0,
                                         err, sizeof err),
                     0);
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.01), &r, &v), 0);
    assert_int_equal(v.action, CG_ACT_REJECT);
    assert_int_equal(cg_budget_set_limit(b, "global", NULL, NULL, USD(0.01), -1, err, sizeof err),
                     0);
    cg_budget_who w2 = {"t", "z", "default", ""};
    assert_int_equal(cg_budget_reserve(b, &w2, USD(0.02), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_GLOBAL_DAY);
    assert_int_equal(cg_budget_set_limit(b, "global", NULL, NULL, CG_NO_LIMIT, -1, err, sizeof err),
                     0);
    assert_int_equal(cg_budget_reserve(b, &w2, USD(0.02), &r, &v), 1);
    cg_budget_settle(b, &r, 0);
    assert_int_equal(cg_budget_set_limit(b, "bogus", "x", NULL, 1, -1, err, sizeof err), -1);
    assert_non_null(strstr(err, "scope must be"));
    assert_int_equal(cg_budget_set_limit(b, "tenant", "", NULL, 1, -1, err, sizeof err), -1);
    cg_budgets_free(b);
    cg_config_free(c);
}

static void test_rebuild_from_ledger(void **state) {
    (void)state;
    char path[] = "/tmp/cg-budget-ledger-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, CG_LEDGER_SCHEMA_SQL, NULL, NULL, NULL), SQLITE_OK);
    char sql[1024];
    /* today 0.60 for alice, yesterday 0.90 (other day, same month) */
    snprintf(sql, sizeof sql,
             "INSERT INTO ledger(request_id,attempt,ts_ms,day,kind,api,tenant,user,segment,status,"
             "cost_total) VALUES ('a',1,%lld,'d','chat','openai','t','alice','default','ok',%lld),"
             "('b',1,%lld,'d','chat','openai','t','alice','default','ok',%lld),"
             "('c',1,%lld,'d','chat','openai','t','alice','default','ok',%lld)",
             (long long)(T0 - 3600000), (long long)USD(0.35), (long long)(T0 - 1000),
             (long long)USD(0.25), (long long)(T0 - 86400000), (long long)USD(0.90));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cg_config *c = load("budgets:\n  default: {daily_max_per_user_usd: \"1.00\"}\n"
                        "  per_tenant: {t: {monthly_usd: \"2.00\"}}\n");
    g_now = T0;
    cg_budgets *b = cg_budgets_new(c, fake_clock, NULL);
    char err[256];
    assert_int_equal(cg_budgets_load_ledger(b, path, err, sizeof err), 0);
    cg_budget_who w = {"t", "alice", "default", ""};
    cg_reservation r;
    cg_budget_verdict v;
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.41), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_USER_DAY);
    assert_int_equal(v.spent, USD(0.60));
    assert_int_equal(cg_budget_reserve(b, &w, USD(0.40), &r, &v), 1);
    cg_budget_settle(b, &r, USD(0.40));
    /* month: 0.90 + 0.60 + 0.40 = 1.90 of 2.00 */
    cg_budget_who w2 = {"t", "bob", "default", ""};
    assert_int_equal(cg_budget_reserve(b, &w2, USD(0.11), &r, &v), 0);
    assert_int_equal(v.scope, CG_SCOPE_TENANT_MONTH);
    assert_int_equal(v.spent, USD(1.90));
    cg_budgets_free(b);
    /* a missing file is an error */
    cg_budgets *b2 = cg_budgets_new(c, fake_clock, NULL);
    assert_int_equal(cg_budgets_load_ledger(b2, "/nonexistent/dir/x.db", err, sizeof err), -1);
    cg_budgets_free(b2);
    unlink(path);
    cg_config_free(c);
}

int main(void) {
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_and_user_day),
        cmocka_unit_test(test_settle_replaces_reservation),
        cmocka_unit_test(test_concurrent_never_overspends),
        cmocka_unit_test(test_period_reset_and_month),
        cmocka_unit_test(test_tenant_month),
        cmocka_unit_test(test_timezone_day),
        cmocka_unit_test(test_dry_run_and_runtime_limits),
        cmocka_unit_test(test_rebuild_from_ledger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
