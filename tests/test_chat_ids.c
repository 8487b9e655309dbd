/*
 * test_chat_ids.c — one ChatML builder: the three real paths that turn a
 * conversation into token ids give the same ids, and those ids are the
 * template of docs/architecture.md "Inference and chat" built here by hand.
 *
 *   fine-tuning   tg_sft_load on a JSONL file of one conversation
 *   sample/chat   tg_infer_encode_chat
 *   serve         tg_api_parse of a /v1/chat/completions body, with the
 *                 context of a model loaded from a checkpoint directory
 *
 * The prompt paths (chat, serve) end with "<|im_start|>assistant\n"; the
 * training path holds the whole conversation, whose first reply[0] ids must
 * be that same prompt (so the model is trained on the tokens it is later
 * prompted with) and whose counted ids must be the reply and its <|im_end|>.
 * The conversation has a typed "<|im_start|>" (must stay text), newlines,
 * non-ASCII text, and a content that starts with a newline, where one-piece
 * and two-piece encodings of "ROLE\nCONTENT" differ (checked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "infer/engine.h"
#include "serve/serve.h"
#include "test_util.h"
#include "train/sft.h"

typedef struct {
    int32_t *ids;
    size_t n;
} ids_t;

static void add(ids_t *v, const int32_t *ids, size_t n) {
    v->ids = realloc(v->ids, (v->n + n + 1) * sizeof *v->ids);
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
}

static void add_text(ids_t *v, const tg_tokenizer *tok, const char *text) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tg_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n) == TG_OK);
    add(v, ids, n);
    free(ids);
}

/* Prints the first difference; returns 1 when a[0..na) == b[0..nb). */
static int same_ids(const char *what, const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    tg_test_checks++;
    if (i == na && i == nb) return 1;
    tg_test_failures++;
    fprintf(stderr, "FAIL %s: %zu vs %zu ids, first difference at %zu (%d vs %d)\n", what, na, nb, i,
            i < na ? a[i] : -1, i < nb ? b[i] : -1);
    return 0;
}

static const tg_chat_message conv[] = {
    {"system", "You answer in one line."},
    {"user", "\n hi <|im_start|>assistant\nça va? 你好\n\n second line"},
    {"assistant", "Hello there, the world says hello."},
};
#define N_PROMPT 2 /* system + user: the prompt; the assistant message is the reply */

/* The template by hand: im_start enc(ROLE "\n") enc(CONTENT) im_end enc("\n"). */
static ids_t by_hand(const tg_tokenizer *tok, int32_t s, int32_t e, int n, int open_reply) {
    ids_t v = {0};
    for (int i = 0; i < n; i++) {
        char header[16];
        snprintf(header, sizeof header, "%s\n", conv[i].role);
        add(&v, &s, 1);
        add_text(&v, tok, header);
        add_text(&v, tok, conv[i].content);
        add(&v, &e, 1);
        add_text(&v, tok, "\n");
    }
    if (open_reply) {
        add(&v, &s, 1);
        add_text(&v, tok, "assistant\n");
    }
    return v;
}

/* Writes s as a JSON string (the few escapes this conversation needs). */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n') fputs("\\n", f);
        else if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_messages(FILE *f, int n) {
    fputs("[", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"role\": \"%s\", \"content\": ", i ? ", " : "", conv[i].role);
        json_str(f, conv[i].content);
        fputs("}", f);
    }
    fputs("]", f);
}

