/* eval: split, call-performance curves and the RouteLLM metrics.
 *
 * Owns: cg_eval_split / cg_eval_unit (salted FNV-1a + splitmix64), the exact
 * curve of a score vector, PGR, CPT, APGR and achievable operating points.
 * Data loading is in eval_data.c. Definitions: eval.h.
 */
#include "route/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_text(const char *p, size_t n, uint64_t seed) {
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ (seed * UINT64_C(0x9e3779b97f4a7c15));
    static const char salt[] = "costgate-tier-split-v1";
    for (size_t i = 0; i < sizeof salt - 1; i++)
        h = (h ^ (unsigned char)salt[i]) * UINT64_C(0x100000001b3);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(0x100000001b3);
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h;
}

const char *cg_split_name(cg_split s) {
    switch (s) {
    case CG_SPLIT_TRAIN:
        return "train";
    case CG_SPLIT_VAL:
        return "val";
    default:
        return "test";
    }
}

cg_split cg_eval_split(const char *text, size_t len) {
    unsigned b = (unsigned)(hash_text(text ? text : "", text ? len : 0, 0) % 100);
    return b < 50 ? CG_SPLIT_TRAIN : b < 70 ? CG_SPLIT_VAL : CG_SPLIT_TEST;
}

double cg_eval_unit(const char *text, size_t len, uint64_t seed) {
    uint64_t h = hash_text(text ? text : "", text ? len : 0, seed + 1);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------ */

typedef struct keyed {
    double s;
    uint64_t t;
    size_t i;
} keyed;

static int keyed_cmp(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static double clean(double s) {
    return isnan(s) ? -INFINITY : s;
}

static keyed *sorted(const double *score, const uint64_t *tiebreak, size_t n) {
    keyed *k = malloc((n ? n : 1) * sizeof *k);
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        k[i].s = clean(score[i]);
        k[i].t = tiebreak ? tiebreak[i] : 0;
        k[i].i = i;
    }
    qsort(k, n, sizeof *k, keyed_cmp);
    return k;
}

int cg_route_order(const double *score, const uint64_t *tiebreak, size_t n, size_t *order) {
    keyed *k = sorted(score, tiebreak, n);
    if (!k)
        return -1;
    for (size_t i = 0; i < n; i++)
        order[i] = k[i].i;
    free(k);
    return 0;
}

static int64_t cost_at(const int64_t *v, size_t i) {
    return v ? v[i] : 0;
}

int cg_route_curve(const cg_route_data *d, const double *score, cg_curve_pt *pts, size_t *npts) {
    *npts = 0;
    if (!d || d->n == 0)
        return -1;
    size_t n = d->n;
    keyed *k = sorted(score, NULL, n);
    if (!k)
        return -1;
    double q = 0;
    int64_t cost = 0;
    for (size_t i = 0; i < n; i++) {
        q += d->q_weak[i];
        cost += cost_at(d->cost_weak, i);
    }
    size_t m = 0;
    pts[m++] = (cg_curve_pt){0.0, q / (double)n, cost};
    size_t done = 0;
    while (done < n) {
        size_t j = done;
        do { /* one group of equal scores */
            size_t i = k[j].i;
            q += d->q_strong[i] - d->q_weak[i];
            cost += cost_at(d->cost_strong, i) - cost_at(d->cost_weak, i);
            j++;
        } while (j < n && k[j].s == k[done].s);
        done = j;
        pts[m++] = (cg_curve_pt){(double)done / (double)n, q / (double)n, cost};
    }
    pts[m - 1].share = 1.0;
    free(k);
    *npts = m;
    return 0;
}

double cg_route_pgr(double q, double q_weak, double q_strong) {
    double gap = q_strong - q_weak;
    if (gap == 0 || !isfinite(gap))
        return NAN;
    return (q - q_weak) / gap;
}

double cg_route_cpt(const cg_curve_pt *pts, size_t npts, double q_weak, double q_strong, double x) {
    const double eps = 1e-12;
    if (npts == 0)
        return NAN;
    double prev = cg_route_pgr(pts[0].quality, q_weak, q_strong);
    if (isnan(prev))
        return NAN;
    if (prev >= x - eps)
        return pts[0].share;
    for (size_t k = 1; k < npts; k++) {
        double cur = cg_route_pgr(pts[k].quality, q_weak, q_strong);
        if (cur >= x - eps) {
            double t = cur > prev ? (x - prev) / (cur - prev) : 1.0;
            if (t < 0)
                t = 0;
            if (t > 1)
                t = 1;
            return pts[k - 1].share + t * (pts[k].share - pts[k - 1].share);
        }
        prev = cur;
    }
    return NAN;
}

double cg_route_apgr(const cg_curve_pt *pts, size_t npts, double q_weak, double q_strong) {
    if (npts < 2 || isnan(cg_route_pgr(0, q_weak, q_strong)))
        return NAN;
    double area = 0;
    for (size_t k = 1; k < npts; k++) {
        double a = cg_route_pgr(pts[k - 1].quality, q_weak, q_strong);
        double b = cg_route_pgr(pts[k].quality, q_weak, q_strong);
        area += (pts[k].share - pts[k - 1].share) * (a + b) / 2;
    }
    return area;
}

double cg_route_cost_at(const cg_curve_pt *pts, size_t npts, double share) {
    if (npts == 0 || isnan(share))
        return NAN;
    if (share <= pts[0].share)
        return (double)pts[0].cost;
    for (size_t k = 1; k < npts; k++) {
        if (share <= pts[k].share) {
            double w = pts[k].share - pts[k - 1].share;
            double t = w > 0 ? (share - pts[k - 1].share) / w : 1.0;
            return (double)pts[k - 1].cost + t * (double)(pts[k].cost - pts[k - 1].cost);
        }
    }
    return (double)pts[npts - 1].cost;
}

void cg_route_at_k(const cg_route_data *d, const size_t *order, size_t k, double *quality,
                   int64_t *cost) {
    double q = 0;
    int64_t c = 0;
    size_t n = d->n;
    if (k > n)
        k = n;
    for (size_t r = 0; r < n; r++) {
        size_t i = order[r];
        int strong = r < k;
        q += strong ? d->q_strong[i] : d->q_weak[i];
        c += strong ? cost_at(d->cost_strong, i) : cost_at(d->cost_weak, i);
    }
    *quality = n ? q / (double)n : 0;
    *cost = c;
}
