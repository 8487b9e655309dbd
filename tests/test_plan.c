/*
 * test_plan.c — the arithmetic of `truthgpt plan` (src/train/plan.c)
 * against numbers worked out by hand:
 *  - GPT-2 small (124m) has 124,439,808 parameters and 6N' + 12LCT =
 *    855,166,464 FLOPs a token at T = 1024;
 *  - one GPU: no communication, efficiency 1;
 *  - 8 GPUs: each sends 2(n-1)/n = 1.75 gradient copies; ZeRO-1 keeps 8 + 8/8
 *    bytes a parameter of state instead of 16;
 *  - a network fast enough to ignore: all communication hides under the
 *    backward except the last bucket's, which is tiny (exposed < 1e-4 s);
 *    a slow one: the exposed time is at least the last bucket's transfer;
 *  - checkpoint 12 bytes a parameter at the disk rate; job MTBF = MTBF_gpu/n;
 *    Young/Daly sqrt(2 * delta * M); critical batch 2e8 tokens at loss 1;
 *  - an input out of range is an error.
 */
#include <math.h>
#include <stdio.h>

#include "core/core.h"
#include "train/plan.h"

static int failures = 0;
#define NEAR(got, want, rel)                                                                                       \
    do {                                                                                                           \
        double g_ = (got), w_ = (want);                                                                            \
        if (!(fabs(g_ - w_) <= (rel) * fabs(w_))) {                                                                \
            fprintf(stderr, "%s:%d: %s = %.9g, want %.9g (relative tolerance %g)\n", __FILE__, __LINE__, #got, g_, \
                    w_, (double)(rel));                                                                            \
            failures++;                                                                                            \
        }                                                                                                          \
    } while (0)
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static tg_plan_inputs base(const char *model, int64_t gpus) {
    tg_plan_inputs in = {0};
    TG_ASSERT(tg_plan_model_named(model, &in) == 0);
    TG_ASSERT(tg_plan_gpu_named("h100", &in.gpu) == 0);
    TG_ASSERT(tg_plan_net_named("ib400", &in.net) == 0);
    in.gpus = gpus;
    in.gpus_per_node = 8;
    in.link_eff = 0.8;
    in.mfu = 0.4;
    in.seqs_per_gpu = 8;
    in.comm_bytes = 4;
    in.disk_bw = 2e9;
    in.gpu_mtbf_h = 50000;
    in.restart_s = 600;
    return in;
}

int main(void) {
    tg_plan_result r, rz;
    tg_plan_inputs in = base("124m", 1);
    CHECK(tg_plan_compute(&in, &r) == 0);
    NEAR(r.params, 124439808, 0);
    NEAR(r.flops_token, 855166464, 0);
    NEAR(r.t_compute, 855166464.0 * 8 * 1024 / (989e12 * 0.4), 1e-12);
    NEAR(r.t_fwd + r.t_bwd, r.t_compute, 1e-12);
    NEAR(r.t_bwd, 2 * r.t_fwd, 1e-12);
    CHECK(r.t_comm == 0 && r.t_exposed == 0 && r.efficiency == 1);
    NEAR(r.mem_states, 16.0 * 124439808, 0);
    NEAR(r.ckpt_bytes, 12.0 * 124439808, 0);
    NEAR(r.ckpt_s, 12.0 * 124439808 / 2e9, 1e-12);
    NEAR(r.job_mtbf_h, 50000, 0);
    NEAR(r.daly_s, sqrt(2 * r.ckpt_s * 50000 * 3600), 1e-12);
    NEAR(r.lost_frac, r.ckpt_s / r.daly_s + (r.daly_s / 2 + 600) / (50000 * 3600.0), 1e-12);

    in = base("124m", 8);
    CHECK(tg_plan_compute(&in, &r) == 0);
    NEAR(r.ring_bytes, 1.75 * 4 * 124439808, 1e-12);
    NEAR(r.bus_bw, 450e9 * 0.8, 1e-12); /* inside a node: NVLink */
    NEAR(r.failures_day, 24 * 8 / 50000.0, 1e-12);
    in.zero = 1;
    CHECK(tg_plan_compute(&in, &rz) == 0);
    NEAR(rz.mem_states, 9.0 * 124439808, 1e-12);
    CHECK(rz.t_exposed > r.t_exposed); /* the all-gather is exposed */

    /* Across nodes a fast network hides everything but the last bucket. */
    in = base("1.5b", 64);
    in.net.bw = 1e15;
    in.net.latency_s = 0;
    CHECK(tg_plan_compute(&in, &r) == 0);
    NEAR(r.bus_bw, 1e15 * 0.8, 1e-12);
    CHECK(r.t_exposed < 1e-4 && r.efficiency > 0.9999);
    /* A slow one: at least the last bucket (wte, wpe, ln_f) is exposed. */
    in.net.bw = 1e9;
    CHECK(tg_plan_compute(&in, &r) == 0);
    double last = 2 * 63.0 / 64 * (50257.0 * 1600 + 1024 * 1600 + 2 * 1600) * 4 / (1e9 * 0.8);
    CHECK(r.t_exposed >= last);
    CHECK(r.t_exposed <= r.t_comm + 1e-12);
    NEAR(r.t_step, r.t_compute + r.t_exposed, 1e-12);

    in = base("7b", 10000);
    in.loss = 1;
    CHECK(tg_plan_compute(&in, &r) == 0);
    NEAR(r.b_crit_tokens, 2e8, 1e-12);
    NEAR(r.dp_useful, 2e8 / 2048, 1e-12);

    in = base("124m", 8);
    in.mfu = 0;
    CHECK(tg_plan_compute(&in, &r) != 0);
    in = base("124m", 0);
    CHECK(tg_plan_compute(&in, &r) != 0);
    tg_plan_gpu g;
    CHECK(tg_plan_gpu_named("v100", &g) != 0);
    tg_error_clear();
    if (failures) {
        fprintf(stderr, "test_plan: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_plan: ok\n");
    return 0;
}
