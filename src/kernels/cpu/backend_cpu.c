/*
 * backend_cpu.c — the CPU backend: the op table of kernels/backend.h filled
 * with the kernels of this folder, device memory = host memory.
 *
 * Weights: a training handle multiplies straight from the fp32 master
 * through tg_gemm (oneDNN/OpenBLAS for fp32, the bf16 GEMM for bf16); an
 * inference handle is repacked once into panels (packed.c, fp32 or bf16),
 * whose kernel gives every row the same bits whatever the other rows.
 *
 * This file is compiled once per instruction set (variant.h): each copy's
 * tg_cpu_backend_fill builds a backend over its own copy of the kernels, and
 * cpu_select.c picks the copy this CPU runs best.
 *
 * What the model never sees: the OpenMP thread count, the bf16 row scratch
 * of the packed kernel, the per-thread attention scratch (all sized by
 * reserve, before the first step), and the engine's thread tuning: on a busy
 * machine an OpenMP barrier waits for a descheduled thread, so every
 * probe_every decode-only steps one step runs with the other thread count
 * (one or all) right after one with the current; a clearly faster one (by
 * 20%) is kept. Results never depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/packed.h"

typedef struct {
    int n_threads;         /* the machine's (OpenMP's) count at creation */
    /* scratch, grown by reserve only */
    uint16_t *xb;          /* bf16 rows of the packed kernel */
    size_t xb_n;
    float *att;            /* attention scratch: backward (T*T a thread) and KV (QBLOCK*ctx a thread) */
    size_t att_n;
    void *q8;              /* int8 weights: the step's rows quantized */
    size_t q8_n;
    /* engine thread tuning (see the file comment) */
    int adaptive, nt_cur, nt_step, probe_every, since_probe, probe_phase, ref_rows, step_rows, saved_nt;
    bool step_decode_only;
    double ref_t, t0;
} cpu_state;

static cpu_state *st(tg_backend *be) { return be->impl; }

static int threads_now(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}


/* ------------------------------------------------------------ memory */

static void *cpu_alloc(tg_backend *be, size_t bytes, const char *what) {
    void *p = tg_alloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}
