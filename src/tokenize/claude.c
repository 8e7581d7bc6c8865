/* claude: the calibrated Claude input-token estimator.
 *
 * Owns: walking an Anthropic Messages body into text (counted with
 * cl100k_base) and fixed costs (images, the tool-use system prompt from
 * Anthropic's pricing table), then applying the calibrated scale (claude.h).
 */
#include "tokenize/claude.h"

#include "tokenize/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t cg_claude_scale(int64_t tokens, int64_t ratio_ppm) {
    if (tokens <= 0)
        return 0;
    __int128 p = (__int128)tokens * ratio_ppm;
    return (int64_t)((p + 999999) / 1000000);
}

int64_t cg_claude_estimate_text(const char *text, size_t len, int upper) {
    const cg_tokenizer *t = cg_tok_get(CG_ENC_CL100K, NULL, 0);
    if (!t)
        return -1;
    int64_t n = cg_tok_count(t, text, len, 0);
    if (n < 0)
        return -1;
    return CG_CLAUDE_BASE_TOKENS +
           cg_claude_scale(n, upper ? CG_CLAUDE_RATIO_P95_PPM : CG_CLAUDE_RATIO_P50_PPM);
}

/* Tool-use system prompt tokens (Anthropic's tool use pricing table):
 * tool_choice auto/none, then any/tool. */
static int64_t tool_prompt_tokens(const char *model, const json_t *tool_choice) {
    const char *type = json_string_value(json_object_get(tool_choice, "type"));
    int forced = type && (strcmp(type, "any") == 0 || strcmp(type, "tool") == 0);
    const char *m = model ? model : "";
    const char *slash = strrchr(m, '/');
    if (slash)
        m = slash + 1;
    if (strncmp(m, "claude-3-haiku", 14) == 0 || strncmp(m, "claude-3-5-haiku", 16) == 0)
        return forced ? 340 : 264;
    if (strncmp(m, "claude-3-opus", 13) == 0)
        return forced ? 281 : 530;
    if (strncmp(m, "claude-3-sonnet", 15) == 0)
        return forced ? 235 : 159;
    return forced ? 313 : 346;
}

static int64_t count_text(const cg_tokenizer *t, const json_t *v) {
    if (json_is_string(v)) {
        int64_t c = cg_tok_count(t, json_string_value(v), json_string_length(v), 0);
        return c < 0 ? 0 : c;
    }
    if (!v || json_is_null(v))
        return 0;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int64_t c = s ? cg_tok_count(t, s, strlen(s), 0) : 0;
    free(s);
    return c < 0 ? 0 : c;
}

static void count_blocks(const cg_tokenizer *t, const json_t *content, cg_claude_count *out);

static void count_block(const cg_tokenizer *t, const json_t *b, cg_claude_count *out) {
    const char *type = json_string_value(json_object_get(b, "type"));
    if (json_is_string(b)) {
        out->text_tokens += count_text(t, b);
        return;
    }
    if (!type)
        return;
    if (strcmp(type, "text") == 0) {
        out->text_tokens += count_text(t, json_object_get(b, "text"));
    } else if (strcmp(type, "image") == 0) {
        const json_t *src = json_object_get(b, "source");
        const char *data = json_string_value(json_object_get(src, "data"));
        int64_t w = 0, h = 0;
        if (!data || cg_image_size_base64(data, strlen(data), &w, &h) != 0) {
            w = h = 0;
            out->images_unknown++;
        }
        out->images++;
        out->fixed_tokens += cg_claude_image_tokens(w, h);
    } else if (strcmp(type, "document") == 0) {
        const json_t *src = json_object_get(b, "source");
        const char *st = json_string_value(json_object_get(src, "type"));
        if (st && strcmp(st, "text") == 0) {
            out->text_tokens += count_text(t, json_object_get(src, "data"));
        } else if (st && strcmp(st, "content") == 0) {
            count_blocks(t, json_object_get(src, "content"), out);
        } else {
            /* PDF: text plus a page image per page; about one token per
             * three bytes of the file is a rough upper estimate */
            const char *data = json_string_value(json_object_get(src, "data"));
            out->fixed_tokens += data ? (int64_t)(strlen(data) / 4) : 1600;
            out->approx = 1;
        }
    } else if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0) {
        out->text_tokens +=
            count_text(t, json_object_get(b, "name")) + count_text(t, json_object_get(b, "input"));
    } else if (strcmp(type, "tool_result") == 0) {
        const json_t *c = json_object_get(b, "content");
        if (json_is_array(c))
            count_blocks(t, c, out);
        else
            out->text_tokens += count_text(t, c);
    } else if (strcmp(type, "thinking") == 0) {
        out->text_tokens += count_text(t, json_object_get(b, "thinking"));
    } else {
        out->text_tokens += count_text(t, b); /* redacted thinking, search results, ... */
        out->approx = 1;
    }
}

static void count_blocks(const cg_tokenizer *t, const json_t *content, cg_claude_count *out) {
    if (json_is_string(content)) {
        out->text_tokens += count_text(t, content);
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        count_block(t, b, out);
    }
}

int cg_claude_count_messages(const cg_tokenizer *t, const char *model, const json_t *body,
                             cg_claude_count *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!model)
        model = json_string_value(json_object_get(body, "model"));
    const json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs)) {
        snprintf(err, errlen, "request has no \"messages\" array");
        return -1;
    }
    count_blocks(t, json_object_get(body, "system"), out);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) {
            snprintf(err, errlen, "message %zu is not an object", i);
            return -1;
        }
        out->messages++;
        count_blocks(t, json_object_get(m, "content"), out);
    }
    const json_t *tools = json_object_get(body, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *tool;
        json_array_foreach(tools, i, tool) {
            if (json_object_get(tool, "input_schema")) {
                out->text_tokens += count_text(t, json_object_get(tool, "name")) +
                                    count_text(t, json_object_get(tool, "description")) +
                                    count_text(t, json_object_get(tool, "input_schema"));
            } else {
                out->text_tokens += count_text(t, tool); /* server tools */
                out->approx = 1;
            }
        }
        out->fixed_tokens += tool_prompt_tokens(model, json_object_get(body, "tool_choice"));
    }
    int extra = out->messages > 1 ? out->messages - 1 : 0;
    out->fixed_tokens += CG_CLAUDE_BASE_TOKENS + (int64_t)extra * CG_CLAUDE_PER_MESSAGE;
    out->estimate = out->fixed_tokens + cg_claude_scale(out->text_tokens, CG_CLAUDE_RATIO_P50_PPM);
    out->upper = out->fixed_tokens + cg_claude_scale(out->text_tokens, CG_CLAUDE_RATIO_P95_PPM);
    return 0;
}
