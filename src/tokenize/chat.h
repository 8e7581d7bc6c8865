/* chat: prompt-token prediction for OpenAI chat requests.
 *
 * Owns: the tokens OpenAI adds around chat content, after OpenAI's
 * "How to count tokens with tiktoken" rules: 3 per message, 1 more per
 * "name", 3 priming the reply (<|start|>assistant<|message|>), every string
 * field of a message encoded; function/tool definitions by the cookbook's
 * num_tokens_for_tools (per function 7, 10 for GPT-4/GPT-3.5, "name:desc"
 * with a trailing '.' dropped, 3 for the properties, 3 + "key:type:desc" per
 * property, -3 + 3 per enum item + the item, 12 at the end); images by the
 * documented rules: tiles (scale into 2048x2048, shortest side to 768, 512px
 * tiles, base + tile * n, low detail = base) or 32px patches (cap 1536,
 * times the model's multiplier). Image sizes are read from data: URLs (PNG,
 * JPEG, GIF, WebP); an image whose size is unknown counts at the maximum the
 * rule allows. Also the image and size helpers used by the Claude estimator.
 */
#ifndef CG_TOKENIZE_CHAT_H
#define CG_TOKENIZE_CHAT_H

#include "tokenize/tokenize.h"

#include <jansson.h>
#include <stdint.h>

typedef struct cg_chat_count {
    int64_t tokens;       /* predicted prompt_tokens (sum of the parts below) */
    int64_t text_tokens;  /* encoded message fields */
    int64_t overhead;     /* per-message, name and priming tokens */
    int64_t tool_tokens;  /* tool / function definitions */
    int64_t image_tokens; /* image inputs */
    int messages;
    int images;
    int images_unknown; /* images counted at their maximum (size unknown) */
    int approx;         /* 1 if some part is approximated (tool calls, nested
                           tool schemas, response_format, audio, files) */
} cg_chat_count;

/* Counts an OpenAI Chat Completions body ("messages", "tools"/"functions",
 * "response_format") with tokenizer t; model selects the tool and image
 * constants (NULL: body's "model"). 0, or -1 with a message. */
int cg_chat_count_openai(const cg_tokenizer *t, const char *model, const json_t *body,
                         cg_chat_count *out, char *err, size_t errlen);

/* Image tokens of a model for a w x h image (w or h <= 0: unknown size, the
 * maximum) at detail "low" / "high" / "auto" (NULL = auto). */
int64_t cg_openai_image_tokens(const char *model, int64_t w, int64_t h, const char *detail);
/* Claude: long edge scaled to 1568, ceil(w*h/750), at most 1600; unknown 1600. */
int64_t cg_claude_image_tokens(int64_t w, int64_t h);

/* Width and height of a PNG/JPEG/GIF/WebP image from its first bytes, or
 * from a "data:...;base64," URL / raw base64 text. 0 or -1 (unknown). */
int cg_image_size(const uint8_t *p, size_t n, int64_t *w, int64_t *h);
int cg_image_size_base64(const char *b64, size_t n, int64_t *w, int64_t *h);

#endif
