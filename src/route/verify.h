/* verify: is a cheaper tier's answer good enough to return, or should the
 * cascade escalate?
 *
 * Owns: the confidence signals read from a complete (non-stream) response:
 * token logprobs when the provider returned them (mean and minimum, OpenAI
 * chat `choices[0].logprobs.content[].logprob`), and otherwise a verifier:
 * an empty answer, an explicit refusal (OpenAI `message.refusal`, Anthropic
 * `stop_reason: refusal`) or a refusal phrase, a `length` / `max_tokens`
 * finish, and invalid JSON when JSON output was asked for. Also removes the
 * logprobs the gateway asked for on the client's behalf.
 */
#ifndef CG_ROUTE_VERIFY_H
#define CG_ROUTE_VERIFY_H

#include <jansson.h>

#include "config/config.h"

typedef struct cg_verdict {
    int escalate;
    char why[96]; /* e.g. "logprob_mean:-1.73", "refusal", "finish:length", "invalid_json" */
    double mean_logprob, min_logprob;
    int n_logprobs;
} cg_verdict;

/* resp: the provider's response body; want_json: the request asked for JSON
 * output (OpenAI response_format json_object / json_schema). */
void cg_verify_answer(const cg_tiering_cfg *t, cg_api api, const json_t *resp, int want_json,
                      cg_verdict *out);
/* 1 when the request asks for JSON output. */
int cg_verify_wants_json(cg_api api, const json_t *req);
/* Sets choices[].logprobs of an OpenAI response to null, as the provider
 * answers when they are not asked for (the gateway asked, the client did not). */
void cg_verify_strip_logprobs(json_t *resp);

#endif
