/* fuzz_tokenizer_json.c — the Hugging Face tokenizer.json reader; a
 * tokenizer that loads then encodes and decodes a fixed text. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("tokenizer.json", data, size);
    tg_tokenizer *t;
    if (tg_tokenizer_load(&t, path) == TG_OK) {
        static const char text[] = "Hello, world! <|endoftext|> caf\xc3\xa9 123  \n\t ok";
        int32_t *ids;
        size_t n;
        if (tg_tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &n) == TG_OK) {
            char *back;
            size_t len;
            if (tg_tokenizer_decode(t, ids, n, &back, &len) == TG_OK) free(back);
            free(ids);
        }
        tg_tokenizer_free(t);
    }
    tg_error_clear();
    return 0;
}
