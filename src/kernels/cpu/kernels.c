/*
 * kernels.c — the elementwise and row-wise CPU kernels of GPT-2 in fp32:
 * token + position embedding, LayerNorm, GELU (tanh), residual, softmax and
 * the fused softmax cross-entropy with per-token weights. Matrix multiplies
 * live in matmul.c, attention in attention.c. See kernels.h for the legend
 * (B, T, C, N, V, Vp) and the PyTorch expression of each kernel.
 *
 * Reductions over rows (dweight, dbias, embedding gradients) are split over
 * threads by channel, never by row, so they need no scratch and no atomics
 * and the result does not depend on the thread count's schedule.
 */
#include <math.h>
#include <string.h>

#include "kernels/cpu/fastmath.h"
#include "kernels/cpu/kernels.h"

/* Channel blocks of 16 floats = one 64-byte cache line: threads never write
 * the same line (no false sharing). */
#define CBLOCK 16

/* ------------------------------------------------------------ embedding */

/* Threads only where there is work for them: a decode step's few rows run on
 * the calling thread (a parallel region costs microseconds, far more when the
 * cores are shared). Row-wise and elementwise results never depend on it. */
#define PAR_MIN 65536

void tg_encoder_forward(float *out, const int32_t *inp, const int32_t *pos, const float *wte, const float *wpe,
                        int B, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)B * T * C >= PAR_MIN)
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
        int t = pos ? pos[bt] : (int)(bt % T);
        const float *we = wte + (size_t)inp[bt] * C;
        const float *pe = wpe + (size_t)t * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = we[c] + pe[c];
    }
}

void tg_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, const int32_t *pos, int B,
                         int T, int C) {
    int nblk = (C + CBLOCK - 1) / CBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CBLOCK, c1 = c0 + CBLOCK < C ? c0 + CBLOCK : C;
        for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
            int t = pos ? pos[bt] : (int)(bt % T);
            const float *d = dout + (size_t)bt * C;
            float *we = dwte + (size_t)inp[bt] * C;
            float *pe = dwpe + (size_t)t * C;
            for (int c = c0; c < c1; c++) {
                we[c] += d[c];
                pe[c] += d[c];
            }
        }
    }
}

/* ------------------------------------------------------------ LayerNorm */

void tg_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, size_t N, int C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        /* simd reductions: lanes of partial sums (a fixed order for a given
         * kernel family), so every family vectorises them, not only those
         * the compiler would reorder float sums for */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / C + eps); /* biased variance, as PyTorch */
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + bias[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

void tg_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, size_t N, int C) {
    /* dx = rstd * (w*dy - mean(w*dy) - xhat * mean(w*dy*xhat)) */
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float m = mean[n], r = rstd[n];
        float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * r;
            float g = weight[c] * dy[c];
            a += g;
            b += g * xh;
        }
        a /= C;
        b /= C;
        float *dx = dinp + n * C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * r;
            dx[c] += (weight[c] * dy[c] - a - xh * b) * r;
        }
    }
    int nblk = (C + CBLOCK - 1) / CBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CBLOCK, c1 = c0 + CBLOCK < C ? c0 + CBLOCK : C;
        float dw[CBLOCK] = {0}, db[CBLOCK] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            float m = mean[n], r = rstd[n];
            for (int c = c0; c < c1; c++) {
                dw[c - c0] += (x[c] - m) * r * dy[c];
                db[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dweight[c] += dw[c - c0];
            dbias[c] += db[c - c0];
        }
    }
}

/* ------------------------------------------------------------ GELU */

void tg_gelu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static) if (N >= PAR_MIN)
    for (size_t i = 0; i < N; i++) out[i] = tg_gelu(inp[i]);
}

void tg_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) dinp[i] += tg_gelu_grad(inp[i]) * dout[i];
}

void tg_gelu_backward_inplace(float *d, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) d[i] *= tg_gelu_grad(inp[i]);
}

/* ------------------------------------------------------------ residual */

void tg_residual_forward(float *out, const float *a, const float *b, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

void tg_residual_backward(float *da, float *db, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

/* ------------------------------------------------------------ softmax & loss */

/* max and log-sum-exp of x[0..V) in float, two passes (max first for range). */
static float row_lse(const float *x, int V) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V; v++) s += tg_expf(x[v] - mx);
    return mx + logf(s);
}

void tg_softmax_forward(float *probs, const float *logits, size_t N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = logits + n * Vp;
        float *p = probs + n * Vp;
        float lse = row_lse(x, V);
#pragma omp simd
        for (int v = 0; v < V; v++) p[v] = tg_expf(x[v] - lse);
        for (int v = V; v < Vp; v++) p[v] = 0.0f;
    }
}

double tg_crossentropy_forward(float *losses, float *lse, float *logits, const int32_t *targets,
                               const float *weights, size_t N, int V, int Vp, double *wsum) {
    double total = 0.0, count = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total, count)
    for (size_t n = 0; n < N; n++) {
        float *x = logits + n * Vp;
        for (int v = V; v < Vp; v++) x[v] = -INFINITY; /* padded rows can't be predicted */
        float l = row_lse(x, V);
        float loss = l - x[targets[n]];
        float w = weights ? weights[n] : 1.0f;
        if (losses) losses[n] = loss;
        if (lse) lse[n] = l;
        if (w != 0.0f) total += (double)w * loss; /* a weight-0 row never adds NaN/inf */
        count += w;
    }
    if (wsum) *wsum = count;
    return total;
}

void tg_crossentropy_backward_inplace(float *logits, const float *lse, const int32_t *targets,
                                      const float *weights, float scale, size_t N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *x = logits + n * Vp;
        float g = scale * (weights ? weights[n] : 1.0f);
        if (g == 0.0f) {
            memset(x, 0, (size_t)Vp * sizeof *x);
            continue;
        }
        float l = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) x[v] = g * tg_expf(x[v] - l);
        x[targets[n]] -= g;
        for (int v = V; v < Vp; v++) x[v] = 0.0f;
    }
}

void tg_mask_padded_vocab(float *logits, size_t N, int V, int Vp) {
#pragma omp parallel for schedule(static) if (N * (size_t)(Vp - V) >= PAR_MIN)
    for (size_t i = 0; i < N; i++)
        for (int v = V; v < Vp; v++) logits[i * Vp + v] = -INFINITY;
}
