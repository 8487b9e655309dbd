/*
 * bench_train.c — `truthgpt bench train`: training throughput of the model
 * on this machine, as tokens/s and MFU against the GEMM peak measured in the
 * same invocation, plus peak RSS against the memory the model should need.
 *
 * It measures the GEMM peak for the dtype (tg_gemm_peak_gflops), builds the
 * preset's model with the benchmark's vocabulary, and runs full training
 * steps (forward, backward, clip, AdamW) on synthetic tokens: a seeded
 * stream where each token is followed by one of 4 fixed successors, so the
 * loss falls and a bf16 run can be compared with an fp32 run by its loss.
 * Two untimed warm-up steps absorb first-touch page faults.
 *
 * MFU: flops per token 6N + 12*L*C*T (N: parameters with the true vocabulary,
 * without the position embedding; the second term is attention's QK^T and
 * AV, forward and backward) times tokens/s over the measured peak.
 *
 * Not here: data loading and checkpoints (truthgpt train does those); the
 * comparison with PyTorch is bench/compare_train.sh.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "core/core.h"

typedef struct {
    const char *name;
    int V, T, B; /* the benchmark's vocabulary, context and batch for the preset */
} bench_preset;

static const bench_preset bench_presets[] = {
    {"tiny", 8192, 256, 8},
    {"small", 8192, 256, 8},
    {"gpt2", 50257, 256, 4},
    {"gpt2-medium", 50257, 256, 4},
    {"gpt2-large", 50257, 256, 2},
    {"gpt2-xl", 50257, 256, 1},
};

/* The seeded synthetic stream (see the file comment). */
static void synthetic_tokens(int32_t *out, size_t n, int V, uint64_t seed, int32_t *succ /* V*4 */) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)V * 4; i++) succ[i] = (int32_t)(tg_rng_next(&r) % (uint64_t)V);
    int32_t t = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = t;
        t = succ[(size_t)t * 4 + (tg_rng_next(&r) & 3)];
    }
}

/* Floats of what training must hold: parameters, gradients, AdamW's two
 * moments, and the activations backward needs (per layer: ln1, qkv, attention
 * output, residuals, ln2, fc and its GELU = 16*B*T*C, plus the B*NH*T*T
 * attention probabilities; logits B*T*Vp; one layer's backward temporaries,
 * 13*B*T*C). An independent estimate, not the model's own plan. */
static double expected_mb(const tg_config *c, int B, int T) {
    size_t sizes[TG_NUM_PARAM_TENSORS], n = 0;
    tg_param_sizes(c, sizes);
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) n += sizes[i];
    double BT = (double)B * T, C = c->n_embd;
    double acts = c->n_layer * (16 * BT * C + (double)B * c->n_head * T * T) + BT * c->padded_vocab + 13 * BT * C;
    return (4.0 * (double)n + acts) * sizeof(float) / (1024.0 * 1024.0);
}

