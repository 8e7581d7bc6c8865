/* cost_internal: helpers shared inside the cost module (and its unit tests).
 *
 * Owns: the exact decimal scaler used by the LiteLLM importer and the sanity
 * ceiling on token counts accepted from provider usage objects.
 */
#ifndef CG_COST_COST_INTERNAL_H
#define CG_COST_COST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Largest token count accepted in one usage field (10^12). Anything larger is
 * not a real response; refusing it keeps every sum far from int64 overflow. */
#define CG_USAGE_MAX_TOKENS INT64_C(1000000000000)

enum {
    CG_DEC_OK = 0,
    CG_DEC_SYNTAX = -1,   /* not a JSON number */
    CG_DEC_NEGATIVE = -2, /* below zero */
    CG_DEC_OVERFLOW = -3, /* scaled value does not fit int64 */
};

/* Converts the JSON number text s[0..n) times 10^scale_exp to an integer,
 * working on the decimal digits only (no float). Digits below the unit are
 * rounded once, half away from zero, and *inexact is set to 1 when any of
 * them was non-zero (else 0). Negative values are refused ("-0" is 0).
 * Returns CG_DEC_OK or one of the errors above. */
int cg_cost_dec_scale(const char *s, size_t n, int scale_exp, int64_t *out, int *inexact);

/* Name of a CG_DEC_* error, for messages. */
const char *cg_cost_dec_strerror(int rc);

#endif
