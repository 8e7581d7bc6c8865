/* tiers: the tier mix, savings, escalations and ratings (see tiers.h). */
#include "obs/tiers.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "core/money.h"

#define TIERS_MAX 64

typedef struct tier_row {
    char tier[32];
    int64_t answers, cost, baseline, escalated, escalation_cost, up, down;
} tier_row;

static tier_row *find(tier_row *t, size_t *n, const char *name) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].tier, name) == 0)
            return &t[i];
    if (*n == TIERS_MAX)
        return NULL;
    tier_row *r = &t[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->tier, sizeof r->tier, "%s", name);
    return r;
}

static int has_table(sqlite3 *db, const char *name) {
    sqlite3_stmt *st = NULL;
    int yes = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        yes = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return yes;
}

/* Answers: each routed request's last attempt. */
static const char *const Q_ANSWERS_FB =
    "SELECT l.tier, COUNT(*), SUM(l.cost_total), SUM(l.baseline_cost),"
    " SUM(COALESCE(f.up, 0)), SUM(COALESCE(f.down, 0))"
    " FROM ledger l JOIN (SELECT request_id, MAX(attempt) a FROM ledger GROUP BY request_id) m"
    " ON l.request_id = m.request_id AND l.attempt = m.a"
    " LEFT JOIN (SELECT request_id, SUM(rating > 0) up, SUM(rating < 0) down FROM feedback"
    " GROUP BY request_id) f ON f.request_id = l.request_id"
    " WHERE l.tier != '' GROUP BY l.tier";
static const char *const Q_ANSWERS =
    "SELECT l.tier, COUNT(*), SUM(l.cost_total), SUM(l.baseline_cost), 0, 0"
    " FROM ledger l JOIN (SELECT request_id, MAX(attempt) a FROM ledger GROUP BY request_id) m"
    " ON l.request_id = m.request_id AND l.attempt = m.a"
    " WHERE l.tier != '' GROUP BY l.tier";
static const char *const Q_ESCALATED = "SELECT tier, COUNT(*), SUM(cost_total) FROM ledger"
                                       " WHERE status = 'escalated' AND tier != '' GROUP BY tier";

static void usd(int64_t nano, char *buf, size_t cap) {
    cg_money_fmt(nano, buf, cap);
}

/* Thumbs-up share of rated answers in basis points, -1 when none were rated. */
static int64_t up_bp(const tier_row *t) {
    int64_t rated = t->up + t->down;
    return rated ? (t->up * 10000 + rated / 2) / rated : -1;
}

static void print_table(const tier_row *t, size_t n, int64_t total, FILE *out) {
    fprintf(out, "%-12s %8s %7s %14s %14s %14s %9s %14s %5s %5s %7s\n", "tier", "answers", "share",
            "cost_usd", "baseline_usd", "saved_usd", "escalated", "escal_cost", "up", "down",
            "up_rate");
    for (size_t i = 0; i < n; i++) {
        char c[40], b[40], s[40], e[40], share[48], rate[48];
        usd(t[i].cost, c, sizeof c);
        usd(t[i].baseline, b, sizeof b);
        usd(t[i].baseline - t[i].cost, s, sizeof s);
        usd(t[i].escalation_cost, e, sizeof e);
        int64_t bp = total ? (t[i].answers * 10000 + total / 2) / total : 0;
        snprintf(share, sizeof share, "%lld.%02lld%%", (long long)(bp / 100),
                 (long long)(bp % 100));
        int64_t r = up_bp(&t[i]);
        if (r < 0)
            snprintf(rate, sizeof rate, "-");
        else
            snprintf(rate, sizeof rate, "%lld.%02lld%%", (long long)(r / 100),
                     (long long)(r % 100));
        fprintf(out, "%-12s %8lld %7s %14s %14s %14s %9lld %14s %5lld %5lld %7s\n", t[i].tier,
                (long long)t[i].answers, share, c, b, s, (long long)t[i].escalated, e,
                (long long)t[i].up, (long long)t[i].down, rate);
    }
}

static int print_json(const tier_row *t, size_t n, FILE *out) {
    json_t *arr = json_array();
    if (!arr)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t r = up_bp(&t[i]);
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tier", t[i].tier,
                              "answers", (json_int_t)t[i].answers, "cost_nano",
                              (json_int_t)t[i].cost, "baseline_nano", (json_int_t)t[i].baseline,
                              "escalated", (json_int_t)t[i].escalated, "escalation_cost_nano",
                              (json_int_t)t[i].escalation_cost, "thumbs_up", (json_int_t)t[i].up,
                              "thumbs_down", (json_int_t)t[i].down, "up_rate_bp", (json_int_t)r);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return -1;
        }
    }
    int rc = json_dumpf(arr, out, JSON_INDENT(2)) == 0 ? 0 : -1;
    fputc('\n', out);
    json_decref(arr);
    return rc;
}

int cg_report_tiers(const char *db_path, int json, FILE *out, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    tier_row t[TIERS_MAX];
    size_t n = 0;
    int64_t total = 0;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger %s: %s", db_path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    if (!has_table(db, "ledger")) {
        rc = json ? print_json(t, 0, out) : (print_table(t, 0, 0, out), 0);
        goto out;
    }
    if (sqlite3_prepare_v2(db, has_table(db, "feedback") ? Q_ANSWERS_FB : Q_ANSWERS, -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read ledger %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *nm = (const char *)sqlite3_column_text(st, 0);
        tier_row *r = nm ? find(t, &n, nm) : NULL;
        if (!r)
            continue;
        r->answers = sqlite3_column_int64(st, 1);
        r->cost = sqlite3_column_int64(st, 2);
        r->baseline = sqlite3_column_int64(st, 3);
        r->up = sqlite3_column_int64(st, 4);
        r->down = sqlite3_column_int64(st, 5);
        total += r->answers;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, Q_ESCALATED, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read ledger %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *nm = (const char *)sqlite3_column_text(st, 0);
        tier_row *r = nm ? find(t, &n, nm) : NULL;
        if (!r)
            continue;
        r->escalated = sqlite3_column_int64(st, 1);
        r->escalation_cost = sqlite3_column_int64(st, 2);
    }
    if (json)
        rc = print_json(t, n, out);
    else {
        print_table(t, n, total, out);
        rc = 0;
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
