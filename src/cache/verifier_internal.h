/* verifier_internal: what verifier.c and verifier_train.c share.
 *
 * Owns: the in-memory model (struct cg_verifier) and its serialisation,
 * which the loader (verifier.c) validates and the trainer
 * (verifier_train.c) writes. Only src/cache/verifier*.c include it.
 */
#ifndef CG_CACHE_VERIFIER_INTERNAL_H
#define CG_CACHE_VERIFIER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cache/verifier.h"

struct cg_verifier {
    unsigned hidden; /* 0: logistic regression */
    float floor, threshold;
    float l2;
    unsigned epochs;
    uint64_t seed;
    unsigned n_train, n_val;
    uint64_t digest;   /* of the training inputs */
    uint64_t checksum; /* of the serialised file (set by parse and serialise) */
    char note[160];
    /* one allocation: w1 = hidden ? hidden x NFEAT : NFEAT; b1 = hidden ?
     * hidden : 1; w2 = hidden (none for a regression) */
    float *w1, *b1, *w2;
    float b2;
};

/* A zeroed model with room for `hidden` units; NULL when out of memory or
 * hidden > CG_VERIFIER_MAX_HIDDEN. */
cg_verifier *cg_verifier_alloc(unsigned hidden);
/* The file's bytes in a new buffer (*len set), NULL when out of memory;
 * sets v->checksum. */
unsigned char *cg_verifier_serialise(cg_verifier *v, size_t *len);

#endif
