/*
 * cmd_chat.c — `truthgpt chat`: a terminal conversation with a chat model.
 * Replies stream as they are generated; the history is kept and re-sent
 * through the ChatML template each turn (the oldest turns are dropped when
 * the conversation outgrows the context). Commands: /reset, /system TEXT,
 * /temp X, /quit, /help. When stdin is not a terminal it reads one message
 * a line and prints one reply a line, so scripts can drive it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "infer/engine.h"

typedef struct {
    char *text;
    size_t len, cap;
} reply_buf;

static int on_token(const tg_token_event *ev, void *user) {
    reply_buf *r = user;
    if (ev->text_len > 0) {
        fwrite(ev->text, 1, (size_t)ev->text_len, stdout);
        fflush(stdout);
        if (r->len + (size_t)ev->text_len + 1 > r->cap) {
            size_t cap = (r->len + (size_t)ev->text_len + 1) * 2;
            char *p = realloc(r->text, cap);
            if (!p) return 1; /* out of memory: stop this reply */
            r->text = p;
            r->cap = cap;
        }
        memcpy(r->text + r->len, ev->text, (size_t)ev->text_len);
        r->len += (size_t)ev->text_len;
        r->text[r->len] = 0;
    }
    return 0;
}

typedef struct {
    tg_chat_message *m;
    int n, cap;
} history;

static int hist_push(history *h, const char *role, const char *content) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 16;
        tg_chat_message *p = realloc(h->m, (size_t)cap * sizeof *p);
        if (!p) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        h->m = p;
        h->cap = cap;
    }
    char *c = strdup(content);
    if (!c) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    h->m[h->n].role = role;
    h->m[h->n].content = c;
    h->n++;
    return TG_OK;
}

/* Drops message i (keeps the order of the rest). */
static void hist_drop(history *h, int i) {
    free((char *)h->m[i].content);
    memmove(h->m + i, h->m + i + 1, (size_t)(h->n - i - 1) * sizeof *h->m);
    h->n--;
}

static void hist_clear(history *h) {
    while (h->n > 0) hist_drop(h, h->n - 1);
}

