/* cli: `costgate cache audit|invalidate|stats` (see cli.h). */
#include "cache/cli.h"

#include <getopt.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "http/admin_client.h"
#include "core/clock.h"
#include "core/money.h"

#define TAGS_MAX 64
#define CG_AUDIT_TEXT_COL 160 /* bytes of each query shown per line in the table */

static void usage(FILE *f) {
    fputs("usage: costgate cache audit [--db PATH | -c CONFIG] [--limit N] [--json] [--semantic]\n"
          "       costgate cache invalidate (--entry KEY | --tag TAG... | --tenant T\n"
          "                                  [--prompt-version V] | --share-group G | --all)\n"
          "                                 [--url URL] [--key ADMIN_KEY]\n"
          "       costgate cache stats [--url URL] [--key ADMIN_KEY] [--json]\n"
          "\n"
          "  audit       reads the ledger file (default var/ledger.db; -c takes ledger.path):\n"
          "              hit rate by intent, tenant and model, bytes held, the entries\n"
          "              that saved the most, invalidations by cause, ratings\n"
          "              --semantic  instead: the semantic cache's most recent hits (--limit,\n"
          "                        default 20), the asked and the cached query side by side\n"
          "                        with the similarity, tenant and time; requests compared\n"
          "                        with a cached query, hits, savings, embedding cost\n"
          "  invalidate  removes entries from a running gateway's cache (admin API)\n"
          "              --entry   one cache key (64 hex, see the ledger's cache_key)\n"
          "              --tag     entries tagged so (x-costgate-context-ids or\n"
          "                        x-costgate-cache-tags); repeat for several\n"
          "              --tenant  the tenant's entries (with --prompt-version: only\n"
          "                        those stored under that prompt version)\n"
          "  stats       live counters of a running gateway's cache\n"
          "\n"
          "The admin API is at --url (default http://127.0.0.1:8081); the admin key\n"
          "comes from --key or COSTGATE_ADMIN_KEY.\n",
          f);
}

/* --- audit ------------------------------------------------------------------- */

typedef struct dim {
    const char *name, *column; /* column: a constant, never user text */
} dim;

static const dim DIMS[] = {{"intent", "intent"}, {"tenant", "tenant"}, {"model", "model_served"}};

static json_t *usd(int64_t nano) {
    char b[40];
    return json_string(cg_money_fmt(nano, b, sizeof b));
}

static double rate(int64_t hits, int64_t misses) {
    return hits + misses ? (double)hits / (double)(hits + misses) : 0.0;
}

/* Rows of the hit-rate query, grouped by column (NULL = totals). */
static int hit_rates(sqlite3 *db, const char *column, json_t *out, char *err, size_t errlen) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s, COUNT(DISTINCT request_id),"
             " COUNT(DISTINCT CASE WHEN cache = 'exact' THEN request_id END),"
             " COUNT(DISTINCT CASE WHEN cache = 'exact' AND note LIKE '%%cache:coalesced%%'"
             "   THEN request_id END),"
             " COUNT(DISTINCT CASE WHEN cache <> 'exact' AND cache_key <> '' THEN request_id END),"
             " COALESCE(SUM(CASE WHEN cache = 'exact' THEN baseline_cost END), 0)"
             " FROM ledger WHERE kind IN ('chat', 'messages') %s ORDER BY 2 DESC",
             column ? column : "''", column ? "GROUP BY 1" : "");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen,
                 "cannot read the ledger's cache columns (%s); a ledger older than schema v3 "
                 "is upgraded when the gateway opens it",
                 sqlite3_errmsg(db));
        return -1;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        int64_t req = sqlite3_column_int64(s, 1), hits = sqlite3_column_int64(s, 2),
                co = sqlite3_column_int64(s, 3), miss = sqlite3_column_int64(s, 4),
                saved = sqlite3_column_int64(s, 5);
        json_array_append_new(
            out, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:o}", "group", k ? k : "", "requests",
                           (json_int_t)req, "hits", (json_int_t)hits, "coalesced", (json_int_t)co,
                           "misses", (json_int_t)miss, "bypassed", (json_int_t)(req - hits - miss),
                           "hit_rate", rate(hits, miss), "saved_nano", (json_int_t)saved,
                           "saved_usd", usd(saved)));
    }
    sqlite3_finalize(s);
    return 0;
}

