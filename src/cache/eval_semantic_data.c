/* eval_semantic_data: the data of `costgate eval semantic`.
 *
 * Owns: each distinct text once (a hash table of texts, their embeddings),
 * the loaders of the evaluation sets into one pair shape (STS-B CSV, the
 * GPTCache QQP pairs and paraphrases, Redis LangCache near misses,
 * MeanCache follow-ups and duplicates; --limit keeps an even stride of each
 * file), the built-in adversarial pairs, the embedding thread pool, and the
 * --vectors file that keeps the embeddings between runs.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache/eval_semantic_internal.h"

/* ------------------------------------------------------------------ */
/* Texts: each distinct text once                                       */

static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static int texts_grow_table(texts *t) {
    size_t nc = t->tcap ? t->tcap * 2 : 1024;
    uint32_t *nt = calloc(nc, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = (size_t)fnv(t->s[i], t->len[i]) & (nc - 1);
        while (nt[h])
            h = (h + 1) & (nc - 1);
        nt[h] = (uint32_t)(i + 1);
    }
    free(t->tab);
    t->tab = nt;
    t->tcap = nc;
    return 0;
}

long es_text_id(texts *t, const char *s, size_t n) {
    if ((t->n + 1) * 2 > t->tcap && texts_grow_table(t) != 0)
        return -1;
    size_t h = (size_t)fnv(s, n) & (t->tcap - 1);
    while (t->tab[h]) {
        size_t i = t->tab[h] - 1;
        if (t->len[i] == n && memcmp(t->s[i], s, n) == 0)
            return (long)i;
        h = (h + 1) & (t->tcap - 1);
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        char **ns = realloc(t->s, nc * sizeof *ns);
        if (!ns)
            return -1;
        t->s = ns;
        size_t *nl = realloc(t->len, nc * sizeof *nl);
        if (!nl)
            return -1;
        t->len = nl;
        t->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = '\0';
    t->s[t->n] = c;
    t->len[t->n] = n;
    t->tab[h] = (uint32_t)(t->n + 1);
    return (long)t->n++;
}

void es_texts_free(texts *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    free(t->len);
    free(t->tab);
    free(t->vec);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ */
/* Pair sets                                                            */

static int add_pair(pairset *s, texts *t, const char *cached, size_t cl, const char *asked,
                    size_t al, int label, double score, int expect, size_t idx) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        pair *np = realloc(s->p, nc * sizeof *np);
        if (!np)
            return -1;
        s->p = np;
        s->cap = nc;
    }
    long a = es_text_id(t, cached, cl), b = es_text_id(t, asked, al);
    if (a < 0 || b < 0)
        return -1;
    s->p[s->n++] = (pair){(uint32_t)a, (uint32_t)b, label, score, expect, (uint32_t)idx, ES_ALL};
    if (label)
        s->npos++;
    else
        s->nneg++;
    return 0;
}

/* --limit: keep item i of total when it is one of `limit` evenly spaced
 * indexes floor(k * total / limit). */
static int keep(size_t i, size_t total, size_t limit) {
    if (!limit || total <= limit)
        return 1;
    /* i is kept iff some k has floor(k*total/limit) == i */
    size_t k = (i * limit + total - 1) / total; /* smallest k with k*total/limit >= i */
    return k < limit && (k * total) / limit == i;
}

/* ------------------------------------------------------------------ */
/* Files                                                                */

/* One CSV field at *p (quoted with "" or \" escapes, or bare) into out;
 * *p moves past the field and its separator. Returns the separator read:
 * ',', '\n' or 0 at the end. */
