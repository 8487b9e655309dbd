/*
 * copy_out.c — tg_model_copy_tensor_out: one parameter tensor copied to
 * host memory. Written against the public tg_model_params so that the
 * export and the tests read parameters through one call; a model whose
 * parameters live elsewhere (a device) replaces only this function.
 */
#include <string.h>

#include "truthgpt.h"

int tg_model_copy_tensor_out(const tg_model *m, int index, float *host) {
    if (index < 0 || index >= TG_NUM_PARAM_TENSORS)
        return tg_error_set(TG_ERR_INPUT, "parameter tensor index %d is out of range (0-%d)", index,
                            TG_NUM_PARAM_TENSORS - 1);
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(tg_model_config(m), sizes);
    const tg_params *p = tg_model_params((tg_model *)m); /* read only */
    const float *const t[TG_NUM_PARAM_TENSORS] = {p->wte,  p->wpe,      p->ln1w,     p->ln1b, p->qkvw, p->qkvb,
                                                  p->attprojw, p->attprojb, p->ln2w, p->ln2b, p->fcw,  p->fcb,
                                                  p->fcprojw,  p->fcprojb,  p->lnfw, p->lnfb};
    memcpy(host, t[index], sizes[index] * sizeof *host);
    return TG_OK;
}

int tg_model_logits_to_host(const tg_model *m, size_t row0, size_t n_rows, float *host) {
    size_t Vp = (size_t)tg_model_config(m)->padded_vocab;
    memcpy(host, tg_model_logits(m) + row0 * Vp, n_rows * Vp * sizeof *host);
    return TG_OK;
}
