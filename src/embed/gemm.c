/* gemm: the matrix kernels of the embedder (the hot loop of cg_embed).
 *
 * Owns: CPU feature detection, the packed weight layout (float32 or IEEE
 * half), and C = A W + b (+ ReLU or + C) for three kernel sets chosen at run
 * time: AVX-512 (32-column panels, up to 12 rows at a time), AVX2+FMA+F16C
 * (16 columns, up to 6 rows) and portable C (16 columns, 4 rows, float32
 * only). The binary runs on any x86-64: the wide kernels are compiled with
 * target attributes and only called when the CPU reports the features.
 *
 * A sentence is ~10-30 rows, so each weight matrix is read once per call
 * from L3 or memory: that stream is the cost. Hence half-float weights
 * (converted to float32 in registers; the arithmetic stays float32) and a
 * software prefetch a few KiB ahead of the panel being read.
 * Loop order: for each column panel (K x nr values), every row block of A
 * (packed k-major so each step broadcasts contiguous values) runs the whole
 * K with its accumulators in registers.
 */
#include "embed/embed_internal.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CG_EMB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define CG_EMB_X86 0
#endif

int cg_emb_isa_nr(cg_embed_isa isa) {
    return isa == CG_EMBED_ISA_AVX512 ? 32 : 16;
}

static int mr_max(cg_embed_isa isa) {
    return isa == CG_EMBED_ISA_AVX512 ? 12 : isa == CG_EMBED_ISA_AVX2 ? 6 : 4;
}

#if CG_EMB_X86
/* CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports has no "f16c"). The
 * callers check AVX2 first, which covers the OS saving the registers. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

int cg_emb_isa_supported(cg_embed_isa isa) {
    switch (isa) {
    case CG_EMBED_ISA_GENERIC:
        return 1;
#if CG_EMB_X86
    case CG_EMBED_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case CG_EMBED_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma") && has_f16c();
#endif
    default:
        return 0;
    }
}

int cg_emb_isa_has_f16(cg_embed_isa isa) {
    return isa == CG_EMBED_ISA_AVX2 || isa == CG_EMBED_ISA_AVX512;
}

cg_embed_isa cg_emb_isa_detect(void) {
    if (cg_emb_isa_supported(CG_EMBED_ISA_AVX512))
        return CG_EMBED_ISA_AVX512;
    if (cg_emb_isa_supported(CG_EMBED_ISA_AVX2))
        return CG_EMBED_ISA_AVX2;
    return CG_EMBED_ISA_GENERIC;
}

/* float -> IEEE half, round to nearest even (overflow to infinity). */
static uint16_t to_half(float f) {
    uint32_t x, ax;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf, nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds past 65504 */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half, units of 2^-24 */
        float a;
        memcpy(&a, &ax, sizeof a);
        return (uint16_t)(sign | (uint16_t)lrintf(a * 16777216.0f));
    }
    uint32_t m = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | (uint16_t)((m - 0x38000000u) >> 13));
}

void cg_emb_pack(float *w, int K, int N, int nr, int f16, float *tmp) {
    memcpy(tmp, w, (size_t)K * N * sizeof *w);
    float *d32 = w;
    uint16_t *d16 = (uint16_t *)w;
    for (int p = 0; p < N / nr; p++)
        for (int k = 0; k < K; k++) {
            const float *src = tmp + (size_t)k * N + (size_t)p * nr;
            if (f16) {
                for (int j = 0; j < nr; j++)
                    *d16++ = to_half(src[j]);
            } else {
                memcpy(d32, src, (size_t)nr * sizeof *w);
                d32 += nr;
            }
        }
}

/* Packs rows [m0, m0 + mr) of A k-major: ap[k * mr + r] = A[m0 + r][k]. */
static void pack_a(const float *A, int lda, int m0, int mr, int K, float *ap) {
    for (int r = 0; r < mr; r++) {
        const float *src = A + (size_t)(m0 + r) * lda;
        for (int k = 0; k < K; k++)
            ap[(size_t)k * mr + r] = src[k];
    }
}

/* ---- portable kernel: 16 columns ---- */

