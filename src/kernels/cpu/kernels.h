/*
 * kernels.h — the CPU kernels of the GPT-2 model, fp32, forward and backward
 * of each op side by side (llm.c style: outputs first, then inputs, then
 * sizes). Backward kernels ACCUMULATE (+=) into the d-prefixed buffers, so a
 * caller zeroes them once per step and gradient-accumulation slices add up.
 * Nothing here allocates: every scratch buffer is passed in.
 *
 * Dimension legend:
 *   B batch, T time, C channels, NH heads, HS = C/NH head size,
 *   N rows of a matrix (usually B*T), OC output channels,
 *   V true vocabulary, Vp padded vocabulary (row stride of logits).
 *
 * Layouts: weights are Hugging Face Conv1D [in, out] (C, OC), so
 * matmul is out = inp @ weight + bias with no transpose. The tied LM head
 * uses wte (Vp, C), so logits = x @ wte^T (the _nt variants). The matmul
 * kernels take `bf16`: false for fp32, true for bf16 multiplies (tg_gemm).
 *
 * Threading: OpenMP inside each kernel; matrix multiplies go through
 * tg_gemm (oneDNN or OpenBLAS, both on the OpenMP runtime: one thread
 * pool). Every kernel may be called from outside a parallel region only.
 */
#ifndef TG_KERNELS_CPU_H
#define TG_KERNELS_CPU_H

#include "kernels/cpu/variant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

/* ---------------------------------------------------------- GEMM
 * C (M, N) = alpha op(A) op(B) + beta C, row-major, cblas_sgemm's contract
 * (op(A) is M x K, op(B) is K x N). fp32 goes through oneDNN's dnnl_sgemm
 * where the build found oneDNN (it has AVX-512 kernels where Debian's
 * OpenBLAS may fall back to AVX2 ones; the figures are in bench/README.md),
 * else cblas_sgemm (also with TG_BLAS=openblas in the environment); bf16
 * through tg_gemm_bf16 (inputs rounded to bf16, fp32 sums).
 * Called inside an OpenMP parallel region it runs on the calling thread. */
void tg_gemm(bool bf16, bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* ---------------------------------------------------------- embedding
 * out[b,t,:] = wte[inp[b,t], :] + wpe[pos[b,t], :]
 * PyTorch: wte(idx) + wpe(pos). pos NULL means pos[b,t] = t. */
void tg_encoder_forward(float *out, const int32_t *inp, const int32_t *pos, const float *wte, const float *wpe,
                        int B, int T, int C);
/* dwte[inp[b,t]] += dout[b,t]; dwpe[pos[b,t]] += dout[b,t]. Deterministic
 * (no atomics): rows are partitioned over threads by channel. */
void tg_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, const int32_t *pos, int B,
                         int T, int C);

/* ---------------------------------------------------------- LayerNorm
 * out = (inp - mean) * rstd * weight + bias over the last dim (N rows of C).
 * PyTorch: F.layer_norm(inp, (C,), weight, bias, eps). mean/rstd (N) are saved
 * for backward; either may be NULL (inference). */
void tg_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, size_t N, int C, float eps);
void tg_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, size_t N, int C);

/* ---------------------------------------------------------- matmul
 * out (N, OC) = inp (N, C) @ weight (C, OC) + bias (OC); bias may be NULL.
 * PyTorch: torch.addmm(bias, inp, weight) (HF Conv1D). Through tg_gemm. */
void tg_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C, int OC,
                       bool bf16);
/* out = residual + inp @ weight + bias: a projection and the residual add
 * after it in one pass (the GEMM accumulates onto residual + bias). */
void tg_matmul_forward_residual(float *out, const float *residual, const float *inp, const float *weight,
                                const float *bias, size_t N, int C, int OC, bool bf16);
/* dinp += dout @ weight^T ; dweight += inp^T @ dout ; dbias += sum_rows(dout).
 * dinp, dbias may be NULL (not needed). */
void tg_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, size_t N, int C, int OC, bool bf16);
/* The same with dinp overwritten (dinp = dout @ weight^T), dweight and dbias
 * accumulated: saves zeroing the activation gradient first. */
void tg_matmul_backward_set(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, size_t N, int C, int OC, bool bf16);
/* Reference versions: plain loops (in double accumulation), for tests. */
void tg_matmul_forward_naive(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C,
                             int OC);
void tg_matmul_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, size_t N, int C, int OC);

/* out (N, OC) = inp (N, C) @ weight^T with weight (OC, C): the tied LM head,
 * logits = x @ wte^T. PyTorch: F.linear(inp, weight). */
void tg_matmul_forward_nt(float *out, const float *inp, const float *weight, size_t N, int C, int OC, bool bf16);
/* dinp += dout @ weight ; dweight += dout^T @ inp. */
void tg_matmul_backward_nt(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           size_t N, int C, int OC, bool bf16);

/* ---------------------------------------------------------- GELU (tanh)
 * out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * PyTorch: F.gelu(x, approximate="tanh") (HF "gelu_new"). */
void tg_gelu_forward(float *out, const float *inp, size_t N);
/* dinp += gelu'(inp) * dout. */
void tg_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);
/* d = gelu'(inp) * d in place (the model's backward: no separate buffer). */
void tg_gelu_backward_inplace(float *d, const float *inp, size_t N);

