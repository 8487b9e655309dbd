/*
 * kernels.cu — the CUDA backend's row-wise ops: fill, bf16 conversion, bias,
 * deterministic column sums, embedding, LayerNorm, GELU, the fused softmax
 * cross-entropy, and the optimizer's AdamW, sum of squares and scale.
 * Arguments and arithmetic are backend.h's contract (the CPU kernels in
 * src/kernels/cpu are the oracle of tests/test_backend.c); dimension legend
 * as there.
 *
 * Determinism: no float atomics anywhere. Every sum is done by one thread in
 * a fixed order, or by a fixed tree (block_sum) over a fixed grid, so the
 * same inputs give the same bits on every run on a given GPU model.
 *
 * Written for correctness first (one block a row, plain loops); the
 * elementwise kernels are bandwidth-bound and simple. Never run on a GPU:
 * see docs/cuda.md.
 */
#include <math.h>

#include "kernels/cuda/cuda_internal.h"
#include "kernels/gelu_math.h"

#define TPB 256 /* threads per block of the row and elementwise kernels */

static unsigned grid_for(size_t n, unsigned tpb) {
    size_t g = (n + tpb - 1) / tpb;
    return (unsigned)(g > 65535u * 16u ? 65535u * 16u : (g ? g : 1)); /* grid-stride loops cover the rest */
}

/* ------------------------------------------------------------ memory helpers */

__global__ void fill_kernel(float *dst, float value, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = value;
}
void cu_fill(cuda_state *s, float *dst, float value, size_t n) {
    if (s->err || !n) return;
    fill_kernel<<<grid_for(n, TPB), TPB, 0, s->stream>>>(dst, value, n);
    LAUNCHED(s, "fill_kernel");
}

__global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]); /* round to nearest even, as the CPU's bf16 GEMM */
}
void cu_to_bf16(cuda_state *s, __nv_bfloat16 *dst, const float *src, size_t n) {
    if (s->err || !n) return;
    to_bf16_kernel<<<grid_for(n, TPB), TPB, 0, s->stream>>>(dst, src, n);
    LAUNCHED(s, "to_bf16_kernel");
}

__global__ void add_bias_kernel(float *out, const float *bias, size_t N, int OC) {
    size_t n = N * (size_t)OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}
void cu_add_bias(cuda_state *s, float *out, const float *bias, size_t N, int OC) {
    if (s->err || !N) return;
    add_bias_kernel<<<grid_for(N * OC, TPB), TPB, 0, s->stream>>>(out, bias, N, OC);
    LAUNCHED(s, "add_bias_kernel");
}

/* ------------------------------------------------------------ column sums
 * dsum[c] += sum_n f(n, c), f = dout (bias gradients) or dout * xhat
 * (LayerNorm's weight gradient). Two passes in a fixed order: chunk k of the
 * rows sums into part[k, c] (thread c, rows in order), then one thread a
 * column adds the chunks in order. Coalesced: neighbouring threads read
 * neighbouring columns of a row. */
__global__ void colsum_partial_kernel(float *part, const float *dout, const float *inp, const float *mean,
                                      const float *rstd, size_t N, int C, size_t rows_per_chunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    size_t n0 = blockIdx.y * rows_per_chunk, n1 = n0 + rows_per_chunk < N ? n0 + rows_per_chunk : N;
    if (c >= C) return;
    float acc = 0.0f;
    for (size_t n = n0; n < n1; n++) {
        float d = dout[n * C + c];
        acc += inp ? d * ((inp[n * C + c] - mean[n]) * rstd[n]) : d;
    }
    part[(size_t)blockIdx.y * C + c] = acc;
}
__global__ void colsum_finish_kernel(float *dsum, const float *part, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; k++) acc += part[(size_t)k * C + c];
    dsum[c] += acc;
}
void cu_colsum(cuda_state *s, float *dsum, const float *dout, const float *inp, const float *mean,
               const float *rstd, size_t N, int C) {
    if (s->err || !N) return;
    if (!NEED(s, (size_t)TG_CU_COL_CHUNKS * C <= s->part_n, "column sums")) return;
    size_t per = (N + TG_CU_COL_CHUNKS - 1) / TG_CU_COL_CHUNKS;
    int chunks = (int)((N + per - 1) / per);
    dim3 g((C + TPB - 1) / TPB, chunks);
    colsum_partial_kernel<<<g, TPB, 0, s->stream>>>(s->part, dout, inp, mean, rstd, N, C, per);
    if (!LAUNCHED(s, "colsum_partial_kernel")) return;
    colsum_finish_kernel<<<(C + TPB - 1) / TPB, TPB, 0, s->stream>>>(dsum, s->part, chunks, C);
    LAUNCHED(s, "colsum_finish_kernel");
}

