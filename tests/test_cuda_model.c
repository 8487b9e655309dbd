/*
 * test_cuda_model.c — the whole model on the CUDA backend against the CPU
 * backend as the oracle (the op-by-op comparison is test_backend.c):
 *   - one training step in fp32 (TF32 off): loss within 1e-5 relative,
 *     every gradient within 1e-4; then three AdamW steps, parameters within 1e-4;
 *   - the same in bf16: loss within 2e-2 (both backends round the GEMM
 *     operands to bf16, but sum in different orders);
 *   - a packed batch (segments): loss and gradients within 1e-4;
 *   - greedy generation (fp32) with the KV cache: the same 48 tokens, and on
 *     the device each token's log-probability as one training forward gives it.
 * On a machine without a GPU (or a build without CUDA) it prints why and
 * checks nothing else: scripts/gpu-check.sh runs it where there is one.
 * TG_TEST_DEVICE=cpu compares the CPU with itself, which checks this
 * harness where no GPU is at hand.
 * Never yet run with a GPU present (docs/cuda.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "test_util.h"

static const char *dev = "cuda"; /* the device under test */

static tg_config small_config(void) {
    tg_config c;
    tg_config_preset("tiny", &c);
    c.n_layer = 2, c.n_head = 4, c.n_embd = 64, c.n_ctx = 64, c.vocab_size = 300, c.eos_id = 299;
    return c;
}

static tg_model *make(const char *device, const tg_config *c, int B, int T, tg_dtype dt) {
    tg_model *m = NULL;
    CHECK(tg_model_init_device(&m, c, device) == TG_OK);
    if (!m) return NULL;
    CHECK(tg_model_init_weights(m, 1234) == TG_OK);
    CHECK(tg_model_alloc_train(m, B, T, dt) == TG_OK);
    return m;
}

/* forward + backward on both; returns the two mean losses */
static void step(tg_model *m, const tg_batch *bt, double *loss) {
    double s = 0, n = 0;
    tg_model_zero_grad(m);
    CHECK(tg_model_forward(m, bt, &s, &n) == TG_OK);
    CHECK(tg_model_backward(m, (float)(1.0 / n)) == TG_OK);
    *loss = s / n;
}

static void compare_training(tg_dtype dt, bool segmented) {
    const int B = 2, T = 37; /* T not a multiple of any tile */
    tg_config c = small_config();
    tg_model *cpu = make("cpu", &c, B, T, dt), *gpu = make(dev, &c, B, T, dt);
    if (!cpu || !gpu) goto done;
    int32_t tok[2 * 37 + 1], seg[2 * 37];
    tg_rng r;
    tg_rng_seed(&r, 7);
    for (int i = 0; i < B * T + 1; i++) tok[i] = (int32_t)(tg_rng_next(&r) % (uint64_t)c.vocab_size);
    for (int i = 0; i < B * T; i++) seg[i] = (i % T) < 12 ? 0 : (i % T) < 30 ? 1 : 2;
    tg_batch bt = {.inputs = tok, .targets = tok + 1, .segments = segmented ? seg : NULL, .B = B, .T = T};
    const char *what = dt == TG_DTYPE_BF16 ? "bf16" : segmented ? "fp32 segments" : "fp32";
    size_t np = tg_model_num_params(cpu);
    float *ga = malloc(np * sizeof *ga), *gb = malloc(np * sizeof *gb);
    tg_optim_params op = tg_optim_default_params();
    for (int t = 1; t <= 3; t++) {
        double la, lb;
        step(cpu, &bt, &la);
        step(gpu, &bt, &lb);
        double tol = dt == TG_DTYPE_BF16 ? 2e-2 : 1e-5;
        printf("  %-14s step %d loss cpu %.7f %s %.7f (tol %.0e rel)\n", what, t, la, dev, lb, tol);
        CHECK(fabs(la - lb) <= tol * fabs(la));
        if (t == 1 && dt == TG_DTYPE_FP32) {
            CHECK(tg_model_grads_to_host(cpu, ga) == TG_OK && tg_model_grads_to_host(gpu, gb) == TG_OK);
            tg_check_close("gradients (cuda vs cpu)", gb, ga, np, 1e-4, 1e-6);
        }
        tg_clip_grad_norm(cpu, op.grad_clip);
        tg_clip_grad_norm(gpu, op.grad_clip);
        CHECK(tg_adamw_update(cpu, t, 1e-3f, &op) == TG_OK && tg_adamw_update(gpu, t, 1e-3f, &op) == TG_OK);
    }
    CHECK(tg_model_params_to_host(cpu, ga) == TG_OK && tg_model_params_to_host(gpu, gb) == TG_OK);
    tg_check_close("parameters after 3 AdamW steps (cuda vs cpu)", gb, ga, np,
                   dt == TG_DTYPE_BF16 ? 5e-2 : 1e-4, 1e-5);
    free(ga);
    free(gb);
done:
    tg_model_free(cpu);
    tg_model_free(gpu);
}

