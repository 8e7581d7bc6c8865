/* estimate: pre-call cost estimate of a request, in nano-USD.
 *
 * Owns: the admission-time bound of what a request can cost:
 *   input tokens x input price + output bound x output price
 * where the output bound is max_completion_tokens / max_tokens /
 * max_output_tokens (x n choices), else the model's maximum output from
 * the price table. OpenAI input tokens are exact (tokenize.h + chat.h:
 * messages, names, tools, images, system prompt); Anthropic input tokens
 * come from the calibrated estimator (claude.h) and the budget uses its p95
 * bound, the cost range its median. Embeddings have no output. Money is
 * integer nano-USD; products are summed in femto-USD and rounded once
 * (cg_money_tok_femto / cg_money_femto_to_nano), as the meter does.
 */
#ifndef CG_TOKENIZE_ESTIMATE_H
#define CG_TOKENIZE_ESTIMATE_H

#include "cost/prices.h"
#include "tokenize/tokenize.h"

#include <jansson.h>
#include <stdint.h>

typedef enum {
    CG_TOK_API_OPENAI_CHAT = 0,    /* /v1/chat/completions */
    CG_TOK_API_OPENAI_EMBEDDINGS,  /* /v1/embeddings */
    CG_TOK_API_OPENAI_RESPONSES,   /* /v1/responses (approximate framing) */
    CG_TOK_API_ANTHROPIC_MESSAGES, /* /v1/messages */
    CG_TOK_API_UNKNOWN = -1,
} cg_tok_api;

enum {
    CG_EST_EXACT = 1u << 0,            /* input tokens are exact (OpenAI text) */
    CG_EST_APPROX = 1u << 1,           /* some part was approximated */
    CG_EST_CLAUDE = 1u << 2,           /* input from the Claude estimator */
    CG_EST_OUTPUT_UNBOUNDED = 1u << 3, /* no max_tokens and no model maximum */
    CG_EST_IMAGES_UNKNOWN = 1u << 4,   /* images counted at their maximum */
    CG_EST_UNPRICED = 1u << 5,         /* no price: costs are 0 */
    CG_EST_BATCH = 1u << 6,            /* batch prices used */
    CG_EST_OVER_CONTEXT = 1u << 7,     /* input exceeds the model's context window */
};

typedef struct cg_estimate {
    cg_tok_api api;
    cg_encoding encoding;       /* encoding used to count (cl100k for Claude) */
    int64_t input_tokens;       /* predicted input tokens: OpenAI = prompt_tokens
                                   (cached included); Claude = median estimate of
                                   input + cache read + cache write tokens */
    int64_t input_tokens_upper; /* budget bound (= input_tokens when exact) */
    int64_t output_tokens_max;  /* output bound (0 for embeddings) */
    int64_t cost_low;           /* nano-USD: input_tokens x input price */
    int64_t cost_high;          /* nano-USD: upper input + output bound; the budget */
    unsigned flags;             /* CG_EST_* */
} cg_estimate;

/* The API of a request path ("/v1/chat/completions", "/v1/messages", ...). */
cg_tok_api cg_tok_api_from_path(const char *path);
const char *cg_tok_api_name(cg_tok_api api);

/* Estimates a request body. model: NULL = the body's "model". price: the
 * model's row (NULL = unpriced, costs 0 and CG_EST_UNPRICED). batch: price
 * at the batch rates. Tokenizers are the process-wide ones (cg_tok_get).
 * 0, or -1 with a message (bad body, model with no encoding, rank files
 * missing). */
int cg_estimate_request(cg_tok_api api, const char *model, const json_t *body,
                        const cg_price *price, int batch, cg_estimate *out, char *err,
                        size_t errlen);

/* Cost in nano-USD of in input and out output tokens at a price (batch
 * rates if batch), rounded once; the same arithmetic as the meter. */
int64_t cg_estimate_cost(const cg_price *price, int batch, int64_t in, int64_t out);

#endif
