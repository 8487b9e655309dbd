/* fuzz_openai.c — OpenAI request bodies (chat and completions, every field)
 * through tg_api_parse, with a byte-level stand-in tokenizer. The first
 * byte picks the endpoint. */
#include "fuzz_util.h"
#include "serve/serve.h"

#include "../fake_tokenizer.h" /* fake_encode, fake_chat */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static tg_api_ctx ctx = {fake_encode, fake_chat, NULL, 256, 64, 300, "fuzz"};
    tg_api_error err;
    memset(&err, 0, sizeof err);
    tg_sreq *r = tg_api_parse(&ctx, (data[0] & 1) ? TG_SREQ_COMPLETION : TG_SREQ_CHAT, (const char *)data + 1,
                              size - 1, &err);
    if (r) tg_sreq_release(r);
    else {
        char *j = tg_api_error_json(&err);
        if (!j) abort();
        free(j);
    }
    return 0;
}
