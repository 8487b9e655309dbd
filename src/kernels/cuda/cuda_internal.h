/*
 * cuda_internal.h — what the CUDA backend's three files share: the backend
 * state, the error checks, and the kernel launchers of kernels.cu and
 * attention.cu that backend_cuda.cu's op table calls.
 *
 * Errors (docs/cuda.md, "Errors"). Every CUDA runtime and cuBLASLt call goes
 * through CU_OK / LT_OK, which on failure record the first error of the run
 * in the state (file, line, the call, the library's error string) and in
 * tg_error. Ops are void, so a failure inside one cannot be returned at once:
 * it is sticky instead. Once an error is recorded every later op does
 * nothing, to_host zero-fills, the value-returning ops (crossentropy_forward,
 * sum_squares) return NaN, and status() — which the model calls at the end
 * of every forward, backward, update and decode step — returns
 * TG_ERR_RUNTIME with the recorded message. Kernel launches are checked with
 * cudaGetLastError right after the launch (a bad configuration); faults
 * while a kernel runs surface at the next synchronising call (to_host,
 * status), which is then the one recorded.
 *
 * Nothing in this folder has run on a GPU yet (see docs/cuda.md): it is
 * compiled and linked on every build that finds nvcc.
 */
#ifndef TG_KERNELS_CUDA_INTERNAL_H
#define TG_KERNELS_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" { /* C headers without their own guards */
#include "core/core.h"
#include "kernels/backend.h"
}

typedef struct lt_plan lt_plan;

typedef struct {
    int device;
    cudaDeviceProp prop;
    cudaStream_t stream;       /* every op and copy, in order (docs/cuda.md, "Streams") */
    cublasLtHandle_t lt;
    void *lt_ws;               /* cuBLASLt workspace */
    size_t lt_ws_bytes;
    int err;                   /* TG_OK, or the first error's code: every op is then a no-op */
    char errmsg[512];
    char variant[320];         /* "cublasLt, sm_XY (device name)": the name is up to 256 bytes */
    /* scratch, sized by reserve and weight_prepare only (never in a step) */
    size_t max_rows;           /* rows of the largest step (reserve) */
    int max_width;             /* widest activation row (reserve) */
    int max_t;                 /* longest attention (reserve) */
    size_t max_wdim;           /* widest weight side prepared so far */
    __nv_bfloat16 *bf_a, *bf_b; /* bf16 copies of a GEMM's activation operands */
    size_t bf_a_n, bf_b_n;
    __nv_bfloat16 *bf_w;       /* bf16 copy of a training weight's master */
    size_t bf_w_n;
    float *part;               /* column-sum partials (TG_CU_COL_CHUNKS x widest row) */
    size_t part_n;
    float *attd;               /* attention backward: per (b, head, t) row term */
    size_t attd_n;
    double *dred;              /* per-row doubles of the loss reduction (2 x max_rows) */
    size_t dred_n;
    double *red;               /* reduction results on the device (a few doubles) */
    double *red_host;          /* pinned host copy of red */
    int32_t *rows_i;           /* a decode step's pos and slot arrays on the device (2 x rows_n) */
    size_t rows_cap, rows_n;
    const tg_step_rows *rows_last; /* the rows rows_i holds (see cu_kv_store) */
    int rows_last_n;
    struct lt_plan *plans;     /* cuBLASLt algorithms by GEMM (backend_cuda.cu), TG_CU_LT_PLANS */
    int n_plans, next_plan;
} cuda_state;

#define TG_CU_LT_PLANS 128

#define TG_CU_COL_CHUNKS 64    /* row chunks of the deterministic column sums */
#define TG_CU_RED_BLOCKS 256   /* blocks of the deterministic sum of squares */

