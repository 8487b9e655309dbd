/*
 * plan.h — the arithmetic of a data-parallel training run at scale, for
 * `truthgpt plan` and docs/scaling.md: compute a step, bytes all-reduced and
 * their time on the links, how much of it hides under the backward (bucket
 * by bucket, as src/train/dist.c starts them), memory per GPU with and
 * without ZeRO-1, checkpoint size and write time, the critical batch size,
 * failures a day and the checkpoint interval that minimises lost work
 * (Young/Daly). Every input is a field here, printed by the command: the
 * numbers are estimates from stated assumptions, not measurements.
 */
#ifndef TG_TRAIN_PLAN_H
#define TG_TRAIN_PLAN_H

#include <stdint.h>

typedef struct {
    const char *name;
    double peak_flops; /* dense BF16 tensor-core FLOP/s */
    double mem_bytes;  /* HBM */
    double nvlink_bw;  /* bytes/s, one direction, per GPU, inside a node */
} tg_plan_gpu;

typedef struct {
    const char *name;
    double bw;        /* bytes/s per GPU between nodes (one NIC per GPU) */
    double latency_s; /* per hop of a collective */
} tg_plan_net;

typedef struct {
    const char *model;  /* a name for the printout */
    int L, C, NH, V, T; /* layers, width, heads, vocabulary, context */
    int64_t gpus;
    int gpus_per_node;
    tg_plan_gpu gpu;
    tg_plan_net net;
    double link_eff;    /* achieved fraction of a link's nominal bandwidth in a large collective */
    double mfu;         /* achieved fraction of peak in the compute */
    int seqs_per_gpu;   /* sequences of T tokens per GPU per step (micro-batch x accumulation) */
    double comm_bytes;  /* bytes per gradient/parameter element on the wire (4: fp32 as truthgpt; 2: bf16) */
    int zero;           /* 1: ZeRO-1 */
    double disk_bw;     /* bytes/s rank 0 writes a checkpoint at */
    double gpu_mtbf_h;  /* mean hours between failures that stop a job, per GPU */
    double restart_s;   /* seconds from a failure to training again (detect, relaunch, load) */
    double loss;        /* the loss (nats/token) the critical batch size is evaluated at */
} tg_plan_inputs;

typedef struct {
    double params;          /* N, with the position embedding */
    double flops_token;     /* 6N' + 12 L C T (N' without wpe) */
    double tokens_gpu, tokens_step;
    double t_fwd, t_bwd, t_compute; /* seconds a step */
    double grad_bytes;      /* bytes of one gradient copy on the wire */
    double ring_bytes;      /* bytes each GPU sends a step (ring: 2(n-1)/n of grad_bytes) */
    double bus_bw;          /* the bandwidth the collective runs at (NVLink inside a node, else the network) */
    double t_comm;          /* seconds of communication a step, all of it */
    double t_exposed;       /* of which not hidden under the backward */
    double t_step, efficiency, tokens_per_s;
    double mem_states;      /* bytes per GPU: weights, gradients, AdamW moments (fp32) */
    double mem_acts;        /* bytes per GPU: saved activations (fp32, attention matrices included) */
    double ckpt_bytes, ckpt_s;
    double job_mtbf_h, failures_day;
    double daly_s;          /* checkpoint interval minimising expected lost work: sqrt(2 * ckpt_s * MTBF) */
    double lost_frac;       /* share of time lost to checkpoints and failures at that interval */
    double b_crit_tokens;   /* critical batch size (Kaplan et al. 2020) at `loss` */
    double dp_useful;       /* data-parallel replicas the critical batch supports at one sequence per GPU */
} tg_plan_result;

/* Fills r from in. Returns 0, or -1 with the error set for an input out of
 * range (naming the field). */
int tg_plan_compute(const tg_plan_inputs *in, tg_plan_result *r);

/* Named inputs: GPUs (a100, h100, h200), networks (nvlink, ib400, ib200,
 * eth100, eth25), model sizes (124m, 350m, 774m, 1.5b, 7b, 70b, or a preset
 * name). Each returns 0, or -1 with the error set naming the choices. */
int tg_plan_gpu_named(const char *name, tg_plan_gpu *g);
int tg_plan_net_named(const char *name, tg_plan_net *n);
int tg_plan_model_named(const char *name, tg_plan_inputs *in);

#endif /* TG_TRAIN_PLAN_H */