static void cpu_free(tg_backend *be, void *p) { tg_free(p); }
static void cpu_copy(tg_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_fill(tg_backend *be, float *dst, float value, size_t n) {
    if (value == 0.0f) {
        memset(dst, 0, n * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = value;
}

static int cpu_reserve(tg_backend *be, size_t max_rows, int max_width, int max_t) {
    cpu_state *s = st(be);
    size_t xb = max_rows * (size_t)max_width;
    if (xb > s->xb_n) {
        uint16_t *p = tg_alloc(xb * sizeof *p, "bf16 row scratch");
        if (!p) return TG_ERR_RUNTIME;
        tg_free(s->xb);
        s->xb = p;
        s->xb_n = xb;
    }
    int nt = threads_now() > s->n_threads ? threads_now() : s->n_threads;
    size_t q8 = tg_packed_int8_scratch_bytes((int)max_rows, max_width);
    if (q8 > s->q8_n) {
        void *p = tg_alloc(q8, "int8 row scratch");
        if (!p) return TG_ERR_RUNTIME;
        tg_free(s->q8);
        s->q8 = p;
        s->q8_n = q8;
    }
    size_t att = tg_attention_scratch_floats(max_t, nt);
    size_t kv = tg_attention_kv_scratch_floats(max_t, nt);
    if (kv > att) att = kv;
    if (att > s->att_n) {
        float *p = tg_alloc(att * sizeof *p, "attention scratch");
        if (!p) return TG_ERR_RUNTIME;
        tg_free(s->att);
        s->att = p;
        s->att_n = att;
    }
    return TG_OK;
}

/* ------------------------------------------------------------ weights */

static int cpu_weight_prepare(tg_backend *be, tg_weight *w) {
    w->impl = NULL;
    if (w->dtype == TG_DTYPE_INT8 && !w->inference)
        return tg_error_set(TG_ERR_INPUT, "int8 weights are for inference only (sample, chat, serve, bench generate)");
    if (!w->inference) return TG_OK; /* the GEMMs read the master */
    tg_packed_weight *pw = tg_alloc(sizeof *pw, "packed weight");
    if (!pw) return TG_ERR_RUNTIME;
    int rc = w->dtype == TG_DTYPE_INT8 ? tg_packed_int8_init(pw, w->master, w->K, w->N, w->transposed)
                                       : tg_packed_weight_init(pw, w->master, w->K, w->N, w->transposed, w->dtype);
    if (rc != TG_OK) {
        tg_free(pw);
        return rc;
    }
    w->impl = pw;
    return TG_OK;
}

static void cpu_weight_release(tg_backend *be, tg_weight *w) {
    if (!w->impl) return;
    tg_packed_weight_free(w->impl);
    tg_free(w->impl);
    w->impl = NULL;
}

/* ------------------------------------------------------------ ops */

static void cpu_encoder_forward(tg_backend *be, float *out, const int32_t *inp, const int32_t *pos, const float *wte,
                                const float *wpe, int B, int T, int C) {
    tg_encoder_forward(out, inp, pos, wte, wpe, B, T, C);
}
static void cpu_encoder_backward(tg_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *inp,
                                 const int32_t *pos, int B, int T, int C) {
    tg_encoder_backward(dwte, dwpe, dout, inp, pos, B, T, C);
}
static void cpu_layernorm_forward(tg_backend *be, float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, size_t N, int C, float eps) {
    tg_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}
static void cpu_layernorm_backward(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean, const float *rstd,
                                   size_t N, int C) {
    tg_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

static void packed(tg_backend *be, float *out, const float *inp, const tg_weight *w, const float *bias,
                   const float *res, size_t N) {
    cpu_state *s = st(be);
    if (w->dtype == TG_DTYPE_INT8) {
        TG_ASSERT(tg_packed_int8_scratch_bytes((int)N, w->K) <= s->q8_n); /* reserve was called */
        tg_packed_int8_matmul(out, w->N, inp, w->impl, bias, res, (int)N, s->q8, threads_now());
        return;
    }
    TG_ASSERT(w->dtype != TG_DTYPE_BF16 || N * (size_t)w->K <= s->xb_n); /* reserve was called */
    tg_packed_matmul(out, w->N, inp, w->impl, bias, res, (int)N, s->xb, threads_now());
}

static void cpu_matmul_forward(tg_backend *be, float *out, const float *inp, const tg_weight *w, const float *bias,
                               size_t N) {
    bool bf16 = w->dtype == TG_DTYPE_BF16;
    if (w->impl) {
        packed(be, out, inp, w, bias, NULL, N);
    } else if (w->transposed) {
        TG_ASSERT(!bias);
        tg_matmul_forward_nt(out, inp, w->master, N, w->K, w->N, bf16);
    } else {
        tg_matmul_forward(out, inp, w->master, bias, N, w->K, w->N, bf16);
    }
}

static void cpu_matmul_forward_residual(tg_backend *be, float *out, const float *residual, const float *inp,
                                        const tg_weight *w, const float *bias, size_t N) {
    if (w->impl) {
        packed(be, out, inp, w, bias, residual, N);
        return;
    }
    TG_ASSERT(!w->transposed);
    tg_matmul_forward_residual(out, residual, inp, w->master, bias, N, w->K, w->N, w->dtype == TG_DTYPE_BF16);
}

static void matmul_backward(float *dinp, bool set, float *dweight, float *dbias, const float *dout, const float *inp,
                            const tg_weight *w, size_t N) {
    bool bf16 = w->dtype == TG_DTYPE_BF16;
    if (w->transposed) { /* the tied LM head: no bias */
        TG_ASSERT(!dbias);
        if (dinp && set) memset(dinp, 0, N * (size_t)w->K * sizeof *dinp);
        tg_matmul_backward_nt(dinp, dweight, dout, inp, w->master, N, w->K, w->N, bf16);
    } else if (set) {
        tg_matmul_backward_set(dinp, dweight, dbias, dout, inp, w->master, N, w->K, w->N, bf16);
    } else {
        tg_matmul_backward(dinp, dweight, dbias, dout, inp, w->master, N, w->K, w->N, bf16);
    }
}

static void cpu_matmul_backward(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const tg_weight *w, size_t N) {
    matmul_backward(dinp, false, dweight, dbias, dout, inp, w, N);
}
static void cpu_matmul_backward_set(tg_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const tg_weight *w, size_t N) {
    matmul_backward(dinp, true, dweight, dbias, dout, inp, w, N);
}

static void cpu_gelu_forward(tg_backend *be, float *out, const float *inp, size_t N) { tg_gelu_forward(out, inp, N); }
static void cpu_gelu_backward_inplace(tg_backend *be, float *d, const float *inp, size_t N) {
    tg_gelu_backward_inplace(d, inp, N);
}

static void cpu_attention_forward(tg_backend *be, float *out, float *att, const float *qkv, const int32_t *run_start,
                                  int B, int T, int C, int NH) {
    tg_attention_forward(out, att, qkv, run_start, B, T, C, NH);
}
static void cpu_attention_backward(tg_backend *be, float *dqkv, const float *dout, const float *qkv, const float *att,
                                   const int32_t *run_start, int B, int T, int C, int NH) {
    cpu_state *s = st(be);
    int nt = threads_now();
    TG_ASSERT(tg_attention_scratch_floats(T, 1) <= s->att_n); /* reserve was called */
    /* the scratch is one T x T block a thread, sized by reserve: a thread
     * count raised since then runs this op on as many threads as fit */
    int fit = (int)(s->att_n / tg_attention_scratch_floats(T, 1));
#ifdef _OPENMP
    if (nt > fit) omp_set_num_threads(fit);
#endif
    tg_attention_backward(dqkv, s->att, dout, qkv, att, run_start, B, T, C, NH);
#ifdef _OPENMP
    if (nt > fit) omp_set_num_threads(nt);
#else
    (void)fit;
    (void)nt;
#endif
}
static void cpu_kv_store(tg_backend *be, tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows) {
    tg_kv_store(kv, l, qkv, rows);
}
static void cpu_attention_kv(tg_backend *be, float *out, const float *qkv, const tg_kv_cache *kv, int l,
                             const tg_step_rows *rows) {
    cpu_state *s = st(be);
    TG_ASSERT(tg_attention_kv_scratch_floats(kv->max_ctx, threads_now()) <= s->att_n);
    tg_attention_kv(out, qkv, kv, l, rows, s->att);
}

static double cpu_crossentropy_forward(tg_backend *be, float *losses, float *lse, float *logits,
                                       const int32_t *targets, const float *weights, size_t N, int V, int Vp,
                                       double *wsum) {
    return tg_crossentropy_forward(losses, lse, logits, targets, weights, N, V, Vp, wsum);
}
static void cpu_crossentropy_backward_inplace(tg_backend *be, float *logits, const float *lse, const int32_t *targets,
                                              const float *weights, float scale, size_t N, int V, int Vp) {
    tg_crossentropy_backward_inplace(logits, lse, targets, weights, scale, N, V, Vp);
}
static void cpu_mask_padded_vocab(tg_backend *be, float *logits, size_t N, int V, int Vp) {
    tg_mask_padded_vocab(logits, N, V, Vp);
}

static void cpu_adamw_update(tg_backend *be, float *w, const float *g, float *m1, float *v2, size_t n, float decay,
                             float step_size, float beta1, float beta2, float bc2_sqrt, float eps) {
    tg_adamw_kernel(w, g, m1, v2, n, decay, step_size, beta1, beta2, bc2_sqrt, eps);
}
static double cpu_sum_squares(tg_backend *be, const float *x, size_t n) { return tg_sum_squares(x, n); }
static void cpu_scale(tg_backend *be, float *x, float s, size_t n) { tg_scale(x, s, n); }

/* ------------------------------------------------------------ thread tuning */

static void cpu_step_begin(tg_backend *be, int rows, bool decode_only) {
    cpu_state *s = st(be);
    decode_only = decode_only && s->adaptive && s->n_threads > 1;
    int nt = s->nt_cur;
    if (!decode_only) {
        s->probe_phase = 0;
    } else {
        if (s->probe_phase == 0 && ++s->since_probe >= s->probe_every) s->probe_phase = 1;
        if (s->probe_phase == 2) nt = s->nt_cur == 1 ? s->n_threads : 1;
    }
    s->nt_step = nt;
    s->step_rows = rows;
    s->step_decode_only = decode_only;
    s->saved_nt = threads_now();
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    s->t0 = tg_now();
}

static void cpu_step_end(tg_backend *be) {
    cpu_state *s = st(be);
    double dt = tg_now() - s->t0;
#ifdef _OPENMP
    omp_set_num_threads(s->saved_nt);
#endif
    if (!s->step_decode_only) return;
    if (s->probe_phase == 1) {
        s->ref_t = dt;
        s->ref_rows = s->step_rows;
        s->probe_phase = 2;
    } else if (s->probe_phase == 2) {
        if (s->step_rows == s->ref_rows && dt < 0.8 * s->ref_t) {
            s->nt_cur = s->nt_step;
            s->probe_every = 32;
        } else if (s->probe_every < 1024) {
            s->probe_every *= 2; /* a settled choice is re-checked ever more rarely */
        }
        s->probe_phase = 0;
        s->since_probe = 0;
    }
}

static int cpu_threads(tg_backend *be) { return st(be)->nt_cur; }
static void cpu_set_adaptive(tg_backend *be, bool on) {
    cpu_state *s = st(be);
    s->adaptive = on;
    if (!on) s->nt_cur = s->nt_step = s->n_threads;
}

/* ------------------------------------------------------------ the table */

static void cpu_destroy(tg_backend *be) {
    cpu_state *s = st(be);
    tg_free(s->xb);
    tg_free(s->att);
    tg_free(s->q8);
    free(s);
    free(be);
}

int tg_cpu_backend_fill(tg_backend **out) {
    *out = NULL;
    tg_backend *be = calloc(1, sizeof *be);
    cpu_state *s = calloc(1, sizeof *s);
    if (!be || !s) {
        free(be);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory creating the CPU backend");
    }
    s->n_threads = threads_now();
    s->adaptive = 1;
    s->nt_cur = s->nt_step = s->n_threads;
    s->probe_every = 32;
    be->impl = s;
    be->name = "cpu";
    be->variant = TG_CPU_VARIANT_NAME;
    be->destroy = cpu_destroy;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->to_device = cpu_copy;
    be->to_host = cpu_copy;
    be->copy = cpu_copy;
    be->fill = cpu_fill;
    be->reserve = cpu_reserve;
    be->weight_prepare = cpu_weight_prepare;
    be->weight_release = cpu_weight_release;
    be->encoder_forward = cpu_encoder_forward;
    be->encoder_backward = cpu_encoder_backward;
    be->layernorm_forward = cpu_layernorm_forward;
    be->layernorm_backward = cpu_layernorm_backward;
    be->matmul_forward = cpu_matmul_forward;
    be->matmul_forward_residual = cpu_matmul_forward_residual;
    be->matmul_backward = cpu_matmul_backward;
    be->matmul_backward_set = cpu_matmul_backward_set;
    be->gelu_forward = cpu_gelu_forward;
    be->gelu_backward_inplace = cpu_gelu_backward_inplace;
    be->attention_forward = cpu_attention_forward;
    be->attention_backward = cpu_attention_backward;
    be->kv_store = cpu_kv_store;
    be->attention_kv = cpu_attention_kv;
    be->crossentropy_forward = cpu_crossentropy_forward;
    be->crossentropy_backward_inplace = cpu_crossentropy_backward_inplace;
    be->mask_padded_vocab = cpu_mask_padded_vocab;
    be->adamw_update = cpu_adamw_update;
    be->sum_squares = cpu_sum_squares;
    be->scale = cpu_scale;
    be->step_begin = cpu_step_begin;
    be->step_end = cpu_step_end;
    be->threads = cpu_threads;
    be->set_adaptive = cpu_set_adaptive;
    *out = be;
    return TG_OK;
}
