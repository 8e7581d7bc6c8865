/* test_gemm: the embedder's matrix kernels against a double-precision
 * product on random matrices.
 *
 * Owns: every kernel set this CPU runs (portable, AVX2, AVX-512, AMX) and
 * weight format (float32, half, bfloat16), over the shapes of the model and
 * row counts around the kernels' block edges (1 to 128 rows), with each
 * epilogue (bias, bias + ReLU, bias + old C). Each element must be within
 * tol * sum_k |a_k w_k| + 1e-5 of the exact value, where tol covers rounding
 * the weights (and, for bfloat16, the activations) once: float32 1e-5, half
 * 2^-10, bfloat16 2^-7 (two roundings of at most 2^-9 each, plus float32
 * accumulation). The relative RMS error must also stay under a bound about
 * twice what each format gives, and the check is shown to reject a result
 * off by a little more than the bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_internal.h"

typedef struct {
    cg_embed_isa isa;
    int fmt;
    double tol, rms; /* per-element bound factor, relative RMS bound */
    const char *name;
} kernel_case;

static const kernel_case CASES[] = {
    {CG_EMBED_ISA_GENERIC, CG_EMB_W_F32, 1e-5, 2e-6, "generic f32"},
    {CG_EMBED_ISA_AVX2, CG_EMB_W_F32, 1e-5, 2e-6, "avx2 f32"},
    {CG_EMBED_ISA_AVX2, CG_EMB_W_F16, 1.0 / 1024, 6e-4, "avx2 f16"},
    {CG_EMBED_ISA_AVX512, CG_EMB_W_F32, 1e-5, 2e-6, "avx512 f32"},
    {CG_EMBED_ISA_AVX512, CG_EMB_W_F16, 1.0 / 1024, 6e-4, "avx512 f16"},
    {CG_EMBED_ISA_AMX, CG_EMB_W_BF16, 1.0 / 128, 4e-3, "amx bf16"},
};

/* xorshift64*, uniform in [-1, 1) */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float urand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 0x2545f4914f6cdd1dull;
    return (float)((double)(x >> 11) / 4503599627370496.0 - 1.0);
}

typedef struct {
    double worst;   /* max |err| / (tol * sum|a w| + 1e-5): must be <= 1 */
    double rel_rms; /* sqrt(sum err^2 / sum exact^2) */
} errs;

/* exact[i][j] = the product + bias (+ epilogue, + old C) in double, and
 * mag[i][j] = sum_k |a_ik w_kj|. */
static void exact_product(const float *A, const float *W, const float *bias, const float *c0, int M,
                          int K, int N, int epi, double *exact, double *mag) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)A[(size_t)i * K + k] * W[(size_t)k * N + j];
                s += p;
                sa += fabs(p);
            }
            s += bias[j];
            if (epi == CG_EMB_EPI_BIAS_RELU)
                s = s > 0 ? s : 0;
            else if (epi == CG_EMB_EPI_BIAS_ADD)
                s += c0[(size_t)i * N + j];
            exact[(size_t)i * N + j] = s;
            mag[(size_t)i * N + j] = sa;
        }
}

static errs check(const double *exact, const double *mag, const float *got, size_t n, double tol) {
    errs e = {0, 0};
    double se = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - exact[i]), r = err / (tol * mag[i] + 1e-5);
        e.worst = r > e.worst ? r : e.worst;
        se += err * err;
        sr += exact[i] * exact[i];
    }
    e.rel_rms = sqrt(se / (sr > 0 ? sr : 1));
    return e;
}

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    assert_non_null(p);
    return p;
}

/* One random problem (M x K by K x N, epilogue epi) through every kernel
 * set this CPU runs. */
