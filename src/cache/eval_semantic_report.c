/* eval_semantic_report: the outputs of `costgate eval semantic`.
 *
 * Owns: the text report (curves per data set, the rule-effect table, the
 * adversarial pairs, the summary), the CSV files, the JSON document and
 * the block of bench/RESULTS.md between its markers.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/eval_semantic_internal.h"

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void fmt_pct(char *b, size_t cap, double v) {
    if (isnan(v))
        snprintf(b, cap, "-");
    else
        snprintf(b, cap, "%.1f%%", 100.0 * v);
}

static void fmt_p(char *b, size_t cap, double v) {
    if (isnan(v))
        snprintf(b, cap, "-");
    else
        snprintf(b, cap, "%.3f", v);
}

static void print_curve(FILE *f, const run *R, const pairset *s, int with_pos, int with_neg) {
    fprintf(f, "\n%s: %zu pairs", s->title, s->n);
    if (s->total != s->n)
        fprintf(f, " (of %zu)", s->total);
    fprintf(f, ", %zu positive, %zu negative\n", s->npos, s->nneg);
    fprintf(f, "  thr  | %-30s | %-30s\n", "no gate", "gate");
    fprintf(f, "       | %9s %9s %10s | %9s %9s %10s\n", "hit rate", "precision", "false hits",
            "hit rate", "precision", "false hits");
    for (int k = T_MIN; k <= T_MAX; k++) {
        fprintf(f, "  %.2f |", es_thr(k));
        for (int g = 0; g < 2; g++) {
            counts c = es_count_at(s, es_thr(k), g, R->o.rules);
            char a[16], b[16], d[16];
            fmt_pct(a, sizeof a, with_pos ? es_ratio(c.hp, s->npos) : NAN);
            fmt_p(b, sizeof b, with_pos && with_neg ? es_ratio(c.hp, c.hp + c.hn) : NAN);
            fmt_pct(d, sizeof d, with_neg ? es_ratio(c.hn, s->nneg) : NAN);
            fprintf(f, " %9s %9s %10s %s", a, b, d, g == 0 ? "|" : "");
        }
        fprintf(f, "%s\n", k == R->chosen ? "  <- default" : "");
    }
}

/* Rule effects at threshold t: each rule (and variant) alone on top of no
 * gate, and the configured set without it / with it. */
typedef struct {
    const char *name;
    unsigned mask;
} rule_row;

static size_t rule_rows(rule_row *rows) {
    size_t n = 0;
    for (int r = 1; r < CG_GATE_N; r++)
        rows[n++] = (rule_row){cg_gate_reason_name((cg_gate_reason)r), CG_GATE_RULE(r)};
    rows[n++] =
        (rule_row){"numbers (digits only)", CG_GATE_RULE(CG_GATE_NUMBERS) | CG_GATE_V_DIGITS_ONLY};
    rows[n++] =
        (rule_row){"entities (strict)", CG_GATE_RULE(CG_GATE_ENTITIES) | CG_GATE_V_ENTITIES_STRICT};
    return n;
}

typedef struct {
    size_t pos_rej, neg_rej; /* among would-be hits, rejected by the rule alone */
} rej;

static rej rejected(const pairset *s, double t, unsigned mask) {
    rej r = {0, 0};
    for (size_t i = 0; i < s->n; i++)
        if ((double)s->cos[i] >= t && es_fails(s->fail[i], mask)) {
            if (s->p[i].label)
                r.pos_rej++;
            else
                r.neg_rej++;
        }
    return r;
}

/* The configured set with `mask` toggled: on when it was off, off when on. */
static unsigned toggled(unsigned rules, unsigned mask) {
    unsigned base = mask & ((1u << CG_GATE_N) - 1u);
    unsigned var = mask & ~((1u << CG_GATE_N) - 1u);
    if (var) /* a variant: the set with the rule replaced by its variant */
        return (rules & base) ? (rules | var) : (rules | mask);
    return rules ^ base;
}