static int top_entries(sqlite3 *db, int limit, json_t *out) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT l.cache_key, COUNT(*), SUM(l.baseline_cost), MAX(e.tenant), MAX(e.model),"
            " MAX(e.intent), MAX(e.created_ms), MAX(e.expires_ms), MAX(e.bytes), MAX(e.tags),"
            " MAX(e.key IS NOT NULL)"
            " FROM ledger l LEFT JOIN cache_entries e ON e.key = l.cache_key"
            " WHERE l.cache = 'exact' GROUP BY l.cache_key ORDER BY 3 DESC, 2 DESC LIMIT ?",
            -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    while (sqlite3_step(s) == SQLITE_ROW) {
#define TXT(i)                                                                                     \
    ((const char *)sqlite3_column_text(s, (i)) ? (const char *)sqlite3_column_text(s, (i)) : "")
        json_t *tags = json_loads(TXT(9), 0, NULL);
        json_array_append_new(
            out, json_pack("{s:s,s:I,s:I,s:o,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:b}", "key", TXT(0),
                           "hits", (json_int_t)sqlite3_column_int64(s, 1), "saved_nano",
                           (json_int_t)sqlite3_column_int64(s, 2), "saved_usd",
                           usd(sqlite3_column_int64(s, 2)), "tenant", TXT(3), "model", TXT(4),
                           "intent", TXT(5), "created_ms", (json_int_t)sqlite3_column_int64(s, 6),
                           "expires_ms", (json_int_t)sqlite3_column_int64(s, 7), "bytes",
                           (json_int_t)sqlite3_column_int64(s, 8), "tags",
                           tags ? tags : json_array(), "stored", sqlite3_column_int(s, 10)));
#undef TXT
    }
    sqlite3_finalize(s);
    return 0;
}

static int simple_counts(sqlite3 *db, const char *sql, json_t *out) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        json_array_append_new(out, json_pack("{s:s,s:I,s:I}", "what", k ? k : "", "events",
                                             (json_int_t)sqlite3_column_int64(s, 1), "entries",
                                             (json_int_t)sqlite3_column_int64(s, 2)));
    }
    sqlite3_finalize(s);
    return 0;
}

static void print_rates(FILE *out, const char *title, json_t *rows) {
    fprintf(out, "\n%-24s %9s %9s %9s %9s %9s %8s %16s\n", title, "REQUESTS", "HITS", "COALESCED",
            "MISSES", "BYPASSED", "HIT%", "SAVED USD");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *g = json_string_value(json_object_get(r, "group"));
        fprintf(out, "%-24.24s %9lld %9lld %9lld %9lld %9lld %7.1f%% %16s\n",
                g && *g ? g : "(none)",
                (long long)json_integer_value(json_object_get(r, "requests")),
                (long long)json_integer_value(json_object_get(r, "hits")),
                (long long)json_integer_value(json_object_get(r, "coalesced")),
                (long long)json_integer_value(json_object_get(r, "misses")),
                (long long)json_integer_value(json_object_get(r, "bypassed")),
                100.0 * json_real_value(json_object_get(r, "hit_rate")),
                json_string_value(json_object_get(r, "saved_usd")));
    }
}

