/*
 * plan.c — the arithmetic behind `truthgpt plan` (plan.h, docs/scaling.md).
 *
 * Compute. FLOPs a token 6N' + 12LCT (N' the parameters without wpe; the
 * second term the attention scores and their use): a layer's forward is
 * 24C^2 + 4TC a token, the LM head's 2VC, each backward twice its forward.
 * Time = FLOPs / (peak * MFU).
 *
 * Communication, as src/train/dist.c does it: one bucket per layer (12C^2 +
 * 13C elements), posted when that layer's backward ends, and a last bucket
 * (wte, wpe, ln_f) posted when the whole backward ends. A bucket of b
 * elements costs 2(n-1)/n * b*bytes / bw + 2*ceil(log2 n) * latency (ring
 * bandwidth, tree latency: what NCCL picks at scale), on one stream: the
 * simulation starts each bucket when both it is ready and the previous one
 * is done, and what runs past the end of the backward is exposed. ZeRO-1
 * halves the bucket traffic (reduce to the owner: (n-1)/n) and adds the
 * all-gather of the parameters after the update, fully exposed (dist.c does
 * not overlap it with the next forward). Inside a node (n <= GPUs per node)
 * the links are NVLink, else the network (one NIC per GPU: the per-GPU
 * bandwidth of a ring that crosses nodes).
 *
 * Memory, as truthgpt stores it: fp32 weights, gradients and two AdamW
 * moments (16 bytes a parameter; ZeRO-1: 8 + 8/n), and the saved
 * activations of one micro-batch in fp32 including the (NH, T, T) attention
 * probabilities of every layer (no recomputation, no flash attention).
 *
 * Failures: a job of n GPUs fails every MTBF_gpu / n hours; Young/Daly's
 * interval sqrt(2 * delta * M) (delta the checkpoint time, M the job's
 * MTBF) minimises delta/tau + (tau/2 + restart)/M, the share of time lost.
 *
 * Critical batch size (Kaplan et al. 2020, "Scaling laws for neural
 * language models"): B_crit(L) = B* / L^(1/alpha_B), B* = 2e8 tokens,
 * alpha_B = 0.21, L the loss in nats. Past it, a bigger global batch buys
 * little: the data-parallel width it supports is B_crit / T replicas of one
 * sequence each, and more GPUs must go to tensor or pipeline parallelism.
 */
#include "train/plan.h"

#include <math.h>
#include <string.h>

#include "core/core.h"

static const tg_plan_gpu gpus[] = {
    {"a100", 312e12, 80e9, 300e9},  /* A100 SXM 80 GB: NVLink 3, 600 GB/s both directions */
    {"h100", 989e12, 80e9, 450e9},  /* H100 SXM: NVLink 4, 900 GB/s both directions */
    {"h200", 989e12, 141e9, 450e9}, /* H200 SXM: H100's compute, 141 GB HBM3e */
};
static const tg_plan_net nets[] = {
    {"ib400", 50e9, 5e-6},     /* InfiniBand NDR, 400 Gb/s a GPU */
    {"ib200", 25e9, 5e-6},     /* InfiniBand HDR, 200 Gb/s a GPU */
    {"eth100", 12.5e9, 20e-6}, /* 100 GbE (RoCE or TCP) */
    {"eth25", 3.125e9, 30e-6}, /* 25 GbE */
};
typedef struct {
    const char *name;
    int L, C, NH, T;
    double loss;
} model_shape;
/* GPT-2 shapes; 7b and 70b are GPT-2-shaped stand-ins of those sizes. The
 * loss is a rough end-of-run value on web text with GPT-2's tokenizer. */
static const model_shape models[] = {
    {"124m", 12, 768, 12, 1024, 3.3},  {"350m", 24, 1024, 16, 1024, 3.0}, {"774m", 36, 1280, 20, 1024, 2.85},
    {"1.5b", 48, 1600, 25, 1024, 2.7}, {"7b", 32, 4096, 32, 2048, 2.3},   {"70b", 80, 8192, 64, 4096, 1.9},
};
#define COUNT(a) (sizeof a / sizeof a[0])

int tg_plan_gpu_named(const char *name, tg_plan_gpu *g) {
    for (size_t i = 0; i < COUNT(gpus); i++)
        if (!strcmp(gpus[i].name, name)) {
            *g = gpus[i];
            return 0;
        }
    tg_error_set(TG_ERR_INPUT, "--gpu %s: unknown (choose a100, h100 or h200)", name);
    return -1;
}

int tg_plan_net_named(const char *name, tg_plan_net *n) {
    for (size_t i = 0; i < COUNT(nets); i++)
        if (!strcmp(nets[i].name, name)) {
            *n = nets[i];
            return 0;
        }
    tg_error_set(TG_ERR_INPUT, "--net %s: unknown (choose ib400, ib200, eth100 or eth25)", name);
    return -1;
}

int tg_plan_model_named(const char *name, tg_plan_inputs *in) {
    for (size_t i = 0; i < COUNT(models); i++)
        if (!strcmp(models[i].name, name)) {
            in->model = models[i].name;
            in->L = models[i].L;
            in->C = models[i].C;
            in->NH = models[i].NH;
            in->T = models[i].T;
            in->V = 50257;
            in->loss = models[i].loss;
            return 0;
        }
    tg_error_set(TG_ERR_INPUT, "--model %s: unknown (choose 124m, 350m, 774m, 1.5b, 7b or 70b)", name);
    return -1;
}

