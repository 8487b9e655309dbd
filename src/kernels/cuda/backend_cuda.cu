/*
 * backend_cuda.cu — the CUDA backend: backend.h's op table on one NVIDIA
 * GPU. Device memory is cudaMalloc'd (alloc, reserve and weight_prepare
 * only: nothing is allocated inside a step); the matrix multiplies go
 * through cuBLASLt; every other op is a kernel of kernels.cu or attention.cu.
 *
 * Matrix multiplies. Row-major y (N, OC) = x (N, K) @ W (K, OC) is, read
 * column-major, y^T = W^T x^T: cuBLASLt gets W as its A and x as its B with
 * no transposes, and the transposed (tied LM head) weight, stored (OC, K),
 * as A with op T. Precision is the weight's dtype:
 *   TG_DTYPE_FP32: fp32 inputs, CUBLAS_COMPUTE_32F (TF32 off: the exactness mode);
 *   TG_DTYPE_BF16: the operands rounded to bf16 (round to nearest even) into
 *     reserve-sized scratch, fp32 accumulation and fp32 output.
 * The bias is a cuBLASLt epilogue where cuBLASLt offers one for the shapes
 * and alignment, else a separate add; the residual is the C operand with
 * beta = 1 (out may equal residual). Backward accumulates with beta = 1;
 * dbias is a deterministic column sum. An inference handle holds a snapshot
 * of its master (bf16 or fp32) taken at prepare time; a training handle
 * reads (and for bf16 rounds) the master at every call.
 *
 * Streams: one compute stream carries every op and every host copy, in
 * program order, so no op needs an event; the data-parallel layer adds its
 * own communication stream. Errors: cuda_internal.h (sticky, returned by
 * status()). Never run on a GPU: see docs/cuda.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/cuda_internal.h"

/* The state, with its device made current for the calling thread: the
 * runtime's current device is per thread, and a server's scheduler thread
 * is not the one that created the backend (cudaSetDevice to the current
 * device is a thread-local check). */
static cuda_state *st(tg_backend *be) {
    cuda_state *s = (cuda_state *)be->impl;
    if (!s->err) CU_OK(s, cudaSetDevice(s->device));
    return s;
}

bool tg_cuda_fail(cuda_state *s, const char *file, int line, const char *call, const char *why) {
    if (!s->err) {
        const char *base = strrchr(file, '/');
        snprintf(s->errmsg, sizeof s->errmsg, "CUDA (device %d) %s:%d: %s: %s", s->device, base ? base + 1 : file,
                 line, call, why);
        s->err = TG_ERR_RUNTIME;
    }
    tg_error_set(TG_ERR_RUNTIME, "%s", s->errmsg);
    return false;
}

/* ------------------------------------------------------------ memory */