static void print_audit(FILE *out, json_t *a) {
    json_t *t = json_array_get(json_object_get(a, "total"), 0);
    json_t *st = json_object_get(a, "storage");
    fprintf(out, "exact cache audit\n\n");
    if (t)
        fprintf(out,
                "requests %lld, looked up %lld, hits %lld (coalesced %lld), hit rate %.1f%%, "
                "saved $%s\n",
                (long long)json_integer_value(json_object_get(t, "requests")),
                (long long)(json_integer_value(json_object_get(t, "hits")) +
                            json_integer_value(json_object_get(t, "misses"))),
                (long long)json_integer_value(json_object_get(t, "hits")),
                (long long)json_integer_value(json_object_get(t, "coalesced")),
                100.0 * json_real_value(json_object_get(t, "hit_rate")),
                json_string_value(json_object_get(t, "saved_usd")));
    fprintf(out, "stored entries %lld, %lld bytes\n",
            (long long)json_integer_value(json_object_get(st, "entries")),
            (long long)json_integer_value(json_object_get(st, "bytes")));
    print_rates(out, "BY INTENT", json_object_get(a, "by_intent"));
    print_rates(out, "BY TENANT", json_object_get(a, "by_tenant"));
    print_rates(out, "BY MODEL", json_object_get(a, "by_model"));
    fprintf(out, "\n%-14s %6s %14s %-12s %-24s %-16s %s\n", "TOP ENTRIES", "HITS", "SAVED USD",
            "TENANT", "MODEL", "INTENT", "STATE");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(a, "top_entries"), i, r) {
        fprintf(out, "%-14.12s %6lld %14s %-12.12s %-24.24s %-16.16s %s\n",
                json_string_value(json_object_get(r, "key")),
                (long long)json_integer_value(json_object_get(r, "hits")),
                json_string_value(json_object_get(r, "saved_usd")),
                json_string_value(json_object_get(r, "tenant")),
                json_string_value(json_object_get(r, "model")),
                json_string_value(json_object_get(r, "intent")),
                json_is_true(json_object_get(r, "stored")) ? "stored" : "gone");
    }
    fprintf(out, "\n%-24s %8s %8s\n", "INVALIDATIONS BY CAUSE", "EVENTS", "ENTRIES");
    json_array_foreach(json_object_get(a, "invalidations"), i, r) {
        fprintf(out, "%-24s %8lld %8lld\n", json_string_value(json_object_get(r, "what")),
                (long long)json_integer_value(json_object_get(r, "events")),
                (long long)json_integer_value(json_object_get(r, "entries")));
    }
    fprintf(out, "\n%-24s %8s\n", "RATINGS", "COUNT");
    json_array_foreach(json_object_get(a, "ratings"), i, r) {
        fprintf(out, "%-24s %8lld\n", json_string_value(json_object_get(r, "what")),
                (long long)json_integer_value(json_object_get(r, "events")));
    }
}