static inline __attribute__((always_inline)) void kgen(const int MR, int K, const float *ap,
                                                       const float *bp, float *c, int ldc,
                                                       const float *bias, int epi) {
    float acc[4][16];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 16; j++)
            acc[r][j] = 0.0f;
    for (int k = 0; k < K; k++) {
        const float *b = bp + (size_t)k * 16;
        for (int r = 0; r < MR; r++) {
            float a = ap[(size_t)k * MR + r];
            for (int j = 0; j < 16; j++)
                acc[r][j] += a * b[j];
        }
    }
    for (int r = 0; r < MR; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < 16; j++) {
            float v = acc[r][j] + bias[j];
            if (epi == CG_EMB_EPI_BIAS_RELU)
                v = v > 0.0f ? v : 0.0f;
            else if (epi == CG_EMB_EPI_BIAS_ADD)
                v = v + cr[j];
            cr[j] = v;
        }
    }
}

typedef void (*kern_fn)(int K, const float *ap, const void *bp, float *c, int ldc,
                        const float *bias, int epi);

#define KGEN(n)                                                                                    \
    static void kgen_##n(int K, const float *ap, const void *bp, float *c, int ldc,                \
                         const float *bias, int epi) {                                             \
        kgen(n, K, ap, (const float *)bp, c, ldc, bias, epi);                                      \
    }
// clang-format off
KGEN(1)
KGEN(2)
KGEN(3)
KGEN(4)
// clang-format on
static const kern_fn KGEN_T[] = {NULL, kgen_1, kgen_2, kgen_3, kgen_4};

#if CG_EMB_X86
/* ---- AVX2 + FMA: 16 columns = 2 ymm, up to 6 rows (12 accumulators) ---- */

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Loads columns [0, 8) and [8, 16) of step k of a panel, f32 or f16. */
#define LOAD256_F32(bp, k, b0, b1)                                                                 \
    do {                                                                                           \
        const float *p_ = (const float *)(bp) + (size_t)(k)*16;                                    \
        _mm_prefetch((const char *)(p_ + 64 * 16), _MM_HINT_T0);                                   \
        b0 = _mm256_load_ps(p_);                                                                   \
        b1 = _mm256_load_ps(p_ + 8);                                                               \
    } while (0)
#define LOAD256_F16(bp, k, b0, b1)                                                                 \
    do {                                                                                           \
        const uint16_t *p_ = (const uint16_t *)(bp) + (size_t)(k)*16;                              \
        if (((k)&1) == 0)                                                                          \
            _mm_prefetch((const char *)(p_ + 128 * 16), _MM_HINT_T0);                              \
        b0 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)p_));                                 \
        b1 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(p_ + 8)));                           \
    } while (0)

/* Accumulators are named variables, not arrays: GCC keeps arrays of
 * vectors in memory inside the loop. Rows past MR are dead code. */
#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define ROWS12(X) ROWS6(X) X(6) X(7) X(8) X(9) X(10) X(11)

#define A256_DECL(r) __m256 c0_##r = _mm256_setzero_ps(), c1_##r = _mm256_setzero_ps();
#define A256_STEP(r)                                                                               \
    if (MR > r) {                                                                                  \
        __m256 av = _mm256_broadcast_ss(a + r);                                                    \
        c0_##r = _mm256_fmadd_ps(av, b0, c0_##r);                                                  \
        c1_##r = _mm256_fmadd_ps(av, b1, c1_##r);                                                  \
    }
#define A256_STORE(r)                                                                              \
    if (MR > r) {                                                                                  \
        float *cr = c + (size_t)r * ldc;                                                           \
        __m256 v0 = _mm256_add_ps(c0_##r, bb0), v1 = _mm256_add_ps(c1_##r, bb1);                   \
        if (epi == CG_EMB_EPI_BIAS_RELU) {                                                         \
            v0 = _mm256_max_ps(v0, zero);                                                          \
            v1 = _mm256_max_ps(v1, zero);                                                          \
        } else if (epi == CG_EMB_EPI_BIAS_ADD) {                                                   \
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));                                           \
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));                                       \
        }                                                                                          \
        _mm256_storeu_ps(cr, v0);                                                                  \
        _mm256_storeu_ps(cr + 8, v1);                                                              \
    }

