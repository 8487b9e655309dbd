/*
 * dist.c — data-parallel training over MPI (dist.h, docs/distributed.md).
 *
 * Buckets. The gradient memory is the 16 tensors of tg_params_point back to
 * back, the per-layer ones (L, ...): layer l's gradients are 12 strided
 * pieces. Bucket l (l = L-1 .. 0) is those 12 pieces, bucket L the rest
 * (wte, wpe, ln_f). The model calls the grad-ready hook as soon as layer l's
 * gradients are final; on the step's last accumulation slice the hook posts
 * one nonblocking collective per piece, so layer l's reduction runs while
 * layers l-1 .. 0 still compute. Open MPI progresses nonblocking collectives
 * only inside MPI calls (no progress thread by default), so the hook also
 * calls MPI_Testall on what is in flight: the overlap is real but coarse,
 * one nudge per layer.
 *
 * Without ZeRO: MPI_Iallreduce in place on each piece; every rank then runs
 * the same clip + AdamW as a single process (tg_clip_grad_norm,
 * tg_adamw_update) on identical summed gradients.
 *
 * ZeRO-1: rank q owns the flat range [n*q/R, n*(q+1)/R) of the parameters.
 * Each piece is cut at those boundaries into blocks; a block's gradients are
 * MPI_Ireduce'd to its owner only (into a compact shard buffer), so the
 * reduce-scatter also starts per layer. The owner clips (the global norm is
 * the sum over shards of their squared norms), updates its range with
 * tg_adamw_update_range and MPI_Ibcast's each of its blocks: together the
 * broadcasts are the all-gather of the parameters. The moments exist only
 * for the own shard (2n/R floats a rank instead of 2n); a checkpoint gathers
 * them into rank 0's model first. Counts stay below 2^31 because a block is
 * never larger than one tensor's layer slice (or wte), so no MPI call sees a
 * count of the whole model.
 *
 * Watchdog. Every wait polls MPI_Testall against a deadline. When it
 * passes, a rank other than 0 tells rank 0 that it is alive and waiting;
 * rank 0, once its own deadline passes, listens a few seconds for those
 * messages and names the ranks it did not hear from (a dead rank, or one
 * stopped or stuck outside MPI), then MPI_Abort ends the whole job. A rank
 * that hears nothing from rank 0 names rank 0. A rank killed outright is
 * usually reported first by mpirun itself ("process rank N ... on node H
 * exited on signal 9").
 *
 * What this does not do: GPU memory (NCCL), or surviving a lost rank inside
 * the job (MPI cannot shrink a communicator portably): the job ends, and
 * scripts/train-forever.sh relaunches it from the last checkpoint.
 */
#include "train/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "model/model.h"

tg_dist_params tg_dist_default_params(void) {
    tg_dist_params p = {.zero = 0, .timeout_s = 30.0};
    return p;
}

int tg_dist_launcher_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    if (v) return atoi(v) > 0 ? atoi(v) : -1;
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) {
        /* srun with PMIx says the size only through Slurm's variables. */
        v = getenv("SLURM_STEP_NUM_TASKS");
        if (!v) v = getenv("SLURM_NTASKS");
        return v && atoi(v) > 0 ? atoi(v) : -1;
    }
    return 0;
}

#ifdef TG_HAVE_MPI

#include <mpi.h>

/* A run of one tensor's gradients (and parameters) in the flat vector, at
 * most one rank's shard of it under ZeRO-1 (owner), else a whole piece
 * (owner -1). */
typedef struct {
    size_t off, n;
    int owner;
} block;

struct tg_dist {
    MPI_Comm comm;
    int rank, size;
    char (*hosts)[64]; /* (size) */
    tg_dist_params p;
    tg_model *m;
    float *param, *grad; /* the model's memory: host memory (cpu backend) */
    size_t n;
    int L, accum, slice;
    int64_t step;
    block *blocks;     /* (n_blocks) bucket by bucket */
    int *bucket_start; /* (L + 2) blocks of bucket b: [bucket_start[b], bucket_start[b+1]) */
    int n_blocks;
    MPI_Request *reqs; /* (n_blocks) */
    int n_reqs;
    int hook_err;      /* first MPI error seen inside the hook (it cannot return one) */
    size_t lo, hi;     /* ZeRO-1: this rank's range of the flat vector */
    float *gs, *m1, *v2; /* ZeRO-1: (hi - lo) summed gradients and moments of the own range */
    double wait_s;
};

