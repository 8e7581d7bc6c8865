/* eval_data: the replay data sets of tier-eval and tier-train.
 *
 * Owns: reading RouteLLM's CSVs (RFC 4180: quoted fields with embedded
 * newlines and doubled quotes) and JSONL files and RouterArena's JSONL into
 * cg_eval_item rows, the deterministic subsample, token counts (cl100k_base,
 * the encoding of gpt-4-1106-preview) and per-item cost in nano-USD from the
 * price tables. Which prices and token counts are used per set is recorded
 * in the set (price_weak / price_strong / cost_note) and printed by
 * tier-eval; docs/tiering.md explains each choice.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/money.h"
#include "route/eval.h"
#include "tokenize/tokenize.h"

#define MAX_DATA_FILE (256u << 20)

static const char *const MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1";
static const char *const GPT4 = "gpt-4-1106-preview";

static void errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void cg_eval_set_free(cg_eval_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].prompt);
    free(s->items);
    s->items = NULL;
    s->n = s->cap = 0;
}

static cg_eval_item *push(cg_eval_set *s) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        cg_eval_item *ni = realloc(s->items, nc * sizeof *ni);
        if (!ni)
            return NULL;
        s->items = ni;
        s->cap = nc;
    }
    cg_eval_item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static int read_all(const char *path, char **out, size_t *len, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (!f) {
        errf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t c = 1 << 16, n = 0;
    char *b = malloc(c + 1);
    int rc = -1;
    while (b) {
        if (n == c) {
            if (c >= MAX_DATA_FILE) {
                errf(err, cap, "%s: larger than 256 MiB", path);
                goto out;
            }
            char *nb = realloc(b, c * 2 + 1);
            if (!nb)
                break;
            b = nb;
            c *= 2;
        }
        size_t r = fread(b + n, 1, c - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (!b || n == c) {
        errf(err, cap, "out of memory reading %s", path);
        goto out;
    }
    if (ferror(f)) {
        errf(err, cap, "%s: read error", path);
        goto out;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    b = NULL;
    rc = 0;
out:
    free(b);
    fclose(f);
    return rc;
}

typedef struct counter {
    const cg_tokenizer *tok;
} counter;

static int64_t count(const counter *c, const char *s, size_t n) {
    if (!s)
        return 0;
    if (c->tok) {
        int64_t t = cg_tok_count(c->tok, s, n, 0);
        if (t >= 0)
            return t;
    }
    return (int64_t)((n + 3) / 4);
}

/* ------------------------------------------------------------------ */
/* CSV                                                                  */

#define CSV_MAX_FIELDS 16

typedef struct field {
    const char *p;
    size_t n;
    int quoted_escapes; /* contains "" to unescape */
} field;

/* Parses one record at *pp; returns the field count, 0 at the end, -1 on
 * malformed quoting. */
static int csv_record(const char **pp, const char *end, field *f) {
    const char *p = *pp;
    int nf = 0;
    if (p >= end)
        return 0;
    for (;;) {
        field cur = {p, 0, 0};
        if (p < end && *p == '"') {
            p++;
            cur.p = p;
            for (;;) {
                if (p >= end)
                    return -1;
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        cur.quoted_escapes = 1;
                        p += 2;
                        continue;
                    }
                    break;
                }
                p++;
            }
            cur.n = (size_t)(p - cur.p);
            p++; /* closing quote */
        } else {
            while (p < end && *p != ',' && *p != '\n' && *p != '\r')
                p++;
            cur.n = (size_t)(p - cur.p);
        }
        if (nf < CSV_MAX_FIELDS)
            f[nf] = cur;
        nf++;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '\r')
            p++;
        if (p < end && *p == '\n')
            p++;
        else if (p < end)
            return -1; /* garbage after a quoted field */
        break;
    }
    *pp = p;
    return nf;
}

static char *field_dup(const field *f) {
    char *s = malloc(f->n + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < f->n; i++) {
        s[o++] = f->p[i];
        if (f->quoted_escapes && f->p[i] == '"' && i + 1 < f->n && f->p[i + 1] == '"')
            i++;
    }
    s[o] = '\0';
    return s;
}

static int field_is(const field *f, const char *s) {
    size_t n = strlen(s);
    return f->n == n && memcmp(f->p, s, n) == 0;
}