#define K256_BODY(LOAD)                                                                            \
    ROWS6(A256_DECL)                                                                               \
    for (int k = 0; k < K; k++) {                                                                  \
        __m256 b0, b1;                                                                             \
        LOAD(bp, k, b0, b1);                                                                       \
        const float *a = ap + (size_t)k * MR;                                                      \
        ROWS6(A256_STEP)                                                                           \
    }                                                                                              \
    __m256 bb0 = _mm256_loadu_ps(bias), bb1 = _mm256_loadu_ps(bias + 8);                           \
    __m256 zero = _mm256_setzero_ps();                                                             \
    ROWS6(A256_STORE)

static inline __attribute__((always_inline)) T_AVX2 void k256(const int MR, int K, const float *ap,
                                                              const void *bp, float *c, int ldc,
                                                              const float *bias, int epi) {
    K256_BODY(LOAD256_F32);
}

static inline __attribute__((always_inline)) T_AVX2 void k256h(const int MR, int K, const float *ap,
                                                               const void *bp, float *c, int ldc,
                                                               const float *bias, int epi) {
    K256_BODY(LOAD256_F16);
}

#define K256(n)                                                                                    \
    static T_AVX2 void k256_##n(int K, const float *ap, const void *bp, float *c, int ldc,         \
                                const float *bias, int epi) {                                      \
        k256(n, K, ap, bp, c, ldc, bias, epi);                                                     \
    }                                                                                              \
    static T_AVX2 void k256h_##n(int K, const float *ap, const void *bp, float *c, int ldc,        \
                                 const float *bias, int epi) {                                     \
        k256h(n, K, ap, bp, c, ldc, bias, epi);                                                    \
    }
// clang-format off
K256(2)
K256(3)
K256(4)
K256(5)
K256(6)
// clang-format on
/* One row (the pooled vector): four independent accumulator pairs over k,
 * so the loop waits on memory, not on the FMA latency chain. K % 4 == 0. */
#define K256_ROW1(LOAD)                                                                            \
    __m256 s0[4], s1[4];                                                                           \
    for (int u = 0; u < 4; u++)                                                                    \
        s0[u] = s1[u] = _mm256_setzero_ps();                                                       \
    for (int k = 0; k < K; k += 4)                                                                 \
        for (int u = 0; u < 4; u++) {                                                              \
            __m256 b0, b1, av = _mm256_broadcast_ss(ap + k + u);                                   \
            LOAD(bp, k + u, b0, b1);                                                               \
            s0[u] = _mm256_fmadd_ps(av, b0, s0[u]);                                                \
            s1[u] = _mm256_fmadd_ps(av, b1, s1[u]);                                                \
        }                                                                                          \
    __m256 c0_0 = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), _mm256_add_ps(s0[2], s0[3]));         \
    __m256 c1_0 = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), _mm256_add_ps(s1[2], s1[3]));         \
    __m256 bb0 = _mm256_loadu_ps(bias), bb1 = _mm256_loadu_ps(bias + 8);                           \
    __m256 zero = _mm256_setzero_ps();                                                             \
    const int MR = 1;                                                                              \
    A256_STORE(0)

static T_AVX2 void k256_r1(int K, const float *ap, const void *bp, float *c, int ldc,
                           const float *bias, int epi) {
    K256_ROW1(LOAD256_F32);
}

static T_AVX2 void k256h_r1(int K, const float *ap, const void *bp, float *c, int ldc,
                            const float *bias, int epi) {
    K256_ROW1(LOAD256_F16);
}

static const kern_fn K256_T[] = {NULL, k256_r1, k256_2, k256_3, k256_4, k256_5, k256_6};
static const kern_fn K256H_T[] = {NULL, k256h_r1, k256h_2, k256h_3, k256h_4, k256h_5, k256h_6};

/* ---- AVX-512: 32 columns = 2 zmm, up to 12 rows (24 accumulators) ---- */

#define T_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* The panel streams from L3 or memory: prefetch 4 KiB (f32) or 2 KiB
 * (f16) ahead, one cache line per step. */
