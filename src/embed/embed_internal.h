/* embed_internal: what the files of src/embed/ share and nothing outside uses.
 *
 * Owns: the loaded model (struct cg_embedder), the packed-matrix type and
 * the entry points of the matrix kernels (gemm.c), the tokenizer's trie
 * (tokenizer.c) and the forward pass (encoder.c). model.c fills the struct.
 */
#ifndef CG_EMBED_INTERNAL_H
#define CG_EMBED_INTERNAL_H

#include "embed/embed.h"

#include <stddef.h>
#include <stdint.h>

#define CG_EMB_D0 256   /* token embedding width (layer 0) */
#define CG_EMB_D 512    /* model width (layer 1, output) */
#define CG_EMB_FF 1536  /* feed-forward width */
#define CG_EMB_QKV0 768 /* layer 0 q|k|v */

/* In-memory formats of a weight matrix. */
enum { CG_EMB_W_F32, CG_EMB_W_F16, CG_EMB_W_BF16 };
/* Columns per group of the AMX layout (4 tiles of 16). */
#define CG_EMB_AMX_NG 64

/* A weight matrix W[K][N] (y = x W + b) packed for the kernels. F32, F16:
 * N/nr panels, each K rows of nr consecutive columns. BF16 (AMX kernels
 * only): N/64 column groups, each K/32 blocks of 4 tiles, each tile 16 k
 * pairs x 16 columns x the pair (K % 32 == 0, N % 64 == 0). */
typedef struct cg_emb_mat {
    int K, N;
    const void *w;  /* packed, 64-byte aligned: float, IEEE half or bfloat16 per fmt */
    const float *b; /* N */
    int fmt;        /* CG_EMB_W_* */
} cg_emb_mat;

enum { CG_EMB_EPI_BIAS, CG_EMB_EPI_BIAS_RELU, CG_EMB_EPI_BIAS_ADD };

/* Panel width of a kernel set. */
int cg_emb_isa_nr(cg_embed_isa isa);
/* The best kernel set this CPU runs. */
cg_embed_isa cg_emb_isa_detect(void);
int cg_emb_isa_supported(cg_embed_isa isa);
/* Rewrites w[K][N] in place into the layout of fmt (CG_EMB_W_*): panels of
 * width nr as floats or as halves, or the AMX bfloat16 layout; 16-bit
 * formats fill the first half of the space. tmp holds K*N floats. N must be
 * a multiple of nr (of 64, and K of 32, for BF16). */
void cg_emb_pack(float *w, int K, int N, int nr, int fmt, float *tmp);
/* Whether a kernel set has half-precision weight kernels. */
int cg_emb_isa_has_f16(cg_embed_isa isa);
/* Floats of scratch cg_emb_gemm needs for M rows of width K. */
size_t cg_emb_gemm_scratch(int M, int K);
/* C[M][N] (row stride ldc) = A[M][K] (row stride lda) W + b (K a multiple
 * of 4, as every width of this model is), then:
 * BIAS_RELU max(., 0); BIAS_ADD adds the old C. ap is scratch of
 * cg_emb_gemm_scratch(M, K) floats, 64-byte aligned. A BF16 matrix runs on
 * the AMX kernels (isa must be AMX); F32 and F16 ones with isa AMX run on
 * the AVX-512 kernels. */
void cg_emb_gemm(cg_embed_isa isa, const cg_emb_mat *m, const float *A, int lda, int M, float *C,
                 int ldc, int epi, float *ap);

/* Tokenizer trie: an open-addressing map (node, code point) -> child node. */
typedef struct cg_emb_trie {
    uint64_t *keys; /* 0 = empty; else ((node + 1) << 21 | cp) */
    int32_t *child;
    size_t mask;    /* capacity - 1 */
    int32_t *piece; /* per node: vocabulary id ending here, or -1 */
    double *score;  /* per node: its score */
    int32_t n_nodes;
} cg_emb_trie;

struct cg_embedder {
    void *blob; /* the whole file, 64-byte aligned; matrices packed in place */
    size_t blob_len;
    cg_embed_isa isa;
    int wfmt; /* CG_EMB_W_* of the matrices (the AMX set keeps ffb1 and out,
                 one-row products, as halves) */

    /* vocabulary */
    int n_vocab;
    int reserved; /* ids below this are never produced by the trie */
    const uint8_t *pieces;
    const int32_t *piece_off; /* n_vocab + 1 */
    const double *scores;
    uint8_t *utf16_len; /* per id: the piece's length in UTF-16 units */
    cg_emb_trie trie;
    /* NFKC of single code points per the reference runtime's Unicode
     * version, used for code points utf8proc does not know */
    int n_nfkc;
    const int32_t *nfkc_cps; /* sorted */
    const int32_t *nfkc_off; /* n_nfkc + 1 */
    const uint8_t *nfkc_bytes;

    /* graph constants */
    int max_tokens;
    int heads0, hd0, heads1, hd1;
    float ln_eps, l2_eps, qscale0, qscale1;

    int embed_rows;
    const float *embed; /* [embed_rows][256] */
    float *timing;      /* [max_tokens][256]: sin | cos of position * inv */

    const float *ln0a_s, *ln0a_b, *ln0f_s, *ln0f_b, *ln1a_s, *ln1a_b, *ln1f_s, *ln1f_b;
    cg_emb_mat qkv0, att0, res0, ffa0, ffb0, qkv1, att1, ffa1, ffb1, out;
};

/* tokenizer.c */
int cg_emb_trie_build(cg_embedder *e, char *err, size_t errcap);
void cg_emb_trie_free(cg_emb_trie *t);

#endif
