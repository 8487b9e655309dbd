/*
 * hf_config.c — what makes a Hugging Face GPT-2 directory, as the hub serves
 * it, load here or be refused with a reason (docs/interop.md).
 *
 * The GPT-2 forward in src/model computes exactly one member of the
 * GPT2Config family: GELU with the tanh approximation, a 4C MLP, attention
 * scores scaled by 1/sqrt(head size) and nothing else, a head tied to wte,
 * no cross attention. A config.json that asks for another member is
 * refused here, naming the field, instead of loading into a model that
 * computes something else. Fields that only matter for training in
 * PyTorch (dropout rates, initializer_range), for other heads (summary_*),
 * or for the runtime (use_cache, torch_dtype, transformers_version) pass.
 *
 * reorder_and_upcast_attn passes too: it only changes the order and the
 * precision of the same attention in half-precision PyTorch runs (the
 * scores are computed in fp32 and scaled before the product); our
 * attention is always computed in fp32, which is what it asks for.
 *
 * The weights check opens model.safetensors once more (a mapping, no copy)
 * and looks at every tensor's name, so that nothing in the file is ignored
 * silently: GPT-2 parameters are read by checkpoint.c, the attention mask
 * buffers old transformers versions saved are skipped, and an
 * lm_head.weight must equal wte (compared value by value in fp32).
 */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "model/hf.h"
#include "model/safetensors.h"

/* A boolean field that must be absent, null or equal to want. */
static int check_bool(json_t *root, const char *path, const char *key, int want, const char *why) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return TG_OK;
    if (!json_is_boolean(v)) return tg_error_set(TG_ERR_INPUT, "%s: field '%s' is not a boolean", path, key);
    if (json_is_true(v) != want)
        return tg_error_set(TG_ERR_INPUT, "%s: field '%s' is %s, which truthgpt cannot honour (%s)", path, key,
                            want ? "false" : "true", why);
    return TG_OK;
}

int tg_hf_config_check(json_t *root, const char *path, const tg_config *cfg) {
    json_t *act = json_object_get(root, "activation_function");
    if (act && !json_is_null(act)) {
        const char *a = json_string_value(act);
        if (!a || (strcmp(a, "gelu_new") != 0 && strcmp(a, "gelu_pytorch_tanh") != 0))
            return tg_error_set(TG_ERR_INPUT,
                                "%s: field 'activation_function' is %s%s%s; truthgpt computes only \"gelu_new\" "
                                "(= \"gelu_pytorch_tanh\", GELU with the tanh approximation)",
                                path, a ? "\"" : "", a ? a : "not a string", a ? "\"" : "");
    }
    json_t *inner = json_object_get(root, "n_inner");
    if (inner && !json_is_null(inner)) {
        if (!json_is_integer(inner))
            return tg_error_set(TG_ERR_INPUT, "%s: field 'n_inner' is not an integer or null", path);
        if (json_integer_value(inner) != 4 * (json_int_t)cfg->n_embd)
            return tg_error_set(TG_ERR_INPUT,
                                "%s: field 'n_inner' is %lld, but truthgpt's MLP is 4 * n_embd = %lld wide "
                                "(null means the same)",
                                path, (long long)json_integer_value(inner), 4LL * cfg->n_embd);
    }
    TG_TRY(check_bool(root, path, "scale_attn_weights", 1,
                      "attention scores are always scaled by 1/sqrt(head size)"));
    TG_TRY(check_bool(root, path, "scale_attn_by_inverse_layer_idx", 0,
                      "attention scores are not scaled by 1/(layer index + 1)"));
    TG_TRY(check_bool(root, path, "add_cross_attention", 0, "there is no encoder to attend to"));
    TG_TRY(check_bool(root, path, "tie_word_embeddings", 1,
                      "the LM head is always the token embedding wte; an untied head would be dropped"));
    json_t *reorder = json_object_get(root, "reorder_and_upcast_attn"); /* either value: see the top */
    if (reorder && !json_is_null(reorder) && !json_is_boolean(reorder))
        return tg_error_set(TG_ERR_INPUT, "%s: field 'reorder_and_upcast_attn' is not a boolean", path);
    if (json_object_get(root, "quantization_config"))
        return tg_error_set(TG_ERR_INPUT,
                            "%s: field 'quantization_config' is present: quantised weights (GPTQ, AWQ, bitsandbytes) "
                            "are not supported; use an F32, F16 or BF16 model.safetensors",
                            path);
    json_t *arch = json_object_get(root, "architectures");
    if (arch && !json_is_null(arch)) {
        size_t i;
        json_t *a;
        if (!json_is_array(arch)) return tg_error_set(TG_ERR_INPUT, "%s: field 'architectures' is not an array", path);
        json_array_foreach(arch, i, a) {
            const char *s = json_string_value(a);
            if (!s || (strcmp(s, "GPT2LMHeadModel") != 0 && strcmp(s, "GPT2Model") != 0))
                return tg_error_set(TG_ERR_INPUT,
                                    "%s: field 'architectures' names %s%s%s; truthgpt loads GPT2LMHeadModel "
                                    "(or GPT2Model) weights only",
                                    path, s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "");
        }
    }
    json_t *eps = json_object_get(root, "layer_norm_epsilon");
    if (eps && json_is_number(eps) && !(json_number_value(eps) > 0 && json_number_value(eps) < 1))
        return tg_error_set(TG_ERR_INPUT, "%s: field 'layer_norm_epsilon' is %g, expected a small positive number", path,
                            json_number_value(eps));
    return TG_OK;
}