static int csv_field(const char **p, const char *end, cg_buf *out) {
    const char *s = *p;
    cg_buf_reset(out);
    if (s < end && *s == '"') {
        s++;
        while (s < end) {
            if (*s == '\\' && s + 1 < end && s[1] == '"') {
                cg_buf_append(out, "\"", 1);
                s += 2;
            } else if (*s == '"' && s + 1 < end && s[1] == '"') {
                cg_buf_append(out, "\"", 1);
                s += 2;
            } else if (*s == '"') {
                s++;
                break;
            } else {
                cg_buf_append(out, s, 1);
                s++;
            }
        }
    }
    while (s < end && *s != ',' && *s != '\n') {
        if (*s != '\r')
            cg_buf_append(out, s, 1);
        s++;
    }
    int sep = s < end ? *s : 0;
    *p = s < end ? s + 1 : end;
    return sep;
}

/* Rows of exactly three fields; calls row() for each. -1 on a bad row. */
typedef int (*row_fn)(void *ctx, const char *f1, size_t l1, const char *f2, size_t l2,
                      const char *f3);

static int csv3(const cg_buf *file, int header, row_fn row, void *ctx) {
    const char *p = file->data, *end = file->data + file->len;
    cg_buf f[3];
    int rc = 0, line = 0;
    for (int i = 0; i < 3; i++)
        cg_buf_init(&f[i], 1u << 20);
    while (p < end && rc == 0) {
        int sep = 0, nf = 0;
        while (nf < 3) {
            sep = csv_field(&p, end, &f[nf]);
            nf++;
            if (sep != ',')
                break;
        }
        line++;
        if (nf == 1 && f[0].len == 0)
            continue; /* blank line */
        if (nf != 3 || sep == ',') {
            rc = -1;
            break;
        }
        if (header && line == 1)
            continue;
        rc = row(ctx, f[0].data ? f[0].data : "", f[0].len, f[1].data ? f[1].data : "", f[1].len,
                 f[2].data ? f[2].data : "");
    }
    for (int i = 0; i < 3; i++)
        cg_buf_free(&f[i]);
    return rc;
}

typedef struct {
    pairset *s;
    texts *t;
    size_t limit, idx;
    int lang;
} csv_ctx;

static int count_row(void *ctx, const char *a, size_t al, const char *b, size_t bl, const char *c) {
    (void)a, (void)al, (void)b, (void)bl, (void)c;
    ((csv_ctx *)ctx)->idx++;
    return 0;
}

static int add_row(void *ctx, const char *a, size_t al, const char *b, size_t bl, const char *c) {
    csv_ctx *x = ctx;
    size_t i = x->idx++;
    if (!keep(i, x->s->total, x->limit))
        return 0;
    char *e;
    double v = strtod(c, &e);
    if (e == c)
        return -1;
    int label = x->lang ? (v != 0.0) : 0;
    return add_pair(x->s, x->t, a, al, b, bl, label, v, 0, i);
}

static int load_csv(pairset *s, texts *t, const char *path, int lang, size_t limit, char *err,
                    size_t errcap) {
    cg_buf b;
    cg_buf_init(&b, MAX_FILE_BYTES);
    int rc = -1;
    if (cg_buf_read_file(&b, path) != 0) {
        snprintf(err, errcap, "%s: cannot read", path);
        goto out;
    }
    csv_ctx c = {s, t, limit, 0, lang};
    if (csv3(&b, lang, count_row, &c) != 0) {
        snprintf(err, errcap, "%s: not a three-column CSV", path);
        goto out;
    }
    s->total = c.idx;
    c.idx = 0;
    if (csv3(&b, lang, add_row, &c) != 0) {
        snprintf(err, errcap, "%s: bad row or out of memory", path);
        goto out;
    }
    rc = 0;
out:
    cg_buf_free(&b);
    return rc;
}

static const char *jstr(json_t *o, const char *k, size_t *len) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* A JSON array of objects; for each kept element, pairs of string fields
 * (cached key, asked key) become pairs with the given label. */
