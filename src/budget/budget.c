/* budget: reservation-based spending limits (see budget.h). */
#include "budget/budget.h"
#include "core/clock.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 400

typedef struct cg_budget_entry {
    struct cg_budget_entry *next;
    cg_scope scope;
    int64_t period; /* local day number, or year*12+month for tenant_month */
    int64_t spent, reserved;
    uint64_t hash;
    char key[KEY_MAX]; /* scope|period|parts..., unit-separator delimited */
    char label[160];   /* human form: "tenant=acme user=bob" */
    char seg[64];      /* user_day: the segment last seen, for its limit in listings */
} cg_budget_entry;

struct cg_budgets {
    pthread_mutex_t mu;
    const cg_config *cfg;
    cg_clock_fn clock;
    void *clock_arg;
    /* mutable copies of the limits (runtime overrides apply here) */
    cg_segment_budget dflt;
    cg_segment_budget *segs;
    size_t nsegs;
    cg_named_budget *tenants, *features;
    size_t ntenants, nfeatures;
    int64_t global_daily;
    cg_budget_action global_action;
    /* scope table */
    cg_budget_entry **buckets;
    size_t nbuckets, count;
    int64_t swept_day;
};

static const char *const SCOPE_NAMES[CG_SCOPE_COUNT] = {
    "query", "user_day", "segment_day", "tenant_month", "feature_day", "global_day"};
static const char *const ACTION_NAMES[] = {"reject", "downgrade", "dry_run"};

const char *cg_scope_name(cg_scope s) {
    return s < CG_SCOPE_COUNT ? SCOPE_NAMES[s] : "?";
}

const char *cg_budget_action_name(cg_budget_action a) {
    return (int)a >= 0 && (int)a < 3 ? ACTION_NAMES[a] : "?";
}

static int64_t real_clock(void *arg) {
    (void)arg;
    return cg_wall_ms();
}

/* --- periods in the process time zone (TZ is set from budgets.timezone) --- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

typedef struct periods {
    int64_t day, month;
    int64_t day_reset_ms, month_reset_ms;
    int64_t day_start_ms, month_start_ms;
} periods;

static int64_t local_ms(int y, int mon, int d) {
    struct tm t = {.tm_year = y - 1900, .tm_mon = mon, .tm_mday = d, .tm_isdst = -1};
    return (int64_t)mktime(&t) * 1000;
}

static void periods_at(int64_t ms, periods *p) {
    time_t s = (time_t)(ms / 1000);
    struct tm t;
    localtime_r(&s, &t);
    p->day = days_from_civil(t.tm_year + 1900, (unsigned)t.tm_mon + 1, (unsigned)t.tm_mday);
    p->month = (int64_t)(t.tm_year + 1900) * 12 + t.tm_mon;
    p->day_start_ms = local_ms(t.tm_year + 1900, t.tm_mon, t.tm_mday);
    p->day_reset_ms = local_ms(t.tm_year + 1900, t.tm_mon, t.tm_mday + 1);
    p->month_start_ms = local_ms(t.tm_year + 1900, t.tm_mon, 1);
    p->month_reset_ms = local_ms(t.tm_year + 1900, t.tm_mon + 1, 1);
}

/* --- limits ---------------------------------------------------------------- */

static const cg_segment_budget *segment_of(const cg_budgets *b, const char *seg) {
    for (size_t i = 0; i < b->nsegs; i++)
        if (strcmp(b->segs[i].name, seg) == 0)
            return &b->segs[i];
    return &b->dflt;
}

static const cg_named_budget *named(const cg_named_budget *a, size_t n, const char *name) {
    for (size_t i = 0; name && *name && i < n; i++)
        if (strcmp(a[i].name, name) == 0)
            return &a[i];
    return NULL;
}

static void limit_for(const cg_budgets *b, cg_scope s, const cg_budget_who *w, int64_t *limit,
                      cg_budget_action *act) {
    const cg_segment_budget *sg = segment_of(b, w->segment ? w->segment : "");
    const cg_named_budget *nb = NULL;
    *limit = CG_NO_LIMIT;
    *act = CG_ACT_REJECT;
    switch (s) {
    case CG_SCOPE_QUERY:
        *limit = sg->max_per_query, *act = sg->action;
        break;
    case CG_SCOPE_USER_DAY:
        *limit = sg->daily_max_per_user, *act = sg->action;
        break;
    case CG_SCOPE_SEGMENT_DAY:
        *limit = sg->daily_max, *act = sg->action;
        break;
    case CG_SCOPE_TENANT_MONTH:
        nb = named(b->tenants, b->ntenants, w->tenant);
        break;
    case CG_SCOPE_FEATURE_DAY:
        nb = named(b->features, b->nfeatures, w->feature);
        break;
    case CG_SCOPE_GLOBAL_DAY:
        *limit = b->global_daily, *act = b->global_action;
        break;
    default:
        break;
    }
    if (nb) {
        *limit = nb->limit;
        *act = nb->action;
    }
}