enum { TAG_ALIVE = 7001, TAG_M1 = 7002, TAG_V2 = 7003 };
#define GRACE_S 5.0
/* Per message, well below INT_MAX elements. */
#define CHUNK ((size_t)1 << 28)

static int mpi_fail(int e, const char *what, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(e, msg, &len);
    return tg_error_set(TG_ERR_RUNTIME, "%s:%d: %s failed: %s (a rank died or the network failed?)", file, line, what,
                        msg);
}
#define MPI_TRY(call)                                                             \
    do {                                                                          \
        int mpi_e_ = (call);                                                      \
        if (mpi_e_ != MPI_SUCCESS) return mpi_fail(mpi_e_, #call, __FILE__, __LINE__); \
    } while (0)

bool tg_dist_compiled(void) { return true; }
int tg_dist_rank(const tg_dist *d) { return d ? d->rank : 0; }
int tg_dist_size(const tg_dist *d) { return d ? d->size : 1; }
const char *tg_dist_host(const tg_dist *d, int rank) {
    return d && rank >= 0 && rank < d->size ? d->hosts[rank] : "localhost";
}
double tg_dist_wait_seconds(const tg_dist *d) { return d ? d->wait_s : 0; }
int64_t tg_dist_batch_index(const tg_dist *d, int64_t j) { return d ? j * d->size + d->rank : j; }

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* The deadline passed in `what`: find out who is missing, say so, end the
 * job. Never returns. */
_Noreturn static void timed_out(tg_dist *d, const char *what, double waited) {
    if (d->rank != 0) {
        int msg = d->rank;
        MPI_Request rq;
        MPI_Isend(&msg, 1, MPI_INT, 0, TAG_ALIVE, d->comm, &rq);
        fprintf(stderr, "truthgpt: rank %d (%s): %s at step %lld has waited %.0f s; rank 0 names the missing rank\n",
                d->rank, d->hosts[d->rank], what, (long long)d->step, waited);
        /* Rank 0 aborts the job within its grace period if it is alive. */
        for (double end = tg_now() + 3 * GRACE_S; tg_now() < end;) {
            int f = 0;
            MPI_Test(&rq, &f, MPI_STATUS_IGNORE);
            sleep_us(1000);
        }
        fprintf(stderr,
                "truthgpt: rank %d (%s): no word from rank 0 (%s) in %.0f s: it died or hangs; ending the job "
                "(the last complete checkpoint is intact; resume with --resume)\n",
                d->rank, d->hosts[d->rank], d->hosts[0], waited + 3 * GRACE_S);
        MPI_Abort(d->comm, 1);
        _exit(1);
    }
    bool *alive = calloc((size_t)d->size, sizeof *alive);
    int n_alive = 1;
    if (alive) alive[0] = true;
    for (double end = tg_now() + GRACE_S; alive && tg_now() < end && n_alive < d->size;) {
        int flag = 0, msg;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_ALIVE, d->comm, &flag, &st);
        if (!flag) {
            sleep_us(1000);
            continue;
        }
        MPI_Recv(&msg, 1, MPI_INT, st.MPI_SOURCE, TAG_ALIVE, d->comm, MPI_STATUS_IGNORE);
        if (!alive[st.MPI_SOURCE]) n_alive++;
        alive[st.MPI_SOURCE] = true;
    }
    fprintf(stderr, "truthgpt: rank 0 (%s): %s at step %lld has waited %.0f s;", d->hosts[0], what, (long long)d->step,
            waited);
    if (alive && n_alive < d->size) {
        int shown = 0;
        for (int q = 0; q < d->size && shown < 16; q++)
            if (!alive[q]) fprintf(stderr, "%s rank %d (%s)", shown++ ? "," : " no word from", q, d->hosts[q]);
        if (d->size - n_alive > shown) fprintf(stderr, " and %d more", d->size - n_alive - shown);
        fprintf(stderr, ": dead or hung.");
    } else if (alive)
        fprintf(stderr, " every rank is waiting (ranks disagree on the collectives: a bug).");
    fprintf(stderr, " Ending the job; the last complete checkpoint is intact (resume with --resume).\n");
    free(alive);
    MPI_Abort(d->comm, 1);
    _exit(1);
}

