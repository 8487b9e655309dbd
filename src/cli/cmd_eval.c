/*
 * cmd_eval.c — `truthgpt eval`: mean cross-entropy (and perplexity) of a
 * model over the first N sequential micro-batches of token shards (the data
 * order of docs/architecture.md "Training contract" with the shuffle off),
 * the same computation the trainer logs as val_loss.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "train/loader.h"

int tg_cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *doc_attention = "off";
    /* train's evaluation defaults, so eval's loss is the run's logged val_loss */
    tg_train_params d = tg_train_default_params(TG_TRAIN_PRETRAIN);
    int batches = d.eval_batches, batch = d.batch, ctx = 0, json = 0, threads = 0;
    const char *device = "cpu";
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &model, "PATH", "checkpoint directory, or run directory (its newest checkpoint)"},
        {"data", TG_OPT_STR, &data, "DIR|FILE", "token shards: DIR's val-*.tok if any, else all its *.tok; or one file"},
        {"batches", TG_OPT_INT, &batches, "N", "micro-batches to average over (capped at what the data hold)"},
        {"batch", TG_OPT_INT, &batch, "B", "sequences per micro-batch"},
        {"ctx", TG_OPT_INT, &ctx, "T", "sequence length (0: the model's context)"},
        {"doc-attention", TG_OPT_STR, &doc_attention, "on|off",
         "attention inside each document, as `train --doc-attention on`"},
        {"json", TG_OPT_FLAG, &json, NULL, "print {\"loss\", \"ppl\", \"tokens\"} as JSON"},
        {"threads", TG_OPT_INT, &threads, "N", "threads (0: all cores)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt eval --model PATH --data DIR|FILE [--batches N] [--batch B] [--ctx T] [--json]",
                           "Mean loss (nats per token) and perplexity of a model on token shards, over the first N\n"
                           "sequential micro-batches.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!model || !data) {
        fprintf(stderr, "truthgpt: eval: --model PATH and --data DIR|FILE are required\n");
        return 2;
    }
    if (batches <= 0) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--batches must be positive (got %d)", batches));
    if (batch <= 0) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--batch must be positive (got %d)", batch));
    if (ctx < 0) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--ctx must be positive (got %d)", ctx));
    int doc = tg_cli_on_off("doc-attention", doc_attention);
    if (doc < 0) return tg_cli_fail(TG_ERR_INPUT);
    if (threads > 0) tg_set_threads(threads);

    tg_model *m = NULL;
    tg_loader l;
    memset(&l, 0, sizeof l);
    rc = tg_model_load(&m, model);
    const tg_config *cfg = m ? tg_model_config(m) : NULL;
    int T = ctx ? ctx : (cfg ? cfg->n_ctx : 0);
    if (rc == TG_OK && T > cfg->n_ctx)
        rc = tg_error_set(TG_ERR_INPUT, "--ctx %d is longer than the model's context of %d", T, cfg->n_ctx);
    if (rc == TG_OK) rc = tg_loader_open(&l, data, tg_shards_with_prefix(data, "val") ? "val" : NULL, batch, T, 1, 0, 0);
    if (rc == TG_OK && doc) rc = tg_loader_doc_attention(&l);
    if (rc == TG_OK && l.ts.vocab_size > cfg->vocab_size)
        rc = tg_error_set(TG_ERR_INPUT, "--data %s: vocabulary of %d is larger than the model's %d", data, l.ts.vocab_size,
                          cfg->vocab_size);
    if (rc == TG_OK && l.ts.n_tokens < (int64_t)batch * T + 1)
        rc = tg_error_set(TG_ERR_INPUT, "--data %s: %lld tokens, fewer than one micro-batch of %d x %d + 1 (lower --batch or --ctx)",
                          data, (long long)l.ts.n_tokens, batch, T);
    if (rc == TG_OK) rc = tg_model_alloc_train(m, batch, T, TG_DTYPE_FP32);
    /* Never count a token twice: at most the windows the data hold. */
    int64_t n = batches < l.n_windows ? batches : l.n_windows;
    double sum = 0, count = 0;
    tg_progress prog;
    tg_progress_start(&prog, "eval", (double)n);
    for (int64_t k = 0; rc == TG_OK && k < n; k++) {
        tg_batch b;
        double ls = 0, c = 0;
        rc = tg_loader_next(&l, k, &b);
        if (rc == TG_OK) rc = tg_model_forward(m, &b, &ls, &c);
        sum += ls;
        count += c;
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", count > 0 ? sum / count : 0.0);
        tg_progress_update(&prog, (double)(k + 1), extra);
    }
    if (rc == TG_OK) {
        double loss = sum / count;
        if (json) printf("{\"loss\":%.9g,\"ppl\":%.9g,\"tokens\":%.0f}\n", loss, exp(loss), count);
        else
            printf("loss %.4f  ppl %.3f  over %.0f tokens (%lld batches of %d x %d)\n", loss, exp(loss), count, (long long)n,
                   batch, T);
    }
    int status = rc == TG_OK ? 0 : tg_cli_fail(rc);
    if (l.tokens) tg_loader_close(&l);
    if (m) tg_model_free(m);
    return status;
}
