/* eval_semantic_verifier: the learned verifier in `costgate eval semantic`.
 *
 * Owns: the fixed split of the QQP pairs, training the verifier on the
 * train part (--train-verifier FILE), scoring every pair of every set with
 * it, choosing the operating point (similarity floor, verifier threshold)
 * on the validation part, and the verifier's sections of the text report,
 * the JSON and the RESULTS.md block, whose numbers come from the test part.
 *
 * The split (docs/semantic-cache.md "Evaluation"): QQP reuses questions
 * across pairs, so a split by pair would put the same text in training and
 * in test. The pairs are the edges of a graph over their texts; each
 * connected component (every pair that shares a text with another, and so
 * on) goes whole to one part, by a hash of the component: the smallest
 * FNV-1a 64 of its texts, mixed with SPLIT_SEED (splitmix64's finaliser);
 * bucket = mix % 10: 0-5 train, 6-7 validation, 8-9 test. The components
 * are those of the whole file even under --limit, so a pair's part never
 * depends on the options. --split pairs splits by pair index instead (the
 * same buckets of the mixed index), for comparison only: texts then leak
 * from training into test.
 *
 * The operating point: over floors 0.70..0.99 and verifier thresholds
 * 0.50..0.99 (steps of 0.01), with the gate's rules on, the point that
 * serves the most validation duplicates while the one-sided 95% Wilson
 * lower bound of validation precision is at least the bar (--bar, 0.95);
 * ties go to the higher floor, then the higher threshold. When no point
 * reaches the bar: the point with the highest such lower bound, the one
 * most surely precise (a handful of hits cannot win: their bound is low).
 * The test part is never read to choose anything.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/eval_semantic_internal.h"

#define SPLIT_SEED UINT64_C(0x51c0ffee5eed0001)
#define WILSON_Z 1.6448536269514722 /* one-sided 95% */

static const char *const SPLIT_NAMES[3] = {"train", "validation", "test"};