static void print_rules(FILE *f, const run *R, int k) {
    rule_row rows[CG_GATE_N + 2];
    size_t nr = rule_rows(rows);
    double t = es_thr(k);
    const pairset *q = &R->s[S_QQP], *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW];
    const pairset *mk = &R->s[S_MOCK];
    counts q0 = es_count_at(q, t, 0, 0), l0 = es_count_at(l, t, 0, 0);
    fprintf(f,
            "\nGate rules at threshold %.2f: each rule alone, rejections among would-be hits\n"
            "(QQP %zu duplicate + %zu non-duplicate hits; LangCache %zu + %zu; MeanCache\n"
            "follow-up %zu; paraphrases %zu), and the configured set toggled by that rule.\n",
            t, q0.hp, q0.hn, l0.hp, l0.hn, es_count_at(m, t, 0, 0).hn, es_count_at(mk, t, 0, 0).hp);
    fprintf(f, "  %-22s | %-15s | %-15s | %6s | %6s | %-28s | %-16s\n", "rule", "QQP dup/non-dup",
            "LangCache +/-", "MC fu", "mock", "QQP prec / hit rate (set+-)", "LC false/hit");
    counts qb = es_count_at(q, t, 1, R->o.rules), lb = es_count_at(l, t, 1, R->o.rules);
    char p1[16], p2[16], p3[16], p4[16];
    fmt_p(p1, sizeof p1, es_ratio(qb.hp, qb.hp + qb.hn));
    fmt_pct(p2, sizeof p2, es_ratio(qb.hp, q->npos));
    fmt_pct(p3, sizeof p3, es_ratio(lb.hn, l->nneg));
    fmt_pct(p4, sizeof p4, es_ratio(lb.hp, l->npos));
    fprintf(f, "  %-22s | %15s | %15s | %6s | %6s | %12s / %-13s | %6s / %-7s\n",
            "(configured set)", "", "", "", "", p1, p2, p3, p4);
    for (size_t i = 0; i < nr; i++) {
        rej a = rejected(q, t, rows[i].mask), b = rejected(l, t, rows[i].mask);
        rej c = rejected(m, t, rows[i].mask), d = rejected(mk, t, rows[i].mask);
        unsigned set = toggled(R->o.rules, rows[i].mask);
        counts qs = es_count_at(q, t, 1, set), ls = es_count_at(l, t, 1, set);
        char x[24], y[24];
        snprintf(x, sizeof x, "%zu/%zu", a.pos_rej, a.neg_rej);
        snprintf(y, sizeof y, "%zu/%zu", b.pos_rej, b.neg_rej);
        int variant = (rows[i].mask & ~((1u << CG_GATE_N) - 1u)) != 0;
        const char *sign = variant ? "~" : (R->o.rules & rows[i].mask) ? "-" : "+";
        fmt_p(p1, sizeof p1, es_ratio(qs.hp, qs.hp + qs.hn));
        fmt_pct(p2, sizeof p2, es_ratio(qs.hp, q->npos));
        fmt_pct(p3, sizeof p3, es_ratio(ls.hn, l->nneg));
        fmt_pct(p4, sizeof p4, es_ratio(ls.hp, l->npos));
        fprintf(f, "  %-22s | %15s | %15s | %6zu | %6zu | %s%-11s / %-13s | %6s / %-7s\n",
                rows[i].name, x, y, c.neg_rej, d.pos_rej, sign, p1, p2, p3, p4);
    }
}

static void print_adversarial(FILE *f, const run *R) {
    const pairset *s = &R->s[S_ADV];
    fprintf(f, "\nAdversarial pairs (cached | asked): cosine, the gate's verdict, expected\n");
    for (size_t i = 0; i < s->n; i++) {
        const pair *p = &s->p[i];
        cg_gate_result g;
        cg_gate_check(R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached], R->t.len[p->cached],
                      R->o.rules, &g);
        fprintf(f, "  %.3f %-9s (want %-8s) %s | %s%s%s\n", (double)s->cos[i],
                cg_gate_reason_name(g.reason), cg_gate_reason_name((cg_gate_reason)p->expect),
                R->t.s[p->cached], R->t.s[p->asked], g.detail[0] ? "  -- " : "", g.detail);
    }
}

