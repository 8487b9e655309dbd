/*
 * backend.h — the seam between the model and the hardware: device memory
 * and the model's ops as one table per backend (docs/architecture.md,
 * "The backend interface").
 *
 * The model (src/model/model.c) is written once against this table; a
 * backend (src/kernels/cpu today, src/kernels/cuda next) fills it. Every
 * pointer an op takes is device memory of that backend (for the CPU backend,
 * host memory). Ops have the names and argument order of the CPU kernels
 * (src/kernels/cpu/kernels.h): outputs first, then inputs, then sizes;
 * backward ops ACCUMULATE (+=) into d-prefixed buffers unless named _set.
 *
 * A weight matrix is a tg_weight handle: the caller gives the fp32 master
 * (K, N) in Hugging Face's [in, out] layout (or (N, K) when transposed, the
 * tied LM head) and a precision; the backend may keep its own copy in its
 * own layout (packed panels, bf16, int8) and the caller never looks inside.
 * A training handle reads the master at every call (the master changes each
 * step); an inference handle is a snapshot taken at prepare time.
 *
 * Precision is a tg_dtype carried by the weight, never a per-call flag.
 * Thread counts, scratch buffers and kernel variants are the backend's own
 * business: the model only says, once, how large a step can get (reserve).
 *
 * Dimension legend: B batch, T time, C channels, NH heads, HS = C/NH, N rows
 * (B*T or the rows of a decode step), OC output channels, V vocabulary, Vp
 * padded vocabulary, S cache slots, L layers.
 */
#ifndef TG_KERNELS_BACKEND_H
#define TG_KERNELS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h"

typedef struct tg_backend tg_backend;

/* A weight matrix y = x @ W (+ bias): W is (K, N); K inputs, N outputs. */
typedef struct {
    const float *master; /* fp32 (K, N), or (N, K) when transposed; device memory */
    int K, N;
    bool transposed;     /* master is (N, K): the tied LM head, logits = x @ wte^T */
    tg_dtype dtype;      /* precision of the products (sums are fp32 in every dtype) */
    bool inference;      /* a snapshot in the backend's own layout */
    void *impl;          /* the backend's own layout, or NULL */
} tg_weight;

/* The KV cache of the generation engine: for each slot, layer and head, keys
 * and values of positions 0..max_ctx-1, HS floats each. Device memory,
 * allocated through the backend. */
typedef struct {
    float *k, *v;        /* (S, L, NH, max_ctx, HS) */
    int S, L, NH, HS, max_ctx;
} tg_kv_cache;

/* The rows of one decode step: rows [0, n_prefill) are prefill groups (each
 * a run of consecutive positions of one slot, the whole prompt), the rest are
 * single decode rows, one per slot. Host memory (small). */
typedef struct {
    const int32_t *tok, *pos, *slot; /* (n) token id, position, cache slot of each row */
    int n;
    int n_prefill;
    const int *grp_start, *grp_len;  /* (n_grp) prefill groups */
    int n_grp;
} tg_step_rows;

struct tg_backend {
    const char *name;      /* "cpu", "cuda" */
    const char *variant;   /* the kernels in use ("avx512+bf16", ...) */
    void *impl;            /* the backend's own state */

    void (*destroy)(tg_backend *be);

    /* ---- device memory */
    void *(*alloc)(tg_backend *be, size_t bytes, const char *what); /* zeroed; NULL + tg_error on failure */
    void (*free)(tg_backend *be, void *p);
    void (*to_device)(tg_backend *be, void *dst, const void *host, size_t bytes);
    void (*to_host)(tg_backend *be, void *host, const void *src, size_t bytes);
    void (*copy)(tg_backend *be, void *dst, const void *src, size_t bytes); /* device to device */
    void (*fill)(tg_backend *be, float *dst, float value, size_t n);

    /* Sizes the backend's scratch for steps of up to max_rows rows of width
     * up to max_width (4C), attention over up to max_t keys. Called before
     * the first step; steps allocate nothing. */
    int (*reserve)(tg_backend *be, size_t max_rows, int max_width, int max_t);

    /* ---- weights */
    int (*weight_prepare)(tg_backend *be, tg_weight *w);
    void (*weight_release)(tg_backend *be, tg_weight *w);

    /* ---- embedding: out[n] = wte[inp[n]] + wpe[pos[n]] (pos NULL: n % T) */
    void (*encoder_forward)(tg_backend *be, float *out, const int32_t *inp, const int32_t *pos, const float *wte,
                            const float *wpe, int B, int T, int C);
    void (*encoder_backward)(tg_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *inp,
                             const int32_t *pos, int B, int T, int C);

    /* ---- LayerNorm over C; mean, rstd may be NULL (inference) */
    void (*layernorm_forward)(tg_backend *be, float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, size_t N, int C, float eps);
    void (*layernorm_backward)(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd, size_t N,
                               int C);

