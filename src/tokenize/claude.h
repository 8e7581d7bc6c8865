/* claude: input-token estimate for Anthropic Messages requests.
 *
 * Owns: the estimator and its calibration. No public tokenizer exists for
 * current Claude models, so text is counted with cl100k_base and scaled:
 *   tokens = BASE + (messages - 1) * PER_MESSAGE + ceil(cl100k * ratio)
 *            + images + tool-use system prompt.
 * BASE and the ratios were fitted on the 809 real Claude 3 Haiku
 * input_tokens of ../shared/data/routerarena (one user message each):
 * ratio_p50 is the median of (input_tokens - BASE) / cl100k tokens, the
 * estimate; ratio_p95 its 95th percentile, the budget bound (it covers
 * 96.4% of the 809 requests; tests/unit/tokenize/test_claude.c reproduces
 * every figure). cl100k fits Claude 3 tighter than the legacy Claude BPE of
 * npm @anthropic-ai/tokenizer (p95/p50 spread 1.067 vs 1.105, max ratio
 * 1.27 vs 1.51; bench/tokenizer/calibrate_claude.mjs). Newer Claude models
 * are not calibrated: the same factors apply. PER_MESSAGE (5) is an
 * assumption, not fitted: the data has one message.
 */
#ifndef CG_TOKENIZE_CLAUDE_H
#define CG_TOKENIZE_CLAUDE_H

#include "tokenize/tokenize.h"

#include <jansson.h>
#include <stdint.h>

#define CG_CLAUDE_BASE_TOKENS 10
#define CG_CLAUDE_PER_MESSAGE 5
#define CG_CLAUDE_RATIO_P50_PPM 1081856 /* x 1e-6 */
#define CG_CLAUDE_RATIO_P95_PPM 1154606

typedef struct cg_claude_count {
    int64_t text_tokens;  /* cl100k tokens of all text (system, messages, tools) */
    int64_t fixed_tokens; /* base, per-message, images, tool-use system prompt */
    int64_t estimate;     /* median estimate of input tokens */
    int64_t upper;        /* budget bound (p95) */
    int messages;
    int images;
    int images_unknown;
    int approx; /* documents, server tools, redacted thinking approximated */
} cg_claude_count;

/* ceil(tokens * ratio_ppm / 1e6) */
int64_t cg_claude_scale(int64_t cl100k_tokens, int64_t ratio_ppm);
/* Estimate for one user message of text (the calibration shape); upper
 * selects the p95 bound. -1 if cl100k cannot be loaded. */
int64_t cg_claude_estimate_text(const char *text, size_t len, int upper);
/* Counts an Anthropic Messages body ("system", "messages", "tools",
 * "tool_choice"). cl100k: the cl100k_base tokenizer. 0 or -1. */
int cg_claude_count_messages(const cg_tokenizer *cl100k, const char *model, const json_t *body,
                             cg_claude_count *out, char *err, size_t errlen);

#endif
