/* embed: the built-in sentence embedder, Universal Sentence Encoder lite.
 *
 * Owns: the public API of src/embed/. A cg_embedder is loaded once from the
 * converted model file (scripts/convert_use.mjs writes var/models/use-lite.bin)
 * and is read-only afterwards, so any number of threads may call cg_embed()
 * and cg_embed_tokenize() on it at once: each call allocates its own scratch.
 *
 * The output reproduces the reference JavaScript runtime (npm
 * @energetic-ai/embeddings on TF.js): the same SentencePiece ids, then the
 * same graph (2 transformer layers, mean pooling, tanh, L2 normalisation),
 * so vectors are unit length and 512-d. Text is truncated to the first
 * CG_EMBED_MAX_TOKENS tokens, as the graph itself does. Details and measured
 * parity in docs/embed.md.
 */
#ifndef CG_EMBED_EMBED_H
#define CG_EMBED_EMBED_H

#include <stddef.h>
#include <stdint.h>

#define CG_EMBED_DIM 512
/* The graph keeps tokens at positions < 128 and drops the rest. */
#define CG_EMBED_MAX_TOKENS 128
/* Bytes of text looked at: text past the point where 128 tokens are certain
 * (the 128th ASCII space) is never read; text with fewer spaces is cut at
 * this many bytes (at a UTF-8 boundary) before tokenising. */
#define CG_EMBED_MAX_TEXT_BYTES 65536

typedef struct cg_embedder cg_embedder;

/* Which matrix kernels to use; AUTO picks the best the CPU supports. */
typedef enum {
    CG_EMBED_ISA_AUTO = 0,
    CG_EMBED_ISA_GENERIC,
    CG_EMBED_ISA_AVX2,
    CG_EMBED_ISA_AVX512,
    CG_EMBED_ISA_AMX /* AVX-512 plus AMX bfloat16 tiles (default weights: bfloat16) */
} cg_embed_isa;

typedef struct cg_embed_opts {
    cg_embed_isa isa; /* AUTO (0): the best kernels this CPU runs */
    /* 0 (default): the AVX2 and AVX-512 kernels keep the weight matrices as
     * IEEE half floats (rounded once at load; arithmetic stays float32),
     * which halves the memory each sentence streams; cosine to the float32
     * result stays above 0.99999. The AMX kernels keep them as bfloat16 and
     * round the activations to bfloat16 at each product (float32
     * accumulation): cosine to the float32 result above 0.9999
     * (docs/embed.md). 1: float32 weights on the AVX-512 kernels (AUTO then
     * picks AVX-512, not AMX). */
    int fp32_weights;
} cg_embed_opts;

/* Loads and validates a model file with default options. NULL with a
 * message in err on failure (missing, truncated, corrupt, wrong version or
 * shapes). */
cg_embedder *cg_embed_open(const char *path, char *err, size_t errcap);
/* As cg_embed_open with options (NULL: defaults); NULL with a message in
 * err when the CPU lacks the requested kernels. */
cg_embedder *cg_embed_open_opts(const char *path, const cg_embed_opts *opts, char *err,
                                size_t errcap);
void cg_embed_close(cg_embedder *e);

int cg_embed_dim(const cg_embedder *e);
/* The kernel set in use: "generic", "avx2", "avx512" or "amx". */
const char *cg_embed_isa_name(const cg_embedder *e);
/* The in-memory weight format: "bf16" (AMX; its two one-row products keep
 * half floats), "f16" or "f32". */
const char *cg_embed_weights_name(const cg_embedder *e);

/* Embeds text (UTF-8; invalid sequences read as U+FFFD, as a WHATWG
 * decoder does) into out[512], unit length. Empty text, which the reference
 * rejects, gives the graph's value for zero tokens. 0 on success, -1 when
 * memory ran out (out untouched). */
int cg_embed(const cg_embedder *e, const char *text, size_t len, float out[CG_EMBED_DIM]);

/* Embeds a sequence of SentencePiece ids (n clipped to 128; ids must be in
 * [0, vocabulary rows)). 0 on success, -1 on bad ids or no memory. */
int cg_embed_ids(const cg_embedder *e, const int32_t *ids, size_t n, float out[CG_EMBED_DIM]);

/* The SentencePiece ids the model sees for text (at most 128). Writes up to
 * cap ids and returns how many there are, or -1 when memory ran out. */
int cg_embed_tokenize(const cg_embedder *e, const char *text, size_t len, int32_t *ids, size_t cap);

#endif
