/* simd: the vector module's inner loops, chosen at run time for the CPU.
 *
 * Owns: the dot-product kernels (float32 x float32 for tools, float32 query
 * x stored float16 vector for the index; AVX-512F, AVX2+FMA+F16C, or
 * portable C), float32 <-> float16 conversion (IEEE binary16, round to
 * nearest even), L2 normalisation, and CRC-32C for the index file (SSE4.2
 * crc32 instruction or a table). The build uses no -march flag, so the wide
 * kernels are compiled with target attributes and picked once with
 * __builtin_cpu_supports.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "vector/vector_internal.h"

static float dot_c(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* ---- float16 ---- */

static float h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            e = 127 - 15 + 1;
            while (!(m & 0x400)) {
                m <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 127 - 15) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t m = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) /* inf / nan */
        return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1)))
            hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fff;
    uint32_t r = sign | ((uint32_t)e << 10) | hm;
    if (rem > 0x1000 || (rem == 0x1000 && (hm & 1)))
        r++; /* may carry into the exponent: still correct rounding */
    return (uint16_t)r;
}

static float doth_c(const float *q, const uint16_t *v, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += q[i] * h2f(v[i]);
        s1 += q[i + 1] * h2f(v[i + 1]);
        s2 += q[i + 2] * h2f(v[i + 2]);
        s3 += q[i + 3] * h2f(v[i + 3]);
    }
    for (; i < n; i++)
        s0 += q[i] * h2f(v[i]);
    return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma,f16c"))) static float doth_avx2(const float *q, const uint16_t *v,
                                                                int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 8)));
        __m256 v2 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 16)));
        __m256 v3 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 24)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), v0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), v1, s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), v2, s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), v3, s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r += q[i] * h2f(v[i]);
    return r;
}

__attribute__((target("avx512f"))) static float doth_avx512(const float *q, const uint16_t *v,
                                                            int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 v0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i)));
        __m512 v1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i + 16)));
        __m512 v2 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i + 32)));
        __m512 v3 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i + 48)));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), v0, s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), v1, s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32), v2, s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48), v3, s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i))), s0);
    float r = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++)
        r += q[i] * h2f(v[i]);
    return r;
}

static void f2h_c(const float *src, uint16_t *dst, int n) {
    for (int i = 0; i < n; i++)
        dst[i] = f2h(src[i]);
}

static void h2f_c(const uint16_t *src, float *dst, int n) {
    for (int i = 0; i < n; i++)
        dst[i] = h2f(src[i]);
}

__attribute__((target("avx,f16c"))) static void f2h_f16c(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = f2h(src[i]);
}

__attribute__((target("avx,f16c"))) static void h2f_f16c(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = h2f(src[i]);
}

static void (*f2h_fn)(const float *, uint16_t *, int) = f2h_c;
static void (*h2f_fn)(const uint16_t *, float *, int) = h2f_c;

void cg_v_f32_to_f16(const float *src, uint16_t *dst, int n) {
    cg_v_kernels_init();
    f2h_fn(src, dst, n);
}

void cg_v_f16_to_f32(const uint16_t *src, float *dst, int n) {
    cg_v_kernels_init();
    h2f_fn(src, dst, n);
}

cg_v_dot_fn cg_v_dot = dot_c;
cg_v_doth_fn cg_v_doth = doth_c;
static const char *kernel_name = "portable";
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static int have_sse42;

static void kernels_pick(void) {
    __builtin_cpu_init();
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    int f16c = (c & (1u << 29)) != 0 && __builtin_cpu_supports("avx");
    if (f16c) {
        f2h_fn = f2h_f16c;
        h2f_fn = h2f_f16c;
    }
    if (__builtin_cpu_supports("avx512f")) {
        cg_v_dot = dot_avx512;
        cg_v_doth = doth_avx512;
        kernel_name = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cg_v_dot = dot_avx2;
        kernel_name = "avx2";
        if (f16c)
            cg_v_doth = doth_avx2;
        else
            kernel_name = "avx2-nof16c";
    }
    have_sse42 = __builtin_cpu_supports("sse4.2");
}

void cg_v_kernels_init(void) {
    pthread_once(&kernels_once, kernels_pick);
}

const char *cg_v_kernel_name(void) {
    cg_v_kernels_init();
    return kernel_name;
}

int cg_v_normalize(const float *src, float *dst, int dim) {
    double ss = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(src[i]))
            return CG_VE_INVAL;
        ss += (double)src[i] * (double)src[i];
    }
    if (!(ss > 1e-30) || !isfinite(ss))
        return CG_VE_INVAL;
    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < dim; i++)
        dst[i] = (float)((double)src[i] * inv);
    return CG_VE_OK;
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}

uint32_t cg_crc32c(uint32_t crc, const void *p, size_t n) {
    cg_v_kernels_init();
    uint32_t c = ~crc;
    if (have_sse42) {
        c = crc_hw(c, p, n);
    } else {
        pthread_once(&crc_once, crc_init);
        c = crc_sw(c, p, n);
    }
    return ~c;
}