int cg_cache_audit(const char *db_path, int as_json, int limit, FILE *out, char *err,
                   size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *a = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", db_path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    a = json_pack("{s:[],s:[],s:[],s:[],s:[],s:[],s:[]}", "total", "by_intent", "by_tenant",
                  "by_model", "top_entries", "invalidations", "ratings");
    if (!a) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (hit_rates(db, NULL, json_object_get(a, "total"), err, errlen) != 0)
        goto out;
    static const char *const keys[] = {"by_intent", "by_tenant", "by_model"};
    for (int i = 0; i < 3; i++)
        if (hit_rates(db, DIMS[i].column, json_object_get(a, keys[i]), err, errlen) != 0)
            goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM cache_entries WHERE "
                           "expires_ms > ?",
                           -1, &s, NULL) != SQLITE_OK ||
        top_entries(db, limit, json_object_get(a, "top_entries")) != 0 ||
        simple_counts(db,
                      "SELECT cause, COUNT(*), SUM(removed) FROM cache_invalidations GROUP BY "
                      "cause ORDER BY 3 DESC",
                      json_object_get(a, "invalidations")) != 0 ||
        simple_counts(db,
                      "SELECT CASE WHEN rating > 0 THEN 'up' ELSE 'down' END, COUNT(*), 0 FROM "
                      "feedback GROUP BY 1 ORDER BY 1 DESC",
                      json_object_get(a, "ratings")) != 0) {
        snprintf(err, errlen, "cannot read the cache tables of %s: %s", db_path,
                 sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(s, 1, cg_wall_ms());
    if (sqlite3_step(s) == SQLITE_ROW)
        json_object_set_new(a, "storage",
                            json_pack("{s:I,s:I}", "entries",
                                      (json_int_t)sqlite3_column_int64(s, 0), "bytes",
                                      (json_int_t)sqlite3_column_int64(s, 1)));
    if (as_json) {
        char *txt = json_dumps(a, JSON_INDENT(2));
        if (txt)
            fprintf(out, "%s\n", txt);
        free(txt);
    } else {
        print_audit(out, a);
    }
    rc = 0;
out:
    json_decref(a);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* --- audit --semantic ---------------------------------------------------------- */

#define COL(s, i)                                                                                  \
    ((const char *)sqlite3_column_text((s), (i)) ? (const char *)sqlite3_column_text((s), (i)) : "")

static void iso_time(int64_t ms, char *out, size_t cap) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One line of a query for the table: control characters shown as spaces,
 * cut to width bytes at a UTF-8 boundary. */
static void one_line(const char *in, char *out, size_t width) {
    size_t n = strlen(in);
    if (n > width) {
        n = width;
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)in[i] < 0x20 ? ' ' : in[i];
    out[n] = '\0';
}

static void print_semantic(FILE *out, json_t *a) {
    json_t *t = json_object_get(a, "summary");
    fprintf(out, "semantic cache audit\n\n");
    fprintf(out,
            "requests compared with a cached query %lld, semantic hits %lld (%.1f%%), saved $%s, "
            "embedding cost $%s\n",
            (long long)json_integer_value(json_object_get(t, "compared")),
            (long long)json_integer_value(json_object_get(t, "hits")),
            100.0 * json_real_value(json_object_get(t, "hit_rate")),
            json_string_value(json_object_get(t, "saved_usd")),
            json_string_value(json_object_get(t, "embedding_usd")));
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(a, "hits"), i, h) {
        char asked[CG_AUDIT_TEXT_COL + 1], cached[CG_AUDIT_TEXT_COL + 1];
        one_line(json_string_value(json_object_get(h, "asked")), asked, CG_AUDIT_TEXT_COL);
        one_line(json_string_value(json_object_get(h, "cached")), cached, CG_AUDIT_TEXT_COL);
        fprintf(out, "\n%s  %s  tenant %s  similarity %.4f (threshold %.4f)  %s\n",
                json_string_value(json_object_get(h, "time")),
                json_string_value(json_object_get(h, "request_id")),
                json_string_value(json_object_get(h, "tenant")),
                json_real_value(json_object_get(h, "similarity")),
                json_real_value(json_object_get(h, "threshold")),
                json_string_value(json_object_get(h, "model")));
        fprintf(out, "  asked:  %s\n  cached: %s\n", asked, cached);
    }
    if (json_array_size(json_object_get(a, "hits")) == 0)
        fprintf(out, "\n(no semantic hits recorded)\n");
}

int cg_cache_audit_semantic(const char *db_path, int as_json, int limit, FILE *out, char *err,
                            size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *a = NULL, *hits = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", db_path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db,
                           "SELECT COUNT(DISTINCT CASE WHEN cache_similarity IS NOT NULL OR"
                           " cache = 'semantic' THEN request_id END),"
                           " COUNT(DISTINCT CASE WHEN cache = 'semantic' THEN request_id END),"
                           " COALESCE(SUM(CASE WHEN cache = 'semantic' THEN baseline_cost END), 0),"
                           " COALESCE(SUM(cost_embedding), 0)"
                           " FROM ledger WHERE kind IN ('chat', 'messages')",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen,
                 "cannot read the ledger's semantic columns (%s); a ledger older than schema v4 "
                 "is upgraded when the gateway opens it",
                 sqlite3_errmsg(db));
        goto out;
    }
    a = json_object();
    hits = json_array();
    if (!a || !hits) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t looked = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 1);
        json_object_set_new(a, "summary",
                            json_pack("{s:I,s:I,s:f,s:I,s:o,s:I,s:o}", "looked_up",
                                      (json_int_t)looked, "hits", (json_int_t)n, "hit_rate",
                                      looked ? (double)n / (double)looked : 0.0, "saved_nano",
                                      (json_int_t)sqlite3_column_int64(s, 2), "saved_usd",
                                      usd(sqlite3_column_int64(s, 2)), "embedding_nano",
                                      (json_int_t)sqlite3_column_int64(s, 3), "embedding_usd",
                                      usd(sqlite3_column_int64(s, 3))));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT request_id, ts_ms, tenant, segment, model, similarity, threshold,"
            " match_key, match_src, asked, cached FROM semantic_hits"
            " ORDER BY ts_ms DESC, request_id DESC LIMIT ?",
            -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read semantic_hits in %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int(s, 1, limit);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char when[32];
        iso_time(sqlite3_column_int64(s, 1), when, sizeof when);
        json_array_append_new(
            hits, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:f,s:f,s:s,s:s,s:s,s:s}", "request_id",
                            COL(s, 0), "ts_ms", (json_int_t)sqlite3_column_int64(s, 1), "time",
                            when, "tenant", COL(s, 2), "segment", COL(s, 3), "model", COL(s, 4),
                            "similarity", sqlite3_column_double(s, 5), "threshold",
                            sqlite3_column_double(s, 6), "match_key", COL(s, 7), "match_src",
                            COL(s, 8), "asked", COL(s, 9), "cached", COL(s, 10)));
    }
    json_object_set(a, "hits", hits);
    if (as_json) {
        char *txt = json_dumps(a, JSON_INDENT(2));
        if (txt)
            fprintf(out, "%s\n", txt);
        free(txt);
    } else {
        print_semantic(out, a);
    }
    rc = 0;
