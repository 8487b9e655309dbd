/*
 * chat_template.c — the ChatML template of
 * docs/architecture.md "Inference and chat", the exact bytes the fine-tuning
 * data and the server both use:
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n   for every message, then
 *   <|im_start|>assistant\n                 when a reply is to be generated.
 * Content is copied as is (no trimming): the template must give the same
 * bytes as the training data.
 */
#include <stdlib.h>
#include <string.h>

#include "infer/engine.h"

static int known_role(const char *r) {
    return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"));
}

int tg_chat_format(const tg_chat_message *msgs, int n, bool add_generation_prompt, char **out) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return tg_error_set(TG_ERR_INPUT, "chat: bad message list");
    static const char start[] = TG_TOKEN_IM_START, end[] = TG_TOKEN_IM_END "\n";
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        if (!known_role(msgs[i].role))
            return tg_error_set(TG_ERR_INPUT, "chat: message %d has role '%s' (system, user or assistant)", i,
                                msgs[i].role ? msgs[i].role : "(none)");
        if (!msgs[i].content) return tg_error_set(TG_ERR_INPUT, "chat: message %d has no content", i);
        total += strlen(start) + strlen(msgs[i].role) + 1 + strlen(msgs[i].content) + strlen(end);
    }
    if (add_generation_prompt) total += strlen(start) + strlen("assistant\n");
    char *s = malloc(total);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "chat: out of memory");
    size_t o = 0;
#define PUT(str)                          \
    do {                                  \
        size_t l_ = strlen(str);          \
        memcpy(s + o, (str), l_);         \
        o += l_;                          \
    } while (0)
    for (int i = 0; i < n; i++) {
        PUT(start);
        PUT(msgs[i].role);
        PUT("\n");
        PUT(msgs[i].content);
        PUT(end);
    }
    if (add_generation_prompt) {
        PUT(start);
        PUT("assistant\n");
    }
#undef PUT
    s[o] = '\0';
    *out = s;
    return TG_OK;
}