static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int bucket(uint64_t key) {
    unsigned b = (unsigned)(mix64(key ^ SPLIT_SEED) % 10u);
    return b < 6 ? ES_TRAIN : b < 8 ? ES_VAL : ES_TEST;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* The split                                                            */

static uint32_t uf_find(uint32_t *par, uint32_t x) {
    while (par[x] != x) {
        par[x] = par[par[x]];
        x = par[x];
    }
    return x;
}

static const char *jstr(json_t *o, const char *k, size_t *len) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

int es_qqp_split(run *R, const char *path, char *err, size_t errcap) {
    pairset *q = &R->s[S_QQP];
    vstate *V = &R->v;
    texts g = {0};
    uint32_t *par = NULL;
    uint64_t *key = NULL;
    json_t *root = NULL;
    int rc = -1;
    if (R->o.split_pairs) {
        for (size_t k = 0; k < q->n; k++)
            q->p[k].split = bucket(q->p[k].idx);
    } else {
        json_error_t je;
        root = json_load_file(path, 0, &je);
        if (!root || !json_is_array(root)) {
            snprintf(err, errcap, "%s: %s", path, root ? "not a JSON array" : je.text);
            goto out;
        }
        size_t total = json_array_size(root);
        par = malloc((2 * total + 1) * sizeof *par);
        key = malloc((2 * total + 1) * sizeof *key);
        if (!par || !key) {
            snprintf(err, errcap, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < total; i++) {
            json_t *o = json_array_get(root, i);
            size_t al = 0, bl = 0;
            const char *a = jstr(o, "text_a", &al), *b = jstr(o, "text_b", &bl);
            if (!a || !b) {
                snprintf(err, errcap, "%s: element %zu lacks text_a or text_b", path, i);
                goto out;
            }
            size_t before = g.n;
            long ia = es_text_id(&g, a, al), ib = es_text_id(&g, b, bl);
            if (ia < 0 || ib < 0) {
                snprintf(err, errcap, "out of memory");
                goto out;
            }
            for (size_t k = before; k < g.n; k++)
                par[k] = (uint32_t)k;
            uint32_t ra = uf_find(par, (uint32_t)ia), rb = uf_find(par, (uint32_t)ib);
            if (ra != rb)
                par[ra < rb ? rb : ra] = ra < rb ? ra : rb;
        }
        for (size_t k = 0; k < g.n; k++)
            key[k] = UINT64_MAX;
        for (size_t k = 0; k < g.n; k++) {
            uint32_t r = uf_find(par, (uint32_t)k);
            uint64_t h = fnv(g.s[k], g.len[k]);
            if (h < key[r])
                key[r] = h;
        }
        size_t known = g.n; /* a text found below is one of these */
        for (size_t k = 0; k < q->n; k++) {
            pair *p = &q->p[k];
            long id = es_text_id(&g, R->t.s[p->cached], R->t.len[p->cached]);
            if (id < 0 || (size_t)id >= known) {
                snprintf(err, errcap, "%s: a QQP text is missing from the file", path);
                goto out;
            }
            p->split = bucket(key[uf_find(par, (uint32_t)id)]);
        }
    }
    memset(V->n, 0, sizeof V->n);
    memset(V->npos, 0, sizeof V->npos);
    for (size_t k = 0; k < q->n; k++) {
        V->n[q->p[k].split]++;
        V->npos[q->p[k].split] += q->p[k].label != 0;
    }
    rc = 0;
out:
    json_decref(root);
    free(par);
    free(key);
    es_texts_free(&g);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Counting                                                             */

counts es_vcount(const run *R, int set, int split, double floor, double thr) {
    const pairset *s = &R->s[set];
    const float *pr = R->v.prob[set];
    counts c = {0, 0};
    float fl = (float)floor, th = (float)thr;
    if (!pr)
        return c;
    for (size_t i = 0; i < s->n; i++) {
        if (split != ES_ALL && s->p[i].split != split)
            continue;
        if (!(s->cos[i] >= fl) || es_fails(s->fail[i], R->o.rules) || !(pr[i] >= th))
            continue;
        if (s->p[i].label)
            c.hp++;
        else
            c.hn++;
    }
    return c;
}

counts es_count_split(const pairset *s, int split, double t, unsigned rules) {
    counts c = {0, 0};
    for (size_t i = 0; i < s->n; i++) {
        if (split != ES_ALL && s->p[i].split != split)
            continue;
        if ((double)s->cos[i] < t || es_fails(s->fail[i], rules))
            continue;
        if (s->p[i].label)
            c.hp++;
        else
            c.hn++;
    }
    return c;
}

static double wilson_lower(size_t k, size_t n, double z) {
    if (n == 0)
        return 0;
    double p = (double)k / (double)n, z2 = z * z, d = 1 + z2 / (double)n;
    double c = p + z2 / (2.0 * (double)n);
    double r = z * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n));
    return (c - r) / d;
}

/* The operating point on the validation split (see the top comment). */
static void choose_point(run *R) {
    vstate *V = &R->v;
    int bf = -1, bt = -1;
    size_t best_hp = 0;
    double best_lb = -1;
    V->val_found = 0;
    for (int f = T_MIN; f <= T_MAX; f++)
        for (int t = VT_MIN; t <= VT_MAX; t++) {
            counts c = es_vcount(R, S_QQP, ES_VAL, es_thr(f), es_thr(t));
            size_t n = c.hp + c.hn;
            if (!n)
                continue;
            double lb = wilson_lower(c.hp, n, WILSON_Z);
            if (lb >= R->o.bar) {
                if (!V->val_found || c.hp >= best_hp)
                    V->val_found = 1, best_hp = c.hp, bf = f, bt = t;
            } else if (!V->val_found && (lb > best_lb || (lb == best_lb && c.hp >= best_hp))) {
                best_lb = lb, best_hp = c.hp, bf = f, bt = t;
            }
        }
    V->val_lb = V->val_found ? 0 : best_lb;
    if (bf < 0) /* nothing served at all: the strictest point */
        bf = T_MAX, bt = VT_MAX;
    V->val_floor = es_thr(bf);
    V->val_thr = es_thr(bt);
    V->val_counts = es_vcount(R, S_QQP, ES_VAL, V->val_floor, V->val_thr);
}

/* ------------------------------------------------------------------ */
/* Training and scoring                                                 */

static void pair_features(const run *R, int set, size_t i, float *x) {
    const pairset *s = &R->s[set];
    const pair *p = &s->p[i];
    const float *u = R->t.vec + (size_t)p->asked * CG_EMBED_DIM;
    const float *w = R->t.vec + (size_t)p->cached * CG_EMBED_DIM;
    cg_verifier_features(s->cos[i], u, w, R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached],
                         R->t.len[p->cached], s->fail[i] & CG_GATE_ALL_RULES, x);
}