static void print_summary(FILE *f, const run *R) {
    int k = R->chosen;
    double t = es_thr(k);
    const pairset *q = &R->s[S_QQP], *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW];
    counts qg = es_count_at(q, t, 1, R->o.rules), qn = es_count_at(q, t, 0, 0);
    counts lg = es_count_at(l, t, 1, R->o.rules), ln = es_count_at(l, t, 0, 0);
    counts mg = es_count_at(m, t, 1, R->o.rules), mn = es_count_at(m, t, 0, 0);
    counts kg = es_count_at(&R->s[S_MOCK], t, 1, R->o.rules);
    counts dg = es_count_at(&R->s[S_MC_DUP], t, 1, R->o.rules);
    if (R->fallback)
        fprintf(f,
                "\nDefault threshold: %.2f. No threshold in 0.70-0.99 reaches QQP validation\n"
                "precision %.2f with the gate (and 100 hits): the highest is %.3f at %.2f\n"
                "(standard error %.3f); %.2f is the lowest threshold within one standard error.\n",
                t, R->o.bar, R->best_p, es_thr(R->best_k), R->best_se, t);
    else
        fprintf(f,
                "\nDefault threshold: %.2f, the lowest where QQP validation precision with the "
                "gate\nclears %.2f by %.1f standard error(s) (at least 100 hits) and stays at or "
                "above %.2f\nat every higher threshold.\n",
                t, R->o.bar, R->o.margin, R->o.bar);
    for (int sp = ES_VAL; sp <= (R->o.withhold_test ? ES_VAL : ES_TEST); sp++) {
        counts c = es_count_split(q, sp, t, R->o.rules);
        size_t npos = 0, n = c.hp + c.hn;
        for (size_t i = 0; i < q->n; i++)
            npos += q->p[i].split == sp && q->p[i].label;
        double lo, hi;
        es_wilson(c.hp, n, &lo, &hi);
        fprintf(f,
                "  QQP %-10s gate: precision %.3f (95%% Wilson %.3f-%.3f), %zu served (%zu + "
                "%zu), hit rate %.1f%% of %zu duplicates\n",
                sp == ES_VAL ? "validation" : "test", es_ratio(c.hp, n), lo, hi, n, c.hp, c.hn,
                100 * es_ratio(c.hp, npos), npos);
    }
    if (R->o.withhold_test)
        fprintf(f, "  QQP test split withheld (--withhold-test): QQP below is train + "
                   "validation\n");
    fprintf(f,
            "  QQP        gate: hit rate %.1f%%, precision %.3f, false-hit rate %.2f%%"
            "   (no gate: %.1f%%, %.3f, %.2f%%)\n",
            100 * es_ratio(qg.hp, q->npos), es_ratio(qg.hp, qg.hp + qg.hn),
            100 * es_ratio(qg.hn, q->nneg), 100 * es_ratio(qn.hp, q->npos),
            es_ratio(qn.hp, qn.hp + qn.hn), 100 * es_ratio(qn.hn, q->nneg));
    fprintf(f,
            "  LangCache  gate: false hits %zu/%zu (%.1f%%), hit rate %.1f%%"
            "   (no gate: %zu/%zu, %.1f%%)\n",
            lg.hn, l->nneg, 100 * es_ratio(lg.hn, l->nneg), 100 * es_ratio(lg.hp, l->npos), ln.hn,
            l->nneg, 100 * es_ratio(ln.hp, l->npos));
    fprintf(f,
            "  MeanCache  follow-ups against their main query: raw false hits %zu/%zu with the "
            "gate\n"
            "             (%zu without); served by the gateway: 0 (a follow-up is a multi-turn\n"
            "             request, not eligible for the semantic cache); duplicates hit %.1f%%\n",
            mg.hn, m->nneg, mn.hn, 100 * es_ratio(dg.hp, R->s[S_MC_DUP].npos));
    fprintf(f, "  Paraphrases (mock_data) gate: hit rate %.1f%%\n",
            100 * es_ratio(kg.hp, R->s[S_MOCK].npos));
}

