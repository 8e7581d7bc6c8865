/* test_report: obs/report over a hand-made SQLite ledger, all three formats.
 *
 * Fixture (nano-USD; totals are the sum of the five axes):
 *   id  day         tenant      user       model         kind      status               total
 * baseline r1  2025-03-01  acme        ann        gpt-4o        chat      ok 7500000   9000000 r2
 * 2025-03-01  acme        ann        gpt-4o-mini   chat      ok                    480000    480000
 *   r3  2025-03-01  beta, inc   bob        claude-sonnet messages  ok                  10500000
 * 12000000 r4  2025-03-01  acme        ann        (none)        external  ok 5000000   5000000  ext
 * api r5  2025-03-02  acme        ann        gpt-4o        chat      upstream_error             0 0
 *   r6  2025-03-02  acme        cat        gpt-4o        chat      ok (estimated)       4000000
 * 4000000 r7  2025-03-02  beta, inc   bob        gpt-4o-mini   embed     ok 200000    200000 r8
 * 2025-03-02  beta, inc   bob "the"  claude-sonnet messages  ok                  18600000  21000000
 *   r9  2025-03-02  beta, inc   bob        (none)        external  ok                   1000000
 * 1000000  storage r10 2025-03-02  acme        cat        gpt-4o-mini   chat client_disconnected 0
 * 0  unpriced Grand total 47280000, baseline 52680000, savings 5400000; axes: input 12900000,
 * output 28180000, embedding 200000, external 5000000, storage 1000000 -> shares 2728, 5960, 42,
 * 1058, 212 bp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/report.h"
#include "store/ledger_schema.h"

typedef struct fixture {
    char path[64];
    char *out;
    size_t out_len;
    char err[256];
} fixture;

static const char *INSERT_SQL =
    "INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, tenant, user,"
    " model_served, provider, status, tok_input, tok_cached_read, tok_cache_write_5m,"
    " tok_cache_write_1h, tok_output, tok_reasoning, tok_embedding, cost_input, cost_output,"
    " cost_embedding, cost_external_api, cost_storage_compute, cost_total, baseline_cost,"
    " estimated, unpriced) VALUES "
    "('r1',1,1740787200000,'2025-03-01','chat','openai','acme','ann','gpt-4o','openai','ok',"
    "  1000,200,0,0,500,0,0, 2500000,5000000,0,0,0, 7500000,9000000, 0,0),"
    "('r2',1,1740787201000,'2025-03-01','chat','openai','acme','ann','gpt-4o-mini','openai','ok',"
    "  2000,0,0,0,300,0,0, 300000,180000,0,0,0, 480000,480000, 0,0),"
    "('r3',1,1740787202000,'2025-03-01','messages','anthropic','beta, inc','bob',"
    "  'claude-sonnet','anthropic','ok',"
    "  1500,0,100,50,400,0,0, 4500000,6000000,0,0,0, 10500000,12000000, 0,0),"
    "('r4',1,1740787203000,'2025-03-01','external','admin','acme','ann','','serpapi','ok',"
    "  0,0,0,0,0,0,0, 0,0,0,5000000,0, 5000000,5000000, 0,0),"
    "('r5',1,1740873600000,'2025-03-02','chat','openai','acme','ann','gpt-4o','openai',"
    "  'upstream_error', 0,0,0,0,0,0,0, 0,0,0,0,0, 0,0, 0,0),"
    "('r6',1,1740873601000,'2025-03-02','chat','openai','acme','cat','gpt-4o','openai','ok',"
    "  800,0,0,0,200,50,0, 2000000,2000000,0,0,0, 4000000,4000000, 1,0),"
    "('r7',1,1740873602000,'2025-03-02','embeddings','openai','beta, inc','bob','gpt-4o-mini',"
    "  'openai','ok', 0,0,0,0,0,0,10000, 0,0,200000,0,0, 200000,200000, 0,0),"
    "('r8',1,1740873603000,'2025-03-02','messages','anthropic','beta, inc','bob \"the\" builder',"
    "  'claude-sonnet','anthropic','ok',"
    "  3000,2000,0,0,1000,0,0, 3600000,15000000,0,0,0, 18600000,21000000, 0,0),"
    "('r9',1,1740873604000,'2025-03-02','external','admin','beta, inc','bob','','','ok',"
    "  0,0,0,0,0,0,0, 0,0,0,0,1000000, 1000000,1000000, 0,0),"
    "('r10',1,1740873605000,'2025-03-02','chat','openai','acme','cat','gpt-4o-mini','openai',"
    "  'client_disconnected', 100,0,0,0,0,0,0, 0,0,0,0,0, 0,0, 0,1);";

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("sql: %s", msg ? msg : "?");
    sqlite3_close(db);
}

static void remove_db(const char *path) {
    char side[80];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* A fresh empty file; callers add schema and rows. */