static int bad(const char *field) {
    tg_error_set(TG_ERR_INPUT, "plan: %s is out of range", field);
    return -1;
}

int tg_plan_compute(const tg_plan_inputs *in, tg_plan_result *r) {
    memset(r, 0, sizeof *r);
    if (in->L <= 0 || in->C <= 0 || in->NH <= 0 || in->V <= 0 || in->T <= 0) return bad("the model shape");
    if (in->gpus <= 0) return bad("--gpus");
    if (in->gpus_per_node <= 0) return bad("--gpus-per-node");
    if (!(in->mfu > 0 && in->mfu <= 1)) return bad("--mfu");
    if (!(in->link_eff > 0 && in->link_eff <= 1)) return bad("--link-eff");
    if (in->seqs_per_gpu <= 0) return bad("--batch");
    if (!(in->comm_bytes > 0)) return bad("--comm-bytes");
    if (!(in->disk_bw > 0)) return bad("--disk-gbps");
    if (!(in->gpu_mtbf_h > 0)) return bad("--gpu-mtbf-hours");
    if (!(in->restart_s >= 0)) return bad("--restart-s");
    if (!(in->loss > 0)) return bad("--loss");
    if (!(in->gpu.peak_flops > 0 && in->net.bw > 0)) return bad("the GPU or network figures");
    const double L = in->L, C = in->C, V = in->V, T = in->T, n = (double)in->gpus;
    const double layer = 12 * C * C + 13 * C; /* parameters of one layer */
    const double rest = V * C + T * C + 2 * C; /* wte, wpe, ln_f */
    r->params = L * layer + rest;
    r->flops_token = 6 * (r->params - T * C) + 12 * L * C * T;
    r->tokens_gpu = (double)in->seqs_per_gpu * T;
    r->tokens_step = r->tokens_gpu * n;
    const double speed = in->gpu.peak_flops * in->mfu;
    r->t_compute = r->flops_token * r->tokens_gpu / speed;
    /* The split of the compute over the ops, scaled to t_compute. */
    double f_layer = 24 * C * C + 4 * T * C, f_head = 2 * V * C, f_all = 3 * (L * f_layer + f_head);
    double unit = r->t_compute / f_all; /* seconds per (FLOP a token) */
    r->t_fwd = (L * f_layer + f_head) * unit;
    r->t_bwd = 2 * r->t_fwd;
    double t_head_bwd = 2 * f_head * unit, t_layer_bwd = 2 * f_layer * unit;

    r->grad_bytes = r->params * in->comm_bytes;
    if (in->gpus > 1) {
        bool intra = in->gpus <= in->gpus_per_node;
        r->bus_bw = (intra ? in->gpu.nvlink_bw : in->net.bw) * in->link_eff;
        double alpha = intra ? 2e-6 : in->net.latency_s, hops = ceil(log2(n));
        /* ZeRO-1: reduce to the owner ((n-1)/n) now, all-gather later. */
        double share = in->zero ? (n - 1) / n : 2 * (n - 1) / n, lat = (in->zero ? 1 : 2) * hops * alpha;
        double free_at = 0;
        for (int l = in->L - 1; l >= 0; l--) {
            double ready = t_head_bwd + (in->L - l) * t_layer_bwd;
            double t = share * layer * in->comm_bytes / r->bus_bw + lat;
            free_at = (free_at > ready ? free_at : ready) + t;
            r->t_comm += t;
        }
        double t_last = share * rest * in->comm_bytes / r->bus_bw + lat;
        free_at = (free_at > r->t_bwd ? free_at : r->t_bwd) + t_last;
        r->t_comm += t_last;
        r->t_exposed = free_at - r->t_bwd;
        if (in->zero) {
            double t_gather = (n - 1) / n * r->grad_bytes / r->bus_bw + (in->L + 1) * hops * alpha;
            r->t_comm += t_gather;
            r->t_exposed += t_gather;
        }
        r->ring_bytes = 2 * (n - 1) / n * r->grad_bytes;
    }
    r->t_step = r->t_compute + r->t_exposed;
    r->efficiency = r->t_compute / r->t_step;
    r->tokens_per_s = r->tokens_step / r->t_step;

    r->mem_states = (in->zero ? 8 + 8 / n : 16) * r->params;
    double Vp = ceil(V / 64) * 64;
    double per_token = L * (16 * C + in->NH * T + 4) + 13 * C + Vp + 4;
    r->mem_acts = 4 * per_token * r->tokens_gpu;

    r->ckpt_bytes = 12 * r->params;
    r->ckpt_s = r->ckpt_bytes / in->disk_bw;
    if (in->zero && in->gpus > 1) r->ckpt_s += (n - 1) / n * 8 * r->params / r->bus_bw; /* gather the moments */
    r->job_mtbf_h = in->gpu_mtbf_h / n;
    r->failures_day = 24 / r->job_mtbf_h;
    double M = r->job_mtbf_h * 3600;
    r->daly_s = sqrt(2 * r->ckpt_s * M);
    r->lost_frac = r->ckpt_s / r->daly_s + (r->daly_s / 2 + in->restart_s) / M;
    r->b_crit_tokens = 2e8 * pow(in->loss, -1 / 0.21);
    r->dp_useful = r->b_crit_tokens / T;
    return 0;
}
