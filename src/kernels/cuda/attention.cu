/*
 * attention.cu — causal multi-head attention for the CUDA backend: the
 * training forward (att saved, as backend.h's contract), its backward, and
 * the KV-cache store and attention of a decode step.
 *
 * Layout (backend.h): qkv (B, T, 3C) = [q | k | v], heads contiguous within
 * each; att (B, NH, T, T); run_start (B, T) or NULL confines row t to keys
 * [run_start, t] (packed sequences); masked entries of att are exactly 0.
 * PyTorch: F.scaled_dot_product_attention(q, k, v, attn_mask).
 *
 * These are straightforward kernels, one thread block per (query row, head),
 * the row's scores in shared memory: correct and deterministic (every sum one
 * thread's loop or a fixed tree), not fast. A flash-style fused kernel (or
 * cuDNN's) is the next step and must show its figure in bench first
 * (docs/cuda.md). Never run on a GPU yet.
 *
 * Backward without atomics, in two passes:
 *   pass 1, block (t, h, b): datt[s] = dout_t . v_s, D_t = sum_s att[t,s] datt[s],
 *     dpre[s] = att[t,s] (datt[s] - D_t), dq_t += scale sum_s dpre[s] k_s; saves D_t.
 *   pass 2, block (s, h, b): dk_s += scale sum_t att[t,s] (dout_t . v_s - D_t) q_t,
 *     dv_s += sum_t att[t,s] dout_t (t >= s; a masked att is 0 and adds 0).
 * Each dqkv element is written by one thread.
 */
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

#define ATPB 128 /* threads per (row, head) block */

/* Softmax over the scores p[lo..hi] of one query (in place, shared memory):
 * p[s] = q . k_s * scale first, then exp(p - max) / sum. kbase(s) gives k_s. */
__device__ void scores_softmax(float *p, const float *q, const float *kbase, size_t kstride, int lo, int hi,
                               int HS, float scale, float *red) {
    float mx = -INFINITY;
    for (int s = lo + threadIdx.x; s <= hi; s += blockDim.x) {
        const float *k = kbase + (size_t)s * kstride;
        float dot = 0.0f;
        for (int d = 0; d < HS; d++) dot += q[d] * k[d];
        p[s] = dot * scale;
        mx = fmaxf(mx, p[s]);
    }
    mx = block_max(mx, red);
    float z = 0.0f;
    for (int s = lo + threadIdx.x; s <= hi; s += blockDim.x) {
        float e = expf(p[s] - mx);
        p[s] = e;
        z += e;
    }
    float inv = 1.0f / block_sum(z, red);
    for (int s = lo + threadIdx.x; s <= hi; s += blockDim.x) p[s] *= inv;
    __syncthreads();
}

/* shared: p[T] scores, q[HS] */
__global__ void attention_forward_kernel(float *out, float *att, const float *qkv, const int32_t *run_start, int T,
                                         int C, int NH) {
    extern __shared__ float shm[];
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, HS = C / NH;
    float *p = shm, *q = shm + T;
    size_t row = (size_t)b * T + t;
    int lo = run_start ? run_start[row] : 0;
    const float *qg = qkv + row * 3 * C + h * HS;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) q[d] = qg[d];
    __syncthreads();
    const float *kbase = qkv + (size_t)b * T * 3 * C + C + h * HS, *vbase = kbase + C;
    scores_softmax(p, q, kbase, 3 * (size_t)C, lo, t, HS, 1.0f / sqrtf((float)HS), red);
    float *arow = att + (((size_t)b * NH + h) * T + t) * T;
    for (int s = threadIdx.x; s < T; s += blockDim.x) arow[s] = s >= lo && s <= t ? p[s] : 0.0f;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = lo; s <= t; s++) acc += p[s] * vbase[(size_t)s * 3 * C + d];
        out[row * C + h * HS + d] = acc;
    }
}

/* pass 1 (see the file comment). shared: datt[T], dout_t[HS] */
__global__ void attention_backward_q_kernel(float *dqkv, float *Dbuf, const float *dout, const float *qkv,
                                            const float *att, const int32_t *run_start, int T, int C, int NH) {
    extern __shared__ float shm[];
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, HS = C / NH;
    float *da = shm, *dov = shm + T;
    size_t row = (size_t)b * T + t;
    int lo = run_start ? run_start[row] : 0;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) dov[d] = dout[row * C + h * HS + d];
    __syncthreads();
    const float *arow = att + (((size_t)b * NH + h) * T + t) * T;
    const float *kbase = qkv + (size_t)b * T * 3 * C + C + h * HS, *vbase = kbase + C;
    float acc = 0.0f;
    for (int s = lo + threadIdx.x; s <= t; s += blockDim.x) {
        const float *v = vbase + (size_t)s * 3 * C;
        float dot = 0.0f;
        for (int d = 0; d < HS; d++) dot += dov[d] * v[d];
        da[s] = dot;
        acc += arow[s] * dot;
    }
    float D = block_sum(acc, red); /* ends with a barrier: da complete */
    for (int s = lo + threadIdx.x; s <= t; s += blockDim.x) da[s] = arow[s] * (da[s] - D);
    __syncthreads();
    float scale = 1.0f / sqrtf((float)HS);
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float g = 0.0f;
        for (int s = lo; s <= t; s++) g += da[s] * kbase[(size_t)s * 3 * C + d];
        dqkv[row * 3 * C + h * HS + d] += scale * g;
    }
    if (threadIdx.x == 0) Dbuf[((size_t)b * NH + h) * T + t] = D;
}

