/*
 * matmul.c — the model's matrix multiplies through tg_gemm (oneDNN's
 * dnnl_sgemm, or cblas_sgemm from OpenBLAS's OpenMP build; tg_gemm_bf16 for
 * bf16), in row-major order with the transposes expressed as GEMM flags
 * (never copied), plus naive loop versions kept as the reference for tests.
 *
 * Legend: N rows (B*T), C input channels, OC output channels. Weights are HF
 * Conv1D [C, OC]; the LM head's wte is [OC, C] (the _nt pair).
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef TG_HAVE_DNNL
#include <dnnl.h>
#endif

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/matmul_bf16.h"

/* bf16 products need AVX512_BF16 (matmul_bf16.c). A kernel family without it
 * runs the bf16 matmuls in fp32: as fast as fp32 (its portable bf16 loop
 * would be many times slower) and more exact; docs/training.md says so. */
#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define BF16_PRODUCTS 1
#else
#define BF16_PRODUCTS 0
#endif

void tg_gemm(bool bf16, bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (bf16 && BF16_PRODUCTS) {
        tg_gemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef TG_HAVE_DNNL
    /* TG_BLAS=openblas picks OpenBLAS at run time: for comparisons, and for
     * valgrind, which flags the vector over-reads inside oneDNN's JIT code.
     * Read once; concurrent first calls store the same value. */
    static int use_dnnl = -1;
    if (use_dnnl < 0) {
        const char *e = getenv("TG_BLAS");
        use_dnnl = !(e && strcmp(e, "openblas") == 0);
    }
    if (use_dnnl) {
        /* dnnl_sgemm is row-major with 'N'/'T' flags, like cblas_sgemm */
        dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, lda, B, ldb, beta, C, ldc);
}

#define CBLOCK 16

/* dbias[o] += sum_n dout[n, o], split over threads by column blocks. */
static void bias_backward(float *dbias, const float *dout, size_t N, int OC) {
    int nblk = (OC + CBLOCK - 1) / CBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int o0 = blk * CBLOCK, o1 = o0 + CBLOCK < OC ? o0 + CBLOCK : OC;
        float acc[CBLOCK] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *d = dout + n * OC;
            for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
}

void tg_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C, int OC,
                       bool bf16) {
    bf16 = bf16 && BF16_PRODUCTS;
    if (bf16 && bias) { /* the bias goes in as the GEMM stores its first K block */
        tg_gemm_bf16_bias(false, false, (int)N, OC, C, 1.0f, inp, C, weight, OC, bias, out, OC);
        return;
    }
    float beta = 0.0f;
    if (bias) {
        /* out = bias broadcast, then out += inp @ weight (beta 1): no extra pass later. */
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) memcpy(out + n * OC, bias, (size_t)OC * sizeof *out);
        beta = 1.0f;
    }
    tg_gemm(bf16, false, false, (int)N, OC, C, 1.0f, inp, C, weight, OC, beta, out, OC);
}

void tg_matmul_forward_residual(float *out, const float *residual, const float *inp, const float *weight,
                                const float *bias, size_t N, int C, int OC, bool bf16) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *r = residual + n * OC;
        float *o = out + n * OC;
        for (int j = 0; j < OC; j++) o[j] = r[j] + (bias ? bias[j] : 0.0f);
    }
    tg_gemm(bf16, false, false, (int)N, OC, C, 1.0f, inp, C, weight, OC, 1.0f, out, OC);
}

static void matmul_backward(float *dinp, float dinp_beta, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, size_t N, int C, int OC, bool bf16) {
    bf16 = bf16 && BF16_PRODUCTS;
    if (dinp) /* (N, C) (+)= (N, OC) @ (C, OC)^T */
        tg_gemm(bf16, false, true, (int)N, C, OC, 1.0f, dout, OC, weight, OC, dinp_beta, dinp, C);
    /* (C, OC) += (N, C)^T @ (N, OC); in bf16 dbias comes from the packing of dout */
    if (bf16 && dbias) {
        tg_gemm_bf16_colsum(true, false, C, OC, (int)N, 1.0f, inp, C, dout, OC, 1.0f, dweight, OC, dbias);
        return;
    }
    tg_gemm(bf16, true, false, C, OC, (int)N, 1.0f, inp, C, dout, OC, 1.0f, dweight, OC);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

void tg_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, size_t N, int C, int OC, bool bf16) {
    matmul_backward(dinp, 1.0f, dweight, dbias, dout, inp, weight, N, C, OC, bf16);
}

void tg_matmul_backward_set(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, size_t N, int C, int OC, bool bf16) {
    matmul_backward(dinp, 0.0f, dweight, dbias, dout, inp, weight, N, C, OC, bf16);
}

void tg_matmul_forward_nt(float *out, const float *inp, const float *weight, size_t N, int C, int OC, bool bf16) {
    tg_gemm(bf16, false, true, (int)N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
}

void tg_matmul_backward_nt(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           size_t N, int C, int OC, bool bf16) {
    if (dinp) /* (N, C) += (N, OC) @ (OC, C) */
        tg_gemm(bf16, false, false, (int)N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    /* (OC, C) += (N, OC)^T @ (N, C) */
    tg_gemm(bf16, true, false, OC, C, (int)N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
}

/* ------------------------------------------------------------ reference */

void tg_matmul_forward_naive(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C,
                             int OC) {
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * weight[(size_t)c * OC + o];
            out[n * OC + o] = (float)s;
        }
}

void tg_matmul_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, size_t N, int C, int OC) {
    if (dinp)
        for (size_t n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0.0;
                for (int o = 0; o < OC; o++) s += (double)dout[n * OC + o] * weight[(size_t)c * OC + o];
                dinp[n * C + c] += (float)s;
            }
    for (int c = 0; c < C; c++)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (size_t n = 0; n < N; n++) s += (double)inp[n * C + c] * dout[n * OC + o];
            dweight[(size_t)c * OC + o] += (float)s;
        }
    if (dbias)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (size_t n = 0; n < N; n++) s += dout[n * OC + o];
            dbias[o] += (float)s;
        }
}
