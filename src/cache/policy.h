/* policy: what the exact cache may look up and store.
 *
 * Owns: the TTL policy (per intent, per tenant override), whether a tenant
 * caches at all and with whom it shares entries, the sampling-temperature
 * ceiling, the client's cache-control request directives, and the write
 * guard: the only gate through which an answer reaches the cache. Pure
 * functions over the config and JSON; no state, safe on any thread.
 */
#ifndef CG_CACHE_POLICY_H
#define CG_CACHE_POLICY_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* TTL in seconds for this tenant and intent (0 = not cached). Resolution,
 * most specific first: the tenant's by_intent, the global by_intent, the
 * tenant's default, the global default. */
int64_t cg_cache_ttl(const cg_cache_cfg *c, const char *tenant, const char *intent);
/* The tenant's override block, or NULL. */
const cg_cache_tenant_cfg *cg_cache_tenant(const cg_cache_cfg *c, const char *tenant);

/* Request cache-control directives the cache honours. */
enum {
    CG_CC_NO_STORE = 1, /* neither look up nor store */
    CG_CC_NO_CACHE = 2, /* do not serve from the cache: fetch, and replace the entry */
};
/* Parses a cache-control header value (comma-separated, case-insensitive
 * directives; others are ignored). NULL -> 0. */
unsigned cg_cache_control(const char *header);

/* 1 when the request's sampling temperature is within the ceiling. An
 * absent or null temperature counts as 1.0 (the providers' default); a
 * non-number is not cached. */
int cg_cache_temperature_ok(const cg_cache_cfg *c, const json_t *body);

/* The write guard. Compiled deny patterns live in a cg_cache_guard. */
typedef struct cg_cache_guard {
    const cg_cache_cfg *cfg;
    regex_t *deny;
    size_t n_deny;
} cg_cache_guard;

/* 0, or -1 with a message (a pattern that does not compile). */
int cg_cache_guard_init(cg_cache_guard *g, const cg_cache_cfg *c, char *err, size_t errlen);
void cg_cache_guard_free(cg_cache_guard *g);

/* Why an answer was not stored ("" when it was). */
typedef enum {
    CG_GUARD_OK = 0,
    CG_GUARD_STATUS,    /* not a complete 200 from the provider */
    CG_GUARD_NO_USAGE,  /* usage not reported: a hit could not price its saving */
    CG_GUARD_FINISH,    /* not a normal finish: length, content_filter, ... */
    CG_GUARD_REFUSAL,   /* the API marks a refusal */
    CG_GUARD_TOOL_CALL, /* calls a tool and store_tool_calls is off */
    CG_GUARD_DENY,      /* the answer text matches a deny pattern */
    CG_GUARD_TOO_LARGE, /* larger than guard.max_bytes */
    CG_GUARD_INVALID,   /* not a well-formed response body */
    CG_GUARD_N
} cg_guard_reason;

const char *cg_guard_reason_name(cg_guard_reason r);

/* Checks a complete non-stream response body (JSON text, len bytes) of the
 * given API (0 = an OpenAI chat completion, 1 = an Anthropic message): it
 * must be valid JSON with the answer's shape, a normal finish for every
 * choice, no refusal, no tool call unless store_tool_calls, no deny-pattern
 * match in its text (content, refusal-free answers, tool arguments), and at
 * most guard.max_bytes. Reads the text in one pass without building a tree. */
cg_guard_reason cg_cache_guard_check(const cg_cache_guard *g, int anthropic, const char *body,
                                     size_t len);

#endif