/* Whether QQP pair i is a training example. */
static int fit_on(const run *R, size_t i) {
    const pairset *q = &R->s[S_QQP];
    return q->p[i].split == ES_TRAIN && q->cos[i] >= (float)R->o.train_floor &&
           q->cos[i] >= (float)es_thr(T_MIN) &&
           !(R->o.train_gated && es_fails(q->fail[i], R->o.rules));
}

static int train(run *R, char *err, size_t errcap) {
    vstate *V = &R->v;
    const pairset *q = &R->s[S_QQP];
    size_t n = 0;
    for (size_t i = 0; i < q->n; i++)
        n += fit_on(R, i);
    if (n == 0) {
        snprintf(err, errcap, "no QQP training pairs with cosine >= %.2f", R->o.train_floor);
        return -1;
    }
    float *x = malloc(n * CG_VERIFIER_NFEAT * sizeof *x);
    uint8_t *y = malloc(n);
    int rc = -1;
    if (!x || !y) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    size_t k = 0;
    V->npos_fit = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (!fit_on(R, i))
            continue;
        pair_features(R, S_QQP, i, x + k * CG_VERIFIER_NFEAT);
        y[k] = q->p[i].label != 0;
        V->npos_fit += y[k];
        k++;
    }
    V->n_fit = n;
    if (!R->o.quiet)
        fprintf(stderr,
                "eval semantic: training the verifier on %zu QQP train pairs (%u hidden units, "
                "%u epochs)\n",
                n, R->o.train.hidden, R->o.train.epochs);
    double t0 = now_s();
    V->model = cg_verifier_train(x, y, n, &R->o.train, err, errcap);
    V->train_s = now_s() - t0;
    if (!V->model)
        goto out;
    V->trained = 1;
    rc = 0;
out:
    free(x);
    free(y);
    return rc;
}