/* ------------------------------------------------------------ embedding
 * out[n] = wte[inp[n]] + wpe[pos[n]] (pos NULL: n % T).
 * PyTorch: wte(idx) + wpe(pos). */
__global__ void encoder_forward_kernel(float *out, const int32_t *inp, const int32_t *pos, const float *wte,
                                       const float *wpe, size_t N, int T, int C) {
    size_t total = N * (size_t)C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / C;
        int c = (int)(i % C);
        int p = pos ? pos[n] : (int)(n % T);
        out[i] = wte[(size_t)inp[n] * C + c] + wpe[(size_t)p * C + c];
    }
}
void cu_encoder_forward(cuda_state *s, float *out, const int32_t *inp, const int32_t *pos, const float *wte,
                        const float *wpe, int B, int T, int C) {
    size_t N = (size_t)B * T;
    if (s->err || !N) return;
    encoder_forward_kernel<<<grid_for(N * C, TPB), TPB, 0, s->stream>>>(out, inp, pos, wte, wpe, N, T, C);
    LAUNCHED(s, "encoder_forward_kernel");
}

/* dtable[id[n]] += dout[n] without atomics: thread (c, j) owns channel c of
 * every row id with id % J == j and walks the rows in order, so each sum has
 * one fixed order. Every thread reads all N ids (broadcast within a warp,
 * from cache); the adds are spread over C*J threads. */
#define ENC_BUCKETS 64
__global__ void encoder_backward_kernel(float *dtable, const float *dout, const int32_t *ids, size_t N, int T,
                                        int C) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)C * ENC_BUCKETS) return;
    int c = (int)(idx % C), j = (int)(idx / C);
    for (size_t n = 0; n < N; n++) {
        int id = ids ? ids[n] : (int)(n % T);
        if (id % ENC_BUCKETS == j) dtable[(size_t)id * C + c] += dout[n * C + c];
    }
}
void cu_encoder_backward(cuda_state *s, float *dwte, float *dwpe, const float *dout, const int32_t *inp,
                         const int32_t *pos, int B, int T, int C) {
    size_t N = (size_t)B * T, threads = (size_t)C * ENC_BUCKETS;
    if (s->err || !N) return;
    unsigned g = (unsigned)((threads + TPB - 1) / TPB);
    if (dwte) {
        encoder_backward_kernel<<<g, TPB, 0, s->stream>>>(dwte, dout, inp, N, T, C);
        if (!LAUNCHED(s, "encoder_backward_kernel (wte)")) return;
    }
    if (dwpe) {
        encoder_backward_kernel<<<g, TPB, 0, s->stream>>>(dwpe, dout, pos, N, T, C);
        LAUNCHED(s, "encoder_backward_kernel (wpe)");
    }
}

/* ------------------------------------------------------------ LayerNorm
 * One block a row. PyTorch: F.layer_norm(inp, (C,), weight, bias, eps).
 * out may equal inp: every read of a row happens before the block's
 * reductions finish, every write after. */
__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int C, float eps) {
    __shared__ float sh[32];
    size_t n = blockIdx.x;
    const float *x = inp + n * C;
    float acc = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) acc += x[c];
    float m = block_sum(acc, sh) / C;
    acc = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) acc += (x[c] - m) * (x[c] - m);
    float r = 1.0f / sqrtf(block_sum(acc, sh) / C + eps);
    float *o = out + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    if (threadIdx.x == 0) {
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}
void cu_layernorm_forward(cuda_state *s, float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, size_t N, int C, float eps) {
    if (s->err || !N) return;
    layernorm_forward_kernel<<<(unsigned)N, TPB, 0, s->stream>>>(out, mean, rstd, inp, weight, bias, C, eps);
    LAUNCHED(s, "layernorm_forward_kernel");
}

/* dinp += rstd (dy - mean(dy) - xhat mean(dy xhat)), dy = dout * weight */
__global__ void layernorm_backward_kernel(float *dinp, const float *dout, const float *inp, const float *weight,
                                          const float *mean, const float *rstd, int C) {
    __shared__ float sh[32];
    size_t n = blockIdx.x;
    const float *x = inp + n * C, *d = dout + n * C;
    float m = mean[n], r = rstd[n], a = 0.0f, b = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dy = d[c] * weight[c];
        a += dy;
        b += dy * (x[c] - m) * r;
    }
    float sdy = block_sum(a, sh) / C, sdyx = block_sum(b, sh) / C;
    float *o = dinp + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dy = d[c] * weight[c];
        o[c] += r * (dy - sdy - (x[c] - m) * r * sdyx);
    }
}
void cu_layernorm_backward(cuda_state *s, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd, size_t N,
                           int C) {
    if (s->err || !N) return;
    layernorm_backward_kernel<<<(unsigned)N, TPB, 0, s->stream>>>(dinp, dout, inp, weight, mean, rstd, C);
    if (!LAUNCHED(s, "layernorm_backward_kernel")) return;
    if (dweight) cu_colsum(s, dweight, dout, inp, mean, rstd, N, C);
    if (dbias) cu_colsum(s, dbias, dout, NULL, NULL, NULL, N, C);
}

