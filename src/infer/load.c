/*
 * load.c — what the inference commands share: loading a checkpoint's model
 * and tokenizer, and the token ids of a ChatML conversation (through
 * tg_chat_encode, the builder fine-tuning and the server use too).
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

int tg_infer_encode_chat(const tg_tokenizer *tok, const tg_chat_message *msgs, int n, bool add_generation_prompt,
                         int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    int32_t start = tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), end = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
    if (start < 0 || end < 0)
        return tg_error_set(TG_ERR_INPUT, "the tokenizer has no %s/%s tokens (fine-tune the model to chat first)",
                            TG_TOKEN_IM_START, TG_TOKEN_IM_END);
    return tg_chat_encode(tok, start, end, msgs, n, add_generation_prompt, ids, n_ids, NULL);
}
