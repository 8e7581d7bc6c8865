/* cli: the `costgate tier-train` and `costgate tier-eval` commands.
 *
 * Owns: option parsing, where the data and price files are found, building
 * learned-router training examples (train/validation splits only; the
 * validation metric is APGR), the policy replay on held-out prompts, the
 * printed tables, CSV and JSON outputs, and the --bench timing of the
 * classifier and the learned router on the Arena-Hard prompts.
 */
#include "route/cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/money.h"
#include "cost/prices.h"
#include "route/classify.h"
#include "route/eval.h"
#include "route/learned.h"

#define MAX_SETS 8
#define DEFAULT_BAGS 4
#define CPT_N 3
static const double CPT_X[CPT_N] = {0.5, 0.8, 0.95};

/* ------------------------------------------------------------------ */
/* Shared options and loading                                           */

typedef struct common {
    const char *data_dir;
    char data_buf[4096];
    const char *prices_file;
    char prices_buf[4200];
    char sets[MAX_SETS][32];
    size_t n_sets;
    size_t subsample;
    int no_tokenizer;
    int label_mode; /* -1: choose on validation, 0 needed, 1 weak-fails */
    uint64_t seed;
    size_t bags;
    int quiet;
} common;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --data, else $CG_SHARED_DIR/data, else ../shared/data, else next to the
 * executable's repository (build dir one or two levels down). */
static int find_data_dir(common *c) {
    if (c->data_dir)
        return is_dir(c->data_dir) ? 0 : -1;
    const char *env = getenv("CG_SHARED_DIR");
    if (env && *env) {
        snprintf(c->data_buf, sizeof c->data_buf, "%s/data", env);
        if (is_dir(c->data_buf)) {
            c->data_dir = c->data_buf;
            return 0;
        }
    }
    snprintf(c->data_buf, sizeof c->data_buf, "../shared/data");
    if (is_dir(c->data_buf)) {
        c->data_dir = c->data_buf;
        return 0;
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 4; up++) {
            char *sl = strrchr(exe, '/');
            if (!sl)
                break;
            *sl = '\0';
            snprintf(c->data_buf, sizeof c->data_buf, "%s/../shared/data", exe);
            if (is_dir(c->data_buf)) {
                c->data_dir = c->data_buf;
                return 0;
            }
        }
    }
    return -1;
}

static int parse_sets(common *c, const char *list) {
    c->n_sets = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof c->sets[0] || c->n_sets >= MAX_SETS)
            return -1;
        memcpy(c->sets[c->n_sets], p, n);
        c->sets[c->n_sets][n] = '\0';
        c->n_sets++;
        p += n;
        if (*p == ',')
            p++;
    }
    return c->n_sets ? 0 : -1;
}