/* ------------------------------------------------------------ GELU (gelu_math.h) */

__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        out[i] = tg_gelu_from_e(x, expf(tg_gelu_exponent(x)));
    }
}
__global__ void gelu_backward_kernel(float *d, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        d[i] *= tg_gelu_grad_from_e(x, expf(tg_gelu_exponent(x)));
    }
}
void cu_gelu_forward(cuda_state *s, float *out, const float *inp, size_t N) {
    if (s->err || !N) return;
    gelu_forward_kernel<<<grid_for(N, TPB), TPB, 0, s->stream>>>(out, inp, N);
    LAUNCHED(s, "gelu_forward_kernel");
}
void cu_gelu_backward_inplace(cuda_state *s, float *d, const float *inp, size_t N) {
    if (s->err || !N) return;
    gelu_backward_kernel<<<grid_for(N, TPB), TPB, 0, s->stream>>>(d, inp, N);
    LAUNCHED(s, "gelu_backward_kernel");
}

/* ------------------------------------------------------------ cross-entropy
 * One block a row; the probabilities are never stored (backward recomputes
 * them from lse). PyTorch: F.cross_entropy(logits[:, :V], t, reduction="none").
 * rowsum[n] = w * loss (0 when w == 0, so a weight-0 row never adds NaN/inf),
 * rowsum[N + n] = w; one block then adds them in order. */
__global__ void ce_forward_kernel(float *losses, float *lse, float *logits, const int32_t *targets,
                                  const float *weights, double *rowsum, size_t N, int V, int Vp) {
    __shared__ float sh[32];
    size_t n = blockIdx.x;
    float *x = logits + n * Vp;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < Vp; v += blockDim.x) {
        if (v >= V) x[v] = -INFINITY; /* padded ids can't be predicted */
        else mx = fmaxf(mx, x[v]);
    }
    mx = block_max(mx, sh);
    float z = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) z += expf(x[v] - mx);
    z = block_sum(z, sh);
    if (threadIdx.x == 0) {
        float l = mx + logf(z), loss = l - x[targets[n]], w = weights ? weights[n] : 1.0f;
        if (losses) losses[n] = loss;
        if (lse) lse[n] = l;
        rowsum[n] = w != 0.0f ? (double)w * loss : 0.0;
        rowsum[N + n] = w;
    }
}
__global__ void sum_rows_kernel(double *out, const double *rowsum, size_t N) {
    __shared__ double sh[32];
    double a = 0.0, b = 0.0;
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) a += rowsum[i], b += rowsum[N + i];
    a = block_sum(a, sh);
    b = block_sum(b, sh);
    if (threadIdx.x == 0) out[0] = a, out[1] = b;
}
double cu_crossentropy_forward(cuda_state *s, float *losses, float *lse, float *logits, const int32_t *targets,
                               const float *weights, size_t N, int V, int Vp, double *wsum) {
    if (wsum) *wsum = NAN;
    if (s->err) return NAN;
    if (!N) {
        if (wsum) *wsum = 0.0;
        return 0.0;
    }
    if (!NEED(s, 2 * N <= s->dred_n, "crossentropy_forward")) return NAN;
    ce_forward_kernel<<<(unsigned)N, TPB, 0, s->stream>>>(losses, lse, logits, targets, weights, s->dred, N, V, Vp);
    if (!LAUNCHED(s, "ce_forward_kernel")) return NAN;
    sum_rows_kernel<<<1, 1024, 0, s->stream>>>(s->red, s->dred, N);
    if (!LAUNCHED(s, "sum_rows_kernel")) return NAN;
    if (!CU_OK(s, cudaMemcpyAsync(s->red_host, s->red, 2 * sizeof(double), cudaMemcpyDeviceToHost, s->stream)) ||
        !CU_OK(s, cudaStreamSynchronize(s->stream)))
        return NAN;
    if (wsum) *wsum = s->red_host[1];
    return s->red_host[0];
}

