/* verifier_train: the trainer of the semantic cache's pair verifier.
 *
 * Owns: fitting a verifier (verifier.h) to labelled feature vectors and
 * writing its file. The model is a logistic regression (hidden = 0) or one
 * hidden layer of tanh units under a logistic output, fit by minibatch Adam
 * on the log-loss with L2 weight decay (biases not decayed), over inputs
 * standardised to zero mean and unit variance on the training data (the
 * standardisation is folded into the first layer when training ends, so
 * the file holds plain weights).
 *
 * Deterministic: the initial weights and each epoch's shuffle come from a
 * splitmix64 generator seeded with opts.seed, and every sum runs in a fixed
 * order on one thread, so the same inputs and options give the same file,
 * byte for byte, on the same build. The file records a digest of the
 * training inputs so that two runs can tell whether they saw the same data.
 */
#ifndef CG_CACHE_VERIFIER_TRAIN_H
#define CG_CACHE_VERIFIER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "cache/verifier.h"

typedef struct cg_verifier_train_opts {
    unsigned hidden; /* tanh units; 0: logistic regression (default 0) */
    unsigned epochs; /* passes over the data (default 8) */
    unsigned batch;  /* examples per step (default 64) */
    float lr;        /* Adam step size (default 0.001) */
    float l2;        /* weight decay on weights, not biases (default 0.001) */
    uint64_t seed;   /* initial weights and shuffles (default 1) */
} cg_verifier_train_opts;

void cg_verifier_train_opts_default(cg_verifier_train_opts *o);

/* Fits a model to n examples: x holds n rows of CG_VERIFIER_NFEAT features
 * (cg_verifier_features), y their labels (1: the same question). The model
 * records the options and the data digest; its operating point is 0 until
 * cg_verifier_set_operating_point. NULL with a message on bad options
 * (hidden > CG_VERIFIER_MAX_HIDDEN, epochs or batch 0, lr or l2 not finite
 * and >= 0, n == 0) or out of memory. */
cg_verifier *cg_verifier_train(const float *x, const uint8_t *y, size_t n,
                               const cg_verifier_train_opts *opts, char *err, size_t errcap);

/* Records the operating point (both in [0, 1]; -1 otherwise), the number of
 * validation pairs it was chosen on, and a one-line note (data, split;
 * cut to 159 bytes). */
int cg_verifier_set_operating_point(cg_verifier *v, float floor, float threshold, unsigned n_val,
                                    const char *note);

/* Writes the model file (temp file + rename). 0, or -1 with a message. */
int cg_verifier_save(cg_verifier *v, const char *path, char *err, size_t errcap);

#endif