/* Waits for n requests under the watchdog (deadline: factor * timeout). */
static int wait_all(tg_dist *d, MPI_Request *r, int n, const char *what, double factor) {
    double t0 = tg_now(), deadline = t0 + d->p.timeout_s * factor;
    for (long spins = 0;; spins++) {
        int done = 0;
        MPI_TRY(MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE));
        if (done) break;
        double now = tg_now();
        if (now > deadline) timed_out(d, what, now - t0);
        /* Spin briefly (a step's collectives usually finish in
         * microseconds), then sleep so a waiting rank leaves the core to a
         * computing one (ranks often share cores). */
        if (spins > 100) sleep_us(50);
    }
    d->wait_s += tg_now() - t0;
    return TG_OK;
}

int tg_dist_init(tg_dist **out, const tg_dist_params *p) {
    *out = NULL;
    if (tg_dist_launcher_size() == 0) return TG_OK;
    int provided = 0;
    /* Only the main thread calls MPI (OpenMP threads never do). */
    int e = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (e != MPI_SUCCESS) return mpi_fail(e, "MPI_Init_thread", __FILE__, __LINE__);
    tg_dist *d = calloc(1, sizeof *d);
    if (!d) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    d->p = *p;
    if (d->p.timeout_s <= 0) d->p.timeout_s = tg_dist_default_params().timeout_s;
    int rc = TG_OK;
    if ((e = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm)) != MPI_SUCCESS) rc = mpi_fail(e, "MPI_Comm_dup", __FILE__, __LINE__);
    if (rc == TG_OK) {
        /* Errors come back as codes (and end the job through tg_dist_abort). */
        MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(d->comm, &d->rank);
        MPI_Comm_size(d->comm, &d->size);
        d->hosts = calloc((size_t)d->size, sizeof *d->hosts);
        char me[64] = "";
        gethostname(me, sizeof me - 1);
        if (!d->hosts) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
        else if ((e = MPI_Allgather(me, 64, MPI_CHAR, d->hosts, 64, MPI_CHAR, d->comm)) != MPI_SUCCESS)
            rc = mpi_fail(e, "MPI_Allgather (host names)", __FILE__, __LINE__);
    }
    if (rc != TG_OK) {
        free(d->hosts);
        free(d);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return rc;
    }
    *out = d;
    return TG_OK;
}

void tg_dist_detach(tg_dist *d) {
    if (!d || !d->m) return;
    tg_model_set_grad_ready(d->m, NULL, NULL);
    tg_backend *be = tg_model_backend(d->m);
    be->free(be, d->gs);
    be->free(be, d->m1);
    be->free(be, d->v2);
    d->gs = d->m1 = d->v2 = NULL;
    free(d->blocks);
    free(d->bucket_start);
    free(d->reqs);
    d->blocks = NULL;
    d->bucket_start = NULL;
    d->reqs = NULL;
    d->n_blocks = 0;
    d->m = NULL;
}

void tg_dist_free(tg_dist *d) {
    if (!d) return;
    tg_dist_detach(d);
    free(d->hosts);
    MPI_Comm_free(&d->comm);
    MPI_Finalize();
    free(d);
}

_Noreturn void tg_dist_abort(tg_dist *d, int status) {
    fflush(stderr);
    MPI_Abort(d ? d->comm : MPI_COMM_WORLD, status);
    _exit(status);
}

int tg_dist_barrier(tg_dist *d, const char *what) {
    if (!d) return TG_OK;
    MPI_Request r;
    MPI_TRY(MPI_Ibarrier(d->comm, &r));
    return wait_all(d, &r, 1, what, 1);
}

static int allreduce(tg_dist *d, void *v, int n, MPI_Datatype t, MPI_Op op, const char *what, double factor) {
    MPI_Request r;
    MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, v, n, t, op, d->comm, &r));
    return wait_all(d, &r, 1, what, factor);
}