static void *cu_alloc(tg_backend *be, size_t bytes, const char *what) {
    cuda_state *s = st(be);
    void *p = NULL;
    if (s->err) {
        tg_error_set(TG_ERR_RUNTIME, "%s", s->errmsg);
        return NULL;
    }
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is not sticky: the caller may go on without */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        tg_error_set(TG_ERR_RUNTIME, "CUDA device %d: cannot allocate %zu bytes for %s: %s (%zu of %zu MiB free)",
                     s->device, bytes, what, cudaGetErrorString(e), fr >> 20, tot >> 20);
        return NULL;
    }
    if (!CU_OK(s, cudaMemsetAsync(p, 0, bytes, s->stream))) {
        cudaFree(p);
        return NULL;
    }
    return p;
}
static void cu_free(tg_backend *be, void *p) {
    if (p) CU_OK(st(be), cudaFree(p));
}
static void cu_to_device(tg_backend *be, void *dst, const void *host, size_t bytes) {
    cuda_state *s = st(be);
    if (s->err || !bytes) return;
    /* from pageable memory this returns once the bytes are staged: the
     * caller may reuse host at once */
    CU_OK(s, cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, s->stream));
}
static void cu_to_host(tg_backend *be, void *host, const void *src, size_t bytes) {
    cuda_state *s = st(be);
    if (!bytes) return;
    if (!s->err && CU_OK(s, cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, s->stream)) &&
        CU_OK(s, cudaStreamSynchronize(s->stream)))
        return;
    memset(host, 0, bytes); /* never hand back uninitialised memory; status() has the error */
}
static void cu_copy(tg_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_state *s = st(be);
    if (s->err || !bytes || dst == src) return;
    CU_OK(s, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
}
static void cu_fill_op(tg_backend *be, float *dst, float value, size_t n) {
    cuda_state *s = st(be);
    if (value == 0.0f) {
        if (!s->err && n) CU_OK(s, cudaMemsetAsync(dst, 0, n * sizeof *dst, s->stream));
        return;
    }
    cu_fill(s, dst, value, n);
}

/* Grows a scratch buffer to n elements of size es (contents not kept). */
static bool grow(cuda_state *s, void **p, size_t *have, size_t n, size_t es, const char *what) {
    if (n <= *have) return true;
    if (*p && !CU_OK(s, cudaFree(*p))) return false;
    *p = NULL;
    *have = 0;
    if (cudaMalloc(p, n * es) != cudaSuccess) {
        (void)cudaGetLastError();
        *p = NULL;
        return tg_cuda_fail(s, __FILE__, __LINE__, what, "out of device memory for the step's scratch");
    }
    *have = n;
    return true;
}

/* bf16 operand scratch: rows x the widest side of anything multiplied */
static bool grow_bf16(cuda_state *s) {
    size_t w = (size_t)s->max_width > s->max_wdim ? (size_t)s->max_width : s->max_wdim;
    size_t n = s->max_rows * w;
    return grow(s, (void **)&s->bf_a, &s->bf_a_n, n, sizeof(__nv_bfloat16), "bf16 operand scratch") &&
           grow(s, (void **)&s->bf_b, &s->bf_b_n, n, sizeof(__nv_bfloat16), "bf16 operand scratch") &&
           grow(s, (void **)&s->part, &s->part_n, (size_t)TG_CU_COL_CHUNKS * w, sizeof(float), "column-sum scratch");
}

static int cu_reserve(tg_backend *be, size_t max_rows, int max_width, int max_t) {
    cuda_state *s = st(be);
    if (s->err) return tg_error_set(TG_ERR_RUNTIME, "%s", s->errmsg);
    if (max_rows > s->max_rows) s->max_rows = max_rows;
    if (max_width > s->max_width) s->max_width = max_width;
    if (max_t > s->max_t) s->max_t = max_t;
    /* attention backward's per-(b, head, t) term: B*T rows times NH <= C = max_width/4 heads */
    size_t heads = (size_t)(s->max_width / 4 > 0 ? s->max_width / 4 : 1);
    bool ok = grow_bf16(s) &&
              grow(s, (void **)&s->attd, &s->attd_n, s->max_rows * heads, sizeof(float), "attention scratch") &&
              grow(s, (void **)&s->dred, &s->dred_n, 2 * s->max_rows, sizeof(double), "loss scratch") &&
              grow(s, (void **)&s->rows_i, &s->rows_cap, 2 * s->max_rows, sizeof(int32_t), "step rows") &&
              cu_attention_reserve(s, s->max_t);
    s->rows_n = s->rows_cap / 2; /* rows_i holds pos, then slot */
    return ok ? TG_OK : TG_ERR_RUNTIME;
}

/* ------------------------------------------------------------ weights */

typedef struct {
    void *data; /* the snapshot: bf16 or fp32, the master's layout */
} cu_weight;

static int cu_weight_prepare(tg_backend *be, tg_weight *w) {
    cuda_state *s = st(be);
    w->impl = NULL;
    if (s->err) return tg_error_set(TG_ERR_RUNTIME, "%s", s->errmsg);
    size_t n = (size_t)w->K * w->N, side = (size_t)(w->K > w->N ? w->K : w->N);
    if (side > s->max_wdim) {
        s->max_wdim = side;
        if (!grow_bf16(s)) return TG_ERR_RUNTIME;
    }
    bool bf16 = w->dtype == TG_DTYPE_BF16;
    if (!w->inference) {
        if (bf16 && !grow(s, (void **)&s->bf_w, &s->bf_w_n, n, sizeof(__nv_bfloat16), "bf16 weight scratch"))
            return TG_ERR_RUNTIME;
        return TG_OK; /* the GEMMs read the master */
    }
    cu_weight *cw = (cu_weight *)calloc(1, sizeof *cw);
    if (!cw) return tg_error_set(TG_ERR_RUNTIME, "out of memory (weight handle)");
    size_t bytes = n * (bf16 ? sizeof(__nv_bfloat16) : sizeof(float));
    if (!CU_OK(s, cudaMalloc(&cw->data, bytes))) {
        free(cw);
        return TG_ERR_RUNTIME;
    }
    if (bf16) cu_to_bf16(s, (__nv_bfloat16 *)cw->data, w->master, n);
    else CU_OK(s, cudaMemcpyAsync(cw->data, w->master, bytes, cudaMemcpyDeviceToDevice, s->stream));
    w->impl = cw;
    return s->err ? TG_ERR_RUNTIME : TG_OK;
}

static void cu_weight_release(tg_backend *be, tg_weight *w) {
    cu_weight *cw = (cu_weight *)w->impl;
    if (!cw) return;
    CU_OK(st(be), cudaFree(cw->data));
    free(cw);
    w->impl = NULL;
}

/* The weight's operand for a GEMM: the snapshot, the master (fp32), or the
 * master rounded to bf16 now. NULL on error. */
static const void *weight_operand(cuda_state *s, const tg_weight *w) {
    if (w->impl) return ((cu_weight *)w->impl)->data;
    if (w->dtype != TG_DTYPE_BF16) return w->master;
    size_t n = (size_t)w->K * w->N;
    if (!NEED(s, n <= s->bf_w_n, "matmul (weight)")) return NULL;
    cu_to_bf16(s, s->bf_w, w->master, n);
    return s->err ? NULL : s->bf_w;
}

/* An activation operand (rows x cols fp32) in the weight's precision, in
 * scratch buffer which (0: bf_a, 1: bf_b). */
static const void *act_operand(cuda_state *s, const float *x, size_t rows, int cols, bool bf16, int which) {
    if (!bf16) return x;
    size_t n = rows * (size_t)cols;
    __nv_bfloat16 *dst = which ? s->bf_b : s->bf_a;
    if (!NEED(s, n <= (which ? s->bf_b_n : s->bf_a_n), "matmul (activations)")) return NULL;
    cu_to_bf16(s, dst, x, n);
    return s->err ? NULL : dst;
}

static uint32_t align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 4 && (a % al)) al >>= 1;
    return al;
}

