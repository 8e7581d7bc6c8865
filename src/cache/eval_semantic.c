/* eval_semantic: `costgate eval semantic` (see eval_semantic.h).
 *
 * Owns: loading the evaluation data sets into one pair shape, embedding each
 * distinct text once on a small thread pool, the per-pair gate verdicts
 * (every rule on its own, so any rule set can be scored afterwards), the
 * threshold curves, the rule-effect table, the threshold choice, and the
 * outputs (table, CSV, JSON, the bench/RESULTS.md block).
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

#include "cache/gate.h"
#include "core/buf.h"
#include "embed/embed.h"

#define DEFAULT_MODEL "var/models/use-lite.bin"
#define T_MIN 70 /* thresholds T_MIN/100 .. T_MAX/100, step 0.01 */
#define T_MAX 99
#define NT (T_MAX - T_MIN + 1)
#define MAX_FILE_BYTES (64u << 20)
#define MD_BEGIN "<!-- semantic-eval:begin -->"
#define MD_END "<!-- semantic-eval:end -->"

/* Per-pair gate bits: bit r = rule r alone failed (r = 1..CG_GATE_N-1);
 * two more bits for the variants. */
#define FB_DIGITS_ONLY (1u << 29)
#define FB_ENT_STRICT (1u << 30)
#define FB_COMPUTED (1u << 31)

static const char USAGE[] =
    "usage: costgate eval semantic [options]\n"
    "\n"
    "Measures the semantic cache on public data: the built-in embedder's cosine\n"
    "similarity (STS-B Spearman), and per similarity threshold 0.70..0.99 the hit\n"
    "rate, precision and false-hit rate without and with the second gate\n"
    "(src/cache/gate.c) on GPTCache's QQP pairs and paraphrases, Redis LangCache's\n"
    "near misses and MeanCache's follow-up queries; the effect of each gate rule;\n"
    "a set of adversarial pairs; and the default threshold: the lowest one where\n"
    "precision with the gate on QQP reaches the bar (when none does, the lowest\n"
    "within one standard error of the highest precision). Pairwise protocol: the\n"
    "first text of a pair is cached, the second is asked (docs/semantic-cache.md).\n"
    "\n"
    "  --data DIR         data folder (default $CG_SHARED_DIR/data, then ../shared/data)\n"
    "  -m, --model PATH   embedder model (default var/models/use-lite.bin, looked up in\n"
    "                     the current directory, $CG_SOURCE_DIR, then above the binary)\n"
    "  --limit N          at most N pairs of each data set (an even, deterministic\n"
    "                     stride over the file), for a quick run\n"
    "  --threads N        embedding threads (default 2)\n"
    "  --rules LIST       gate rules of the \"gate\" columns: default, all, none or a\n"
    "                     comma list of length,numbers,negation,quotes,entities,\n"
    "                     direction,qword,time,units,code,order (default: default,\n"
    "                     every rule but qword)\n"
    "  --bar P            precision the default threshold must reach (default 0.95)\n"
    "  --rules-at T       threshold of the rule-effect table (default: the chosen one)\n"
    "  --csv DIR          write curves.csv, rules.csv, adversarial.csv and pairs.csv\n"
    "                     (every pair with cosine >= 0.70: label, cosine, the gate's\n"
    "                     verdict and why, both texts) into DIR\n"
    "  --json FILE        write every number as JSON\n"
    "  --results-md FILE  replace the block between " MD_BEGIN "\n"
    "                     and " MD_END " in FILE (bench/RESULTS.md)\n"
    "  --vectors FILE     keep the embeddings in FILE: read when it holds the same\n"
    "                     texts (and model file size), else computed and written; for\n"
    "                     re-running after a gate change (about 300 MB for all pairs)\n"
    "  -q, --quiet        no progress on stderr\n"
    "  -h, --help         this help\n";

/* ------------------------------------------------------------------ */
/* Texts: each distinct text once                                       */

