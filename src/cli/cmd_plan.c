/*
 * cmd_plan.c — `truthgpt plan`: the arithmetic of data-parallel training at
 * scale (src/train/plan.c, docs/scaling.md) printed with every assumption it
 * rests on. With --gpus and --model: one configuration in detail; without
 * --gpus: the table of docs/scaling.md (8, 512 and 10,000 GPUs at 124M, 1.5B
 * and 7B). Estimates from stated inputs, not measurements.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "train/plan.h"

typedef struct {
    const char *gpu, *net, *model;
    int64_t gpus;
    int per_node, batch, ctx;
    double mfu, link_eff, comm_bytes, disk_gbps, mtbf_h, restart_s, loss;
} plan_flags;

static int fill_inputs(const plan_flags *f, const char *model, int64_t gpus, int zero, tg_plan_inputs *in) {
    memset(in, 0, sizeof *in);
    if (tg_plan_model_named(model, in) || tg_plan_gpu_named(f->gpu, &in->gpu) || tg_plan_net_named(f->net, &in->net))
        return TG_ERR_INPUT;
    if (f->ctx > 0) in->T = f->ctx;
    if (f->loss > 0) in->loss = f->loss;
    in->gpus = gpus;
    in->gpus_per_node = f->per_node;
    in->mfu = f->mfu;
    in->link_eff = f->link_eff;
    in->seqs_per_gpu = f->batch;
    in->comm_bytes = f->comm_bytes;
    in->zero = zero;
    in->disk_bw = f->disk_gbps * 1e9;
    in->gpu_mtbf_h = f->mtbf_h;
    in->restart_s = f->restart_s;
    return TG_OK;
}

static void print_assumptions(const plan_flags *f, const tg_plan_inputs *in) {
    printf("assumptions (each a flag; see --help):\n");
    printf("  GPU %s: %.0f TFLOP/s dense BF16, %.0f GB, NVLink %.0f GB/s one way; %d GPUs a node\n", in->gpu.name,
           in->gpu.peak_flops / 1e12, in->gpu.mem_bytes / 1e9, in->gpu.nvlink_bw / 1e9, in->gpus_per_node);
    printf("  network %s: %.1f GB/s a GPU (one NIC each), %.0f us a hop; links reach %.0f%% of nominal\n", in->net.name,
           in->net.bw / 1e9, in->net.latency_s * 1e6, 100 * in->link_eff);
    printf("  compute at %.0f%% MFU; %d sequences of %d tokens a GPU a step (one micro-batch)\n", 100 * in->mfu,
           in->seqs_per_gpu, in->T);
    printf("  %.0f bytes an element on the wire (%s); one bucket a layer, started as its backward ends\n",
           in->comm_bytes, in->comm_bytes == 4 ? "fp32, as truthgpt does today" : "as given");
    printf("  memory as truthgpt keeps it: fp32 weights, gradients, AdamW moments; fp32 activations incl. attention\n");
    printf("  checkpoint (fp32 weights + moments) written by rank 0 alone at %.1f GB/s\n", f->disk_gbps);
    printf("  a GPU stops its job every %.0f h on average (Llama 3: 419 unexpected interruptions in 54 days on\n"
           "  16,384 GPUs); %.0f s from a failure to training again\n",
           in->gpu_mtbf_h, in->restart_s);
    printf("  critical batch (Kaplan et al. 2020): 2e8 tokens / loss^(1/0.21), loss%s\n\n",
           f->loss > 0 ? " as given" : " a rough end-of-run value for the size");
}

static double gb(double b) { return b / 1e9; }

static void print_detail(const tg_plan_inputs *in, const tg_plan_result *r, const tg_plan_result *rz) {
    printf("%s: L=%d C=%d heads=%d T=%d V=%d, %.3g parameters, %.3g FLOPs a token; %lld GPUs\n", in->model, in->L, in->C,
           in->NH, in->T, in->V, r->params, r->flops_token, (long long)in->gpus);
    printf("  compute a step      %.0f tokens a GPU, %.3g a step: %.3f s (forward %.3f, backward %.3f)\n", r->tokens_gpu,
           r->tokens_step, r->t_compute, r->t_fwd, r->t_bwd);
    if (in->gpus > 1) {
        printf("  gradients a step    %.2f GB; each GPU sends %.2f GB (ring: 2(n-1)/n), at %.0f GB/s (%s)\n",
               gb(r->grad_bytes), gb(r->ring_bytes), r->bus_bw / 1e9, in->gpus <= in->gpus_per_node ? "NVLink" : in->net.name);
        printf("  communication       %.3f s a step, %.3f s of it not hidden under the backward\n", r->t_comm,
               r->t_exposed);
        printf("  with ZeRO-1         %.3f s a step, %.3f s exposed (the parameter all-gather is not overlapped)\n",
               rz->t_comm, rz->t_exposed);
    } else
        printf("  communication       none (one GPU)\n");
    printf("  efficiency          %.1f%% (step %.3f s, %.3g tokens/s); ZeRO-1 %.1f%%\n", 100 * r->efficiency, r->t_step,
           r->tokens_per_s, 100 * rz->efficiency);
    double tot = r->mem_states + r->mem_acts, totz = rz->mem_states + rz->mem_acts;
    printf("  memory a GPU        weights+grads+moments %.1f GB (ZeRO-1 %.1f GB) + activations %.1f GB = %.1f GB "
           "(ZeRO-1 %.1f GB) of %.0f GB: %s\n",
           gb(r->mem_states), gb(rz->mem_states), gb(r->mem_acts), gb(tot), gb(totz), gb(in->gpu.mem_bytes),
           tot <= in->gpu.mem_bytes    ? "fits"
           : totz <= in->gpu.mem_bytes ? "fits with ZeRO-1 only"
                                       : "does not fit (fewer sequences a GPU, or tensor/pipeline parallelism)");
    printf("  checkpoint          %.2f GB, %.1f s to write (ZeRO-1: %.1f s with the gather)\n", gb(r->ckpt_bytes),
           r->ckpt_s, rz->ckpt_s);
    printf("  failures            %.3g a day (the job's MTBF %.1f h); checkpoint every %.1f min (Young/Daly, %.0f "
           "steps): %.2f%% of the time lost\n",
           r->failures_day, r->job_mtbf_h, r->daly_s / 60, r->daly_s / r->t_step, 100 * r->lost_frac);
    double past = r->tokens_step / r->b_crit_tokens;
    printf("  critical batch      %.3g tokens at loss %.2f; the global batch of %.3g tokens is %.2gx it", r->b_crit_tokens,
           in->loss, r->tokens_step, past);
    if (past > 1 && (double)in->gpus > r->dp_useful)
        printf(": data parallelism stops paying at about %.0f replicas of one sequence; %lld GPUs need groups of "
               "%.0f in tensor/pipeline parallelism",
               r->dp_useful, (long long)in->gpus, ceil((double)in->gpus / r->dp_useful));
    else if (past > 1)
        printf(": take at most %.1f sequences a GPU (data parallelism alone still suffices up to about %.0f GPUs)",
               r->dp_useful / (double)in->gpus, r->dp_useful);
    printf("\n");
}

static int print_table(const plan_flags *f) {
    static const char *const sizes[] = {"124m", "1.5b", "7b"};
    static const int64_t counts[] = {8, 512, 10000};
    tg_plan_inputs in;
    TG_TRY(fill_inputs(f, sizes[0], counts[0], 0, &in));
    print_assumptions(f, &in);
    printf("%-6s %6s %9s %8s %9s %8s %8s %6s %6s %10s %9s %8s %7s %8s %7s %7s\n", "model", "GPUs", "params", "compute",
           "sent/GPU", "comm", "exposed", "eff", "eff-Z1", "mem GB", "mem-Z1 GB", "ckpt GB", "ckpt s", "fail/day",
           "Daly", "B/Bcrit");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof counts / sizeof *counts; j++) {
            tg_plan_inputs a, z;
            tg_plan_result r, rz;
            TG_TRY(fill_inputs(f, sizes[i], counts[j], 0, &a));
            TG_TRY(fill_inputs(f, sizes[i], counts[j], 1, &z));
            if (tg_plan_compute(&a, &r) || tg_plan_compute(&z, &rz)) return TG_ERR_INPUT;
            printf("%-6s %6lld %9.3g %7.3fs %7.2fGB %7.3fs %7.3fs %5.1f%% %5.1f%% %10.1f %9.1f %8.1f %7.1f %8.3g %5.0fmin "
                   "%6.2gx\n",
                   sizes[i], (long long)counts[j], r.params, r.t_compute, gb(r.ring_bytes), r.t_comm, r.t_exposed,
                   100 * r.efficiency, 100 * rz.efficiency, gb(r.mem_states + r.mem_acts), gb(rz.mem_states + rz.mem_acts),
                   gb(r.ckpt_bytes), r.ckpt_s, r.failures_day, r.daly_s / 60, r.tokens_step / r.b_crit_tokens);
        }
    printf("\nsent/GPU: bytes each GPU sends a step; exposed: communication not hidden under the backward;\n"
           "eff: compute / step time (Z1: with ZeRO-1); mem: per GPU, activations included; Daly: the checkpoint\n"
           "interval that minimises lost work; B/Bcrit: the global batch over the critical batch size.\n"
           "One configuration in detail: truthgpt plan --gpus N --model SIZE [--gpu h200] [--net ib400]\n");
    return TG_OK;
}

int tg_cmd_plan(int argc, char **argv) {
    plan_flags f = {.gpu = "h200", .net = "ib400", .model = "124m", .gpus = 0, .per_node = 8, .batch = 8, .ctx = 0,
                    .mfu = 0.4, .link_eff = 0.8, .comm_bytes = 4, .disk_gbps = 2, .mtbf_h = 50000, .restart_s = 600,
                    .loss = 0};
    tg_opt opts[] = {
        {"gpus", TG_OPT_I64, &f.gpus, "N", "GPUs in the job (0: the table for 8, 512 and 10,000)"},
        {"model", TG_OPT_STR, &f.model, "SIZE", "124m, 350m, 774m, 1.5b, 7b or 70b (GPT-2 shapes)"},
        {"gpu", TG_OPT_STR, &f.gpu, "NAME", "a100, h100 or h200"},
        {"net", TG_OPT_STR, &f.net, "NAME", "between nodes: ib400, ib200, eth100 or eth25"},
        {"gpus-per-node", TG_OPT_INT, &f.per_node, "N", "GPUs a node share NVLink"},
        {"batch", TG_OPT_INT, &f.batch, "B", "sequences a GPU a step"},
        {"ctx", TG_OPT_INT, &f.ctx, "T", "sequence length (0: the size's)"},
        {"mfu", TG_OPT_DOUBLE, &f.mfu, "X", "achieved fraction of the GPU's peak"},
        {"link-eff", TG_OPT_DOUBLE, &f.link_eff, "X", "achieved fraction of a link's nominal bandwidth"},
        {"comm-bytes", TG_OPT_DOUBLE, &f.comm_bytes, "N", "bytes an element on the wire (4 fp32, 2 bf16)"},
        {"disk-gbps", TG_OPT_DOUBLE, &f.disk_gbps, "X", "GB/s rank 0 writes a checkpoint at"},
        {"gpu-mtbf-hours", TG_OPT_DOUBLE, &f.mtbf_h, "H", "hours between job-stopping failures, per GPU"},
        {"restart-s", TG_OPT_DOUBLE, &f.restart_s, "S", "seconds from a failure to training again"},
        {"loss", TG_OPT_DOUBLE, &f.loss, "X", "loss (nats) for the critical batch size (0: the size's rough value)"},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt plan [--gpus N --model SIZE] [--gpu h100|h200|a100] [--net ib400|...]",
                           "The arithmetic of data-parallel training at scale: compute and communication a step,\n"
                           "overlap and efficiency, memory a GPU with and without ZeRO-1, checkpoint size and time,\n"
                           "failures and the Young/Daly checkpoint interval, the critical batch size. Estimates\n"
                           "from the printed assumptions (docs/scaling.md), not measurements.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (f.gpus < 0) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--gpus must be positive (got %lld)", (long long)f.gpus));
    if (f.gpus == 0) return print_table(&f) == TG_OK ? 0 : tg_cli_fail(TG_ERR_INPUT);
    tg_plan_inputs in, inz;
    tg_plan_result r, rz;
    if (fill_inputs(&f, f.model, f.gpus, 0, &in) || fill_inputs(&f, f.model, f.gpus, 1, &inz)) return tg_cli_fail(TG_ERR_INPUT);
    if (tg_plan_compute(&in, &r) || tg_plan_compute(&inz, &rz)) return tg_cli_fail(TG_ERR_INPUT);
    print_assumptions(&f, &in);
    print_detail(&in, &r, &rz);
    return 0;
}