/* ---------------------------------------------------------- residual
 * out = a + b. Backward: da += dout, db += dout. */
void tg_residual_forward(float *out, const float *a, const float *b, size_t N);
void tg_residual_backward(float *da, float *db, const float *dout, size_t N);

/* ---------------------------------------------------------- attention
 * Causal multi-head self-attention over a fused qkv (B, T, 3C) laid out as
 * [q | k | v], each C = NH*HS, heads contiguous within each (HF GPT-2 split).
 *   att = softmax(mask(q k^T / sqrt(HS)))   (B, NH, T, T), saved for backward
 *   out = att v, heads re-joined            (B, T, C)
 * PyTorch: F.scaled_dot_product_attention(q, k, v, attn_mask) with the
 * causal mask. run_start (B, T), when not NULL, restricts row t to keys in
 * [run_start[b,t], t] (packed sequences: attention stays inside a segment);
 * NULL is plain causal (run_start = 0). Masked entries of att are exactly 0.
 * Per (b, head) batched GEMMs; att must hold B*NH*T*T floats. */
void tg_attention_forward(float *out, float *att, const float *qkv, const int32_t *run_start, int B, int T, int C,
                          int NH);
/* dqkv += d(out)/d(qkv) . dout. scratch must hold tg_attention_scratch_floats. */
void tg_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const int32_t *run_start, int B, int T, int C, int NH);
size_t tg_attention_scratch_floats(int T, int n_threads);
/* Reference: explicit loops per (b, t, head), same outputs, for tests. */
void tg_attention_forward_naive(float *out, float *att, const float *qkv, const int32_t *run_start, int B, int T,
                                int C, int NH);
void tg_attention_backward_naive(float *dqkv, const float *dout, const float *qkv, const float *att,
                                 const int32_t *run_start, int B, int T, int C, int NH);

/* ---------------------------------------------------------- KV-cached attention
 * (attention_kv.c) The rows of one decode step against the KV cache: see
 * tg_step_rows and the kv_store / attention_kv ops in kernels/backend.h.
 * scratch holds tg_attention_kv_scratch_floats(max_ctx, threads) floats. */
#define TG_ATT_QBLOCK 128 /* query rows per prefill attention block */
void tg_kv_store(tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows);
void tg_attention_kv(float *out, const float *qkv, const tg_kv_cache *kv, int l, const tg_step_rows *rows,
                     float *scratch);
size_t tg_attention_kv_scratch_floats(int max_ctx, int n_threads);
void tg_attention_kv_naive(float *out, const float *qkv, const tg_kv_cache *kv, int l, const tg_step_rows *rows);

/* ---------------------------------------------------------- softmax & loss
 * probs[n, v] = softmax(logits[n, :V])[v] for v < V, 0 for V <= v < Vp.
 * PyTorch: F.softmax(logits[..., :V], -1). (Inference helper.) */
void tg_softmax_forward(float *probs, const float *logits, size_t N, int V, int Vp);

/* Fused softmax cross-entropy with per-token weights over N rows of logits
 * (row stride Vp, only the first V columns are real; columns >= V are set
 * to -inf so nothing can sample or learn them).
 *   losses[n] = logsumexp(logits[n, :V]) - logits[n, target[n]]
 *   lse[n]    = logsumexp(logits[n, :V]) (saved for backward)
 * Returns sum_n w[n] * losses[n] (w NULL: all 1) in double; *wsum = sum w.
 * PyTorch: (F.cross_entropy(logits[:, :V], t, reduction="none") * w).sum(). */
double tg_crossentropy_forward(float *losses, float *lse, float *logits, const int32_t *targets,
                               const float *weights, size_t N, int V, int Vp, double *wsum);
/* Overwrites logits with d(scale * sum w*loss)/d(logits) in place:
 *   dlogits[n, v] = scale * w[n] * (softmax[n, v] - [v == target[n]]), 0 for v >= V. */
void tg_crossentropy_backward_inplace(float *logits, const float *lse, const int32_t *targets,
                                      const float *weights, float scale, size_t N, int V, int Vp);

/* logits[n, v] = -inf for V <= v < Vp. */
void tg_mask_padded_vocab(float *logits, size_t N, int V, int Vp);

/* ---------------------------------------------------------- optimizer
 * (optim_kernels.c) torch.optim.AdamW's single-tensor arithmetic over n
 * values: w = w*decay - step_size * m/(sqrt(v)/bc2_sqrt + eps) after the
 * moment updates; the squared L2 norm summed in double (deterministic for a
 * thread count); x *= s. */
void tg_adamw_kernel(float *w, const float *g, float *m1, float *v2, size_t n, float decay, float step_size,
                     float beta1, float beta2, float bc2_sqrt, float eps);
double tg_sum_squares(const float *x, size_t n);
void tg_scale(float *x, float s, size_t n);

/* ---------------------------------------------------------- the backend
 * (backend_cpu.c) A CPU backend over this copy of the kernels (one copy per
 * instruction set: variant.h). */
int tg_cpu_backend_fill(tg_backend **out);

#endif /* TG_KERNELS_CPU_H */
