/* report: the `costgate report` engine (see report.h). */
#include "obs/report.h"

#include "core/buf.h"
#include "core/money.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_FIELDS 12
#define MAX_GROUP_BY_LEN 256
#define MAX_SQL_LEN 4096
#define MAX_KEY_BYTES ((size_t)64 << 20) /* all group-key text kept in memory */
#define BUSY_TIMEOUT_MS 5000

/* ---- group-by whitelist ---------------------------------------------- */

typedef struct field {
    const char *name;   /* as given by the user and printed in reports */
    const char *column; /* ledger column; a constant, never user text */
} field;

static const field FIELDS[MAX_FIELDS] = {
    {"day", "day"},
    {"tenant", "tenant"},
    {"user", "user"},
    {"segment", "segment"},
    {"feature", "feature"},
    {"intent", "intent"},
    {"model", "model_served"},
    {"provider", "provider"},
    {"key", "key_name"},
    {"status", "status"},
    {"requested", "model_requested"},
    {"action", "note"}, /* budget / SLO actions: downgrade, dry-run, fallback */
};
#define FIELD_NAMES                                                                                \
    "day,tenant,user,segment,feature,intent,model,provider,key,status,requested,action"

/* ---- metrics ----------------------------------------------------------- */

enum {
    M_REQUESTS,
    M_TOK_INPUT,
    M_TOK_CACHED_READ,
    M_TOK_CACHE_WRITE,
    M_TOK_OUTPUT,
    M_TOK_REASONING,
    M_TOK_EMBEDDING,
    M_COST_INPUT,
    M_COST_OUTPUT,
    M_COST_EMBEDDING,
    M_COST_EXTERNAL,
    M_COST_STORAGE,
    M_COST_TOTAL,
    M_BASELINE,
    M_SAVINGS, /* derived: baseline - total */
    M_ESTIMATED,
    M_UNPRICED,
    M_ERRORS,
    M_COUNT
};

typedef enum { K_COUNT, K_TOKENS, K_COST } metric_kind;

typedef struct metric {
    const char *sql; /* aggregate expression; NULL for derived metrics */
    metric_kind kind;
    const char *json; /* key inside "tokens" / "cost_nano" / the row object */
    const char *csv;  /* CSV column (cost columns get _nano and _usd) */
    const char *hdr;  /* table header */
} metric;

static const metric METRICS[M_COUNT] = {
    [M_REQUESTS] = {"SUM(kind <> 'external')", K_COUNT, "requests", "requests", "requests"},
    [M_TOK_INPUT] = {"SUM(tok_input)", K_TOKENS, "input", "tok_input", "in_tok"},
    [M_TOK_CACHED_READ] = {"SUM(tok_cached_read)", K_TOKENS, "cached_read", "tok_cached_read",
                           "cached_tok"},
    [M_TOK_CACHE_WRITE] = {"SUM(tok_cache_write_5m + tok_cache_write_1h)", K_TOKENS, "cache_write",
                           "tok_cache_write", "cwrite_tok"},
    [M_TOK_OUTPUT] = {"SUM(tok_output)", K_TOKENS, "output", "tok_output", "out_tok"},
    [M_TOK_REASONING] = {"SUM(tok_reasoning)", K_TOKENS, "reasoning", "tok_reasoning",
                         "reason_tok"},
    [M_TOK_EMBEDDING] = {"SUM(tok_embedding)", K_TOKENS, "embedding", "tok_embedding", "embed_tok"},
    [M_COST_INPUT] = {"SUM(cost_input)", K_COST, "input", "cost_input", "input"},
    [M_COST_OUTPUT] = {"SUM(cost_output)", K_COST, "output", "cost_output", "output"},
    [M_COST_EMBEDDING] = {"SUM(cost_embedding)", K_COST, "embedding", "cost_embedding",
                          "embedding"},
    [M_COST_EXTERNAL] = {"SUM(cost_external_api)", K_COST, "external_api", "cost_external_api",
                         "external_api"},
    [M_COST_STORAGE] = {"SUM(cost_storage_compute)", K_COST, "storage_compute",
                        "cost_storage_compute", "storage"},
    [M_COST_TOTAL] = {"SUM(cost_total)", K_COST, "total", "cost_total", "total"},
    [M_BASELINE] = {"SUM(baseline_cost)", K_COST, "baseline", "baseline", "baseline"},
    [M_SAVINGS] = {NULL, K_COST, "savings", "savings", "savings"},
    [M_ESTIMATED] = {"SUM(estimated <> 0)", K_COUNT, "estimated", "estimated", "est"},
    [M_UNPRICED] = {"SUM(unpriced <> 0)", K_COUNT, "unpriced", "unpriced", "unpriced"},
    [M_ERRORS] = {"SUM(status <> 'ok')", K_COUNT, "errors", "errors", "errors"},
};

