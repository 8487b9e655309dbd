/*
 * cmd_chat.c — `truthgpt chat`: a terminal conversation with a chat model.
 * Replies stream as they are generated; the history is kept and re-sent
 * through the ChatML template each turn (the oldest turns are dropped when
 * the conversation outgrows the context). Commands: /reset, /system TEXT,
 * /temp X, /quit, /help. When stdin is not a terminal it reads one message
 * a line and prints one reply a line, so scripts can drive it.
 *
 * --index DB grounds each reply in the posts: the top posts for the message
 * go into the prompt as numbered sources (the template of
 * tg_search_sources_prompt, as the server's grounding), and the sources are
 * listed under the reply, those it cites marked (on stdout in a terminal; on
 * stderr from a pipe, so stdout keeps one reply a line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "infer/engine.h"
#include "search/search.h"

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

/* The sources under a grounded reply: number, author, date, URL, snippet;
 * "cited" where the reply has its marker [N]. */
static void print_sources(FILE *f, const tg_search_results *res, int n_used, const char *reply) {
    if (n_used == 0) {
        fprintf(f, res->n ? "(%d posts matched, none fit in the model's context; answered without sources)\n"
                          : "(no posts matched; answered without sources)\n", res->n);
        return;
    }
    tg_search_citation c[64];
    int nc = reply ? tg_search_citations(reply, strlen(reply), n_used, c, 64) : 0;
    fprintf(f, "sources:\n");
    for (int i = 0; i < n_used; i++) {
        const tg_search_hit *hit = &res->hits[i];
        int cited = 0;
        for (int k = 0; k < nc; k++) cited |= c[k].source == i + 1;
        char date[11] = "";
        if (hit->created_at) snprintf(date, sizeof date, "%s", hit->created_at);
        fprintf(f, "  [%d]%s %s %s%s%s\n      %s\n", i + 1, cited ? " (cited)" : "", hit->author ? hit->author : "(unknown)",
                date[0] ? date : "(undated)", hit->url ? "  " : "", hit->url ? hit->url : "", hit->snippet);
    }
}

int tg_cmd_chat(int argc, char **argv) {
    const char *model_path = NULL, *system = NULL, *dtype_s = "fp32", *index_path = NULL;
    int top_k = 3;
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
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16|int8", "weight precision for generation (int8: blocks of 32, fp32 sums)"},
        {"threads", TG_OPT_INT, &threads, "N", "threads (0: all cores)"},
        {"index", TG_OPT_STR, &index_path, "DB", "ground replies in the posts of this search index (truthgpt index)"},
        {"top-k", TG_OPT_INT, &top_k, "K", "with --index: posts given to the model per message (1..10)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt chat --model PATH [--system TEXT] [--temperature T]",
                           "Chat with a model in the terminal: replies stream as they are generated.\n"
                           "Commands: /reset (forget the conversation), /system TEXT, /temp X, /quit.\n"
                           "With stdin not a terminal, each line is one message and each reply one line.\n"
                           "--index DB: each message's top posts go into the prompt as numbered sources and are\n"
                           "listed under the reply (on stderr when stdin is not a terminal).",
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
    if (top_k < 1 || top_k > 10) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--top-k: %d is not in 1..10", top_k));
    tg_search_db *db = NULL;
    if (index_path && (rc = tg_search_open(index_path, 0, &db)) != TG_OK) return tg_cli_fail(rc);

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
        tg_search_close(db);
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
        /* Grounding: this message's top posts (the history stays ungrounded). */
        tg_search_results res = {0};
        int n_src = 0, cut = 400;
        if (db) {
            tg_search_params sp = tg_search_default_params();
            sp.limit = top_k;
            int src = tg_search_run(db, line, &sp, &res);
            if (src != TG_OK && src != TG_ERR_INPUT) { /* no words: nothing to retrieve */
                rc = src;
                break;
            }
            n_src = res.n;
        }
        /* the conversation as ids; drop the oldest turns, then shorten and
         * drop sources, until a reply fits */
        int32_t *ids = NULL;
        size_t n_ids = 0;
        for (;;) {
            int ns = sys ? 1 : 0;
            char *block = n_src > 0 ? tg_search_sources_prompt(res.hits, n_src, cut) : NULL;
            tg_chat_message *msgs = malloc((size_t)(h.n + 2) * sizeof *msgs);
            if (!msgs || (n_src > 0 && !block)) {
                free(msgs);
                free(block);
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
            if (sys) msgs[0] = (tg_chat_message){"system", sys};
            memcpy(msgs + ns, h.m, (size_t)(h.n - 1) * sizeof *msgs);
            int m = ns + h.n - 1;
            if (block) msgs[m++] = (tg_chat_message){"system", block}; /* right before the question */
            msgs[m++] = h.m[h.n - 1];
            rc = tg_infer_encode_chat(tok, msgs, m, true, &ids, &n_ids);
            free(msgs);
            free(block);
            if (rc != TG_OK) break;
            int room = n_ctx - (int)n_ids;
            if (room >= (max_tokens < n_ctx / 4 ? max_tokens : n_ctx / 4) || (h.n <= 1 && n_src == 0)) break;
            free(ids);
            ids = NULL;
            if (h.n > 1) hist_drop(&h, 0); /* the oldest message goes first */
            else if (cut > 50) cut /= 2;
            else n_src--;
        }
        if (rc != TG_OK) {
            tg_search_results_free(&res);
            break;
        }
        if ((int)n_ids >= n_ctx) {
            tg_search_results_free(&res);
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
        if (db && rc == TG_OK) print_sources(tty ? stdout : stderr, &res, n_src, r.text);
        tg_search_results_free(&res);
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
    tg_search_close(db);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
