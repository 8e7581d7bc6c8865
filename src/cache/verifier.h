/* verifier: the semantic cache's learned pair verifier and its accept
 * decision.
 *
 * Owns: the model that scores a (cached query, asked query) pair the
 * embedder found similar with the probability that both ask the same
 * question, its feature vector, its file (load and validation), and
 * cg_semantic_accept(), the one decision the request path calls: the
 * similarity floor, then the second gate (gate.h), then the verifier.
 *
 * Why: cosine similarity alone peaks at about 0.90 precision on the QQP
 * pairs whatever the threshold (docs/semantic-cache.md): "What is the best
 * Christmas gift you've ever given?" and "... received?" score 0.987. The
 * verifier reads what cosine throws away: which embedding dimensions differ
 * (|u - v| and u * v, 1,024 inputs), the words each text has that the other
 * lacks, the gate's per-rule outcomes, and the cosine itself. It is a
 * logistic regression or a one-hidden-layer tanh network over those
 * inputs, trained deterministically on a fixed split of QQP
 * (verifier_train.h, `costgate eval semantic --train-verifier`); the file
 * records the operating point (floor and probability threshold) chosen on
 * the validation part of that split.
 *
 * The model is read-only after load, so any number of threads may score
 * with it at once; scoring allocates nothing (about 30 KB of stack, most of
 * it the gate's) and reads at most CG_VERIFIER_SCAN_MAX bytes of each text.
 *
 * File (little-endian, every field fixed size):
 *   "CGSEMVER" | u32 version | u32 dim (512) | u32 hand features |
 *   u32 inputs | u32 hidden units (0: logistic regression) |
 *   u64 feature-set id (hash of the feature names in order) |
 *   f32 floor | f32 threshold | f32 l2 | u32 epochs | u64 seed |
 *   u32 train pairs | u32 validation pairs | u64 training-data digest |
 *   char note[160] (NUL-padded) |
 *   weights: hidden == 0: w[inputs], b; else W1[hidden][inputs], b1[hidden],
 *   w2[hidden], b2 (f32; input standardisation folded in) |
 *   u64 FNV-1a 64 of every byte before it.
 */
#ifndef CG_CACHE_VERIFIER_H
#define CG_CACHE_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "cache/gate.h"

#define CG_VERIFIER_MAGIC "CGSEMVER"
#define CG_VERIFIER_VERSION 1
#define CG_VERIFIER_DIM 512       /* embedding size (embed.h CG_EMBED_DIM) */
#define CG_VERIFIER_MAX_HIDDEN 64 /* most hidden units a file may have */
/* Bytes of each text the lexical features read (cut at a UTF-8 boundary). */
#define CG_VERIFIER_SCAN_MAX 2048
/* Where the shipped model lives, relative to the source tree. */
#define CG_VERIFIER_DEFAULT_PATH "config/semantic-verifier.bin"

/* The hand features, in input order (values roughly in [0, 1]). Every one
 * is symmetric: swapping the two texts gives the same vector. */
/* The gate rules the verifier sees as inputs: length .. order (the rules the
 * shipped model was trained with; words, swap, deixis and person, added later, are
 * not inputs, so the model and its feature hash stay valid). */
#define CG_VF_GATE_RULES ((int)CG_GATE_ORDER)