static int setup_empty(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->path, sizeof f->path, "/tmp/cg_test_report_XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    *state = f;
    return 0;
}

static int setup_full(void **state) {
    setup_empty(state);
    fixture *f = *state;
    exec_sql(f->path, "PRAGMA journal_mode=WAL;" CG_LEDGER_SCHEMA_SQL);
    exec_sql(f->path, INSERT_SQL);
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove_db(f->path);
    free(f->out);
    free(f);
    return 0;
}

static cg_report_opts opts(fixture *f, const char *by, cg_report_format fmt) {
    cg_report_opts o = {0};
    o.db_path = f->path;
    o.group_by = by;
    o.format = fmt;
    return o;
}

/* Runs the report into f->out; returns cg_report_run's result. */
static int run(fixture *f, const cg_report_opts *o) {
    free(f->out);
    f->out = NULL;
    f->out_len = 0;
    FILE *mem = open_memstream(&f->out, &f->out_len);
    assert_non_null(mem);
    int rc = cg_report_run(o, mem, f->err, sizeof f->err);
    fclose(mem);
    return rc;
}

static json_t *run_json(fixture *f, const cg_report_opts *o) {
    assert_int_equal(run(f, o), 0);
    json_error_t jerr;
    json_t *root = json_loads(f->out, 0, &jerr);
    if (!root)
        fail_msg("bad JSON (%s): %s", jerr.text, f->out);
    return root;
}

static long long jint(json_t *o, const char *path1, const char *path2) {
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    if (!json_is_integer(v))
        fail_msg("%s.%s is not an integer", path1, path2 ? path2 : "");
    return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *path1, const char *path2) {
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    if (!json_is_string(v))
        fail_msg("%s.%s is not a string", path1, path2 ? path2 : "");
    return json_string_value(v);
}

/* ---- JSON -------------------------------------------------------------- */

