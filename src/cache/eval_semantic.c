/* eval_semantic: `costgate eval semantic` (see eval_semantic.h).
 *
 * Owns: the options, the per-pair cosines and gate verdicts (every rule on
 * its own, so any rule set can be scored afterwards), the counts behind the
 * threshold curves, STS-B's Spearman, the static threshold choice, and the
 * order of a run: load (eval_semantic_data.c), embed or read the vectors,
 * score, split QQP, choose the default threshold on its validation split,
 * run the learned verifier
 * (eval_semantic_verifier.c), then the outputs (eval_semantic_report.c).
 *
 * Protocol (GPTCache's pairwise benchmark): for each pair the first text is
 * the cached query and the second the new query; the cache serves the
 * cached answer when cosine >= threshold and, with the gate, when
 * cg_gate_check passes. Per threshold: hit rate = served duplicates /
 * duplicates, precision = served duplicates / served, false-hit rate =
 * served non-duplicates / non-duplicates.
 */
#include "cache/eval_semantic.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/eval_semantic_internal.h"
#include "cache/gate.h"
#include "core/buf.h"
#include "embed/embed.h"

static const char USAGE[] =
    "usage: costgate eval semantic [options]\n"
    "\n"
    "Measures the semantic cache on public data: the built-in embedder's cosine\n"
    "similarity (STS-B Spearman), and per similarity threshold 0.70..0.99 the hit\n"
    "rate, precision and false-hit rate without and with the second gate\n"
    "(src/cache/gate.c) on GPTCache's QQP pairs and paraphrases, Redis LangCache's\n"
    "near misses and MeanCache's follow-up queries; the effect of each gate rule;\n"
    "a set of adversarial pairs; and the default threshold, chosen on the QQP\n"
    "validation split only: the lowest one where precision with the gate clears\n"
    "the bar by a margin of --margin standard errors with at least 100 hits served\n"
    "and stays at or above the bar at every higher threshold (when none\n"
    "does, the lowest within one standard error of the highest precision); its\n"
    "precision on the held-out test split is reported with a 95%% Wilson interval.\n"
    "Pairwise protocol: the first text of a pair is cached, the second is asked\n"
    "(docs/semantic-cache.md).\n"
    "\n"
    "  --data DIR         data folder (default $CG_SHARED_DIR/data, then ../shared/data)\n"
    "  -m, --model PATH   embedder model (default var/models/use-lite.bin, looked up in\n"
    "                     the current directory, $CG_SOURCE_DIR, then above the binary)\n"
    "  --limit N          at most N pairs of each data set (an even, deterministic\n"
    "                     stride over the file), for a quick run\n"
    "  --threads N        embedding threads (default 2)\n"
    "  --rules LIST       gate rules of the \"gate\" columns: default, all, none or a\n"
    "                     comma list of length,numbers,negation,quotes,entities,\n"
    "                     direction,qword,time,units,code,order,words,swap,deixis,\n"
    "                     person,mentions (default: default, every rule but qword)\n"
    "  --bar P            precision the default threshold must reach (default 0.95)\n"
    "  --margin K         standard errors of validation precision the bar must be\n"
    "                     cleared by (default 1; 0: the point precision)\n"
    "  --rules-at T       threshold of the rule-effect table (default: the chosen one)\n"
    "  --csv DIR          write curves.csv, rules.csv, adversarial.csv and pairs.csv\n"
    "                     (every pair with cosine >= 0.70: label, cosine, the gate's\n"
    "                     verdict and why, both texts, every rule that refuses it on\n"
    "                     its own) into DIR\n"
    "  --json FILE        write every number as JSON\n"
    "  --results-md FILE  replace the block between " MD_BEGIN "\n"
    "                     and " MD_END " in FILE (bench/RESULTS.md)\n"
    "  --vectors FILE     keep the embeddings in FILE: read when it holds the same\n"
    "                     texts (and model file size), else computed and written; for\n"
    "                     re-running after a gate change (about 300 MB for all pairs)\n"
    "\n"
    "The learned verifier (src/cache/verifier.h): QQP is split by connected component\n"
    "of its question graph (no text in two parts; 60%% train, 20%% validation, 20%%\n"
    "test); the operating point (floor, verifier threshold) is chosen on validation\n"
    "and every verifier number reported is on test or on the other data sets.\n"
    "  --verifier FILE    the model to evaluate (default config/semantic-verifier.bin,\n"
    "                     looked up like the embedder model; none found: no verifier)\n"
    "  --no-verifier      evaluate no verifier\n"
    "  --train-verifier FILE  train on the train part, choose the operating point on\n"
    "                     validation, write FILE, and evaluate it (deterministic: the\n"
    "                     same vectors and options give the same file, byte for byte)\n"
    "  --withhold-test    drop the QQP test split's pairs right after the split, before\n"
    "                     any number or file is made: every QQP number (curves, rule\n"
    "                     table, CSV rows) is then train + validation only, and no\n"
    "                     verifier is evaluated; for designing rules without seeing\n"
    "                     the held-out split\n"
    "  --split MODE       components (default) or pairs (by pair index: texts leak\n"
    "                     between the parts; for comparison only)\n"
    "  --verifier-hidden N   tanh units, 0 = logistic regression (default %u)\n"
    "  --verifier-epochs N   training passes (default %u)\n"
    "  --verifier-l2 X       L2 weight decay (default %g)\n"
    "  --verifier-lr X       Adam step size (default %g)\n"
    "  --verifier-seed N     initial weights and shuffles (default %llu)\n"
    "  --verifier-train-floor X  fit on training pairs with cosine >= X (default 0.70)\n"
    "  --verifier-train-gated    fit on training pairs the gate passes only\n"
    "  -q, --quiet        no progress on stderr\n"
    "  -h, --help         this help\n";

