/*
 * cmd_sample.c — `truthgpt sample`: generates text (or ids, for a model
 * without a tokenizer and not byte-level) from a prompt with the KV-cached
 * engine. One sample streams to stdout as it is generated; several run
 * together as one batch (one slot each) and print in order at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "infer/engine.h"

typedef struct {
    int stream;      /* print text as it comes */
    int ids_mode;    /* print ids rather than text */
    int show_probs;
    char *buf;       /* collected output when not streaming */
    size_t len, cap;
    int n_tokens;
    tg_finish_reason finish;
} sample_out;

static void out_append(sample_out *o, const char *s, size_t n) {
    if (o->stream) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *p = realloc(o->buf, cap);
        if (!p) return;
        o->buf = p;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

/* Printable form of a token's bytes for --show-probs: escapes control bytes. */
static void quote_bytes(char *dst, size_t cap, const char *s, int n) {
    size_t o = 0;
    dst[o++] = '"';
    for (int i = 0; i < n && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') o += (size_t)snprintf(dst + o, cap - o, "\\n");
        else if (c == '"' || c == '\\') o += (size_t)snprintf(dst + o, cap - o, "\\%c", c);
        else if (c < 32 || c == 127) o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        else dst[o++] = (char)c;
    }
    dst[o++] = '"';
    dst[o] = 0;
}

static int on_token(const tg_token_event *ev, void *user) {
    sample_out *o = user;
    char line[1024];
    if (ev->token >= 0) o->n_tokens++;
    if (o->show_probs && ev->token >= 0) {
        char q[256];
        quote_bytes(q, sizeof q, ev->token_text, ev->token_text_len);
        int n = snprintf(line, sizeof line, "%6d %-24s p=%.4f ", ev->token, q, exp((double)ev->logprob));
        for (int i = 0; i < ev->n_top && n < (int)sizeof line - 64; i++) {
            quote_bytes(q, 48, ev->top[i].text, ev->top[i].text_len);
            n += snprintf(line + n, sizeof line - (size_t)n, "%s %s %.3f", i ? "," : " |", q,
                          exp((double)ev->top[i].logprob));
        }
        n += snprintf(line + n, sizeof line - (size_t)n, "\n");
        out_append(o, line, (size_t)n);
    } else if (o->ids_mode && ev->token >= 0) {
        int n = snprintf(line, sizeof line, "%s%d", o->n_tokens > 1 ? " " : "", ev->token);
        out_append(o, line, (size_t)n);
    } else if (!o->ids_mode && !o->show_probs && ev->text_len > 0) {
        out_append(o, ev->text, (size_t)ev->text_len);
    }
    if (ev->finish != TG_FINISH_NONE) o->finish = ev->finish;
    return 0;
}

static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16, k = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 2147483647L) {
            free(v);
            return tg_error_set(TG_ERR_INPUT, "--prompt-ids: '%s' is not a comma-separated list of ids", s);
        }
        if (k == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                free(v);
                return tg_error_set(TG_ERR_RUNTIME, "out of memory");
            }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    if (k == 0) {
        free(v);
        return tg_error_set(TG_ERR_INPUT, "--prompt-ids is empty");
    }
    *ids = v;
    *n = k;
    return TG_OK;
}

