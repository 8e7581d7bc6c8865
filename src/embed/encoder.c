/* encoder: the forward pass of Universal Sentence Encoder lite.
 *
 * Owns: ids -> unit 512-d vector, the ops of the TF.js graph in order, for
 * one sentence (no padding, so the graph's masks are all ones):
 *   x   = e + (e + timing)           e = embedding row of each id; the graph
 *                                    adds the embeddings twice
 *   L0: a = MHA(LN(x)) (4 heads of 64) W_o + b;  h = a + (x W_r + b_r)
 *       h = h + FFN(LN(h))           FFN = relu(. W1 + b1) W2 + b2, 512-1536-512
 *   L1: h = h + MHA(LN(h)) W_o + b   (4 heads of 128)
 *       h = h + FFN(LN(h))
 *   v   = tanh(mean_t(h) W + b);  out = v / sqrt(max(|v|^2, 1e-12))
 * LN = (x - mean) * rsqrt(var + 1e-6) * scale + bias. Queries are scaled
 * before the dot products, as in the graph. The last FFN's second matrix is
 * linear, so it is applied once to the mean of its inputs instead of to
 * every token (same value up to float rounding; a sixth less work per
 * token).
 * All scratch comes from one allocation per call: no shared state.
 */
#include "embed/embed_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The loops below are written once and compiled three times (baseline
 * x86-64 or other, AVX2, AVX-512: see forward_*), so the compiler
 * vectorizes them as wide as the CPU allows. The arithmetic is the same in
 * each: partial sums are explicit, and no multiply-add is fused (GCC does
 * not contract in ISO C mode; the pragma tells clang). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#define INL __attribute__((always_inline))

/* Sum of x[0..n) with 16 partial sums, so the compiler vectorizes it
 * without reassociating on its own. n is a multiple of 16 (every width
 * here is: 64, 128, 256, 512). */
