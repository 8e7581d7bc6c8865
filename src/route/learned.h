/* learned: the learned router: P(the strong model is needed | prompt).
 *
 * Owns: a logistic regression over hashed word n-grams of the prompt plus
 * the classifier's hand features (classify.h, cg_class_result.feat), its
 * deterministic trainer (AdaGrad SGD, fixed-seed shuffles, L2 chosen on a
 * validation set by a caller-given routing metric, then refit on
 * train+validation), and the model file: a small text file with a version
 * header, the feature configuration, sparse weights and a checksum line, so
 * a truncated or edited file is refused rather than silently mis-scored.
 *
 * An embedding feature has its place already: a model carries embed_dim
 * weights over cg_learned_input.embed (0 today; a model with embed_dim > 0
 * scores 0 for that part when the caller passes no embedding).
 *
 * Prediction is thread-safe (the model is read-only after load/train) and
 * allocates nothing; it hashes at most max_bytes of the text.
 */
#ifndef CG_ROUTE_LEARNED_H
#define CG_ROUTE_LEARNED_H

#include <stddef.h>
#include <stdint.h>

#include "route/classify.h"

#define CG_LEARNED_MAGIC "costgate-route-model"
#define CG_LEARNED_VERSION 1
#define CG_LEARNED_MAX_L2 16

typedef struct cg_learned_model cg_learned_model;

typedef struct cg_learned_input {
    const char *text; /* the prompt (any bytes) */
    size_t len;
    const float *hand;  /* CG_CLASS_NFEAT values (cg_class_result.feat), or NULL = all 0 */
    const float *embed; /* prompt embedding, or NULL */
    size_t embed_dim;
} cg_learned_input;

/* P(strong needed) in (0,1); 0.5 for a NULL model. */
float cg_learned_predict(const cg_learned_model *m, const cg_learned_input *in);

typedef struct cg_learned_opts {
    unsigned hash_bits;   /* weight vector size 2^bits (10..24; 16) */
    unsigned word_ngrams; /* 1..3 (2) */
    size_t max_bytes;     /* prompt bytes hashed (8192) */
    unsigned epochs;      /* SGD passes (8) */
    unsigned bags;        /* independent shuffles averaged into one model (1; <= 64) */
    unsigned min_count;   /* n-grams seen fewer times in training keep weight 0 (3; <= 255) */
    float lr;             /* AdaGrad base rate (0.2) */
    uint64_t seed;        /* shuffle seed (1) */
    const float *l2_grid; /* L2 strengths tried on validation (NULL = built-in grid) */
    size_t n_l2;
    int refit;         /* after choosing L2: retrain on train+validation (1) */
    const char *label; /* what y means, recorded in the file ("needed") */
    const char *note;  /* one line recorded in the file (data, split), or NULL */
} cg_learned_opts;
void cg_learned_opts_default(cg_learned_opts *o);

typedef struct cg_learned_example {
    const char *text;
    size_t len;
    float hand[CG_CLASS_NFEAT];
    float y; /* target in [0,1] */
    float w; /* example weight (> 0) */
} cg_learned_example;

/* Validation metric on predictions p[0..n) of the validation examples, in
 * their order; higher is better. NULL: minus the mean log-loss. */
typedef double (*cg_learned_val_fn)(const float *p, size_t n, void *arg);

typedef struct cg_learned_report {
    size_t n_l2;
    float l2[CG_LEARNED_MAX_L2];
    double val[CG_LEARNED_MAX_L2]; /* validation metric per L2 */
    float chosen_l2;
    size_t n_train, n_val, nonzero;
    int refit;
} cg_learned_report;

/* Trains one model per L2 value on train, scores val with fn, keeps the
 * best (ties: the stronger L2), and with opts->refit retrains it on
 * train+val. With n_val == 0 the first grid value is used. Deterministic
 * for equal inputs and options. NULL with a message on bad options or out
 * of memory. rep may be NULL. */
cg_learned_model *cg_learned_train(const cg_learned_example *train, size_t n_train,
                                   const cg_learned_example *val, size_t n_val,
                                   const cg_learned_opts *opts, cg_learned_val_fn fn, void *arg,
                                   cg_learned_report *rep, char *err, size_t errcap);

/* Writes the model file (atomically: temp file + rename). 0 or -1. */
int cg_learned_save(const cg_learned_model *m, const char *path, char *err, size_t errcap);
/* Reads and verifies a model file; NULL with the reason (missing, bad
 * magic or version, malformed line, out-of-range index, non-finite value,
 * hand features that differ from this build's, checksum mismatch). */
cg_learned_model *cg_learned_load(const char *path, char *err, size_t errcap);
/* Same from memory (len bytes). */
cg_learned_model *cg_learned_parse(const char *data, size_t len, char *err, size_t errcap);
void cg_learned_free(cg_learned_model *m);

typedef struct cg_learned_info {
    unsigned version, hash_bits, word_ngrams;
    size_t max_bytes, nonzero, embed_dim;
    float l2;
    char label[32];
    char note[160];
} cg_learned_info;
void cg_learned_get_info(const cg_learned_model *m, cg_learned_info *out);

#endif
