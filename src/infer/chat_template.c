/*
 * chat_template.c — the ChatML template of
 * docs/architecture.md "Inference and chat":
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n   for every message, then
 *   <|im_start|>assistant\n                 when a reply is to be generated.
 * tg_chat_format gives its text; tg_chat_encode its token ids, the only
 * place that builds them (fine-tuning, sample/chat and the server all call
 * it). Content is copied as is (no trimming): the template must give the
 * same tokens as the training data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/engine.h"

static int known_role(const char *r) {
    return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"));
}

/* Every message has a known role and a content. */
static int check_messages(const tg_chat_message *msgs, int n) {
    if (n < 0 || (n > 0 && !msgs)) return tg_error_set(TG_ERR_INPUT, "chat: bad message list");
    for (int i = 0; i < n; i++) {
        if (!known_role(msgs[i].role))
            return tg_error_set(TG_ERR_INPUT, "chat: message %d has role '%s' (system, user or assistant)", i,
                                msgs[i].role ? msgs[i].role : "(none)");
        if (!msgs[i].content) return tg_error_set(TG_ERR_INPUT, "chat: message %d has no content", i);
    }
    return TG_OK;
}

int tg_chat_format(const tg_chat_message *msgs, int n, bool add_generation_prompt, char **out) {
    *out = NULL;
    TG_TRY(check_messages(msgs, n));
    static const char start[] = TG_TOKEN_IM_START, end[] = TG_TOKEN_IM_END "\n";
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total += strlen(start) + strlen(msgs[i].role) + 1 + strlen(msgs[i].content) + strlen(end);
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

/* ------------------------------------------------------------ token ids */

typedef struct {
    int32_t *ids;
    size_t n, cap;
} idvec;

static int reserve(idvec *v, size_t more) {
    if (v->n + more > v->cap) {
        size_t cap = (v->n + more) * 2 + 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return tg_error_set(TG_ERR_RUNTIME, "chat: out of memory");
        v->ids = p;
        v->cap = cap;
    }
    return TG_OK;
}

static int push_ids(idvec *v, const int32_t *ids, size_t n) {
    TG_TRY(reserve(v, n));
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return TG_OK;
}

/* Appends text encoded as plain text: tok's BPE with special tokens off,
 * or one id a byte without a tokenizer. */
static int push_text(idvec *v, const tg_tokenizer *tok, const char *text, size_t len) {
    if (len == 0) return TG_OK;
    if (!tok) {
        TG_TRY(reserve(v, len));
        for (size_t i = 0; i < len; i++) v->ids[v->n++] = (unsigned char)text[i];
        return TG_OK;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    TG_TRY(tg_tokenizer_encode(tok, text, len, 0, &ids, &n));
    int rc = push_ids(v, ids, n);
    free(ids);
    return rc;
}

/* A marker: its id, or its text when the vocabulary has no such token. */
static int push_marker(idvec *v, const tg_tokenizer *tok, int32_t id, const char *text) {
    return id >= 0 ? push_ids(v, &id, 1) : push_text(v, tok, text, strlen(text));
}

int tg_chat_encode(const tg_tokenizer *tok, int32_t im_start, int32_t im_end, const tg_chat_message *msgs, int n,
                   bool add_generation_prompt, int32_t **ids, size_t *n_ids, tg_chat_span *spans) {
    *ids = NULL;
    *n_ids = 0;
    TG_TRY(check_messages(msgs, n));
    idvec v = {0};
    int rc = TG_OK;
    for (int i = 0; i <= n && rc == TG_OK; i++) {
        if (i == n && !add_generation_prompt) break;
        const char *role = i < n ? msgs[i].role : "assistant";
        char header[16]; /* "assistant\n" is the longest */
        int hl = snprintf(header, sizeof header, "%s\n", role);
        rc = push_marker(&v, tok, im_start, TG_TOKEN_IM_START);
        if (rc == TG_OK) rc = push_text(&v, tok, header, (size_t)hl);
        if (i == n) break; /* the assistant's turn stays open */
        if (spans) spans[i].begin = v.n;
        if (rc == TG_OK) rc = push_text(&v, tok, msgs[i].content, strlen(msgs[i].content));
        if (spans) spans[i].end = v.n;
        if (rc == TG_OK) rc = push_marker(&v, tok, im_end, TG_TOKEN_IM_END);
        if (rc == TG_OK) rc = push_text(&v, tok, "\n", 1);
    }
    if (rc != TG_OK) {
        free(v.ids);
        return rc;
    }
    if (!v.ids) v.ids = malloc(sizeof *v.ids); /* an empty conversation: a valid pointer all the same */
    if (!v.ids) return tg_error_set(TG_ERR_RUNTIME, "chat: out of memory");
    *ids = v.ids;
    *n_ids = v.n;
    return TG_OK;
}
