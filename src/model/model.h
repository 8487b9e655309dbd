/*
 * model.h — what the library's own modules (the generation engine, the
 * checkpoint code, SFT) share of the model beyond the public API: its
 * backend, weight sets and the KV-cached forward over the rows of a decode
 * step. The forward of training and of generation is one function
 * (model.c); these are its entry points for generation.
 *
 * Dimension legend: L layers, C channels, Vp padded vocabulary, R rows of a
 * step, S cache slots.
 */
#ifndef TG_MODEL_MODEL_H
#define TG_MODEL_MODEL_H

#include "kernels/backend.h"
#include "truthgpt.h"

tg_backend *tg_model_backend(tg_model *m);

/* The parameter and gradient memory in the backend (device pointers, laid
 * out as tg_params_point), for the library's own collectives (data
 * parallel). NULL gradients before tg_model_alloc_train. */
float *tg_model_param_device(tg_model *m);
float *tg_model_grad_device(tg_model *m);

/* Called during tg_model_backward as soon as a layer's gradients are final
 * for this backward: layer l = L-1 down to 0 (its 12 tensors: ln_1, attn,
 * ln_2, mlp weights and biases at index l of each (L, ...) tensor), then
 * l = -1 for wte, wpe and ln_f. Lets a data-parallel trainer start reducing
 * a bucket while the rest of the backward runs. NULL: none. */
typedef void (*tg_grad_ready_fn)(void *user, int layer);
void tg_model_set_grad_ready(tg_model *m, tg_grad_ready_fn fn, void *user);

/* AdamW (as tg_adamw_update) over the flat parameter range [lo, hi) only;
 * g, m1, v2 are that range's gradients and moments, hi - lo floats each in
 * the backend's memory. For ZeRO-1, where each rank owns a shard. */
int tg_adamw_update_range(tg_model *m, int t, float lr, const tg_optim_params *p, size_t lo, size_t hi,
                          const float *g, float *m1, float *v2);

/* The weight matrices of a model as backend handles: training handles read
 * the parameters at every call; inference handles are the backend's own
 * snapshot (packed, bf16, ...) taken at init — prepare a new set after the
 * parameters change. */
typedef struct {
    tg_weight *qkv, *attproj, *fc, *fcproj; /* (L) */
    tg_weight lm;                           /* the tied head: wte^T, (C, Vp) */
    int L;
} tg_model_weights;

int tg_model_weights_init(tg_model *m, tg_model_weights *w, tg_dtype dtype, bool inference);
void tg_model_weights_free(tg_model *m, tg_model_weights *w);

/* Device buffers of a decode step of up to max_rows rows, logits of up to
 * max_out rows. */
typedef struct {
    float *x, *xn, *qkv, *att, *h; /* (max_rows, C|C|3C|C|4C) */
    float *lx;                     /* (max_out, C) */
    float *logits;                 /* (max_out, Vp) */
    int32_t *tok, *pos;            /* (max_rows) the step's ids and positions, on the device */
    int max_rows, max_out;
} tg_rows_work;

int tg_model_rows_init(tg_model *m, tg_rows_work *w, int max_rows, int max_out, int max_ctx);
void tg_model_rows_free(tg_model *m, tg_rows_work *w);

/* A KV cache of S slots for contexts up to max_ctx, in the model's backend. */
int tg_model_kv_init(tg_model *m, tg_kv_cache *kv, int S, int max_ctx);
void tg_model_kv_free(tg_model *m, tg_kv_cache *kv);

/* The forward over the rows of one decode step: every row's k and v go into
 * the cache, and the final LayerNorm and LM head run for the rows
 * out_rows[0..n_out) only, into w->logits (n_out, Vp; columns >= V are
 * -inf). Row ids and positions are checked by the caller. */
int tg_model_forward_rows(tg_model *m, const tg_model_weights *W, tg_kv_cache *kv, const tg_step_rows *rows,
                          const int *out_rows, int n_out, tg_rows_work *w);

#endif /* TG_MODEL_MODEL_H */