/* --- the scope table --------------------------------------------------------- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int make_key(cg_scope s, int64_t period, const cg_budget_who *w, char *key, size_t kcap,
                    char *label, size_t lcap) {
    const char *t = w->tenant ? w->tenant : "", *u = w->user ? w->user : "";
    const char *sg = w->segment ? w->segment : "", *f = w->feature ? w->feature : "";
    int n = 0;
    switch (s) {
    case CG_SCOPE_USER_DAY:
        n = snprintf(key, kcap, "%d\x1f%lld\x1f%s\x1f%s", s, (long long)period, t, u);
        snprintf(label, lcap, "tenant=%s user=%s", t, u);
        break;
    case CG_SCOPE_SEGMENT_DAY:
        n = snprintf(key, kcap, "%d\x1f%lld\x1f%s\x1f%s", s, (long long)period, t, sg);
        snprintf(label, lcap, "tenant=%s segment=%s", t, sg);
        break;
    case CG_SCOPE_TENANT_MONTH:
        n = snprintf(key, kcap, "%d\x1f%lld\x1f%s", s, (long long)period, t);
        snprintf(label, lcap, "tenant=%s", t);
        break;
    case CG_SCOPE_FEATURE_DAY:
        n = snprintf(key, kcap, "%d\x1f%lld\x1f%s\x1f%s", s, (long long)period, t, f);
        snprintf(label, lcap, "tenant=%s feature=%s", t, f);
        break;
    case CG_SCOPE_GLOBAL_DAY:
        n = snprintf(key, kcap, "%d\x1f%lld", s, (long long)period);
        snprintf(label, lcap, "global");
        break;
    default:
        return -1;
    }
    return n > 0 && (size_t)n < kcap ? 0 : -1;
}

static int grow(cg_budgets *b) {
    size_t nb = b->nbuckets ? b->nbuckets * 2 : 256;
    cg_budget_entry **nbk = calloc(nb, sizeof *nbk);
    if (!nbk)
        return -1;
    for (size_t i = 0; i < b->nbuckets; i++) {
        cg_budget_entry *e = b->buckets[i];
        while (e) {
            cg_budget_entry *next = e->next;
            e->next = nbk[e->hash & (nb - 1)];
            nbk[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(b->buckets);
    b->buckets = nbk;
    b->nbuckets = nb;
    return 0;
}

/* The entry for scope s in `period`, created when absent; NULL on OOM. */
static cg_budget_entry *entry(cg_budgets *b, cg_scope s, int64_t period, const cg_budget_who *w) {
    char key[KEY_MAX], label[160];
    if (make_key(s, period, w, key, sizeof key, label, sizeof label) != 0)
        return NULL;
    uint64_t h = fnv1a(key);
    if (b->nbuckets) {
        for (cg_budget_entry *e = b->buckets[h & (b->nbuckets - 1)]; e; e = e->next)
            if (e->hash == h && strcmp(e->key, key) == 0) {
                if (s == CG_SCOPE_USER_DAY && w->segment)
                    snprintf(e->seg, sizeof e->seg, "%s", w->segment);
                return e;
            }
    }
    if ((b->count + 1) * 2 > b->nbuckets && grow(b) != 0)
        return NULL;
    cg_budget_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->scope = s;
    e->period = period;
    e->hash = h;
    memcpy(e->key, key, sizeof key);
    memcpy(e->label, label, sizeof label);
    if (s == CG_SCOPE_USER_DAY && w->segment)
        snprintf(e->seg, sizeof e->seg, "%s", w->segment);
    e->next = b->buckets[h & (b->nbuckets - 1)];
    b->buckets[h & (b->nbuckets - 1)] = e;
    b->count++;
    return e;
}