#define LOAD512_F32(bp, k, b0, b1)                                                                 \
    do {                                                                                           \
        const float *p_ = (const float *)(bp) + (size_t)(k)*32;                                    \
        _mm_prefetch((const char *)(p_ + 32 * 32), _MM_HINT_T0);                                   \
        _mm_prefetch((const char *)(p_ + 32 * 32 + 16), _MM_HINT_T0);                              \
        b0 = _mm512_load_ps(p_);                                                                   \
        b1 = _mm512_load_ps(p_ + 16);                                                              \
    } while (0)
#define LOAD512_F16(bp, k, b0, b1)                                                                 \
    do {                                                                                           \
        const uint16_t *p_ = (const uint16_t *)(bp) + (size_t)(k)*32;                              \
        _mm_prefetch((const char *)(p_ + 64 * 32), _MM_HINT_T0);                                   \
        b0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p_));                              \
        b1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(p_ + 16)));                       \
    } while (0)

#define A512_DECL(r) __m512 c0_##r = _mm512_setzero_ps(), c1_##r = _mm512_setzero_ps();
#define A512_STEP(r)                                                                               \
    if (MR > r) {                                                                                  \
        __m512 av = _mm512_set1_ps(a[r]);                                                          \
        c0_##r = _mm512_fmadd_ps(av, b0, c0_##r);                                                  \
        c1_##r = _mm512_fmadd_ps(av, b1, c1_##r);                                                  \
    }
#define A512_STORE(r)                                                                              \
    if (MR > r) {                                                                                  \
        float *cr = c + (size_t)r * ldc;                                                           \
        __m512 v0 = _mm512_add_ps(c0_##r, bb0), v1 = _mm512_add_ps(c1_##r, bb1);                   \
        if (epi == CG_EMB_EPI_BIAS_RELU) {                                                         \
            v0 = _mm512_max_ps(v0, zero);                                                          \
            v1 = _mm512_max_ps(v1, zero);                                                          \
        } else if (epi == CG_EMB_EPI_BIAS_ADD) {                                                   \
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr));                                           \
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));                                      \
        }                                                                                          \
        _mm512_storeu_ps(cr, v0);                                                                  \
        _mm512_storeu_ps(cr + 16, v1);                                                             \
    }

#define K512_BODY(LOAD)                                                                            \
    ROWS12(A512_DECL)                                                                              \
    for (int k = 0; k < K; k++) {                                                                  \
        __m512 b0, b1;                                                                             \
        LOAD(bp, k, b0, b1);                                                                       \
        const float *a = ap + (size_t)k * MR;                                                      \
        ROWS12(A512_STEP)                                                                          \
    }                                                                                              \
    __m512 bb0 = _mm512_loadu_ps(bias), bb1 = _mm512_loadu_ps(bias + 16);                          \
    __m512 zero = _mm512_setzero_ps();                                                             \
    ROWS12(A512_STORE)

static inline __attribute__((always_inline)) T_AVX512 void k512(const int MR, int K,
                                                                const float *ap, const void *bp,
                                                                float *c, int ldc,
                                                                const float *bias, int epi) {
    K512_BODY(LOAD512_F32);
}

static inline __attribute__((always_inline)) T_AVX512 void k512h(const int MR, int K,
                                                                 const float *ap, const void *bp,
                                                                 float *c, int ldc,
                                                                 const float *bias, int epi) {
    K512_BODY(LOAD512_F16);
}

#define K512(n)                                                                                    \
    static T_AVX512 void k512_##n(int K, const float *ap, const void *bp, float *c, int ldc,       \
                                  const float *bias, int epi) {                                    \
        k512(n, K, ap, bp, c, ldc, bias, epi);                                                     \
    }                                                                                              \
    static T_AVX512 void k512h_##n(int K, const float *ap, const void *bp, float *c, int ldc,      \
                                   const float *bias, int epi) {                                   \
        k512h(n, K, ap, bp, c, ldc, bias, epi);                                                    \
    }