/* ------------------------------------------------------------------ */
/* Gate verdicts and metrics                                            */

static uint32_t gate_bits(const texts *t, const pair *p) {
    uint32_t f = FB_COMPUTED;
    const char *a = t->s[p->asked], *c = t->s[p->cached];
    size_t al = t->len[p->asked], cl = t->len[p->cached];
    for (int r = 1; r < CG_GATE_N; r++)
        if (cg_gate_check(a, al, c, cl, CG_GATE_RULE(r), NULL) != CG_GATE_PASS)
            f |= 1u << r;
    if (cg_gate_check(a, al, c, cl, CG_GATE_RULE(CG_GATE_NUMBERS) | CG_GATE_V_DIGITS_ONLY, NULL))
        f |= FB_DIGITS_ONLY;
    if (cg_gate_check(a, al, c, cl, CG_GATE_RULE(CG_GATE_ENTITIES) | CG_GATE_V_ENTITIES_STRICT,
                      NULL))
        f |= FB_ENT_STRICT;
    return f;
}

/* Whether a pair with gate bits f fails the rule set `rules` (a mask with
 * variant bits). */
int es_fails(uint32_t f, unsigned rules) {
    for (int r = 1; r < CG_GATE_N; r++) {
        if (!(rules & CG_GATE_RULE(r)))
            continue;
        uint32_t bit = 1u << r;
        if (r == CG_GATE_NUMBERS && (rules & CG_GATE_V_DIGITS_ONLY))
            bit = FB_DIGITS_ONLY;
        if (r == CG_GATE_ENTITIES && (rules & CG_GATE_V_ENTITIES_STRICT))
            bit = FB_ENT_STRICT;
        if (f & bit)
            return 1;
    }
    return 0;
}

counts es_count_at(const pairset *s, double t, int gated, unsigned rules) {
    counts c = {0, 0};
    for (size_t i = 0; i < s->n; i++) {
        if ((double)s->cos[i] < t)
            continue;
        if (gated && es_fails(s->fail[i], rules))
            continue;
        if (s->p[i].label)
            c.hp++;
        else
            c.hn++;
    }
    return c;
}

double es_ratio(size_t a, size_t b) {
    return b ? (double)a / (double)b : NAN;
}

double es_thr(int k) {
    return (double)k / 100.0;
}

/* Spearman rank correlation with average ranks for ties. */
typedef struct {
    double v;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
    return x < y ? -1 : x > y;
}

static int ranks(const double *v, size_t n, double *r) {
    ranked *t = malloc((n + 1) * sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < n; i++)
        t[i] = (ranked){v[i], i};
    qsort(t, n, sizeof *t, cmp_ranked);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v)
            j++;
        double avg = (double)(i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++)
            r[t[k].i] = avg;
        i = j + 1;
    }
    free(t);
    return 0;
}