void es_print_report(FILE *f, const run *R) {
    char rl[256];
    fprintf(f,
            "costgate eval semantic: embedder use-lite (%s kernels, %s weights), gate rules %s\n",
            R->isa, R->weights, es_rule_list(R->o.rules, rl, sizeof rl));
    fprintf(f, "data %s, %s; %zu distinct texts\n", R->o.data,
            R->o.limit ? "subsampled (--limit)" : "all pairs", R->t.n);
    if (R->o.withhold_test)
        fprintf(f,
                "QQP: the test split is withheld (--withhold-test); every QQP number below "
                "is\ntrain + validation, %zu pairs\n",
                R->s[S_QQP].n);
    fprintf(f, "\nSTS-B Spearman (cosine vs human score): test %.4f (%zu pairs), dev %.4f (%zu)\n",
            R->rho_test, R->s[S_STSB_TEST].n, R->rho_dev, R->s[S_STSB_DEV].n);
    fprintf(f, "\nPairwise protocol: first text cached, second asked; hit = cosine >= threshold\n"
               "(and, with the gate, the gate passes).\n");
    print_curve(f, R, &R->s[S_QQP], 1, 1);
    print_curve(f, R, &R->s[S_LANG], 1, 1);
    print_curve(f, R, &R->s[S_MOCK], 1, 0);
    print_curve(f, R, &R->s[S_MC_FOLLOW], 0, 1);
    print_curve(f, R, &R->s[S_MC_DUP], 1, 0);
    print_curve(f, R, &R->s[S_MC_DUP_CTX], 1, 0);
    print_rules(f, R, R->o.rules_at ? R->o.rules_at : R->chosen);
    print_adversarial(f, R);
    print_summary(f, R);
    es_verifier_print(f, R);
}

/* A CSV field: quoted, quotes doubled, newlines as spaces. */
static void csv_quote(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputs("\"\"", f);
        else
            fputc(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i], f);
    }
    fputc('"', f);
}