typedef enum {
    CG_VF_COS,         /* cosine of the two embeddings */
    CG_VF_COS_H85,     /* max(0, cosine - 0.85): a piecewise-linear cosine */
    CG_VF_COS_H90,     /* max(0, cosine - 0.90) */
    CG_VF_COS_H95,     /* max(0, cosine - 0.95) */
    CG_VF_COS_H98,     /* max(0, cosine - 0.98) */
    CG_VF_JAC_WORDS,   /* Jaccard of the word sets */
    CG_VF_JAC_CONTENT, /* Jaccard of the content-word sets (no stop words, plural s dropped) */
    CG_VF_JAC_BIGRAMS, /* Jaccard of the word-bigram sets */
    CG_VF_JAC_CHARS,   /* Jaccard of the character-trigram sets (hashed to 1,024 bits) */
    CG_VF_ONLY_MIN,    /* content words only one text has: the smaller side's count / 4 (max 1) */
    CG_VF_ONLY_MAX,    /* the larger side's count / 4 (max 1) */
    CG_VF_ONLY_NONE,   /* 1: no content word is only in one text */
    CG_VF_ONLY_ONE,    /* 1: only one text has content words the other lacks */
    CG_VF_LEN_RATIO,   /* shorter / longer, in bytes */
    CG_VF_WORDS_LOG,   /* log(1 + mean word count) / 4 */
    CG_VF_WORDS_DIFF,  /* |log((1 + words a) / (1 + words b))| */
    CG_VF_FIRST_SAME,  /* 1: the first words are equal */
    CG_VF_QWORD_SAME,  /* 1: the same question words (what how why when where who which) */
    CG_VF_SAME_WORDS,  /* 1: the same word sequence (case, punctuation ignored) */
    CG_VF_GATE_FIRST,  /* 11 inputs: gate rule r (1..CG_VF_GATE_RULES) fails on its own */
    CG_VF_N = CG_VF_GATE_FIRST + CG_VF_GATE_RULES
} cg_verifier_feature;

/* Inputs: the hand features, |u - v| (512), then u * v (512). */
#define CG_VERIFIER_NFEAT (CG_VF_N + 2 * CG_VERIFIER_DIM)

typedef struct cg_verifier cg_verifier;

/* Reads and validates a model file: size, magic, version, dimensions, the
 * feature-set id of this build, hidden units <= CG_VERIFIER_MAX_HIDDEN,
 * finite weights, an operating point in [0, 1], the checksum. NULL with the
 * reason in err otherwise. */
cg_verifier *cg_verifier_load(const char *path, char *err, size_t errcap);
/* The same from memory (len bytes; the model keeps no pointer into data). */
cg_verifier *cg_verifier_parse(const void *data, size_t len, char *err, size_t errcap);
void cg_verifier_free(cg_verifier *v);

typedef struct cg_verifier_info {
    unsigned version, dim, inputs, hidden;
    float floor, threshold; /* the operating point the file records */
    float l2;
    unsigned epochs;
    uint64_t seed, data_digest, checksum;
    unsigned n_train, n_val;
    char note[160];
} cg_verifier_info;
void cg_verifier_get_info(const cg_verifier *v, cg_verifier_info *out);

/* The feature-set id this build computes (hash of the feature names). */
uint64_t cg_verifier_feature_id(void);
/* Short name of input i ("cos", "jac_words", "gate_numbers", "absdiff_17",
 * "prod_17"); "?" out of range. */
const char *cg_verifier_feature_name(size_t i, char *buf, size_t cap);

/* Fills x[CG_VERIFIER_NFEAT] for a pair: cosine, the two unit embeddings
 * u and w (CG_VERIFIER_DIM each), both texts (NULL allowed when the length
 * is 0) and the gate's per-rule outcome mask (cg_gate_check_all). */
void cg_verifier_features(float cosine, const float *u, const float *w, const char *asked,
                          size_t alen, const char *cached, size_t clen, unsigned gate_fails,
                          float *x);
/* The model's probability for a feature vector x (cg_verifier_features). */
float cg_verifier_prob(const cg_verifier *v, const float *x);
/* Features and probability in one call (runs the gate once for the mask). */
float cg_verifier_score(const cg_verifier *v, float cosine, const float *u, const float *w,
                        const char *asked, size_t alen, const char *cached, size_t clen);

/* ------------------------------------------------------------------ */
/* The accept decision                                                  */