/* Drops entries of past periods that hold no reservation. */
static void sweep(cg_budgets *b, const periods *p) {
    if (b->swept_day == p->day)
        return;
    b->swept_day = p->day;
    for (size_t i = 0; i < b->nbuckets; i++) {
        cg_budget_entry **pp = &b->buckets[i];
        while (*pp) {
            cg_budget_entry *e = *pp;
            int64_t cur = e->scope == CG_SCOPE_TENANT_MONTH ? p->month : p->day;
            if (e->period < cur && e->reserved == 0) {
                *pp = e->next;
                free(e);
                b->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static int64_t period_of(cg_scope s, const periods *p) {
    return s == CG_SCOPE_TENANT_MONTH ? p->month : p->day;
}

static int applies(cg_scope s, const cg_budget_who *w) {
    return s != CG_SCOPE_FEATURE_DAY || (w->feature && *w->feature);
}

/* --- lifecycle --------------------------------------------------------------- */

static void *dup_array(const void *src, size_t n, size_t sz) {
    if (!n)
        return NULL;
    void *p = malloc(n * sz);
    if (p)
        memcpy(p, src, n * sz);
    return p;
}

cg_budgets *cg_budgets_new(const cg_config *cfg, cg_clock_fn clock, void *clock_arg) {
    cg_budgets *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    const cg_budgets_cfg *bc = &cfg->budgets;
    pthread_mutex_init(&b->mu, NULL);
    b->cfg = cfg;
    b->clock = clock ? clock : real_clock;
    b->clock_arg = clock_arg;
    b->dflt = bc->dflt;
    b->segs = dup_array(bc->segments, bc->n_segments, sizeof *bc->segments);
    b->nsegs = b->segs ? bc->n_segments : 0;
    b->tenants = dup_array(bc->tenants, bc->n_tenants, sizeof *bc->tenants);
    b->ntenants = b->tenants ? bc->n_tenants : 0;
    b->features = dup_array(bc->features, bc->n_features, sizeof *bc->features);
    b->nfeatures = b->features ? bc->n_features : 0;
    b->global_daily = bc->global_daily;
    b->global_action = bc->global_action;
    b->swept_day = INT64_MIN;
    if (grow(b) != 0 || b->nsegs != bc->n_segments || b->ntenants != bc->n_tenants ||
        b->nfeatures != bc->n_features) {
        cg_budgets_free(b);
        return NULL;
    }
    return b;
}

void cg_budgets_free(cg_budgets *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->nbuckets; i++) {
        cg_budget_entry *e = b->buckets[i];
        while (e) {
            cg_budget_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(b->buckets);
    free(b->segs);
    free(b->tenants);
    free(b->features);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int cg_budgets_enabled(const cg_budgets *b) {
    return b && b->cfg->budgets.enabled;
}

int64_t cg_budgets_now(const cg_budgets *b) {
    return b->clock(b->clock_arg);
}

/* --- spend ------------------------------------------------------------------- */

static void add_spent_locked(cg_budgets *b, const cg_budget_who *w, const periods *p,
                             int64_t nano) {
    for (int s = CG_SCOPE_USER_DAY; s < CG_SCOPE_COUNT; s++) {
        if (!applies((cg_scope)s, w))
            continue;
        cg_budget_entry *e = entry(b, (cg_scope)s, period_of((cg_scope)s, p), w);
        if (e)
            e->spent += nano;
    }
}

void cg_budgets_add_spent(cg_budgets *b, const cg_budget_who *w, int64_t ts_ms, int64_t nano) {
    periods p;
    periods_at(ts_ms, &p);
    pthread_mutex_lock(&b->mu);
    add_spent_locked(b, w, &p, nano);
    pthread_mutex_unlock(&b->mu);
}

int cg_budgets_load_ledger(cg_budgets *b, const char *path, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    periods now;
    periods_at(b->clock(b->clock_arg), &now);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger %s: %s", path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    /* every row since the start of this month, aggregated per who and day */
    const char *sql = "SELECT tenant, user, segment, feature, ts_ms / 900000, SUM(cost_total)"
                      " FROM ledger WHERE ts_ms >= ? AND cost_total != 0"
                      " GROUP BY 1, 2, 3, 4, 5";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        /* a new ledger has no table yet: nothing spent */
        rc = strstr(sqlite3_errmsg(db), "no such table") ? 0 : -1;
        if (rc)
            snprintf(err, errlen, "cannot read ledger %s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    int64_t from = now.month_start_ms < now.day_start_ms ? now.month_start_ms : now.day_start_ms;
    sqlite3_bind_int64(st, 1, from);
    pthread_mutex_lock(&b->mu);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cg_budget_who w = {
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3)};
        /* grouped by quarter hour: every time zone's offset is a multiple
         * of 15 min, so a group never straddles a local day boundary */
        int64_t ts = sqlite3_column_int64(st, 4) * 900000 + 450000;
        periods p;
        periods_at(ts, &p);
        add_spent_locked(b, &w, &p, sqlite3_column_int64(st, 5));
    }
    pthread_mutex_unlock(&b->mu);
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* --- reserve / settle -------------------------------------------------------- */

int cg_budget_reserve(cg_budgets *b, const cg_budget_who *w, int64_t estimate, cg_reservation *res,
                      cg_budget_verdict *v) {
    memset(res, 0, sizeof *res);
    memset(v, 0, sizeof *v);
    res->remaining = -1;
    v->estimate = estimate;
    periods p;
    periods_at(b->clock(b->clock_arg), &p);
    pthread_mutex_lock(&b->mu);
    sweep(b, &p);
    cg_budget_entry *es[CG_SCOPE_COUNT] = {0};
    int64_t limits[CG_SCOPE_COUNT];
    int blocked = 0;
    for (int i = 0; i < CG_SCOPE_COUNT; i++) {
        cg_scope s = (cg_scope)i;
        cg_budget_action act;
        limit_for(b, s, w, &limits[i], &act);
        if (!applies(s, w))
            continue;
        int64_t spent = 0, reserved = 0;
        if (s != CG_SCOPE_QUERY) {
            es[i] = entry(b, s, period_of(s, &p), w);
            if (!es[i])
                continue; /* out of memory: the scope cannot be tracked */
            spent = es[i]->spent;
            reserved = es[i]->reserved;
        }
        if (limits[i] == CG_NO_LIMIT || spent + reserved + estimate <= limits[i])
            continue;
        if (act == CG_ACT_DRY_RUN) {
            if (!res->dry_run) {
                res->dry_run = 1;
                snprintf(res->dry_run_scope, sizeof res->dry_run_scope, "%s", SCOPE_NAMES[i]);
            }
            continue;
        }
        if (blocked)
            continue;
        blocked = 1;
        v->scope = s;
        v->action = act;
        v->limit = limits[i];
        v->spent = spent;
        v->reserved = reserved;
        v->reset_at_ms = s == CG_SCOPE_QUERY          ? 0
                         : s == CG_SCOPE_TENANT_MONTH ? p.month_reset_ms
                                                      : p.day_reset_ms;
        if (es[i])
            snprintf(v->scope_name, sizeof v->scope_name, "%s %.140s", SCOPE_NAMES[i],
                     es[i]->label);
        else
            snprintf(v->scope_name, sizeof v->scope_name, "%s segment=%.63s", SCOPE_NAMES[i],
                     w->segment ? w->segment : "");
    }
    if (!blocked) {
        for (int i = 0; i < CG_SCOPE_COUNT; i++) {
            if (es[i]) {
                es[i]->reserved += estimate;
                res->e[res->n++] = es[i];
                if (limits[i] != CG_NO_LIMIT) {
                    int64_t left = limits[i] - es[i]->spent - es[i]->reserved;
                    if (left < 0)
                        left = 0;
                    if (res->remaining < 0 || left < res->remaining)
                        res->remaining = left;
                }
            }
        }
        res->amount = estimate;
    }
    pthread_mutex_unlock(&b->mu);
    v->admitted = !blocked;
    return !blocked;
}

void cg_budget_settle(cg_budgets *b, cg_reservation *res, int64_t actual) {
    if (!res->n)
        return;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < res->n; i++) {
        res->e[i]->reserved -= res->amount;
        res->e[i]->spent += actual;
    }
    pthread_mutex_unlock(&b->mu);
    res->n = 0;
}

/* --- runtime limits ---------------------------------------------------------- */

static int set_named(cg_named_budget **arr, size_t *n, const char *name, int64_t limit,
                     int action) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*arr)[i].name, name) == 0) {
            (*arr)[i].limit = limit;
            if (action >= 0)
                (*arr)[i].action = (cg_budget_action)action;
            return 0;
        }
    cg_named_budget *na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na)
        return -1;
    *arr = na;
    memset(&na[*n], 0, sizeof na[*n]);
    snprintf(na[*n].name, sizeof na[*n].name, "%s", name);
    na[*n].limit = limit;
    na[*n].action = action >= 0 ? (cg_budget_action)action : CG_ACT_REJECT;
    (*n)++;
    return 0;
}