static void test_json_by_day_totals_and_shares(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, NULL, CG_REPORT_JSON); /* default: day */
    json_t *root = run_json(f, &o);

    json_t *by = json_object_get(root, "group_by");
    assert_int_equal(json_array_size(by), 1);
    assert_string_equal(json_string_value(json_array_get(by, 0)), "day");
    assert_true(json_is_null(json_object_get(json_object_get(root, "filters"), "since")));
    assert_int_equal(jint(root, "groups", NULL), 2);

    json_t *rows = json_object_get(root, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_t *d2 = json_array_get(rows, 0), *d1 = json_array_get(rows, 1);
    /* 2025-03-02 costs more (23800000 > 23480000): it comes first. */
    assert_string_equal(jstr(d2, "day", NULL), "2025-03-02");
    assert_string_equal(jstr(d1, "day", NULL), "2025-03-01");
    assert_int_equal(jint(d2, "cost_nano", "total"), 23800000);
    assert_int_equal(jint(d1, "cost_nano", "total"), 23480000);
    assert_int_equal(jint(d1, "requests", NULL), 3); /* r4 is external */
    assert_int_equal(jint(d2, "requests", NULL), 5); /* r9 is external */
    assert_int_equal(jint(d1, "cost_nano", "external_api"), 5000000);
    assert_int_equal(jint(d1, "cost_nano", "baseline"), 26480000);
    assert_int_equal(jint(d1, "cost_nano", "savings"), 3000000);
    assert_int_equal(jint(d1, "tokens", "cache_write"), 150);
    assert_int_equal(jint(d2, "estimated", NULL), 1);
    assert_int_equal(jint(d2, "unpriced", NULL), 1);
    assert_int_equal(jint(d2, "errors", NULL), 2);
    assert_int_equal(jint(d1, "errors", NULL), 0);
    assert_string_equal(jstr(d2, "cost_usd", "total"), "0.023800000");

    json_t *t = json_object_get(root, "total");
    assert_int_equal(jint(t, "requests", NULL), 8);
    assert_int_equal(jint(t, "tokens", "input"), 8400);
    assert_int_equal(jint(t, "tokens", "cached_read"), 2200);
    assert_int_equal(jint(t, "tokens", "cache_write"), 150);
    assert_int_equal(jint(t, "tokens", "output"), 2400);
    assert_int_equal(jint(t, "tokens", "reasoning"), 50);
    assert_int_equal(jint(t, "tokens", "embedding"), 10000);
    assert_int_equal(jint(t, "cost_nano", "input"), 12900000);
    assert_int_equal(jint(t, "cost_nano", "output"), 28180000);
    assert_int_equal(jint(t, "cost_nano", "embedding"), 200000);
    assert_int_equal(jint(t, "cost_nano", "external_api"), 5000000);
    assert_int_equal(jint(t, "cost_nano", "storage_compute"), 1000000);
    assert_int_equal(jint(t, "cost_nano", "total"), 47280000);
    assert_int_equal(jint(t, "cost_nano", "baseline"), 52680000);
    assert_int_equal(jint(t, "cost_nano", "savings"), 5400000);
    assert_string_equal(jstr(t, "cost_usd", "total"), "0.047280000");
    assert_string_equal(jstr(t, "cost_usd", "savings"), "0.005400000");
    assert_int_equal(jint(t, "estimated", NULL), 1);
    assert_int_equal(jint(t, "unpriced", NULL), 1);
    assert_int_equal(jint(t, "errors", NULL), 2);

    assert_int_equal(jint(root, "shares_bp", "input"), 2728);
    assert_int_equal(jint(root, "shares_bp", "output"), 5960);
    assert_int_equal(jint(root, "shares_bp", "embedding"), 42);
    assert_int_equal(jint(root, "shares_bp", "external_api"), 1058);
    assert_int_equal(jint(root, "shares_bp", "storage_compute"), 212);
    assert_int_equal(jint(root, "savings_bp", NULL), 1025);
    json_decref(root);
}

static void test_json_by_model_order_and_limit(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, "model", CG_REPORT_JSON);
    json_t *root = run_json(f, &o);
    json_t *rows = json_object_get(root, "rows");
    static const char *order[] = {"claude-sonnet", "gpt-4o", "", "gpt-4o-mini"};
    static const long long totals[] = {29100000, 11500000, 6000000, 680000};
    assert_int_equal(json_array_size(rows), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *r = json_array_get(rows, i);
        assert_string_equal(jstr(r, "model", NULL), order[i]);
        assert_int_equal(jint(r, "cost_nano", "total"), totals[i]);
    }
    json_decref(root);

    o.limit = 2;
    root = run_json(f, &o);
    rows = json_object_get(root, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(jstr(json_array_get(rows, 1), "model", NULL), "gpt-4o");
    assert_int_equal(jint(root, "groups", NULL), 4);
    assert_int_equal(jint(root, "limit", NULL), 2);
    /* TOTAL and shares still cover every group. */
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 47280000);
    assert_int_equal(jint(root, "shares_bp", "input"), 2728);
    json_decref(root);
}

static void test_json_multi_field_and_tie_order(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, " tenant , STATUS", CG_REPORT_JSON);
    json_t *root = run_json(f, &o);
    json_t *rows = json_object_get(root, "rows");
    json_t *by = json_object_get(root, "group_by");
    assert_string_equal(json_string_value(json_array_get(by, 1)), "status");
    /* beta/ok 30300000, acme/ok 16980000, then the two zero-cost acme
     * groups ordered by key: client_disconnected < upstream_error. */
    assert_int_equal(json_array_size(rows), 4);
    assert_string_equal(jstr(json_array_get(rows, 0), "tenant", NULL), "beta, inc");
    assert_int_equal(jint(json_array_get(rows, 0), "cost_nano", "total"), 30300000);
    assert_string_equal(jstr(json_array_get(rows, 1), "tenant", NULL), "acme");
    assert_int_equal(jint(json_array_get(rows, 1), "cost_nano", "total"), 16980000);
    assert_string_equal(jstr(json_array_get(rows, 2), "status", NULL), "client_disconnected");
    assert_string_equal(jstr(json_array_get(rows, 3), "status", NULL), "upstream_error");
    assert_int_equal(jint(json_array_get(rows, 3), "errors", NULL), 1);
    json_decref(root);
}