int tg_dist_sum(tg_dist *d, double *v, int n, const char *what) {
    return d ? allreduce(d, v, n, MPI_DOUBLE, MPI_SUM, what, 1) : TG_OK;
}
int tg_dist_max(tg_dist *d, double *v, int n, const char *what) {
    return d ? allreduce(d, v, n, MPI_DOUBLE, MPI_MAX, what, 1) : TG_OK;
}

int tg_dist_agree(tg_dist *d, int rc, bool after_root_work) {
    if (!d) return rc;
    int first = rc == TG_OK ? d->size : d->rank;
    int e = allreduce(d, &first, 1, MPI_INT, MPI_MIN, "the status check", after_root_work ? 10 : 1);
    if (rc != TG_OK) return rc;
    if (e != TG_OK) return e;
    if (first < d->size)
        return tg_error_set(TG_ERR_RUNTIME, "rank %d (%s) failed (its message is above)", first, d->hosts[first]);
    return TG_OK;
}

/* FNV-1a over 64-bit words: a cheap fingerprint to check that every rank
 * holds the same numbers (O(n), once at attach). */
static uint64_t fingerprint(const float *x, size_t n, uint64_t h) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint64_t w;
        memcpy(&w, x + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    if (n % 2) {
        uint32_t w;
        memcpy(&w, x + n - 1, 4);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h;
}

static size_t shard_bound(const tg_dist *d, int q) { return (size_t)((unsigned __int128)d->n * (unsigned)q / (unsigned)d->size); }

static int add_block(tg_dist *d, int *cap, size_t off, size_t n, int owner) {
    if (n == 0) return TG_OK;
    if (d->n_blocks == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        block *nb = realloc(d->blocks, (size_t)nc * sizeof *nb);
        if (!nb) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
        d->blocks = nb;
        *cap = nc;
    }
    d->blocks[d->n_blocks++] = (block){off, n, owner};
    return TG_OK;
}

/* A piece [off, off+n) as blocks: whole (no ZeRO), or cut at the shard
 * boundaries with each part's owner. */
static int add_piece(tg_dist *d, int *cap, size_t off, size_t n) {
    if (!d->p.zero) return add_block(d, cap, off, n, -1);
    for (int q = 0; q < d->size; q++) {
        size_t a = shard_bound(d, q), b = shard_bound(d, q + 1);
        if (a < off) a = off;
        if (b > off + n) b = off + n;
        if (a < b) TG_TRY(add_block(d, cap, a, b - a, q));
    }
    return TG_OK;
}

/* Posts bucket b's collectives (see the file comment). */
static int start_bucket(tg_dist *d, int b) {
    for (int i = d->bucket_start[b]; i < d->bucket_start[b + 1]; i++) {
        const block *k = &d->blocks[i];
        MPI_Request *r = &d->reqs[d->n_reqs++];
        if (!d->p.zero)
            MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, d->grad + k->off, (int)k->n, MPI_FLOAT, MPI_SUM, d->comm, r));
        else
            MPI_TRY(MPI_Ireduce(d->grad + k->off, k->owner == d->rank ? d->gs + (k->off - d->lo) : NULL, (int)k->n,
                                MPI_FLOAT, MPI_SUM, k->owner, d->comm, r));
    }
    /* Nudge what is in flight along (see the file comment). */
    int done;
    MPI_TRY(MPI_Testall(d->n_reqs, d->reqs, &done, MPI_STATUSES_IGNORE));
    return TG_OK;
}

static void on_grad_ready(void *user, int layer) {
    tg_dist *d = user;
    if (d->slice == d->accum - 1 && d->hook_err == TG_OK) d->hook_err = start_bucket(d, layer >= 0 ? layer : d->L);
    if (layer < 0) d->slice++;
}