/* The default operating point, the one the shipped model records (chosen
 * on the QQP validation split by the rule in eval_semantic_verifier.c;
 * docs/semantic-cache.md "The default operating point"): the point whose
 * validation precision has the highest 95% lower bound, since no point's
 * bound reaches 0.95. On the held-out test split it serves 0.6% of the
 * duplicates at precision 0.889 (40 of 45). Without a verifier the cache
 * falls back to the similarity floor and the gate alone:
 * CG_SEMANTIC_FLOOR_NO_VERIFIER (the static threshold's default). */
#define CG_SEMANTIC_DEFAULT_FLOOR 0.79f
#define CG_SEMANTIC_DEFAULT_VERIFIER_THRESHOLD 0.98f
#define CG_SEMANTIC_FLOOR_NO_VERIFIER 0.98f

typedef struct cg_semantic_policy {
    float floor; /* similarity floor from config */
    /* a floor the request asked for: it may raise the floor, never lower
     * it (0: none) */
    float request_floor;
    /* serve only when the verifier's probability is at least this; 0 turns
     * the verifier off (floor and gate alone). With a threshold > 0 and no
     * model loaded, every pair is rejected (fail closed). */
    float verifier_threshold;
    unsigned gate_rules; /* CG_GATE_DEFAULT_RULES, or a mask (gate.h) */
} cg_semantic_policy;

/* Fills *pol with the default operating point: the floor and threshold the
 * model file records when v is not NULL, else CG_SEMANTIC_FLOOR_NO_VERIFIER
 * with the verifier off; default gate rules; no request floor. */
void cg_semantic_policy_default(cg_semantic_policy *pol, const cg_verifier *v);

typedef enum {
    CG_SEM_ACCEPT = 0,
    CG_SEM_BELOW_FLOOR, /* cosine under max(floor, request_floor), or not a number */
    CG_SEM_GATE,        /* a gate rule failed (verdict.gate says which) */
    CG_SEM_VERIFIER,    /* the verifier's probability is under the threshold */
    CG_SEM_NO_VERIFIER, /* a threshold is set but no model is loaded */
    CG_SEM_BAD_INPUT    /* no policy, or the verifier needs embeddings that are NULL */
} cg_semantic_reason;

typedef struct cg_semantic_verdict {
    int accept;                /* 1: serve the cached answer */
    cg_semantic_reason reason; /* CG_SEM_ACCEPT or why not */
    float cosine;
    float floor;     /* the floor applied: max(floor, request_floor) */
    float prob;      /* verifier probability; -1 when not computed */
    float threshold; /* verifier threshold applied (0: off) */
    cg_gate_reason gate;
    /* for the audit log, e.g. "accept: cosine 0.934 >= 0.800, gate pass,
     * verifier 0.962 >= 0.900" or "gate numbers: number \"100\" only in the
     * new query" */
    char detail[224];
} cg_semantic_verdict;

/* Decides whether the answer cached for query `cached` may be served for
 * query `asked`, at similarity `cosine` between their embeddings u (asked)
 * and w (cached), under *pol. In order, the first failing step rejects:
 *   1. cosine >= max(pol->floor, pol->request_floor) (a NaN cosine fails);
 *   2. the gate under pol->gate_rules passes (a gate reject always wins:
 *      no probability overrides it);
 *   3. when pol->verifier_threshold > 0: a model is loaded and its
 *      probability for the pair is >= the threshold.
 * Returns 1 to accept, 0 to reject; fills *out (may be NULL) with the
 * reason and an audit detail. u and w may be NULL when the verifier is off.
 * Thread-safe, allocates nothing. */
int cg_semantic_accept(const cg_verifier *v, float cosine, const float *u, const float *w,
                       const char *asked, size_t alen, const char *cached, size_t clen,
                       const cg_semantic_policy *pol, cg_semantic_verdict *out);

/* "accept", "below_floor", "gate", "verifier", "no_verifier", "bad_input";
 * "?" out of range. */
const char *cg_semantic_reason_name(cg_semantic_reason r);

#endif
