/*
 * test_bf16.c — the bf16 GEMM (src/kernels/cpu/matmul_bf16.c) against
 * references, for every transpose combination and odd sizes (edges of the
 * MR x NR tile, odd K, K and N past one cache block, padded leading
 * dimensions), alpha/beta, beta = 0 ignoring NaN in C, calls from inside an
 * OpenMP parallel region, and the bf16 rounding itself.
 *
 * Two references per case:
 *   - tg_gemm_bf16_ref (same bf16-rounded inputs, sums in double): only the
 *     fp32 summation order differs, so |diff| <= 1e-5 * sum|a*b| (K <= 3000
 *     terms of fp32 rounding 6e-8 each, with margin).
 *   - a naive fp32 GEMM of the unrounded inputs: bf16 inputs carry 2^-9
 *     relative error each, so |diff| <= 1e-2 * sum|a*b| (the brief's bound),
 *     and the test also checks the error is not zero (that bf16 is really used)
 *     when the kernel is the native one.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/cpu/matmul_bf16.h"
#include "test_util.h"

static float *rand_matrix(tg_rng *r, size_t n) {
    float *m = malloc(n * sizeof *m);
    for (size_t i = 0; i < n; i++) m[i] = tg_rng_normal(r);
    return m;
}

/* |alpha| * sum_k |op(A)_ik op(B)_kj| + |beta C_ij|: the scale of each output's error. */
static void magnitude(bool tA, bool tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, const float *C, int ldc, double *mag) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += fabs((double)a * b);
            }
            mag[(size_t)i * N + j] = fabs(alpha) * s + (beta == 0 ? 0 : fabs(beta * C[(size_t)i * ldc + j]));
        }
}

static void gemm_fp32_naive(bool tA, bool tB, int M, int N, int K, float alpha, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0 ? 0.0 : (double)beta * *c));
        }
}

/* Max of |got-ref|/mag over the M x N block; prints the first offender over tol. */
static double worst(const char *what, const float *got, const float *ref, const double *mag, int M, int N, int ldc,
                    double tol) {
    double w = 0;
    int printed = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = fabs((double)got[(size_t)i * ldc + j] - ref[(size_t)i * ldc + j]);
            double e = d / (mag[(size_t)i * N + j] + 1e-30);
            if (!(e <= tol) && printed++ < 3)
                fprintf(stderr, "  %s C[%d][%d]: got %.9g expected %.9g (scale %.3g)\n", what, i, j,
                        got[(size_t)i * ldc + j], ref[(size_t)i * ldc + j], mag[(size_t)i * N + j]);
            if (!(e <= w)) w = e; /* also catches NaN */
        }
    return w;
}

static void run_case(tg_rng *r, bool tA, bool tB, int M, int N, int K, float alpha, float beta, int pad) {
    int rowsA = tA ? K : M, colsA = tA ? M : K;
    int rowsB = tB ? N : K, colsB = tB ? K : N;
    int lda = colsA + pad, ldb = colsB + pad, ldc = N + pad;
    float *A = rand_matrix(r, (size_t)rowsA * lda);
    float *B = rand_matrix(r, (size_t)rowsB * ldb);
    float *C0 = rand_matrix(r, (size_t)M * ldc);
    if (beta == 0)
        for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = NAN; /* must be ignored, as BLAS does */
    float *C = malloc((size_t)M * ldc * sizeof *C), *Cref = malloc((size_t)M * ldc * sizeof *C),
          *C32 = malloc((size_t)M * ldc * sizeof *C);
    double *mag = malloc((size_t)M * N * sizeof *mag);
    memcpy(C, C0, (size_t)M * ldc * sizeof *C);
    memcpy(Cref, C0, (size_t)M * ldc * sizeof *C);
    memcpy(C32, C0, (size_t)M * ldc * sizeof *C);
    magnitude(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc, mag);

    tg_gemm_bf16(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    tg_gemm_bf16_ref(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, Cref, ldc);
    gemm_fp32_naive(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C32, ldc);

    char what[128];
    snprintf(what, sizeof what, "tA=%d tB=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d", tA, tB, M, N, K, alpha, beta,
             pad);
    double e_ref = worst(what, C, Cref, mag, M, N, ldc, 1e-5);
    double e_32 = worst(what, C, C32, mag, M, N, ldc, 1e-2);
    tg_test_checks += 2;
    if (!(e_ref <= 1e-5)) {
        tg_test_failures++;
        fprintf(stderr, "FAIL %s: vs bf16 reference max scaled error %.3g > 1e-5\n", what, e_ref);
    }
    if (!(e_32 <= 1e-2)) {
        tg_test_failures++;
        fprintf(stderr, "FAIL %s: vs fp32 GEMM max scaled error %.3g > 1e-2\n", what, e_32);
    }
    /* Padding columns of C (j >= N) are never written. */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float)) != 0) {
                tg_test_failures++;
                fprintf(stderr, "FAIL %s: wrote outside C at [%d][%d]\n", what, i, j);
                i = M;
                break;
            }
    free(A), free(B), free(C0), free(C), free(Cref), free(C32), free(mag);
}

