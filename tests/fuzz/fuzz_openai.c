/* fuzz_openai.c — OpenAI request bodies (chat and completions, every field)
 * through tg_api_parse, with a byte-level stand-in tokenizer. The first
 * byte picks the endpoint. */
#include "fuzz_util.h"
#include "serve/serve.h"

static int fake_encode(void *ctx, const char *text, size_t len, int32_t **ids) {
    (void)ctx;
    *ids = malloc((len + 1) * sizeof **ids);
    if (!*ids) return -1;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i];
    return (int)len;
}

static int fake_chat(void *ctx, const char *const *roles, const char *const *contents, int n, int32_t **ids) {
    size_t total = 16;
    for (int i = 0; i < n; i++) total += strlen(roles[i]) + strlen(contents[i]) + 2;
    char *buf = malloc(total);
    if (!buf) return -1;
    size_t k = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(buf + k, total - k, "%s:%s|", roles[i], contents[i]);
    int r = fake_encode(ctx, buf, k, ids);
    free(buf);
    return r;
}

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
