/* fuzz_shard.c — a token shard (header, sizes, every id checked at open)
 * and a stream over it. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("x.tok", data, size);
    tg_shard s;
    if (tg_shard_open(&s, path) == TG_OK) {
        /* Open means every id is inside the vocabulary. */
        for (int64_t i = 0; i < s.n_tokens; i++) {
            int32_t id = tg_shard_get(&s, i);
            if (id < 0 || id >= s.vocab_size) abort();
        }
        tg_shard_close(&s);
        tg_token_stream ts;
        if (tg_token_stream_open(&ts, path, NULL) == TG_OK) {
            int32_t out[64];
            tg_token_stream_read(&ts, ts.n_tokens - 1, out, 64);
            tg_token_stream_close(&ts);
        }
    }
    tg_error_clear();
    return 0;
}
