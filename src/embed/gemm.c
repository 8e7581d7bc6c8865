/* gemm: the matrix kernels of the embedder (the hot loop of cg_embed).
 *
 * Owns: CPU feature detection, the packed weight layouts (float32, IEEE
 * half, bfloat16 for AMX), and C = A W + b (+ ReLU or + C) for four kernel
 * sets chosen at run time: AMX (bfloat16 tiles, float32 accumulation, 16 x
 * 64 outputs per pass), AVX-512 (32-column panels, up to 12 rows at a
 * time), AVX2+FMA+F16C (16 columns, up to 6 rows) and portable C (16
 * columns, 4 rows, float32 only). The binary runs on any x86-64: the wide
 * kernels are compiled with target attributes and only called when the CPU
 * (and, for AMX, the OS) reports the features.
 *
 * A sentence is ~10-30 rows, so each weight matrix is read once per call
 * from L3 or memory: that stream is the cost. Hence 16-bit weights (half
 * floats converted to float32 in registers for AVX; bfloat16 for AMX, where
 * the activations are rounded to bfloat16 too and the tile unit does the
 * products 16 x 16 x 32 at a time) and a software prefetch ahead of the
 * panel being read.
 * Loop order (AVX): for each column panel (K x nr values), every row block
 * of A (packed k-major so each step broadcasts contiguous values) runs the
 * whole K with its accumulators in registers. (AMX): for each group of 64
 * columns, each 16 or 32 rows of A run the whole K in tiles 0-3.
 */
#include "embed/embed_internal.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CG_EMB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define CG_ARCH_REQ_XCOMP_PERM 0x1023
#define CG_XFEATURE_XTILEDATA 18
#endif
#else
#define CG_EMB_X86 0
#endif

int cg_emb_isa_nr(cg_embed_isa isa) {
    return isa == CG_EMBED_ISA_AVX512 || isa == CG_EMBED_ISA_AMX ? 32 : 16;
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

/* AMX-BF16 and AVX512-BF16 (CPUID leaf 7), the OS saving the tile state
 * (XCR0 bits 17-18), and, on Linux, this process's permission to use it
 * (arch_prctl ARCH_REQ_XCOMP_PERM; granted once per process, asking again
 * is harmless). */
static int has_amx_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22)))
        return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5)))
        return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17))
        return 0;
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, CG_ARCH_REQ_XCOMP_PERM, CG_XFEATURE_XTILEDATA) != 0)
        return 0;
#endif
    return 1;
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
    case CG_EMBED_ISA_AMX:
        return cg_emb_isa_supported(CG_EMBED_ISA_AVX512) && __builtin_cpu_supports("avx512bw") &&
               has_amx_bf16();
#endif
    default:
        return 0;
    }
}

int cg_emb_isa_has_f16(cg_embed_isa isa) {
    return isa == CG_EMBED_ISA_AVX2 || isa == CG_EMBED_ISA_AVX512 || isa == CG_EMBED_ISA_AMX;
}