/* ------------------------------------------------------------ weights file */

static const char *const layer_params[] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias",
};

typedef enum { NAME_UNKNOWN, NAME_PARAM, NAME_BUFFER, NAME_LM_HEAD } name_kind;

/* What a tensor name of model.safetensors is, for a model of L layers. */
static name_kind classify(const char *name, int L) {
    if (strcmp(name, "lm_head.weight") == 0) return NAME_LM_HEAD;
    if (strncmp(name, "transformer.", 12) == 0) name += 12;
    if (!strcmp(name, "wte.weight") || !strcmp(name, "wpe.weight") || !strcmp(name, "ln_f.weight") ||
        !strcmp(name, "ln_f.bias"))
        return NAME_PARAM;
    if (strncmp(name, "h.", 2) != 0) return NAME_UNKNOWN;
    const char *p = name + 2;
    long l = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 9) l = l * 10 + (*p++ - '0'), digits++;
    if (!digits || *p != '.' || l >= L || (digits > 1 && name[2] == '0')) return NAME_UNKNOWN;
    p++;
    for (size_t i = 0; i < sizeof layer_params / sizeof *layer_params; i++)
        if (!strcmp(p, layer_params[i])) return NAME_PARAM;
    if (!strcmp(p, "attn.bias") || !strcmp(p, "attn.masked_bias")) return NAME_BUFFER;
    return NAME_UNKNOWN;
}

/* 1 if lm_head equals wte value by value (in fp32, so an F16 head of an
 * F32 embedding counts when the values agree), 0 if not; compared in row
 * blocks so no V x C copy is made. */
static int same_values(const tg_st_tensor *a, const tg_st_tensor *b, int64_t rows, int64_t cols, float *buf_a,
                       float *buf_b, int64_t block) {
    for (int64_t r = 0; r < rows; r += block) {
        int64_t n = (rows - r < block ? rows - r : block) * cols;
        tg_st_tensor sa = *a, sb = *b;
        sa.data = (const uint8_t *)a->data + (size_t)(r * cols) * tg_st_dtype_size(a->dtype);
        sb.data = (const uint8_t *)b->data + (size_t)(r * cols) * tg_st_dtype_size(b->dtype);
        sa.numel = sb.numel = n;
        sa.nbytes = (size_t)n * tg_st_dtype_size(a->dtype);
        sb.nbytes = (size_t)n * tg_st_dtype_size(b->dtype);
        tg_st_to_f32(&sa, buf_a);
        tg_st_to_f32(&sb, buf_b);
        for (int64_t i = 0; i < n; i++)
            if (buf_a[i] != buf_b[i] && !(isnan(buf_a[i]) && isnan(buf_b[i]))) return 0;
    }
    return 1;
}

