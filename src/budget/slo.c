/* slo: burn-rate evaluation over minute buckets (see slo.h). */
#include "budget/slo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS INT64_C(60000)
#define DAY_MS INT64_C(86400000)
#define MAX_BUCKETS 1440 /* one day of minutes: the longest window */

typedef struct bucket {
    int64_t minute; /* absolute minute number; stale when != the expected one */
    int64_t cost;
    int64_t count;
} bucket;

typedef struct slo {
    cg_slo_def d;
    bucket b[MAX_BUCKETS];
    int fast_alert, slow_alert;
    int fallback;
    int64_t quiet_since_ms; /* last time an alert was seen; for hold-down */
    int64_t burn[4];        /* fast long/short, slow long/short, milli */
} slo;

struct cg_slos {
    pthread_mutex_t mu;
    slo *v;
    size_t n;
};

void cg_slo_def_defaults(cg_slo_def *d) {
    memset(d, 0, sizeof *d);
    d->fast_long_ms = 60 * MINUTE_MS;
    d->fast_short_ms = 5 * MINUTE_MS;
    d->fast_factor_milli = 2000;
    d->slow_long_ms = 360 * MINUTE_MS;
    d->slow_short_ms = 30 * MINUTE_MS;
    d->slow_factor_milli = 0; /* derived from alert_threshold / target */
    d->hold_down_ms = 30 * MINUTE_MS;
}

cg_slos *cg_slos_new(const cg_slo_def *defs, size_t n) {
    cg_slos *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->v = n ? calloc(n, sizeof *s->v) : NULL;
    if (n && !s->v) {
        free(s);
        return NULL;
    }
    s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    for (size_t i = 0; i < n; i++) {
        slo *o = &s->v[i];
        o->d = defs[i];
        if (o->d.slow_factor_milli <= 0) {
            int64_t f = o->d.target > 0 ? o->d.alert_threshold * 1000 / o->d.target : 1000;
            o->d.slow_factor_milli = f < 1000 ? 1000 : f;
        }
        for (int k = 0; k < MAX_BUCKETS; k++)
            o->b[k].minute = -1;
    }
    return s;
}

void cg_slos_free(cg_slos *s) {
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->v);
    free(s);
}

static int matches(const slo *o, const char *segment) {
    return !o->d.segment[0] || (segment && strcmp(o->d.segment, segment) == 0);
}

