/*
 * hf.h — the checks that make a Hugging Face GPT-2 directory safe to load
 * (hf_config.c): the GPT2Config fields truthgpt cannot honour, and the
 * tensors of model.safetensors beyond the ones it reads (docs/interop.md).
 */
#ifndef TG_HF_H
#define TG_HF_H

#include <jansson.h>

#include "truthgpt.h"

/* Refuses a config.json (root, read from path) whose GPT2Config fields ask
 * for something the GPT-2 forward here does not compute: another
 * activation, n_inner != 4 * n_embd, attention scaling flags, cross
 * attention, an untied head, quantised weights, another architecture.
 * cfg holds the sizes already read from it. Fields that do not change the
 * function (dropout rates, summary_* heads, use_cache, torch_dtype, ...)
 * pass. TG_ERR_INPUT naming the file and the field. */
int tg_hf_config_check(json_t *root, const char *path, const tg_config *cfg);

/* Checks a checkpoint directory's weights file before the tensors are read:
 * model.safetensors exists (else says how to convert a pytorch_model.bin or
 * why sharded files are refused), every tensor in it is a GPT-2 parameter
 * truthgpt reads, a buffer it may skip (h.N.attn.bias, h.N.attn.masked_bias)
 * or an lm_head.weight equal to the token embedding (a tied head); an
 * lm_head that differs is refused (the head here is always tied).
 * TG_ERR_INPUT naming the file and the tensor. */
int tg_hf_check_weights(const char *dir, const tg_config *cfg);

#endif /* TG_HF_H */