out:
    json_decref(a);
    json_decref(hits);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* --- admin API commands (http/admin_client.c makes the call) ------------------ */

static void print_stats(json_t *j) {
    if (!json_is_true(json_object_get(j, "enabled"))) {
        puts("the exact cache is not enabled on this gateway");
        return;
    }
    const char *keys[] = {"entries",   "bytes",       "max_bytes", "lookups", "hits",
                          "misses",    "coalesced",   "bypassed",  "stores",  "replaced",
                          "evictions", "expirations", NULL};
    for (int i = 0; keys[i]; i++)
        printf("%-14s %lld\n", keys[i], (long long)json_integer_value(json_object_get(j, keys[i])));
    printf("%-14s %.1f%%\n", "hit_rate", 100.0 * json_real_value(json_object_get(j, "hit_rate")));
    printf("%-14s $%s\n", "saved", json_string_value(json_object_get(j, "saved_usd")));
    const char *objs[] = {"rejected", "invalidated", "coalescing", NULL};
    for (int i = 0; objs[i]; i++) {
        const char *k;
        json_t *v;
        printf("%s:", objs[i]);
        json_object_foreach(json_object_get(j, objs[i]), k, v) {
            printf(" %s=%lld", k, (long long)json_integer_value(v));
        }
        printf("\n");
    }
}