cg_embed_isa cg_emb_isa_detect(void) {
    if (cg_emb_isa_supported(CG_EMBED_ISA_AMX))
        return CG_EMBED_ISA_AMX;
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

/* float -> bfloat16, round to nearest even (NaN stays NaN). */
static uint16_t to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void cg_emb_pack(float *w, int K, int N, int nr, int fmt, float *tmp) {
    memcpy(tmp, w, (size_t)K * N * sizeof *w);
    float *d32 = w;
    uint16_t *d16 = (uint16_t *)w;
    if (fmt == CG_EMB_W_BF16) {
        /* group of 64 columns / 32 k / tile of 16 columns / k pair / column
         * / the pair's two k: what one AMX B tile reads, 1 KiB at a time */
        for (int g = 0; g < N / CG_EMB_AMX_NG; g++)
            for (int kb = 0; kb < K; kb += 32)
                for (int t = 0; t < CG_EMB_AMX_NG / 16; t++)
                    for (int kp = kb; kp < kb + 32; kp += 2)
                        for (int j = 0; j < 16; j++) {
                            const float *src =
                                tmp + (size_t)kp * N + g * CG_EMB_AMX_NG + t * 16 + j;
                            *d16++ = to_bf16(src[0]);
                            *d16++ = to_bf16(src[N]);
                        }
        return;
    }
    for (int p = 0; p < N / nr; p++)
        for (int k = 0; k < K; k++) {
            const float *src = tmp + (size_t)k * N + (size_t)p * nr;
            if (fmt == CG_EMB_W_F16) {
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

#if CG_EMB_X86
/* ---- AMX: bfloat16 tiles, float32 accumulation ----
 * Tiles 0-3 accumulate C (16 x 16 float each), 4-5 hold A (16 rows x 32
 * k), 6-7 (and 5 when one A tile is enough) hold B (32 k x 16 columns, as
 * 16 rows of k pairs). A is rounded to bfloat16 row-major, rows padded with
 * zeros to a multiple of 16; the C tiles go through a 4 KiB buffer on the
 * stack where bias, ReLU or the residual is applied to the real rows. The weight stream (L3 to
 * the core) is the bound: each 4 KiB block of B is prefetched two blocks
 * ahead. (Splitting A into two bfloat16 planes, hi + lo, halves the
 * distance to the float32 result but cost ~30% more time: not done.) */

#define T_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16,avx2,fma,f16c")))

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

/* Rows [0, M) of A as bfloat16 (round to nearest even) into ab[Mp][K],
 * rows [M, Mp) zero. K % 32 == 0. */
static T_AMX void pack_a_bf16(const float *A, int lda, int M, int Mp, int K, uint16_t *ab) {
    for (int r = 0; r < Mp; r++) {
        uint16_t *d = ab + (size_t)r * K;
        if (r >= M) {
            memset(d, 0, (size_t)K * sizeof *d);
            continue;
        }
        const float *src = A + (size_t)r * lda;
        for (int k = 0; k < K; k += 32) {
            /* elements 0-15 from the second operand, 16-31 from the first */
            __m512bh h =
                _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
            _mm512_storeu_si512((void *)(d + k), (__m512i)h);
        }
    }
}

/* Adds bias (and ReLU or the old C) to a 16 x 16 float tile in buf and
 * writes its first `rows` rows to C at (row, col). */
static T_AMX void amx_store(const float *buf, int rows, float *C, int ldc, int row, int col,
                            const float *bias, int epi) {
    const __m512 bb = _mm512_loadu_ps(bias + col), zero = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        float *cr = C + (size_t)(row + r) * ldc + col;
        __m512 v = _mm512_add_ps(_mm512_load_ps(buf + r * 16), bb);
        if (epi == CG_EMB_EPI_BIAS_RELU)
            v = _mm512_max_ps(v, zero);
        else if (epi == CG_EMB_EPI_BIAS_ADD)
            v = _mm512_add_ps(v, _mm512_loadu_ps(cr));
        _mm512_storeu_ps(cr, v);
    }
}

#define AMX_PF 2 /* k blocks of prefetch distance */
/* Prefetches `bytes` of the weight stream from p, one line at a time. */
static inline __attribute__((always_inline)) T_AMX void amx_prefetch(const uint16_t *p, int bytes) {
    const char *c = (const char *)p;
    for (int o = 0; o < bytes; o += 64)
        _mm_prefetch(c + o, _MM_HINT_T0);
}

/* bf16 values of one k block (32 k x 64 columns) and of a column group */
#define AMX_KB_ELEMS (32 * CG_EMB_AMX_NG)
#define AMX_GROUP_ELEMS(K) ((size_t)(K)*CG_EMB_AMX_NG)

/* Two row tiles of A (ab, row stride sa bytes) x half 0 or 1 (32 columns)
 * of the column group wg, into buf. */
static T_AMX void amx_rows32(const uint16_t *ab, long sa, int K, const uint16_t *wg, int half,
                             float (*buf)[256]) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < K; k += 32) {
        const uint16_t *b = wg + (size_t)k * CG_EMB_AMX_NG + half * 1024;
        amx_prefetch(b + AMX_PF * AMX_KB_ELEMS, 2048);
        _tile_loadd(4, ab + k, sa);
        _tile_loadd(5, ab + 16 * (size_t)K + k, sa);
        _tile_loadd(6, b, 64);
        _tile_loadd(7, b + 512, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, buf[0], 64);
    _tile_stored(1, buf[1], 64);
    _tile_stored(2, buf[2], 64);
    _tile_stored(3, buf[3], 64);
}

/* One row tile of A x the whole column group wg (64 columns), into buf. */
static T_AMX void amx_rows16(const uint16_t *ab, long sa, int K, const uint16_t *wg,
                             float (*buf)[256]) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < K; k += 32) {
        const uint16_t *b = wg + (size_t)k * CG_EMB_AMX_NG;
        amx_prefetch(b + AMX_PF * AMX_KB_ELEMS, 4096);
        _tile_loadd(4, ab + k, sa);
        _tile_loadd(5, b, 64);
        _tile_loadd(6, b + 512, 64);
        _tile_loadd(7, b + 1024, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(5, b + 1536, 64);
        _tile_dpbf16ps(2, 4, 7);
        _tile_dpbf16ps(3, 4, 5);
    }
    _tile_stored(0, buf[0], 64);
    _tile_stored(1, buf[1], 64);
    _tile_stored(2, buf[2], 64);
    _tile_stored(3, buf[3], 64);
}

static T_AMX void gemm_amx(const cg_emb_mat *m, const float *A, int lda, int M, float *C, int ldc,
                           int epi, float *ap) {
    const int K = m->K, N = m->N, Mp = (M + 15) / 16 * 16;
    const long sa = (long)K * 2; /* A row stride in bytes */
    uint16_t *ab = (uint16_t *)ap;
    float buf[4][256] __attribute__((aligned(64)));
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    pack_a_bf16(A, lda, M, Mp, K, ab);
    _tile_loadconfig(&cfg);
    for (int g = 0; g < N / CG_EMB_AMX_NG; g++) {
        const uint16_t *wg = (const uint16_t *)m->w + (size_t)g * AMX_GROUP_ELEMS(K);
        const int col = g * CG_EMB_AMX_NG;
        int r0 = 0;
        for (; Mp - r0 >= 32; r0 += 32) /* two row tiles, half the group at a time */
            for (int half = 0; half < 2; half++) {
                amx_rows32(ab + (size_t)r0 * K, sa, K, wg, half, buf);
                const int c0 = col + half * 32, rows1 = M - r0 - 16 < 16 ? M - r0 - 16 : 16;
                amx_store(buf[0], 16, C, ldc, r0, c0, m->b, epi);
                amx_store(buf[1], 16, C, ldc, r0, c0 + 16, m->b, epi);
                amx_store(buf[2], rows1, C, ldc, r0 + 16, c0, m->b, epi);
                amx_store(buf[3], rows1, C, ldc, r0 + 16, c0 + 16, m->b, epi);
            }
        if (r0 < Mp) { /* one row tile left */
            amx_rows16(ab + (size_t)r0 * K, sa, K, wg, buf);
            for (int t = 0; t < 4; t++)
                amx_store(buf[t], M - r0, C, ldc, r0, col + t * 16, m->b, epi);
        }
    }
    _tile_release();
}
#endif

size_t cg_emb_gemm_scratch(int M, int K) {
    size_t a = (size_t)M * K, b = (size_t)(M + 15) / 16 * 16 * K / 2; /* AMX: bf16 rows */
    return a > b ? a : b;
}

#define MAX_BLOCKS 32

void cg_emb_gemm(cg_embed_isa isa, const cg_emb_mat *m, const float *A, int lda, int M, float *C,
                 int ldc, int epi, float *ap) {
    if (M <= 0)
        return;
#if CG_EMB_X86
    if (m->fmt == CG_EMB_W_BF16) {
        gemm_amx(m, A, lda, M, C, ldc, epi, ap);
        return;
    }
#endif
    if (isa == CG_EMBED_ISA_AMX) /* its float32 and half matrices */
        isa = CG_EMBED_ISA_AVX512;
    const int nr = cg_emb_isa_nr(isa), mrx = mr_max(isa), K = m->K;
    if (M > MAX_BLOCKS * mrx) {
        int head = MAX_BLOCKS * mrx;
        cg_emb_gemm(isa, m, A, lda, head, C, ldc, epi, ap);
        cg_emb_gemm(isa, m, A + (size_t)head * lda, lda, M - head, C + (size_t)head * ldc, ldc, epi,
                    ap + (size_t)head * K);
        return;
    }
    const int f16 = m->fmt == CG_EMB_W_F16;
    const kern_fn *tab = KGEN_T;
#if CG_EMB_X86
    if (isa == CG_EMBED_ISA_AVX512)
        tab = f16 ? K512H_T : K512_T;
    else if (isa == CG_EMBED_ISA_AVX2)
        tab = f16 ? K256H_T : K256_T;
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
        const void *bp = f16 ? (const void *)((const uint16_t *)m->w + (size_t)p * K * nr)
                             : (const void *)((const float *)m->w + (size_t)p * K * nr);
        for (int b = 0; b < nb; b++)
            tab[mrs[b]](K, ap + (size_t)m0s[b] * K, bp, C + (size_t)m0s[b] * ldc + (size_t)p * nr,
                        ldc, m->b + (size_t)p * nr, epi);
    }
}