/* CPU seconds (user + system) this process has used, all threads. On a
 * shared machine tokens per CPU-second is steadier than tokens per wall
 * second: time slices lost to other processes don't count. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int find_preset(const char *name) {
    for (size_t i = 0; i < sizeof bench_presets / sizeof bench_presets[0]; i++)
        if (!strcmp(bench_presets[i].name, name)) return (int)i;
    return -1;
}

int tg_bench_train(int argc, char **argv) {
    const char *preset = "small", *dtype_s = "fp32";
    int B = 0, T = 0, V = 0, steps = 10, json = 0, threads = 0, warmup = 2;
    int64_t seed = 1;
    float lr = tg_train_default_params(TG_TRAIN_PRETRAIN).lr; /* train's peak rate, held constant */
    const char *device = "cpu";
    double peak_tflops = 0;
    tg_opt opts[] = {
        {"preset", TG_OPT_STR, &preset, "NAME", "model preset: tiny, small, gpt2, gpt2-medium, gpt2-large, gpt2-xl"},
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16", "matrix-multiply precision"},
        {"batch", TG_OPT_INT, &B, "B", "micro-batch rows (0: the preset's, small 8, gpt2 4)"},
        {"ctx", TG_OPT_INT, &T, "T", "sequence length (0: 256)"},
        {"vocab", TG_OPT_INT, &V, "V", "vocabulary size (0: small 8192, gpt2 50257)"},
        {"steps", TG_OPT_INT, &steps, "N", "timed training steps, after the warm-up steps"},
        {"warmup", TG_OPT_INT, &warmup, "N", "untimed warm-up steps"},
        {"lr", TG_OPT_FLOAT, &lr, "LR", "learning rate (constant)"},
        {"seed", TG_OPT_I64, &seed, "N", "seed of the weights and the synthetic tokens"},
        {"threads", TG_OPT_INT, &threads, "N", "OpenMP threads (0: all cores)"},
        {"json", TG_OPT_FLAG, &json, NULL, "print a JSON object as the last line"},
        TG_OPT_DEVICE(device),
        {"peak-tflops", TG_OPT_DOUBLE, &peak_tflops, "X",
         "with --device cuda: the GPU's dense peak for the dtype that MFU is against (stated, not measured; "
         "0: 989, the H100/H200 bf16 figure, or 67 for fp32)"},
        {0},
    };
    int npos;
    int rc = tg_args_parse("truthgpt bench train [--preset NAME] [--dtype fp32|bf16] [options]",
                           "Measures the GEMM peak for the dtype, then trains the preset's model on synthetic tokens "
                           "and prints tokens/s, MFU (6N + 12*L*C*T flops per token over the measured peak), peak "
                           "RSS and the memory training should need. JSON keys: preset, dtype, tok_per_s, mfu, "
                           "peak_gflops, peak_rss_mb (and more).",
                           opts, argc, argv, NULL, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;

    int pi = find_preset(preset);
    tg_config cfg;
    if (pi < 0 || tg_config_preset(preset, &cfg) != TG_OK) {
        fprintf(stderr, "truthgpt: bench train: unknown --preset '%s' (tiny, small, gpt2, gpt2-medium, gpt2-large, "
                        "gpt2-xl)\n", preset);
        return 2;
    }
    tg_dtype dtype;
    if (tg_cli_dtype(dtype_s, &dtype) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (!B) B = bench_presets[pi].B;
    if (!T) T = bench_presets[pi].T;
    if (!V) V = bench_presets[pi].V;
    if (B <= 0 || T <= 0 || V <= 1 || steps <= 0 || warmup < 0 || threads < 0) {
        fprintf(stderr, "truthgpt: bench train: --batch, --ctx, --steps must be positive, --vocab > 1, --warmup and "
                        "--threads >= 0\n");
        return 2;
    }
    if (T > cfg.n_ctx) {
        fprintf(stderr, "truthgpt: bench train: --ctx %d is longer than the %s preset's context %d\n", T, preset,
                cfg.n_ctx);
        return 2;
    }
    cfg.n_ctx = T; /* the position table the benchmark needs, no more */
    cfg.vocab_size = V;
    cfg.eos_id = V - 1;
    if (tg_config_validate(&cfg) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (threads) tg_set_threads(threads);
    threads = tg_num_threads();

    double peak;
    if (strcmp(device, "cpu")) { /* a GPU: its datasheet peak, not a CPU measurement */
        peak = 1e3 * (peak_tflops > 0 ? peak_tflops : dtype == TG_DTYPE_BF16 ? 989.0 : 67.0);
        fprintf(stderr, "GEMM peak (%s, %s): %.1f GFLOP/s (stated, --peak-tflops)\n", dtype_s, device, peak);
    } else {
        peak = tg_gemm_peak_gflops(dtype);
        if (!(peak > 0)) return tg_cli_fail(TG_ERR_RUNTIME);
        fprintf(stderr, "GEMM peak (%s, %d threads, CPU kernels %s): %.1f GFLOP/s%s\n", dtype_s, threads,
                tg_cpu_kernels(), peak,
                dtype != TG_DTYPE_BF16 ? ""
                : tg_cpu_bf16_native() ? " (twice the fp32 sgemm plateau: AVX512_BF16 does two products a lane)"
                                       : " (this CPU has no bf16 products: bf16 matmuls run in fp32, at fp32's peak)");
    }

    tg_model *m = NULL;
    int32_t *tokens = NULL, *succ = NULL;
    rc = tg_model_init(&m, &cfg);
    if (rc == TG_OK) rc = tg_model_alloc_train(m, B, T, dtype);
    if (rc == TG_OK) rc = tg_model_init_weights(m, (uint64_t)seed);
    if (rc == TG_OK) rc = tg_model_optim_reset(m); /* the moments, before the first step */
    if (rc == TG_OK) {
        size_t n_tok = (size_t)(warmup + steps) * B * T + 1;
        tokens = tg_alloc(n_tok * sizeof(int32_t), "synthetic tokens");
        succ = tg_alloc((size_t)V * 4 * sizeof(int32_t), "synthetic successors");
        if (!tokens || !succ)
            rc = TG_ERR_RUNTIME;
        else
            synthetic_tokens(tokens, n_tok, V, (uint64_t)seed, succ);
    }
    if (rc != TG_OK) {
        tg_free(tokens), tg_free(succ);
        tg_model_free(m);
        return tg_cli_fail(rc);
    }

    tg_optim_params op = tg_optim_default_params();
    op.lr = lr;
    op.min_lr_frac = 1.0f; /* constant rate: the benchmark compares runs, not schedules */
    op.warmup = 0;
    op.total_steps = warmup + steps;

    const tg_config *c = tg_model_config(m);
    double flops_tok = 6.0 * (double)tg_config_num_params(c, false) + 12.0 * c->n_layer * c->n_embd * (double)T;
    size_t BT = (size_t)B * T;
    tg_progress pr;
    tg_progress_start(&pr, "bench train", warmup + steps);
    double t_start = 0, cpu_start = 0, loss_tail = 0;
    int tail_n = steps < 10 ? steps : 10, tail_have = 0;
    float loss = NAN;
    for (int s = 0; s < warmup + steps && rc == TG_OK; s++) {
        if (s == warmup) t_start = tg_now(), cpu_start = cpu_seconds();
        tg_batch bt = {.inputs = tokens + (size_t)s * BT, .targets = tokens + (size_t)s * BT + 1, .B = B, .T = T};
        double loss_sum = 0, count = 0;
        tg_model_zero_grad(m);
        rc = tg_model_forward(m, &bt, &loss_sum, &count);
        if (rc == TG_OK) rc = tg_model_backward(m, (float)(1.0 / count));
        if (rc != TG_OK) break;
        tg_clip_grad_norm(m, op.grad_clip);
        rc = tg_adamw_update(m, s + 1, tg_lr_at(&op, s), &op);
        if (rc != TG_OK) break;
        loss = (float)(loss_sum / count);
        if (s >= warmup + steps - tail_n) loss_tail += loss, tail_have++;
        char extra[160];
        if (s >= warmup) {
            double el = tg_now() - t_start;
            double tps = (double)(s - warmup + 1) * BT / el;
            snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s  MFU %.1f%%", loss, tps,
                     100.0 * flops_tok * tps / (peak * 1e9));
        } else {
            snprintf(extra, sizeof extra, "loss %.4f  (warm-up)", loss);
        }
        tg_progress_update(&pr, s + 1, extra);
    }
    double elapsed = tg_now() - t_start, cpu_used = cpu_seconds() - cpu_start;
    tg_progress_finish(&pr, warmup + steps, NULL);
    if (rc != TG_OK) {
        tg_free(tokens), tg_free(succ);
        tg_model_free(m);
        return tg_cli_fail(rc);
    }
    double tok_s = (double)steps * BT / elapsed, tok_cpu_s = (double)steps * BT / cpu_used;
    double mfu = flops_tok * tok_s / (peak * 1e9);
    double rss = tg_peak_rss_mb(), want = expected_mb(c, B, T);
    double final_loss = loss_tail / (tail_have ? tail_have : 1);
    printf("truthgpt %s %s B=%d T=%d V=%d threads=%d kernels=%s: %.0f tokens/s, %.0f ms/step, %.1f GFLOP/s, MFU %.1f%% of "
           "%.1f GFLOP/s, loss %.4f (mean of last %d), peak RSS %.0f MB = %.2fx the expected %.0f MB; %.0f tokens per "
           "CPU-second\n",
           preset, dtype_s, B, T, V, threads, tg_cpu_kernels(), tok_s, elapsed / steps * 1e3, flops_tok * tok_s / 1e9, 100 * mfu, peak,
           final_loss, tail_have, rss, rss / want, want, tok_cpu_s);
    if (json)
        printf("{\"preset\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"tok_per_s\": %.1f, \"mfu\": %.4f, \"peak_gflops\": %.1f, "
               "\"peak_rss_mb\": %.1f, \"expected_mb\": %.1f, \"loss\": %.4f, \"B\": %d, \"T\": %d, \"V\": %d, "
               "\"steps\": %d, \"threads\": %d, \"tok_per_cpu_s\": %.1f, \"cpu_kernels\": \"%s\"}\n",
               preset, device, dtype_s, tok_s, mfu, peak, rss, want, final_loss, B, T, V, steps, threads, tok_cpu_s,
               tg_cpu_kernels());
    tg_free(tokens), tg_free(succ);
    tg_model_free(m);
    return 0;
}