static int score(run *R, char *err, size_t errcap) {
    float *x = malloc(CG_VERIFIER_NFEAT * sizeof *x);
    double t0 = now_s();
    size_t scored = 0;
    if (!x) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (int set = S_QQP; set < S_N; set++) {
        pairset *s = &R->s[set];
        float *pr = malloc((s->n + 1) * sizeof *pr);
        if (!pr) {
            free(x);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        R->v.prob[set] = pr;
        for (size_t i = 0; i < s->n; i++) {
            pr[i] = -1.0f;
            if (!(s->cos[i] >= (float)es_thr(T_MIN)))
                continue;
            pair_features(R, set, i, x);
            pr[i] = cg_verifier_prob(R->v.model, x);
            scored++;
        }
    }
    free(x);
    R->v.score_s = scored ? (now_s() - t0) / (double)scored : 0;
    return 0;
}

int es_verifier_run(run *R, char *err, size_t errcap) {
    vstate *V = &R->v;
    if (R->o.train_out) {
        if (train(R, err, errcap) != 0)
            return -1;
        snprintf(V->path, sizeof V->path, "%s", R->o.train_out);
    } else {
        if (R->o.no_verifier)
            return 0;
        if (R->o.verifier)
            snprintf(V->path, sizeof V->path, "%s", R->o.verifier);
        else if (es_find_source_file(V->path, sizeof V->path, CG_VERIFIER_DEFAULT_PATH) != 0)
            return 0; /* no shipped model here: the report says so */
        V->model = cg_verifier_load(V->path, err, errcap);
        if (!V->model)
            return -1;
    }
    if (score(R, err, errcap) != 0)
        return -1;
    choose_point(R);
    if (V->trained) {
        char note[160];
        snprintf(note, sizeof note,
                 "QQP %s split 60/20/20 seed %016llx; fit on train pairs with cosine >= "
                 "%.2f%s; operating point chosen on validation",
                 R->o.split_pairs ? "pair-index" : "component", (unsigned long long)SPLIT_SEED,
                 R->o.train_floor > es_thr(T_MIN) ? R->o.train_floor : es_thr(T_MIN),
                 R->o.train_gated ? ", gate passing" : "");
        cg_verifier_set_operating_point(V->model, (float)V->val_floor, (float)V->val_thr,
                                        (unsigned)V->n[ES_VAL], note);
        if (cg_verifier_save(V->model, R->o.train_out, err, errcap) != 0)
            return -1;
    }
    cg_verifier_info info;
    cg_verifier_get_info(V->model, &info);
    V->floor = info.floor;
    V->thr = info.threshold;
    return 0;
}

void es_verifier_free(run *R) {
    cg_verifier_free(R->v.model);
    R->v.model = NULL;
    for (int i = 0; i < S_N; i++) {
        free(R->v.prob[i]);
        R->v.prob[i] = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Report                                                               */

static void put_counts(FILE *f, const char *label, counts c, size_t npos, size_t nneg) {
    fprintf(f,
            "  %-34s hit rate %5.1f%%, precision %.3f, false-hit rate %5.2f%% (%zu + %zu served)\n",
            label, 100 * es_ratio(c.hp, npos), es_ratio(c.hp, c.hp + c.hn),
            100 * es_ratio(c.hn, nneg), c.hp, c.hn);
}

void es_verifier_print(FILE *f, const run *R) {
    const vstate *V = &R->v;
    if (!V->model) {
        fprintf(f, "\nLearned verifier: none evaluated (%s).\n",
                R->o.no_verifier ? "--no-verifier"
                                 : "no " CG_VERIFIER_DEFAULT_PATH " found; --verifier FILE");
        return;
    }
    cg_verifier_info in;
    cg_verifier_get_info(V->model, &in);
    fprintf(f, "\nLearned verifier %s (%s): %s%s\n", V->path,
            V->trained ? "trained in this run" : "loaded",
            in.hidden ? "one hidden layer" : "logistic regression", in.hidden ? "" : " over");
    if (in.hidden)
        fprintf(f, "  of %u tanh units over", in.hidden);
    fprintf(f, " %u inputs; trained on %u pairs, l2 %g, %u epochs, seed %llu; %s\n", in.inputs,
            in.n_train, (double)in.l2, in.epochs, (unsigned long long)in.seed, in.note);
    if (V->trained)
        fprintf(f, "  training: %zu pairs (%zu duplicates) in %.1f s\n", V->n_fit, V->npos_fit,
                V->train_s);
    fprintf(f, "  scoring: %.1f us per pair (features and forward pass, one thread)\n",
            V->score_s * 1e6);
    fprintf(f, "QQP split (%s): ",
            R->o.split_pairs ? "by pair index, texts shared"
                             : "by component, no text in two parts");
    for (int k = 0; k < 3; k++)
        fprintf(f, "%s %zu pairs (%zu duplicates)%s", SPLIT_NAMES[k], V->n[k], V->npos[k],
                k < 2 ? ", " : "\n");
    fprintf(f,
            "Operating point on validation (the most duplicates served with precision's 95%%\n"
            "lower bound >= %.2f): floor %.2f, verifier threshold %.2f.\n",
            R->o.bar, V->val_floor, V->val_thr);
    if (!V->val_found)
        fprintf(f,
                "  NOT REACHED on validation: the highest lower bound of any point is %.3f; the\n"
                "  point with that bound is the default (the one most surely precise).\n",
                V->val_lb);
    put_counts(f, "QQP validation:", V->val_counts, V->npos[ES_VAL],
               V->n[ES_VAL] - V->npos[ES_VAL]);
    if (fabs(V->val_floor - V->floor) > 1e-6 || fabs(V->val_thr - V->thr) > 1e-6)
        fprintf(f, "  (the model file records floor %.2f, threshold %.2f: used below)\n", V->floor,
                V->thr);
    fprintf(f, "At floor %.2f, threshold %.2f, gate rules on:\n", V->floor, V->thr);
    counts qt = es_vcount(R, S_QQP, ES_TEST, V->floor, V->thr);
    put_counts(f, "QQP test (held out):", qt, V->npos[ES_TEST], V->n[ES_TEST] - V->npos[ES_TEST]);
    if (R->chosen >= 0) {
        char lab[64];
        snprintf(lab, sizeof lab, "  vs static %.2f + gate, test:", es_thr(R->chosen));
        put_counts(f, lab, es_count_split(&R->s[S_QQP], ES_TEST, es_thr(R->chosen), R->o.rules),
                   V->npos[ES_TEST], V->n[ES_TEST] - V->npos[ES_TEST]);
    }
    counts qa = es_vcount(R, S_QQP, ES_TRAIN, V->floor, V->thr);
    put_counts(f, "QQP train (fit on):", qa, V->npos[ES_TRAIN], V->n[ES_TRAIN] - V->npos[ES_TRAIN]);
    counts l = es_vcount(R, S_LANG, ES_ALL, V->floor, V->thr);
    fprintf(f, "  LangCache: false hits %zu/%zu (%.1f%%), hit rate %.1f%%\n", l.hn,
            R->s[S_LANG].nneg, 100 * es_ratio(l.hn, R->s[S_LANG].nneg),
            100 * es_ratio(l.hp, R->s[S_LANG].npos));
    counts k = es_vcount(R, S_MOCK, ES_ALL, V->floor, V->thr);
    fprintf(f, "  Paraphrases (mock_data): hit rate %.1f%%\n",
            100 * es_ratio(k.hp, R->s[S_MOCK].npos));
    counts m = es_vcount(R, S_MC_FOLLOW, ES_ALL, V->floor, V->thr);
    counts d = es_vcount(R, S_MC_DUP, ES_ALL, V->floor, V->thr);
    fprintf(f,
            "  MeanCache: follow-ups raw false hits %zu/%zu (served by the gateway: 0, multi-turn);"
            " duplicates hit %.1f%%\n",
            m.hn, R->s[S_MC_FOLLOW].nneg, 100 * es_ratio(d.hp, R->s[S_MC_DUP].npos));
    counts a = es_vcount(R, S_ADV, ES_ALL, V->floor, V->thr);
    fprintf(f, "  Adversarial pairs served: %zu of %zu\n", a.hn, R->s[S_ADV].n);
    fprintf(f,
            "Curve on QQP test at floor %.2f (gate on): verifier threshold, hit rate, precision, "
            "false-hit rate\n",
            V->floor);
    for (int t = VT_MIN; t <= VT_MAX; t++) {
        counts c = es_vcount(R, S_QQP, ES_TEST, V->floor, es_thr(t));
        fprintf(f, "  %.2f %6.1f%% %7.3f %7.2f%%%s\n", es_thr(t),
                100 * es_ratio(c.hp, V->npos[ES_TEST]), es_ratio(c.hp, c.hp + c.hn),
                100 * es_ratio(c.hn, V->n[ES_TEST] - V->npos[ES_TEST]),
                fabs(es_thr(t) - V->thr) < 1e-9 ? "  <- default" : "");
    }
}

int es_verifier_csv(const run *R, const char *dir, char *err, size_t errcap) {
    char path[PATH_MAX + 32];
    if (!R->v.model)
        return 0;
    snprintf(path, sizeof path, "%s/verifier.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errcap, "%s: cannot write", path);
        return -1;
    }
    fputs("set,split,index,label,cosine,gate_pass,probability\n", f);
    for (int set = S_QQP; set < S_N; set++) {
        const pairset *s = &R->s[set];
        for (size_t i = 0; i < s->n; i++) {
            if (R->v.prob[set][i] < 0)
                continue;
            int sp = s->p[i].split;
            fprintf(f, "%s,%s,%u,%d,%.6f,%d,%.6f\n", s->key, sp == ES_ALL ? "all" : SPLIT_NAMES[sp],
                    s->p[i].idx, s->p[i].label, (double)s->cos[i],
                    !es_fails(s->fail[i], R->o.rules), (double)R->v.prob[set][i]);
        }
    }
    if (fclose(f) != 0) {
        snprintf(err, errcap, "%s: cannot write", path);
        return -1;
    }
    return 0;
}

static json_t *jnum(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *jc(counts c, size_t npos, size_t nneg) {
    json_t *o = json_object();
    json_object_set_new(o, "hits_positive", json_integer((json_int_t)c.hp));
    json_object_set_new(o, "hits_negative", json_integer((json_int_t)c.hn));
    json_object_set_new(o, "hit_rate", jnum(es_ratio(c.hp, npos)));
    json_object_set_new(o, "precision", jnum(es_ratio(c.hp, c.hp + c.hn)));
    json_object_set_new(o, "false_hit_rate", jnum(es_ratio(c.hn, nneg)));
    return o;
}

static json_t *jset(const run *R, int set) {
    const pairset *s = &R->s[set];
    return jc(es_vcount(R, set, ES_ALL, R->v.floor, R->v.thr), s->npos, s->nneg);
}

json_t *es_verifier_json(const run *R) {
    const vstate *V = &R->v;
    char hex[24];
    if (!V->model)
        return json_null();
    cg_verifier_info in;
    cg_verifier_get_info(V->model, &in);
    json_t *o = json_object(), *m = json_object(), *sp = json_object(), *op = json_object();
    json_t *sets = json_object(), *curve = json_array();
    json_object_set_new(o, "file", json_string(V->path));
    json_object_set_new(o, "trained", json_boolean(V->trained));
    json_object_set_new(m, "hidden", json_integer(in.hidden));
    json_object_set_new(m, "inputs", json_integer(in.inputs));
    json_object_set_new(m, "l2", json_real(in.l2));
    json_object_set_new(m, "epochs", json_integer(in.epochs));
    json_object_set_new(m, "seed", json_integer((json_int_t)in.seed));
    json_object_set_new(m, "train_pairs", json_integer(in.n_train));
    json_object_set_new(m, "note", json_string(in.note));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)in.checksum);
    json_object_set_new(m, "checksum", json_string(hex));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)in.data_digest);
    json_object_set_new(m, "data_digest", json_string(hex));
    json_object_set_new(m, "scoring_us_per_pair", json_real(V->score_s * 1e6));
    json_object_set_new(o, "model", m);
    json_object_set_new(sp, "method", json_string(R->o.split_pairs ? "pairs" : "components"));
    for (int k = 0; k < 3; k++) {
        json_t *e = json_object();
        json_object_set_new(e, "pairs", json_integer((json_int_t)V->n[k]));
        json_object_set_new(e, "positives", json_integer((json_int_t)V->npos[k]));
        json_object_set_new(sp, SPLIT_NAMES[k], e);
    }
    json_object_set_new(o, "split", sp);
    json_object_set_new(op, "floor", json_real(V->floor));
    json_object_set_new(op, "threshold", json_real(V->thr));
    json_object_set_new(op, "chosen_on", json_string("validation"));
    json_object_set_new(op, "validation_floor", json_real(V->val_floor));
    json_object_set_new(op, "validation_threshold", json_real(V->val_thr));
    json_object_set_new(op, "reaches_bar", json_boolean(V->val_found));
    json_object_set_new(op, "bar", json_real(R->o.bar));
    json_object_set_new(op, "validation",
                        jc(V->val_counts, V->npos[ES_VAL], V->n[ES_VAL] - V->npos[ES_VAL]));
    json_object_set_new(o, "operating_point", op);
    size_t tp = V->npos[ES_TEST], tn = V->n[ES_TEST] - V->npos[ES_TEST];
    json_object_set_new(o, "qqp_test", jc(es_vcount(R, S_QQP, ES_TEST, V->floor, V->thr), tp, tn));
    if (R->chosen >= 0) {
        json_t *st =
            jc(es_count_split(&R->s[S_QQP], ES_TEST, es_thr(R->chosen), R->o.rules), tp, tn);
        json_object_set_new(st, "threshold", json_real(es_thr(R->chosen)));
        json_object_set_new(o, "qqp_test_static_gate", st);
    }
    json_object_set_new(o, "qqp_train",
                        jc(es_vcount(R, S_QQP, ES_TRAIN, V->floor, V->thr), V->npos[ES_TRAIN],
                           V->n[ES_TRAIN] - V->npos[ES_TRAIN]));
    for (int set = S_LANG; set < S_ADV; set++)
        json_object_set_new(sets, R->s[set].key, jset(R, set));
    json_object_set_new(sets, R->s[S_MOCK].key, jset(R, S_MOCK));
    json_object_set_new(o, "sets", sets);
    json_object_set_new(o, "adversarial_served",
                        json_integer((json_int_t)es_vcount(R, S_ADV, ES_ALL, V->floor, V->thr).hn));
    for (int t = VT_MIN; t <= VT_MAX; t++) {
        json_t *pt = jc(es_vcount(R, S_QQP, ES_TEST, V->floor, es_thr(t)), tp, tn);
        json_object_set_new(pt, "threshold", json_real(es_thr(t)));
        json_array_append_new(curve, pt);
    }
    json_object_set_new(o, "curve_test", curve);
    return o;
}