// clang-format off
K512(2)
K512(3)
K512(4)
K512(5)
K512(6)
K512(7)
K512(8)
K512(9)
K512(10)
K512(11)
K512(12)
// clang-format on
#define K512_ROW1(LOAD)                                                                            \
    __m512 s0[4], s1[4];                                                                           \
    for (int u = 0; u < 4; u++)                                                                    \
        s0[u] = s1[u] = _mm512_setzero_ps();                                                       \
    for (int k = 0; k < K; k += 4)                                                                 \
        for (int u = 0; u < 4; u++) {                                                              \
            __m512 b0, b1, av = _mm512_set1_ps(ap[k + u]);                                         \
            LOAD(bp, k + u, b0, b1);                                                               \
            s0[u] = _mm512_fmadd_ps(av, b0, s0[u]);                                                \
            s1[u] = _mm512_fmadd_ps(av, b1, s1[u]);                                                \
        }                                                                                          \
    __m512 c0_0 = _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), _mm512_add_ps(s0[2], s0[3]));         \
    __m512 c1_0 = _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), _mm512_add_ps(s1[2], s1[3]));         \
    __m512 bb0 = _mm512_loadu_ps(bias), bb1 = _mm512_loadu_ps(bias + 16);                          \
    __m512 zero = _mm512_setzero_ps();                                                             \
    const int MR = 1;                                                                              \
    A512_STORE(0)

static T_AVX512 void k512_r1(int K, const float *ap, const void *bp, float *c, int ldc,
                             const float *bias, int epi) {
    K512_ROW1(LOAD512_F32);
}

static T_AVX512 void k512h_r1(int K, const float *ap, const void *bp, float *c, int ldc,
                              const float *bias, int epi) {
    K512_ROW1(LOAD512_F16);
}

static const kern_fn K512_T[] = {NULL,   k512_r1, k512_2, k512_3,  k512_4,  k512_5, k512_6,
                                 k512_7, k512_8,  k512_9, k512_10, k512_11, k512_12};
static const kern_fn K512H_T[] = {NULL,    k512h_r1, k512h_2, k512h_3,  k512h_4,  k512h_5, k512h_6,
                                  k512h_7, k512h_8,  k512h_9, k512h_10, k512h_11, k512h_12};
#endif

#define MAX_BLOCKS 32

void cg_emb_gemm(cg_embed_isa isa, const cg_emb_mat *m, const float *A, int lda, int M, float *C,
                 int ldc, int epi, float *ap) {
    if (M <= 0)
        return;
    const int nr = cg_emb_isa_nr(isa), mrx = mr_max(isa), K = m->K;
    if (M > MAX_BLOCKS * mrx) {
        int head = MAX_BLOCKS * mrx;
        cg_emb_gemm(isa, m, A, lda, head, C, ldc, epi, ap);
        cg_emb_gemm(isa, m, A + (size_t)head * lda, lda, M - head, C + (size_t)head * ldc, ldc, epi,
                    ap + (size_t)head * K);
        return;
    }
    const kern_fn *tab = KGEN_T;
#if CG_EMB_X86
    if (isa == CG_EMBED_ISA_AVX512)
        tab = m->f16 ? K512H_T : K512_T;
    else if (isa == CG_EMBED_ISA_AVX2)
        tab = m->f16 ? K256H_T : K256_T;
#endif
    /* Row blocks of near-equal size (13 rows -> 7 + 6, not 12 + 1). */
    int nb = (M + mrx - 1) / mrx, base = M / nb, extra = M % nb;
    int m0s[MAX_BLOCKS], mrs[MAX_BLOCKS];
    for (int b = 0, row = 0; b < nb; b++) {
        mrs[b] = base + (b < extra ? 1 : 0);
        m0s[b] = row;
        pack_a(A, lda, row, mrs[b], K, ap + (size_t)row * K);
        row += mrs[b];
    }
    for (int p = 0; p < m->N / nr; p++) {
        const void *bp = m->f16 ? (const void *)((const uint16_t *)m->w + (size_t)p * K * nr)
                                : (const void *)((const float *)m->w + (size_t)p * K * nr);
        for (int b = 0; b < nb; b++)
            tab[mrs[b]](K, ap + (size_t)m0s[b] * K, bp, C + (size_t)m0s[b] * ldc + (size_t)p * nr,
                        ldc, m->b + (size_t)p * nr, epi);
    }
}
