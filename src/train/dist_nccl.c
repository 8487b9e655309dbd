/*
 * dist_nccl.c — GPU collectives for data parallel (docs/distributed.md):
 * COMPILE-ONLY. This file has never run: the machine it was written on has
 * no GPU, and the CUDA backend it would serve was being written at the same
 * time. CMake compiles it (when it finds CUDA's runtime, NCCL and MPI) into
 * an object library that nothing links, so it keeps compiling against the
 * headers; nothing in truthgpt calls it. It shows the shape the GPU half of
 * src/train/dist.c is meant to take:
 *
 *  - one rank per GPU; the NCCL communicator is bootstrapped over MPI (rank
 *    0's ncclUniqueId is broadcast with MPI_Bcast, then ncclCommInitRank);
 *  - a separate, non-blocking CUDA stream for communication: a bucket waits
 *    (cudaStreamWaitEvent) for an event recorded on the compute stream when
 *    the layer's backward was enqueued, so the all-reduce runs on the GPU
 *    under the rest of the backward without the host waiting;
 *  - ZeRO-1 as ncclReduceScatter into the own shard and ncclAllGather of the
 *    updated parameters (NCCL wants equal shards: the flat vector padded to
 *    a multiple of the ranks);
 *  - a watchdog: waits poll cudaEventQuery and ncclCommGetAsyncError against
 *    a deadline, and ncclCommAbort ends the collectives before MPI_Abort
 *    ends the job (a hung NCCL kernel does not return otherwise).
 *
 * Unlike dist.c the buckets here are contiguous ranges of device memory; the
 * per-layer strided pieces would be one call each, as in dist.c.
 */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream; /* communication only */
    cudaEvent_t ready;   /* recorded on the compute stream: a bucket's gradients are final */
    cudaEvent_t done;    /* recorded on the communication stream: everything posted is finished */
    int rank, size;
    double timeout_s;
} tg_dist_nccl;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CUDA_OK(call)                                                                                      \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));  \
            return -1;                                                                                     \
        }                                                                                                  \
    } while (0)
#define NCCL_OK(call)                                                                                      \
    do {                                                                                                   \
        ncclResult_t r_ = (call);                                                                          \
        if (r_ != ncclSuccess) {                                                                           \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, ncclGetErrorString(r_));  \
            return -1;                                                                                     \
        }                                                                                                  \
    } while (0)

/* One rank per GPU: this rank's GPU is its rank among the ranks of its node
 * (local_rank, e.g. OMPI_COMM_WORLD_LOCAL_RANK). Returns 0 or -1. */
int tg_dist_nccl_init(tg_dist_nccl *d, MPI_Comm comm, int local_rank, double timeout_s) {
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->size);
    d->timeout_s = timeout_s;
    CUDA_OK(cudaSetDevice(local_rank));
    ncclUniqueId id;
    if (d->rank == 0) NCCL_OK(ncclGetUniqueId(&id));
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm) != MPI_SUCCESS) return -1;
    NCCL_OK(ncclCommInitRank(&d->comm, d->size, id, d->rank));
    CUDA_OK(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreateWithFlags(&d->ready, cudaEventDisableTiming));
    CUDA_OK(cudaEventCreateWithFlags(&d->done, cudaEventDisableTiming));
    return 0;
}

/* Sums n floats at grad (device memory) across ranks, in place, after the
 * work already enqueued on the compute stream. Returns at once. */
int tg_dist_nccl_bucket(tg_dist_nccl *d, cudaStream_t compute, float *grad, size_t n) {
    CUDA_OK(cudaEventRecord(d->ready, compute));
    CUDA_OK(cudaStreamWaitEvent(d->stream, d->ready, 0));
    NCCL_OK(ncclAllReduce(grad, grad, n, ncclFloat, ncclSum, d->comm, d->stream));
    return 0;
}

/* ZeRO-1: the summed gradients of this rank's shard (n/size floats of the
 * n, n a multiple of size) into shard, and later the updated parameters of
 * every shard back into param. */
int tg_dist_nccl_reduce_scatter(tg_dist_nccl *d, cudaStream_t compute, const float *grad, float *shard, size_t n) {
    CUDA_OK(cudaEventRecord(d->ready, compute));
    CUDA_OK(cudaStreamWaitEvent(d->stream, d->ready, 0));
    NCCL_OK(ncclReduceScatter(grad, shard, n / (size_t)d->size, ncclFloat, ncclSum, d->comm, d->stream));
    return 0;
}
int tg_dist_nccl_all_gather(tg_dist_nccl *d, cudaStream_t compute, float *param, size_t n) {
    size_t per = n / (size_t)d->size;
    CUDA_OK(cudaEventRecord(d->ready, compute));
    CUDA_OK(cudaStreamWaitEvent(d->stream, d->ready, 0));
    NCCL_OK(ncclAllGather(param + per * (size_t)d->rank, param, per, ncclFloat, d->comm, d->stream));
    return 0;
}

/* The compute stream waits for everything posted (the optimizer runs after
 * it); the host waits too, under the deadline: a collective that does not
 * finish in time aborts the communicator and the job. */
int tg_dist_nccl_wait(tg_dist_nccl *d, cudaStream_t compute) {
    CUDA_OK(cudaEventRecord(d->done, d->stream));
    double deadline = now_s() + d->timeout_s;
    for (;;) {
        cudaError_t q = cudaEventQuery(d->done);
        if (q == cudaSuccess) break;
        if (q != cudaErrorNotReady) CUDA_OK(q);
        ncclResult_t async = ncclSuccess;
        NCCL_OK(ncclCommGetAsyncError(d->comm, &async));
        if (async != ncclSuccess || now_s() > deadline) {
            fprintf(stderr, "truthgpt: rank %d: NCCL collective %s; ending the job\n", d->rank,
                    async != ncclSuccess ? ncclGetErrorString(async) : "past its deadline (a rank died or hangs)");
            ncclCommAbort(d->comm);
            MPI_Abort(MPI_COMM_WORLD, 1);
            return -1;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    CUDA_OK(cudaStreamWaitEvent(compute, d->done, 0));
    return 0;
}

void tg_dist_nccl_free(tg_dist_nccl *d) {
    cudaEventDestroy(d->ready);
    cudaEventDestroy(d->done);
    cudaStreamDestroy(d->stream);
    ncclCommDestroy(d->comm);
}