int main(void) {
    tg_rng r;
    tg_rng_seed(&r, 1234);

    /* Rounding: nearest, ties to even, exact values kept. */
    CHECK(tg_bf16_round(1.0f) == 1.0f);
    CHECK(tg_bf16_round(1.0f + 0x1p-8f) == 1.0f);                   /* tie, even is 1.0 */
    CHECK(tg_bf16_round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);     /* tie, even is up */
    CHECK(tg_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f); /* above the tie */
    CHECK(tg_bf16_round(-2.5f) == -2.5f);
    CHECK(isnan(tg_bf16_round(NAN)));
    CHECK(isinf(tg_bf16_round(INFINITY)));

    /* Every transpose combination on sizes that hit every edge: M not a
     * multiple of 8, N not of 48 or 16, odd K, K past one 256 block, and
     * shapes of the model (T*B rows, C and 4C columns). */
    static const int sizes[][3] = {
        {1, 1, 1}, {3, 5, 7}, {8, 48, 32}, {17, 50, 33}, {9, 97, 257}, {64, 64, 64}, {100, 130, 300},
        {37, 16, 512}, {200, 47, 64}, {250, 300, 129},
    };
    for (int t = 0; t < 4; t++) {
        bool tA = t & 1, tB = t >> 1;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run_case(&r, tA, tB, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, s % 3);
        run_case(&r, tA, tB, 65, 70, 90, 0.5f, 1.0f, 5);
        run_case(&r, tA, tB, 40, 33, 270, -1.25f, 0.5f, 0);
    }
    /* N past one 3072-column block and K past several 256 blocks. */
    run_case(&r, false, true, 20, 3100, 40, 1.0f, 1.0f, 0);
    run_case(&r, true, false, 24, 60, 1030, 1.0f, 1.0f, 3);
    /* A^T runs K in blocks of up to 768 over 1536-column blocks: past both. */
    run_case(&r, true, false, 20, 1600, 1700, 1.0f, 0.5f, 1);
    /* K = 0: C = beta*C. */
    {
        float c[4] = {1, 2, 3, 4}, a = 0, b = 0;
        tg_gemm_bf16(false, false, 2, 2, 0, 1.0f, &a, 1, &b, 2, 0.5f, c, 2);
        CHECK(c[0] == 0.5f && c[3] == 2.0f);
    }
    /* A GEMM per OpenMP thread from inside a parallel region (as per-head
     * attention would call it): each result must equal the serial one. */
    {
        enum { TH = 4, M = 33, N = 70, K = 100 };
        float *A = rand_matrix(&r, (size_t)TH * M * K), *B = rand_matrix(&r, (size_t)TH * K * N);
        float *C = calloc((size_t)TH * M * N, sizeof *C), *C1 = calloc((size_t)TH * M * N, sizeof *C);
        for (int t = 0; t < TH; t++)
            tg_gemm_bf16(false, false, M, N, K, 1.0f, A + (size_t)t * M * K, K, B + (size_t)t * K * N, N, 0.0f,
                         C1 + (size_t)t * M * N, N);
#pragma omp parallel for num_threads(TH)
        for (int t = 0; t < TH; t++)
            tg_gemm_bf16(false, false, M, N, K, 1.0f, A + (size_t)t * M * K, K, B + (size_t)t * K * N, N, 0.0f,
                         C + (size_t)t * M * N, N);
        tg_check_close("nested", C, C1, (size_t)TH * M * N, 1e-5, 1e-4);
        free(A), free(B), free(C), free(C1);
    }
    /* The bias added as the first K block is stored: the bits of C filled
     * with the bias and beta = 1; one K block and several, N past one
     * 3072-column block (the bias offset per block), edge tiles, padded C
     * whose padding stays untouched, K = 0. */
    {
        static const int cases[][4] = {{37, 100, 40, 0}, {70, 130, 1000, 3}, {9, 3100, 33, 1}, {8, 48, 0, 2}};
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
            for (int t = 0; t < 4; t++) {
                bool tA = t & 1, tB = t >> 1;
                int M = cases[ci][0], N = cases[ci][1], K = cases[ci][2], ldc = N + cases[ci][3];
                int lda = tA ? M : K, ldb = tB ? K : N;
                float *A = rand_matrix(&r, (size_t)M * K + 1), *B = rand_matrix(&r, (size_t)K * N + 1);
                float *bias = rand_matrix(&r, (size_t)N), *C0 = rand_matrix(&r, (size_t)M * ldc);
                float *C1 = malloc((size_t)M * ldc * sizeof *C1), *C2 = malloc((size_t)M * ldc * sizeof *C2);
                memcpy(C1, C0, (size_t)M * ldc * sizeof *C1);
                memcpy(C2, C0, (size_t)M * ldc * sizeof *C2);
                for (int i = 0; i < M; i++) memcpy(C1 + (size_t)i * ldc, bias, (size_t)N * sizeof *C1);
                tg_gemm_bf16(tA, tB, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C1, ldc);
                tg_gemm_bf16_bias(tA, tB, M, N, K, 0.5f, A, lda, B, ldb, bias, C2, ldc);
                CHECK(memcmp(C1, C2, (size_t)M * ldc * sizeof *C1) == 0);
                free(A), free(B), free(bias), free(C0), free(C1), free(C2);
            }
    }
    /* Column sums taken while B is packed: the bits of a plain k loop added
     * to what colsum held, the GEMM unchanged; one K block and several, N
     * past one 3072-column block, edge panels, B transposed or not, and per
     * thread from inside a parallel region. */
    {
        static const int cases[][3] = {{24, 60, 1030}, {9, 3100, 40}, {64, 96, 384}, {17, 50, 33}};
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
            for (int tB = 0; tB < 2; tB++) {
                int M = cases[ci][0], N = cases[ci][1], K = cases[ci][2], ldb = tB ? K : N;
                float *A = rand_matrix(&r, (size_t)K * M), *B = rand_matrix(&r, (size_t)K * N);
                float *C1 = calloc((size_t)M * N, sizeof *C1), *C2 = calloc((size_t)M * N, sizeof *C2);
                float *s1 = rand_matrix(&r, (size_t)N), *s2 = malloc((size_t)N * sizeof *s2);
                memcpy(s2, s1, (size_t)N * sizeof *s2);
                tg_gemm_bf16(true, tB, M, N, K, 1.0f, A, M, B, ldb, 1.0f, C1, N);
                float *sums = malloc((size_t)N * sizeof *sums);
                for (int j = 0; j < N; j++) {
                    float acc = 0.0f;
                    for (int k = 0; k < K; k++) acc += tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                    sums[j] = acc;
                    s1[j] += acc;
                }
                tg_gemm_bf16_colsum(true, tB, M, N, K, 1.0f, A, M, B, ldb, 1.0f, C2, N, s2);
                CHECK(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0);
                CHECK(memcmp(s1, s2, (size_t)N * sizeof *s1) == 0);
                /* four threads at once, each its own GEMM and sums */
                enum { TH = 4 };
                float *s3 = calloc((size_t)TH * N, sizeof *s3), *C3 = calloc((size_t)TH * M * N, sizeof *C3);
#pragma omp parallel for num_threads(TH)
                for (int t = 0; t < TH; t++)
                    tg_gemm_bf16_colsum(true, tB, M, N, K, 1.0f, A, M, B, ldb, 1.0f, C3 + (size_t)t * M * N, N,
                                        s3 + (size_t)t * N);
                for (int t = 0; t < TH; t++) {
                    CHECK(memcmp(C3 + (size_t)t * M * N, C1, (size_t)M * N * sizeof *C1) == 0);
                    CHECK(memcmp(s3 + (size_t)t * N, sums, (size_t)N * sizeof *sums) == 0);
                }
                free(A), free(B), free(C1), free(C2), free(C3), free(s1), free(s2), free(s3), free(sums);
            }
    }
    /* bf16 is really in use: a product of values that bf16 cannot hold
     * differs from the fp32 product (only on the native kernel, which the
     * build enables with -march=native on AVX512_BF16 machines). */
    {
        float a = 1.0f + 0x1p-12f, b = 1.0f, c = 0;
        tg_gemm_bf16(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
        CHECK(c == 1.0f);
    }
    printf("native AVX512_BF16 kernel: %s\n", tg_gemm_bf16_native() ? "yes" : "no (portable fallback)");
    return test_summary("test_bf16");
}
