/* key: the exact cache's canonical request key.
 *
 * Owns: the byte-exact composition of what a cache key covers and its
 * SHA-256. The key material is (docs/cache.md has the table):
 *
 *   "costgate-exact-cache v1\n"               version tag: a new composition
 *                                             gets a new tag, so old keys can
 *                                             never collide with new ones
 *   then, in this order, each as NAME ":" LEN ":" BYTES "\n" (LEN decimal):
 *     scope              partition, built by cg_cache_key_scope()
 *     api                "openai.chat_completions" | "anthropic.messages"
 *     prompt_version     x-costgate-prompt-version ("" when absent)
 *     context_ids        x-costgate-context-ids, canonical (see below)
 *     anthropic_version  anthropic-version request header ("" for OpenAI)
 *     anthropic_beta     anthropic-beta request header ("")
 *   then "body:" and, to the end, the request body object WITHOUT the
 *   fields that cannot change the answer (user, metadata, stream,
 *   stream_options), in this canonical encoding of the parsed JSON:
 *     null "n", true "t", false "f", integer "i" DECIMAL ";",
 *     real "r" %.17g ";", string "s" BYTE_LENGTH ":" UTF-8 BYTES,
 *     array "[" VALUES "]", object "{" (KEY as a string, VALUE)... "}"
 *     with its keys in byte order.
 *   Key order, whitespace and string escapes do not matter; every other
 *   field, known or not, is covered, so a new provider parameter can only
 *   cause a miss, never a wrong hit. (1 and 1.0 differ: a miss, not a hit.)
 *
 * Every field before the body is length-prefixed, the body is last and its
 * encoding is prefix-free (typed, length-prefixed, bracketed), so the
 * material is injective: two different inputs never share it.
 */
#ifndef CG_CACHE_KEY_H
#define CG_CACHE_KEY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CG_CACHE_KEY_VERSION "costgate-exact-cache v1"
#define CG_CACHE_CTX_IDS_MAX 256 /* ids in x-costgate-context-ids */
#define CG_CACHE_CTX_ID_LEN 256  /* bytes per id */

typedef struct cg_cache_key_in {
    const char *scope;             /* from cg_cache_key_scope() */
    const char *api;               /* "openai.chat_completions" | "anthropic.messages" */
    const char *prompt_version;    /* NULL = "" */
    const char *context_ids;       /* canonical form (cg_cache_ctx_ids), NULL = "" */
    const char *anthropic_version; /* NULL = "" */
    const char *anthropic_beta;    /* NULL = "" */
    const json_t *body;            /* the request body object */
} cg_cache_key_in;

/* Body fields left out of the key (NULL-terminated). */
extern const char *const cg_cache_key_ignored[];

/* SHA-256 of the material. 0, or -1 (out of memory, body not an object). */
int cg_cache_key(const cg_cache_key_in *in, uint8_t out[32]);
/* The material itself (for tests and `docs/cache.md`). 0 or -1. */
int cg_cache_key_material(const cg_cache_key_in *in, cg_buf *out);
/* The key in lower-case hex, NUL-terminated (as cg_hex, by table). */
void cg_cache_key_hex(const uint8_t key[32], char out[65]);

/* Canonical context ids: the header split on ',', each id trimmed of
 * spaces and tabs, empty ids dropped, sorted bytewise, duplicates removed,
 * joined by ','. Writes it to out (NUL-terminated) and the ids' count to
 * *n. -1 with a message in err when there are more than
 * CG_CACHE_CTX_IDS_MAX ids, an id is longer than CG_CACHE_CTX_ID_LEN, has a
 * control character, or out is too small. */
int cg_cache_ctx_ids(const char *header, char *out, size_t cap, size_t *n, char *err,
                     size_t errlen);

/* The partition part of the key: "tenant=<len>:<tenant>" or
 * "group=<len>:<group>" (a configured share group), then for each
 * partition attribute ";<name>=<len>:<value>". Length prefixes make it
 * injective. 0, or -1 when it does not fit. */
typedef struct cg_cache_scope_part {
    const char *name;
    const char *value;
} cg_cache_scope_part;
int cg_cache_key_scope(const char *tenant, const char *group, const cg_cache_scope_part *parts,
                       size_t n_parts, char *out, size_t cap);

#endif
