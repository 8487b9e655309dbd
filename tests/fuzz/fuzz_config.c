/* fuzz_config.c — a checkpoint's config.json (GPT2Config fields, ceilings,
 * overflow-free sizes): an input is the file's content. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file("config.json", data, size);
    tg_config c;
    if (tg_checkpoint_read_config(fuzz_dir(), &c) == TG_OK) {
        /* Valid: every derived size must be computable without overflow. */
        size_t sizes[TG_NUM_PARAM_TENSORS];
        tg_param_sizes(&c, sizes);
        if (tg_config_num_params(&c, true) <= 0) abort();
    }
    tg_error_clear();
    return 0;
}