void cg_slos_record(cg_slos *s, const char *segment, int64_t cost, int64_t now_ms) {
    int64_t minute = now_ms / MINUTE_MS;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        slo *o = &s->v[i];
        if (!matches(o, segment))
            continue;
        bucket *b = &o->b[minute % MAX_BUCKETS];
        if (b->minute != minute) {
            b->minute = minute;
            b->cost = 0;
            b->count = 0;
        }
        b->cost += cost;
        b->count++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Burn rate over the window ending at now_ms, in milli (1000 = on target). */
static int64_t burn(const slo *o, int64_t now_ms, int64_t window_ms) {
    int64_t now_min = now_ms / MINUTE_MS;
    int64_t nmin = window_ms / MINUTE_MS;
    if (nmin < 1)
        nmin = 1;
    if (nmin > MAX_BUCKETS)
        nmin = MAX_BUCKETS;
    __int128 cost = 0;
    int64_t count = 0;
    for (int64_t m = now_min - nmin + 1; m <= now_min; m++) {
        const bucket *b = &o->b[m % MAX_BUCKETS];
        if (m >= 0 && b->minute == m) {
            cost += b->cost;
            count += b->count;
        }
    }
    if (o->d.target <= 0)
        return 0;
    if (o->d.kind == CG_SLO_AVG_PER_QUERY) {
        if (count == 0)
            return 0;
        return (int64_t)(cost * 1000 / ((__int128)count * o->d.target));
    }
    /* rate over the window relative to target per day */
    return (int64_t)(cost * 1000 * DAY_MS / ((__int128)nmin * MINUTE_MS * o->d.target));
}

/* Events are collected under the lock and delivered after it: fn may block
 * (a webhook POST), and the request path takes this lock. */
static void emit(cg_slo_event *buf, size_t *n, cg_slo_event_fn fn, void *arg,
                 const cg_slo_event *ev) {
    if (buf)
        buf[(*n)++] = *ev;
    else if (fn)
        fn(arg, ev); /* no memory for the buffer: deliver under the lock */
}

void cg_slos_evaluate(cg_slos *s, int64_t now_ms, cg_slo_event_fn fn, void *arg) {
    /* at most 3 events per SLO: each pair's transition and the fallback's */
    cg_slo_event *evs = s->n ? malloc(s->n * 3 * sizeof *evs) : NULL;
    size_t nev = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        slo *o = &s->v[i];
        const cg_slo_def *d = &o->d;
        o->burn[0] = burn(o, now_ms, d->fast_long_ms);
        o->burn[1] = burn(o, now_ms, d->fast_short_ms);
        o->burn[2] = burn(o, now_ms, d->slow_long_ms);
        o->burn[3] = burn(o, now_ms, d->slow_short_ms);
        int fast = o->burn[0] >= d->fast_factor_milli && o->burn[1] >= d->fast_factor_milli;
        int slow = o->burn[2] >= d->slow_factor_milli && o->burn[3] >= d->slow_factor_milli;
        const char *pairs[2] = {"fast", "slow"};
        int now_alert[2] = {fast, slow};
        int *was[2] = {&o->fast_alert, &o->slow_alert};
        for (int p = 0; p < 2; p++) {
            if (now_alert[p] == *was[p])
                continue;
            *was[p] = now_alert[p];
            cg_slo_event ev = {
                .kind = now_alert[p] ? CG_SLO_EV_ALERT_FIRED : CG_SLO_EV_ALERT_CLEARED,
                .slo = d->name,
                .segment = d->segment,
                .pair = pairs[p],
                .burn_long_milli = o->burn[p * 2],
                .burn_short_milli = o->burn[p * 2 + 1],
                .factor_milli = p == 0 ? d->fast_factor_milli : d->slow_factor_milli,
                .at_ms = now_ms,
            };
            emit(evs, &nev, fn, arg, &ev);
        }
        if (fast || slow)
            o->quiet_since_ms = now_ms;
        if (d->fallback) {
            int want = o->fallback;
            if ((fast || slow) && !o->fallback)
                want = 1;
            else if (!fast && !slow && o->fallback && now_ms - o->quiet_since_ms >= d->hold_down_ms)
                want = 0;
            if (want != o->fallback) {
                o->fallback = want;
                cg_slo_event ev = {.kind = want ? CG_SLO_EV_FALLBACK_ON : CG_SLO_EV_FALLBACK_OFF,
                                   .slo = d->name,
                                   .segment = d->segment,
                                   .pair = "",
                                   .burn_long_milli = o->burn[0],
                                   .burn_short_milli = o->burn[1],
                                   .factor_milli = d->fast_factor_milli,
                                   .at_ms = now_ms};
                emit(evs, &nev, fn, arg, &ev);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; fn && i < nev; i++)
        fn(arg, &evs[i]); /* names point into the SLO definitions, which never change */
    free(evs);
}

int cg_slos_fallback(cg_slos *s, const char *segment) {
    int on = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !on; i++)
        on = s->v[i].fallback && matches(&s->v[i], segment);
    pthread_mutex_unlock(&s->mu);
    return on;
}

size_t cg_slos_count(const cg_slos *s) {
    return s->n;
}

void cg_slos_status(cg_slos *s, size_t i, cg_slo_status *out) {
    pthread_mutex_lock(&s->mu);
    const slo *o = &s->v[i];
    out->name = o->d.name;
    out->segment = o->d.segment;
    out->burn_fast_long = o->burn[0];
    out->burn_fast_short = o->burn[1];
    out->burn_slow_long = o->burn[2];
    out->burn_slow_short = o->burn[3];
    out->fast_alert = o->fast_alert;
    out->slow_alert = o->slow_alert;
    out->fallback = o->fallback;
    pthread_mutex_unlock(&s->mu);
}
