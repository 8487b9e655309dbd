/* fuzz_gpt2_files.c — GPT-2's encoder.json + vocab.bpe pair. An input is
 * split at its first NUL byte: encoder.json before, vocab.bpe after. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t a = nul ? (size_t)(nul - data) : size;
    fuzz_file("encoder.json", data, a);
    fuzz_file("vocab.bpe", nul ? nul + 1 : data + size, nul ? size - a - 1 : 0);
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", fuzz_dir());
    unlink(path); /* the directory must hold only the GPT-2 pair */
    tg_tokenizer *t;
    if (tg_tokenizer_load(&t, fuzz_dir()) == TG_OK) {
        static const char text[] = "Hello world, it's 2024!";
        int32_t *ids;
        size_t n;
        if (tg_tokenizer_encode(t, text, sizeof text - 1, 0, &ids, &n) == TG_OK) {
            char *back;
            if (tg_tokenizer_decode(t, ids, n, &back, NULL) == TG_OK) free(back);
            free(ids);
        }
        tg_tokenizer_free(t);
    }
    tg_error_clear();
    return 0;
}