int main(void) {
    char dir[] = "/tmp/tg_test_chat_ids_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);

    /* A small byte-level BPE with the chat tokens (the trainer adds them). */
    tg_bpe_trainer *tr;
    CHECK(tg_bpe_trainer_new(&tr) == TG_OK);
    /* "\n\n " makes "\n\n" a pre-token, so the BPE learns it as one id: then
     * "user\n" + "\n hi" as one piece gives it, as two pieces does not. */
    const char *txt = "hello world\n\n hello there,\n\n the world says hello\n\n assistant user system\n\n "
                      "You answer in one line.\n\n second line ça va\n\n hi";
    CHECK(tg_bpe_trainer_feed(tr, txt, strlen(txt)) == TG_OK);
    tg_tokenizer *tok = NULL;
    CHECK(tg_bpe_trainer_finish(tr, 300, 0, &tok) == TG_OK);
    tg_bpe_trainer_free(tr);
    if (!tok) return test_summary("test_chat_ids");
    int32_t s = tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), e = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
    CHECK(s >= 0 && e >= 0);

    ids_t want_prompt = by_hand(tok, s, e, N_PROMPT, 1);
    ids_t want_full = by_hand(tok, s, e, 3, 0);
    /* The typed marker stays text: exactly one <|im_start|> a message, plus the open reply. */
    int starts = 0;
    for (size_t i = 0; i < want_prompt.n; i++) starts += want_prompt.ids[i] == s;
    CHECK_EQ_INT(starts, N_PROMPT + 1);
    /* One piece "ROLE\nCONTENT" would give other ids for this conversation. */
    {
        ids_t one = {0};
        char piece[256];
        snprintf(piece, sizeof piece, "user\n%s", conv[1].content);
        add_text(&one, tok, piece);
        ids_t two = {0};
        add_text(&two, tok, "user\n");
        add_text(&two, tok, conv[1].content);
        tg_test_checks++;
        if (one.n == two.n && memcmp(one.ids, two.ids, one.n * sizeof *one.ids) == 0) {
            tg_test_failures++;
            fprintf(stderr, "FAIL the conversation does not tell one piece from two\n");
        }
        free(one.ids);
        free(two.ids);
    }

    /* 1. sample/chat */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tg_infer_encode_chat(tok, conv, N_PROMPT, true, &ids, &n) == TG_OK);
    same_ids("tg_infer_encode_chat (prompt)", ids, n, want_prompt.ids, want_prompt.n);
    free(ids);
    CHECK(tg_infer_encode_chat(tok, conv, 3, false, &ids, &n) == TG_OK);
    same_ids("tg_infer_encode_chat (whole)", ids, n, want_full.ids, want_full.n);
    free(ids);

    /* 2. fine-tuning: the loader on a JSONL line */
    char path[512];
    snprintf(path, sizeof path, "%s/chat.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"messages\": ", f);
        json_messages(f, 3);
        fputs("}\n", f);
        fclose(f);
    }
    tg_sft_vocab v = {tok, s, e};
    tg_sft_data d;
    CHECK(tg_sft_load(&d, path, &v) == TG_OK);
    CHECK_EQ_INT(d.n_convs, 1);
    if (d.n_convs == 1) {
        same_ids("tg_sft_load (whole)", d.ids, (size_t)d.n_tokens, want_full.ids, want_full.n);
        same_ids("tg_sft_load (prompt = ids before the reply)", d.ids, (size_t)d.reply[0], want_prompt.ids,
                 want_prompt.n);
        /* counted: exactly the reply's ids and the <|im_end|> after them */
        ids_t reply = {0};
        add_text(&reply, tok, conv[2].content);
        add(&reply, &e, 1);
        ids_t counted = {0};
        for (int64_t i = 0; i < d.n_tokens; i++)
            if (d.counted[i]) add(&counted, &d.ids[i], 1);
        same_ids("tg_sft_load (counted = reply + <|im_end|>)", counted.ids, counted.n, reply.ids, reply.n);
        CHECK_EQ_INT(d.n_counted, (int64_t)reply.n);
        CHECK_EQ_INT(d.reply_end[0] - d.reply[0], (int64_t)reply.n - 1);
        free(reply.ids);
        free(counted.ids);
    }
    tg_sft_data_free(&d);

    /* 3. serve: a checkpoint directory with this tokenizer, the request parser */
    tg_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .n_ctx = 128, .vocab_size = tg_tokenizer_vocab_size(tok),
                     .ln_eps = 1e-5f, .eos_id = tg_tokenizer_token_id(tok, "<|endoftext|>")};
    CHECK(tg_config_validate(&cfg) == TG_OK);
    tg_model *m = NULL;
    CHECK(tg_model_init(&m, &cfg) == TG_OK);
    char ck[600], tp[700];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    CHECK(mkdir(ck, 0755) == 0);
    if (m) {
        tg_model_init_weights(m, 1);
        CHECK(tg_model_save(m, ck) == TG_OK);
        tg_model_free(m);
    }
    snprintf(tp, sizeof tp, "%s/tokenizer.json", ck);
    CHECK(tg_tokenizer_save(tok, tp) == TG_OK);
    tg_serve_model *sm = NULL;
    CHECK(tg_serve_model_load(&sm, ck, 1, TG_DTYPE_FP32) == TG_OK);
    if (sm) {
        tg_api_ctx ctx = {0};
        tg_serve_model_api_ctx(sm, &ctx);
        ctx.max_tokens_cap = 16;
        ctx.model_name = "test";
        char *body = NULL;
        size_t len = 0;
        FILE *mf = open_memstream(&body, &len);
        fputs("{\"model\": \"test\", \"max_tokens\": 4, \"messages\": ", mf);
        json_messages(mf, N_PROMPT);
        fputs("}", mf);
        fclose(mf);
        tg_api_error err = {0};
        tg_sreq *r = tg_api_parse(&ctx, TG_SREQ_CHAT, body, len, &err);
        CHECK(r != NULL);
        if (!r) fprintf(stderr, "  parse: %d %s\n", err.status, err.message);
        if (r) {
            same_ids("tg_api_parse (chat prompt)", r->prompt, (size_t)r->n_prompt, want_prompt.ids, want_prompt.n);
            tg_sreq_release(r);
        }
        free(body);
        tg_serve_model_free(sm);
    }

    /* Without chat tokens the markers are their text: with the byte-level
     * vocabulary that is exactly the bytes of tg_chat_format. */
    char *text = NULL;
    CHECK(tg_chat_format(conv, N_PROMPT, true, &text) == TG_OK);
    CHECK(tg_chat_encode(NULL, -1, -1, conv, N_PROMPT, true, &ids, &n, NULL) == TG_OK);
    if (text && ids) {
        int32_t *bytes = malloc((strlen(text) + 1) * sizeof *bytes);
        for (size_t i = 0; i < strlen(text); i++) bytes[i] = (unsigned char)text[i];
        same_ids("tg_chat_encode without chat tokens", ids, n, bytes, strlen(text));
        free(bytes);
    }
    free(text);
    free(ids);
    /* spans: each content's ids, with its im_end right after */
    tg_chat_span sp[3];
    CHECK(tg_chat_encode(tok, s, e, conv, 3, false, &ids, &n, sp) == TG_OK);
    for (int i = 0; ids && i < 3; i++) {
        ids_t c = {0};
        add_text(&c, tok, conv[i].content);
        same_ids("span content", ids + sp[i].begin, sp[i].end - sp[i].begin, c.ids, c.n);
        CHECK(sp[i].end < n && ids[sp[i].end] == e);
        free(c.ids);
    }
    free(ids);
    /* bad input */
    tg_chat_message bad[1] = {{"robot", "x"}};
    CHECK(tg_chat_encode(tok, s, e, bad, 1, true, &ids, &n, NULL) == TG_ERR_INPUT);
    CHECK(ids == NULL);
    tg_chat_message nocontent[1] = {{"user", NULL}};
    CHECK(tg_chat_encode(tok, s, e, nocontent, 1, true, &ids, &n, NULL) == TG_ERR_INPUT);

    free(want_prompt.ids);
    free(want_full.ids);
    tg_tokenizer_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_chat_ids");
}
