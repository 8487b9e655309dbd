/*
 * dist.h — data-parallel training over MPI (docs/distributed.md): every rank
 * holds the whole model, reads its own micro-batches k = (step*A + a)*R + r
 * and the gradients are summed across ranks while the backward still runs
 * (one bucket per layer, started by the model's grad-ready hook). With
 * ZeRO-1 the AdamW moments are sharded: each rank owns a contiguous range of
 * the flat parameter vector, receives the summed gradients of that range
 * only, updates it and broadcasts it back.
 *
 * Every wait on a collective runs under a deadline (tg_dist_params.timeout_s):
 * a rank that died or hangs ends the whole job with a message naming it
 * instead of a silent hang.
 *
 * Without an MPI launcher (mpirun, srun) tg_dist_init gives NULL and the
 * trainer runs as a single process; every function here accepts NULL as
 * "one rank". A build without MPI still has these functions: under a launcher
 * with more than one rank tg_dist_init fails and says why.
 *
 * Only backends whose memory is host memory (cpu) can be reduced with MPI;
 * GPU ranks need NCCL (not built, docs/distributed.md).
 */
#ifndef TG_TRAIN_DIST_H
#define TG_TRAIN_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "truthgpt.h"

typedef struct tg_dist tg_dist;

typedef struct {
    int zero;         /* 0: every rank keeps all of AdamW's moments; 1: sharded (ZeRO-1) */
    double timeout_s; /* a collective waited on longer than this ends the job (after rank 0's own
                       * work, a checkpoint, 10 times this) */
} tg_dist_params;

tg_dist_params tg_dist_default_params(void);

/* Whether this build has MPI. */
bool tg_dist_compiled(void);
/* The number of ranks an MPI launcher started (its environment variables),
 * 0 when not launched by one, -1 when launched by one that does not say. */
int tg_dist_launcher_size(void);

/* Under a launcher: initialises MPI and *out is the job (also for one rank).
 * Not under one: *out = NULL and TG_OK. Errors: MPI failed to start, or a
 * build without MPI launched as several ranks. */
int tg_dist_init(tg_dist **out, const tg_dist_params *p);
/* MPI_Finalize (after a run that ended normally on every rank). */
void tg_dist_free(tg_dist *d);
/* Ends the whole job at once with exit status `status` (an error on one
 * rank: the others would wait forever for it). */
_Noreturn void tg_dist_abort(tg_dist *d, int status);

int tg_dist_rank(const tg_dist *d); /* 0 for NULL */
int tg_dist_size(const tg_dist *d); /* 1 for NULL */
const char *tg_dist_host(const tg_dist *d, int rank);
int tg_dist_barrier(tg_dist *d, const char *what);

/* Binds the job to model m (after tg_model_alloc_train and, on resume, after
 * the checkpoint is loaded): checks every rank holds the same parameters
 * (and moments), sets up the buckets, the ZeRO-1 shard, and the model's
 * grad-ready hook. accum: A, the micro-batches of a step on each rank. */
int tg_dist_attach(tg_dist *d, tg_model *m, int accum);
/* Undoes attach (the hook, the shard buffers): call before freeing the model. */
void tg_dist_detach(tg_dist *d);
/* Micro-batch index of this rank for slice j = step*A + a: j*R + r. */
int64_t tg_dist_batch_index(const tg_dist *d, int64_t j);
/* Sums (max) n doubles across ranks, in place. */
int tg_dist_sum(tg_dist *d, double *v, int n, const char *what);
int tg_dist_max(tg_dist *d, double *v, int n, const char *what);
/* Before a step's first backward: the buckets start on its last slice. */
void tg_dist_step_begin(tg_dist *d, int64_t step);
/* After the step's backwards: waits for the gradient buckets (summed
 * gradients, or with ZeRO-1 the own shard's). */
int tg_dist_grads_wait(tg_dist *d);
/* Global-norm clipping and AdamW at step t (1-based), as tg_clip_grad_norm +
 * tg_adamw_update on the summed gradients; with ZeRO-1 the norm comes from
 * the shards and the updated shards are broadcast to every rank. *norm: the
 * gradient norm before clipping. */
int tg_dist_update(tg_dist *d, int t, float lr, const tg_optim_params *p, float *norm);
/* Before a checkpoint (every rank calls it): with ZeRO-1 the shards of the
 * moments are gathered into rank 0's model, so the checkpoint holds the whole
 * optimizer state. No-op otherwise. */
int tg_dist_gather_optim(tg_dist *d);
/* Every rank's status of the work just done: TG_OK when all are, else this
 * rank's error or one naming the first rank that failed. after_root_work:
 * rank 0 alone did slow work (a checkpoint), so the others wait longer. */
int tg_dist_agree(tg_dist *d, int rc, bool after_root_work);
/* Seconds this rank spent waiting on collectives since attach. */
double tg_dist_wait_seconds(const tg_dist *d);

#endif /* TG_TRAIN_DIST_H */