int tg_dist_attach(tg_dist *d, tg_model *m, int accum) {
    if (!d) return TG_OK;
    if (strcmp(tg_model_backend_name(m), "cpu") != 0)
        return tg_error_set(TG_ERR_INPUT,
                            "data parallel over MPI needs the cpu backend (this model is on '%s'; GPU ranks need "
                            "NCCL, which this build does not have)",
                            tg_model_backend_name(m));
    d->m = m;
    d->param = tg_model_param_device(m);
    d->grad = tg_model_grad_device(m);
    d->n = tg_model_num_params(m);
    d->L = tg_model_config(m)->n_layer;
    d->accum = accum;
    if (!d->grad) return tg_error_set(TG_ERR_RUNTIME, "tg_dist_attach before tg_model_alloc_train");
    tg_backend *be = tg_model_backend(m);
    if (d->p.zero) {
        d->lo = shard_bound(d, d->rank);
        d->hi = shard_bound(d, d->rank + 1);
    } else {
        d->lo = 0;
        d->hi = d->n;
    }

    /* The moments on this rank (resume: loaded from the checkpoint). */
    int rc = TG_OK;
    bool have = tg_model_has_optim(m);
    float *hm1 = NULL, *hv2 = NULL;
    uint64_t fp = fingerprint(d->param, d->n, 0xcbf29ce484222325ull);
    if (have) {
        hm1 = tg_alloc(d->n * sizeof(float), "AdamW first moments (host copy)");
        hv2 = tg_alloc(d->n * sizeof(float), "AdamW second moments (host copy)");
        if (!hm1 || !hv2) rc = TG_ERR_RUNTIME;
        if (rc == TG_OK) rc = tg_model_optim_to_host(m, hm1, hv2);
        if (rc == TG_OK) fp = fingerprint(hv2, d->n, fingerprint(hm1, d->n, fp));
    }
    /* Same numbers everywhere: the run directory must be one that every
     * rank reads (a shared filesystem), and the seed the same. */
    uint64_t lohi[2] = {fp, ~fp};
    /* Run by every rank whatever happened above (a collective all must join). */
    int e = allreduce(d, lohi, 2, MPI_UINT64_T, MPI_MIN, "the start check", 1);
    if (rc == TG_OK) rc = e;
    if (rc == TG_OK && (lohi[0] != fp || ~lohi[1] != fp))
        rc = tg_error_set(TG_ERR_INPUT,
                          "rank %d (%s) starts from other weights or moments than another rank: every rank must "
                          "read the same --out (a filesystem all nodes share) with the same flags",
                          d->rank, d->hosts[d->rank]);

    /* Buckets: layer l's 12 pieces, then the rest. */
    size_t sizes[TG_NUM_PARAM_TENSORS], offs[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(tg_model_config(m), sizes);
    for (int k = 0; k < TG_NUM_PARAM_TENSORS; k++) offs[k] = k ? offs[k - 1] + sizes[k - 1] : 0;
    d->bucket_start = calloc((size_t)d->L + 2, sizeof *d->bucket_start);
    if (rc == TG_OK && !d->bucket_start) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    int cap = 0;
    for (int l = 0; l < d->L && rc == TG_OK; l++) {
        d->bucket_start[l] = d->n_blocks;
        for (int k = 2; k <= 13 && rc == TG_OK; k++) {
            size_t per = sizes[k] / (size_t)d->L;
            rc = add_piece(d, &cap, offs[k] + (size_t)l * per, per);
        }
    }
    if (rc == TG_OK) {
        d->bucket_start[d->L] = d->n_blocks;
        const int rest[4] = {0, 1, 14, 15};
        for (int i = 0; i < 4 && rc == TG_OK; i++) rc = add_piece(d, &cap, offs[rest[i]], sizes[rest[i]]);
        d->bucket_start[d->L + 1] = d->n_blocks;
    }
    if (rc == TG_OK) {
        d->reqs = calloc((size_t)d->n_blocks + 1, sizeof *d->reqs);
        if (!d->reqs) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }

    /* ZeRO-1: the own shard of the moments (zero, or the checkpoint's). */
    if (rc == TG_OK && d->p.zero) {
        size_t ns = d->hi - d->lo, bytes = (ns ? ns : 1) * sizeof(float);
        d->gs = be->alloc(be, bytes, "ZeRO-1 gradient shard");
        d->m1 = be->alloc(be, bytes, "ZeRO-1 first moments");
        d->v2 = be->alloc(be, bytes, "ZeRO-1 second moments");
        if (!d->gs || !d->m1 || !d->v2) rc = TG_ERR_RUNTIME;
        else if (have) {
            be->to_device(be, d->m1, hm1 + d->lo, ns * sizeof(float));
            be->to_device(be, d->v2, hv2 + d->lo, ns * sizeof(float));
        }
    }
    tg_free(hm1);
    tg_free(hv2);
    if (rc == TG_OK) tg_model_set_grad_ready(m, on_grad_ready, d);
    return tg_dist_agree(d, rc, false);
}

void tg_dist_step_begin(tg_dist *d, int64_t step) {
    if (!d) return;
    d->step = step;
    d->slice = 0;
    d->n_reqs = 0;
    d->hook_err = TG_OK;
}

int tg_dist_grads_wait(tg_dist *d) {
    if (!d) return TG_OK;
    if (d->hook_err != TG_OK) return d->hook_err;
    if (d->slice != d->accum || d->n_reqs != d->n_blocks)
        return tg_error_set(TG_ERR_RUNTIME, "data parallel: %d of %d backwards, %d of %d buckets posted", d->slice,
                            d->accum, d->n_reqs, d->n_blocks);
    return wait_all(d, d->reqs, d->n_reqs, d->p.zero ? "the gradient reduce-scatter" : "the gradient all-reduce", 1);
}

int tg_dist_update(tg_dist *d, int t, float lr, const tg_optim_params *p, float *norm) {
    if (!d->p.zero) {
        /* Identical summed gradients on every rank: the single-process update. */
        *norm = tg_clip_grad_norm(d->m, p->grad_clip);
        return tg_adamw_update(d->m, t, lr, p);
    }
    tg_backend *be = tg_model_backend(d->m);
    size_t ns = d->hi - d->lo;
    double ss = ns ? be->sum_squares(be, d->gs, ns) : 0.0;
    TG_TRY(tg_dist_sum(d, &ss, 1, "the gradient norm"));
    *norm = (float)sqrt(ss);
    if (p->grad_clip > 0.0f) {
        float coef = p->grad_clip / (*norm + 1e-6f);
        if (coef < 1.0f && ns) be->scale(be, d->gs, coef, ns);
    }
    if (ns) TG_TRY(tg_adamw_update_range(d->m, t, lr, p, d->lo, d->hi, d->gs, d->m1, d->v2));
    /* The all-gather: each block from its owner. */
    for (int i = 0; i < d->n_blocks; i++) {
        const block *k = &d->blocks[i];
        MPI_TRY(MPI_Ibcast(d->param + k->off, (int)k->n, MPI_FLOAT, k->owner, d->comm, &d->reqs[i]));
    }
    return wait_all(d, d->reqs, d->n_blocks, "the parameter all-gather", 1);
}

int tg_dist_gather_optim(tg_dist *d) {
    if (!d || !d->p.zero) return TG_OK;
    int rc = TG_OK;
    float *m1 = NULL, *v2 = NULL;
    int nr = 0, cap = 0;
    MPI_Request *r = NULL;
    /* Messages: each rank's shard in CHUNK pieces, two moments. */
    for (int q = 0; q < d->size; q++) cap += 2 * (int)((shard_bound(d, q + 1) - shard_bound(d, q)) / CHUNK + 1);
    r = calloc((size_t)cap, sizeof *r);
    if (!r) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK && d->rank == 0) {
        m1 = tg_alloc(d->n * sizeof(float), "AdamW first moments (gathered)");
        v2 = tg_alloc(d->n * sizeof(float), "AdamW second moments (gathered)");
        if (!m1 || !v2) rc = TG_ERR_RUNTIME;
    }
    /* An allocation failure on rank 0 must not leave the others sending. */
    rc = tg_dist_agree(d, rc, false);
    for (int q = 0; q < d->size && rc == TG_OK; q++) {
        size_t a = shard_bound(d, q), b = shard_bound(d, q + 1);
        for (size_t o = a; o < b && rc == TG_OK; o += CHUNK) {
            int cnt = (int)(b - o < CHUNK ? b - o : CHUNK);
            if (d->rank == 0 && q == 0) {
                memcpy(m1 + o, d->m1 + (o - a), (size_t)cnt * sizeof(float));
                memcpy(v2 + o, d->v2 + (o - a), (size_t)cnt * sizeof(float));
            } else if (d->rank == 0) {
                MPI_Request *rr = r + nr;
                int e = MPI_Irecv(m1 + o, cnt, MPI_FLOAT, q, TAG_M1, d->comm, &rr[0]);
                if (e == MPI_SUCCESS) e = MPI_Irecv(v2 + o, cnt, MPI_FLOAT, q, TAG_V2, d->comm, &rr[1]);
                if (e != MPI_SUCCESS) rc = mpi_fail(e, "MPI_Irecv (moments)", __FILE__, __LINE__);
                nr += 2;
            } else if (q == d->rank) {
                MPI_Request *rr = r + nr;
                int e = MPI_Isend(d->m1 + (o - a), cnt, MPI_FLOAT, 0, TAG_M1, d->comm, &rr[0]);
                if (e == MPI_SUCCESS) e = MPI_Isend(d->v2 + (o - a), cnt, MPI_FLOAT, 0, TAG_V2, d->comm, &rr[1]);
                if (e != MPI_SUCCESS) rc = mpi_fail(e, "MPI_Isend (moments)", __FILE__, __LINE__);
                nr += 2;
            }
        }
    }
    if (rc == TG_OK) rc = wait_all(d, r, nr, "the optimizer-state gather", 1);
    if (rc == TG_OK && d->rank == 0) rc = tg_model_optim_from_host(d->m, m1, v2);
    tg_free(m1);
    tg_free(v2);
    free(r);
    return rc;
}