/* pass 2. shared: dp[T] (att (dout_t . v_s - D_t)), a[T] (att[t, s]), v_s[HS] */
__global__ void attention_backward_kv_kernel(float *dqkv, const float *Dbuf, const float *dout, const float *qkv,
                                             const float *att, int T, int C, int NH) {
    extern __shared__ float shm[];
    int s = blockIdx.x, h = blockIdx.y, b = blockIdx.z, HS = C / NH;
    float *dp = shm, *a = shm + T, *vs = shm + 2 * T;
    size_t srow = (size_t)b * T + s;
    const float *vg = qkv + srow * 3 * C + 2 * C + h * HS;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) vs[d] = vg[d];
    __syncthreads();
    const float *abase = att + ((size_t)b * NH + h) * T * T;
    const float *Db = Dbuf + ((size_t)b * NH + h) * T;
    for (int t = s + threadIdx.x; t < T; t += blockDim.x) {
        float at = abase[(size_t)t * T + s], g = 0.0f;
        if (at != 0.0f) {
            const float *dot_ = dout + ((size_t)b * T + t) * C + h * HS;
            float dot = 0.0f;
            for (int d = 0; d < HS; d++) dot += dot_[d] * vs[d];
            g = at * (dot - Db[t]);
        }
        dp[t] = g;
        a[t] = at;
    }
    __syncthreads();
    float scale = 1.0f / sqrtf((float)HS);
    const float *qbase = qkv + (size_t)b * T * 3 * C + h * HS;
    const float *dobase = dout + (size_t)b * T * C + h * HS;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float gk = 0.0f, gv = 0.0f;
        for (int t = s; t < T; t++) {
            gk += dp[t] * qbase[(size_t)t * 3 * C + d];
            gv += a[t] * dobase[(size_t)t * C + d];
        }
        dqkv[srow * 3 * C + C + h * HS + d] += scale * gk;
        dqkv[srow * 3 * C + 2 * C + h * HS + d] += gv;
    }
}

static size_t fwd_shm(int T, int HS) { return ((size_t)T + HS) * sizeof(float); }
static size_t bwd_kv_shm(int T, int HS) { return (2 * (size_t)T + HS) * sizeof(float); }

void cu_attention_forward(cuda_state *s, float *out, float *att, const float *qkv, const int32_t *run_start, int B,
                          int T, int C, int NH) {
    if (s->err || B <= 0 || T <= 0) return;
    if (!NEED(s, T <= s->max_t, "attention_forward")) return;
    dim3 g(T, NH, B);
    attention_forward_kernel<<<g, ATPB, fwd_shm(T, C / NH), s->stream>>>(out, att, qkv, run_start, T, C, NH);
    LAUNCHED(s, "attention_forward_kernel");
}

void cu_attention_backward(cuda_state *s, float *dqkv, const float *dout, const float *qkv, const float *att,
                           const int32_t *run_start, int B, int T, int C, int NH) {
    if (s->err || B <= 0 || T <= 0) return;
    if (!NEED(s, T <= s->max_t && (size_t)B * NH * T <= s->attd_n, "attention_backward")) return;
    dim3 g(T, NH, B);
    attention_backward_q_kernel<<<g, ATPB, fwd_shm(T, C / NH), s->stream>>>(dqkv, s->attd, dout, qkv, att,
                                                                            run_start, T, C, NH);
    if (!LAUNCHED(s, "attention_backward_q_kernel")) return;
    attention_backward_kv_kernel<<<g, ATPB, bwd_kv_shm(T, C / NH), s->stream>>>(dqkv, s->attd, dout, qkv, att, T, C,
                                                                                NH);
    LAUNCHED(s, "attention_backward_kv_kernel");
}

/* ------------------------------------------------------------ KV cache
 * Cache layout (S, L, NH, max_ctx, HS). The step's pos and slot arrays are
 * host memory (tg_step_rows); they are copied to the device (rows_i), on
 * the stream, once a step: by kv_store of layer 0 (a step starts there), and
 * again only when an op is handed another tg_step_rows than the last one.
 * The model passes the same rows to every layer of a step. */

