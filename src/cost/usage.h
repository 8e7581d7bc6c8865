/* usage: provider usage objects normalised into one token breakdown.
 *
 * Owns: the rules that make OpenAI and Anthropic usage comparable.
 *  - OpenAI chat: prompt_tokens INCLUDES prompt_tokens_details.cached_tokens,
 *    so input = prompt_tokens - cached_tokens, cached_read = cached_tokens;
 *    completion_tokens INCLUDES completion_tokens_details.reasoning_tokens,
 *    so output = completion_tokens and reasoning is informational.
 *  - OpenAI embeddings: embedding = prompt_tokens (or total_tokens).
 *  - Anthropic: input_tokens EXCLUDES cache_read_input_tokens and
 *    cache_creation_input_tokens; cache writes are split into 5 min and 1 h
 *    by usage.cache_creation.ephemeral_{5m,1h}_input_tokens when present,
 *    else all of cache_creation_input_tokens is 5 min. Never both.
 *  - Anthropic streams: message_start carries the initial usage, each
 *    message_delta carries cumulative values that replace what they name.
 */
#ifndef CG_COST_USAGE_H
#define CG_COST_USAGE_H

#include <jansson.h>
#include <stdint.h>

enum {
    CG_USAGE_HAVE_INPUT = 1u << 0,
    CG_USAGE_HAVE_OUTPUT = 1u << 1,
    CG_USAGE_HAVE_EMBED = 1u << 2,
};

typedef struct cg_usage {
    int64_t input;          /* uncached input billed at the input price */
    int64_t cached_read;    /* input read from the provider's prompt cache */
    int64_t cache_write_5m; /* input written to the prompt cache, 5 min TTL */
    int64_t cache_write_1h; /* input written to the prompt cache, 1 h TTL */
    int64_t output;         /* all output, reasoning included */
    int64_t reasoning;      /* part of output, informational */
    int64_t embedding;      /* embedding input tokens */
    int64_t web_searches;   /* server-side web search requests (Anthropic) */
    unsigned have;          /* CG_USAGE_HAVE_* : which parts were reported */
} cg_usage;

/* Each returns 0, or -1 if the object is not a usable usage object (wrong
 * types, negative counts, cached > prompt). out is zeroed first. */
int cg_usage_from_openai(const json_t *usage, cg_usage *out);
int cg_usage_from_openai_embedding(const json_t *usage, cg_usage *out);
int cg_usage_from_anthropic(const json_t *usage, cg_usage *out);
/* Applies a message_delta usage object onto acc (Anthropic stream). */
int cg_usage_anthropic_delta(cg_usage *acc, const json_t *delta_usage);
/* Total input-side tokens (input + cached + writes). */
int64_t cg_usage_input_total(const cg_usage *u);

#endif
