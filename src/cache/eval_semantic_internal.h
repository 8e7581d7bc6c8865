/* eval_semantic_internal: what the `costgate eval semantic` files share.
 *
 * Owns: the run state (options, texts and their embeddings, the pair sets
 * with their cosines and gate verdicts) and the functions one file of the
 * command exports to another: eval_semantic.c (options, scoring, threshold
 * choice, entry point), eval_semantic_data.c (data sets, embedding, the
 * vectors file), eval_semantic_report.c (table, CSV, JSON, RESULTS.md).
 * Only src/cache/eval_semantic*.c include it.
 */
#ifndef CG_CACHE_EVAL_SEMANTIC_INTERNAL_H
#define CG_CACHE_EVAL_SEMANTIC_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cache/gate.h"
#include "cache/verifier.h"
#include "cache/verifier_train.h"
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

typedef struct {
    char **s;
    size_t *len;
    size_t n, cap;
    uint32_t *tab; /* open addressing: id + 1, 0 = empty */
    size_t tcap;
    float *vec; /* n * CG_EMBED_DIM */
} texts;

typedef struct {
    uint32_t cached, asked;
    int label;    /* 1 duplicate / positive, 0 not */
    double score; /* STS-B human score */
    int expect;   /* adversarial: the gate rule expected to reject (0: pass) */
    uint32_t idx; /* element (row) index in its file */
    int split;    /* QQP: ES_TRAIN, ES_VAL or ES_TEST; other sets: ES_ALL */
} pair;

/* The QQP split of the verifier (eval_semantic_verifier.c). */
enum { ES_TRAIN, ES_VAL, ES_TEST, ES_ALL };

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

typedef struct {
    size_t hp, hn; /* hits on positives, on negatives */
} counts;

typedef struct {
    const char *data, *model, *csv_dir, *json_path, *md_path, *vectors;
    size_t limit;
    int threads, quiet;
    unsigned rules;
    double bar;
    double margin; /* standard errors the bar must be cleared by (choice of the default) */
    int rules_at;  /* threshold index of the rule table; 0: the default */
    char data_buf[PATH_MAX + 64], model_buf[PATH_MAX + 64];
    /* the learned verifier */
    const char *verifier; /* --verifier FILE (NULL: the shipped one when found) */
    int no_verifier;
    const char *train_out; /* --train-verifier FILE */
    int split_pairs;       /* --split pairs (else components) */
    double train_floor;    /* --verifier-train-floor: fit on pairs at least this similar */
    int train_gated;       /* --verifier-train-gated: fit on gate-passing pairs only */
    int withhold_test;     /* --withhold-test: QQP test-split pairs dropped after the split */
    cg_verifier_train_opts train;
} opts;

/* Verifier thresholds VT_MIN/100 .. VT_MAX/100 of the operating-point grid
 * and the verifier curves. */
#define VT_MIN 50
#define VT_MAX 99

typedef struct {
    cg_verifier *model;
    char path[PATH_MAX + 64];
    int trained;            /* trained in this run */
    size_t n[3], npos[3];   /* QQP pairs per split (ES_TRAIN, ES_VAL, ES_TEST) */
    size_t n_fit, npos_fit; /* training examples: train split, cosine >= T_MIN */
    float *prob[S_N];       /* per pair; -1 where not scored (cosine < T_MIN) */
    double floor, thr;      /* the operating point in use: the model's */
    /* the choice on the validation split, from this run's data */
    int val_found; /* a point reached the bar (else: the best one) */
    double val_floor, val_thr;
    double val_lb; /* bar not reached: the highest lower bound found */
    counts val_counts;
    double train_s, score_s; /* seconds */
} vstate;

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
    vstate v; /* model NULL: no verifier evaluated */
} run;

/* eval_semantic_data.c */
void es_texts_free(texts *t);
/* The id of text s[0..n) in t, added when new; -1 when memory ran out. */
long es_text_id(texts *t, const char *s, size_t n);
/* Loads every data set of R->o.data (and the built-in adversarial pairs). */
int es_load_all(run *R, char *err, size_t errcap);
/* Embeds every text into t->vec on `threads` threads. */
int es_embed_all(const cg_embedder *e, texts *t, int threads, int quiet);
/* The --vectors file: 0 when it held this run's vectors (now in t->vec). */
int es_vectors_load(texts *t, const char *path, const char *model);
int es_vectors_save(const texts *t, const char *path, const char *model);
float es_dot(const float *a, const float *b);

/* eval_semantic.c */
/* Whether a pair with gate bits f fails the rule set `rules`. */
int es_fails(uint32_t f, unsigned rules);
counts es_count_at(const pairset *s, double t, int gated, unsigned rules);
double es_ratio(size_t a, size_t b);
double es_thr(int k);
const char *es_rule_list(unsigned rules, char *buf, size_t cap);
/* The 95% Wilson score interval of k successes in n (NAN when n is 0). */
void es_wilson(size_t k, size_t n, double *lo, double *hi);

/* eval_semantic_verifier.c */
/* Assigns each QQP pair its split (path: the QQP file, read whole for the
 * question graph). 0 or -1 with a message. */
int es_qqp_split(run *R, const char *path, char *err, size_t errcap);
/* Trains (--train-verifier) or loads the verifier, scores every pair with
 * cosine >= T_MIN, and chooses the operating point on validation. 0, or
 * -1 with a message. No verifier (none found, --no-verifier): 0, model
 * NULL. */
int es_verifier_run(run *R, char *err, size_t errcap);
void es_verifier_free(run *R);
/* The verifier's section of the text report. */
void es_verifier_print(FILE *f, const run *R);
/* verifier.csv in dir: every scored pair's split, label, cosine, gate
 * verdict and probability. */
int es_verifier_csv(const run *R, const char *dir, char *err, size_t errcap);
/* The verifier's JSON object (null when none was evaluated), and its part
 * of the RESULTS.md block (0 or -1 when memory ran out). */
struct json_t *es_verifier_json(const run *R);
int es_verifier_md(const run *R, cg_buf *b);
/* Hits of set s among pairs of QQP split `split` (ES_ALL: every pair) at
 * similarity floor `floor`, gate rules R->o.rules and verifier threshold
 * `thr`. */
counts es_vcount(const run *R, int set, int split, double floor, double thr);
/* Counts of the static threshold with the gate on one QQP split. */
counts es_count_split(const pairset *s, int split, double t, unsigned rules);

/* A file of the source tree (rel): the current directory, $CG_SOURCE_DIR,
 * then above the binary (a build directory inside the tree). 0 with the
 * path in out when found (eval_semantic.c). */
int es_find_source_file(char *out, size_t cap, const char *rel);

/* eval_semantic_report.c */
void es_print_report(FILE *f, const run *R);
int es_write_csv(const run *R, char *err, size_t errcap);
int es_write_json(const run *R, char *err, size_t errcap);
int es_write_md(const run *R, char *err, size_t errcap);

#endif