/* dlogits[n, v] = scale w[n] (softmax[n, v] - [v == target[n]]), 0 for v >= V */
__global__ void ce_backward_kernel(float *logits, const float *lse, const int32_t *targets, const float *weights,
                                   float scale, int V, int Vp) {
    size_t n = blockIdx.x;
    float *x = logits + n * Vp;
    float g = scale * (weights ? weights[n] : 1.0f), l = lse[n];
    int t = targets[n];
    for (int v = threadIdx.x; v < Vp; v += blockDim.x) {
        if (g == 0.0f || v >= V) x[v] = 0.0f;
        else x[v] = g * expf(x[v] - l) - (v == t ? g : 0.0f);
    }
}
void cu_crossentropy_backward_inplace(cuda_state *s, float *logits, const float *lse, const int32_t *targets,
                                      const float *weights, float scale, size_t N, int V, int Vp) {
    if (s->err || !N) return;
    ce_backward_kernel<<<(unsigned)N, TPB, 0, s->stream>>>(logits, lse, targets, weights, scale, V, Vp);
    LAUNCHED(s, "ce_backward_kernel");
}

__global__ void mask_kernel(float *logits, size_t N, int V, int Vp) {
    size_t pad = (size_t)(Vp - V), total = N * pad;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        logits[(i / pad) * Vp + V + i % pad] = -INFINITY;
}
void cu_mask_padded_vocab(cuda_state *s, float *logits, size_t N, int V, int Vp) {
    if (s->err || !N || Vp <= V) return;
    mask_kernel<<<grid_for(N * (size_t)(Vp - V), TPB), TPB, 0, s->stream>>>(logits, N, V, Vp);
    LAUNCHED(s, "mask_kernel");
}

/* ------------------------------------------------------------ optimizer
 * torch.optim.AdamW's single-tensor arithmetic, as the CPU kernel:
 * w = w*decay - step_size * m/(sqrt(v)/bc2_sqrt + eps) after the moments. */
__global__ void adamw_kernel(float *w, const float *g, float *m1, float *v2, size_t n, float decay, float step_size,
                             float beta1, float beta2, float bc2_sqrt, float eps) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i];
        float mi = m1[i] * beta1 + (1.0f - beta1) * gi;
        float vi = v2[i] * beta2 + (1.0f - beta2) * gi * gi;
        m1[i] = mi;
        v2[i] = vi;
        w[i] = w[i] * decay - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}
void cu_adamw_update(cuda_state *s, float *w, const float *g, float *m1, float *v2, size_t n, float decay,
                     float step_size, float beta1, float beta2, float bc2_sqrt, float eps) {
    if (s->err || !n) return;
    adamw_kernel<<<grid_for(n, TPB), TPB, 0, s->stream>>>(w, g, m1, v2, n, decay, step_size, beta1, beta2, bc2_sqrt,
                                                          eps);
    LAUNCHED(s, "adamw_kernel");
}

/* Squared L2 norm in double: a fixed grid of TG_CU_RED_BLOCKS blocks, each
 * a fixed stride and tree, then one thread adds the block sums in order. */
__global__ void sumsq_partial_kernel(double *part, const float *x, size_t n) {
    __shared__ double sh[32];
    double a = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        a += (double)x[i] * x[i];
    a = block_sum(a, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = a;
}
__global__ void sumsq_finish_kernel(double *out, const double *part, int k) {
    double a = 0.0;
    for (int i = 0; i < k; i++) a += part[i];
    out[0] = a;
}
double cu_sum_squares(cuda_state *s, const float *x, size_t n) {
    if (s->err) return NAN;
    if (!n) return 0.0;
    double *part = s->red + 2; /* red holds 2 + TG_CU_RED_BLOCKS doubles */
    sumsq_partial_kernel<<<TG_CU_RED_BLOCKS, TPB, 0, s->stream>>>(part, x, n);
    if (!LAUNCHED(s, "sumsq_partial_kernel")) return NAN;
    sumsq_finish_kernel<<<1, 1, 0, s->stream>>>(s->red, part, TG_CU_RED_BLOCKS);
    if (!LAUNCHED(s, "sumsq_finish_kernel")) return NAN;
    if (!CU_OK(s, cudaMemcpyAsync(s->red_host, s->red, sizeof(double), cudaMemcpyDeviceToHost, s->stream)) ||
        !CU_OK(s, cudaStreamSynchronize(s->stream)))
        return NAN;
    return s->red_host[0];
}

__global__ void scale_kernel(float *x, float sc, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= sc;
}
void cu_scale(cuda_state *s, float *x, float sc, size_t n) {
    if (s->err || !n) return;
    scale_kernel<<<grid_for(n, TPB), TPB, 0, s->stream>>>(x, sc, n);
    LAUNCHED(s, "scale_kernel");
}