int tg_cmd_sample(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_ids = NULL, *stop = NULL, *dtype_s = "fp32";
    int max_tokens = 128, top_k = 0, num_samples = 1, show_probs = 0, threads = 0, ignore_eos = 0;
    float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f;
    int64_t seed = 1337;
    const char *device = "cpu";
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &model_path, "PATH", "checkpoint directory, or run directory (its newest checkpoint)"},
        {"prompt", TG_OPT_STR, &prompt, "TEXT", "prompt text (needs the checkpoint's tokenizer, or a byte-level model)"},
        {"prompt-ids", TG_OPT_STR, &prompt_ids, "1,2,3", "prompt as token ids (default: <|endoftext|> alone)"},
        {"max-tokens", TG_OPT_INT, &max_tokens, "N", "tokens to generate at most (0: until the context is full)"},
        {"temperature", TG_OPT_FLOAT, &temperature, "T", "0: greedy"},
        {"top-k", TG_OPT_INT, &top_k, "K", "keep the K most likely tokens (0: off)"},
        {"top-p", TG_OPT_FLOAT, &top_p, "P", "nucleus sampling mass (1: off)"},
        {"min-p", TG_OPT_FLOAT, &min_p, "P", "drop tokens below P times the top probability (0: off)"},
        {"stop", TG_OPT_STR, &stop, "TEXT", "stop string (not printed)"},
        {"ignore-eos", TG_OPT_FLAG, &ignore_eos, NULL, "keep going past <|endoftext|>"},
        {"seed", TG_OPT_I64, &seed, "S", "random seed (sample i uses S+i)"},
        {"num-samples", TG_OPT_INT, &num_samples, "N", "independent samples, generated together as one batch"},
        {"show-probs", TG_OPT_FLAG, &show_probs, NULL, "one line per token: id, text, probability, top-5 alternatives"},
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16|int8", "weight precision for generation (int8: blocks of 32, fp32 sums)"},
        {"threads", TG_OPT_INT, &threads, "N", "threads (0: all cores)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt sample --model PATH [--prompt TEXT | --prompt-ids 1,2,3] [--max-tokens N] "
                           "[--temperature T] [--top-k K] [--top-p P] [--seed S] [--num-samples N] [--show-probs]",
                           "Generates text from a model with its KV cache. The prompt is text (encoded with the\n"
                           "checkpoint's tokenizer.json) or ids; without either, generation starts from <|endoftext|>.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!model_path) {
        fprintf(stderr, "truthgpt: sample: --model PATH is required\n");
        return 2;
    }
    if (prompt && prompt_ids) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "give --prompt or --prompt-ids, not both"));
    if (num_samples < 1 || num_samples > 256)
        return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--num-samples must be 1-256 (got %d)", num_samples));
    if (max_tokens < 0) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--max-tokens must be >= 0 (got %d)", max_tokens));
    tg_dtype dtype;
    if (tg_cli_dtype(dtype_s, &dtype) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (threads > 0) tg_set_threads(threads);

    tg_model *model = NULL;
    tg_tokenizer *tok = NULL;
    tg_engine *e = NULL;
    int32_t *ids = NULL;
    int n_ids = 0;
    sample_out *outs = NULL;
    char dir[4096];
    rc = tg_infer_load(model_path, &model, &tok, dir, sizeof dir);
    if (rc != TG_OK) return tg_cli_fail(rc);
    const tg_config *cfg = tg_model_config(model);
    int byte_level = !tok && cfg->vocab_size == 257;
    if (prompt) {
        if (tok) {
            size_t n = 0;
            rc = tg_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n);
            n_ids = (int)n;
        } else if (byte_level) {
            n_ids = (int)strlen(prompt);
            ids = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *ids);
            if (!ids) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
            for (int i = 0; rc == TG_OK && i < n_ids; i++) ids[i] = (unsigned char)prompt[i];
        } else {
            rc = tg_error_set(TG_ERR_INPUT, "--prompt needs a tokenizer: %s has no tokenizer.json (use --prompt-ids)",
                              dir);
        }
        if (rc == TG_OK && n_ids == 0) rc = tg_error_set(TG_ERR_INPUT, "--prompt is empty");
    } else if (prompt_ids) {
        rc = parse_ids(prompt_ids, &ids, &n_ids);
    } else {
        ids = malloc(sizeof *ids);
        if (!ids) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        else ids[n_ids++] = cfg->eos_id;
    }
    if (rc == TG_OK) rc = tg_engine_init(&e, model, tok, num_samples, 0, dtype);
    if (rc == TG_OK) {
        outs = calloc((size_t)num_samples, sizeof *outs);
        if (!outs) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    int ids_mode = !tok && !byte_level;
    double t0 = tg_now();
    for (int i = 0; rc == TG_OK && i < num_samples; i++) {
        tg_sampling_params p = tg_sampling_default_params();
        p.temperature = temperature;
        p.top_k = top_k;
        p.top_p = top_p;
        p.min_p = min_p;
        p.seed = (uint64_t)seed + (uint64_t)i;
        p.max_tokens = max_tokens;
        p.ignore_eos = ignore_eos;
        p.stop[0] = stop;
        p.logprobs = show_probs;
        p.top_logprobs = show_probs ? 5 : 0;
        outs[i].stream = num_samples == 1;
        outs[i].ids_mode = ids_mode;
        outs[i].show_probs = show_probs;
        rc = tg_engine_add(e, ids, n_ids, &p, on_token, &outs[i], NULL);
    }
    if (rc == TG_OK && num_samples == 1 && !show_probs && !ids_mode) {
        fwrite(prompt ? prompt : "", 1, prompt ? strlen(prompt) : 0, stdout); /* the text continues the prompt */
        fflush(stdout);
    }
    while (rc == TG_OK && tg_engine_active(e) > 0) rc = tg_engine_step(e);
    double dt = tg_now() - t0;
    int total = 0;
    for (int i = 0; rc == TG_OK && i < num_samples; i++) {
        total += outs[i].n_tokens;
        if (num_samples > 1) {
            printf("--- sample %d (seed %lld, %d tokens, %s)\n", i + 1, (long long)(seed + i), outs[i].n_tokens,
                   tg_finish_reason_str(outs[i].finish));
            if (prompt && !show_probs && !ids_mode) fputs(prompt, stdout);
            if (outs[i].buf) fputs(outs[i].buf, stdout);
        }
        printf("\n");
    }
    if (rc == TG_OK)
        fprintf(stderr, "truthgpt: %d prompt tokens, %d generated in %.2fs (%.1f tokens/s, %d stream%s, %s)%s%s\n", n_ids,
                total, dt, total / (dt > 0 ? dt : 1e-9), num_samples, num_samples > 1 ? "s" : "", dtype_s,
                num_samples == 1 ? ", finish: " : "", num_samples == 1 ? tg_finish_reason_str(outs[0].finish) : "");
    if (outs)
        for (int i = 0; i < num_samples; i++) free(outs[i].buf);
    free(outs);
    free(ids);
    tg_engine_free(e);
    tg_tokenizer_free(tok);
    tg_model_free(model);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
