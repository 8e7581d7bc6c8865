/* pretok: the tiktoken pre-tokeniser, written by hand.
 *
 * Owns: the split of text into pieces exactly as tiktoken's regular
 * expressions split it, for o200k_base and cl100k_base, as scanners over
 * valid UTF-8 with leftmost-first (backtracking) semantics:
 *
 * o200k_base:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * cl100k_base:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *  | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * \s is Unicode White_Space and (?i) folds 's' to U+017F as in tiktoken's
 * Rust regex engine. Every position starts a match, so pieces tile the text.
 * Each call is linear in the piece it returns (plus one look-ahead run).
 */
#ifndef CG_TOKENIZE_PRETOK_H
#define CG_TOKENIZE_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_pretok {
    const uint8_t *s; /* valid UTF-8 */
    size_t n;
    const uint8_t *uc; /* cg_uclass_table() */
} cg_pretok;

/* Each returns the end (exclusive byte offset) of the piece starting at
 * i < n; the result is always > i. */
size_t cg_pretok_o200k(const cg_pretok *pt, size_t i);
size_t cg_pretok_cl100k(const cg_pretok *pt, size_t i);

#endif
