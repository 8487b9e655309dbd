/* fuzz_safetensors.c — the safetensors reader (header JSON, shapes, offsets,
 * tiling) and the checks a model file passes before loading (config
 * against header, NaN/Inf scan): an input is a whole model.safetensors. */
#include "fuzz_util.h"
#include "model/checkpoint_verify.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("model.safetensors", data, size);
    tg_safetensors st;
    if (tg_safetensors_open(&st, path) == TG_OK) {
        float buf[4096];
        for (int i = 0; i < st.n_tensors; i++) {
            const tg_st_tensor *t = &st.tensors[i];
            if ((t->dtype == TG_ST_F32 || t->dtype == TG_ST_F16 || t->dtype == TG_ST_BF16) && t->numel <= 4096)
                tg_st_to_f32(t, buf);
            if (tg_safetensors_find(&st, t->name) == NULL) abort();
        }
        (void)tg_safetensors_meta(&st, "format");
        tg_safetensors_close(&st);
    }
    /* The same file as a checkpoint's weights, for a 1-layer model. */
    tg_config c = {.n_layer = 1, .n_head = 1, .n_embd = 2, .n_ctx = 2, .vocab_size = 3, .eos_id = 2, .ln_eps = 1e-5f};
    if (tg_config_validate(&c) != TG_OK) abort();
    (void)tg_checkpoint_check_weights(fuzz_dir(), &c);
    tg_error_clear();
    return 0;
}