static int parse_size_arg(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

typedef struct loaded {
    cg_eval_set set;
    cg_class_result *cls; /* per item */
    int ok;
} loaded;

typedef struct ctx {
    common *c;
    cg_classifier *clf;
    cg_price_table *builtin, *litellm;
    loaded sets[MAX_SETS];
    char names[MAX_SETS][32];
    size_t n;
} ctx;

static void ctx_free(ctx *x) {
    for (size_t i = 0; i < x->n; i++) {
        cg_eval_set_free(&x->sets[i].set);
        free(x->sets[i].cls);
    }
    cg_classifier_free(x->clf);
    cg_prices_free(x->builtin);
    cg_prices_free(x->litellm);
}

static int ctx_init(ctx *x, common *c) {
    memset(x, 0, sizeof *x);
    x->c = c;
    char err[512];
    if (find_data_dir(c) != 0) {
        fprintf(stderr, "costgate: data directory not found (give --data DIR, the folder "
                        "holding routellm/ and routerarena/)\n");
        return -1;
    }
    x->clf = cg_classifier_new(NULL, err, sizeof err);
    x->builtin = cg_prices_builtin();
    if (!x->clf || !x->builtin) {
        fprintf(stderr, "costgate: %s\n", x->clf ? "out of memory" : err);
        return -1;
    }
    if (!c->prices_file) {
        snprintf(c->prices_buf, sizeof c->prices_buf,
                 "%s/prices/litellm_model_prices_and_context_window.json", c->data_dir);
        c->prices_file = access(c->prices_buf, R_OK) == 0 ? c->prices_buf : NULL;
    }
    if (c->prices_file) {
        x->litellm = cg_prices_new();
        if (!x->litellm ||
            cg_prices_load_litellm(x->litellm, c->prices_file, 1, err, sizeof err) < 0) {
            fprintf(stderr, "costgate: %s: %s\n", c->prices_file,
                    x->litellm ? err : "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The loaded set of that name (loading and classifying it on first use). */
static loaded *get_set(ctx *x, const char *name) {
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->names[i], name) == 0)
            return x->sets[i].ok ? &x->sets[i] : NULL;
    if (x->n >= MAX_SETS)
        return NULL;
    loaded *l = &x->sets[x->n];
    snprintf(x->names[x->n], sizeof x->names[0], "%s", name);
    x->n++;
    cg_eval_load_opts lo = {x->c->data_dir, x->builtin, x->litellm, x->c->subsample,
                            !x->c->no_tokenizer};
    char err[512];
    if (cg_eval_load(name, &lo, &l->set, err, sizeof err) != 0) {
        fprintf(stderr, "costgate: %s\n", err);
        return NULL;
    }
    l->cls = calloc(l->set.n, sizeof *l->cls);
    if (!l->cls) {
        fprintf(stderr, "costgate: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < l->set.n; i++) {
        cg_class_input in = {l->set.items[i].prompt, l->set.items[i].len, NULL, 0, NULL, 0, 1, 0};
        cg_classify(x->clf, &in, &l->cls[i]);
    }
    l->ok = 1;
    return l;
}

/* ------------------------------------------------------------------ */
/* Training                                                             */

typedef struct val_arg {
    double *qw, *qs;
    size_t n;
} val_arg;

static double val_apgr(const float *p, size_t n, void *arg) {
    val_arg *v = arg;
    double *s = malloc(n * sizeof *s);
    cg_curve_pt *pts = malloc((n + 1) * sizeof *pts);
    double r = -INFINITY;
    if (s && pts) {
        for (size_t i = 0; i < n; i++)
            s[i] = p[i];
        cg_route_data d = {n, v->qw, v->qs, NULL, NULL};
        size_t np;
        double qw = 0, qs = 0;
        for (size_t i = 0; i < n; i++)
            qw += v->qw[i], qs += v->qs[i];
        if (cg_route_curve(&d, s, pts, &np) == 0) {
            r = cg_route_apgr(pts, np, qw / (double)n, qs / (double)n);
            if (isnan(r))
                r = -INFINITY;
        }
    }
    free(s);
    free(pts);
    return r;
}

static float label_of(const cg_eval_item *it, int weak_fails) {
    if (weak_fails) {
        double y = 1.0 - it->q_weak;
        return (float)(y < 0 ? 0 : y > 1 ? 1 : y);
    }
    return it->q_strong > it->q_weak ? 1.0f : 0.0f;
}

typedef struct train_result {
    cg_learned_report rep[2]; /* per label: 0 needed, 1 weak-fails */
    int tried[2];
    int chosen;
} train_result;

static const char *const LABELS[2] = {"needed", "weak-fails"};

static double best_val(const cg_learned_report *r) {
    double b = -INFINITY;
    for (size_t k = 0; k < r->n_l2; k++)
        if (r->val[k] > b)
            b = r->val[k];
    return b;
}

/* Trains on the train/validation splits of the named sets ("combined":
 * mmlu + gsm8k + routerarena). With no --label, both labels are trained and
 * the one with the better validation APGR is kept (ties: "needed"). */
static cg_learned_model *train_for(ctx *x, const char *name, train_result *res, char *note,
                                   size_t notecap) {
    const char *parts[3];
    size_t np = 0;
    memset(res, 0, sizeof *res);
    if (strcmp(name, "combined") == 0) {
        parts[np++] = "mmlu";
        parts[np++] = "gsm8k";
        parts[np++] = "routerarena";
    } else if (strcmp(name, "mt-bench") == 0) {
        fprintf(stderr, "costgate: mt-bench (80 questions) is evaluation-only; its router is "
                        "the \"combined\" model\n");
        return NULL;
    } else {
        parts[np++] = name;
    }
    size_t ntr = 0, nva = 0;
    for (size_t k = 0; k < np; k++) {
        loaded *l = get_set(x, parts[k]);
        if (!l)
            return NULL;
        for (size_t i = 0; i < l->set.n; i++) {
            ntr += l->set.items[i].split == CG_SPLIT_TRAIN;
            nva += l->set.items[i].split == CG_SPLIT_VAL;
        }
    }
    cg_learned_example *tr = calloc(ntr ? ntr : 1, sizeof *tr);
    cg_learned_example *va = calloc(nva ? nva : 1, sizeof *va);
    const cg_eval_item **tri = calloc(ntr ? ntr : 1, sizeof *tri);
    const cg_eval_item **vai = calloc(nva ? nva : 1, sizeof *vai);
    val_arg v = {calloc(nva ? nva : 1, sizeof(double)), calloc(nva ? nva : 1, sizeof(double)), nva};
    cg_learned_model *best = NULL;
    if (!tr || !va || !tri || !vai || !v.qw || !v.qs) {
        fprintf(stderr, "costgate: out of memory\n");
        goto out;
    }
    size_t a = 0, b = 0;
    for (size_t k = 0; k < np; k++) {
        loaded *l = get_set(x, parts[k]);
        for (size_t i = 0; i < l->set.n; i++) {
            const cg_eval_item *it = &l->set.items[i];
            cg_learned_example *e = it->split == CG_SPLIT_TRAIN ? &tr[a]
                                    : it->split == CG_SPLIT_VAL ? &va[b]
                                                                : NULL;
            if (!e)
                continue;
            e->text = it->prompt;
            e->len = it->len;
            memcpy(e->hand, l->cls[i].feat, sizeof e->hand);
            e->w = 1.0f;
            if (it->split == CG_SPLIT_TRAIN) {
                tri[a++] = it;
            } else {
                vai[b] = it;
                v.qw[b] = it->q_weak;
                v.qs[b] = it->q_strong;
                b++;
            }
        }
    }
    snprintf(
        note, notecap,
        "data=%s train=%zu val=%zu split=prompt-hash(50/20/30) subsample=%zu bags=%zu seed=%llu",
        name, ntr, nva, x->c->subsample, x->c->bags, (unsigned long long)x->c->seed);
    double best_score = -INFINITY;
    for (int lab = 0; lab < 2; lab++) {
        if (x->c->label_mode >= 0 && lab != x->c->label_mode)
            continue;
        for (size_t i = 0; i < ntr; i++)
            tr[i].y = label_of(tri[i], lab);
        for (size_t i = 0; i < nva; i++)
            va[i].y = label_of(vai[i], lab);
        cg_learned_opts o;
        cg_learned_opts_default(&o);
        o.seed = x->c->seed;
        o.bags = (unsigned)x->c->bags;
        o.label = LABELS[lab];
        o.note = note;
        char err[256];
        cg_learned_model *m =
            cg_learned_train(tr, ntr, va, nva, &o, val_apgr, &v, &res->rep[lab], err, sizeof err);
        if (!m) {
            fprintf(stderr, "costgate: training %s: %s\n", name, err);
            cg_learned_free(best);
            best = NULL;
            goto out;
        }
        res->tried[lab] = 1;
        double sc = best_val(&res->rep[lab]);
        if (!best || sc > best_score) {
            cg_learned_free(best);
            best = m;
            best_score = sc;
            res->chosen = lab;
        } else {
            cg_learned_free(m);
        }
    }
out:
    free(tr);
    free(va);
    free(tri);
    free(vai);
    free(v.qw);
    free(v.qs);
    return best;
}

static void print_report(const char *name, const train_result *t) {
    const cg_learned_report *c = &t->rep[t->chosen];
    printf("%s: %zu train / %zu validation prompts\n", name, c->n_train, c->n_val);
    for (int lab = 0; lab < 2; lab++) {
        if (!t->tried[lab])
            continue;
        const cg_learned_report *r = &t->rep[lab];
        printf("  label %-10s validation APGR by L2:", LABELS[lab]);
        for (size_t k = 0; k < r->n_l2; k++)
            printf(" %.0e=%.3f", (double)r->l2[k], r->val[k]);
        printf("\n");
    }
    printf("  chosen: label %s, L2 %.0e%s, %zu non-zero hashed weights\n", LABELS[t->chosen],
           (double)c->chosen_l2, c->refit ? ", refit on train+validation" : "", c->nonzero);
}

static void usage_train(FILE *f) {
    fputs("usage: costgate tier-train [options]\n"
          "\n"
          "Trains the learned router (P(strong model needed | prompt): logistic regression\n"
          "over hashed word 1-2-grams plus the classifier's hand features) from per-model\n"
          "correctness data, one model file per data set. Only the train (50%) and\n"
          "validation (20%) splits are used (split by a hash of the prompt); L2 is chosen\n"
          "by validation APGR, then the model is refit on train+validation. The test\n"
          "split (30%) is left for tier-eval. Deterministic for equal options.\n"
          "\n"
          "  --data DIR        data folder (routellm/, routerarena/, prices/); default\n"
          "                    $CG_SHARED_DIR/data, then ../shared/data\n"
          "  --datasets LIST   comma list of mmlu,gsm8k,routerarena,combined\n"
          "                    (default: all four; combined = the three pooled, the\n"
          "                    model tier-eval uses for mt-bench)\n"
          "  --out-dir DIR     where NAME.model files go (default var/tier-models)\n"
          "  --label KIND      what the model predicts: needed (strong right, weak wrong),\n"
          "                    weak-fails (1 - weak quality) or auto (default: both are\n"
          "                    trained, the better by validation APGR is kept)\n"
          "  --subsample N     keep at most N prompts per data set (by prompt hash)\n"
          "  --seed N          shuffle seed (default 1)\n"
          "  --bags N          independent shuffles averaged into the model (default 4)\n"
          "  --prices FILE     LiteLLM price file for models missing from the built-in\n"
          "                    table (default DATA/prices/litellm_...json)\n"
          "  --no-tokenizer    estimate tokens as bytes/4 instead of cl100k_base\n"
          "  -h, --help        this text\n",
          f);
}

static int mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

enum {
    O_DATA = 1000,
    O_SETS,
    O_OUT,
    O_LABEL,
    O_SUB,
    O_SEED,
    O_PRICES,
    O_NOTOK,
    O_MODELS,
    O_CSV,
    O_JSON,
    O_SEEDS,
    O_BENCH,
    O_ROUNDS,
    O_BAGS
};

static int common_opt(common *c, int o, const char *arg) {
    switch (o) {
    case O_DATA:
        c->data_dir = arg;
        return 0;
    case O_SETS:
        return parse_sets(c, arg);
    case O_LABEL:
        if (strcmp(arg, "needed") == 0)
            c->label_mode = 0;
        else if (strcmp(arg, "weak-fails") == 0)
            c->label_mode = 1;
        else if (strcmp(arg, "auto") == 0)
            c->label_mode = -1;
        else
            return -1;
        return 0;
    case O_SUB:
        return parse_size_arg(arg, &c->subsample);
    case O_SEED: {
        size_t v;
        if (parse_size_arg(arg, &v) != 0)
            return -1;
        c->seed = v ? v : 1;
        return 0;
    }
    case O_PRICES:
        c->prices_file = arg;
        return 0;
    case O_BAGS:
        return parse_size_arg(arg, &c->bags) != 0 || c->bags < 1 || c->bags > 64 ? -1 : 0;
    case O_NOTOK:
        c->no_tokenizer = 1;
        return 0;
    default:
        return -1;
    }
}

/* clang-format off */
#define COMMON_LONG                                                        \
    {"data", required_argument, 0, O_DATA},                                \
    {"datasets", required_argument, 0, O_SETS},                            \
    {"label", required_argument, 0, O_LABEL},                              \
    {"subsample", required_argument, 0, O_SUB},                            \
    {"seed", required_argument, 0, O_SEED},                                \
    {"bags", required_argument, 0, O_BAGS},                                \
    {"prices", required_argument, 0, O_PRICES},                            \
    {"no-tokenizer", no_argument, 0, O_NOTOK},                             \
    {"help", no_argument, 0, 'h'}
/* clang-format on */

int cg_tier_train_main(int argc, char **argv) {
    common c = {.seed = 1, .label_mode = -1, .bags = DEFAULT_BAGS};
    const char *out_dir = "var/tier-models";
    static const struct option opts[] = {
        COMMON_LONG, {"out-dir", required_argument, 0, O_OUT}, {0, 0, 0, 0}};
    parse_sets(&c, "mmlu,gsm8k,routerarena,combined");
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            usage_train(stdout);
            return 0;
        }
        if (o == O_OUT) {
            out_dir = optarg;
            continue;
        }
        if (o == '?' || common_opt(&c, o, optarg) != 0) {
            if (o != '?')
                fprintf(stderr, "costgate tier-train: bad value for an option\n");
            usage_train(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage_train(stderr);
        return 2;
    }
    ctx x;
    int rc = 1;
    if (ctx_init(&x, &c) != 0)
        goto out;
    if (mkdirs(out_dir) != 0) {
        fprintf(stderr, "costgate: %s: %s\n", out_dir, strerror(errno));
        goto out;
    }
    printf("tier-train: data %s, label %s, seed %llu\n", c.data_dir,
           c.label_mode < 0 ? "chosen on validation" : LABELS[c.label_mode],
           (unsigned long long)c.seed);
    for (size_t i = 0; i < c.n_sets; i++) {
        train_result rep;
        char note[200], path[4200], err[512];
        cg_learned_model *m = train_for(&x, c.sets[i], &rep, note, sizeof note);
        if (!m)
            goto out;
        snprintf(path, sizeof path, "%s/%s.model", out_dir, c.sets[i]);
        int s = cg_learned_save(m, path, err, sizeof err);
        cg_learned_free(m);
        if (s != 0) {
            fprintf(stderr, "costgate: %s\n", err);
            goto out;
        }
        print_report(c.sets[i], &rep);
        struct stat st;
        printf("  wrote %s (%lld bytes)\n", path,
               stat(path, &st) == 0 ? (long long)st.st_size : -1LL);
    }
    rc = 0;
out:
    ctx_free(&x);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                           */

typedef struct metrics {
    double cpt[CPT_N];
    double apgr;
    double cost80; /* cost at CPT(80%) as a share of the all-strong cost */
} metrics;

typedef struct eval_data {
    size_t n;
    double *qw, *qs;
    int64_t *cw, *cs;
    const cg_eval_item **it;
    const cg_class_result **cls;
    double q_weak, q_strong;
    int64_t c_weak, c_strong;
    cg_curve_pt *pts; /* scratch, n + 1 */
} eval_data;

static void eval_data_free(eval_data *e) {
    free(e->qw);
    free(e->qs);
    free(e->cw);
    free(e->cs);
    free(e->it);
    free(e->cls);
    free(e->pts);
}

static int metrics_of(eval_data *e, const double *score, metrics *m, size_t *npts) {
    cg_route_data d = {e->n, e->qw, e->qs, e->cw, e->cs};
    if (cg_route_curve(&d, score, e->pts, npts) != 0)
        return -1;
    for (int k = 0; k < CPT_N; k++)
        m->cpt[k] = cg_route_cpt(e->pts, *npts, e->q_weak, e->q_strong, CPT_X[k]);
    m->apgr = cg_route_apgr(e->pts, *npts, e->q_weak, e->q_strong);
    m->cost80 =
        e->c_strong ? cg_route_cost_at(e->pts, *npts, m->cpt[1]) / (double)e->c_strong : NAN;
    return 0;
}

/* "12.3456" USD with 4 decimals, rounded half up, from nano-USD. */
static const char *usd4(int64_t nano, char *buf, size_t cap) {
    int neg = nano < 0;
    uint64_t a = neg ? (uint64_t)(-(nano + 1)) + 1 : (uint64_t)nano;
    uint64_t units = (a + 50000) / 100000; /* 1e-4 USD */
    snprintf(buf, cap, "%s%llu.%04llu", neg ? "-" : "", (unsigned long long)(units / 10000),
             (unsigned long long)(units % 10000));
    return buf;
}

static void pct(char *buf, size_t cap, double v) {
    if (isnan(v))
        snprintf(buf, cap, "%s", "never");
    else
        snprintf(buf, cap, "%.1f%%", v * 100);
}

typedef struct policy {
    const char *name;
    double *score;
    metrics m;
    size_t *order;
} policy;

typedef struct eval_out {
    FILE *csv;
    json_t *json;
} eval_out;

static void csv_curve(eval_out *out, const char *set, const char *pol, eval_data *e, size_t npts) {
    if (!out->csv)
        return;
    for (size_t k = 0; k < npts; k++) {
        char c[40];
        fprintf(out->csv, "%s,%s,%zu,%.6f,%.6f,%.6f,%s\n", set, pol, k, e->pts[k].share,
                e->pts[k].quality, cg_route_pgr(e->pts[k].quality, e->q_weak, e->q_strong),
                cg_money_fmt(e->pts[k].cost, c, sizeof c));
    }
}

static json_t *jnum(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *metrics_json(const metrics *m) {
    json_t *o = json_object();
    json_object_set_new(o, "cpt50", jnum(m->cpt[0]));
    json_object_set_new(o, "cpt80", jnum(m->cpt[1]));
    json_object_set_new(o, "cpt95", jnum(m->cpt[2]));
    json_object_set_new(o, "apgr", jnum(m->apgr));
    json_object_set_new(o, "cost_at_cpt80", jnum(m->cost80));
    return o;
}

static void print_metric_row(const char *name, const metrics *m) {
    char a[16], b[16], c[16], d[16];
    pct(a, sizeof a, m->cpt[0]);
    pct(b, sizeof b, m->cpt[1]);
    pct(c, sizeof c, m->cpt[2]);
    pct(d, sizeof d, m->cost80);
    printf("  %-30s %11s %11s %11s %13.3f %9s\n", name, a, b, c, m->apgr, d);
}

static cg_learned_model *model_for(ctx *x, const char *set, const char *model_dir, char *desc,
                                   size_t cap) {
    const char *mname = strcmp(set, "mt-bench") == 0 ? "combined" : set;
    if (model_dir) {
        char path[4200], err[600];
        snprintf(path, sizeof path, "%s/%s.model", model_dir, mname);
        cg_learned_model *m = cg_learned_load(path, err, sizeof err);
        if (!m) {
            fprintf(stderr, "costgate: %s\n", err);
            return NULL;
        }
        cg_learned_info inf;
        cg_learned_get_info(m, &inf);
        snprintf(desc, cap, "%.300s (label %s, L2 %.0e, %zu weights; %.150s)", path, inf.label,
                 (double)inf.l2, inf.nonzero, inf.note);
        return m;
    }
    train_result rep;
    char note[200];
    cg_learned_model *m = train_for(x, mname, &rep, note, sizeof note);
    if (m) {
        snprintf(desc, cap,
                 "trained in-process on %s train+validation (no --model-dir; label %s, L2 %.0e "
                 "chosen by validation APGR)",
                 mname, LABELS[rep.chosen], (double)rep.rep[rep.chosen].chosen_l2);
        if (!x->c->quiet)
            print_report(mname, &rep);
    }
    return m;
}

static int eval_one(ctx *x, const char *set, const char *model_dir, size_t seeds, eval_out *out) {
    loaded *l = get_set(x, set);
    if (!l)
        return -1;
    int eval_all = strcmp(set, "mt-bench") == 0; /* never trained on: every question is held out */
    eval_data e = {0};
    policy pol[4] = {{"rules (classifier score)", NULL, {{0}, 0, 0}, NULL},
                     {"learned router", NULL, {{0}, 0, 0}, NULL},
                     {"oracle (bound, not a router)", NULL, {{0}, 0, 0}, NULL},
                     {"random (seed 1)", NULL, {{0}, 0, 0}, NULL}};
    double *rs = NULL;
    uint64_t *tb = NULL;
    metrics *rm = NULL;
    cg_learned_model *model = NULL;
    char desc[768] = "";
    int rc = -1;
    for (size_t i = 0; i < l->set.n; i++)
        e.n += eval_all || l->set.items[i].split == CG_SPLIT_TEST;
    size_t n = e.n;
    if (n == 0) {
        fprintf(stderr, "costgate: %s: no held-out prompts\n", set);
        return -1;
    }
    e.qw = calloc(n, sizeof *e.qw);
    e.qs = calloc(n, sizeof *e.qs);
    e.cw = calloc(n, sizeof *e.cw);
    e.cs = calloc(n, sizeof *e.cs);
    e.it = calloc(n, sizeof *e.it);
    e.cls = calloc(n, sizeof *e.cls);
    e.pts = calloc(n + 1, sizeof *e.pts);
    rs = calloc(n, sizeof *rs);
    tb = calloc(n, sizeof *tb);
    rm = calloc(seeds ? seeds : 1, sizeof *rm);
    for (int p = 0; p < 4; p++) {
        pol[p].score = calloc(n, sizeof(double));
        pol[p].order = calloc(n, sizeof(size_t));
    }
    if (!e.qw || !e.qs || !e.cw || !e.cs || !e.it || !e.cls || !e.pts || !rs || !tb || !rm ||
        !pol[0].score || !pol[1].score || !pol[2].score || !pol[3].score || !pol[0].order ||
        !pol[1].order || !pol[2].order || !pol[3].order) {
        fprintf(stderr, "costgate: out of memory\n");
        goto out;
    }
    size_t j = 0;
    for (size_t i = 0; i < l->set.n; i++) {
        const cg_eval_item *it = &l->set.items[i];
        if (!(eval_all || it->split == CG_SPLIT_TEST))
            continue;
        e.it[j] = it;
        e.cls[j] = &l->cls[i];
        e.qw[j] = it->q_weak;
        e.qs[j] = it->q_strong;
        e.cw[j] = it->cost_weak;
        e.cs[j] = it->cost_strong;
        e.q_weak += it->q_weak;
        e.q_strong += it->q_strong;
        e.c_weak += it->cost_weak;
        e.c_strong += it->cost_strong;
        j++;
    }
    e.q_weak /= (double)n;
    e.q_strong /= (double)n;
    model = model_for(x, set, model_dir, desc, sizeof desc);
    if (!model)
        goto out;
    /* tie-break for the exact operating points: a hash of the prompt */
    for (size_t i = 0; i < n; i++) {
        pol[0].score[i] = e.cls[i]->score;
        cg_learned_input in = {e.it[i]->prompt, e.it[i]->len, e.cls[i]->feat, NULL, 0};
        pol[1].score[i] = cg_learned_predict(model, &in);
        pol[2].score[i] = e.qs[i] - e.qw[i];
        pol[3].score[i] = cg_eval_unit(e.it[i]->prompt, e.it[i]->len, 1);
        tb[i] = (uint64_t)(cg_eval_unit(e.it[i]->prompt, e.it[i]->len, 99) * 9007199254740992.0);
    }
    for (int p = 0; p < 4; p++)
        if (cg_route_order(pol[p].score, tb, n, pol[p].order) != 0) {
            fprintf(stderr, "costgate: out of memory\n");
            goto out;
        }
    size_t npts;
    for (int p = 0; p < 4; p++) {
        if (metrics_of(&e, pol[p].score, &pol[p].m, &npts) != 0)
            goto out;
        csv_curve(out, set,
                  p == 0   ? "rules"
                  : p == 1 ? "learned"
                  : p == 2 ? "oracle"
                           : "random1",
                  &e, npts);
    }
    /* Random routing: seeds 1..K, mean and 1.96 sd (RouteLLM reports "Random (95% CI)"). */
    metrics rmean = {{0}, 0, 0}, rsd = {{0}, 0, 0};
    for (size_t s = 0; s < seeds; s++) {
        for (size_t i = 0; i < n; i++)
            rs[i] = cg_eval_unit(e.it[i]->prompt, e.it[i]->len, s + 1);
        if (metrics_of(&e, rs, &rm[s], &npts) != 0)
            goto out;
        for (int k = 0; k < CPT_N; k++)
            rmean.cpt[k] += rm[s].cpt[k] / (double)seeds;
        rmean.apgr += rm[s].apgr / (double)seeds;
        rmean.cost80 += rm[s].cost80 / (double)seeds;
    }
    for (size_t s = 0; s < seeds; s++) {
        for (int k = 0; k < CPT_N; k++)
            rsd.cpt[k] += (rm[s].cpt[k] - rmean.cpt[k]) * (rm[s].cpt[k] - rmean.cpt[k]);
        rsd.apgr += (rm[s].apgr - rmean.apgr) * (rm[s].apgr - rmean.apgr);
    }
    for (int k = 0; k < CPT_N; k++)
        rsd.cpt[k] = seeds > 1 ? 1.96 * sqrt(rsd.cpt[k] / (double)(seeds - 1)) : 0;
    rsd.apgr = seeds > 1 ? 1.96 * sqrt(rsd.apgr / (double)(seeds - 1)) : 0;

    /* Header. */
    char a[40], b[40];
    printf("\n== %s: %zu %s prompts", set, n,
           eval_all ? "(all; never used for training)"
                    : "held-out (test split, 30% by prompt hash)");
    printf(" ==\n");
    printf("  weak   %-38s quality %.4f  cost $%s\n", l->set.weak, e.q_weak,
           usd4(e.c_weak, a, sizeof a));
    printf("  strong %-38s quality %.4f  cost $%s\n", l->set.strong, e.q_strong,
           usd4(e.c_strong, b, sizeof b));
    printf("  quality: %s\n  price weak: %s\n  price strong: %s\n  cost: %s\n", l->set.quality,
           l->set.price_weak, l->set.price_strong, l->set.cost_note);
    printf("  learned model: %s\n", desc);
    if (e.q_strong <= e.q_weak)
        printf("  note: the \"strong\" model is not better here (no gap to recover): PGR, CPT "
               "and APGR are undefined or meaningless\n");

    printf("\n  %-30s %11s %11s %11s %13s %9s\n", "policy (share of strong calls)", "CPT(50%)",
           "CPT(80%)", "CPT(95%)", "APGR", "cost@80%");
    {
        char c50[32], c80[32], c95[32], ap[32], c8[16];
        snprintf(c50, sizeof c50, "%.1f±%.1f%%", rmean.cpt[0] * 100, rsd.cpt[0] * 100);
        snprintf(c80, sizeof c80, "%.1f±%.1f%%", rmean.cpt[1] * 100, rsd.cpt[1] * 100);
        snprintf(c95, sizeof c95, "%.1f±%.1f%%", rmean.cpt[2] * 100, rsd.cpt[2] * 100);
        snprintf(ap, sizeof ap, "%.3f±%.3f", rmean.apgr, rsd.apgr);
        pct(c8, sizeof c8, rmean.cost80);
        char name[48];
        snprintf(name, sizeof name, "random (%zu seeds, 95%% CI)", seeds);
        printf("  %-30s %11s %11s %11s %13s %9s\n", name, c50, c80, c95, ap, c8);
    }
    print_metric_row(pol[0].name, &pol[0].m);
    print_metric_row(pol[1].name, &pol[1].m);
    print_metric_row(pol[2].name, &pol[2].m);

    /* The curve at deciles of strong calls: exact operating points. */
    cg_route_data d = {n, e.qw, e.qs, e.cw, e.cs};
    printf("\n  cost-quality curve at deciles of strong calls (exact operating points; cost in "
           "USD per 1k prompts and as %% of all-strong)\n");
    printf("  %6s | %-29s | %-29s | %-29s\n", "strong", "learned router",
           "rules (classifier score)", "random (seed 1)");
    printf("  %6s | %-29s | %-29s | %-29s\n", "calls", "qual.   PGR     $/1k  %cost",
           "qual.   PGR     $/1k  %cost", "qual.   PGR     $/1k  %cost");
    const int cols[3] = {1, 0, 3};
    for (int t = 0; t <= 10; t++) {
        size_t k = (size_t)((double)n * t / 10.0 + 0.5);
        printf("  %5d%% ", t * 10);
        for (int c = 0; c < 3; c++) {
            double q;
            int64_t cost;
            cg_route_at_k(&d, pol[cols[c]].order, k, &q, &cost);
            char u[40];
            double share_cost = e.c_strong ? 100.0 * (double)cost / (double)e.c_strong : 0;
            int64_t per1k = (int64_t)((__int128)cost * 1000 / (__int128)n);
            double pg = cg_route_pgr(q, e.q_weak, e.q_strong);
            printf("| %.3f %5.2f %8s %5.1f%% ", q, fabs(pg) < 1e-9 ? 0.0 : pg,
                   usd4(per1k, u, sizeof u), share_cost);
        }
        printf("\n");
    }

    /* The classifier's own tier decisions as operating points. */
    printf("\n  classifier tiers as routes:");
    size_t tiers[CG_TIER_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        tiers[e.cls[i]->tier]++;
    for (int t = 0; t < CG_TIER_COUNT; t++)
        printf(" %s %zu", cg_tier_name(t), tiers[t]);
    printf("\n");
    json_t *ops = json_array();
    for (int floor = CG_TIER_MEDIUM; floor <= CG_TIER_LARGE; floor++) {
        double q = 0;
        int64_t cost = 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int strong = e.cls[i]->tier >= floor;
            k += strong;
            q += strong ? e.qs[i] : e.qw[i];
            cost += strong ? e.cs[i] : e.cw[i];
        }
        q /= (double)n;
        char u[40];
        printf("    strong iff tier >= %-6s: strong share %5.1f%%, quality %.3f, PGR %5.2f, "
               "cost $%s (%.1f%% of all-strong)\n",
               cg_tier_name(floor), 100.0 * (double)k / (double)n, q,
               cg_route_pgr(q, e.q_weak, e.q_strong), usd4(cost, u, sizeof u),
               e.c_strong ? 100.0 * (double)cost / (double)e.c_strong : 0);
        json_t *op = json_object();
        json_object_set_new(op, "strong_from_tier", json_string(cg_tier_name(floor)));
        json_object_set_new(op, "share", json_real((double)k / (double)n));
        json_object_set_new(op, "quality", json_real(q));
        json_object_set_new(op, "pgr", jnum(cg_route_pgr(q, e.q_weak, e.q_strong)));
        json_array_append_new(ops, op);
    }

    if (out->json) {
        json_t *o = json_object();
        json_object_set_new(o, "n", json_integer((json_int_t)n));
        json_object_set_new(o, "weak", json_string(l->set.weak));
        json_object_set_new(o, "strong", json_string(l->set.strong));
        json_object_set_new(o, "q_weak", json_real(e.q_weak));
        json_object_set_new(o, "q_strong", json_real(e.q_strong));
        json_object_set_new(o, "cost_weak_nano", json_integer(e.c_weak));
        json_object_set_new(o, "cost_strong_nano", json_integer(e.c_strong));
        json_object_set_new(o, "rules", metrics_json(&pol[0].m));
        json_object_set_new(o, "learned", metrics_json(&pol[1].m));
        json_object_set_new(o, "oracle", metrics_json(&pol[2].m));
        json_t *r = metrics_json(&rmean);
        json_object_set_new(r, "seeds", json_integer((json_int_t)seeds));
        json_object_set_new(r, "ci95", metrics_json(&rsd));
        json_object_set_new(o, "random", r);
        json_object_set_new(o, "rule_tiers", ops);
        ops = NULL;
        json_object_set_new(o, "learned_model", json_string(desc));
        json_object_set_new(json_object_get(out->json, "datasets"), set, o);
    }
    json_decref(ops);
    rc = 0;
out:
    cg_learned_free(model);
    for (int p = 0; p < 4; p++) {
        free(pol[p].score);
        free(pol[p].order);
    }
    free(rs);
    free(tb);
    free(rm);
    eval_data_free(&e);
    return rc;
}

/* ------------------------------------------------------------------ */
/* --bench: classifier and learned-router cost per request              */

typedef struct prompts {
    char **p;
    size_t *len;
    size_t n, cap;
} prompts;

static int add_prompt(prompts *ps, const char *s, size_t n) {
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 512;
        char **np = realloc(ps->p, nc * sizeof *np);
        if (!np)
            return -1;
        ps->p = np;
        size_t *nl = realloc(ps->len, nc * sizeof *nl);
        if (!nl)
            return -1;
        ps->len = nl;
        ps->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = '\0';
    ps->p[ps->n] = c;
    ps->len[ps->n] = n;
    ps->n++;
    return 0;
}

static int load_arena_hard(const char *path, prompts *ps) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t r;
    int rc = 0;
    while ((r = getline(&line, &cap, f)) > 0 && rc == 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)r, 0, &je);
        json_t *pr = json_object_get(o, "prompt");
        if (!pr) { /* older layout: turns[0].content */
            json_t *t = json_array_get(json_object_get(o, "turns"), 0);
            pr = json_object_get(t, "content");
        }
        if (json_is_string(pr))
            rc = add_prompt(ps, json_string_value(pr), json_string_length(pr));
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rc;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_bench(ctx *x, const char *model_dir, size_t rounds) {
    prompts ps = {0};
    char path[4200];
    int rc = 1;
    const char *files[] = {"v0.1_question.jsonl", "v2.0_question.jsonl"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/arena-hard/%s", x->c->data_dir, files[i]);
        if (load_arena_hard(path, &ps) != 0) {
            fprintf(stderr, "costgate: %s: cannot read prompts\n", path);
            goto out;
        }
    }
    if (ps.n == 0) {
        fprintf(stderr, "costgate: no arena-hard prompts\n");
        goto out;
    }
    cg_learned_model *model = NULL;
    if (model_dir) {
        char err[600];
        snprintf(path, sizeof path, "%s/combined.model", model_dir);
        model = cg_learned_load(path, err, sizeof err);
        if (!model)
            fprintf(stderr, "costgate: %s (timing the classifier only)\n", err);
    }
    size_t bytes = 0;
    for (size_t i = 0; i < ps.n; i++)
        bytes += ps.len[i];
    /* Two workloads: every prompt as is, and every prompt cut or repeated
     * to exactly 2048 bytes (prepared before timing). */
    static const char *names[] = {"arena-hard prompts as is", "each cut/repeated to 2 KiB"};
    char *two = malloc(ps.n * 2048);
    double *per = malloc(rounds * sizeof *per);
    if (!two || !per) {
        free(two);
        free(per);
        cg_learned_free(model);
        fprintf(stderr, "costgate: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < ps.n; i++)
        for (size_t k = 0; k < 2048; k++)
            two[i * 2048 + k] = ps.len[i] ? ps.p[i][k % ps.len[i]] : ' ';
    printf("tier-eval --bench: %zu Arena-Hard prompts (v0.1 + v2.0), %zu bytes in all, mean %zu "
           "bytes; %zu rounds, median (min..max) per request\n",
           ps.n, bytes, bytes / ps.n, rounds);
    volatile uint32_t sink = 0;
    volatile float fsink = 0;
    for (int w = 0; w < 2; w++) {
        for (int what = 0; what < (model ? 2 : 1); what++) {
            for (size_t r = 0; r < rounds; r++) {
                double t0 = now_ns();
                for (size_t i = 0; i < ps.n; i++) {
                    const char *s = w ? two + i * 2048 : ps.p[i];
                    size_t n = w ? 2048 : ps.len[i];
                    cg_class_input in = {s, n, NULL, 0, NULL, 0, 1, 0};
                    cg_class_result res;
                    cg_classify(x->clf, &in, &res);
                    sink += (uint32_t)res.tier;
                    if (what == 1) {
                        cg_learned_input li = {s, n, res.feat, NULL, 0};
                        fsink += cg_learned_predict(model, &li);
                    }
                }
                per[r] = (now_ns() - t0) / (double)ps.n;
            }
            qsort(per, rounds, sizeof *per, cmp_double);
            printf("  %-28s %-28s %8.0f ns (%.0f..%.0f)\n", names[w],
                   what ? "classify + learned predict" : "classify", per[rounds / 2], per[0],
                   per[rounds - 1]);
        }
    }
    (void)sink;
    (void)fsink;
    free(two);
    free(per);
    cg_learned_free(model);
    rc = 0;
out:
    for (size_t i = 0; i < ps.n; i++)
        free(ps.p[i]);
    free(ps.p);
    free(ps.len);
    return rc;
}

static void usage_eval(FILE *f) {
    fputs("usage: costgate tier-eval [options]\n"
          "\n"
          "Replays routing policies between a weak and a strong model on real per-model\n"
          "correctness data, deciding from the prompt only, and prints the cost-quality\n"
          "curve and RouteLLM's metrics (arXiv:2406.18665 sec. 3.2): CPT(x) = the share of\n"
          "strong calls needed to recover x of the quality gap (PGR = (q - q_weak) /\n"
          "(q_strong - q_weak)), for x = 50%, 80%, 95%, and APGR = the area under PGR over\n"
          "the share of strong calls. Policies: random (many seeds), the rule-based\n"
          "classifier (its complexity score as the ranking, and its tiers as fixed\n"
          "routes), the learned router, and the oracle as an upper bound. mmlu, gsm8k and\n"
          "routerarena are scored on their test split (30% by prompt hash) only, which\n"
          "tier-train never sees; mt-bench (80 questions) is scored whole with the\n"
          "\"combined\" model, which never sees it. Prices come from the built-in table,\n"
          "else the LiteLLM file (each source is printed).\n"
          "\n"
          "  --data DIR        data folder (default $CG_SHARED_DIR/data, ../shared/data)\n"
          "  --datasets LIST   comma list of mmlu,gsm8k,mt-bench,routerarena (default all)\n"
          "  --model-dir DIR   NAME.model files from tier-train (default: train in-process\n"
          "                    exactly as tier-train would)\n"
          "  --random-seeds N  random-routing repetitions (default 20)\n"
          "  --csv FILE        every curve point: dataset,policy,point,share,quality,pgr,cost_usd\n"
          "  --json FILE       the metrics as JSON\n"
          "  --label KIND      label when training in-process: auto (default) | needed |\n"
          "                    weak-fails (see tier-train --help)\n"
          "  --subsample N     keep at most N prompts per data set (by prompt hash)\n"
          "  --seed N          training shuffle seed (default 1)\n"
          "  --bags N          training shuffles averaged (default 4)\n"
          "  --prices FILE     LiteLLM price file for models missing from the built-in table\n"
          "  --no-tokenizer    estimate tokens as bytes/4 instead of cl100k_base\n"
          "  --bench           instead: time the classifier (and, with --model-dir, the\n"
          "                    learned router) per request on the Arena-Hard prompts\n"
          "  --rounds N        --bench repetitions (default 15)\n"
          "  -h, --help        this text\n",
          f);
}

int cg_tier_eval_main(int argc, char **argv) {
    common c = {.seed = 1, .label_mode = -1, .bags = DEFAULT_BAGS};
    const char *model_dir = NULL, *csv = NULL, *json = NULL;
    size_t seeds = 20, rounds = 15;
    int bench = 0;
    static const struct option opts[] = {COMMON_LONG,
                                         {"model-dir", required_argument, 0, O_MODELS},
                                         {"csv", required_argument, 0, O_CSV},
                                         {"json", required_argument, 0, O_JSON},
                                         {"random-seeds", required_argument, 0, O_SEEDS},
                                         {"bench", no_argument, 0, O_BENCH},
                                         {"rounds", required_argument, 0, O_ROUNDS},
                                         {0, 0, 0, 0}};
    parse_sets(&c, "mmlu,gsm8k,mt-bench,routerarena");
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'h':
            usage_eval(stdout);
            return 0;
        case O_MODELS:
            model_dir = optarg;
            break;
        case O_CSV:
            csv = optarg;
            break;
        case O_JSON:
            json = optarg;
            break;
        case O_SEEDS:
            bad = parse_size_arg(optarg, &seeds) != 0 || seeds < 2 || seeds > 10000;
            break;
        case O_ROUNDS:
            bad = parse_size_arg(optarg, &rounds) != 0 || rounds < 1 || rounds > 1000;
            break;
        case O_BENCH:
            bench = 1;
            break;
        case '?':
            bad = 1;
            break;
        default:
            bad = common_opt(&c, o, optarg) != 0;
        }
        if (bad) {
            if (o != '?')
                fprintf(stderr, "costgate tier-eval: bad value for an option\n");
            usage_eval(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage_eval(stderr);
        return 2;
    }
    ctx x;
    eval_out out = {NULL, NULL};
    int rc = 1;
    if (ctx_init(&x, &c) != 0)
        goto done;
    if (bench) {
        rc = run_bench(&x, model_dir, rounds);
        goto done;
    }
    if (csv) {
        out.csv = fopen(csv, "w");
        if (!out.csv) {
            fprintf(stderr, "costgate: %s: %s\n", csv, strerror(errno));
            goto done;
        }
        fputs("dataset,policy,point,share,quality,pgr,cost_usd\n", out.csv);
    }
    if (json) {
        out.json = json_object();
        json_object_set_new(out.json, "datasets", json_object());
        json_object_set_new(out.json, "split", json_string("prompt-hash 50/20/30, test only"));
    }
    printf("tier-eval: data %s; prices %s\n", c.data_dir,
           c.prices_file ? c.prices_file : "(built-in only)");
    for (size_t i = 0; i < c.n_sets; i++)
        if (eval_one(&x, c.sets[i], model_dir, seeds, &out) != 0)
            goto done;
    if (out.json && json_dump_file(out.json, json, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
        fprintf(stderr, "costgate: %s: cannot write\n", json);
        goto done;
    }
    rc = 0;
done:
    if (out.csv && fclose(out.csv) != 0 && rc == 0) {
        fprintf(stderr, "costgate: %s: write failed\n", csv);
        rc = 1;
    }
    json_decref(out.json);
    ctx_free(&x);
    return rc;
}