static void test_json_filters(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, "day", CG_REPORT_JSON);
    o.since = "2025-03-02";
    json_t *root = run_json(f, &o);
    assert_int_equal(json_array_size(json_object_get(root, "rows")), 1);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 23800000);
    assert_string_equal(jstr(root, "filters", "since"), "2025-03-02");
    json_decref(root);

    o.since = NULL;
    o.until = "2025-03-01";
    root = run_json(f, &o);
    assert_int_equal(json_array_size(json_object_get(root, "rows")), 1);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 23480000);
    json_decref(root);

    o.until = NULL;
    o.tenant = "beta, inc";
    root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 30300000);
    assert_int_equal(jint(json_object_get(root, "total"), "requests", NULL), 3);
    assert_string_equal(jstr(root, "filters", "tenant"), "beta, inc");
    json_decref(root);

    o.tenant = "acme";
    o.since = "2025-03-02";
    o.until = "2025-03-02";
    root = run_json(f, &o);
    json_t *t = json_object_get(root, "total");
    assert_int_equal(jint(t, "cost_nano", "total"), 4000000);
    assert_int_equal(jint(t, "requests", NULL), 3);
    assert_int_equal(jint(t, "errors", NULL), 2);
    assert_int_equal(jint(root, "shares_bp", "input"), 5000);
    assert_int_equal(jint(root, "shares_bp", "output"), 5000);
    json_decref(root);

    /* A quote in a filter is data, not SQL. */
    o.tenant = "x' OR '1'='1";
    o.since = o.until = NULL;
    root = run_json(f, &o);
    assert_int_equal(json_array_size(json_object_get(root, "rows")), 0);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 0);
    json_decref(root);
}

/* ---- CSV --------------------------------------------------------------- */

static void test_csv_quoting_and_values(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, "tenant", CG_REPORT_CSV);
    assert_int_equal(run(f, &o), 0);
    const char *expect =
        "row,tenant,requests,tok_input,tok_cached_read,tok_cache_write,tok_output,tok_reasoning,"
        "tok_embedding,cost_input_nano,cost_output_nano,cost_embedding_nano,"
        "cost_external_api_nano,cost_storage_compute_nano,cost_total_nano,baseline_nano,"
        "savings_nano,estimated,unpriced,errors,cost_input_usd,cost_output_usd,"
        "cost_embedding_usd,cost_external_api_usd,cost_storage_compute_usd,cost_total_usd,"
        "baseline_usd,savings_usd\r\n"
        "group,\"beta, inc\",3,4500,2000,150,1400,0,10000,8100000,21000000,200000,0,1000000,"
        "30300000,34200000,3900000,0,0,0,0.008100000,0.021000000,0.000200000,0.000000000,"
        "0.001000000,0.030300000,0.034200000,0.003900000\r\n"
        "group,acme,5,3900,200,0,1000,50,0,4800000,7180000,0,5000000,0,16980000,18480000,"
        "1500000,1,1,2,0.004800000,0.007180000,0.000000000,0.005000000,0.000000000,"
        "0.016980000,0.018480000,0.001500000\r\n"
        "total,,8,8400,2200,150,2400,50,10000,12900000,28180000,200000,5000000,1000000,"
        "47280000,52680000,5400000,1,1,2,0.012900000,0.028180000,0.000200000,0.005000000,"
        "0.001000000,0.047280000,0.052680000,0.005400000\r\n";
    assert_string_equal(f->out, expect);

    o.group_by = "user";
    o.tenant = "beta, inc";
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "\r\ngroup,\"bob \"\"the\"\" builder\",1,3000,"));
    assert_non_null(strstr(f->out, "\r\ngroup,bob,2,1500,"));
}

/* ---- table ------------------------------------------------------------- */

