/*
 * load.c — what the inference commands share: loading a checkpoint's model
 * and tokenizer, and the token ids of a ChatML conversation (the same ids
 * the fine-tuning data get: markers as special ids, text encoded plainly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/engine.h"

int tg_infer_load(const char *path, tg_model **model, tg_tokenizer **tok, char *dir, size_t n) {
    *model = NULL;
    *tok = NULL;
    TG_TRY(tg_checkpoint_resolve(path, dir, n));
    TG_TRY(tg_model_load(model, dir));
    char tp[4200];
    if (tg_checkpoint_tokenizer_path(dir, tp, sizeof tp)) {
        int rc = tg_tokenizer_load(tok, tp);
        if (rc != TG_OK) {
            tg_model_free(*model);
            *model = NULL;
            return rc;
        }
    }
    return TG_OK;
}

typedef struct {
    int32_t *ids;
    size_t n, cap;
} idvec;

static int push_ids(idvec *v, const int32_t *ids, size_t n) {
    if (v->n + n > v->cap) {
        size_t cap = (v->n + n) * 2 + 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return tg_error_set(TG_ERR_RUNTIME, "chat: out of memory");
        v->ids = p;
        v->cap = cap;
    }
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return TG_OK;
}

static int push_text(idvec *v, const tg_tokenizer *tok, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    TG_TRY(tg_tokenizer_encode(tok, text, len, 0, &ids, &n));
    int rc = push_ids(v, ids, n);
    free(ids);
    return rc;
}

int tg_infer_encode_chat(const tg_tokenizer *tok, const tg_chat_message *msgs, int n, bool add_generation_prompt,
                         int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int32_t start = tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), end = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
    if (start < 0 || end < 0)
        return tg_error_set(TG_ERR_INPUT, "the tokenizer has no %s/%s tokens (fine-tune the model to chat first)",
                            TG_TOKEN_IM_START, TG_TOKEN_IM_END);
    /* validate roles and contents through the text template */
    char *text = NULL;
    TG_TRY(tg_chat_format(msgs, n, add_generation_prompt, &text));
    free(text);
    idvec v = {0};
    int rc = TG_OK;
    for (int i = 0; i < n && rc == TG_OK; i++) {
        rc = push_ids(&v, &start, 1);
        /* "ROLE\n" as one text, then the content: the pieces fine-tuning encodes (sft.c) */
        char header[16];
        int hl = snprintf(header, sizeof header, "%s\n", msgs[i].role);
        if (rc == TG_OK) rc = push_text(&v, tok, header, (size_t)hl);
        if (rc == TG_OK && msgs[i].content[0]) rc = push_text(&v, tok, msgs[i].content, strlen(msgs[i].content));
        if (rc == TG_OK) rc = push_ids(&v, &end, 1);
        if (rc == TG_OK) rc = push_text(&v, tok, "\n", 1);
    }
    if (rc == TG_OK && add_generation_prompt) {
        rc = push_ids(&v, &start, 1);
        if (rc == TG_OK) rc = push_text(&v, tok, "assistant\n", 10);
    }
    if (rc != TG_OK) {
        free(v.ids);
        return rc;
    }
    *ids = v.ids;
    *n_ids = v.n;
    return TG_OK;
}
