/*
 * matmul_bf16.h — bf16 matrix multiply with fp32 accumulation (AVX512_BF16).
 *
 * tg_gemm_bf16 has cblas_sgemm's row-major semantics, so a model can swap it
 * for cblas_sgemm(CblasRowMajor, ...) call for call:
 *
 *     C = alpha * op(A) * op(B) + beta * C
 *     op(A) is M x K (A is M x K, or K x M when transA), leading dimension lda
 *     op(B) is K x N (B is K x N, or N x K when transB), leading dimension ldb
 *     C is M x N, leading dimension ldc
 *
 * Inputs and outputs are fp32; A and B are rounded to bf16 (round to nearest
 * even) while they are packed into cache-sized blocks, products are summed in
 * fp32. So the error is that of bf16 inputs, about 2^-8 relative per input,
 * not of a bf16 output. The model's three GEMMs map to:
 *     forward   y = x W (+ b)   tg_gemm_bf16(0, 0, BT, OC, C,  1, x, C, W, OC, 0, y, OC)
 *     dX        dx = dy W^T     tg_gemm_bf16(0, 1, BT, C, OC,  1, dy, OC, W, OC, 1, dx, C)
 *     dW        dW += x^T dy    tg_gemm_bf16(1, 0, C, OC, BT,  1, x, C, dy, OC, 1, dW, OC)
 *
 * It allocates nothing: the packing buffers are static, fixed-size blocks
 * (one set per thread, up to TG_GEMM_BF16_MAX_THREADS), so a training step
 * that calls it still allocates all its memory before the first step.
 * It runs its own OpenMP parallel region over the threads of omp_get_max_threads();
 * called from inside a parallel region it runs on the calling thread only, and
 * then each OpenMP thread (number < TG_GEMM_BF16_MAX_THREADS) may call it at
 * once. Two top-level calls from different non-OpenMP threads must not overlap
 * (they would share a packing buffer).
 * Without AVX512_BF16 at compile time it falls back to a portable (slow) loop
 * with the same bf16 rounding of the inputs and fp32 sums.
 */
#ifndef TG_MATMUL_BF16_H
#define TG_MATMUL_BF16_H

#include "kernels/cpu/variant.h"

#include <stdbool.h>

#define TG_GEMM_BF16_MAX_THREADS 64

void tg_gemm_bf16(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

/* tg_gemm_bf16, and colsum[j] += sum_k op(B)[k][j] (in fp32, of B before
 * rounding, summed in k order from 0 and then added: the bits of a plain
 * loop). The sums come from B's blocks while they are packed, in cache: the
 * bias gradient of dW += x^T dy without a second pass over dy. */
void tg_gemm_bf16_colsum(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc, float *colsum);

/* C = alpha * op(A) * op(B) + bias (bias[j] added to every row of column j,
 * as the first K block's products are stored): a linear layer's forward
 * without first filling C with the bias. The bits of filling C with the bias
 * and calling tg_gemm_bf16 with beta = 1. */
void tg_gemm_bf16_bias(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, const float *bias, float *C, int ldc);

/* Whether the fast AVX512_BF16 kernel was compiled in (else the fallback). */
bool tg_gemm_bf16_native(void);

/* Naive reference: the same contract, inputs rounded to bf16, sums in double.
 * For tests. */
void tg_gemm_bf16_ref(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

/* Rounds an fp32 value to the nearest bf16 (ties to even) and back to fp32. */
float tg_bf16_round(float x);

#endif /* TG_MATMUL_BF16_H */
