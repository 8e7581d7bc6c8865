/* eval: offline evaluation of routing policies (tier-eval, tier-train).
 *
 * Owns: the deterministic train/validation/test split by prompt hash, the
 * replay data sets (RouteLLM's MMLU, GSM8K and MT-bench correctness and
 * judgements, RouterArena's per-model scores and token usage) loaded into
 * one item shape, their per-item cost in nano-USD from our price table, and
 * the routing metrics of the RouteLLM paper (Ong et al., "RouteLLM: Learning
 * to Route LLMs with Preference Data", arXiv:2406.18665v4, section 3.2):
 *
 *   c(R)   share of calls to the strong model,
 *   r(R)   mean response quality,
 *   PGR    (r(R) - r(weak)) / (r(strong) - r(weak)),
 *   APGR   integral over c in [0,1] of PGR, the area between the router's
 *          call-performance curve and the weak model's line,
 *   CPT(x) the minimum share of strong calls at which PGR reaches x.
 *
 * The curve is computed exactly: a policy's scores are sorted, every
 * distinct threshold is an operating point (tied scores move together), and
 * between two operating points quality and cost are linear (a random mix of
 * the two thresholds achieves them). APGR integrates that piecewise-linear
 * curve (the paper approximates the integral with 10 points; RouteLLM's
 * evaluate.py with the trapezoid over 11 quantile thresholds); CPT(x) is the
 * first share on it where PGR >= x (RouteLLM's code interpolates the same
 * way, np.interp over its 11 points).
 */
#ifndef CG_ROUTE_EVAL_H
#define CG_ROUTE_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "cost/prices.h"
#include "route/classify.h"

/* ------------------------------------------------------------------ */
/* Split                                                                */

typedef enum { CG_SPLIT_TRAIN = 0, CG_SPLIT_VAL = 1, CG_SPLIT_TEST = 2 } cg_split;
const char *cg_split_name(cg_split s);
/* By a salted 64-bit hash of the prompt text: buckets 0-49 train, 50-69
 * validation, 70-99 test. Equal prompts land in the same split. */
cg_split cg_eval_split(const char *text, size_t len);
/* Uniform [0,1) from the prompt and a seed (random routing, subsampling). */
double cg_eval_unit(const char *text, size_t len, uint64_t seed);

/* ------------------------------------------------------------------ */
/* Data                                                                 */

typedef struct cg_eval_item {
    char *prompt; /* what the router sees: the prompt only */
    size_t len;
    char group[64];          /* MMLU subject, RouterArena source, MT-bench category: reports only */
    double q_weak, q_strong; /* quality of each model's answer */
    int64_t in_weak, in_strong, out_weak, out_strong; /* tokens (see cost_note) */
    int64_t cost_weak, cost_strong;                   /* nano-USD */
    cg_split split;
} cg_eval_item;

typedef struct cg_eval_set {
    char name[32];
    char weak[96], strong[96];               /* model names as in the data */
    char quality[64];                        /* what q means */
    char price_weak[160], price_strong[160]; /* where each price came from */
    char cost_note[256];
    cg_eval_item *items;
    size_t n, cap;
} cg_eval_set;

void cg_eval_set_free(cg_eval_set *s);

/* Names accepted by cg_eval_load. */
#define CG_EVAL_SETS "mmlu,gsm8k,mt-bench,routerarena"

typedef struct cg_eval_load_opts {
    const char *data_dir;          /* .../shared/data */
    const cg_price_table *builtin; /* cg_prices_builtin() */
    const cg_price_table *litellm; /* LiteLLM file table for missing models, or NULL */
    size_t subsample;              /* keep at most N items (by prompt hash), 0 = all */
    int count_tokens;              /* 1: exact cl100k counts (else bytes/4) */
} cg_eval_load_opts;

/* Loads one data set by name and prices it. 0, or -1 with a message. */
int cg_eval_load(const char *name, const cg_eval_load_opts *o, cg_eval_set *out, char *err,
                 size_t errcap);

/* ------------------------------------------------------------------ */
/* Metrics                                                              */

typedef struct cg_curve_pt {
    double share;   /* c: share of strong calls */
    double quality; /* r: mean quality */
    int64_t cost;   /* total nano-USD */
} cg_curve_pt;

typedef struct cg_route_data {
    size_t n;
    const double *q_weak, *q_strong;
    const int64_t *cost_weak, *cost_strong; /* may be NULL: cost 0 */
} cg_route_data;

/* The exact call-performance curve of scores (higher = send to the strong
 * model first): pts[0] is all-weak, the last point all-strong, one point
 * per distinct score in between. pts must hold n + 1 points. 0 / -1 (out of
 * memory or n == 0). */
int cg_route_curve(const cg_route_data *d, const double *score, cg_curve_pt *pts, size_t *npts);

/* PGR of a quality; NaN when the two models tie (no gap). */
double cg_route_pgr(double q, double q_weak, double q_strong);
/* CPT(x) on a curve as a share in [0,1]; NaN when PGR x is never reached. */
double cg_route_cpt(const cg_curve_pt *pts, size_t npts, double q_weak, double q_strong, double x);
/* APGR: the integral of PGR over the share axis; NaN when the models tie. */
double cg_route_apgr(const cg_curve_pt *pts, size_t npts, double q_weak, double q_strong);
/* Total cost at a share on the curve, linear between operating points
 * (an expectation, as a double: for ratios and display only; NaN for a NaN
 * share). */
double cg_route_cost_at(const cg_curve_pt *pts, size_t npts, double share);
/* Quality and cost when exactly the k highest-scored items go to the strong
 * model (ties broken by tiebreak ascending, then index): an achievable
 * operating point with an exact cost. */
void cg_route_at_k(const cg_route_data *d, const size_t *order, size_t k, double *quality,
                   int64_t *cost);
/* The order used by cg_route_at_k: indexes sorted by score descending, then
 * tiebreak ascending, then index. order must hold n. 0 / -1. */
int cg_route_order(const double *score, const uint64_t *tiebreak, size_t n, size_t *order);

#endif