static void test_table(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, "day,model", CG_REPORT_TABLE);
    assert_int_equal(run(f, &o), 0);
    const char *s = f->out;
    assert_non_null(strstr(s, "by: day,model"));
    const char *hdr = strstr(s, "\nday ");
    assert_non_null(hdr);
    /* 2025-03-02/claude-sonnet (18600000) is the costliest group. */
    const char *first = strstr(hdr, "\n2025-03-02  claude-sonnet");
    const char *second = strstr(hdr, "\n2025-03-01  claude-sonnet");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_non_null(strstr(s, "(none)")); /* external rows have no model */
    const char *total = strstr(s, "\nTOTAL ");
    assert_non_null(total);
    assert_non_null(strstr(total, "$0.04728 "));
    assert_non_null(strstr(total, "$0.05268 "));
    assert_non_null(strstr(s, "$0.01860 ")); /* decimals line up per column */
    assert_non_null(strstr(s, "axis shares of total:  input 27.28%  output 59.60%  embedding 0.42%"
                              "  external_api 10.58%  storage_compute 2.12%\n"));
    assert_non_null(strstr(s, "savings vs baseline: $0.0054 (10.25% of baseline)\n"));

    /* Every data line of the table has the same width. */
    size_t width = 0;
    for (const char *p = hdr + 1; *p && *p != '\n';) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t w = (size_t)(nl - p);
        if (width == 0)
            width = w;
        else
            assert_int_equal(w, width);
        p = nl + 1;
        if (strncmp(p, "TOTAL", 5) == 0) {
            nl = strchr(p, '\n');
            assert_int_equal((size_t)(nl - p), width);
            break;
        }
    }

    o.limit = 1;
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "(showing 1 of 8 groups; TOTAL covers all)"));
}

static void test_table_odd_keys(void **state) {
    fixture *f = *state;
    exec_sql(f->path, "INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, tenant,"
                      " status, cost_input, cost_total, baseline_cost) VALUES"
                      " ('o1', 1, 0, '2025-03-01', 'chat', 'openai', 'caf\xc3\xa9\n\x1b[2J',"
                      " 'ok', 1, 1, 1);");
    cg_report_opts o = opts(f, "tenant", CG_REPORT_TABLE);
    assert_int_equal(run(f, &o), 0);
    /* No control character reaches the terminal; UTF-8 counts as one column. */
    assert_null(strchr(f->out, '\x1b'));
    const char *line = strstr(f->out, "\ncaf\xc3\xa9??[2J  ");
    assert_non_null(line);
    const char *acme = strstr(f->out, "\nacme ");
    assert_non_null(acme);
    assert_int_equal(strchr(line + 1, '\n') - line - 1, strchr(acme + 1, '\n') - acme - 1 + 1);
}

/* ---- empty and errors -------------------------------------------------- */

static void test_empty_ledger(void **state) {
    fixture *f = *state;
    /* The file exists but holds no table: an empty report. */
    cg_report_opts o = opts(f, "day", CG_REPORT_TABLE);
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "ledger is empty"));

    o.format = CG_REPORT_JSON;
    json_t *root = run_json(f, &o);
    assert_int_equal(json_array_size(json_object_get(root, "rows")), 0);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 0);
    assert_int_equal(jint(root, "shares_bp", "input"), 0);
    json_decref(root);

    /* Schema but no rows. */
    exec_sql(f->path, CG_LEDGER_SCHEMA_SQL);
    o.format = CG_REPORT_TABLE;
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "no ledger rows match"));

    o.format = CG_REPORT_CSV;
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "\r\ntotal,,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0.000000000,"));
}

static void test_errors(void **state) {
    fixture *f = *state;
    cg_report_opts o = opts(f, "day,foo", CG_REPORT_TABLE);
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "unknown group-by field 'foo'"));
    assert_int_equal(f->out_len, 0);

    o.group_by = "day,,tenant";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "empty group-by field"));

    o.group_by = "day,tenant,day";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "duplicate group-by field 'day'"));

    o.group_by = "day;DROP TABLE ledger";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "unknown group-by field"));

    o.group_by = "day";
    o.since = "2025-3-1";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "invalid since date '2025-3-1'"));
    o.since = NULL;
    o.until = "2025-13-01";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "invalid until date"));
    o.until = NULL;

    o.limit = -1;
    assert_int_equal(run(f, &o), -1);
    o.limit = 0;

    o.db_path = "/nonexistent/dir/ledger.db";
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "cannot open ledger /nonexistent/dir/ledger.db: "));

    /* The ledger still exists after the injection attempt above. */
    o.db_path = f->path;
    assert_int_equal(run(f, &o), 0);
    assert_non_null(strstr(f->out, "$0.04728"));

    cg_report_format fmt;
    assert_int_equal(cg_report_format_parse("csv", &fmt), 0);
    assert_int_equal(fmt, CG_REPORT_CSV);
    assert_int_equal(cg_report_format_parse("xml", &fmt), -1);
}