int tg_cmd_chat(int argc, char **argv) {
    const char *model_path = NULL, *system = NULL, *dtype_s = "fp32";
    float temperature = 0.7f, top_p = 0.95f;
    int max_tokens = 256, threads = 0;
    int64_t seed = 0;
    const char *device = "cpu";
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &model_path, "PATH", "checkpoint directory, or run directory (its newest checkpoint)"},
        {"system", TG_OPT_STR, &system, "TEXT", "system message at the start of the conversation"},
        {"temperature", TG_OPT_FLOAT, &temperature, "T", "sampling temperature (0: greedy)"},
        {"top-p", TG_OPT_FLOAT, &top_p, "P", "nucleus sampling mass (1: off)"},
        {"max-tokens", TG_OPT_INT, &max_tokens, "N", "longest reply in tokens"},
        {"seed", TG_OPT_I64, &seed, "S", "random seed (0: from the clock)"},
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16", "weight precision for generation"},
        {"threads", TG_OPT_INT, &threads, "N", "threads (0: all cores)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt chat --model PATH [--system TEXT] [--temperature T]",
                           "Chat with a model in the terminal: replies stream as they are generated.\n"
                           "Commands: /reset (forget the conversation), /system TEXT, /temp X, /quit.\n"
                           "With stdin not a terminal, each line is one message and each reply one line.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!model_path) {
        fprintf(stderr, "truthgpt: chat: --model PATH is required\n");
        return 2;
    }
    tg_dtype dtype;
    if (tg_cli_dtype(dtype_s, &dtype) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (!(temperature >= 0)) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--temperature must be >= 0"));
    if (max_tokens < 1) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--max-tokens must be positive"));
    if (threads > 0) tg_set_threads(threads);

    tg_model *model = NULL;
    tg_tokenizer *tok = NULL;
    tg_engine *e = NULL;
    char dir[4096];
    rc = tg_infer_load(model_path, &model, &tok, dir, sizeof dir);
    if (rc != TG_OK) return tg_cli_fail(rc);
    int32_t im_end = -1;
    if (!tok) {
        rc = tg_error_set(TG_ERR_INPUT, "chat needs a tokenizer: %s has no tokenizer.json", dir);
    } else {
        im_end = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
        if (im_end < 0 || tg_tokenizer_token_id(tok, TG_TOKEN_IM_START) < 0 ||
            im_end >= tg_model_config(model)->vocab_size)
            rc = tg_error_set(TG_ERR_INPUT,
                              "%s is not a chat model: its tokenizer has no <|im_start|>/<|im_end|> "
                              "(truthgpt finetune adds them)",
                              dir);
    }
    if (rc == TG_OK) rc = tg_engine_init(&e, model, tok, 1, 0, dtype);
    if (rc != TG_OK) {
        tg_tokenizer_free(tok);
        tg_model_free(model);
        return tg_cli_fail(rc);
    }
    const int n_ctx = tg_engine_max_ctx(e);
    const int tty = isatty(0);
    uint64_t rng_seed = seed ? (uint64_t)seed : (uint64_t)(tg_now() * 1e6);
    char *sys = system ? strdup(system) : NULL;
    history h = {0};
    char *line = NULL;
    size_t lcap = 0;
    if (tty)
        fprintf(stderr, "truthgpt chat — %s (context %d tokens). /reset, /system TEXT, /temp X, /quit\n", dir, n_ctx);
    for (;;) {
        if (tty) {
            fprintf(stderr, "\nyou> ");
            fflush(stderr);
        }
        ssize_t n = getline(&line, &lcap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (line[0] == '/') {
            if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
            if (!strcmp(line, "/reset")) {
                hist_clear(&h);
                if (tty) fprintf(stderr, "(conversation cleared)\n");
            } else if (!strncmp(line, "/system", 7) && (line[7] == ' ' || line[7] == 0)) {
                free(sys);
                sys = line[7] && line[8] ? strdup(line + 8) : NULL;
                if (tty) fprintf(stderr, sys ? "(system message set)\n" : "(system message removed)\n");
            } else if (!strncmp(line, "/temp", 5)) {
                char *end;
                float t = strtof(line + 5, &end);
                if (end == line + 5 || !(t >= 0)) {
                    fprintf(stderr, "truthgpt: /temp needs a number >= 0\n");
                } else {
                    temperature = t;
                    if (tty) fprintf(stderr, "(temperature %g)\n", (double)t);
                }
            } else if (!strcmp(line, "/help")) {
                fprintf(stderr, "/reset  /system TEXT  /temp X  /quit\n");
            } else {
                fprintf(stderr, "truthgpt: unknown command '%s' (/reset, /system TEXT, /temp X, /quit)\n", line);
            }
            if (!tty) printf("\n"); /* one output line per input line */
            fflush(stdout);
            continue;
        }
        if ((rc = hist_push(&h, "user", line)) != TG_OK) break;
        /* the conversation as ids; drop the oldest turns until a reply fits */
        int32_t *ids = NULL;
        size_t n_ids = 0;
        for (;;) {
            int ns = sys ? 1 : 0;
            tg_chat_message *msgs = malloc((size_t)(h.n + 1) * sizeof *msgs);
            if (!msgs) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            if (sys) msgs[0] = (tg_chat_message){"system", sys};
            memcpy(msgs + ns, h.m, (size_t)h.n * sizeof *msgs);
            rc = tg_infer_encode_chat(tok, msgs, h.n + ns, true, &ids, &n_ids);
            free(msgs);
            if (rc != TG_OK) break;
            int room = n_ctx - (int)n_ids;
            if (room >= (max_tokens < n_ctx / 4 ? max_tokens : n_ctx / 4) || h.n <= 1) break;
            free(ids);
            ids = NULL;
            hist_drop(&h, 0); /* the oldest message goes first */
        }
        if (rc != TG_OK) break;
        if ((int)n_ids >= n_ctx) {
            fprintf(stderr, "truthgpt: that message is too long for the model's context (%zu of %d tokens)\n", n_ids,
                    n_ctx);
            free(ids);
            hist_drop(&h, h.n - 1);
            if (!tty) printf("\n");
            continue;
        }
        tg_sampling_params p = tg_sampling_default_params();
        p.temperature = temperature;
        p.top_p = top_p;
        p.max_tokens = max_tokens;
        p.seed = rng_seed++;
        p.stop_ids[0] = im_end;
        p.stop[0] = TG_TOKEN_IM_END; /* in case the model spells it out as text */
        reply_buf r = {0};
        if (tty) {
            fprintf(stderr, "\nbot> ");
            fflush(stderr);
        }
        tg_finish_reason fin = TG_FINISH_NONE;
        rc = tg_generate(e, ids, (int)n_ids, &p, on_token, &r, NULL, 0, NULL, &fin);
        free(ids);
        printf("\n");
        fflush(stdout);
        if (rc != TG_OK) {
            free(r.text);
            break;
        }
        if (tty && fin == TG_FINISH_LENGTH) fprintf(stderr, "(reply cut at %d tokens)\n", max_tokens);
        rc = hist_push(&h, "assistant", r.text ? r.text : "");
        free(r.text);
        if (rc != TG_OK) break;
    }
    free(line);
    hist_clear(&h);
    free(h.m);
    free(sys);
    tg_engine_free(e);
    tg_tokenizer_free(tok);
    tg_model_free(model);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
