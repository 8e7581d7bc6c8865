/* jparse: a fast JSON reader that builds jansson values.
 *
 * Owns: parsing a request body into the same json_t tree that
 * json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) returns,
 * at a fraction of its cost (jansson reads one character at a time through
 * a stream abstraction: ~150 instructions a byte, the largest single cost
 * of a small request after the ledger; bench/RESULTS.md). Values are built
 * with jansson's own constructors, so everything downstream is unchanged.
 *
 * Contract: for any input this parser accepts, the result equals
 * jansson's (json_equal, same key order); on anything it does not accept
 * (malformed JSON, a duplicate key, an integer out of range, nesting past
 * jansson's limit, a NUL escape, invalid UTF-8) it hands the input to
 * json_loadb, so errors and their messages (line, column) are jansson's
 * own. tests/fuzz/fuzz_jparse.c checks this differentially.
 */
#ifndef CG_CORE_JPARSE_H
#define CG_CORE_JPARSE_H

#include <jansson.h>
#include <stddef.h>

/* json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, err). */
json_t *cg_json_load(const char *buf, size_t len, json_error_t *err);

/* The fast path alone: NULL when it gives up (for tests). */
json_t *cg_json_load_fast(const char *buf, size_t len);

#endif