static void test_not_a_database(void **state) {
    fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("this is not a sqlite database, just some text padding it out..........\n", fp);
    fclose(fp);
    cg_report_opts o = opts(f, "day", CG_REPORT_JSON);
    assert_int_equal(run(f, &o), -1);
    assert_non_null(strstr(f->err, "not a database"));
}

/* A reader sees committed rows while a writer holds an open transaction. */
static void test_reads_while_writer_busy(void **state) {
    fixture *f = *state;
    sqlite3 *w = NULL;
    assert_int_equal(sqlite3_open(f->path, &w), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w,
                                  "BEGIN IMMEDIATE; INSERT INTO ledger (request_id, attempt,"
                                  " ts_ms, day, kind, api, status, cost_total, baseline_cost)"
                                  " VALUES ('w1', 1, 0, '2025-03-03', 'chat', 'openai', 'ok',"
                                  " 999, 999);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    cg_report_opts o = opts(f, "day", CG_REPORT_JSON);
    json_t *root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 47280000);
    json_decref(root);
    assert_int_equal(sqlite3_exec(w, "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
    root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 47280999);
    assert_string_equal(jstr(json_array_get(json_object_get(root, "rows"), 2), "day", NULL),
                        "2025-03-03");
    json_decref(root);
    sqlite3_close(w);
}

/* Gateway-shaped ids ("req_" + 12 hex digits of the creation time in ms):
 * a day range is read through the primary key from the day before since to
 * the day after until, so rows near a day's edges (an attempt made hours
 * later, ids made just before midnight) and rows of other id shapes
 * (ext_...) are all counted exactly by their day. */
static void test_day_range_by_id(void **state) {
    fixture *f = *state;
    exec_sql(f->path, "PRAGMA journal_mode=WAL;" CG_LEDGER_SCHEMA_SQL);
    /* 2025-03-01 00:00 UTC = 1740787200000 = 0x01954f00b000; 2025-03-04 =
     * 1741046400000 = 0x01955e73c400 */
    exec_sql(f->path,
             "INSERT INTO ledger (request_id, attempt, ts_ms, day, kind, api, status, cost_total)"
             " VALUES"
             " ('req_01954f00b005aaaaaaaaaaaa', 0, 1740787200005, '2025-03-01', 'chat', 'openai',"
             "  'ok', 1),"
             " ('req_01955e73c405bbbbbbbbbbbb', 0, 1741046400005, '2025-03-04', 'chat', 'openai',"
             "  'ok', 10),"
             /* created 12 h before its day's row (a late attempt): still 03-04 */
             " ('req_01955be09605cccccccccccc', 1, 1741046400100, '2025-03-04', 'chat', 'openai',"
             "  'ok', 100),"
             " ('ext_serp-2025-03', 0, 1741046400000, '2025-03-04', 'external', 'admin', 'ok',"
             "  1000),"
             " ('ext_serp-2025-02', 0, 1740787200000, '2025-03-01', 'external', 'admin', 'ok',"
             "  10000)");
    cg_report_opts o = opts(f, "day", CG_REPORT_JSON);
    o.since = o.until = "2025-03-04";
    json_t *root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 1110);
    assert_int_equal(jint(json_object_get(root, "total"), "requests", NULL),
                     2); /* external rows are not requests */
    json_decref(root);
    o.since = NULL;
    o.until = "2025-03-01";
    root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 10001);
    json_decref(root);
    o.since = "2025-03-02";
    o.until = NULL;
    root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 1110);
    json_decref(root);
    o.since = "1969-12-31"; /* a bound before the epoch clamps to 0 */
    o.until = "2025-03-03";
    root = run_json(f, &o);
    assert_int_equal(jint(json_object_get(root, "total"), "cost_nano", "total"), 10001);
    json_decref(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_by_day_totals_and_shares, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_day_range_by_id, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_json_by_model_order_and_limit, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_json_multi_field_and_tie_order, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_json_filters, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_csv_quoting_and_values, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_table, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_table_odd_keys, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_empty_ledger, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_reads_while_writer_busy, setup_full, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
