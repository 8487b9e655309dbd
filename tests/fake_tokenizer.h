/*
 * fake_tokenizer.h — a byte-level stand-in tokenizer for tests of the
 * server's request parser (tg_api_ctx): one id a byte, and a chat prompt
 * "ROLE:CONTENT|" per message then "assistant:". Shared by test_serve_api,
 * test_request_limits and the OpenAI-body fuzz target.
 */
#ifndef TG_TESTS_FAKE_TOKENIZER_H
#define TG_TESTS_FAKE_TOKENIZER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int fake_encode(void *ctx, const char *text, size_t len, int32_t **ids) {
    (void)ctx;
    *ids = malloc((len ? len : 1) * sizeof **ids);
    if (!*ids) return -1;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i];
    return (int)len;
}

static inline int fake_chat(void *ctx, const char *const *roles, const char *const *contents, int n,
                            int32_t **ids) {
    size_t total = 16;
    for (int i = 0; i < n; i++) total += strlen(roles[i]) + strlen(contents[i]) + 2;
    char *buf = malloc(total);
    if (!buf) return -1;
    size_t k = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(buf + k, total - k, "%s:%s|", roles[i], contents[i]);
    k += (size_t)snprintf(buf + k, total - k, "assistant:");
    int r = fake_encode(ctx, buf, k, ids);
    free(buf);
    return r;
}

#endif /* TG_TESTS_FAKE_TOKENIZER_H */