    /* ---- matmul: out (N, w->N) = inp (N, w->K) @ W + bias (bias may be NULL) */
    void (*matmul_forward)(tg_backend *be, float *out, const float *inp, const tg_weight *w, const float *bias,
                           size_t N);
    /* out = residual + inp @ W + bias; out may equal residual */
    void (*matmul_forward_residual)(tg_backend *be, float *out, const float *residual, const float *inp,
                                    const tg_weight *w, const float *bias, size_t N);
    /* dinp += dout @ W^T; dweight += d/dW (laid out like w->master); dbias += colsum(dout).
     * dinp and dbias may be NULL. */
    void (*matmul_backward)(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const tg_weight *w, size_t N);
    /* the same with dinp overwritten instead of accumulated */
    void (*matmul_backward_set)(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const tg_weight *w, size_t N);

    /* ---- GELU (tanh form): forward may run in place (out == inp) */
    void (*gelu_forward)(tg_backend *be, float *out, const float *inp, size_t N);
    void (*gelu_backward_inplace)(tg_backend *be, float *d, const float *inp, size_t N);

    /* ---- causal attention over a fused qkv (B, T, 3C); att (B, NH, T, T) saved.
     * run_start (B, T) or NULL confines row t to keys [run_start, t]. */
    void (*attention_forward)(tg_backend *be, float *out, float *att, const float *qkv, const int32_t *run_start,
                              int B, int T, int C, int NH);
    void (*attention_backward)(tg_backend *be, float *dqkv, const float *dout, const float *qkv, const float *att,
                               const int32_t *run_start, int B, int T, int C, int NH);
    /* ---- KV-cached attention of one decode step, layer l: first the rows' k
     * and v go into the cache at (slot, pos), then each row attends to keys
     * 0..pos of its slot. Every row's result depends only on its own slot. */
    void (*kv_store)(tg_backend *be, tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows);
    void (*attention_kv)(tg_backend *be, float *out, const float *qkv, const tg_kv_cache *kv, int l,
                         const tg_step_rows *rows);

    /* ---- fused softmax cross-entropy (columns >= V set to -inf) */
    double (*crossentropy_forward)(tg_backend *be, float *losses, float *lse, float *logits, const int32_t *targets,
                                   const float *weights, size_t N, int V, int Vp, double *wsum);
    void (*crossentropy_backward_inplace)(tg_backend *be, float *logits, const float *lse, const int32_t *targets,
                                          const float *weights, float scale, size_t N, int V, int Vp);
    /* logits[n, v] = -inf for V <= v < Vp (inference: padded ids are never predicted) */
    void (*mask_padded_vocab)(tg_backend *be, float *logits, size_t N, int V, int Vp);

    /* ---- optimizer: one AdamW update of n values (torch.optim.AdamW's
     * arithmetic; decay = 1 - lr*wd or 1), and the squared L2 norm of n
     * values summed in double, and x *= s. */
    void (*adamw_update)(tg_backend *be, float *w, const float *g, float *m1, float *v2, size_t n, float decay,
                         float step_size, float beta1, float beta2, float bc2_sqrt, float eps);
    double (*sum_squares)(tg_backend *be, const float *x, size_t n);
    void (*scale)(tg_backend *be, float *x, float s, size_t n);

    /* ---- decode steps: the backend may tune itself around them (the CPU
     * backend picks one thread or all by measurement; results never depend
     * on it). May be NULL. */
    void (*step_begin)(tg_backend *be, int rows, bool decode_only);
    void (*step_end)(tg_backend *be);
    int (*threads)(tg_backend *be);               /* workers a step uses now; 1 where meaningless */
    void (*set_adaptive)(tg_backend *be, bool on);

    /* ---- errors: ops are void, so a device backend records a failure
     * (the first one, with file, line and the library's reason), turns the
     * later ops into no-ops, and reports it here; status waits for the
     * device and returns TG_OK or TG_ERR_RUNTIME with tg_error set. The
     * model calls it (tg_backend_status) at the end of every forward,
     * backward, update and decode step. May be NULL: the CPU's ops cannot
     * fail (docs/cuda.md, "Errors"). */
    int (*status)(tg_backend *be);
};

/* The CPU backend over the best kernel family this CPU runs, or TG_CPU's
 * (src/kernels/cpu/cpu_select.c); _family_new over a named one (tests). */
int tg_backend_cpu_new(tg_backend **out);
int tg_backend_cpu_family_new(tg_backend **out, const char *family);
/* A backend by name ("cpu", "cpu:FAMILY" with FAMILY generic, avx2, avx512 or
 * avx512bf16, "cuda", "cuda:N"; NULL: tg_default_device()); TG_ERR_INPUT
 * naming the choices, or why the device is missing, otherwise. */
int tg_backend_new(tg_backend **out, const char *name);
void tg_backend_free(tg_backend *be);
/* be->status(be), or TG_OK for a backend without one. */
int tg_backend_status(tg_backend *be);

#endif /* TG_KERNELS_BACKEND_H */
