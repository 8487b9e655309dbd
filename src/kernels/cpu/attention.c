/*
 * attention.c — causal multi-head self-attention, forward and backward, as
 * batched GEMMs per (batch, head) over row blocks, plus a naive reference.
 *
 * Legend: B batch, T time, C channels, NH heads, HS = C/NH. qkv (B, T, 3C)
 * holds [q | k | v] with head h at columns h*HS of each third (HF GPT-2's
 * split_heads), so every per-head matrix is a strided view (leading
 * dimension 3C) handed straight to BLAS: no transposes or copies.
 *
 * Causality: row block [r0, r1) only needs keys [kmin, r1) where kmin is the
 * smallest run start in the block (0 without segments), so the upper
 * triangle is mostly never computed (about 5/8 of the full T x T for four
 * blocks). Inside the block the mask is applied in the softmax.
 *
 * Threads take whole (b, head) pairs; tg_gemm called inside a parallel
 * region runs on the calling thread, so there is no oversubscription. Each (b, head) writes its own columns of out/dqkv only.
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/fastmath.h"
#include "kernels/cpu/kernels.h"

#define RB 64 /* rows per block */

static inline int row_start(const int32_t *run_start, int b, int T, int t) {
    return run_start ? run_start[(size_t)b * T + t] : 0;
}

size_t tg_attention_scratch_floats(int T, int n_threads) { return (size_t)n_threads * T * T; }

void tg_attention_forward(float *out, float *att, const float *qkv, const int32_t *run_start, int B, int T, int C,
                          int NH) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + h * HS;
        const float *k = q + C, *v = q + 2 * C;
        float *P = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * C + h * HS;
        for (int r0 = 0; r0 < T; r0 += RB) {
            int r1 = r0 + RB < T ? r0 + RB : T;
            int kmin = r0;
            for (int t = r0; t < r1; t++) {
                int s = row_start(run_start, b, T, t);
                kmin = s < kmin ? s : kmin;
            }
            /* S[r0:r1, kmin:r1] = scale * q[r0:r1] k[kmin:r1]^T */
            tg_gemm(false, false, true, r1 - r0, r1 - kmin, HS, scale, q + (size_t)r0 * C3,
                        C3, k + (size_t)kmin * C3, C3, 0.0f, P + (size_t)r0 * T + kmin, T);
            for (int t = r0; t < r1; t++) {
                float *p = P + (size_t)t * T;
                int s = row_start(run_start, b, T, t);
                float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
                for (int j = s; j <= t; j++) mx = p[j] > mx ? p[j] : mx;
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int j = s; j <= t; j++) {
                    float e = tg_expf(p[j] - mx);
                    p[j] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (int j = s; j <= t; j++) p[j] *= inv;
                memset(p, 0, (size_t)s * sizeof *p);
                memset(p + t + 1, 0, (size_t)(T - t - 1) * sizeof *p);
            }
            /* out[r0:r1] = P[r0:r1, kmin:r1] v[kmin:r1] */
            tg_gemm(false, false, false, r1 - r0, HS, r1 - kmin, 1.0f,
                        P + (size_t)r0 * T + kmin, T, v + (size_t)kmin * C3, C3, 0.0f, o + (size_t)r0 * C, C);
        }
    }
}

void tg_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const int32_t *run_start, int B, int T, int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
#ifdef _OPENMP
        float *dS = scratch + (size_t)omp_get_thread_num() * T * T;
#else
        float *dS = scratch;