typedef struct {
    char **s;
    size_t *len;
    size_t n, cap;
    uint32_t *tab; /* open addressing: id + 1, 0 = empty */
    size_t tcap;
    float *vec; /* n * CG_EMBED_DIM */
} texts;

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

/* The id of text s[0..n), added when new; -1 when memory ran out. */
static long text_id(texts *t, const char *s, size_t n) {
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

static void texts_free(texts *t) {
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

typedef struct {
    uint32_t cached, asked;
    int label;    /* 1 duplicate / positive, 0 not */
    double score; /* STS-B human score */
    int expect;   /* adversarial: the gate rule expected to reject (0: pass) */
} pair;

enum {
    S_STSB_TEST,
    S_STSB_DEV,
    S_QQP,
    S_MOCK,
    S_LANG,
    S_MC_FOLLOW,  /* follow-up asked against its main query (negatives) */
    S_MC_DUP,     /* u0 vs u0_duplicate (positives, single turn) */
    S_MC_DUP_CTX, /* u1 vs u1_duplicate: duplicates that are follow-ups */
    S_ADV,
    S_N
};

typedef struct {
    const char *key, *title;
    pair *p;
    size_t n, cap, npos, nneg, total; /* total: pairs in the file */
    float *cos;
    uint32_t *fail;
    int loaded;
} pairset;

static int add_pair(pairset *s, texts *t, const char *cached, size_t cl, const char *asked,
                    size_t al, int label, double score, int expect) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        pair *np = realloc(s->p, nc * sizeof *np);
        if (!np)
            return -1;
        s->p = np;
        s->cap = nc;
    }
    long a = text_id(t, cached, cl), b = text_id(t, asked, al);
    if (a < 0 || b < 0)
        return -1;
    s->p[s->n++] = (pair){(uint32_t)a, (uint32_t)b, label, score, expect};
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

static int read_file(const char *path, cg_buf *b) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cg_buf_append(b, chunk, n) != 0) {
            rc = -1;
            break;
        }
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

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
    return add_pair(x->s, x->t, a, al, b, bl, label, v, 0);
}