/* CSV files. */
int es_write_csv(const run *R, char *err, size_t errcap) {
    char path[PATH_MAX + 32];
    FILE *f = NULL;
    if (mkdir(R->o.csv_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "%s: cannot create", R->o.csv_dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/curves.csv", R->o.csv_dir);
    if (!(f = fopen(path, "w")))
        goto fail;
    fputs("set,threshold,gate,positives,negatives,hits_positive,hits_negative,hit_rate,"
          "precision,false_hit_rate\n",
          f);
    for (int i = S_QQP; i < S_ADV; i++) {
        const pairset *s = &R->s[i];
        for (int k = T_MIN; k <= T_MAX; k++)
            for (int g = 0; g < 2; g++) {
                counts c = es_count_at(s, es_thr(k), g, R->o.rules);
                fprintf(f, "%s,%.2f,%d,%zu,%zu,%zu,%zu,%.6f,%.6f,%.6f\n", s->key, es_thr(k), g,
                        s->npos, s->nneg, c.hp, c.hn, es_ratio(c.hp, s->npos),
                        es_ratio(c.hp, c.hp + c.hn), es_ratio(c.hn, s->nneg));
            }
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/rules.csv", R->o.csv_dir);
    if (!(f = fopen(path, "w")))
        goto fail;
    fputs("rule,threshold,set,positives_rejected,negatives_rejected\n", f);
    rule_row rows[CG_GATE_N + 2];
    size_t nr = rule_rows(rows);
    for (size_t r = 0; r < nr; r++)
        for (int i = S_QQP; i < S_ADV; i++)
            for (int k = T_MIN; k <= T_MAX; k += 5) {
                rej x = rejected(&R->s[i], es_thr(k), rows[r].mask);
                fprintf(f, "%s,%.2f,%s,%zu,%zu\n", rows[r].name, es_thr(k), R->s[i].key, x.pos_rej,
                        x.neg_rej);
            }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/pairs.csv", R->o.csv_dir);
    if (!(f = fopen(path, "w")))
        goto fail;
    fputs("set,split,label,cosine,verdict,detail,cached,asked,fails\n", f);
    static const char *const split_name[] = {"train", "validation", "test", "all"};
    for (int i = S_QQP; i < S_N; i++) {
        const pairset *s = &R->s[i];
        for (size_t k = 0; k < s->n; k++) {
            const pair *p = &s->p[k];
            if ((double)s->cos[k] < es_thr(T_MIN) && i != S_ADV)
                continue;
            cg_gate_result g;
            cg_gate_check(R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached],
                          R->t.len[p->cached], R->o.rules, &g);
            fprintf(f, "%s,%s,%d,%.6f,%s,", s->key, split_name[p->split], p->label,
                    (double)s->cos[k], cg_gate_reason_name(g.reason));
            csv_quote(f, g.detail, strlen(g.detail));
            fputc(',', f);
            csv_quote(f, R->t.s[p->cached], R->t.len[p->cached]);
            fputc(',', f);
            csv_quote(f, R->t.s[p->asked], R->t.len[p->asked]);
            /* every rule that fails on its own, whether in the set or not */
            fputs(",\"", f);
            for (int r = 1, first = 1; r < CG_GATE_N; r++)
                if (s->fail[k] & (1u << r)) {
                    fprintf(f, "%s%s", first ? "" : " ", cg_gate_reason_name((cg_gate_reason)r));
                    first = 0;
                }
            fputs("\"\n", f);
        }
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/adversarial.csv", R->o.csv_dir);
    if (!(f = fopen(path, "w")))
        goto fail;
    fputs("cosine,verdict,expected\n", f);
    for (size_t i = 0; i < R->s[S_ADV].n; i++) {
        const pair *p = &R->s[S_ADV].p[i];
        cg_gate_reason g = cg_gate_check(R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached],
                                         R->t.len[p->cached], R->o.rules, NULL);
        fprintf(f, "%.6f,%s,%s\n", (double)R->s[S_ADV].cos[i], cg_gate_reason_name(g),
                cg_gate_reason_name((cg_gate_reason)p->expect));
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    return es_verifier_csv(R, R->o.csv_dir, err, errcap);
fail:
    if (f)
        fclose(f);
    snprintf(err, errcap, "%s: cannot write", path);
    return -1;
}

static json_t *jnum(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *jcounts(const pairset *s, counts c) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "hits_positive", json_integer((json_int_t)c.hp));
    json_object_set_new(o, "hits_negative", json_integer((json_int_t)c.hn));
    json_object_set_new(o, "hit_rate", jnum(es_ratio(c.hp, s->npos)));
    json_object_set_new(o, "precision", jnum(es_ratio(c.hp, c.hp + c.hn)));
    json_object_set_new(o, "false_hit_rate", jnum(es_ratio(c.hn, s->nneg)));
    return o;
}

int es_write_json(const run *R, char *err, size_t errcap) {
    json_t *root = json_object(), *sets = json_object(), *rules = json_array(), *adv = json_array();
    int rc = -1;
    char rl[256];
    if (!root || !sets || !rules || !adv)
        goto out;
    json_object_set_new(root, "limit", json_integer((json_int_t)R->o.limit));
    json_object_set_new(root, "texts", json_integer((json_int_t)R->t.n));
    json_object_set_new(root, "gate_rules", json_string(es_rule_list(R->o.rules, rl, sizeof rl)));
    json_object_set_new(root, "bar", json_real(R->o.bar));
    json_t *st = json_object();
    json_object_set_new(st, "test", jnum(R->rho_test));
    json_object_set_new(st, "test_pairs", json_integer((json_int_t)R->s[S_STSB_TEST].n));
    json_object_set_new(st, "dev", jnum(R->rho_dev));
    json_object_set_new(st, "dev_pairs", json_integer((json_int_t)R->s[S_STSB_DEV].n));
    json_object_set_new(root, "stsb_spearman", st);
    json_t *ch = json_object();
    json_object_set_new(ch, "threshold", json_real(es_thr(R->chosen)));
    json_object_set_new(ch, "reaches_bar", json_boolean(!R->fallback));
    json_object_set_new(ch, "margin_stderr", json_real(R->o.margin));
    json_object_set_new(ch, "best_precision", json_real(R->best_p));
    json_object_set_new(ch, "best_precision_threshold", json_real(es_thr(R->best_k)));
    json_object_set_new(ch, "best_precision_stderr", json_real(R->best_se));
    json_object_set_new(root, "default_threshold", ch);
    for (int i = S_QQP; i < S_ADV; i++) {
        const pairset *s = &R->s[i];
        json_t *o = json_object(), *curve = json_array();
        json_object_set_new(o, "pairs", json_integer((json_int_t)s->n));
        json_object_set_new(o, "pairs_in_file", json_integer((json_int_t)s->total));
        json_object_set_new(o, "positives", json_integer((json_int_t)s->npos));
        json_object_set_new(o, "negatives", json_integer((json_int_t)s->nneg));
        for (int k = T_MIN; k <= T_MAX; k++) {
            json_t *pt = json_object();
            json_object_set_new(pt, "threshold", json_real(es_thr(k)));
            json_object_set_new(pt, "no_gate", jcounts(s, es_count_at(s, es_thr(k), 0, 0)));
            json_object_set_new(pt, "gate", jcounts(s, es_count_at(s, es_thr(k), 1, R->o.rules)));
            json_array_append_new(curve, pt);
        }
        json_object_set_new(o, "curve", curve);
        json_object_set_new(sets, s->key, o);
    }
    json_object_set_new(root, "sets", sets);
    rule_row rows[CG_GATE_N + 2];
    size_t nr = rule_rows(rows);
    for (size_t r = 0; r < nr; r++) {
        json_t *o = json_object();
        json_object_set_new(o, "rule", json_string(rows[r].name));
        json_object_set_new(o, "in_set", json_boolean((R->o.rules & rows[r].mask) == rows[r].mask));
        for (int i = S_QQP; i < S_ADV; i++) {
            rej x = rejected(&R->s[i], es_thr(R->chosen), rows[r].mask);
            json_t *e = json_object();
            json_object_set_new(e, "positives_rejected", json_integer((json_int_t)x.pos_rej));
            json_object_set_new(e, "negatives_rejected", json_integer((json_int_t)x.neg_rej));
            json_object_set_new(o, R->s[i].key, e);
        }
        json_array_append_new(rules, o);
    }
    json_object_set_new(root, "rules_at_default", rules);
    for (size_t i = 0; i < R->s[S_ADV].n; i++) {
        const pair *p = &R->s[S_ADV].p[i];
        cg_gate_result g;
        cg_gate_check(R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached], R->t.len[p->cached],
                      R->o.rules, &g);
        json_t *o = json_object();
        json_object_set_new(o, "cached", json_string(R->t.s[p->cached]));
        json_object_set_new(o, "asked", json_string(R->t.s[p->asked]));
        json_object_set_new(o, "cosine", json_real(R->s[S_ADV].cos[i]));
        json_object_set_new(o, "verdict", json_string(cg_gate_reason_name(g.reason)));
        json_object_set_new(o, "expected",
                            json_string(cg_gate_reason_name((cg_gate_reason)p->expect)));
        json_object_set_new(o, "detail", json_string(g.detail));
        json_array_append_new(adv, o);
    }
    json_object_set_new(root, "adversarial", adv);
    json_object_set_new(root, "verifier", es_verifier_json(R));
    adv = rules = sets = NULL;
    if (json_dump_file(root, R->o.json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0) {
        snprintf(err, errcap, "%s: cannot write", R->o.json_path);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && !err[0])
        snprintf(err, errcap, "out of memory");
    json_decref(root);
    json_decref(sets);
    json_decref(rules);
    json_decref(adv);
    return rc;
}

/* The markdown block for bench/RESULTS.md. */
static int md_block(const run *R, cg_buf *b) {
    char rl[256];
    /* 0.75, 0.80, ..., 0.95 and the chosen threshold, ascending */
    int ks[8], nk = 0;
    for (int k = 75; k <= 95; k += 5) {
        if (R->chosen < k && (nk == 0 || ks[nk - 1] < R->chosen))
            ks[nk++] = R->chosen;
        if (k != R->chosen)
            ks[nk++] = k;
    }
    if (ks[nk - 1] < R->chosen)
        ks[nk++] = R->chosen;
    const pairset *q = &R->s[S_QQP], *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW];
    const pairset *mk = &R->s[S_MOCK];
    int rc = 0;
    rc |= cg_buf_printf(b, "%s\n## Semantic cache: threshold and second gate\n\n", MD_BEGIN);
    rc |= cg_buf_printf(
        b,
        "Command: `costgate eval semantic --results-md bench/RESULTS.md`%s (the built-in\n"
        "embedder, %s kernels, %s weights; gate rules %s). Pairwise protocol as GPTCache's\n"
        "benchmark: the first text of a pair is cached, the second is asked; a hit is\n"
        "cosine >= threshold and, in the gate columns, the second gate passing. Method and\n"
        "per-rule effects: [docs/semantic-cache.md](../docs/semantic-cache.md).\n\n",
        R->o.limit ? " with --limit" : "", R->isa, R->weights,
        es_rule_list(R->o.rules, rl, sizeof rl));
    rc |= cg_buf_printf(b,
                        "STS-B Spearman (cosine vs human score): test %.4f (%zu pairs), dev "
                        "%.4f (%zu pairs).\n\n",
                        R->rho_test, R->s[S_STSB_TEST].n, R->rho_dev, R->s[S_STSB_DEV].n);
    rc |= cg_buf_printf(b,
                        "QQP: %zu pairs, %zu duplicates. LangCache: %zu positives, %zu near-miss "
                        "negatives. MeanCache: %zu follow-ups asked against their main query. "
                        "Paraphrases: %zu.\n\n",
                        q->n, q->npos, l->npos, l->nneg, m->nneg, mk->npos);
    rc |= cg_buf_puts(b, "| threshold | QQP hit rate | QQP precision | QQP false hits | QQP hit "
                         "rate, gate | QQP precision, gate | QQP false hits, gate | LangCache "
                         "false hits (gate) | LangCache hit rate (gate) | MeanCache follow-up "
                         "raw false hits (gate) | paraphrase hit rate (gate) |\n"
                         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nk; i++) {
        double t = es_thr(ks[i]);
        counts qn = es_count_at(q, t, 0, 0), qg = es_count_at(q, t, 1, R->o.rules);
        counts ln = es_count_at(l, t, 0, 0), lg = es_count_at(l, t, 1, R->o.rules);
        counts mn = es_count_at(m, t, 0, 0), mg = es_count_at(m, t, 1, R->o.rules);
        counts kn = es_count_at(mk, t, 0, 0), kg = es_count_at(mk, t, 1, R->o.rules);
        rc |= cg_buf_printf(
            b,
            "| %s%.2f%s | %.1f%% | %.3f | %.2f%% | %.1f%% | %.3f | %.2f%% | %.1f%% (%.1f%%) | "
            "%.1f%% (%.1f%%) | %.1f%% (%.1f%%) | %.1f%% (%.1f%%) |\n",
            ks[i] == R->chosen ? "**" : "", t, ks[i] == R->chosen ? "**" : "",
            100 * es_ratio(qn.hp, q->npos), es_ratio(qn.hp, qn.hp + qn.hn),
            100 * es_ratio(qn.hn, q->nneg), 100 * es_ratio(qg.hp, q->npos),
            es_ratio(qg.hp, qg.hp + qg.hn), 100 * es_ratio(qg.hn, q->nneg),
            100 * es_ratio(ln.hn, l->nneg), 100 * es_ratio(lg.hn, l->nneg),
            100 * es_ratio(ln.hp, l->npos), 100 * es_ratio(lg.hp, l->npos),
            100 * es_ratio(mn.hn, m->nneg), 100 * es_ratio(mg.hn, m->nneg),
            100 * es_ratio(kn.hp, mk->npos), 100 * es_ratio(kg.hp, mk->npos));
    }
    if (R->fallback)
        rc |= cg_buf_printf(b,
                            "\nDefault threshold **%.2f**: no threshold reaches QQP precision "
                            "%.2f with the gate (the highest is %.3f at %.2f, standard error "
                            "%.3f); %.2f is the lowest threshold within one standard error of "
                            "it. MeanCache follow-ups are multi-turn requests, which the "
                            "semantic cache does not look up: served false hits 0.\n",
                            es_thr(R->chosen), R->o.bar, R->best_p, es_thr(R->best_k), R->best_se,
                            es_thr(R->chosen));
    else
        rc |= cg_buf_printf(b,
                            "\nDefault threshold **%.2f**: the lowest where QQP validation "
                            "precision with the gate clears %.2f by %.1f standard error(s) "
                            "(precision minus %.1f times its standard error at least %.2f, at "
                            "least 100 hits) and stays at or above %.2f at every higher "
                            "threshold. MeanCache follow-ups are multi-turn requests, "
                            "which the semantic cache does not look up: served false hits 0.\n",
                            es_thr(R->chosen), R->o.bar, R->o.margin, R->o.margin, R->o.bar,
                            R->o.bar);
    for (int sp = ES_VAL; sp <= ES_TEST; sp++) {
        const pairset *q = &R->s[S_QQP];
        counts c = es_count_split(q, sp, es_thr(R->chosen), R->o.rules);
        size_t npos = 0, n = c.hp + c.hn;
        for (size_t i = 0; i < q->n; i++)
            npos += q->p[i].split == sp && q->p[i].label;
        double lo, hi;
        es_wilson(c.hp, n, &lo, &hi);
        rc |= cg_buf_printf(b,
                            "%s QQP %s split at %.2f with the gate: precision %.3f (95%% Wilson "
                            "%.3f-%.3f), %zu served (%zu duplicates + %zu not), hit rate %.1f%% "
                            "of %zu duplicates.\n",
                            sp == ES_VAL ? "\n-" : "-",
                            sp == ES_VAL ? "validation" : "test (held out)", es_thr(R->chosen),
                            es_ratio(c.hp, n), lo, hi, n, c.hp, c.hn, 100 * es_ratio(c.hp, npos),
                            npos);
    }
    rc |= es_verifier_md(R, b);
    rc |= cg_buf_printf(b, "%s", MD_END);
    return rc ? -1 : 0;
}

int es_write_md(const run *R, char *err, size_t errcap) {
    cg_buf in, out, blk;
    cg_buf_init(&in, MAX_FILE_BYTES);
    cg_buf_init(&out, MAX_FILE_BYTES);
    cg_buf_init(&blk, 1u << 20);
    char tmp[PATH_MAX + 16];
    int rc = -1;
    FILE *f = NULL;
    if (cg_buf_read_file(&in, R->o.md_path) != 0) {
        snprintf(err, errcap, "%s: cannot read", R->o.md_path);
        goto out;
    }
    if (md_block(R, &blk) != 0) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    const char *d = in.data ? in.data : "";
    const char *b = strstr(d, MD_BEGIN), *e = b ? strstr(b, MD_END) : NULL;
    int ok;
    if (b && e) {
        e += strlen(MD_END);
        ok = cg_buf_append(&out, d, (size_t)(b - d)) == 0 &&
             cg_buf_append(&out, blk.data, blk.len) == 0 &&
             cg_buf_append(&out, e, in.len - (size_t)(e - d)) == 0;
    } else { /* no block yet: append one */
        ok = cg_buf_append(&out, d, in.len) == 0 &&
             cg_buf_puts(&out, in.len && d[in.len - 1] != '\n' ? "\n\n" : "\n") == 0 &&
             cg_buf_append(&out, blk.data, blk.len) == 0 && cg_buf_puts(&out, "\n") == 0;
    }
    if (!ok) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", R->o.md_path);
    if (!(f = fopen(tmp, "w")) || fwrite(out.data, 1, out.len, f) != out.len) {
        snprintf(err, errcap, "%s: cannot write", tmp);
        goto out;
    }
    int cr = fclose(f);
    f = NULL;
    if (cr != 0 || rename(tmp, R->o.md_path) != 0) {
        snprintf(err, errcap, "%s: cannot replace", R->o.md_path);
        goto out;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    cg_buf_free(&in);
    cg_buf_free(&out);
    cg_buf_free(&blk);
    return rc;
}