static bool rows_to_device(cuda_state *s, const tg_step_rows *rows, bool new_step, int32_t **pos, int32_t **slot) {
    if (!NEED(s, (size_t)rows->n <= s->rows_n, "kv_store / attention_kv")) return false;
    *pos = s->rows_i;
    *slot = s->rows_i + s->rows_n;
    if (!new_step && rows == s->rows_last && rows->n == s->rows_last_n) return true;
    size_t b = (size_t)rows->n * sizeof(int32_t);
    s->rows_last = NULL;
    if (!CU_OK(s, cudaMemcpyAsync(*pos, rows->pos, b, cudaMemcpyHostToDevice, s->stream)) ||
        !CU_OK(s, cudaMemcpyAsync(*slot, rows->slot, b, cudaMemcpyHostToDevice, s->stream)))
        return false;
    s->rows_last = rows;
    s->rows_last_n = rows->n;
    return true;
}

__device__ size_t kv_index(int slot, int l, int h, int p, int L, int NH, int ctx, int HS) {
    return ((((size_t)slot * L + l) * NH + h) * ctx + p) * HS;
}

__global__ void kv_store_kernel(float *kc, float *vc, const float *qkv, const int32_t *pos, const int32_t *slot,
                                int l, int L, int NH, int ctx, int HS) {
    int i = blockIdx.x, C = NH * HS;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        size_t at = kv_index(slot[i], l, c / HS, pos[i], L, NH, ctx, HS) + c % HS;
        kc[at] = qkv[(size_t)i * 3 * C + C + c];
        vc[at] = qkv[(size_t)i * 3 * C + 2 * C + c];
    }
}

/* row i attends to keys 0..pos[i] of its slot. shared: p[max_ctx], q[HS] */
__global__ void attention_kv_kernel(float *out, const float *qkv, const float *kc, const float *vc,
                                    const int32_t *pos, const int32_t *slot, int l, int L, int NH, int ctx, int HS) {
    extern __shared__ float shm[];
    __shared__ float red[32];
    int i = blockIdx.x, h = blockIdx.y, C = NH * HS, P = pos[i];
    float *p = shm, *q = shm + ctx;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) q[d] = qkv[(size_t)i * 3 * C + h * HS + d];
    __syncthreads();
    size_t base = kv_index(slot[i], l, h, 0, L, NH, ctx, HS);
    scores_softmax(p, q, kc + base, (size_t)HS, 0, P, HS, 1.0f / sqrtf((float)HS), red);
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float acc = 0.0f;
        for (int k = 0; k <= P; k++) acc += p[k] * vc[base + (size_t)k * HS + d];
        out[(size_t)i * C + h * HS + d] = acc;
    }
}

void cu_kv_store(cuda_state *s, tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows) {
    int32_t *pos, *slot;
    if (s->err || rows->n <= 0 || !rows_to_device(s, rows, l == 0, &pos, &slot)) return;
    kv_store_kernel<<<rows->n, ATPB, 0, s->stream>>>(kv->k, kv->v, qkv, pos, slot, l, kv->L, kv->NH, kv->max_ctx,
                                                     kv->HS);
    LAUNCHED(s, "kv_store_kernel");
}

void cu_attention_kv(cuda_state *s, float *out, const float *qkv, const tg_kv_cache *kv, int l,
                     const tg_step_rows *rows) {
    int32_t *pos, *slot;
    if (s->err || rows->n <= 0) return;
    if (!NEED(s, kv->max_ctx <= s->max_t, "attention_kv") || !rows_to_device(s, rows, false, &pos, &slot)) return;
    dim3 g(rows->n, kv->NH);
    attention_kv_kernel<<<g, ATPB, fwd_shm(kv->max_ctx, kv->HS), s->stream>>>(out, qkv, kv->k, kv->v, pos, slot, l,
                                                                              kv->L, kv->NH, kv->max_ctx, kv->HS);
    LAUNCHED(s, "attention_kv_kernel");
}

/* Shared memory above the default 48 KiB must be asked for per kernel. The
 * head size is not known here: 256 floats of room for it (HS <= 256). */
bool cu_attention_reserve(cuda_state *s, int max_t) {
    size_t need = bwd_kv_shm(max_t, 256);
    if (need <= 48 * 1024) return true;
    if (need > (size_t)s->prop.sharedMemPerBlockOptin)
        return tg_cuda_fail(s, __FILE__, __LINE__, "attention reserve",
                            "the context is too long for the scores of one row in shared memory");
    int n = (int)need;
    return CU_OK(s, cudaFuncSetAttribute(attention_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n)) &&
           CU_OK(s, cudaFuncSetAttribute(attention_backward_q_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         n)) &&
           CU_OK(s, cudaFuncSetAttribute(attention_backward_kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         n)) &&
           CU_OK(s, cudaFuncSetAttribute(attention_kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n));
}