static double pearson(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static double spearman(const pairset *s) {
    size_t n = s->n;
    if (n < 2)
        return NAN;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    double r = NAN;
    if (x && y && rx && ry) {
        for (size_t i = 0; i < n; i++)
            x[i] = s->cos[i], y[i] = s->p[i].score;
        if (ranks(x, n, rx) == 0 && ranks(y, n, ry) == 0)
            r = pearson(rx, ry, n);
    }
    free(x), free(y), free(rx), free(ry);
    return r;
}

/* ------------------------------------------------------------------ */
/* Options and lookups                                                  */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* `rel` above the binary's directory (a build directory inside the source
 * tree): 0 with the path in out when found. */
static int above_binary(char *out, size_t cap, const char *rel, int (*ok)(const char *)) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    for (int up = 0; up < 4; up++) {
        char *sl = strrchr(exe, '/');
        if (!sl)
            break;
        *sl = '\0';
        snprintf(out, cap, "%s/%s", exe, rel);
        if (ok(out))
            return 0;
    }
    return -1;
}

/* The data folder: $CG_SHARED_DIR/data, ../shared/data, then the
 * repository's ../shared/data found above the binary. */
static int find_data(char *out, size_t cap) {
    const char *env = getenv("CG_SHARED_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s/data", env);
        if (is_dir(out))
            return 0;
    }
    snprintf(out, cap, "../shared/data");
    if (is_dir(out))
        return 0;
    return above_binary(out, cap, "../shared/data", is_dir);
}

int es_find_source_file(char *out, size_t cap, const char *rel) {
    const char *env = getenv("CG_SOURCE_DIR");
    snprintf(out, cap, "%s", rel);
    if (is_file(out))
        return 0;
    if (env && *env) {
        snprintf(out, cap, "%s/%s", env, rel);
        if (is_file(out))
            return 0;
    }
    return above_binary(out, cap, rel, is_file);
}

/* The model, or else the usual relative path (the error names it). */
static void find_model(char *out, size_t cap) {
    if (es_find_source_file(out, cap, DEFAULT_MODEL) != 0)
        snprintf(out, cap, "%s", DEFAULT_MODEL);
}

