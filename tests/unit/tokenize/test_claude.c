/* test_claude: reproduces the Claude estimator's calibration and error.
 *
 * Owns: the figures stated in claude.h and docs/tokenize.md, recomputed
 * from the 809 real Claude 3 Haiku requests of
 * $CG_SHARED_DIR/data/routerarena/claude-3-haiku-20240307.jsonl
 * (token_usage.input_tokens against the question, sent as one user
 * message): the median and p95 ratios, the coverage of the budget bound
 * (must be >= 95%), and the error distribution of the estimate and of the
 * bound. Integer arithmetic only (ppm).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenize/claude.h"
#include "tokenize/tokenize.h"

#define N_ROWS 809

typedef struct row {
    int64_t y, t, est, upper;
    char *q;
} row;

static row rows[N_ROWS];
static size_t nrows;

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* q-quantile (q in per-mille) of sorted v: v[ceil(q n / 1000) - 1] */
static int64_t quant(const int64_t *v, size_t n, int q) {
    size_t k = ((size_t)q * n + 999) / 1000;
    return v[k ? k - 1 : 0];
}

static int setup(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR"), *shared = getenv("CG_SHARED_DIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/node_modules/gpt-tokenizer/data", src ? src : ".");
    cg_tok_set_data_dir(dir);
    snprintf(path, sizeof path, "%s/data/routerarena/claude-3-haiku-20240307.jsonl",
             shared ? shared : "../shared");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    const cg_tokenizer *t = cg_tok_get(CG_ENC_CL100K, NULL, 0);
    if (!t) {
        fclose(f);
        return -1;
    }
    static char line[1 << 20];
    while (nrows < N_ROWS && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *q = json_string_value(json_object_get(j, "question"));
        json_t *y = json_object_get(json_object_get(j, "token_usage"), "input_tokens");
        if (q && json_is_integer(y)) {
            row *r = &rows[nrows++];
            r->q = strdup(q);
            r->y = json_integer_value(y);
            r->t = cg_tok_count(t, q, strlen(q), 0);
            r->est = cg_claude_estimate_text(q, strlen(q), 0);
            r->upper = cg_claude_estimate_text(q, strlen(q), 1);
        }
        json_decref(j);
    }
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].q);
    return 0;
}

static void test_ratios_reproduced(void **state) {
    (void)state;
    assert_int_equal(nrows, N_ROWS);
    int64_t *r = malloc(nrows * sizeof *r);
    for (size_t i = 0; i < nrows; i++) {
        int64_t num = (rows[i].y - CG_CLAUDE_BASE_TOKENS) * 1000000;
        r[i] = (num + rows[i].t - 1) / rows[i].t; /* ceil, ppm */
    }
    qsort(r, nrows, sizeof *r, cmp64);
    fprintf(stderr,
            "ratio (input_tokens - %d) / cl100k: min %lld p5 %lld p50 %lld p95 %lld max %lld ppm\n",
            CG_CLAUDE_BASE_TOKENS, (long long)r[0], (long long)quant(r, nrows, 50),
            (long long)quant(r, nrows, 500), (long long)quant(r, nrows, 950),
            (long long)r[nrows - 1]);
    assert_int_equal(quant(r, nrows, 500), CG_CLAUDE_RATIO_P50_PPM);
    assert_int_equal(quant(r, nrows, 950), CG_CLAUDE_RATIO_P95_PPM);
    free(r);
}

static void test_error_distribution(void **state) {
    (void)state;
    int64_t *e = malloc(nrows * sizeof *e), *u = malloc(nrows * sizeof *u);
    size_t covered = 0;
    int64_t sum_y = 0, sum_est = 0, sum_up = 0, abs_err = 0;
    for (size_t i = 0; i < nrows; i++) {
        /* relative error of the estimate and the bound, ppm of the real count */
        e[i] = (rows[i].est - rows[i].y) * 1000000 / rows[i].y;
        u[i] = (rows[i].upper - rows[i].y) * 1000000 / rows[i].y;
        covered += rows[i].upper >= rows[i].y;
        sum_y += rows[i].y;
        sum_est += rows[i].est;
        sum_up += rows[i].upper;
        abs_err += rows[i].est > rows[i].y ? rows[i].est - rows[i].y : rows[i].y - rows[i].est;
    }
    qsort(e, nrows, sizeof *e, cmp64);
    qsort(u, nrows, sizeof *u, cmp64);
    fprintf(stderr,
            "estimate error (est - real) / real, ppm: min %lld p5 %lld p25 %lld p50 %lld p75 %lld "
            "p95 %lld max %lld\n",
            (long long)e[0], (long long)quant(e, nrows, 50), (long long)quant(e, nrows, 250),
            (long long)quant(e, nrows, 500), (long long)quant(e, nrows, 750),
            (long long)quant(e, nrows, 950), (long long)e[nrows - 1]);
    fprintf(stderr,
            "bound error (upper - real) / real, ppm: min %lld p5 %lld p50 %lld p95 %lld max %lld\n",
            (long long)u[0], (long long)quant(u, nrows, 50), (long long)quant(u, nrows, 500),
            (long long)quant(u, nrows, 950), (long long)u[nrows - 1]);
    fprintf(stderr,
            "coverage of the bound: %zu / %zu; totals: real %lld, estimate %lld, bound %lld; "
            "mean |error| %lld.%02lld tokens\n",
            covered, nrows, (long long)sum_y, (long long)sum_est, (long long)sum_up,
            (long long)(abs_err / (int64_t)nrows),
            (long long)(abs_err * 100 / (int64_t)nrows % 100));
    /* the documented figures */
    assert_true(covered * 100 >= nrows * 95);
    assert_int_equal(covered, 780);
    assert_int_equal(sum_y, 215844);
    assert_int_equal(sum_est, 215140);
    assert_int_equal(sum_up, 229040);
    assert_int_equal(quant(e, nrows, 50), -57391);
    assert_int_equal(quant(e, nrows, 500), 1176);
    assert_int_equal(quant(e, nrows, 950), 47008);
    assert_int_equal(e[0], -145514);
    assert_int_equal(e[nrows - 1], 85365);
    assert_int_equal(quant(u, nrows, 500), 65420);
    assert_int_equal(quant(u, nrows, 950), 113513);
    free(e);
    free(u);
}

static void test_body_matches_text(void **state) {
    (void)state;
    const cg_tokenizer *t = cg_tok_get(CG_ENC_CL100K, NULL, 0);
    for (size_t i = 0; i < nrows; i += 37) {
        json_t *body =
            json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model", "claude-3-haiku-20240307", "max_tokens",
                      100, "messages", "role", "user", "content", rows[i].q);
        cg_claude_count c;
        char err[256];
        assert_int_equal(cg_claude_count_messages(t, NULL, body, &c, err, sizeof err), 0);
        assert_int_equal(c.estimate, rows[i].est);
        assert_int_equal(c.upper, rows[i].upper);
        assert_int_equal(c.text_tokens, rows[i].t);
        json_decref(body);
    }
}

static void test_scale(void **state) {
    (void)state;
    assert_int_equal(cg_claude_scale(0, CG_CLAUDE_RATIO_P95_PPM), 0);
    assert_int_equal(cg_claude_scale(1000000, 1154606), 1154606);
    assert_int_equal(cg_claude_scale(1, 1000001), 2); /* ceil */
    assert_int_equal(cg_claude_scale(1000, 1000000), 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratios_reproduced),
        cmocka_unit_test(test_error_distribution),
        cmocka_unit_test(test_body_matches_text),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
