/* encodings: OpenAI model name -> tiktoken encoding.
 *
 * Owns: the model map, after tiktoken's model_to_encoding.json and
 * MODEL_PREFIX_TO_ENCODING (npm tiktoken 1.0.22 and OpenAI's published
 * models): every GPT-4o / GPT-4.1 / GPT-4.5 / GPT-5 / o-series / gpt-oss /
 * codex model is o200k_base; GPT-4 (incl. turbo), GPT-3.5, the v3 and ada
 * embeddings and davinci-002 / babbage-002 are cl100k_base. Provider
 * prefixes ("openai/", "azure/") and fine-tune names ("ft:BASE:org::id") are
 * reduced to the base model first. Older r50k/p50k models are not counted.
 */
#include "tokenize/tokenize.h"

#include <string.h>

typedef struct rule {
    const char *prefix;
    cg_encoding enc;
} rule;

/* First match wins: the more specific prefixes come first. */
static const rule RULES[] = {
    {"gpt-4o", CG_ENC_O200K},
    {"chatgpt-4o", CG_ENC_O200K},
    {"gpt-4.1", CG_ENC_O200K},
    {"gpt-4.5", CG_ENC_O200K},
    {"gpt-5", CG_ENC_O200K},
    {"chatgpt-5", CG_ENC_O200K},
    {"gpt-oss", CG_ENC_O200K},
    {"o1", CG_ENC_O200K},
    {"o3", CG_ENC_O200K},
    {"o4", CG_ENC_O200K},
    {"codex-", CG_ENC_O200K},
    {"gpt-realtime", CG_ENC_O200K},
    {"gpt-audio", CG_ENC_O200K},
    {"computer-use-preview", CG_ENC_O200K},
    {"gpt-4", CG_ENC_CL100K},
    {"gpt-3.5", CG_ENC_CL100K},
    {"gpt-35", CG_ENC_CL100K},
    {"text-embedding-3-", CG_ENC_CL100K},
    {"text-embedding-ada-002", CG_ENC_CL100K},
    {"davinci-002", CG_ENC_CL100K},
    {"babbage-002", CG_ENC_CL100K},
};

static int boundary(char c) {
    return c == '\0' || c == '-' || c == ':' || c == '.' || c == '@' || c == '_';
}

cg_encoding cg_encoding_for_model(const char *model) {
    if (!model)
        return CG_ENC_NONE;
    const char *m = model;
    const char *slash = strrchr(m, '/');
    if (slash)
        m = slash + 1; /* "openai/gpt-4o", "azure/gpt-4o" */
    if (strncmp(m, "ft:", 3) == 0)
        m += 3;
    for (size_t i = 0; i < sizeof RULES / sizeof RULES[0]; i++) {
        size_t n = strlen(RULES[i].prefix);
        if (strncmp(m, RULES[i].prefix, n) != 0)
            continue;
        /* "o1" must not match "o13"; the other prefixes are specific enough */
        if (RULES[i].prefix[0] != 'o' || boundary(m[n]))
            return RULES[i].enc;
    }
    return CG_ENC_NONE;
}