/* Records the first error (and tg_error_set); returns false. */
bool tg_cuda_fail(cuda_state *s, const char *file, int line, const char *call, const char *why);
static inline bool tg_cu_ok(cuda_state *s, cudaError_t e, const char *call, const char *file, int line) {
    return e == cudaSuccess || tg_cuda_fail(s, file, line, call, cudaGetErrorString(e));
}
static inline bool tg_lt_ok(cuda_state *s, cublasStatus_t e, const char *call, const char *file, int line) {
    return e == CUBLAS_STATUS_SUCCESS || tg_cuda_fail(s, file, line, call, cublasLtGetStatusString(e));
}
#define CU_OK(s, call) tg_cu_ok((s), (call), #call, __FILE__, __LINE__)
#define LT_OK(s, call) tg_lt_ok((s), (call), #call, __FILE__, __LINE__)
/* after a <<<...>>> launch: a bad configuration is reported here */
#define LAUNCHED(s, name) tg_cu_ok((s), cudaGetLastError(), name, __FILE__, __LINE__)
/* a step larger than reserve sized the scratch for */
#define NEED(s, cond, what)                                                                        \
    ((cond) || tg_cuda_fail((s), __FILE__, __LINE__, what, "the step is larger than reserve() sized " \
                                                           "the scratch for"))

/* ---- block reductions (device code)
 * Sum (or max) over a block: shuffles within each warp, then every thread
 * adds the warp results in order. sh holds 32 values; blockDim.x is a
 * multiple of 32. Deterministic for a block size. */
template <typename F> static __device__ F warp_sum(F v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename F> static __device__ F block_sum(F v, F *sh) {
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    F t = 0;
    for (unsigned w = 0; w < blockDim.x / 32; w++) t += sh[w];
    return t;
}
static __device__ float block_max(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = -INFINITY;
    for (unsigned w = 0; w < blockDim.x / 32; w++) t = fmaxf(t, sh[w]);
    return t;
}

/* ---- kernels.cu: row-wise ops, loss, optimizer (arguments as in backend.h) */
void cu_fill(cuda_state *s, float *dst, float value, size_t n);
void cu_to_bf16(cuda_state *s, __nv_bfloat16 *dst, const float *src, size_t n);
void cu_add_bias(cuda_state *s, float *out, const float *bias, size_t N, int OC);
/* dsum[c] += sum_n dout[n, c] (xhat = (inp - mean) * rstd times dout when inp is given), fixed order */
void cu_colsum(cuda_state *s, float *dsum, const float *dout, const float *inp, const float *mean,
               const float *rstd, size_t N, int C);
void cu_encoder_forward(cuda_state *s, float *out, const int32_t *inp, const int32_t *pos, const float *wte,
                        const float *wpe, int B, int T, int C);
void cu_encoder_backward(cuda_state *s, float *dwte, float *dwpe, const float *dout, const int32_t *inp,
                         const int32_t *pos, int B, int T, int C);
void cu_layernorm_forward(cuda_state *s, float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, size_t N, int C, float eps);
void cu_layernorm_backward(cuda_state *s, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd, size_t N,
                           int C);
void cu_gelu_forward(cuda_state *s, float *out, const float *inp, size_t N);
void cu_gelu_backward_inplace(cuda_state *s, float *d, const float *inp, size_t N);
double cu_crossentropy_forward(cuda_state *s, float *losses, float *lse, float *logits, const int32_t *targets,
                               const float *weights, size_t N, int V, int Vp, double *wsum);
void cu_crossentropy_backward_inplace(cuda_state *s, float *logits, const float *lse, const int32_t *targets,
                                      const float *weights, float scale, size_t N, int V, int Vp);
void cu_mask_padded_vocab(cuda_state *s, float *logits, size_t N, int V, int Vp);
void cu_adamw_update(cuda_state *s, float *w, const float *g, float *m1, float *v2, size_t n, float decay,
                     float step_size, float beta1, float beta2, float bc2_sqrt, float eps);
double cu_sum_squares(cuda_state *s, const float *x, size_t n);
void cu_scale(cuda_state *s, float *x, float sc, size_t n);

/* ---- attention.cu */
void cu_attention_forward(cuda_state *s, float *out, float *att, const float *qkv, const int32_t *run_start, int B,
                          int T, int C, int NH);
void cu_attention_backward(cuda_state *s, float *dqkv, const float *dout, const float *qkv, const float *att,
                           const int32_t *run_start, int B, int T, int C, int NH);
void cu_kv_store(cuda_state *s, tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows);
void cu_attention_kv(cuda_state *s, float *out, const float *qkv, const tg_kv_cache *kv, int l,
                     const tg_step_rows *rows);
/* dynamic shared memory the attention kernels need for max_t keys; sets the
 * kernels' limits (reserve calls it) */
bool cu_attention_reserve(cuda_state *s, int max_t);

#endif /* TG_KERNELS_CUDA_INTERNAL_H */
