/*
 * config.c — GPT-2 model configurations (docs/architecture.md "Model"
 * presets), their checks, parameter counts, and the layout of the 16
 * parameter tensors in one buffer (Hugging Face GPT-2 order and shapes,
 * vocabulary padded to Vp rows).
 */
#include <string.h>

#include "core/core.h"

typedef struct {
    const char *name;
    int L, NH, C, T;
} preset;

static const preset presets[] = {
    {"tiny", 4, 4, 256, 256},        {"small", 6, 6, 384, 256},          {"gpt2", 12, 12, 768, 1024},
    {"gpt2-medium", 24, 16, 1024, 1024}, {"gpt2-large", 36, 20, 1280, 1024}, {"gpt2-xl", 48, 25, 1600, 1024},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static const char *const preset_names[] = {"tiny", "small", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", NULL};

const char *const *tg_config_preset_names(void) { return preset_names; }

int tg_config_preset(const char *name, tg_config *cfg) {
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (strcmp(presets[i].name, name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->n_layer = presets[i].L;
        cfg->n_head = presets[i].NH;
        cfg->n_embd = presets[i].C;
        cfg->n_ctx = presets[i].T;
        cfg->vocab_size = 50257;
        cfg->ln_eps = 1e-5f;
        cfg->eos_id = 50256;
        cfg->padded_vocab = (cfg->vocab_size + 63) / 64 * 64;
        return TG_OK;
    }
    return tg_error_set(TG_ERR_INPUT,
                        "unknown preset '%s' (choose tiny, small, gpt2, gpt2-medium, gpt2-large or gpt2-xl)", name);
}

int tg_config_validate(tg_config *cfg) {
    if (cfg->n_layer <= 0) return tg_error_set(TG_ERR_INPUT, "--layers must be positive (got %d)", cfg->n_layer);
    if (cfg->n_head <= 0) return tg_error_set(TG_ERR_INPUT, "--heads must be positive (got %d)", cfg->n_head);
    if (cfg->n_embd <= 0) return tg_error_set(TG_ERR_INPUT, "--dim must be positive (got %d)", cfg->n_embd);
    if (cfg->n_ctx <= 0) return tg_error_set(TG_ERR_INPUT, "--ctx must be positive (got %d)", cfg->n_ctx);
    if (cfg->vocab_size <= 0)
        return tg_error_set(TG_ERR_INPUT, "vocabulary size must be positive (got %d)", cfg->vocab_size);
    if (cfg->n_embd % cfg->n_head != 0)
        return tg_error_set(TG_ERR_INPUT, "--dim %d is not divisible by --heads %d", cfg->n_embd, cfg->n_head);
    if (cfg->eos_id < 0 || cfg->eos_id >= cfg->vocab_size)
        return tg_error_set(TG_ERR_INPUT, "end-of-text id %d outside the vocabulary of %d", cfg->eos_id,
                            cfg->vocab_size);
    if (!(cfg->ln_eps > 0)) cfg->ln_eps = 1e-5f;
    /* Rows up to a multiple of 64 keep the LM-head GEMM's panels aligned;
     * the extra rows are zero and their logits masked. */
    cfg->padded_vocab = (cfg->vocab_size + 63) / 64 * 64;
    return TG_OK;
}

int64_t tg_config_num_params(const tg_config *cfg, bool with_pos_embedding) {
    int64_t C = cfg->n_embd, L = cfg->n_layer;
    int64_t n = (int64_t)cfg->vocab_size * C + L * (12 * C * C + 13 * C) + 2 * C;
    if (with_pos_embedding) n += (int64_t)cfg->n_ctx * C;
    return n;
}

void tg_param_sizes(const tg_config *cfg, size_t sizes[TG_NUM_PARAM_TENSORS]) {
    size_t C = (size_t)cfg->n_embd, L = (size_t)cfg->n_layer;
    sizes[0] = (size_t)cfg->padded_vocab * C; /* wte */
    sizes[1] = (size_t)cfg->n_ctx * C;        /* wpe */
    sizes[2] = L * C;                         /* ln1w */
    sizes[3] = L * C;                         /* ln1b */
    sizes[4] = L * C * 3 * C;                 /* qkvw */
    sizes[5] = L * 3 * C;                     /* qkvb */
    sizes[6] = L * C * C;                     /* attprojw */
    sizes[7] = L * C;                         /* attprojb */
    sizes[8] = L * C;                         /* ln2w */
    sizes[9] = L * C;                         /* ln2b */
    sizes[10] = L * C * 4 * C;                /* fcw */
    sizes[11] = L * 4 * C;                    /* fcb */
    sizes[12] = L * 4 * C * C;                /* fcprojw */
    sizes[13] = L * C;                        /* fcprojb */
    sizes[14] = C;                            /* lnfw */
    sizes[15] = C;                            /* lnfb */
}

bool tg_param_decays(int i) {
    /* 2-D weight matrices and the embeddings; never biases or LayerNorm. */
    return i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
}

void tg_params_point(tg_params *p, const tg_config *cfg, float *mem) {
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(cfg, sizes);
    float **ptrs[TG_NUM_PARAM_TENSORS] = {&p->wte,  &p->wpe,      &p->ln1w,     &p->ln1b, &p->qkvw, &p->qkvb,
                                          &p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcw,  &p->fcb,
                                          &p->fcprojw,  &p->fcprojb,  &p->lnfw, &p->lnfb};
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += sizes[i];
    }
}