static int parse_size(const char *s, size_t *out) {
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || e == s || *e || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

enum {
    O_DATA = 256,
    O_LIMIT,
    O_THREADS,
    O_RULES,
    O_BAR,
    O_MARGIN,
    O_CSV,
    O_JSON,
    O_MD,
    O_VECTORS,
    O_RULES_AT,
    O_VERIFIER,
    O_NO_VERIFIER,
    O_TRAIN,
    O_SPLIT,
    O_V_HIDDEN,
    O_V_EPOCHS,
    O_V_L2,
    O_V_LR,
    O_V_SEED,
    O_V_FLOOR,
    O_V_GATED,
    O_WITHHOLD
};

static int parse_opts(int argc, char **argv, opts *o) {
    static const struct option lo[] = {{"data", required_argument, NULL, O_DATA},
                                       {"model", required_argument, NULL, 'm'},
                                       {"limit", required_argument, NULL, O_LIMIT},
                                       {"threads", required_argument, NULL, O_THREADS},
                                       {"rules", required_argument, NULL, O_RULES},
                                       {"bar", required_argument, NULL, O_BAR},
                                       {"margin", required_argument, NULL, O_MARGIN},
                                       {"csv", required_argument, NULL, O_CSV},
                                       {"json", required_argument, NULL, O_JSON},
                                       {"results-md", required_argument, NULL, O_MD},
                                       {"vectors", required_argument, NULL, O_VECTORS},
                                       {"rules-at", required_argument, NULL, O_RULES_AT},
                                       {"verifier", required_argument, NULL, O_VERIFIER},
                                       {"no-verifier", no_argument, NULL, O_NO_VERIFIER},
                                       {"train-verifier", required_argument, NULL, O_TRAIN},
                                       {"split", required_argument, NULL, O_SPLIT},
                                       {"verifier-hidden", required_argument, NULL, O_V_HIDDEN},
                                       {"verifier-epochs", required_argument, NULL, O_V_EPOCHS},
                                       {"verifier-l2", required_argument, NULL, O_V_L2},
                                       {"verifier-lr", required_argument, NULL, O_V_LR},
                                       {"verifier-seed", required_argument, NULL, O_V_SEED},
                                       {"verifier-train-floor", required_argument, NULL, O_V_FLOOR},
                                       {"verifier-train-gated", no_argument, NULL, O_V_GATED},
                                       {"withhold-test", no_argument, NULL, O_WITHHOLD},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    size_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:qh", lo, NULL)) != -1) {
        switch (c) {
        case O_DATA:
            o->data = optarg;
            break;
        case 'm':
            o->model = optarg;
            break;
        case O_LIMIT:
            if (parse_size(optarg, &o->limit) != 0) {
                fprintf(stderr, "eval semantic: --limit needs a number\n");
                return 2;
            }
            break;
        case O_THREADS:
            if (parse_size(optarg, &v) != 0 || v < 1 || v > 64) {
                fprintf(stderr, "eval semantic: --threads needs 1..64\n");
                return 2;
            }
            o->threads = (int)v;
            break;
        case O_RULES:
            if (cg_gate_rules_parse(optarg, &o->rules) != 0) {
                fprintf(stderr, "eval semantic: --rules: unknown rule in '%s'\n", optarg);
                return 2;
            }
            break;
        case O_BAR: {
            char *e;
            o->bar = strtod(optarg, &e);
            if (e == optarg || *e || !(o->bar > 0 && o->bar <= 1)) {
                fprintf(stderr, "eval semantic: --bar needs a number in (0, 1]\n");
                return 2;
            }
            break;
        }
        case O_MARGIN: {
            char *e;
            o->margin = strtod(optarg, &e);
            if (e == optarg || *e || !(o->margin >= 0 && o->margin <= 5)) {
                fprintf(stderr, "eval semantic: --margin needs a number in [0, 5]\n");
                return 2;
            }
            break;
        }
        case O_CSV:
            o->csv_dir = optarg;
            break;
        case O_JSON:
            o->json_path = optarg;
            break;
        case O_MD:
            o->md_path = optarg;
            break;
        case O_VECTORS:
            o->vectors = optarg;
            break;
        case O_RULES_AT: {
            char *e;
            double t = strtod(optarg, &e);
            int k = (int)lround(t * 100);
            if (e == optarg || *e || k < T_MIN || k > T_MAX || fabs(t * 100 - k) > 1e-6) {
                fprintf(stderr, "eval semantic: --rules-at needs a threshold 0.70..0.99\n");
                return 2;
            }
            o->rules_at = k;
            break;
        }
        case O_VERIFIER:
            o->verifier = optarg;
            break;
        case O_NO_VERIFIER:
            o->no_verifier = 1;
            break;
        case O_TRAIN:
            o->train_out = optarg;
            break;
        case O_SPLIT:
            if (strcmp(optarg, "components") != 0 && strcmp(optarg, "pairs") != 0) {
                fprintf(stderr, "eval semantic: --split needs components or pairs\n");
                return 2;
            }
            o->split_pairs = strcmp(optarg, "pairs") == 0;
            break;
        case O_V_HIDDEN:
        case O_V_EPOCHS:
        case O_V_SEED:
            if (parse_size(optarg, &v) != 0 || (c == O_V_HIDDEN && v > CG_VERIFIER_MAX_HIDDEN) ||
                (c == O_V_EPOCHS && (v < 1 || v > 1000))) {
                fprintf(stderr, "eval semantic: %s needs %s\n", argv[optind - 2],
                        c == O_V_HIDDEN   ? "0..64"
                        : c == O_V_EPOCHS ? "1..1000"
                                          : "a number");
                return 2;
            }
            if (c == O_V_HIDDEN)
                o->train.hidden = (unsigned)v;
            else if (c == O_V_EPOCHS)
                o->train.epochs = (unsigned)v;
            else
                o->train.seed = v;
            break;
        case O_V_GATED:
            o->train_gated = 1;
            break;
        case O_WITHHOLD:
            o->withhold_test = 1;
            o->no_verifier = 1; /* it reports on the test split */
            break;
        case O_V_FLOOR: {
            char *e;
            o->train_floor = strtod(optarg, &e);
            if (e == optarg || *e || !(o->train_floor >= 0 && o->train_floor < 1)) {
                fprintf(stderr, "eval semantic: --verifier-train-floor needs a number in [0, 1)\n");
                return 2;
            }
            break;
        }
        case O_V_L2:
        case O_V_LR: {
            char *e;
            double x = strtod(optarg, &e);
            if (e == optarg || *e || !(x >= 0 && x < 10) || (c == O_V_LR && !(x > 0))) {
                fprintf(stderr, "eval semantic: %s needs a small positive number\n",
                        c == O_V_L2 ? "--verifier-l2" : "--verifier-lr");
                return 2;
            }
            if (c == O_V_L2)
                o->train.l2 = (float)x;
            else
                o->train.lr = (float)x;
            break;
        }
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            printf(USAGE, o->train.hidden, o->train.epochs, (double)o->train.l2,
                   (double)o->train.lr, (unsigned long long)o->train.seed);
            return 0;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eval semantic: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o->withhold_test && (o->md_path || o->train_out)) {
        fprintf(stderr, "eval semantic: --withhold-test goes with neither --results-md nor "
                        "--train-verifier\n");
        return 2;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Run state                                                            */

const char *es_rule_list(unsigned rules, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int r = 1; r < CG_GATE_N; r++) {
        if (!(rules & CG_GATE_RULE(r)))
            continue;
        const char *n = cg_gate_reason_name((cg_gate_reason)r);
        size_t l = strlen(n);
        if (o + l + 2 >= cap)
            break;
        if (o)
            buf[o++] = ',';
        memcpy(buf + o, n, l);
        o += l;
        buf[o] = '\0';
    }
    if (!o)
        snprintf(buf, cap, "none");
    return buf;
}

static int score_all(run *R) {
    for (int i = 0; i < S_N; i++) {
        pairset *s = &R->s[i];
        s->cos = malloc((s->n + 1) * sizeof *s->cos);
        s->fail = calloc(s->n + 1, sizeof *s->fail);
        if (!s->cos || !s->fail)
            return -1;
        for (size_t k = 0; k < s->n; k++) {
            const pair *p = &s->p[k];
            s->cos[k] = es_dot(R->t.vec + (size_t)p->cached * CG_EMBED_DIM,
                               R->t.vec + (size_t)p->asked * CG_EMBED_DIM);
            /* the gate only matters where similarity could serve */
            if (i == S_ADV || (i != S_STSB_TEST && i != S_STSB_DEV && s->cos[k] >= es_thr(T_MIN)))
                s->fail[k] = gate_bits(&R->t, p);
        }
    }
    R->rho_test = spearman(&R->s[S_STSB_TEST]);
    R->rho_dev = spearman(&R->s[S_STSB_DEV]);
    return 0;
}

/* The default threshold, chosen on the QQP validation split only (the
 * test split is reported, never used to choose): the lowest threshold
 * where validation precision p with the gate clears the bar by a margin,
 * p - margin * sqrt(p (1 - p) / n) >= bar (n served, at least
 * MIN_VAL_HITS; margin 1 by default: one standard error, so that a point
 * that reaches the bar only by the luck of which pairs landed in
 * validation is not the choice), and whose point precision stays at or
 * above the bar at every higher threshold that serves at least MIN_HITS. When none does, the
 * precision curve's plateau: the lowest threshold whose validation precision is within one binomial
 * standard error of the highest (points with fewer than MIN_HITS hits are too noisy to count as the
 * highest). */
#define MIN_HITS 30
#define MIN_VAL_HITS 100

void es_wilson(size_t k, size_t n, double *lo, double *hi) {
    const double z = 1.959964;
    if (n == 0) {
        *lo = *hi = NAN;
        return;
    }
    double p = (double)k / (double)n, nn = (double)n, d = 1 + z * z / nn;
    double c = p + z * z / (2 * nn), r = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn));
    *lo = (c - r) / d;
    *hi = (c + r) / d;
}

static void choose(run *R) {
    const pairset *q = &R->s[S_QQP];
    R->chosen = -1;
    R->fallback = 0;
    R->best_p = -1;
    R->best_k = T_MAX;
    R->best_se = 0;
    double prec[NT];
    size_t served[NT];
    for (int k = T_MIN; k <= T_MAX; k++) {
        counts c = es_count_split(q, ES_VAL, es_thr(k), R->o.rules);
        size_t n = c.hp + c.hn;
        double p = es_ratio(c.hp, n);
        prec[k - T_MIN] = n ? p : -1;
        served[k - T_MIN] = n;
        if (n >= MIN_HITS && p > R->best_p) {
            R->best_p = p;
            R->best_k = k;
            R->best_se = sqrt(p * (1 - p) / (double)n);
        }
    }
    for (int k = T_MIN; k <= T_MAX && R->chosen < 0; k++) {
        double p = prec[k - T_MIN], n = (double)served[k - T_MIN];
        if (served[k - T_MIN] < MIN_VAL_HITS || p - R->o.margin * sqrt(p * (1 - p) / n) < R->o.bar)
            continue;
        int holds = 1;
        for (int j = k + 1; j <= T_MAX && holds; j++)
            if (served[j - T_MIN] >= MIN_HITS && prec[j - T_MIN] < R->o.bar)
                holds = 0;
        if (holds)
            R->chosen = k;
    }
    if (R->chosen >= 0)
        return;
    R->fallback = 1;
    R->chosen = R->best_k;
    for (int k = T_MIN; k <= R->best_k; k++)
        if (prec[k - T_MIN] >= R->best_p - R->best_se) {
            R->chosen = k;
            break;
        }
}

/* --withhold-test: drops the QQP pairs of the test split (their cosines
 * and gate bits with them) so that nothing after the split can show them. */
static void withhold_test(run *R) {
    pairset *q = &R->s[S_QQP];
    size_t o = 0;
    q->npos = q->nneg = 0;
    for (size_t k = 0; k < q->n; k++) {
        if (q->p[k].split == ES_TEST)
            continue;
        q->p[o] = q->p[k];
        q->cos[o] = q->cos[k];
        q->fail[o] = q->fail[k];
        if (q->p[o].label)
            q->npos++;
        else
            q->nneg++;
        o++;
    }
    q->n = o;
    R->v.n[ES_TEST] = R->v.npos[ES_TEST] = 0;
}

/* ------------------------------------------------------------------ */

int cg_eval_semantic_main(int argc, char **argv) {
    run R;
    memset(&R, 0, sizeof R);
    R.o.threads = 2;
    R.o.rules = CG_GATE_DEFAULT_RULES;
    R.o.bar = 0.95;
    R.o.margin = 1.0;
    cg_verifier_train_opts_default(&R.o.train);
    int prc = parse_opts(argc, argv, &R.o);
    if (prc >= 0)
        return prc;
    int rc = 1;
    cg_embedder *e = NULL;
    char err[PATH_MAX + 256] = "";
    if (R.o.data) {
        if (!is_dir(R.o.data)) {
            fprintf(stderr, "eval semantic: data directory not found: %s\n", R.o.data);
            return 1;
        }
    } else {
        if (find_data(R.o.data_buf, sizeof R.o.data_buf) != 0) {
            fprintf(stderr, "eval semantic: data directory not found (--data, "
                            "$CG_SHARED_DIR/data, ../shared/data)\n");
            return 1;
        }
        R.o.data = R.o.data_buf;
    }
    if (!R.o.model) {
        find_model(R.o.model_buf, sizeof R.o.model_buf);
        R.o.model = R.o.model_buf;
    }
    e = cg_embed_open(R.o.model, err, sizeof err);
    if (!e) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    R.isa = cg_embed_isa_name(e);
    R.weights = cg_embed_weights_name(e);
    if (es_load_all(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.vectors && es_vectors_load(&R.t, R.o.vectors, R.o.model) == 0) {
        if (!R.o.quiet)
            fprintf(stderr, "eval semantic: %zu vectors read from %s\n", R.t.n, R.o.vectors);
    } else {
        if (es_embed_all(e, &R.t, R.o.threads, R.o.quiet) != 0) {
            fprintf(stderr, "eval semantic: out of memory\n");
            goto out;
        }
        if (R.o.vectors && es_vectors_save(&R.t, R.o.vectors, R.o.model) != 0)
            fprintf(stderr, "eval semantic: %s: cannot write (going on)\n", R.o.vectors);
    }
    if (score_all(&R) != 0) {
        fprintf(stderr, "eval semantic: out of memory\n");
        goto out;
    }
    {
        char qqp[PATH_MAX + 64];
        snprintf(qqp, sizeof qqp, "%s/gptcache/similiar_qqp_full.json", R.o.data);
        if (es_qqp_split(&R, qqp, err, sizeof err) != 0) {
            fprintf(stderr, "eval semantic: %s\n", err);
            goto out;
        }
        if (R.o.withhold_test)
            withhold_test(&R);
        choose(&R); /* on the validation split */
        if (es_verifier_run(&R, err, sizeof err)) {
            fprintf(stderr, "eval semantic: %s\n", err);
            goto out;
        }
    }
    es_print_report(stdout, &R);
    err[0] = '\0';
    if (R.o.csv_dir && es_write_csv(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.json_path && es_write_json(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.md_path && es_write_md(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < S_N; i++) {
        free(R.s[i].p);
        free(R.s[i].cos);
        free(R.s[i].fail);
    }
    es_verifier_free(&R);
    es_texts_free(&R.t);
    cg_embed_close(e);
    return rc;
}