#else /* !TG_HAVE_MPI: one process; under a launcher, say why not more. */

struct tg_dist {
    int rank, size;
};

bool tg_dist_compiled(void) { return false; }

int tg_dist_init(tg_dist **out, const tg_dist_params *p) {
    (void)p;
    *out = NULL;
    int n = tg_dist_launcher_size();
    if (n == 0) return TG_OK;
    if (n == 1) {
        tg_warn("launched by an MPI launcher, but this truthgpt was built without MPI: running as one process");
        return TG_OK;
    }
    char ranks[32] = "several";
    if (n > 1) snprintf(ranks, sizeof ranks, "%d", n);
    return tg_error_set(TG_ERR_INPUT,
                        "launched by an MPI launcher as %s ranks, but this truthgpt was built without MPI: each "
                        "rank would train alone into the same --out. Install libopenmpi-dev (scripts/setup.sh) and "
                        "rebuild (CMake prints \"✓ MPI\"), or run without mpirun",
                        ranks);
}

void tg_dist_free(tg_dist *d) { (void)d; }
_Noreturn void tg_dist_abort(tg_dist *d, int status) {
    (void)d;
    exit(status);
}
int tg_dist_rank(const tg_dist *d) { return d ? d->rank : 0; }
int tg_dist_size(const tg_dist *d) { return d ? d->size : 1; }
const char *tg_dist_host(const tg_dist *d, int rank) {
    (void)d;
    (void)rank;
    return "localhost";
}
int tg_dist_barrier(tg_dist *d, const char *what) {
    (void)d;
    (void)what;
    return TG_OK;
}
void tg_dist_detach(tg_dist *d) { (void)d; }
int tg_dist_attach(tg_dist *d, tg_model *m, int accum) {
    (void)d;
    (void)m;
    (void)accum;
    return TG_OK;
}
int64_t tg_dist_batch_index(const tg_dist *d, int64_t j) {
    (void)d;
    return j;
}
int tg_dist_sum(tg_dist *d, double *v, int n, const char *what) {
    (void)d, (void)v, (void)n, (void)what;
    return TG_OK;
}
int tg_dist_max(tg_dist *d, double *v, int n, const char *what) {
    (void)d, (void)v, (void)n, (void)what;
    return TG_OK;
}
void tg_dist_step_begin(tg_dist *d, int64_t step) { (void)d, (void)step; }
int tg_dist_grads_wait(tg_dist *d) {
    (void)d;
    return TG_OK;
}
int tg_dist_update(tg_dist *d, int t, float lr, const tg_optim_params *p, float *norm) {
    (void)d, (void)t, (void)lr, (void)p, (void)norm;
    return tg_error_set(TG_ERR_RUNTIME, "tg_dist_update without MPI");
}
int tg_dist_gather_optim(tg_dist *d) {
    (void)d;
    return TG_OK;
}
int tg_dist_agree(tg_dist *d, int rc, bool after_root_work) {
    (void)d, (void)after_root_work;
    return rc;
}
double tg_dist_wait_seconds(const tg_dist *d) {
    (void)d;
    return 0;
}

#endif