static int load_csv(pairset *s, texts *t, const char *path, int lang, size_t limit, char *err,
                    size_t errcap) {
    cg_buf b;
    cg_buf_init(&b, MAX_FILE_BYTES);
    int rc = -1;
    if (read_file(path, &b) != 0) {
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
        if (add_pair(s, t, a, al, b, bl, lab, 0, 0) != 0) {
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

static int embed_all(const cg_embedder *e, texts *t, int threads, int quiet) {
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
static int vectors_load(texts *t, const char *path, const char *model) {
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

static int vectors_save(const texts *t, const char *path, const char *model) {
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

static float dot(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < CG_EMBED_DIM; i++)
        s += (double)a[i] * (double)b[i];
    return (float)s;
}

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
static int fails(uint32_t f, unsigned rules) {
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

typedef struct {
    size_t hp, hn; /* hits on positives, on negatives */
} counts;

static counts count_at(const pairset *s, double t, int gated, unsigned rules) {
    counts c = {0, 0};
    for (size_t i = 0; i < s->n; i++) {
        if ((double)s->cos[i] < t)
            continue;
        if (gated && fails(s->fail[i], rules))
            continue;
        if (s->p[i].label)
            c.hp++;
        else
            c.hn++;
    }
    return c;
}

static double ratio(size_t a, size_t b) {
    return b ? (double)a / (double)b : NAN;
}

static double thr(int k) {
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

typedef struct {
    const char *data, *model, *csv_dir, *json_path, *md_path, *vectors;
    size_t limit;
    int threads, quiet;
    unsigned rules;
    double bar;
    int rules_at; /* threshold index of the rule table; 0: the default */
    char data_buf[PATH_MAX + 64], model_buf[PATH_MAX + 64];
} opts;

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

/* The model: the current directory, $CG_SOURCE_DIR, then above the binary;
 * else the usual relative path (the error names it). */
static void find_model(char *out, size_t cap) {
    const char *env = getenv("CG_SOURCE_DIR");
    snprintf(out, cap, "%s", DEFAULT_MODEL);
    if (is_file(out))
        return;
    if (env && *env) {
        snprintf(out, cap, "%s/%s", env, DEFAULT_MODEL);
        if (is_file(out))
            return;
    }
    if (above_binary(out, cap, DEFAULT_MODEL, is_file) == 0)
        return;
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
    O_CSV,
    O_JSON,
    O_MD,
    O_VECTORS,
    O_RULES_AT
};

static int parse_opts(int argc, char **argv, opts *o) {
    static const struct option lo[] = {{"data", required_argument, NULL, O_DATA},
                                       {"model", required_argument, NULL, 'm'},
                                       {"limit", required_argument, NULL, O_LIMIT},
                                       {"threads", required_argument, NULL, O_THREADS},
                                       {"rules", required_argument, NULL, O_RULES},
                                       {"bar", required_argument, NULL, O_BAR},
                                       {"csv", required_argument, NULL, O_CSV},
                                       {"json", required_argument, NULL, O_JSON},
                                       {"results-md", required_argument, NULL, O_MD},
                                       {"vectors", required_argument, NULL, O_VECTORS},
                                       {"rules-at", required_argument, NULL, O_RULES_AT},
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
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eval semantic: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Run state                                                            */

typedef struct {
    opts o;
    texts t;
    pairset s[S_N];
    double rho_test, rho_dev;
    int chosen; /* threshold index k (T_MIN..T_MAX), or -1 */
    int fallback;
    double best_p, best_se; /* the highest QQP precision with the gate, its error */
    int best_k;
    const char *isa, *weights;
} run;

static const char *rule_list(unsigned rules, char *buf, size_t cap) {
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

static int load_all(run *R, char *err, size_t errcap) {
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
                     0, (int)a->expect) != 0) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    R->s[S_ADV].total = N_ADV;
    for (int i = 0; i < S_N; i++)
        R->s[i].loaded = 1;
    return 0;
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
            s->cos[k] = dot(R->t.vec + (size_t)p->cached * CG_EMBED_DIM,
                            R->t.vec + (size_t)p->asked * CG_EMBED_DIM);
            /* the gate only matters where similarity could serve */
            if (i == S_ADV || (i != S_STSB_TEST && i != S_STSB_DEV && s->cos[k] >= thr(T_MIN)))
                s->fail[k] = gate_bits(&R->t, p);
        }
    }
    R->rho_test = spearman(&R->s[S_STSB_TEST]);
    R->rho_dev = spearman(&R->s[S_STSB_DEV]);
    return 0;
}

/* The default threshold: the lowest where QQP precision with the gate
 * reaches the bar. When none does, the precision curve's plateau: the
 * lowest threshold whose precision is within one binomial standard error
 * of the highest precision on the curve (points with fewer than 30 hits are
 * too noisy to count as the highest). */
#define MIN_HITS 30

static void choose(run *R) {
    const pairset *q = &R->s[S_QQP];
    R->chosen = -1;
    R->fallback = 0;
    R->best_p = -1;
    R->best_k = T_MAX;
    R->best_se = 0;
    double prec[NT];
    for (int k = T_MIN; k <= T_MAX; k++) {
        counts c = count_at(q, thr(k), 1, R->o.rules);
        size_t n = c.hp + c.hn;
        double p = ratio(c.hp, n);
        prec[k - T_MIN] = n ? p : -1;
        if (n && p >= R->o.bar && R->chosen < 0)
            R->chosen = k;
        if (n >= MIN_HITS && p > R->best_p) {
            R->best_p = p;
            R->best_k = k;
            R->best_se = sqrt(p * (1 - p) / (double)n);
        }
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
        fprintf(f, "  %.2f |", thr(k));
        for (int g = 0; g < 2; g++) {
            counts c = count_at(s, thr(k), g, R->o.rules);
            char a[16], b[16], d[16];
            fmt_pct(a, sizeof a, with_pos ? ratio(c.hp, s->npos) : NAN);
            fmt_p(b, sizeof b, with_pos && with_neg ? ratio(c.hp, c.hp + c.hn) : NAN);
            fmt_pct(d, sizeof d, with_neg ? ratio(c.hn, s->nneg) : NAN);
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
        if ((double)s->cos[i] >= t && fails(s->fail[i], mask)) {
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
    double t = thr(k);
    const pairset *q = &R->s[S_QQP], *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW];
    const pairset *mk = &R->s[S_MOCK];
    counts q0 = count_at(q, t, 0, 0), l0 = count_at(l, t, 0, 0);
    fprintf(f,
            "\nGate rules at threshold %.2f: each rule alone, rejections among would-be hits\n"
            "(QQP %zu duplicate + %zu non-duplicate hits; LangCache %zu + %zu; MeanCache\n"
            "follow-up %zu; paraphrases %zu), and the configured set toggled by that rule.\n",
            t, q0.hp, q0.hn, l0.hp, l0.hn, count_at(m, t, 0, 0).hn, count_at(mk, t, 0, 0).hp);
    fprintf(f, "  %-22s | %-15s | %-15s | %6s | %6s | %-28s | %-16s\n", "rule", "QQP dup/non-dup",
            "LangCache +/-", "MC fu", "mock", "QQP prec / hit rate (set+-)", "LC false/hit");
    counts qb = count_at(q, t, 1, R->o.rules), lb = count_at(l, t, 1, R->o.rules);
    char p1[16], p2[16], p3[16], p4[16];
    fmt_p(p1, sizeof p1, ratio(qb.hp, qb.hp + qb.hn));
    fmt_pct(p2, sizeof p2, ratio(qb.hp, q->npos));
    fmt_pct(p3, sizeof p3, ratio(lb.hn, l->nneg));
    fmt_pct(p4, sizeof p4, ratio(lb.hp, l->npos));
    fprintf(f, "  %-22s | %15s | %15s | %6s | %6s | %12s / %-13s | %6s / %-7s\n",
            "(configured set)", "", "", "", "", p1, p2, p3, p4);
    for (size_t i = 0; i < nr; i++) {
        rej a = rejected(q, t, rows[i].mask), b = rejected(l, t, rows[i].mask);
        rej c = rejected(m, t, rows[i].mask), d = rejected(mk, t, rows[i].mask);
        unsigned set = toggled(R->o.rules, rows[i].mask);
        counts qs = count_at(q, t, 1, set), ls = count_at(l, t, 1, set);
        char x[24], y[24];
        snprintf(x, sizeof x, "%zu/%zu", a.pos_rej, a.neg_rej);
        snprintf(y, sizeof y, "%zu/%zu", b.pos_rej, b.neg_rej);
        int variant = (rows[i].mask & ~((1u << CG_GATE_N) - 1u)) != 0;
        const char *sign = variant ? "~" : (R->o.rules & rows[i].mask) ? "-" : "+";
        fmt_p(p1, sizeof p1, ratio(qs.hp, qs.hp + qs.hn));
        fmt_pct(p2, sizeof p2, ratio(qs.hp, q->npos));
        fmt_pct(p3, sizeof p3, ratio(ls.hn, l->nneg));
        fmt_pct(p4, sizeof p4, ratio(ls.hp, l->npos));
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
    double t = thr(k);
    const pairset *q = &R->s[S_QQP], *l = &R->s[S_LANG], *m = &R->s[S_MC_FOLLOW];
    counts qg = count_at(q, t, 1, R->o.rules), qn = count_at(q, t, 0, 0);
    counts lg = count_at(l, t, 1, R->o.rules), ln = count_at(l, t, 0, 0);
    counts mg = count_at(m, t, 1, R->o.rules), mn = count_at(m, t, 0, 0);
    counts kg = count_at(&R->s[S_MOCK], t, 1, R->o.rules);
    counts dg = count_at(&R->s[S_MC_DUP], t, 1, R->o.rules);
    if (R->fallback)
        fprintf(f,
                "\nDefault threshold: %.2f. No threshold in 0.70-0.99 reaches QQP precision %.2f\n"
                "with the gate: the highest is %.3f at %.2f (standard error %.3f); %.2f is the\n"
                "lowest threshold within one standard error of it.\n",
                t, R->o.bar, R->best_p, thr(R->best_k), R->best_se, t);
    else
        fprintf(f,
                "\nDefault threshold: %.2f, the lowest where QQP precision with the gate reaches "
                "%.2f.\n",
                t, R->o.bar);
    fprintf(f,
            "  QQP        gate: hit rate %.1f%%, precision %.3f, false-hit rate %.2f%%"
            "   (no gate: %.1f%%, %.3f, %.2f%%)\n",
            100 * ratio(qg.hp, q->npos), ratio(qg.hp, qg.hp + qg.hn), 100 * ratio(qg.hn, q->nneg),
            100 * ratio(qn.hp, q->npos), ratio(qn.hp, qn.hp + qn.hn), 100 * ratio(qn.hn, q->nneg));
    fprintf(f,
            "  LangCache  gate: false hits %zu/%zu (%.1f%%), hit rate %.1f%%"
            "   (no gate: %zu/%zu, %.1f%%)\n",
            lg.hn, l->nneg, 100 * ratio(lg.hn, l->nneg), 100 * ratio(lg.hp, l->npos), ln.hn,
            l->nneg, 100 * ratio(ln.hp, l->npos));
    fprintf(f,
            "  MeanCache  follow-ups against their main query: raw false hits %zu/%zu with the "
            "gate\n"
            "             (%zu without); served by the gateway: 0 (a follow-up is a multi-turn\n"
            "             request, not eligible for the semantic cache); duplicates hit %.1f%%\n",
            mg.hn, m->nneg, mn.hn, 100 * ratio(dg.hp, R->s[S_MC_DUP].npos));
    fprintf(f, "  Paraphrases (mock_data) gate: hit rate %.1f%%\n",
            100 * ratio(kg.hp, R->s[S_MOCK].npos));
}

static void print_report(FILE *f, const run *R) {
    char rl[256];
    fprintf(f,
            "costgate eval semantic: embedder use-lite (%s kernels, %s weights), gate rules %s\n",
            R->isa, R->weights, rule_list(R->o.rules, rl, sizeof rl));
    fprintf(f, "data %s, %s; %zu distinct texts\n", R->o.data,
            R->o.limit ? "subsampled (--limit)" : "all pairs", R->t.n);
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
static int write_csv(const run *R, char *err, size_t errcap) {
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
                counts c = count_at(s, thr(k), g, R->o.rules);
                fprintf(f, "%s,%.2f,%d,%zu,%zu,%zu,%zu,%.6f,%.6f,%.6f\n", s->key, thr(k), g,
                        s->npos, s->nneg, c.hp, c.hn, ratio(c.hp, s->npos),
                        ratio(c.hp, c.hp + c.hn), ratio(c.hn, s->nneg));
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
                rej x = rejected(&R->s[i], thr(k), rows[r].mask);
                fprintf(f, "%s,%.2f,%s,%zu,%zu\n", rows[r].name, thr(k), R->s[i].key, x.pos_rej,
                        x.neg_rej);
            }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/pairs.csv", R->o.csv_dir);
    if (!(f = fopen(path, "w")))
        goto fail;
    fputs("set,label,cosine,verdict,detail,cached,asked\n", f);
    for (int i = S_QQP; i < S_N; i++) {
        const pairset *s = &R->s[i];
        for (size_t k = 0; k < s->n; k++) {
            const pair *p = &s->p[k];
            if ((double)s->cos[k] < thr(T_MIN) && i != S_ADV)
                continue;
            cg_gate_result g;
            cg_gate_check(R->t.s[p->asked], R->t.len[p->asked], R->t.s[p->cached],
                          R->t.len[p->cached], R->o.rules, &g);
            fprintf(f, "%s,%d,%.6f,%s,", s->key, p->label, (double)s->cos[k],
                    cg_gate_reason_name(g.reason));
            csv_quote(f, g.detail, strlen(g.detail));
            fputc(',', f);
            csv_quote(f, R->t.s[p->cached], R->t.len[p->cached]);
            fputc(',', f);
            csv_quote(f, R->t.s[p->asked], R->t.len[p->asked]);
            fputc('\n', f);
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
    return 0;
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
    json_object_set_new(o, "hit_rate", jnum(ratio(c.hp, s->npos)));
    json_object_set_new(o, "precision", jnum(ratio(c.hp, c.hp + c.hn)));
    json_object_set_new(o, "false_hit_rate", jnum(ratio(c.hn, s->nneg)));
    return o;
}

static int write_json(const run *R, char *err, size_t errcap) {
    json_t *root = json_object(), *sets = json_object(), *rules = json_array(), *adv = json_array();
    int rc = -1;
    char rl[256];
    if (!root || !sets || !rules || !adv)
        goto out;
    json_object_set_new(root, "limit", json_integer((json_int_t)R->o.limit));
    json_object_set_new(root, "texts", json_integer((json_int_t)R->t.n));
    json_object_set_new(root, "gate_rules", json_string(rule_list(R->o.rules, rl, sizeof rl)));
    json_object_set_new(root, "bar", json_real(R->o.bar));
    json_t *st = json_object();
    json_object_set_new(st, "test", jnum(R->rho_test));
    json_object_set_new(st, "test_pairs", json_integer((json_int_t)R->s[S_STSB_TEST].n));
    json_object_set_new(st, "dev", jnum(R->rho_dev));
    json_object_set_new(st, "dev_pairs", json_integer((json_int_t)R->s[S_STSB_DEV].n));
    json_object_set_new(root, "stsb_spearman", st);
    json_t *ch = json_object();
    json_object_set_new(ch, "threshold", json_real(thr(R->chosen)));
    json_object_set_new(ch, "reaches_bar", json_boolean(!R->fallback));
    json_object_set_new(ch, "best_precision", json_real(R->best_p));
    json_object_set_new(ch, "best_precision_threshold", json_real(thr(R->best_k)));
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
            json_object_set_new(pt, "threshold", json_real(thr(k)));
            json_object_set_new(pt, "no_gate", jcounts(s, count_at(s, thr(k), 0, 0)));
            json_object_set_new(pt, "gate", jcounts(s, count_at(s, thr(k), 1, R->o.rules)));
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
            rej x = rejected(&R->s[i], thr(R->chosen), rows[r].mask);
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
        rule_list(R->o.rules, rl, sizeof rl));
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
        double t = thr(ks[i]);
        counts qn = count_at(q, t, 0, 0), qg = count_at(q, t, 1, R->o.rules);
        counts ln = count_at(l, t, 0, 0), lg = count_at(l, t, 1, R->o.rules);
        counts mn = count_at(m, t, 0, 0), mg = count_at(m, t, 1, R->o.rules);
        counts kn = count_at(mk, t, 0, 0), kg = count_at(mk, t, 1, R->o.rules);
        rc |= cg_buf_printf(
            b,
            "| %s%.2f%s | %.1f%% | %.3f | %.2f%% | %.1f%% | %.3f | %.2f%% | %.1f%% (%.1f%%) | "
            "%.1f%% (%.1f%%) | %.1f%% (%.1f%%) | %.1f%% (%.1f%%) |\n",
            ks[i] == R->chosen ? "**" : "", t, ks[i] == R->chosen ? "**" : "",
            100 * ratio(qn.hp, q->npos), ratio(qn.hp, qn.hp + qn.hn), 100 * ratio(qn.hn, q->nneg),
            100 * ratio(qg.hp, q->npos), ratio(qg.hp, qg.hp + qg.hn), 100 * ratio(qg.hn, q->nneg),
            100 * ratio(ln.hn, l->nneg), 100 * ratio(lg.hn, l->nneg), 100 * ratio(ln.hp, l->npos),
            100 * ratio(lg.hp, l->npos), 100 * ratio(mn.hn, m->nneg), 100 * ratio(mg.hn, m->nneg),
            100 * ratio(kn.hp, mk->npos), 100 * ratio(kg.hp, mk->npos));
    }
    if (R->fallback)
        rc |= cg_buf_printf(b,
                            "\nDefault threshold **%.2f**: no threshold reaches QQP precision "
                            "%.2f with the gate (the highest is %.3f at %.2f, standard error "
                            "%.3f); %.2f is the lowest threshold within one standard error of "
                            "it. MeanCache follow-ups are multi-turn requests, which the "
                            "semantic cache does not look up: served false hits 0.\n",
                            thr(R->chosen), R->o.bar, R->best_p, thr(R->best_k), R->best_se,
                            thr(R->chosen));
    else
        rc |= cg_buf_printf(b,
                            "\nDefault threshold **%.2f**: the lowest where QQP precision with the "
                            "gate reaches %.2f. MeanCache follow-ups are multi-turn requests, "
                            "which the semantic cache does not look up: served false hits 0.\n",
                            thr(R->chosen), R->o.bar);
    rc |= cg_buf_printf(b, "%s", MD_END);
    return rc ? -1 : 0;
}

static int write_md(const run *R, char *err, size_t errcap) {
    cg_buf in, out, blk;
    cg_buf_init(&in, MAX_FILE_BYTES);
    cg_buf_init(&out, MAX_FILE_BYTES);
    cg_buf_init(&blk, 1u << 20);
    char tmp[PATH_MAX + 16];
    int rc = -1;
    FILE *f = NULL;
    if (read_file(R->o.md_path, &in) != 0) {
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

/* ------------------------------------------------------------------ */

int cg_eval_semantic_main(int argc, char **argv) {
    run R;
    memset(&R, 0, sizeof R);
    R.o.threads = 2;
    R.o.rules = CG_GATE_DEFAULT_RULES;
    R.o.bar = 0.95;
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
    if (load_all(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.vectors && vectors_load(&R.t, R.o.vectors, R.o.model) == 0) {
        if (!R.o.quiet)
            fprintf(stderr, "eval semantic: %zu vectors read from %s\n", R.t.n, R.o.vectors);
    } else {
        if (embed_all(e, &R.t, R.o.threads, R.o.quiet) != 0) {
            fprintf(stderr, "eval semantic: out of memory\n");
            goto out;
        }
        if (R.o.vectors && vectors_save(&R.t, R.o.vectors, R.o.model) != 0)
            fprintf(stderr, "eval semantic: %s: cannot write (going on)\n", R.o.vectors);
    }
    if (score_all(&R) != 0) {
        fprintf(stderr, "eval semantic: out of memory\n");
        goto out;
    }
    choose(&R);
    print_report(stdout, &R);
    err[0] = '\0';
    if (R.o.csv_dir && write_csv(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.json_path && write_json(&R, err, sizeof err) != 0) {
        fprintf(stderr, "eval semantic: %s\n", err);
        goto out;
    }
    if (R.o.md_path && write_md(&R, err, sizeof err) != 0) {
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
    texts_free(&R.t);
    cg_embed_close(e);
    return rc;
}