int cg_budget_set_limit(cg_budgets *b, const char *scope, const char *name, const char *field,
                        int64_t limit, int action, char *err, size_t errlen) {
    int rc = -1;
    if (limit < CG_NO_LIMIT || action < -1 || action > 2) {
        snprintf(err, errlen,
                 "limit must be >= 0 (or removed) and action one of "
                 "reject|downgrade|dry_run");
        return -1;
    }
    if (!name)
        name = "";
    if (strlen(name) >= 64) {
        snprintf(err, errlen, "name is longer than 63 bytes");
        return -1;
    }
    pthread_mutex_lock(&b->mu);
    if (strcmp(scope, "default") == 0 || strcmp(scope, "segment") == 0) {
        cg_segment_budget *sg = &b->dflt;
        if (scope[0] == 's') {
            sg = NULL;
            for (size_t i = 0; i < b->nsegs; i++)
                if (strcmp(b->segs[i].name, name) == 0)
                    sg = &b->segs[i];
            if (!sg) {
                cg_segment_budget *ns = realloc(b->segs, (b->nsegs + 1) * sizeof *ns);
                if (!ns) {
                    snprintf(err, errlen, "out of memory");
                    goto out;
                }
                b->segs = ns;
                sg = &b->segs[b->nsegs++];
                *sg = b->dflt;
                memcpy(sg->name, name, strlen(name) + 1); /* < 64, checked above */
            }
        }
        int64_t *dst = !field                                     ? NULL
                       : strcmp(field, "max_per_query") == 0      ? &sg->max_per_query
                       : strcmp(field, "daily_max_per_user") == 0 ? &sg->daily_max_per_user
                       : strcmp(field, "daily_max") == 0          ? &sg->daily_max
                                                                  : NULL;
        if (!dst) {
            snprintf(err, errlen,
                     "field must be max_per_query, daily_max_per_user or daily_max for %s", scope);
            goto out;
        }
        *dst = limit;
        if (action >= 0)
            sg->action = (cg_budget_action)action;
    } else if (strcmp(scope, "tenant") == 0 || strcmp(scope, "feature") == 0) {
        if (!*name) {
            snprintf(err, errlen, "a %s limit needs a name", scope);
            goto out;
        }
        int r = scope[0] == 't' ? set_named(&b->tenants, &b->ntenants, name, limit, action)
                                : set_named(&b->features, &b->nfeatures, name, limit, action);
        if (r) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    } else if (strcmp(scope, "global") == 0) {
        b->global_daily = limit;
        if (action >= 0)
            b->global_action = (cg_budget_action)action;
    } else {
        snprintf(err, errlen, "scope must be default, segment, tenant, feature or global");
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void cg_budget_visit(cg_budgets *b, cg_budget_visit_fn fn, void *arg) {
    periods p;
    periods_at(b->clock(b->clock_arg), &p);
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->nbuckets; i++)
        for (cg_budget_entry *e = b->buckets[i]; e; e = e->next) {
            if (e->period != period_of(e->scope, &p))
                continue;
            /* limits are looked up from the entry's who, kept in its key */
            char tmp[KEY_MAX];
            memcpy(tmp, e->key, sizeof tmp);
            char *parts[4] = {0};
            char *save = NULL;
            int k = 0;
            for (char *tok = strtok_r(tmp, "\x1f", &save); tok && k < 4;
                 tok = strtok_r(NULL, "\x1f", &save))
                if (k++ >= 2)
                    parts[k - 3] = tok;
            cg_budget_who w = {.tenant = parts[0]};
            if (e->scope == CG_SCOPE_USER_DAY) {
                w.user = parts[1];
                w.segment = e->seg;
            } else if (e->scope == CG_SCOPE_SEGMENT_DAY)
                w.segment = parts[1];
            else if (e->scope == CG_SCOPE_FEATURE_DAY)
                w.feature = parts[1];
            int64_t limit;
            cg_budget_action act;
            limit_for(b, e->scope, &w, &limit, &act);
            fn(arg, SCOPE_NAMES[e->scope], e->label, limit, e->spent, e->reserved,
               e->scope == CG_SCOPE_TENANT_MONTH ? p.month_reset_ms : p.day_reset_ms);
        }
    pthread_mutex_unlock(&b->mu);
}