int cg_cache_main(int argc, char **argv) {
    const char *url = "http://127.0.0.1:8081", *key = getenv("COSTGATE_ADMIN_KEY");
    const char *db = "var/ledger.db", *cfg_path = NULL, *entry = NULL, *tenant = NULL,
               *group = NULL, *pv = NULL;
    const char *tags[TAGS_MAX];
    size_t n_tags = 0;
    int as_json = 0, all = 0, limit = 20, semantic = 0;
    static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                         {"key", required_argument, 0, 'k'},
                                         {"db", required_argument, 0, 'd'},
                                         {"config", required_argument, 0, 'c'},
                                         {"limit", required_argument, 0, 'l'},
                                         {"entry", required_argument, 0, 'e'},
                                         {"tag", required_argument, 0, 't'},
                                         {"tenant", required_argument, 0, 'T'},
                                         {"share-group", required_argument, 0, 'g'},
                                         {"prompt-version", required_argument, 0, 'p'},
                                         {"all", no_argument, 0, 'a'},
                                         {"json", no_argument, 0, 'j'},
                                         {"semantic", no_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "u:k:d:c:l:e:t:T:g:p:ajsh", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            url = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 'l':
            limit = atoi(optarg);
            if (limit < 1)
                limit = 1;
            break;
        case 'e':
            entry = optarg;
            break;
        case 't':
            if (n_tags >= TAGS_MAX) {
                fprintf(stderr, "costgate cache: at most %d --tag\n", TAGS_MAX);
                return 2;
            }
            tags[n_tags++] = optarg;
            break;
        case 'T':
            tenant = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'p':
            pv = optarg;
            break;
        case 'a':
            all = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 's':
            semantic = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(sub, "audit") == 0) {
        cg_config *cfg = NULL;
        char err[1024];
        if (cfg_path) {
            if (cg_config_load(cfg_path, &cfg, err, sizeof err) != 0) {
                fprintf(stderr, "costgate: invalid config: %s\n", err);
                return 2;
            }
            db = cfg->ledger_path;
        }
        int rc = semantic ? cg_cache_audit_semantic(db, as_json, limit, stdout, err, sizeof err)
                          : cg_cache_audit(db, as_json, limit, stdout, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "costgate cache audit: %s\n", err);
        cg_config_free(cfg);
        return rc == 0 ? 0 : 1;
    }
    char full[1024];
    cg_buf out;
    cg_buf_init(&out, 4u << 20);
    long status = 0;
    int rc = 1;
    if (strcmp(sub, "stats") == 0) {
        snprintf(full, sizeof full, "%s/admin/cache/stats", url);
        if (cg_admin_call("costgate cache", full, key, "GET", NULL, &out, &status) != 0)
            goto done;
        json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        if (status != 200 || !j) {
            fprintf(stderr, "costgate cache stats: HTTP %ld: %.*s\n", status, (int)out.len,
                    out.data ? out.data : "");
            json_decref(j);
            goto done;
        }
        if (as_json)
            printf("%.*s\n", (int)out.len, out.data);
        else
            print_stats(j);
        json_decref(j);
        rc = 0;
    } else if (strcmp(sub, "invalidate") == 0) {
        json_t *b = json_object();
        if (entry)
            json_object_set_new(b, "key", json_string(entry));
        if (n_tags) {
            json_t *a = json_array();
            for (size_t i = 0; i < n_tags; i++)
                json_array_append_new(a, json_string(tags[i]));
            json_object_set_new(b, "tags", a);
        }
        if (tenant)
            json_object_set_new(b, "tenant", json_string(tenant));
        if (group)
            json_object_set_new(b, "share_group", json_string(group));
        if (pv)
            json_object_set_new(b, "prompt_version", json_string(pv));
        if (all)
            json_object_set_new(b, "all", json_true());
        if (json_object_size(b) == 0) {
            json_decref(b);
            fprintf(stderr, "costgate cache invalidate: say what to remove (--entry, --tag, "
                            "--tenant, --share-group, --prompt-version or --all)\n");
            rc = 2;
            goto done;
        }
        char *body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        snprintf(full, sizeof full, "%s/admin/cache/invalidate", url);
        int crc =
            body ? cg_admin_call("costgate cache", full, key, "POST", body, &out, &status) : -1;
        free(body);
        if (crc != 0)
            goto done;
        printf("%.*s\n", (int)out.len, out.data ? out.data : "");
        rc = status == 200 ? 0 : 1;
    } else {
        fprintf(stderr, "costgate cache: unknown subcommand '%s'\n", sub);
        usage(stderr);
        rc = 2;
    }
done:
    cg_buf_free(&out);
    return rc;
}
