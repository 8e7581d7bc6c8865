/* uclass: Unicode character classes of the tiktoken pre-tokeniser.
 *
 * Owns: the per-code-point class (letter subcategories, mark, number,
 * White_Space, CR/LF, other) for Unicode 16.0, the version of the regex
 * tables inside OpenAI's tiktoken. The data is a generated run list
 * (uclass_data.c, from gen_uclass.mjs); cg_uclass_table() expands it once
 * into a flat byte table indexed by code point.
 */
#ifndef CG_TOKENIZE_UCLASS_H
#define CG_TOKENIZE_UCLASS_H

#include <stddef.h>
#include <stdint.h>

enum cg_uclass {
    CG_UC_OTHER = 0,
    CG_UC_LU = 1, /* Lu */
    CG_UC_LL = 2, /* Ll */
    CG_UC_LT = 3, /* Lt */
    CG_UC_LM = 4, /* Lm */
    CG_UC_LO = 5, /* Lo */
    CG_UC_M = 6,  /* Mn, Mc, Me */
    CG_UC_N = 7,  /* Nd, Nl, No */
    CG_UC_WS = 8, /* White_Space except CR and LF */
    CG_UC_CRLF = 9,
};

#define CG_UC_MAX_CP 0x10FFFFu

extern const uint32_t cg_uclass_runs[];
extern const size_t cg_uclass_nruns;

/* The flat class table (CG_UC_MAX_CP + 1 bytes), built on first use
 * (thread-safe). NULL only if memory ran out. */
const uint8_t *cg_uclass_table(void);

#endif