#endif
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + h * HS;
        const float *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3 + h * HS;
        float *dk = dq + C, *dv = dq + 2 * C;
        const float *P = att + (size_t)bh * T * T;
        const float *dO = dout + (size_t)b * T * C + h * HS;
        for (int r0 = 0; r0 < T; r0 += RB) {
            int r1 = r0 + RB < T ? r0 + RB : T;
            int kmin = r0;
            for (int t = r0; t < r1; t++) {
                int s = row_start(run_start, b, T, t);
                kmin = s < kmin ? s : kmin;
            }
            int nk = r1 - kmin, nr = r1 - r0;
            const float *Pb = P + (size_t)r0 * T + kmin;
            float *dSb = dS + (size_t)r0 * T + kmin;
            /* dv[kmin:r1] += P^T dO[r0:r1] */
            tg_gemm(false, true, false, nk, HS, nr, 1.0f, Pb, T, dO + (size_t)r0 * C, C,
                        1.0f, dv + (size_t)kmin * C3, C3);
            /* dP = dO[r0:r1] v[kmin:r1]^T */
            tg_gemm(false, false, true, nr, nk, HS, 1.0f, dO + (size_t)r0 * C, C,
                        v + (size_t)kmin * C3, C3, 0.0f, dSb, T);
            /* softmax backward: dS = P * (dP - sum_j P dP), masked entries (P = 0) give 0 */
            for (int t = r0; t < r1; t++) {
                const float *p = P + (size_t)t * T;
                float *d = dS + (size_t)t * T;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = kmin; j <= t; j++) dot += p[j] * d[j];
                for (int j = kmin; j < r1; j++) d[j] = p[j] * (d[j] - dot);
            }
            /* dq[r0:r1] += scale dS k[kmin:r1] ; dk[kmin:r1] += scale dS^T q[r0:r1] */
            tg_gemm(false, false, false, nr, HS, nk, scale, dSb, T, k + (size_t)kmin * C3,
                        C3, 1.0f, dq + (size_t)r0 * C3, C3);
            tg_gemm(false, true, false, nk, HS, nr, scale, dSb, T, q + (size_t)r0 * C3, C3,
                        1.0f, dk + (size_t)kmin * C3, C3);
        }
    }
}

/* ------------------------------------------------------------ reference */

void tg_attention_forward_naive(float *out, float *att, const float *qkv, const int32_t *run_start, int B, int T,
                                int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * HS;
                float *p = att + (((size_t)b * NH + h) * T + t) * T;
                int s = row_start(run_start, b, T, t);
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    p[j] = 0.0f;
                    if (j < s || j > t) continue;
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * HS;
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    p[j] = (float)(d * scale);
                    if (p[j] > mx) mx = p[j];
                }
                double sum = 0.0;
                for (int j = s; j <= t; j++) sum += exp(p[j] - mx);
                for (int j = s; j <= t; j++) p[j] = (float)(exp(p[j] - mx) / sum);
                float *o = out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0.0;
                    for (int j = s; j <= t; j++) acc += (double)p[j] * qkv[((size_t)b * T + j) * C3 + 2 * C + h * HS + i];
                    o[i] = (float)acc;
                }
            }
}

void tg_attention_backward_naive(float *dqkv, const float *dout, const float *qkv, const float *att,
                                 const int32_t *run_start, int B, int T, int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *p = att + (((size_t)b * NH + h) * T + t) * T;
                const float *dO = dout + ((size_t)b * T + t) * C + h * HS;
                int s = row_start(run_start, b, T, t);
                /* dP[j] = dO . v_j ; dv_j += p_j dO */
                double dP[T > 0 ? T : 1];
                double dot = 0.0;
                for (int j = s; j <= t; j++) {
                    const float *v = qkv + ((size_t)b * T + j) * C3 + 2 * C + h * HS;
                    float *dv = dqkv + ((size_t)b * T + j) * C3 + 2 * C + h * HS;
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) {
                        d += (double)dO[i] * v[i];
                        dv[i] += p[j] * dO[i];
                    }
                    dP[j] = d;
                    dot += p[j] * d;
                }
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * HS;
                float *dq = dqkv + ((size_t)b * T + t) * C3 + h * HS;
                for (int j = s; j <= t; j++) {
                    double ds = p[j] * (dP[j] - dot) * scale;
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * HS;
                    float *dk = dqkv + ((size_t)b * T + j) * C3 + C + h * HS;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += (float)(ds * k[i]);
                        dk[i] += (float)(ds * q[i]);
                    }
                }
            }
}
