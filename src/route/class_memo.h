/* class_memo: the tier stage's memo of recently classified prompts.
 *
 * Owns: a small direct-mapped table per thread (thread-local: no lock,
 * nothing shared between workers) from the classifier's inputs for one
 * request -- the user text, the system text, the header intent, the
 * requested output tokens, the turn count, and which classifier and learned
 * model judge them -- to what the tier stage uses of their verdict: the
 * intent, the suggested tier and the learned router's P(strong). The
 * classifier and the learned model are pure functions of those inputs, so a
 * hit is exactly what classifying again would give; keys are compared byte
 * for byte (the hash only picks the slot). A prompt whose user and system
 * text together pass CG_CLASS_MEMO_TEXT_MAX bytes is not kept: it is
 * classified every time, and its text is not even hashed. A hit costs a
 * hash and a compare of the text (about 260 instructions for the bench's 53
 * bytes of user and system text) instead of the classifier's scan (about
 * 1,600 for the same, ~20 a byte); a miss adds the hash and, when kept, a
 * copy of the text. ~17 KiB of TLS per thread.
 */
#ifndef CG_ROUTE_CLASS_MEMO_H
#define CG_ROUTE_CLASS_MEMO_H

#include <stddef.h>
#include <stdint.h>

#include "route/classify.h"

#define CG_CLASS_MEMO_SLOTS 16     /* per thread; a power of two */
#define CG_CLASS_MEMO_TEXT_MAX 960 /* user + system + header intent bytes kept per slot */

typedef struct cg_class_memo_key {
    uint64_t owner;      /* cg_classifier_serial() of the classifier */
    const void *learned; /* the learned model, or NULL */
    const char *user;    /* need not be NUL-terminated */
    size_t user_len;
    size_t user_full_len; /* cg_class_input.user_full_len */
    const char *system;   /* or NULL */
    size_t system_len;
    const char *header_intent; /* NUL-terminated, or NULL */
    int64_t max_output_tokens;
    int turns;
} cg_class_memo_key;

typedef struct cg_class_memo_val {
    char intent[CG_INTENT_NAME_MAX]; /* the classifier's intent, "" when none */
    /* the classifier's suggested cg_tier, or CG_TIER_NONE when no decision
     * needed it yet (the intent alone decided: computed, and kept, when a
     * later request with the same inputs needs it) */
    int tier;
    double p_strong; /* the learned router's P(strong), -1 without one or while tier is NONE */
} cg_class_memo_val;

/* Looks k up on this thread. 1 and *out on a hit, else 0; *hash is set
 * either way, for cg_class_memo_put. A key whose text no slot can hold is a
 * miss at once, without hashing the text. */
int cg_class_memo_get(const cg_class_memo_key *k, uint64_t *hash, cg_class_memo_val *out);
/* Keeps v for k (hash from cg_class_memo_get) in k's slot, replacing what
 * was there; does nothing when k's text is longer than a slot holds. */
void cg_class_memo_put(const cg_class_memo_key *k, uint64_t hash, const cg_class_memo_val *v);
/* Forgets everything kept on this thread (tests). */
void cg_class_memo_clear(void);

#endif