static int load_json_pairs(pairset *s, texts *t, const char *path, const char *ka, const char *kb,
                           const char *klabel, int label, size_t limit, char *err, size_t errcap) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    int rc = -1;
    if (!root) {
        snprintf(err, errcap, "%s: %s", path, je.text);
        return -1;
    }
    if (!json_is_array(root)) {
        snprintf(err, errcap, "%s: not a JSON array", path);
        goto out;
    }
    size_t total = json_array_size(root);
    s->total += total;
    for (size_t i = 0; i < total; i++) {
        if (!keep(i, total, limit))
            continue;
        json_t *o = json_array_get(root, i);
        size_t al = 0, bl = 0;
        const char *a = jstr(o, ka, &al), *b = jstr(o, kb, &bl);
        if (!a || !b) {
            snprintf(err, errcap, "%s: element %zu lacks \"%s\" or \"%s\"", path, i, ka, kb);
            goto out;
        }
        int lab = label;
        if (klabel) {
            json_t *l = json_object_get(o, klabel);
            if (!json_is_integer(l)) {
                snprintf(err, errcap, "%s: element %zu: no integer \"%s\"", path, i, klabel);
                goto out;
            }
            lab = json_integer_value(l) != 0;
        }
        if (add_pair(s, t, a, al, b, bl, lab, 0, 0, i) != 0) {
            snprintf(err, errcap, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Adversarial pairs: what the gate is built for, and what it misses     */

typedef struct {
    const char *cached, *asked;
    cg_gate_reason expect; /* CG_GATE_PASS: a known limit, reported only */
} adv_pair;

static const adv_pair ADVERSARIAL[] = {
    {"How do I convert 10 USD to EUR?", "How do I convert 100 USD to EUR?", CG_GATE_NUMBERS},
    {"What was the population of Berlin in 2020?", "What was the population of Berlin in 2021?",
     CG_GATE_NUMBERS},
    {"top 5 coffee shops in Seattle", "top 10 coffee shops in Seattle", CG_GATE_NUMBERS},
    {"Download Python 3.11 installer for Windows", "Download Python 3.12 installer for Windows",
     CG_GATE_NUMBERS},
    {"What is 15% of 2,000?", "What is 15% of 20,000?", CG_GATE_NUMBERS},
    {"Who won the 3rd season of the show?", "Who won the 4th season of the show?", CG_GATE_NUMBERS},
    {"Is it safe to drink coffee while pregnant?", "Is it not safe to drink coffee while pregnant?",
     CG_GATE_NEGATION},
    {"Why does my code compile?", "Why doesn't my code compile?", CG_GATE_NEGATION},
    {"Can I take ibuprofen with alcohol?", "Can I take ibuprofen without alcohol?",
     CG_GATE_NEGATION},
    {"Which foods contain gluten?", "Which foods contain no gluten?", CG_GATE_NEGATION},
    {"Should I ever reboot the server during a backup?",
     "Should I never reboot the server during a backup?", CG_GATE_NEGATION},
    {"서울에 가고 싶어요", "서울에 가고 싶지 않아요", CG_GATE_NEGATION},
    {"이 약을 먹어도 돼요?", "이 약을 먹으면 안 돼요?", CG_GATE_NEGATION},
    {"주문을 취소할 수 있어요?", "주문을 취소할 수 없어요?", CG_GATE_NEGATION},
    {"What does 'carpe diem' mean?", "What does 'memento mori' mean?", CG_GATE_QUOTES},
    {"search exact phrase \"null reference\"", "search exact phrase \"null pointer\"",
     CG_GATE_QUOTES},
    {"How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?",
     CG_GATE_ORDER},
    {"weather in Berlin today", "weather in Paris today", CG_GATE_ENTITIES},
    {"weather in Sydney tomorrow", "Sydney weather today", CG_GATE_TIME},
    {"restaurants in Paris under €30", "Paris restaurants under $30", CG_GATE_UNITS},
    {"when is the best time to buy stocks", "when is the best time to sell stocks",
     CG_GATE_DIRECTION},
    {"pandas merge examples site:github.com", "pandas merge examples site:gitlab.com",
     CG_GATE_CODE},
    /* known limits: what no rule sees */
    {"What is the best eyeshadow color for blue eyes?",
     "What is the best eyeshadow color for brown eyes?", CG_GATE_PASS},
    {"capital of Canada", "population of Canada", CG_GATE_PASS},
};
#define N_ADV (sizeof ADVERSARIAL / sizeof ADVERSARIAL[0])

/* ------------------------------------------------------------------ */
/* Embedding pool                                                       */

typedef struct {
    const cg_embedder *e;
    texts *t;
    atomic_size_t next, done;
    atomic_int failed;
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->t->n)
            break;
        if (cg_embed(p->e, p->t->s[i], p->t->len[i], p->t->vec + i * CG_EMBED_DIM) != 0)
            atomic_store(&p->failed, 1);
        atomic_fetch_add(&p->done, 1);
    }
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int es_embed_all(const cg_embedder *e, texts *t, int threads, int quiet) {
    t->vec = malloc(t->n * CG_EMBED_DIM * sizeof *t->vec + 1);
    if (!t->vec)
        return -1;
    pool p = {.e = e, .t = t};
    atomic_init(&p.next, 0);
    atomic_init(&p.done, 0);
    atomic_init(&p.failed, 0);
    pthread_t th[64];
    int started = 0;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (!quiet)
        fprintf(stderr, "eval semantic: embedding %zu distinct texts on %d threads\n", t->n,
                threads);
    double t0 = now_s(), last = t0;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[started], NULL, worker, &p) == 0)
            started++;
    if (started == 0)
        worker(&p);
    while (atomic_load(&p.done) < t->n && started > 0) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = now_s();
        if (!quiet && now - last >= 5.0) {
            size_t d = atomic_load(&p.done);
            double rate = (double)d / (now - t0);
            fprintf(stderr, "  %zu/%zu (%.0f%%), %.0f texts/s, ~%.0f s left\n", d, t->n,
                    100.0 * (double)d / (double)t->n, rate,
                    rate > 0 ? (double)(t->n - d) / rate : 0.0);
            last = now;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (!quiet)
        fprintf(stderr, "  done in %.1f s\n", now_s() - t0);
    return atomic_load(&p.failed) ? -1 : 0;
}

/* --vectors: a header (magic, dimension, text count, a hash of every text
 * and of the model file's size) and the vectors. */
#define VEC_MAGIC "cgsemvec1"

static uint64_t texts_key(const texts *t, const char *model) {
    uint64_t h = fnv(VEC_MAGIC, sizeof VEC_MAGIC);
    for (size_t i = 0; i < t->n; i++) {
        h ^= fnv(t->s[i], t->len[i]) + i;
        h *= UINT64_C(0x100000001b3);
    }
    struct stat st;
    if (stat(model, &st) == 0)
        h ^= (uint64_t)st.st_size * UINT64_C(0x9e3779b97f4a7c15);
    return h;
}

/* 0 when the file held this run's vectors (now in t->vec). */
int es_vectors_load(texts *t, const char *path, const char *model) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char magic[sizeof VEC_MAGIC];
    uint64_t dim = 0, n = 0, key = 0;
    int rc = -1;
    if (fread(magic, 1, sizeof magic, f) != sizeof magic ||
        memcmp(magic, VEC_MAGIC, sizeof magic) || fread(&dim, sizeof dim, 1, f) != 1 ||
        fread(&n, sizeof n, 1, f) != 1 || fread(&key, sizeof key, 1, f) != 1 ||
        dim != CG_EMBED_DIM || n != t->n || key != texts_key(t, model))
        goto out;
    t->vec = malloc(t->n * CG_EMBED_DIM * sizeof *t->vec + 1);
    if (!t->vec || fread(t->vec, sizeof *t->vec * CG_EMBED_DIM, t->n, f) != t->n) {
        free(t->vec);
        t->vec = NULL;
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

int es_vectors_save(const texts *t, const char *path, const char *model) {
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    uint64_t dim = CG_EMBED_DIM, n = t->n, key = texts_key(t, model);
    int ok = fwrite(VEC_MAGIC, 1, sizeof VEC_MAGIC, f) == sizeof VEC_MAGIC &&
             fwrite(&dim, sizeof dim, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1 &&
             fwrite(&key, sizeof key, 1, f) == 1 &&
             fwrite(t->vec, sizeof *t->vec * CG_EMBED_DIM, t->n, f) == t->n;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

float es_dot(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < CG_EMBED_DIM; i++)
        s += (double)a[i] * (double)b[i];
    return (float)s;
}

int es_load_all(run *R, char *err, size_t errcap) {
    char path[PATH_MAX + 64];
    const char *d = R->o.data;
    texts *t = &R->t;
    size_t lim = R->o.limit;
    static const struct {
        int set;
        const char *key, *title;
    } meta[S_N] = {
        {S_STSB_TEST, "stsb_test", "STS-B test"},
        {S_STSB_DEV, "stsb_dev", "STS-B dev"},
        {S_QQP, "qqp", "GPTCache QQP pairs (similiar_qqp_full.json)"},
        {S_MOCK, "mock", "GPTCache paraphrases (mock_data.json), positives only"},
        {S_LANG, "langcache", "Redis LangCache near misses (chatgpt_pairs.csv)"},
        {S_MC_FOLLOW, "meancache_followup",
         "MeanCache follow-ups asked against their main query (negatives)"},
        {S_MC_DUP, "meancache_dup", "MeanCache duplicates of a first query (new_claude u0)"},
        {S_MC_DUP_CTX, "meancache_dup_followup",
         "MeanCache duplicates of a follow-up query (new_claude u1)"},
        {S_ADV, "adversarial", "adversarial pairs (built in)"},
    };
    for (int i = 0; i < S_N; i++) {
        R->s[meta[i].set].key = meta[i].key;
        R->s[meta[i].set].title = meta[i].title;
    }
#define P(rel) (snprintf(path, sizeof path, "%s/%s", d, rel), path)
    if (load_csv(&R->s[S_STSB_TEST], t, P("stsb/philipmay-stsb-multi-mt/stsb-en-test.csv"), 0, lim,
                 err, errcap) ||
        load_csv(&R->s[S_STSB_DEV], t, P("stsb/philipmay-stsb-multi-mt/stsb-en-dev.csv"), 0, lim,
                 err, errcap) ||
        load_json_pairs(&R->s[S_QQP], t, P("gptcache/similiar_qqp_full.json"), "text_a", "text_b",
                        "label", 0, lim, err, errcap) ||
        load_json_pairs(&R->s[S_MOCK], t, P("gptcache/mock_data.json"), "origin", "similar", NULL,
                        1, lim, err, errcap) ||
        load_csv(&R->s[S_LANG], t, P("langcache/chatgpt_pairs.csv"), 1, lim, err, errcap) ||
        load_json_pairs(&R->s[S_MC_FOLLOW], t, P("meancache/contextual_queries.json"), "Main Query",
                        "Follow-Up Query", NULL, 0, lim, err, errcap) ||
        load_json_pairs(&R->s[S_MC_FOLLOW], t, P("meancache/new_claude.json"), "u0", "u1", NULL, 0,
                        lim, err, errcap) ||
        load_json_pairs(&R->s[S_MC_DUP], t, P("meancache/new_claude.json"), "u0", "u0_duplicate",
                        NULL, 1, lim, err, errcap) ||
        load_json_pairs(&R->s[S_MC_DUP_CTX], t, P("meancache/new_claude.json"), "u1",
                        "u1_duplicate", NULL, 1, lim, err, errcap))
        return -1;
#undef P
    for (size_t i = 0; i < N_ADV; i++) {
        const adv_pair *a = &ADVERSARIAL[i];
        if (add_pair(&R->s[S_ADV], t, a->cached, strlen(a->cached), a->asked, strlen(a->asked), 0,
                     0, (int)a->expect, i) != 0) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    R->s[S_ADV].total = N_ADV;
    for (int i = 0; i < S_N; i++)
        R->s[i].loaded = 1;
    return 0;
}