static const int32_t prompt[6] = {72, 101, 108, 108, 111, 32};

typedef struct {
    float lp[64]; /* the engine's log-probability of each generated token */
    int n;
} logprobs;
static int lp_cb(const tg_token_event *ev, void *user) {
    logprobs *r = user;
    if (ev->token >= 0 && r->n < 64) r->lp[r->n++] = ev->logprob;
    return 0;
}

static void greedy(tg_model *m, int32_t *out, int *n_out, logprobs *lp) {
    tg_engine *e = NULL;
    CHECK(tg_engine_init(&e, m, NULL, 2, 0, TG_DTYPE_FP32) == TG_OK);
    if (!e) return;
    tg_sampling_params p = tg_sampling_default_params();
    p.temperature = 0;
    p.max_tokens = 48;
    p.ignore_eos = true;
    p.logprobs = true;
    CHECK(tg_generate(e, prompt, 6, &p, lp_cb, lp, out, 64, n_out, NULL) == TG_OK);
    tg_engine_free(e);
}

/* Generation (KV cache, decode kernels) against training (one causal
 * forward of the whole sequence) on the same device: each generated token's
 * log-probability within 1e-4. */
static void generation_vs_training(tg_model *m, const int32_t *gen, const logprobs *lp) {
    const tg_config *c = tg_model_config(m);
    int32_t seq[6 + 48];
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + 6, gen, 48 * sizeof *gen);
    const int T = 6 + 48;
    CHECK(tg_model_alloc_train(m, 1, T, TG_DTYPE_FP32) == TG_OK);
    tg_batch b = {.inputs = seq, .B = 1, .T = T};
    CHECK(tg_model_forward(m, &b, NULL, NULL) == TG_OK);
    float *lg = malloc((size_t)T * c->padded_vocab * sizeof *lg);
    CHECK(tg_model_logits_to_host(m, 0, (size_t)T, lg) == TG_OK);
    double worst = 0;
    int at = -1;
    for (int i = 0; i < 48 && i < lp->n; i++) {
        const float *row = lg + (size_t)(5 + i) * c->padded_vocab; /* row 5+i predicts token 6+i */
        double mx = -1e30, z = 0;
        for (int v = 0; v < c->vocab_size; v++) mx = row[v] > mx ? row[v] : mx;
        for (int v = 0; v < c->vocab_size; v++) z += exp(row[v] - mx);
        double d = fabs(lp->lp[i] - (row[gen[i]] - mx - log(z)));
        if (d > worst) worst = d, at = i;
    }
    printf("  generation vs training logprobs (%s): max diff %.2e (tol 1e-4)\n", dev, worst);
    if (worst > 1e-4) fprintf(stderr, "  worst at generated token %d\n", at);
    CHECK(lp->n == 48 && worst <= 1e-4);
    free(lg);
}

static void compare_generation(void) {
    tg_config c = small_config();
    tg_model *cpu = NULL, *gpu = NULL;
    CHECK(tg_model_init_device(&cpu, &c, "cpu") == TG_OK && tg_model_init_device(&gpu, &c, dev) == TG_OK);
    if (cpu && gpu) {
        CHECK(tg_model_init_weights(cpu, 99) == TG_OK && tg_model_init_weights(gpu, 99) == TG_OK);
        int32_t a[64], b[64];
        int na = 0, nb = 0;
        logprobs la = {0}, lb = {0};
        greedy(cpu, a, &na, &la);
        greedy(gpu, b, &nb, &lb);
        int same = na == 48 && nb == 48 && !memcmp(a, b, sizeof(int32_t) * 48);
        printf("  greedy generation, 48 tokens: %s\n", same ? "identical" : "DIFFER");
        if (!same)
            for (int i = 0; i < na && i < nb; i++)
                if (a[i] != b[i]) {
                    fprintf(stderr, "  first difference at token %d: cpu %d cuda %d\n", i, a[i], b[i]);
                    break;
                }
        CHECK(same);
        if (nb == 48) generation_vs_training(gpu, b, &lb);
    }
    tg_model_free(cpu);
    tg_model_free(gpu);
}

int main(void) {
    if (getenv("TG_TEST_DEVICE")) dev = getenv("TG_TEST_DEVICE");
    if (tg_set_default_device(dev) != TG_OK) {
        printf("test_cuda_model: SKIPPED (%s)\n", tg_error_message());
        return 0;
    }
    CHECK(tg_set_default_device("cpu") == TG_OK);
    printf("test_cuda_model: %s against cpu\n", dev);
    compare_training(TG_DTYPE_FP32, false);
    compare_training(TG_DTYPE_FP32, true);
    compare_training(TG_DTYPE_BF16, false);
    compare_generation();
    return test_summary("test_cuda_model");
}
