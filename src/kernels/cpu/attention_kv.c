/*
 * attention_kv.c — the CPU backend's KV-cached attention for the rows of one
 * decode step (see tg_step_rows in kernels/backend.h): the rows' keys and
 * values go into the cache, then each row attends to its own slot's keys
 * 0..pos. A prefill group (a whole prompt) runs per (head, block of up to
 * TG_ATT_QBLOCK query rows) as two GEMMs against the cache; a decode row per
 * head as dot products. Either way a row reads only its own slot, so results
 * do not depend on the other rows of the step (bitwise batching).
 *
 * PyTorch: F.scaled_dot_product_attention(q, K[:pos+1], V[:pos+1]) per row.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/fastmath.h"
#include "kernels/cpu/kernels.h"

static inline float *kv_at(const tg_kv_cache *kv, float *base, int slot, int l, int h) {
    return base + ((((size_t)slot * kv->L + l) * kv->NH + h) * kv->max_ctx) * kv->HS;
}

void tg_kv_store(tg_kv_cache *kv, int l, const float *qkv, const tg_step_rows *rows) {
    const int NH = kv->NH, HS = kv->HS, C = NH * HS, R = rows->n;
#pragma omp parallel for schedule(static) if ((size_t)R * C >= 65536)
    for (int r = 0; r < R; r++) {
        int s = rows->slot[r], pos = rows->pos[r];
        for (int h = 0; h < NH; h++) {
            memcpy(kv_at(kv, kv->k, s, l, h) + (size_t)pos * HS, qkv + (size_t)r * 3 * C + C + h * HS,
                   (size_t)HS * sizeof(float));
            memcpy(kv_at(kv, kv->v, s, l, h) + (size_t)pos * HS, qkv + (size_t)r * 3 * C + 2 * C + h * HS,
                   (size_t)HS * sizeof(float));
        }
    }
}

/* softmax of row[0..n) in place (max subtracted), zero for [n, nk) */
static void softmax_prefix(float *row, int n, int nk) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int t = 0; t < n; t++) mx = fmaxf(mx, row[t]);
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int t = 0; t < n; t++) {
        row[t] = tg_expf(row[t] - mx);
        sum += row[t];
    }
    float inv = 1.0f / sum;
    for (int t = 0; t < n; t++) row[t] *= inv;
    for (int t = n; t < nk; t++) row[t] = 0.0f;
}

/* One decode row, one head: softmax(q K[0..n)^T / sqrt(HS)) V[0..n). */
static void attend_row(float *out, const float *q, const float *kc, const float *vc, int n, int HS, float *sc) {
    const float scale = 1.0f / sqrtf((float)HS);
    for (int t = 0; t < n; t++) {
        const float *k = kc + (size_t)t * HS;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < HS; d++) s += q[d] * k[d];
        sc[t] = s * scale;
    }
    softmax_prefix(sc, n, n);
    for (int d = 0; d < HS; d++) out[d] = 0;
    for (int t = 0; t < n; t++) {
        const float *v = vc + (size_t)t * HS;
        float p = sc[t];
        for (int d = 0; d < HS; d++) out[d] += p * v[d];
    }
}

size_t tg_attention_kv_scratch_floats(int max_ctx, int n_threads) {
    return (size_t)n_threads * TG_ATT_QBLOCK * max_ctx;
}

void tg_attention_kv(float *out, const float *qkv, const tg_kv_cache *kv, int l, const tg_step_rows *rows,
                     float *scratch) {
    const int NH = kv->NH, HS = kv->HS, C = NH * HS, max_ctx = kv->max_ctx;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int g = 0; g < rows->n_grp; g++) {
        int r0 = rows->grp_start[g], T = rows->grp_len[g];
        int s = rows->slot[r0], p0 = rows->pos[r0];
        int nblk = (T + TG_ATT_QBLOCK - 1) / TG_ATT_QBLOCK;
        const int par = (double)T * (p0 + T) * C >= (double)(1 << 18);
#pragma omp parallel for schedule(dynamic) if (par)
        for (int job = 0; job < NH * nblk; job++) {
            int h = job / nblk, b = job % nblk;
            int q0 = b * TG_ATT_QBLOCK;
            int nq = T - q0 < TG_ATT_QBLOCK ? T - q0 : TG_ATT_QBLOCK;
            int nk = p0 + q0 + nq; /* keys the last row of the block sees */
#ifdef _OPENMP
            float *S = scratch + (size_t)omp_get_thread_num() * TG_ATT_QBLOCK * max_ctx;
#else
            float *S = scratch;
#endif
            const float *Q = qkv + (size_t)(r0 + q0) * 3 * C + h * HS;
            const float *K = kv_at(kv, kv->k, s, l, h), *Vc = kv_at(kv, kv->v, s, l, h);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, HS, scale, Q, 3 * C, K, HS, 0.0f, S, nk);
            for (int i = 0; i < nq; i++) softmax_prefix(S + (size_t)i * nk, p0 + q0 + i + 1, nk); /* causal */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HS, nk, 1.0f, S, nk, Vc, HS, 0.0f,
                        out + (size_t)(r0 + q0) * C + h * HS, C);
        }
    }
    int r0 = rows->n_prefill, nd = rows->n - rows->n_prefill;
    if (nd <= 0) return;
    double work = 0;
    for (int r = r0; r < rows->n; r++) work += (double)(rows->pos[r] + 1) * C;
#pragma omp parallel for schedule(dynamic) if (work >= (double)(1 << 17))
    for (int job = 0; job < nd * NH; job++) {
        int r = r0 + job / NH, h = job % NH;
        int s = rows->slot[r];
#ifdef _OPENMP
        float *sc = scratch + (size_t)omp_get_thread_num() * TG_ATT_QBLOCK * max_ctx;
#else
        float *sc = scratch;
#endif
        attend_row(out + (size_t)r * C + h * HS, qkv + (size_t)r * 3 * C + h * HS, kv_at(kv, kv->k, s, l, h),
                   kv_at(kv, kv->v, s, l, h), rows->pos[r] + 1, HS, sc);
    }
}

/* Reference: every row against its slot's cache in double, for tests
 * (positions below 4096, HS at most 1024). */
void tg_attention_kv_naive(float *out, const float *qkv, const tg_kv_cache *kv, int l, const tg_step_rows *rows) {
    const int NH = kv->NH, HS = kv->HS, C = NH * HS;
    TG_ASSERT(HS <= 1024);
    for (int r = 0; r < rows->n; r++) {
        int s = rows->slot[r], n = rows->pos[r] + 1;
        TG_ASSERT(n <= 4096);
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)r * 3 * C + h * HS;
            const float *K = kv_at(kv, kv->k, s, l, h), *V = kv_at(kv, kv->v, s, l, h);
            double mx = -INFINITY, sum = 0, acc[1024];
            double sc[4096];
            for (int t = 0; t < n; t++) {
                double d = 0;
                for (int i = 0; i < HS; i++) d += (double)q[i] * K[(size_t)t * HS + i];
                sc[t] = d / sqrt((double)HS);
                if (sc[t] > mx) mx = sc[t];
            }
            for (int i = 0; i < HS; i++) acc[i] = 0;
            for (int t = 0; t < n; t++) {
                double p = exp(sc[t] - mx);
                sum += p;
                for (int i = 0; i < HS; i++) acc[i] += p * V[(size_t)t * HS + i];
            }
            for (int i = 0; i < HS; i++) out[(size_t)r * C + h * HS + i] = (float)(acc[i] / sum);
        }
    }
}
