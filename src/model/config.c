/*
 * config.c — GPT-2 model configurations (docs/architecture.md "Model"
 * presets), their checks, parameter counts, and the layout of the 16
 * parameter tensors in one buffer (Hugging Face GPT-2 order and shapes,
 * vocabulary padded to Vp rows).
 */
#include <string.h>
#include <unistd.h>

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

/* Ceilings on what a config may ask for, far above any GPT-2 (gpt2-xl is
 * L=48 C=1600 T=1024 V=50257) and low enough that every size derived from
 * them fits in int64 with room to spare: L*12*C*C <= 2^10 * 12 * 2^32. */
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_EMBD 65536
#define MAX_CTX (1 << 20)
#define MAX_VOCAB (1 << 24)

/* Bytes of physical memory, or 0 when unknown. */
static uint64_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

int tg_config_validate(tg_config *cfg) {
    if (cfg->n_layer <= 0 || cfg->n_layer > MAX_LAYERS)
        return tg_error_set(TG_ERR_INPUT, "--layers (n_layer) must be in 1..%d (got %d)", MAX_LAYERS, cfg->n_layer);
    if (cfg->n_head <= 0 || cfg->n_head > MAX_HEADS)
        return tg_error_set(TG_ERR_INPUT, "--heads (n_head) must be in 1..%d (got %d)", MAX_HEADS, cfg->n_head);
    if (cfg->n_embd <= 0 || cfg->n_embd > MAX_EMBD)
        return tg_error_set(TG_ERR_INPUT, "--dim (n_embd) must be in 1..%d (got %d)", MAX_EMBD, cfg->n_embd);
    if (cfg->n_ctx <= 0 || cfg->n_ctx > MAX_CTX)
        return tg_error_set(TG_ERR_INPUT, "--ctx (n_positions) must be in 1..%d (got %d)", MAX_CTX, cfg->n_ctx);
    if (cfg->vocab_size <= 0 || cfg->vocab_size > MAX_VOCAB)
        return tg_error_set(TG_ERR_INPUT, "vocabulary size (vocab_size) must be in 1..%d (got %d)", MAX_VOCAB,
                            cfg->vocab_size);
    if (cfg->n_embd % cfg->n_head != 0)
        return tg_error_set(TG_ERR_INPUT, "--dim %d is not divisible by --heads %d", cfg->n_embd, cfg->n_head);
    if (cfg->eos_id < 0 || cfg->eos_id >= cfg->vocab_size)
        return tg_error_set(TG_ERR_INPUT, "end-of-text id %d outside the vocabulary of %d", cfg->eos_id,
                            cfg->vocab_size);
    if (!(cfg->ln_eps > 0)) cfg->ln_eps = 1e-5f;
    /* Rows up to a multiple of 64 keep the LM-head GEMM's panels aligned;
     * the extra rows are zero and their logits masked. Cannot overflow:
     * vocab_size <= 2^24. */
    cfg->padded_vocab = (cfg->vocab_size + 63) / 64 * 64;
    /* The parameters alone must fit in this machine's memory: a config
     * asking for more is refused here, before anything is allocated, rather
     * than failing (or swapping) in the allocator. */
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(cfg, sizes);
    uint64_t n = 0;
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) n += sizes[i];
    uint64_t phys = physical_memory();
    if (phys && n * sizeof(float) > phys)
        return tg_error_set(TG_ERR_INPUT,
                            "L=%d H=%d C=%d T=%d V=%d needs %.1f GB for its parameters alone, more than this machine's "
                            "%.1f GB of memory",
                            cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->n_ctx, cfg->vocab_size,
                            (double)(n * sizeof(float)) / 1e9, (double)phys / 1e9);
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