int es_verifier_md(const run *R, cg_buf *b) {
    const vstate *V = &R->v;
    int rc = 0;
    if (!V->model)
        return cg_buf_puts(b, "\nNo learned verifier evaluated in this run.\n");
    cg_verifier_info in;
    cg_verifier_get_info(V->model, &in);
    size_t tp = V->npos[ES_TEST], tn = V->n[ES_TEST] - V->npos[ES_TEST];
    const pairset *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW], *k = &R->s[S_MOCK];
    rc |= cg_buf_printf(
        b,
        "\n### Learned verifier, on the held-out QQP test split\n\n"
        "`%s` (%s, %u inputs, %s). QQP split by connected component of the question graph, so "
        "no text is in two parts: train %zu pairs, validation %zu, test %zu (%zu duplicates). "
        "Operating point chosen on validation only: floor **%.2f**, verifier threshold "
        "**%.2f** (%s). Rows: verifier thresholds at that floor, gate on; QQP columns on "
        "the test split, the other sets whole.\n\n",
        V->path, in.hidden ? "one tanh hidden layer" : "logistic regression", in.inputs,
        V->trained ? "trained in this run" : "loaded", V->n[ES_TRAIN], V->n[ES_VAL], V->n[ES_TEST],
        tp, V->floor, V->thr,
        V->val_found ? "validation precision's 95% lower bound reaches the bar"
                     : "no point's validation lower bound reaches the bar; the highest bound");
    rc |= cg_buf_puts(b, "| verifier threshold | QQP test hit rate | QQP test precision | QQP test "
                         "false hits | LangCache false hits | LangCache hit rate | MeanCache "
                         "follow-up raw false hits | paraphrase hit rate |\n"
                         "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    /* 0.50, 0.60, ..., 0.99 and the chosen threshold, ascending, once each */
    int ts[8] = {50, 60, 70, 80, 90, 95, 99}, nt = 7, chosen = (int)lround(V->thr * 100);
    int have = 0;
    for (int i = 0; i < nt; i++)
        have |= ts[i] == chosen;
    if (!have) {
        int i = nt++;
        while (i > 0 && ts[i - 1] > chosen) {
            ts[i] = ts[i - 1];
            i--;
        }
        ts[i] = chosen;
    }
    for (int i = 0; i < nt; i++) {
        int t = ts[i];
        double th = es_thr(t);
        counts q = es_vcount(R, S_QQP, ES_TEST, V->floor, th);
        counts lc = es_vcount(R, S_LANG, ES_ALL, V->floor, th);
        counts mc = es_vcount(R, S_MC_FOLLOW, ES_ALL, V->floor, th);
        counts kc = es_vcount(R, S_MOCK, ES_ALL, V->floor, th);
        const char *bo = t == chosen ? "**" : "";
        char prec[16];
        double pv = es_ratio(q.hp, q.hp + q.hn);
        snprintf(prec, sizeof prec, isnan(pv) ? "-" : "%.3f", pv);
        rc |= cg_buf_printf(b,
                            "| %s%.2f%s | %.1f%% | %s | %.2f%% | %.1f%% | %.1f%% | %.1f%% | "
                            "%.1f%% |\n",
                            bo, th, bo, 100 * es_ratio(q.hp, tp), prec, 100 * es_ratio(q.hn, tn),
                            100 * es_ratio(lc.hn, l->nneg), 100 * es_ratio(lc.hp, l->npos),
                            100 * es_ratio(mc.hn, m->nneg), 100 * es_ratio(kc.hp, k->npos));
    }
    counts q = es_vcount(R, S_QQP, ES_TEST, V->floor, V->thr);
    rc |= cg_buf_printf(b,
                        "\nAt the default operating point, QQP test: precision **%.3f** "
                        "(%zu of %zu served hits are duplicates), hit rate %.1f%%, false-hit rate "
                        "%.2f%%; validation precision was %.3f.",
                        es_ratio(q.hp, q.hp + q.hn), q.hp, q.hp + q.hn, 100 * es_ratio(q.hp, tp),
                        100 * es_ratio(q.hn, tn),
                        es_ratio(V->val_counts.hp, V->val_counts.hp + V->val_counts.hn));
    if (R->chosen >= 0) {
        counts s = es_count_split(&R->s[S_QQP], ES_TEST, es_thr(R->chosen), R->o.rules);
        rc |=
            cg_buf_printf(b,
                          " The static threshold %.2f with the gate, on the same test split: "
                          "precision %.3f, hit rate %.1f%%.",
                          es_thr(R->chosen), es_ratio(s.hp, s.hp + s.hn), 100 * es_ratio(s.hp, tp));
    }
    rc |= cg_buf_puts(b, "\n");
    return rc ? -1 : 0;
}