static void run_problem(int M, int K, int N, int epi) {
    const size_t kn = (size_t)K * N, mk = (size_t)M * K, mn = (size_t)M * N, f = sizeof(float);
    float *W = xalloc(kn * f), *Wp = xalloc(kn * f), *tmp = xalloc(kn * f), *A = xalloc(mk * f);
    float *C = xalloc(mn * f), *C0 = xalloc(mn * f), *bias = xalloc((size_t)N * f);
    float *ap = xalloc(cg_emb_gemm_scratch(M, K) * f);
    double *exact = xalloc(mn * sizeof(double)), *mag = xalloc(mn * sizeof(double));
    for (size_t i = 0; i < kn; i++)
        W[i] = 0.1f * urand();
    for (size_t i = 0; i < mk; i++)
        A[i] = urand();
    for (int j = 0; j < N; j++)
        bias[j] = 0.5f * urand();
    for (size_t i = 0; i < mn; i++)
        C0[i] = urand();
    exact_product(A, W, bias, C0, M, K, N, epi, exact, mag);
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const kernel_case *kc = &CASES[c];
        if (!cg_emb_isa_supported(kc->isa))
            continue;
        memcpy(Wp, W, kn * f);
        memcpy(C, C0, mn * f);
        cg_emb_pack(Wp, K, N, cg_emb_isa_nr(kc->isa), kc->fmt, tmp);
        cg_emb_mat m = {.K = K, .N = N, .w = Wp, .b = bias, .fmt = kc->fmt};
        cg_emb_gemm(kc->isa, &m, A, K, M, C, N, epi, ap);
        errs e = check(exact, mag, C, mn, kc->tol);
        if (e.worst > 1.0 || e.rel_rms > kc->rms || getenv("CG_TEST_VERBOSE"))
            fprintf(stderr, "%s M=%d K=%d N=%d epi=%d: worst %.3f of the bound, rel rms %.2e\n",
                    kc->name, M, K, N, epi, e.worst, e.rel_rms);
        assert_true(e.worst <= 1.0);
        assert_true(e.rel_rms <= kc->rms);
        /* The check can fail: one element moved by twice its bound is caught. */
        if (M == 3) {
            const size_t i = (size_t)2 * N + 5;
            C[i] += (float)(2.0 * (kc->tol * mag[i] + 1e-5));
            assert_true(check(exact, mag, C, mn, kc->tol).worst > 1.0);
        }
    }
    free(W);
    free(Wp);
    free(tmp);
    free(A);
    free(C);
    free(C0);
    free(bias);
    free(ap);
    free(exact);
    free(mag);
}

static void test_kernels_vs_exact(void **state) {
    (void)state;
    static const int shapes[][2] = {{256, 768}, {512, 1536}, {1536, 512}};
    /* one and two row tiles, partial tiles, the AVX kernels' block edges */
    static const int rows[] = {1, 3, 11, 16, 17, 32, 33, 50, 128};
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++)
        if (!cg_emb_isa_supported(CASES[c].isa))
            fprintf(stderr, "skipping %s: this CPU does not run it\n", CASES[c].name);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            int M = rows[r], K = shapes[s][0], N = shapes[s][1];
            if (M > 17 && s > 0) /* many rows on the small shape only: keeps it fast */
                continue;
            /* every epilogue on the small shape, one per row count otherwise */
            for (int epi = CG_EMB_EPI_BIAS; epi <= CG_EMB_EPI_BIAS_ADD; epi++)
                if (s == 0 || epi == (int)(r % 3))
                    run_problem(M, K, N, epi);
        }
}

/* bfloat16 rounding is to nearest even: a kernel that truncated instead
 * would drift (all errors one sign) and fail the RMS bound above; this pins
 * the sign balance directly on a product with a known exact value. */
static void test_bf16_rounding_unbiased(void **state) {
    (void)state;
    if (!cg_emb_isa_supported(CG_EMBED_ISA_AMX)) {
        skip();
        return;
    }
    enum { K = 512, N = 64, M = 16 };
    const size_t f = sizeof(float);
    float *W = xalloc((size_t)K * N * f), *tmp = xalloc((size_t)K * N * f);
    float *A = xalloc((size_t)M * K * f), *C = xalloc((size_t)M * N * f), *bias = xalloc(N * f);
    float *ap = xalloc(cg_emb_gemm_scratch(M, K) * f);
    /* all-positive inputs: rounding errors cannot cancel by sign */
    for (size_t i = 0; i < (size_t)K * N; i++)
        W[i] = 1.0f + 0.5f * (urand() + 1.0f);
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = 1.0f + 0.5f * (urand() + 1.0f);
    memset(bias, 0, N * sizeof *bias);
    float *W0 = xalloc((size_t)K * N * f);
    memcpy(W0, W, (size_t)K * N * sizeof *W);
    cg_emb_pack(W, K, N, 32, CG_EMB_W_BF16, tmp);
    cg_emb_mat m = {.K = K, .N = N, .w = W, .b = bias, .fmt = CG_EMB_W_BF16};
    cg_emb_gemm(CG_EMBED_ISA_AMX, &m, A, K, M, C, N, CG_EMB_EPI_BIAS, ap);
    double bias_sum = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[(size_t)i * K + k] * W0[(size_t)k * N + j];
            bias_sum += (C[(size_t)i * N + j] - s) / s;
        }
    /* truncating both operands (values in [1, 2], bfloat16 ulp 2^-7) would
     * give about -0.5%; nearest-even averages out to well under 2^-11 */
    double mean = bias_sum / (M * N);
    if (fabs(mean) >= 1.0 / 2048)
        fprintf(stderr, "mean relative error %.2e\n", mean);
    assert_true(fabs(mean) < 1.0 / 2048);
    free(W);
    free(W0);
    free(tmp);
    free(A);
    free(C);
    free(bias);
    free(ap);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_vs_exact),
        cmocka_unit_test(test_bf16_rounding_unbiased),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