static int check_lm_head(const tg_safetensors *st, const char *path, const tg_st_tensor *head, const tg_config *cfg) {
    const tg_st_tensor *wte = tg_safetensors_find(st, "transformer.wte.weight");
    if (!wte) wte = tg_safetensors_find(st, "wte.weight");
    if (!wte) return TG_OK; /* read_tensors reports the missing embedding */
    int64_t V = cfg->vocab_size, C = cfg->n_embd;
    if (head->ndim != 2 || head->shape[0] != V || head->shape[1] != C)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor 'lm_head.weight' does not have wte's shape [%lld, %lld]", path,
                            (long long)V, (long long)C);
    if (wte->ndim != 2 || wte->shape[0] != V || wte->shape[1] != C) return TG_OK; /* reported by read_tensors */
    int float_dtype = head->dtype == TG_ST_F32 || head->dtype == TG_ST_F16 || head->dtype == TG_ST_BF16;
    int wte_float = wte->dtype == TG_ST_F32 || wte->dtype == TG_ST_F16 || wte->dtype == TG_ST_BF16;
    if (!float_dtype)
        return tg_error_set(TG_ERR_INPUT, "%s: tensor 'lm_head.weight' has dtype %s, expected F32, F16 or BF16", path,
                            tg_st_dtype_name(head->dtype));
    if (!wte_float) return TG_OK; /* reported by read_tensors */
    int64_t block = 256;
    float *a = malloc((size_t)(block * C) * sizeof *a), *b = malloc((size_t)(block * C) * sizeof *b);
    int same = a && b ? same_values(head, wte, V, C, a, b, block) : -1;
    free(a);
    free(b);
    if (same < 0) return tg_error_set(TG_ERR_RUNTIME, "out of memory checking %s", path);
    if (!same)
        return tg_error_set(TG_ERR_INPUT,
                            "%s: tensor 'lm_head.weight' differs from wte.weight: an untied LM head, which truthgpt "
                            "cannot load (its head is always the token embedding)",
                            path);
    return TG_OK;
}

/* Why a directory without model.safetensors has none, and what to do. */
static int explain_missing(const char *dir, const char *path) {
    char *bin = tg_path_join(dir, "pytorch_model.bin"), *idx = tg_path_join(dir, "model.safetensors.index.json");
    char *h5 = tg_path_join(dir, "tf_model.h5"), *flax = tg_path_join(dir, "flax_model.msgpack");
    int rc;
    if (tg_path_exists(idx))
        rc = tg_error_set(TG_ERR_INPUT,
                          "%s: missing: this directory has sharded weights (model.safetensors.index.json); "
                          "truthgpt reads one model.safetensors (GPT-2 sizes fit in one file): save the model again "
                          "with save_pretrained(dir, max_shard_size=\"100GB\")",
                          path);
    else if (tg_path_exists(bin))
        rc = tg_error_set(TG_ERR_INPUT,
                          "%s: missing: this directory has only pytorch_model.bin (a pickle, which truthgpt does not "
                          "read). Convert it once, in that directory: python3 -c 'import torch; from "
                          "safetensors.torch import save_file; sd = torch.load(\"pytorch_model.bin\", "
                          "map_location=\"cpu\", weights_only=True); save_file({k: v.contiguous().clone() for k, v "
                          "in sd.items()}, \"model.safetensors\", metadata={\"format\": \"pt\"})' (see "
                          "docs/interop.md)",
                          path);
    else if (tg_path_exists(h5) || tg_path_exists(flax))
        rc = tg_error_set(TG_ERR_INPUT,
                          "%s: missing: this directory has TensorFlow or Flax weights only; convert them to "
                          "model.safetensors with transformers (from_pretrained(dir, from_tf=True or from_flax=True), "
                          "then save_pretrained)",
                          path);
    else rc = tg_error_set(TG_ERR_INPUT, "%s: missing (a model directory needs config.json and model.safetensors)", path);
    free(bin);
    free(idx);
    free(h5);
    free(flax);
    return rc;
}

int tg_hf_check_weights(const char *dir, const tg_config *cfg) {
    char *path = tg_path_join(dir, "model.safetensors");
    if (!path) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (!tg_path_exists(path)) {
        int rc = explain_missing(dir, path);
        free(path);
        return rc;
    }
    tg_safetensors st;
    int rc = tg_safetensors_open(&st, path);
    for (int i = 0; rc == TG_OK && i < st.n_tensors; i++) {
        const tg_st_tensor *t = &st.tensors[i];
        switch (classify(t->name, cfg->n_layer)) {
        case NAME_PARAM:
        case NAME_BUFFER: break;
        case NAME_LM_HEAD: rc = check_lm_head(&st, path, t, cfg); break;
        case NAME_UNKNOWN:
            rc = tg_error_set(TG_ERR_INPUT,
                              "%s: tensor '%s' is not a parameter of a %d-layer GPT2LMHeadModel (a different model "
                              "or head?); refusing to ignore it",
                              path, t->name, cfg->n_layer);
            break;
        }
    }
    tg_safetensors_close(&st); /* also right after a failed open: it leaves st zeroed */
    free(path);
    return rc;
}