static int field_bool(const field *f, double *out) {
    if (field_is(f, "True") || field_is(f, "true") || field_is(f, "1")) {
        *out = 1;
        return 0;
    }
    if (field_is(f, "False") || field_is(f, "false") || field_is(f, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* Loads a RouteLLM response CSV (prompt, weak, strong[, responses]). */
static int load_routellm_csv(const char *path, const char *group, const counter *tc, cg_eval_set *s,
                             char *err, size_t cap) {
    char *buf = NULL;
    size_t len;
    int rc = -1;
    if (read_all(path, &buf, &len, err, cap) != 0)
        return -1;
    const char *p = buf, *end = buf + len;
    field f[CSV_MAX_FIELDS];
    int nf = csv_record(&p, end, f);
    int c_prompt = -1, c_w = -1, c_s = -1, c_rw = -1, c_rs = -1;
    char rw[128], rs[128];
    snprintf(rw, sizeof rw, "%s_response", MIXTRAL);
    snprintf(rs, sizeof rs, "%s_response", GPT4);
    for (int i = 0; i < nf && i < CSV_MAX_FIELDS; i++) {
        if (field_is(&f[i], "prompt"))
            c_prompt = i;
        else if (field_is(&f[i], MIXTRAL))
            c_w = i;
        else if (field_is(&f[i], GPT4))
            c_s = i;
        else if (field_is(&f[i], rw))
            c_rw = i;
        else if (field_is(&f[i], rs))
            c_rs = i;
    }
    if (c_prompt < 0 || c_w < 0 || c_s < 0) {
        errf(err, cap, "%s: header lacks prompt, %s or %s", path, MIXTRAL, GPT4);
        goto out;
    }
    size_t row = 1;
    while ((nf = csv_record(&p, end, f)) != 0) {
        row++;
        if (nf < 0 || nf > CSV_MAX_FIELDS || nf <= c_prompt || nf <= c_w || nf <= c_s) {
            errf(err, cap, "%s: record %zu: malformed", path, row);
            goto out;
        }
        cg_eval_item *it = push(s);
        if (!it || !(it->prompt = field_dup(&f[c_prompt]))) {
            errf(err, cap, "out of memory");
            goto out;
        }
        it->len = strlen(it->prompt);
        if (field_bool(&f[c_w], &it->q_weak) || field_bool(&f[c_s], &it->q_strong)) {
            errf(err, cap, "%s: record %zu: correctness is not True/False", path, row);
            goto out;
        }
        snprintf(it->group, sizeof it->group, "%s", group);
        if (c_rw >= 0 && c_rs >= 0 && nf > c_rw && nf > c_rs) {
            char *a = field_dup(&f[c_rw]), *b = field_dup(&f[c_rs]);
            if (a && b) {
                it->out_weak = count(tc, a, strlen(a));
                it->out_strong = count(tc, b, strlen(b));
            }
            free(a);
            free(b);
            if (!a || !b) {
                errf(err, cap, "out of memory");
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_mmlu(const char *dir, const counter *tc, cg_eval_set *s, char *err, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/routellm/mmlu_responses", dir);
    DIR *d = opendir(path);
    if (!d) {
        errf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t nn = 0, cn = 0;
    int rc = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 10 || strncmp(e->d_name, "mmlu_", 5) != 0 || strcmp(e->d_name + l - 4, ".csv"))
            continue;
        if (nn == cn) {
            size_t nc = cn ? cn * 2 : 64;
            char **x = realloc(names, nc * sizeof *x);
            if (!x)
                goto out;
            names = x;
            cn = nc;
        }
        if (!(names[nn] = strdup(e->d_name)))
            goto out;
        nn++;
    }
    if (nn == 0) {
        errf(err, cap, "%s: no mmlu_*.csv files", path);
        goto out;
    }
    qsort(names, nn, sizeof *names, name_cmp);
    for (size_t i = 0; i < nn; i++) {
        char fp[4200], group[64];
        snprintf(fp, sizeof fp, "%s/%s", path, names[i]);
        size_t l = strlen(names[i]);
        snprintf(group, sizeof group, "%.*s", (int)(l - 9), names[i] + 5);
        if (load_routellm_csv(fp, group, tc, s, err, cap) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0 && err && !err[0])
        errf(err, cap, "out of memory");
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------------ */
/* JSONL                                                                */

typedef int (*line_fn)(json_t *o, void *arg, char *err, size_t cap);

static int each_jsonl(const char *path, line_fn fn, void *arg, char *err, size_t cap) {
    char *buf;
    size_t len;
    if (read_all(path, &buf, &len, err, cap) != 0)
        return -1;
    int rc = 0;
    size_t no = 0;
    for (char *p = buf; p < buf + len && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        no++;
        if (n > 0) {
            json_error_t je;
            json_t *o = json_loadb(p, n, 0, &je);
            if (!o || !json_is_object(o)) {
                errf(err, cap, "%s:%zu: %s", path, no, o ? "not an object" : je.text);
                rc = -1;
            } else {
                char sub[512] = "";
                if (fn(o, arg, sub, sizeof sub) != 0) {
                    errf(err, cap, "%s:%zu: %s", path, no, sub);
                    rc = -1;
                }
            }
            json_decref(o);
        }
        p += n + 1;
    }
    free(buf);
    return rc;
}

/* MT-bench: question id -> turns; judgements per (question, model, turn). */
typedef struct mt_q {
    int id;
    char *t1, *t2;
    char category[32];
    double score[2][2]; /* [model: 0 weak, 1 strong][turn-1] */
    int have[2][2];
    char *answers[2]; /* the turn-2 judgement prompt of each model */
} mt_q;

typedef struct mt_ctx {
    mt_q *q;
    size_t n, cap;
} mt_ctx;

static int mt_question(json_t *o, void *arg, char *err, size_t cap) {
    mt_ctx *c = arg;
    json_t *id = json_object_get(o, "question_id"), *turns = json_object_get(o, "turns");
    const char *cat = json_string_value(json_object_get(o, "category"));
    if (!json_is_integer(id) || !json_is_array(turns) || json_array_size(turns) < 2 ||
        !json_is_string(json_array_get(turns, 0)) || !json_is_string(json_array_get(turns, 1))) {
        errf(err, cap, "question without id or two turns");
        return -1;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 128;
        mt_q *x = realloc(c->q, nc * sizeof *x);
        if (!x) {
            errf(err, cap, "out of memory");
            return -1;
        }
        c->q = x;
        c->cap = nc;
    }
    mt_q *q = &c->q[c->n];
    memset(q, 0, sizeof *q);
    q->id = (int)json_integer_value(id);
    q->t1 = strdup(json_string_value(json_array_get(turns, 0)));
    q->t2 = strdup(json_string_value(json_array_get(turns, 1)));
    snprintf(q->category, sizeof q->category, "%s", cat ? cat : "");
    c->n++;
    if (!q->t1 || !q->t2) {
        errf(err, cap, "out of memory");
        return -1;
    }
    return 0;
}

static int mt_judgement(json_t *o, void *arg, char *err, size_t cap) {
    mt_ctx *c = arg;
    json_t *id = json_object_get(o, "question_id"), *sc = json_object_get(o, "score");
    json_t *turn = json_object_get(o, "turn");
    const char *model = json_string_value(json_object_get(o, "model"));
    if (!json_is_integer(id) || !json_is_number(sc) || !json_is_integer(turn) || !model) {
        errf(err, cap, "judgement without question_id, model, turn or score");
        return -1;
    }
    int m = strcmp(model, MIXTRAL) == 0 ? 0 : strcmp(model, GPT4) == 0 ? 1 : -1;
    int t = (int)json_integer_value(turn);
    if (m < 0 || t < 1 || t > 2)
        return 0; /* another model: not routed between */
    for (size_t i = 0; i < c->n; i++) {
        mt_q *q = &c->q[i];
        if (q->id != (int)json_integer_value(id))
            continue;
        q->score[m][t - 1] = json_number_value(sc);
        q->have[m][t - 1] = 1;
        const char *up = json_string_value(json_object_get(o, "user_prompt"));
        if (t == 2 && up && !q->answers[m] && !(q->answers[m] = strdup(up))) {
            errf(err, cap, "out of memory");
            return -1;
        }
        return 0;
    }
    return 0; /* judgement of a question not in the question file */
}

/* Text between `from` and `to` after *pos in s (advancing *pos), or NULL. */
static const char *between(const char *s, size_t *pos, const char *from, const char *to,
                           size_t *len) {
    const char *a = strstr(s + *pos, from);
    if (!a)
        return NULL;
    a += strlen(from);
    const char *b = strstr(a, to);
    if (!b)
        return NULL;
    *len = (size_t)(b - a);
    *pos = (size_t)(b - s);
    return a;
}

static int load_mtbench(const char *dir, const counter *tc, cg_eval_set *s, char *err, size_t cap) {
    char path[4096];
    mt_ctx c = {0};
    int rc = -1;
    snprintf(path, sizeof path, "%s/routellm/mt_bench_question.jsonl", dir);
    if (each_jsonl(path, mt_question, &c, err, cap) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/routellm/mt_bench_judgements.jsonl", dir);
    if (each_jsonl(path, mt_judgement, &c, err, cap) != 0)
        goto out;
    for (size_t i = 0; i < c.n; i++) {
        mt_q *q = &c.q[i];
        if (!(q->have[0][0] && q->have[0][1] && q->have[1][0] && q->have[1][1]))
            continue; /* not judged for both models and turns */
        cg_eval_item *it = push(s);
        if (!it || !(it->prompt = strdup(q->t1))) {
            errf(err, cap, "out of memory");
            goto out;
        }
        it->len = strlen(it->prompt);
        snprintf(it->group, sizeof it->group, "%s", q->category);
        it->q_weak = (q->score[0][0] + q->score[0][1]) / 2;
        it->q_strong = (q->score[1][0] + q->score[1][1]) / 2;
        /* Tokens: turn 1 = q1 -> a1; turn 2 = q1 a1 q2 -> a2 (per model). */
        int64_t t1 = count(tc, q->t1, strlen(q->t1)), t2 = count(tc, q->t2, strlen(q->t2));
        for (int m = 0; m < 2; m++) {
            int64_t a1 = 0, a2 = 0;
            const char *up = q->answers[m];
            size_t pos = 0, l1 = 0, l2 = 0;
            const char *x1 =
                up ? between(up, &pos, "### Assistant A:\n", "\n\n### User:\n", &l1) : NULL;
            const char *x2 = x1 ? between(up, &pos, "### Assistant A:\n",
                                          "\n\n<|The End of Assistant A's Conversation", &l2)
                                : NULL;
            if (x1 && x2) {
                a1 = count(tc, x1, l1);
                a2 = count(tc, x2, l2);
            }
            int64_t in = t1 + t1 + a1 + t2, out = a1 + a2;
            if (m == 0)
                it->in_weak = in, it->out_weak = out;
            else
                it->in_strong = in, it->out_strong = out;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < c.n; i++) {
        free(c.q[i].t1);
        free(c.q[i].t2);
        free(c.q[i].answers[0]);
        free(c.q[i].answers[1]);
    }
    free(c.q);
    return rc;
}

/* RouterArena: one JSONL per model, joined on global_index. */
typedef struct ra_row {
    char *id, *question;
    double score;
    int64_t in, out;
} ra_row;

typedef struct ra_ctx {
    ra_row *r;
    size_t n, cap;
} ra_ctx;

static int ra_line(json_t *o, void *arg, char *err, size_t cap) {
    ra_ctx *c = arg;
    const char *id = json_string_value(json_object_get(o, "global_index"));
    const char *q = json_string_value(json_object_get(o, "question"));
    json_t *ev = json_object_get(o, "evaluation_result"), *tu = json_object_get(o, "token_usage");
    json_t *sc = json_object_get(ev, "score");
    json_t *in = json_object_get(tu, "input_tokens"), *out = json_object_get(tu, "output_tokens");
    if (!id || !q || !json_is_number(sc) || !json_is_integer(in) || !json_is_integer(out)) {
        errf(err, cap, "row lacks global_index, question, score or token usage");
        return -1;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        ra_row *x = realloc(c->r, nc * sizeof *x);
        if (!x) {
            errf(err, cap, "out of memory");
            return -1;
        }
        c->r = x;
        c->cap = nc;
    }
    ra_row *r = &c->r[c->n++];
    r->id = strdup(id);
    r->question = strdup(q);
    r->score = json_number_value(sc);
    r->in = json_integer_value(in);
    r->out = json_integer_value(out);
    if (!r->id || !r->question) {
        errf(err, cap, "out of memory");
        return -1;
    }
    return 0;
}

static void ra_free(ra_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->r[i].id);
        free(c->r[i].question);
    }
    free(c->r);
}

static int ra_cmp(const void *a, const void *b) {
    return strcmp(((const ra_row *)a)->id, ((const ra_row *)b)->id);
}

static int load_routerarena(const char *dir, const char *weak, const char *strong, cg_eval_set *s,
                            char *err, size_t cap) {
    char path[4096];
    ra_ctx w = {0}, st = {0};
    int rc = -1;
    snprintf(path, sizeof path, "%s/routerarena/%s.jsonl", dir, weak);
    if (each_jsonl(path, ra_line, &w, err, cap) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/routerarena/%s.jsonl", dir, strong);
    if (each_jsonl(path, ra_line, &st, err, cap) != 0)
        goto out;
    qsort(st.r, st.n, sizeof *st.r, ra_cmp);
    for (size_t i = 0; i < w.n; i++) {
        ra_row key = {.id = w.r[i].id};
        ra_row *m = bsearch(&key, st.r, st.n, sizeof *st.r, ra_cmp);
        if (!m)
            continue;
        cg_eval_item *it = push(s);
        if (!it || !(it->prompt = strdup(w.r[i].question))) {
            errf(err, cap, "out of memory");
            goto out;
        }
        it->len = strlen(it->prompt);
        const char *us = strrchr(w.r[i].id, '_');
        size_t gl = us ? (size_t)(us - w.r[i].id) : strlen(w.r[i].id);
        snprintf(it->group, sizeof it->group, "%.*s", (int)(gl < 63 ? gl : 63), w.r[i].id);
        it->q_weak = w.r[i].score;
        it->q_strong = m->score;
        it->in_weak = w.r[i].in;
        it->out_weak = w.r[i].out;
        it->in_strong = m->in;
        it->out_strong = m->out;
    }
    rc = 0;
out:
    ra_free(&w);
    ra_free(&st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Subsample, tokens, prices                                            */

static int unit_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int subsample(cg_eval_set *s, size_t keep) {
    if (keep == 0 || keep >= s->n)
        return 0;
    double *u = malloc(s->n * sizeof *u), *v = malloc(s->n * sizeof *v);
    if (!u || !v) {
        free(u);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < s->n; i++)
        u[i] = v[i] = cg_eval_unit(s->items[i].prompt, s->items[i].len, 7);
    qsort(v, s->n, sizeof *v, unit_cmp);
    double cut = v[keep - 1];
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (u[i] <= cut && o < keep)
            s->items[o++] = s->items[i];
        else
            free(s->items[i].prompt);
    }
    s->n = o;
    free(u);
    free(v);
    return 0;
}

static int resolve_price(const cg_eval_load_opts *o, const char *model, const char *alias,
                         cg_price *out, char *src, size_t srccap, char *err, size_t cap) {
    const cg_price *p = o->builtin ? cg_prices_find(o->builtin, model) : NULL;
    if (p && p->input >= 0 && p->output >= 0) {
        snprintf(src, srccap, "built-in table, entry \"%.80s\"", p->model);
    } else {
        const char *name = alias ? alias : model;
        p = o->litellm ? cg_prices_find(o->litellm, name) : NULL;
        if (!p || p->input < 0 || p->output < 0) {
            errf(err, cap, "no price for %s: not in the built-in table%s", model,
                 o->litellm ? " nor in the LiteLLM file" : " and no LiteLLM file loaded");
            return -1;
        }
        snprintf(src, srccap, "not in the built-in table; LiteLLM file entry \"%.80s\"", p->model);
    }
    *out = *p;
    char a[32], b[32];
    size_t l = strlen(src);
    snprintf(src + l, srccap - l, ": $%s in / $%s out per 1M", cg_money_fmt(p->input, a, sizeof a),
             cg_money_fmt(p->output, b, sizeof b));
    return 0;
}

static int64_t price_tokens(const cg_price *p, int64_t in, int64_t out) {
    return cg_money_femto_to_nano(cg_money_tok_femto(in, p->input) +
                                  cg_money_tok_femto(out, p->output));
}

int cg_eval_load(const char *name, const cg_eval_load_opts *o, cg_eval_set *s, char *err,
                 size_t cap) {
    memset(s, 0, sizeof *s);
    if (err && cap)
        err[0] = '\0';
    if (!name || !o || !o->data_dir) {
        errf(err, cap, "no data set or data directory");
        return -1;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    counter tc = {NULL};
    const char *tok_note = "token counts: cl100k_base (exact for gpt-4-1106-preview; an "
                           "approximation for the other model)";
    if (o->count_tokens) {
        char terr[256];
        tc.tok = cg_tok_get(CG_ENC_CL100K, terr, sizeof terr);
        if (!tc.tok)
            tok_note = "token counts: estimated as bytes/4 (cl100k_base rank file not found)";
    } else {
        tok_note = "token counts: estimated as bytes/4 (--no-tokenizer)";
    }
    const char *alias_weak = NULL, *alias_strong = NULL;
    int rc = -1;
    if (strcmp(name, "mmlu") == 0 || strcmp(name, "gsm8k") == 0 || strcmp(name, "mt-bench") == 0) {
        snprintf(s->weak, sizeof s->weak, "%s", MIXTRAL);
        snprintf(s->strong, sizeof s->strong, "%s", GPT4);
        alias_weak = "mistral/open-mixtral-8x7b"; /* Mistral's own API price */
        alias_strong = GPT4;
    }
    if (strcmp(name, "mmlu") == 0) {
        snprintf(s->quality, sizeof s->quality, "accuracy (answer correct, 0/1)");
        if (load_mmlu(o->data_dir, &tc, s, err, cap) != 0)
            goto out;
    } else if (strcmp(name, "gsm8k") == 0) {
        char path[4096];
        snprintf(s->quality, sizeof s->quality, "accuracy (answer correct, 0/1)");
        snprintf(path, sizeof path, "%s/routellm/gsm8k_responses.csv", o->data_dir);
        if (load_routellm_csv(path, "gsm8k", &tc, s, err, cap) != 0)
            goto out;
    } else if (strcmp(name, "mt-bench") == 0) {
        snprintf(s->quality, sizeof s->quality, "GPT-4 judge score 1-10, mean of both turns");
        if (load_mtbench(o->data_dir, &tc, s, err, cap) != 0)
            goto out;
    } else if (strcmp(name, "routerarena") == 0) {
        snprintf(s->weak, sizeof s->weak, "claude-3-haiku-20240307");
        snprintf(s->strong, sizeof s->strong, "gemini-2.0-flash-001");
        alias_strong = "gemini/gemini-2.0-flash-001"; /* Google AI Studio price */
        snprintf(s->quality, sizeof s->quality, "RouterArena score (0-1, per-task metric)");
        if (load_routerarena(o->data_dir, s->weak, s->strong, s, err, cap) != 0)
            goto out;
    } else {
        errf(err, cap, "unknown data set \"%s\" (known: %s)", name, CG_EVAL_SETS);
        goto out;
    }
    if (s->n == 0) {
        errf(err, cap, "%s: no rows", name);
        goto out;
    }
    if (subsample(s, o->subsample) != 0) {
        errf(err, cap, "out of memory");
        goto out;
    }
    cg_price pw, ps;
    if (resolve_price(o, s->weak, alias_weak, &pw, s->price_weak, sizeof s->price_weak, err, cap) !=
            0 ||
        resolve_price(o, s->strong, alias_strong, &ps, s->price_strong, sizeof s->price_strong, err,
                      cap) != 0)
        goto out;
    for (size_t i = 0; i < s->n; i++) {
        cg_eval_item *it = &s->items[i];
        it->split = cg_eval_split(it->prompt, it->len);
        if (strcmp(name, "mmlu") == 0) {
            it->in_weak = it->in_strong = count(&tc, it->prompt, it->len);
            it->out_weak = it->out_strong = 1; /* one answer letter; no responses in the data */
        } else if (strcmp(name, "gsm8k") == 0) {
            it->in_weak = it->in_strong = count(&tc, it->prompt, it->len);
        }
        it->cost_weak = price_tokens(&pw, it->in_weak, it->out_weak);
        it->cost_strong = price_tokens(&ps, it->in_strong, it->out_strong);
    }
    if (strcmp(name, "mmlu") == 0)
        snprintf(s->cost_note, sizeof s->cost_note,
                 "%s; input = the prompt as stored, output = 1 token (the files hold no "
                 "responses)",
                 tok_note);
    else if (strcmp(name, "gsm8k") == 0)
        snprintf(s->cost_note, sizeof s->cost_note,
                 "%s; input = the question as stored (no few-shot context), output = each "
                 "model's own stored response",
                 tok_note);
    else if (strcmp(name, "mt-bench") == 0)
        snprintf(s->cost_note, sizeof s->cost_note,
                 "%s; both turns: input q1 + (q1 a1 q2), output a1 + a2 of the routed model",
                 tok_note);
    else
        snprintf(s->cost_note, sizeof s->cost_note,
                 "token counts: each model's reported usage in the RouterArena files");
    rc = 0;
out:
    if (rc != 0)
        cg_eval_set_free(s);
    return rc;
}