/* A GEMM's plan: the shape, precision, transposes, operand alignment and
 * whether the bias goes in as an epilogue decide cuBLASLt's choice of
 * algorithm, so the heuristic (tens of microseconds) runs once per distinct
 * GEMM of the run, not once per call: a model has a dozen distinct shapes. */
typedef struct {
    int m, n, k, lda, ldb;
    uint32_t align[4];
    bool bf16, ta, tb, want_epi;
} lt_key;

struct lt_plan {
    lt_key key;
    bool epi;                  /* the bias epilogue is in the algorithm (else a separate add) */
    cublasLtMatmulAlgo_t algo;
};

static bool lt_op_desc(cuda_state *s, cublasLtMatmulDesc_t *op, bool ta, bool tb, const float *epi_bias) {
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (!LT_OK(s, cublasLtMatmulDescCreate(op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        !LT_OK(s, cublasLtMatmulDescSetAttribute(*op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa)) ||
        !LT_OK(s, cublasLtMatmulDescSetAttribute(*op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb)))
        return false;
    if (!epi_bias) return true;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    return LT_OK(s, cublasLtMatmulDescSetAttribute(*op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi)) &&
           LT_OK(s, cublasLtMatmulDescSetAttribute(*op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &epi_bias,
                                                   sizeof epi_bias));
}

/* The plan for key: cached, or found by the heuristic (with the epilogue
 * first when one is wanted, then without) and cached. NULL on error. */
static const lt_plan *lt_plan_for(cuda_state *s, const lt_key *key, const float *bias, cublasLtMatrixLayout_t la,
                                  cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc) {
    for (int i = 0; i < s->n_plans; i++)
        if (!memcmp(&s->plans[i].key, key, sizeof *key)) return &s->plans[i];
    lt_plan *pl = &s->plans[s->n_plans < TG_CU_LT_PLANS ? s->n_plans++ : (s->next_plan++ % TG_CU_LT_PLANS)];
    memset(pl, 0, sizeof *pl);
    memset(&pl->key, 0xff, sizeof pl->key); /* matches no GEMM until the plan is found */
    cublasLtMatmulPreference_t pref = NULL;
    if (!LT_OK(s, cublasLtMatmulPreferenceCreate(&pref)) ||
        !LT_OK(s, cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &s->lt_ws_bytes, sizeof s->lt_ws_bytes))) {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        return NULL;
    }
    /* the operands sit at float offsets in larger buffers: say how aligned they are */
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    bool ok = true;
    for (int i = 0; i < 4 && ok; i++)
        ok = LT_OK(s, cublasLtMatmulPreferenceSetAttribute(pref, which[i], &key->align[i], sizeof key->align[i]));
    int found = 0;
    for (int attempt = key->want_epi ? 0 : 1; ok && attempt < 2 && !found; attempt++) {
        cublasLtMatmulDesc_t op = NULL;
        ok = lt_op_desc(s, &op, key->ta, key->tb, attempt == 0 ? bias : NULL);
        cublasLtMatmulHeuristicResult_t heur;
        cublasStatus_t hs = ok ? cublasLtMatmulAlgoGetHeuristic(s->lt, op, la, lb, lc, lc, pref, 1, &heur, &found)
                               : CUBLAS_STATUS_SUCCESS;
        if (op) cublasLtMatmulDescDestroy(op);
        if (attempt == 0 && (hs != CUBLAS_STATUS_SUCCESS || !found)) {
            found = 0; /* no kernel with the epilogue for this shape: plain GEMM, then the add */
            continue;
        }
        ok = ok && LT_OK(s, hs);
        if (ok && found) pl->epi = attempt == 0, pl->algo = heur.algo;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    if (ok && !found) {
        char why[160];
        snprintf(why, sizeof why, "no cuBLASLt algorithm for m=%d n=%d k=%d lda=%d ldb=%d (%s)", key->m, key->n,
                 key->k, key->lda, key->ldb, key->bf16 ? "bf16" : "fp32");
        tg_cuda_fail(s, __FILE__, __LINE__, "cublasLtMatmulAlgoGetHeuristic", why);
    }
    if (!ok || !found) return NULL;
    pl->key = *key;
    return pl;
}

/* Column-major D (m, n) = op(A) op(B) [+ bias over rows] + beta C, ldd = m.
 * A is (m, k) after op, B (k, n) after op. C may equal D; C NULL is D. */
static void lt_gemm(cuda_state *s, bool bf16, bool ta, bool tb, int m, int n, int k, const void *A, int lda,
                    const void *B, int ldb, float beta, const float *C, float *D, const float *bias) {
    if (s->err || !m || !n) return;
    cudaDataType_t ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const float *Cp = C ? C : D;
    lt_key key;
    memset(&key, 0, sizeof key); /* padding too: keys are compared with memcmp */
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb;
    key.align[0] = align_of(A), key.align[1] = align_of(B), key.align[2] = align_of(Cp), key.align[3] = align_of(D);
    key.bf16 = bf16, key.ta = ta, key.tb = tb;
    key.want_epi = bias && align_of(bias) >= 16; /* the epilogue needs an aligned vector */
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    const lt_plan *pl = NULL;
    if (LT_OK(s, cublasLtMatrixLayoutCreate(&la, ab, ta ? k : m, ta ? m : k, lda)) &&
        LT_OK(s, cublasLtMatrixLayoutCreate(&lb, ab, tb ? n : k, tb ? k : n, ldb)) &&
        LT_OK(s, cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, m)) &&
        (pl = lt_plan_for(s, &key, bias, la, lb, lc)) && lt_op_desc(s, &op, ta, tb, pl->epi ? bias : NULL)) {
        const float alpha = 1.0f;
        if (LT_OK(s, cublasLtMatmul(s->lt, op, &alpha, A, la, B, lb, &beta, Cp, lc, D, lc, &pl->algo, s->lt_ws,
                                    s->lt_ws_bytes, s->stream)) &&
            bias && !pl->epi)
            cu_add_bias(s, D, bias, (size_t)n, m);
    }
    if (op) cublasLtMatmulDescDestroy(op);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
}

/* out (N, OC) = [residual +] inp (N, K) @ W + bias */
static void forward(cuda_state *s, float *out, const float *residual, const float *inp, const tg_weight *w,
                    const float *bias, size_t N) {
    if (s->err || !N) return;
    bool bf16 = w->dtype == TG_DTYPE_BF16;
    const void *W = weight_operand(s, w), *X = act_operand(s, inp, N, w->K, bf16, 0);
    if (!W || !X) return;
    /* W (K, OC) row-major is (OC, K) column-major, ld OC; transposed (OC, K) row-major is (K, OC), ld K.
     * The residual is cuBLASLt's C (beta 1), out its D: the same buffer or not. */
    lt_gemm(s, bf16, w->transposed, false, w->N, (int)N, w->K, W, w->transposed ? w->K : w->N, X, w->K,
            residual ? 1.0f : 0.0f, residual, out, bias);
}

static void cu_matmul_forward(tg_backend *be, float *out, const float *inp, const tg_weight *w, const float *bias,
                              size_t N) {
    forward(st(be), out, NULL, inp, w, bias, N);
}
static void cu_matmul_forward_residual(tg_backend *be, float *out, const float *residual, const float *inp,
                                       const tg_weight *w, const float *bias, size_t N) {
    forward(st(be), out, residual, inp, w, bias, N);
}

/* dinp (+)= dout @ W^T; dweight += (laid out like the master); dbias += colsum(dout) */
static void backward(cuda_state *s, float *dinp, bool set, float *dweight, float *dbias, const float *dout,
                     const float *inp, const tg_weight *w, size_t N) {
    if (s->err || !N) return;
    bool bf16 = w->dtype == TG_DTYPE_BF16;
    int K = w->K, OC = w->N, n = (int)N;
    const void *G = act_operand(s, dout, N, OC, bf16, 1);
    if (!G) return;
    if (dinp) {
        const void *W = weight_operand(s, w);
        if (!W) return;
        /* column-major dinp (K, N) = W' (K, OC) . dout (OC, N): W' is the (OC, K) ld-OC view
         * transposed, or the transposed master's (K, OC) ld-K view as is */
        lt_gemm(s, bf16, !w->transposed, false, K, n, OC, W, w->transposed ? K : OC, G, OC, set ? 0.0f : 1.0f, NULL,
                dinp, NULL);
    }
    if (dweight) {
        const void *X = act_operand(s, inp, N, K, bf16, 0);
        if (!X) return;
        if (w->transposed) /* dW (OC, K) row-major = (K, OC) col-major = inp (K, N) . dout^T (N, OC) */
            lt_gemm(s, bf16, false, true, K, OC, n, X, K, G, OC, 1.0f, NULL, dweight, NULL);
        else /* dW (K, OC) row-major = (OC, K) col-major = dout (OC, N) . inp^T (N, K) */
            lt_gemm(s, bf16, false, true, OC, K, n, G, OC, X, K, 1.0f, NULL, dweight, NULL);
    }
    if (dbias) cu_colsum(s, dbias, dout, NULL, NULL, NULL, N, OC);
}

static void cu_matmul_backward(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const tg_weight *w, size_t N) {
    backward(st(be), dinp, false, dweight, dbias, dout, inp, w, N);
}
static void cu_matmul_backward_set(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const tg_weight *w, size_t N) {
    backward(st(be), dinp, true, dweight, dbias, dout, inp, w, N);
}

/* ------------------------------------------------------------ the other ops: kernels.cu, attention.cu */

static void cu_encoder_forward_op(tg_backend *be, float *out, const int32_t *inp, const int32_t *pos,
                                  const float *wte, const float *wpe, int B, int T, int C) {
    cu_encoder_forward(st(be), out, inp, pos, wte, wpe, B, T, C);
}
static void cu_encoder_backward_op(tg_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *inp,
                                   const int32_t *pos, int B, int T, int C) {
    cu_encoder_backward(st(be), dwte, dwpe, dout, inp, pos, B, T, C);
}
static void cu_layernorm_forward_op(tg_backend *be, float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, size_t N, int C, float eps) {
    cu_layernorm_forward(st(be), out, mean, rstd, inp, weight, bias, N, C, eps);
}
static void cu_layernorm_backward_op(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, const float *mean, const float *rstd,
                                     size_t N, int C) {
    cu_layernorm_backward(st(be), dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
static void cu_gelu_forward_op(tg_backend *be, float *out, const float *inp, size_t N) {
    cu_gelu_forward(st(be), out, inp, N);
}
static void cu_gelu_backward_op(tg_backend *be, float *d, const float *inp, size_t N) {
    cu_gelu_backward_inplace(st(be), d, inp, N);
}
static void cu_attention_forward_op(tg_backend *be, float *out, float *att, const float *qkv,
                                    const int32_t *run_start, int B, int T, int C, int NH) {
    cu_attention_forward(st(be), out, att, qkv, run_start, B, T, C, NH);
}
static void cu_attention_backward_op(tg_backend *be, float *dqkv, const float *dout, const float *qkv,
                                     const float *att, const int32_t *run_start, int B, int T, int C, int NH) {
    cu_attention_backward(st(be), dqkv, dout, qkv, att, run_start, B, T, C, NH);
}
static void cu_kv_store_op(tg_backend *be, tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows) {
    cu_kv_store(st(be), kv, l, qkv, rows);
}
static void cu_attention_kv_op(tg_backend *be, float *out, const float *qkv, const tg_kv_cache *kv, int l,
                               const tg_step_rows *rows) {
    cu_attention_kv(st(be), out, qkv, kv, l, rows);
}
static double cu_crossentropy_forward_op(tg_backend *be, float *losses, float *lse, float *logits,
                                         const int32_t *targets, const float *weights, size_t N, int V, int Vp,
                                         double *wsum) {
    return cu_crossentropy_forward(st(be), losses, lse, logits, targets, weights, N, V, Vp, wsum);
}
static void cu_crossentropy_backward_op(tg_backend *be, float *logits, const float *lse, const int32_t *targets,
                                        const float *weights, float scale, size_t N, int V, int Vp) {
    cu_crossentropy_backward_inplace(st(be), logits, lse, targets, weights, scale, N, V, Vp);
}
static void cu_mask_padded_vocab_op(tg_backend *be, float *logits, size_t N, int V, int Vp) {
    cu_mask_padded_vocab(st(be), logits, N, V, Vp);
}
static void cu_adamw_update_op(tg_backend *be, float *w, const float *g, float *m1, float *v2, size_t n, float decay,
                               float step_size, float beta1, float beta2, float bc2_sqrt, float eps) {
    cu_adamw_update(st(be), w, g, m1, v2, n, decay, step_size, beta1, beta2, bc2_sqrt, eps);
}
static double cu_sum_squares_op(tg_backend *be, const float *x, size_t n) { return cu_sum_squares(st(be), x, n); }
static void cu_scale_op(tg_backend *be, float *x, float sc, size_t n) { cu_scale(st(be), x, sc, n); }
static int cu_threads(tg_backend *be) { return 1; }

/* Waits for the stream; the first error of the run, or TG_OK. */
static int cu_status(tg_backend *be) {
    cuda_state *s = st(be);
    if (!s->err) CU_OK(s, cudaStreamSynchronize(s->stream));
    if (!s->err) return TG_OK;
    return tg_error_set(TG_ERR_RUNTIME, "%s", s->errmsg);
}

/* ------------------------------------------------------------ the table */

static void cu_destroy(tg_backend *be) {
    cuda_state *s = (cuda_state *)be->impl;
    cudaSetDevice(s->device);
    if (s->stream) cudaStreamSynchronize(s->stream);
    void *bufs[] = {s->bf_a, s->bf_b, s->bf_w, s->part, s->attd, s->dred, s->red, s->rows_i, s->lt_ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) cudaFree(bufs[i]);
    if (s->red_host) cudaFreeHost(s->red_host);
    if (s->lt) cublasLtDestroy(s->lt);
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s->plans);
    free(s);
    free(be);
}

int tg_cuda_device_check(int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tg_error_set(TG_ERR_INPUT, "no CUDA device: %s", cudaGetErrorString(e));
    }
    if (count == 0) return tg_error_set(TG_ERR_INPUT, "no CUDA device: the driver reports none");
    if (device < 0 || device >= count)
        return tg_error_set(TG_ERR_INPUT, "no CUDA device %d: this machine has %d (cuda:0..cuda:%d)", device, count,
                            count - 1);
    return TG_OK;
}

int tg_backend_cuda_new(tg_backend **out, int device) {
    *out = NULL;
    TG_TRY(tg_cuda_device_check(device));
    tg_backend *be = (tg_backend *)calloc(1, sizeof *be);
    cuda_state *s = (cuda_state *)calloc(1, sizeof *s);
    if (!be || !s) {
        free(be);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory creating the CUDA backend");
    }
    s->device = device;
    be->impl = s;
    s->plans = (lt_plan *)calloc(TG_CU_LT_PLANS, sizeof *s->plans);
    if (!s->plans) {
        free(be);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory creating the CUDA backend");
    }
    s->lt_ws_bytes = 32u << 20; /* cuBLASLt's recommended workspace on Hopper */
    bool ok = CU_OK(s, cudaSetDevice(device)) && CU_OK(s, cudaGetDeviceProperties(&s->prop, device)) &&
              CU_OK(s, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) &&
              LT_OK(s, cublasLtCreate(&s->lt)) && CU_OK(s, cudaMalloc(&s->lt_ws, s->lt_ws_bytes)) &&
              CU_OK(s, cudaMalloc((void **)&s->red, (2 + TG_CU_RED_BLOCKS) * sizeof(double))) &&
              CU_OK(s, cudaMallocHost((void **)&s->red_host, 2 * sizeof(double)));
    if (ok && s->prop.major < 8) {
        tg_error_set(TG_ERR_INPUT, "CUDA device %d (%s) is sm_%d%d: this build needs sm_80 or newer", device,
                     s->prop.name, s->prop.major, s->prop.minor);
        cu_destroy(be);
        return TG_ERR_INPUT;
    }
    if (!ok) {
        int rc = s->err ? s->err : TG_ERR_RUNTIME;
        tg_error_set(rc, "%s", s->errmsg);
        cu_destroy(be);
        return rc;
    }
    snprintf(s->variant, sizeof s->variant, "cublasLt, sm_%d%d (%s)", s->prop.major, s->prop.minor, s->prop.name);
    be->name = "cuda";
    be->variant = s->variant;
    be->destroy = cu_destroy;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->to_device = cu_to_device;
    be->to_host = cu_to_host;
    be->copy = cu_copy;
    be->fill = cu_fill_op;
    be->reserve = cu_reserve;
    be->weight_prepare = cu_weight_prepare;
    be->weight_release = cu_weight_release;
    be->encoder_forward = cu_encoder_forward_op;
    be->encoder_backward = cu_encoder_backward_op;
    be->layernorm_forward = cu_layernorm_forward_op;
    be->layernorm_backward = cu_layernorm_backward_op;
    be->matmul_forward = cu_matmul_forward;
    be->matmul_forward_residual = cu_matmul_forward_residual;
    be->matmul_backward = cu_matmul_backward;
    be->matmul_backward_set = cu_matmul_backward_set;
    be->gelu_forward = cu_gelu_forward_op;
    be->gelu_backward_inplace = cu_gelu_backward_op;
    be->attention_forward = cu_attention_forward_op;
    be->attention_backward = cu_attention_backward_op;
    be->kv_store = cu_kv_store_op;
    be->attention_kv = cu_attention_kv_op;
    be->crossentropy_forward = cu_crossentropy_forward_op;
    be->crossentropy_backward_inplace = cu_crossentropy_backward_op;
    be->mask_padded_vocab = cu_mask_padded_vocab_op;
    be->adamw_update = cu_adamw_update_op;
    be->sum_squares = cu_sum_squares_op;
    be->scale = cu_scale_op;
    be->threads = cu_threads;
    be->status = cu_status;
    *out = be;
    return TG_OK;
}
