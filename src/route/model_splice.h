/* model_splice: point a JSON request body at another model without
 * re-serialising it.
 *
 * Owns: finding the exact byte span of the value of the top-level "model"
 * member of a JSON object text (string contents, escapes and nested values
 * are skipped, so a "model" key inside messages, tools or metadata is never
 * touched), and replacing that span by the JSON string literal of a new
 * model name (quote, backslash and control characters escaped as JSON
 * requires). Every other byte of the body is kept as it was, so the result
 * parses to the original tree with only "model" changed.
 *
 * The tier stage uses this instead of serialising the parsed tree again.
 * Anything it is not sure about (no top-level "model", several, an escaped
 * key that might spell "model", a value that is not a string, text after the
 * object, a body over its cap) makes it refuse and leave the body as it was;
 * the caller then falls back to serialising the tree. Never reads outside
 * [p, p + n); allocates only when the body grows (cg_buf's cap applies).
 */
#ifndef CG_ROUTE_MODEL_SPLICE_H
#define CG_ROUTE_MODEL_SPLICE_H

#include <stddef.h>

#include "core/buf.h"

#define CG_MODEL_NAME_MAX 256 /* longest model name spliced (bytes, before escaping) */

/* Finds the value of the one top-level "model" member of the JSON object in
 * p[0..n): [*start, *end) covers the string literal with its quotes. 0, or
 * -1 as described above (the outputs are then untouched). */
int cg_model_span(const char *p, size_t n, size_t *start, size_t *end);

/* Replaces that value in body by the JSON string literal of model[0..len).
 * 0, or -1 with body unchanged (no usable span, the name is longer than
 * CG_MODEL_NAME_MAX, or the grown body would pass the buffer's cap). */
int cg_model_splice(cg_buf *body, const char *model, size_t len);

/* cg_model_splice for a body known to be one JSON object whose keys are
 * unique (the parse stage rejects duplicate keys, escaped or not): no
 * later top-level member can be "model", so the walk stops at the first
 * one instead of checking the rest of the object (and the text after it).
 * On such a body it gives what cg_model_splice gives, and also splices
 * where that refuses only because of an escaped key after "model". */
int cg_model_splice_parsed(cg_buf *body, const char *model, size_t len);

#endif