/* The five axes whose shares of the grand total are reported. */
static const int AXES[5] = {M_COST_INPUT, M_COST_OUTPUT, M_COST_EMBEDDING, M_COST_EXTERNAL,
                            M_COST_STORAGE};

/* ---- report state ------------------------------------------------------ */

typedef struct row {
    char *keys[MAX_FIELDS];
    int64_t m[M_COUNT];
} row;

typedef struct report {
    const cg_report_opts *o;
    int nfields;
    const field *fields[MAX_FIELDS];
    int have_table; /* 0: the file has no ledger table (empty report) */
    row *rows;      /* the groups shown (at most limit) */
    size_t nrows, rows_cap;
    size_t ngroups; /* all groups, shown or not */
    size_t key_bytes;
    int64_t total[M_COUNT];
} report;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int cg_report_format_parse(const char *s, cg_report_format *out) {
    if (!s)
        return -1;
    if (strcmp(s, "table") == 0)
        *out = CG_REPORT_TABLE;
    else if (strcmp(s, "json") == 0)
        *out = CG_REPORT_JSON;
    else if (strcmp(s, "csv") == 0)
        *out = CG_REPORT_CSV;
    else
        return -1;
    return 0;
}

/* ---- option validation ------------------------------------------------- */

static int parse_group_by(report *r, const char *spec, char *err, size_t errlen) {
    if (!spec || !*spec)
        spec = "day";
    size_t n = strlen(spec);
    if (n >= MAX_GROUP_BY_LEN) {
        set_err(err, errlen, "group-by list too long");
        return -1;
    }
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0) {
            set_err(err, errlen, "empty group-by field in '%s'", spec);
            return -1;
        }
        const field *f = NULL;
        for (int i = 0; i < MAX_FIELDS; i++) {
            if (strlen(FIELDS[i].name) == len && strncasecmp(FIELDS[i].name, p, len) == 0) {
                f = &FIELDS[i];
                break;
            }
        }
        if (!f) {
            set_err(err, errlen, "unknown group-by field '%.*s' (known: %s)", (int)len, p,
                    FIELD_NAMES);
            return -1;
        }
        for (int i = 0; i < r->nfields; i++) {
            if (r->fields[i] == f) {
                set_err(err, errlen, "duplicate group-by field '%s'", f->name);
                return -1;
            }
        }
        r->fields[r->nfields++] = f; /* at most MAX_FIELDS distinct fields */
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int valid_day(const char *s) {
    static const char shape[] = "dddd-dd-dd";
    if (strlen(s) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        int digit = s[i] >= '0' && s[i] <= '9';
        if (shape[i] == 'd' ? !digit : s[i] != '-')
            return 0;
    }
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    int day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* Days since 1970-01-01 of a valid YYYY-MM-DD (H. Hinnant's
 * days_from_civil). */
static int64_t day_number(const char *s) {
    int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int64_t m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The request id a gateway would have made at unix ms t: "req_" and 12 hex
 * digits of t (cg_worker_new_id), as a bound (t clamped to 0..2^48-1). */
static void id_bound(int64_t t, char out[20]) {
    static const char hx[] = "0123456789abcdef";
    uint64_t v = t < 0 ? 0 : (uint64_t)t > 0xffffffffffffull ? 0xffffffffffffull : (uint64_t)t;
    memcpy(out, "req_", 4);
    for (int i = 0; i < 12; i++)
        out[4 + i] = hx[(v >> (44 - 4 * i)) & 15];
    out[16] = '\0';
}

/* ---- arithmetic -------------------------------------------------------- */

/* x as basis points of total, rounded half away from zero; 0 if total <= 0. */
static int64_t share_bp(int64_t x, int64_t total) {
    if (total <= 0)
        return 0;
    __int128 n = (__int128)x * 10000;
    __int128 t = total;
    if (n >= 0)
        return (int64_t)((n + t / 2) / t);
    return -(int64_t)((-n + t / 2) / t);
}

static char *fmt_bp(int64_t bp, char *buf, size_t len) {
    uint64_t a = bp < 0 ? (uint64_t)(-(bp + 1)) + 1 : (uint64_t)bp;
    snprintf(buf, len, "%s%llu.%02llu%%", bp < 0 ? "-" : "", (unsigned long long)(a / 100),
             (unsigned long long)(a % 100));
    return buf;
}

/* "$1.50", "$0.001234", "-$0.000000001": exact; trailing zeros trimmed down
 * to min_dec decimals (2..9). */
static char *fmt_usd_human(int64_t nano, int min_dec, char *buf, size_t len) {
    char tmp[40];
    cg_money_fmt(nano, tmp, sizeof tmp);
    size_t n = strlen(tmp);
    const char *dot = strchr(tmp, '.');
    size_t min_len = dot ? (size_t)(dot - tmp) + 1 + (size_t)min_dec : n;
    while (n > min_len && tmp[n - 1] == '0')
        n--;
    tmp[n] = '\0';
    if (tmp[0] == '-')
        snprintf(buf, len, "-$%s", tmp + 1);
    else
        snprintf(buf, len, "$%s", tmp);
    return buf;
}

/* Decimals fmt_usd_human(nano, 2, ...) prints. */
static int usd_decimals(int64_t nano) {
    int dec = 9;
    uint64_t a = nano < 0 ? (uint64_t)(-(nano + 1)) + 1 : (uint64_t)nano;
    a %= (uint64_t)CG_NANO_PER_USD;
    while (dec > 2 && a % 10 == 0) {
        a /= 10;
        dec--;
    }
    return dec;
}

/* ---- query ------------------------------------------------------------- */

static int build_sql(const report *r, cg_buf *sql) {
    int rc = 0;
    rc |= cg_buf_puts(sql, "SELECT ");
    for (int i = 0; i < r->nfields; i++)
        rc |= cg_buf_printf(sql, "\"%s\", ", r->fields[i]->column);
    int first = 1;
    for (int m = 0; m < M_COUNT; m++) {
        if (!METRICS[m].sql)
            continue;
        rc |= cg_buf_printf(sql, "%s%s", first ? "" : ", ", METRICS[m].sql);
        first = 0;
    }
    rc |= cg_buf_puts(sql, " FROM ledger WHERE 1");
    /* a day range reads only its part of the primary key: gateway ids start
     * with their creation time (cg_worker_new_id), so the rows of days
     * since..until have ids between those of the day before since and the
     * day after until (a day's margin either side for attempts and clock
     * steps); ids of any other form (ext_ rows of POST /admin/costs) sort
     * below 'req_' or from 'req`' on and are read whole. The day test below
     * stays exact. */
    if (r->o->since || r->o->until)
        rc |= cg_buf_puts(sql, " AND (request_id < 'req_' OR request_id >= 'req`' OR"
                               " (request_id >= ? AND request_id < ?))");
    if (r->o->since)
        rc |= cg_buf_puts(sql, " AND day >= ?");
    if (r->o->until)
        rc |= cg_buf_puts(sql, " AND day <= ?");
    if (r->o->tenant)
        rc |= cg_buf_puts(sql, " AND tenant = ?");
    rc |= cg_buf_puts(sql, " GROUP BY ");
    for (int i = 0; i < r->nfields; i++)
        rc |= cg_buf_printf(sql, "%s\"%s\"", i ? ", " : "", r->fields[i]->column);
    rc |= cg_buf_puts(sql, " ORDER BY SUM(cost_total) DESC");
    for (int i = 0; i < r->nfields; i++)
        rc |= cg_buf_printf(sql, ", \"%s\"", r->fields[i]->column);
    return rc ? -1 : 0;
}

static int bind_filters(const report *r, sqlite3_stmt *st) {
    int idx = 1, rc = SQLITE_OK;
    if ((r->o->since || r->o->until) && rc == SQLITE_OK) {
        char lo[20], hi[20];
        const int64_t DAY_MS = 86400000;
        if (r->o->since)
            id_bound((day_number(r->o->since) - 1) * DAY_MS, lo);
        else
            snprintf(lo, sizeof lo, "req_");
        if (r->o->until)
            id_bound((day_number(r->o->until) + 2) * DAY_MS, hi);
        else
            snprintf(hi, sizeof hi, "req`");
        rc = sqlite3_bind_text(st, idx++, lo, -1, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, idx++, hi, -1, SQLITE_TRANSIENT);
    }
    if (r->o->since && rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, idx++, r->o->since, -1, SQLITE_TRANSIENT);
    if (r->o->until && rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, idx++, r->o->until, -1, SQLITE_TRANSIENT);
    if (r->o->tenant && rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, idx++, r->o->tenant, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : -1;
}

static void row_free(row *w) {
    for (int i = 0; i < MAX_FIELDS; i++) {
        free(w->keys[i]);
        w->keys[i] = NULL;
    }
}

/* Reads one result row into w (keys copied only when keep != 0) and adds it
 * to the totals. */
static int read_row(report *r, sqlite3_stmt *st, row *w, int keep, char *err, size_t errlen) {
    int ret = -1;
    int col = r->nfields;
    for (int m = 0; m < M_COUNT; m++) {
        if (!METRICS[m].sql)
            continue;
        int t = sqlite3_column_type(st, col);
        if (t != SQLITE_INTEGER && t != SQLITE_NULL) {
            set_err(err, errlen, "ledger holds a non-integer value in %s", METRICS[m].sql);
            goto out;
        }
        w->m[m] = sqlite3_column_int64(st, col++);
    }
    if (__builtin_sub_overflow(w->m[M_BASELINE], w->m[M_COST_TOTAL], &w->m[M_SAVINGS])) {
        set_err(err, errlen, "savings overflow");
        goto out;
    }
    for (int m = 0; m < M_COUNT; m++) {
        if (__builtin_add_overflow(r->total[m], w->m[m], &r->total[m])) {
            set_err(err, errlen, "total of %s overflows", METRICS[m].json);
            goto out;
        }
    }
    if (keep) {
        for (int i = 0; i < r->nfields; i++) {
            const char *k = (const char *)sqlite3_column_text(st, i);
            size_t n = k ? (size_t)sqlite3_column_bytes(st, i) : 0;
            if (n > MAX_KEY_BYTES - r->key_bytes) {
                set_err(err, errlen, "group keys too large; use --limit or fewer fields");
                goto out;
            }
            w->keys[i] = malloc(n + 1);
            if (!w->keys[i]) {
                set_err(err, errlen, "out of memory");
                goto out;
            }
            if (n)
                memcpy(w->keys[i], k, n);
            w->keys[i][n] = '\0';
            r->key_bytes += n;
        }
    }
    ret = 0;
out:
    return ret;
}

static int push_row(report *r, row *w, char *err, size_t errlen) {
    if (r->nrows == r->rows_cap) {
        size_t ncap = r->rows_cap ? r->rows_cap * 2 : 64;
        row *p = realloc(r->rows, ncap * sizeof *p);
        if (!p) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        r->rows = p;
        r->rows_cap = ncap;
    }
    r->rows[r->nrows++] = *w;
    memset(w, 0, sizeof *w);
    return 0;
}

static int has_ledger_table(sqlite3 *db, const char *path, int *has, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger'",
                           -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot read ledger %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        set_err(err, errlen, "cannot read ledger %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    *has = rc == SQLITE_ROW;
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

static int load(report *r, char *err, size_t errlen) {
    const char *path = r->o->db_path;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cg_buf sql;
    row w;
    int ret = -1;
    size_t keep_max = CG_REPORT_MAX_GROUPS;
    if (r->o->limit > 0 && (size_t)r->o->limit < keep_max)
        keep_max = (size_t)r->o->limit;
    cg_buf_init(&sql, MAX_SQL_LEN);
    memset(&w, 0, sizeof w);

    struct stat sb;
    if (stat(path, &sb) != 0) {
        set_err(err, errlen, "cannot open ledger %s: %s", path, strerror(errno));
        goto out;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot open ledger %s: %s", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (has_ledger_table(db, path, &r->have_table, err, errlen) != 0)
        goto out;
    if (!r->have_table) {
        ret = 0;
        goto out;
    }
    if (build_sql(r, &sql) != 0) {
        set_err(err, errlen, "report query too long");
        goto out;
    }
    if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "cannot query ledger %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (bind_filters(r, st) != 0) {
        set_err(err, errlen, "cannot bind report filters: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            set_err(err, errlen, "cannot query ledger %s: %s", path, sqlite3_errmsg(db));
            goto out;
        }
        int keep = r->nrows < keep_max;
        if (!keep && (r->o->limit <= 0 || r->nrows < (size_t)r->o->limit)) {
            set_err(err, errlen, "more than %d groups; use --limit or fewer group-by fields",
                    CG_REPORT_MAX_GROUPS);
            goto out;
        }
        if (read_row(r, st, &w, keep, err, errlen) != 0)
            goto out;
        r->ngroups++;
        if (keep && push_row(r, &w, err, errlen) != 0)
            goto out;
    }
    ret = 0;
out:
    row_free(&w);
    sqlite3_finalize(st);
    sqlite3_close(db);
    cg_buf_free(&sql);
    return ret;
}

/* ---- table ------------------------------------------------------------- */

#define CELL 48

/* Column layout of a table: widths and, per cost column, the decimals shown
 * (the most any of its values needs, so decimal points line up). */
typedef struct layout {
    size_t w[MAX_FIELDS + M_COUNT];
    int dec[M_COUNT];
} layout;

/* Text of metric m of a row as shown in the table. */
static void table_cell(const layout *l, int m, const int64_t *v, char *buf) {
    if (METRICS[m].kind == K_COST)
        fmt_usd_human(v[m], l->dec[m], buf, CELL);
    else
        snprintf(buf, CELL, "%lld", (long long)v[m]);
}

static const char *table_key(const char *k) {
    return *k ? k : "(none)";
}

/* Terminal columns k takes: UTF-8 code points (continuation bytes skipped). */
static size_t key_width(const char *k) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Prints k left-aligned in width columns, control characters as '?' so a
 * key can never move the cursor or break a line. */
static void put_key(FILE *out, const char *k, size_t width) {
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
    for (size_t n = key_width(k); n < width; n++)
        fputc(' ', out);
    fputs("  ", out);
}

static void table_line(FILE *out, const report *r, const layout *l) {
    size_t n = 0;
    for (int i = 0; i < r->nfields; i++)
        n += l->w[i] + 2;
    for (int m = 0; m < M_COUNT; m++)
        n += l->w[MAX_FIELDS + m] + 2;
    for (size_t i = 0; i + 2 < n; i++)
        fputc('-', out);
    fputc('\n', out);
}

/* One table line; keys == NULL prints the TOTAL line. */
static void table_values(FILE *out, const report *r, const layout *l, char *const *keys,
                         const int64_t *v) {
    char cell[CELL];
    for (int i = 0; i < r->nfields; i++) {
        put_key(out, keys ? table_key(keys[i]) : i == 0 ? "TOTAL" : "", l->w[i]);
    }
    for (int m = 0; m < M_COUNT; m++) {
        table_cell(l, m, v, cell);
        fprintf(out, "%*s%s", (int)l->w[MAX_FIELDS + m], cell, m + 1 < M_COUNT ? "  " : "\n");
    }
}

static void table_filters(FILE *out, const report *r) {
    fprintf(out, "costgate report  ledger: %s  by: ", r->o->db_path);
    for (int i = 0; i < r->nfields; i++)
        fprintf(out, "%s%s", i ? "," : "", r->fields[i]->name);
    if (r->o->since)
        fprintf(out, "  since: %s", r->o->since);
    if (r->o->until)
        fprintf(out, "  until: %s", r->o->until);
    if (r->o->tenant)
        fprintf(out, "  tenant: %s", r->o->tenant);
    fputc('\n', out);
}

static void table_layout(const report *r, layout *l) {
    char cell[CELL];
    for (int i = 0; i < r->nfields; i++) {
        l->w[i] = strlen(r->fields[i]->name);
        for (size_t k = 0; k < r->nrows; k++) {
            size_t n = key_width(table_key(r->rows[k].keys[i]));
            if (n > l->w[i])
                l->w[i] = n;
        }
    }
    if (l->w[0] < 5)
        l->w[0] = 5; /* "TOTAL" */
    for (int m = 0; m < M_COUNT; m++) {
        l->dec[m] = usd_decimals(r->total[m]);
        for (size_t k = 0; k < r->nrows; k++)
            if (usd_decimals(r->rows[k].m[m]) > l->dec[m])
                l->dec[m] = usd_decimals(r->rows[k].m[m]);
    }
    for (int m = 0; m < M_COUNT; m++) {
        size_t *wm = &l->w[MAX_FIELDS + m];
        *wm = strlen(METRICS[m].hdr);
        for (size_t k = 0; k <= r->nrows; k++) {
            table_cell(l, m, k < r->nrows ? r->rows[k].m : r->total, cell);
            if (strlen(cell) > *wm)
                *wm = strlen(cell);
        }
    }
}

static int write_table(const report *r, FILE *out) {
    layout l;
    char cell[CELL];

    table_filters(out, r);
    if (r->ngroups == 0) {
        fprintf(out, "%s\n", r->have_table ? "no ledger rows match" : "ledger is empty (no table)");
        return 0;
    }
    table_layout(r, &l);
    fputc('\n', out);
    for (int i = 0; i < r->nfields; i++)
        put_key(out, r->fields[i]->name, l.w[i]);
    for (int m = 0; m < M_COUNT; m++)
        fprintf(out, "%*s%s", (int)l.w[MAX_FIELDS + m], METRICS[m].hdr,
                m + 1 < M_COUNT ? "  " : "\n");
    table_line(out, r, &l);
    for (size_t k = 0; k < r->nrows; k++)
        table_values(out, r, &l, r->rows[k].keys, r->rows[k].m);
    table_line(out, r, &l);
    table_values(out, r, &l, NULL, r->total);

    if (r->nrows < r->ngroups)
        fprintf(out, "(showing %zu of %zu groups; TOTAL covers all)\n", r->nrows, r->ngroups);
    fputs("\naxis shares of total:", out);
    for (int a = 0; a < 5; a++)
        fprintf(out, "  %s %s", METRICS[AXES[a]].json,
                fmt_bp(share_bp(r->total[AXES[a]], r->total[M_COST_TOTAL]), cell, sizeof cell));
    fputc('\n', out);
    fprintf(out, "savings vs baseline: %s",
            fmt_usd_human(r->total[M_SAVINGS], 2, cell, sizeof cell));
    fprintf(out, " (%s of baseline)\n",
            fmt_bp(share_bp(r->total[M_SAVINGS], r->total[M_BASELINE]), cell, sizeof cell));
    return 0;
}

/* ---- JSON -------------------------------------------------------------- */

/* Sets key to v (which may be NULL after a failed allocation); 0 or -1. */
static int jset(json_t *obj, const char *key, json_t *v) {
    return v ? json_object_set_new(obj, key, v) : -1;
}

/* The metric objects of one row (or the total) into obj. */
static int json_metrics(json_t *obj, const int64_t *v) {
    char usd[40];
    json_t *tokens = json_object(), *nano = json_object(), *dollars = json_object();
    int rc = (tokens && nano && dollars) ? 0 : -1;
    for (int m = 0; m < M_COUNT && rc == 0; m++) {
        const metric *mt = &METRICS[m];
        if (mt->kind == K_TOKENS) {
            rc |= jset(tokens, mt->json, json_integer(v[m]));
        } else if (mt->kind == K_COST) {
            rc |= jset(nano, mt->json, json_integer(v[m]));
            rc |= jset(dollars, mt->json, json_string(cg_money_fmt(v[m], usd, sizeof usd)));
        } else {
            rc |= jset(obj, mt->json, json_integer(v[m]));
        }
    }
    if (rc == 0) {
        rc |= jset(obj, "tokens", tokens);
        rc |= jset(obj, "cost_nano", nano);
        rc |= jset(obj, "cost_usd", dollars);
        tokens = nano = dollars = NULL;
    }
    json_decref(tokens);
    json_decref(nano);
    json_decref(dollars);
    return rc ? -1 : 0;
}

/* A JSON string of s; bytes of invalid UTF-8 become '?'. */
static json_t *jstr(const char *s) {
    json_t *v = json_string(s);
    if (v)
        return v;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *json_str_or_null(const char *s) {
    return s ? jstr(s) : json_null();
}

static json_t *json_build(const report *r) {
    json_t *root = json_object(), *ret = NULL;
    json_t *by = json_array(), *filters = json_object(), *rows = json_array();
    json_t *total = json_object(), *shares = json_object();
    int rc = (root && by && filters && rows && total && shares) ? 0 : -1;
    if (rc)
        goto out;

    for (int i = 0; i < r->nfields; i++)
        rc |= json_array_append_new(by, json_string(r->fields[i]->name));
    rc |= jset(filters, "since", json_str_or_null(r->o->since));
    rc |= jset(filters, "until", json_str_or_null(r->o->until));
    rc |= jset(filters, "tenant", json_str_or_null(r->o->tenant));
    for (size_t k = 0; k < r->nrows && rc == 0; k++) {
        json_t *o = json_object();
        rc |= o ? 0 : -1;
        for (int i = 0; i < r->nfields && rc == 0; i++)
            rc |= jset(o, r->fields[i]->name, jstr(r->rows[k].keys[i]));
        if (rc == 0)
            rc |= json_metrics(o, r->rows[k].m);
        if (rc == 0)
            rc |= json_array_append_new(rows, o);
        else
            json_decref(o);
    }
    if (rc == 0)
        rc |= json_metrics(total, r->total);
    for (int a = 0; a < 5 && rc == 0; a++)
        rc |= jset(shares, METRICS[AXES[a]].json,
                   json_integer(share_bp(r->total[AXES[a]], r->total[M_COST_TOTAL])));
    rc |=
        jset(root, "savings_bp", json_integer(share_bp(r->total[M_SAVINGS], r->total[M_BASELINE])));
    rc |= jset(root, "groups", json_integer((json_int_t)r->ngroups));
    rc |= jset(root, "limit", json_integer(r->o->limit > 0 ? r->o->limit : 0));
    if (rc)
        goto out;
    rc |= json_object_set(root, "group_by", by);
    rc |= json_object_set(root, "filters", filters);
    rc |= json_object_set(root, "rows", rows);
    rc |= json_object_set(root, "total", total);
    rc |= json_object_set(root, "shares_bp", shares);
    if (rc == 0) {
        ret = root;
        root = NULL;
    }
out:
    json_decref(root);
    json_decref(by);
    json_decref(filters);
    json_decref(rows);
    json_decref(total);
    json_decref(shares);
    return ret;
}

static int write_json(const report *r, FILE *out, char *err, size_t errlen) {
    json_t *root = json_build(r);
    int ret = -1;
    if (!root) {
        set_err(err, errlen, "out of memory building the JSON report");
        goto out;
    }
    if (json_dumpf(root, out, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fputc('\n', out) == EOF) {
        set_err(err, errlen, "cannot write the report: %s", strerror(errno));
        goto out;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

/* ---- CSV --------------------------------------------------------------- */

/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
static void csv_field(FILE *out, const char *s, int first) {
    if (!first)
        fputc(',', out);
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_values(FILE *out, const report *r, const char *type, const char *const *keys,
                       const int64_t *v) {
    char buf[40];
    csv_field(out, type, 1);
    for (int i = 0; i < r->nfields; i++)
        csv_field(out, keys[i], 0);
    for (int m = 0; m < M_COUNT; m++) {
        snprintf(buf, sizeof buf, "%lld", (long long)v[m]);
        csv_field(out, buf, 0);
    }
    for (int m = 0; m < M_COUNT; m++)
        if (METRICS[m].kind == K_COST)
            csv_field(out, cg_money_fmt(v[m], buf, sizeof buf), 0);
    fputs("\r\n", out);
}

static int write_csv(const report *r, FILE *out) {
    char name[64];
    const char *total_keys[MAX_FIELDS];
    csv_field(out, "row", 1);
    for (int i = 0; i < r->nfields; i++) {
        csv_field(out, r->fields[i]->name, 0);
        total_keys[i] = "";
    }
    for (int m = 0; m < M_COUNT; m++) {
        snprintf(name, sizeof name, "%s%s", METRICS[m].csv,
                 METRICS[m].kind == K_COST ? "_nano" : "");
        csv_field(out, name, 0);
    }
    for (int m = 0; m < M_COUNT; m++) {
        if (METRICS[m].kind != K_COST)
            continue;
        snprintf(name, sizeof name, "%s_usd", METRICS[m].csv);
        csv_field(out, name, 0);
    }
    fputs("\r\n", out);
    for (size_t k = 0; k < r->nrows; k++)
        csv_values(out, r, "group", (const char *const *)r->rows[k].keys, r->rows[k].m);
    csv_values(out, r, "total", total_keys, r->total);
    return 0;
}

/* ---- entry point ------------------------------------------------------- */

int cg_report_run(const cg_report_opts *o, FILE *out, char *err, size_t errlen) {
    report r;
    int ret = -1;
    memset(&r, 0, sizeof r);
    r.o = o;
    if (err && errlen)
        err[0] = '\0';

    if (!o || !out || !o->db_path || !*o->db_path) {
        set_err(err, errlen, "no ledger path given");
        goto out;
    }
    if (o->limit < 0) {
        set_err(err, errlen, "limit must be >= 0");
        goto out;
    }
    if (parse_group_by(&r, o->group_by, err, errlen) != 0)
        goto out;
    if (o->since && !valid_day(o->since)) {
        set_err(err, errlen, "invalid since date '%s' (want YYYY-MM-DD)", o->since);
        goto out;
    }
    if (o->until && !valid_day(o->until)) {
        set_err(err, errlen, "invalid until date '%s' (want YYYY-MM-DD)", o->until);
        goto out;
    }
    if (load(&r, err, errlen) != 0)
        goto out;

    switch (o->format) {
    case CG_REPORT_TABLE:
        ret = write_table(&r, out);
        break;
    case CG_REPORT_JSON:
        ret = write_json(&r, out, err, errlen);
        break;
    case CG_REPORT_CSV:
        ret = write_csv(&r, out);
        break;
    default:
        set_err(err, errlen, "unknown report format %d", (int)o->format);
        break;
    }
    if (ret == 0 && (fflush(out) != 0 || ferror(out))) {
        set_err(err, errlen, "cannot write the report: %s", strerror(errno));
        ret = -1;
    }
out:
    for (size_t k = 0; k < r.nrows; k++)
        row_free(&r.rows[k]);
    free(r.rows);
    return ret;
}
