/* predict: prediction error of input tokens per model (see predict.h). */
#include "obs/predict.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 2000000 /* per model, kept in memory for the percentiles */

typedef struct series {
    char model[128];
    int64_t *bp; /* signed error, basis points of the actual */
    size_t n, cap;
    int64_t pred_sum, actual_sum;
    size_t exact;
} series;

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, size_t n, int p) {
    if (!n)
        return 0;
    size_t i = (size_t)(((uint64_t)n * (uint64_t)p + 99) / 100);
    return v[i ? i - 1 : 0];
}

static void fmt_bp(int64_t bp, char *out, size_t cap) {
    int64_t a = bp < 0 ? -bp : bp;
    snprintf(out, cap, "%s%lld.%02lld%%", bp < 0 ? "-" : "+", (long long)(a / 100),
             (long long)(a % 100));
}

int cg_report_predictions(const char *db_path, int json, FILE *out, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    series *s = NULL;
    size_t ns = 0;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger %s: %s", db_path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT model_served, tok_input_predicted,"
                           " tok_input + tok_cached_read + tok_cache_write_5m + tok_cache_write_1h"
                           " + tok_embedding FROM ledger WHERE kind != 'external' AND estimated = 0"
                           " AND tok_input_predicted > 0 AND status IN ('ok','client_disconnected')"
                           " AND cache NOT IN ('exact', 'semantic')" /* a hit made no call */
                           " ORDER BY model_served",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read ledger %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        int64_t pred = sqlite3_column_int64(st, 1), act = sqlite3_column_int64(st, 2);
        if (!m || act <= 0)
            continue;
        if (!ns || strcmp(s[ns - 1].model, m) != 0) {
            series *ns2 = realloc(s, (ns + 1) * sizeof *s);
            if (!ns2) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            s = ns2;
            memset(&s[ns], 0, sizeof s[ns]);
            snprintf(s[ns].model, sizeof s[ns].model, "%s", m);
            ns++;
        }
        series *x = &s[ns - 1];
        if (x->n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 256;
            int64_t *nb = cap <= MAX_ROWS ? realloc(x->bp, cap * sizeof *nb) : NULL;
            if (!nb)
                continue; /* beyond the cap, the sums still count */
            x->bp = nb;
            x->cap = cap;
        }
        x->bp[x->n++] = (pred - act) * 10000 / act;
        x->pred_sum += pred;
        x->actual_sum += act;
        x->exact += pred == act;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        fprintf(out, "%-32s %8s %12s %12s %9s %9s %9s %9s %9s\n", "MODEL", "CALLS", "PREDICTED",
                "ACTUAL", "EXACT", "MEDIAN", "P95 |ERR|", "WORST-", "WORST+");
    for (size_t i = 0; i < ns; i++) {
        series *x = &s[i];
        qsort(x->bp, x->n, sizeof *x->bp, cmp64);
        int64_t *absv = malloc((x->n ? x->n : 1) * sizeof *absv);
        if (!absv) {
            snprintf(err, errlen, "out of memory");
            json_decref(arr);
            goto out;
        }
        for (size_t k = 0; k < x->n; k++)
            absv[k] = x->bp[k] < 0 ? -x->bp[k] : x->bp[k];
        qsort(absv, x->n, sizeof *absv, cmp64);
        int64_t med = pct(x->bp, x->n, 50), p95 = pct(absv, x->n, 95);
        int64_t lo = x->n ? x->bp[0] : 0, hi = x->n ? x->bp[x->n - 1] : 0;
        int64_t exact_bp = x->n ? (int64_t)(x->exact * 10000 / x->n) : 0;
        free(absv);
        if (json) {
            json_array_append_new(
                arr, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "model", x->model, "calls",
                               (json_int_t)x->n, "predicted_tokens", (json_int_t)x->pred_sum,
                               "actual_tokens", (json_int_t)x->actual_sum, "exact_bp",
                               (json_int_t)exact_bp, "median_error_bp", (json_int_t)med,
                               "p95_abs_error_bp", (json_int_t)p95, "worst_under_bp",
                               (json_int_t)lo, "worst_over_bp", (json_int_t)hi));
        } else {
            char a[32], b[32], c[32], d[32], e[32];
            fmt_bp(exact_bp, a, sizeof a);
            fmt_bp(med, b, sizeof b);
            fmt_bp(p95, c, sizeof c);
            fmt_bp(lo, d, sizeof d);
            fmt_bp(hi, e, sizeof e);
            fprintf(out, "%-32s %8zu %12lld %12lld %9s %9s %9s %9s %9s\n", x->model, x->n,
                    (long long)x->pred_sum, (long long)x->actual_sum, a + 1, b, c + 1, d, e);
        }
    }
    if (json) {
        char *txt = json_dumps(arr, JSON_INDENT(2));
        json_decref(arr);
        if (txt)
            fprintf(out, "%s\n", txt);
        free(txt);
    } else {
        fputs("\nerror = (predicted - actual) / actual of all input tokens; predictions are made "
              "before the call\n(exact for OpenAI models, the calibrated estimate for Claude).\n",
              out);
    }
    rc = 0;
out:
    for (size_t i = 0; i < ns; i++)
        free(s[i].bp);
    free(s);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