static inline INL float sum16(const float *x, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += x[i + j];
    float s = 0.0f;
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

static inline INL float dot16(const float *x, const float *y, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += x[i + j] * y[i + j];
    float s = 0.0f;
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

static inline INL void layer_norm(const float *x, int L, int D, const float *scale,
                                  const float *bias, float eps, float *y) {
    for (int t = 0; t < L; t++) {
        const float *xr = x + (size_t)t * D;
        float *yr = y + (size_t)t * D;
        float mean = sum16(xr, D) / (float)D;
        for (int i = 0; i < D; i++)
            yr[i] = xr[i] - mean;
        float r = 1.0f / sqrtf(dot16(yr, yr, D) / (float)D + eps);
        for (int i = 0; i < D; i++)
            yr[i] = (scale[i] * r) * yr[i] + bias[i];
    }
}

/* Multi-head self-attention over qkv[L][3*D] (q | k | v, heads split along
 * each D) into out[L][D]. p is scratch of L floats. */
static inline INL void attention(float *qkv, int L, int D, int heads, int hd, float qscale,
                                 float *out, float *p) {
    const int ld = 3 * D;
    for (int t = 0; t < L; t++)
        for (int i = 0; i < D; i++)
            qkv[(size_t)t * ld + i] *= qscale;
    for (int h = 0; h < heads; h++) {
        for (int i = 0; i < L; i++) {
            const float *q = qkv + (size_t)i * ld + h * hd;
            float mx = -INFINITY;
            for (int j = 0; j < L; j++) {
                float s = dot16(q, qkv + (size_t)j * ld + D + h * hd, hd);
                p[j] = s;
                mx = s > mx ? s : mx;
            }
            float sum = 0.0f;
            for (int j = 0; j < L; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            float inv = 1.0f / sum;
            float *o = out + (size_t)i * D + h * hd;
            for (int d = 0; d < hd; d++)
                o[d] = 0.0f;
            for (int j = 0; j < L; j++) {
                const float *v = qkv + (size_t)j * ld + 2 * D + h * hd;
                float w = p[j] * inv;
                for (int d = 0; d < hd; d++)
                    o[d] += w * v[d];
            }
        }
    }
}

static inline INL void mean_rows(const float *x, int L, int D, float *out) {
    for (int i = 0; i < D; i++)
        out[i] = 0.0f;
    for (int t = 0; t < L; t++)
        for (int i = 0; i < D; i++)
            out[i] += x[(size_t)t * D + i];
    float inv = 1.0f / (float)(L > 1 ? L : 1);
    for (int i = 0; i < D; i++)
        out[i] *= inv;
}

/* The per-call scratch, one allocation carved into: */
typedef struct {
    float *x, *ln, *qkv, *att, *h, *g, *ap, *p, *gm, *hm, *pooled;
} bufs;

/* Floats of scratch for L tokens; with blk, also points b into it (each
 * buffer 64-byte aligned when blk is). */
static size_t carve(int L, float *blk, bufs *b) {
    const size_t D0 = CG_EMB_D0, D = CG_EMB_D, F = CG_EMB_FF, Ls = (size_t)(L > 0 ? L : 1);
    const size_t n[] = {Ls * D0,
                        Ls * D,
                        Ls * 3 * D,
                        Ls * D,
                        Ls * D,
                        Ls * F,
                        cg_emb_gemm_scratch((int)Ls, (int)F),
                        (Ls + 15) / 16 * 16,
                        F,
                        D,
                        D};
    float **dst[] = {&b->x,  &b->ln, &b->qkv, &b->att, &b->h,     &b->g,
                     &b->ap, &b->p,  &b->gm,  &b->hm,  &b->pooled};
    size_t off = 0;
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        if (blk)
            *dst[i] = blk + off;
        off += (n[i] + 15) / 16 * 16;
    }
    return off;
}

/* The forward pass of L (<= max_tokens) valid ids. */
static inline INL void forward(const cg_embedder *e, const int32_t *ids, int L, const bufs *b,
                               float out[CG_EMBED_DIM]) {
    const int D0 = CG_EMB_D0, D = CG_EMB_D, F = CG_EMB_FF;
    float *x = b->x, *ln = b->ln, *qkv = b->qkv, *att = b->att, *h = b->h, *g = b->g, *ap = b->ap,
          *p = b->p, *gm = b->gm, *hm = b->hm, *pooled = b->pooled;
    const cg_embed_isa isa = e->isa;

    if (L == 0) {
        memset(pooled, 0, D * sizeof *pooled); /* sum over no tokens / max(0, 1) */
    } else {
        for (int t = 0; t < L; t++) {
            const float *em = e->embed + (size_t)ids[t] * D0, *tm = e->timing + (size_t)t * D0;
            for (int i = 0; i < D0; i++)
                x[(size_t)t * D0 + i] = em[i] + (em[i] + tm[i]);
        }
        /* Layer 0 */
        layer_norm(x, L, D0, e->ln0a_s, e->ln0a_b, e->ln_eps, ln);
        cg_emb_gemm(isa, &e->qkv0, ln, D0, L, qkv, 3 * D0, CG_EMB_EPI_BIAS, ap);
        attention(qkv, L, D0, e->heads0, e->hd0, e->qscale0, att, p);
        cg_emb_gemm(isa, &e->res0, x, D0, L, h, D, CG_EMB_EPI_BIAS, ap);
        cg_emb_gemm(isa, &e->att0, att, D0, L, h, D, CG_EMB_EPI_BIAS_ADD, ap);
        layer_norm(h, L, D, e->ln0f_s, e->ln0f_b, e->ln_eps, ln);
        cg_emb_gemm(isa, &e->ffa0, ln, D, L, g, F, CG_EMB_EPI_BIAS_RELU, ap);
        cg_emb_gemm(isa, &e->ffb0, g, F, L, h, D, CG_EMB_EPI_BIAS_ADD, ap);
        /* Layer 1 */
        layer_norm(h, L, D, e->ln1a_s, e->ln1a_b, e->ln_eps, ln);
        cg_emb_gemm(isa, &e->qkv1, ln, D, L, qkv, 3 * D, CG_EMB_EPI_BIAS, ap);
        attention(qkv, L, D, e->heads1, e->hd1, e->qscale1, att, p);
        cg_emb_gemm(isa, &e->att1, att, D, L, h, D, CG_EMB_EPI_BIAS_ADD, ap);
        layer_norm(h, L, D, e->ln1f_s, e->ln1f_b, e->ln_eps, ln);
        cg_emb_gemm(isa, &e->ffa1, ln, D, L, g, F, CG_EMB_EPI_BIAS_RELU, ap);
        /* mean_t(h + g W2 + b2) = mean_t(h) + mean_t(g) W2 + b2 */
        mean_rows(g, L, F, gm);
        mean_rows(h, L, D, hm);
        memcpy(pooled, hm, D * sizeof *pooled);
        cg_emb_gemm(isa, &e->ffb1, gm, F, 1, pooled, D, CG_EMB_EPI_BIAS_ADD, ap);
    }
    float *v = gm; /* free again */
    cg_emb_gemm(isa, &e->out, pooled, D, 1, v, D, CG_EMB_EPI_BIAS, ap);
    float sq = 0.0f;
    for (int i = 0; i < D; i++) {
        v[i] = tanhf(v[i]);
        sq += v[i] * v[i];
    }
    float r = 1.0f / sqrtf(sq > e->l2_eps ? sq : e->l2_eps);
    for (int i = 0; i < D; i++)
        out[i] = v[i] * r;
}

static void forward_base(const cg_embedder *e, const int32_t *ids, int L, const bufs *b,
                         float out[CG_EMBED_DIM]) {
    forward(e, ids, L, b, out);
}

#if defined(__x86_64__) || defined(__i386__)
static __attribute__((target("avx2"))) void forward_avx2(const cg_embedder *e, const int32_t *ids,
                                                         int L, const bufs *b,
                                                         float out[CG_EMBED_DIM]) {
    forward(e, ids, L, b, out);
}

static __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2"))) void
forward_avx512(const cg_embedder *e, const int32_t *ids, int L, const bufs *b,
               float out[CG_EMBED_DIM]) {
    forward(e, ids, L, b, out);
}
#endif

int cg_embed_ids(const cg_embedder *e, const int32_t *ids, size_t n, float out[CG_EMBED_DIM]) {
    const int L = n < (size_t)e->max_tokens ? (int)n : e->max_tokens;
    for (int t = 0; t < L; t++)
        if (ids[t] < 0 || ids[t] >= e->embed_rows)
            return -1;
    bufs b;
    float *blk = aligned_alloc(64, carve(L, NULL, &b) * sizeof(float));
    if (!blk)
        return -1;
    carve(L, blk, &b);
#if defined(__x86_64__) || defined(__i386__)
    if (e->isa == CG_EMBED_ISA_AVX512 || e->isa == CG_EMBED_ISA_AMX)
        forward_avx512(e, ids, L, &b, out);
    else if (e->isa == CG_EMBED_ISA_AVX2)
        forward_avx2(e, ids, L, &b, out);
    else
#endif
        forward_base(e, ids, L, &b, out);
    free(blk);
    return 0;
}

int cg_embed(const cg_embedder *e, const char *text, size_t len, float out[CG_EMBED_DIM]) {
    int32_t ids[CG_EMBED_MAX_TOKENS];
    int n = cg_embed_tokenize(e, text, len, ids, CG_EMBED_MAX_TOKENS);
    if (n < 0)
        return -1;
    return cg_embed_ids(e, ids, (size_t)n, out);
}
