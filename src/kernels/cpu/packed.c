/*
 * packed.c — the CPU backend's matrix multiply for inference weights:
 * weights repacked once into 16-column panels (fp32, or bf16 pairs for
 * AVX512_BF16's dot product) and multiplied by a few rows at a time.
 *
 * Why not cblas_sgemm for decode: with 1-16 rows the cost is reading the
 * weights, and a row-major (K, N) weight split by columns across threads is
 * read as many short strided runs; a panel is one contiguous stream per
 * thread, and each row's sum runs in the same order whatever the number of
 * rows, so batched decoding gives bitwise the same tokens as one stream.
 * Prefill rows go through the same kernel, so a prompt's result does not
 * depend on what else is in the step.
 *
 * Not here: the training GEMMs (matmul.c, matmul_bf16.c), attention
 * (attention.c, attention_kv.c).
 */
#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/packed.h"

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static inline __attribute__((unused)) float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int tg_packed_weight_init(tg_packed_weight *pw, const float *W, int K, int N, int transposed, tg_dtype dtype) {
    memset(pw, 0, sizeof *pw);
    pw->K = K;
    pw->N = N;
    pw->Np = (N + TG_PANEL - 1) / TG_PANEL * TG_PANEL;
    pw->dtype = dtype;
    if (dtype == TG_DTYPE_BF16 && K % 2) return tg_error_set(TG_ERR_INPUT, "bf16 weights need an even K (got %d)", K);
    size_t n = (size_t)K * pw->Np;
    pw->data = tg_alloc(n * (dtype == TG_DTYPE_BF16 ? 2 : 4), "packed weights");
    if (!pw->data) return TG_ERR_RUNTIME;
    int P = pw->Np / TG_PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        for (int k = 0; k < K; k++) {
            for (int j = 0; j < TG_PANEL; j++) {
                int c = p * TG_PANEL + j;
                float w = 0.0f;
                if (c < N) w = transposed ? W[(size_t)c * K + k] : W[(size_t)k * N + c];
                if (dtype == TG_DTYPE_BF16) {
                    size_t at = (((size_t)p * (K / 2) + k / 2) * TG_PANEL + j) * 2 + (k % 2);
                    ((uint16_t *)pw->data)[at] = f32_to_bf16(w);
                } else {
                    ((float *)pw->data)[((size_t)p * K + k) * TG_PANEL + j] = w;
                }
            }
        }
    }
    return TG_OK;
}

void tg_packed_weight_free(tg_packed_weight *pw) {
    if (!pw) return;
    tg_free(pw->data);
    pw->data = NULL;
}

/* One panel (16 columns) times MR rows of x: out[i, 0:nv] = x[i, :] @ panel + bias.
 * always_inline with a constant MR lets the compiler keep the MR accumulators
 * in registers. Rows are summed in k order, independent of MR. */
#ifndef PF_AHEAD
#define PF_AHEAD 2048 /* elements of the panel ahead of the loads (8 KB in fp32; tuned) */
#endif

/* The store of a tile: out = acc + bias, or with a residual (res, same
 * stride as out, may be out itself) out = res + (acc + bias) — the order of
 * the two adds is that of a separate bias and residual pass. */
#define STORE_ROWS()                                                                                     \
    do {                                                                                                 \
        __mmask16 m = nv >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nv) - 1);                       \
        __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();                          \
        for (int i = 0; i < MR; i++) {                                                                   \
            __m512 y = _mm512_add_ps(acc[i], b);                                                         \
            if (res) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, res + (size_t)i * ldo), y);              \
            _mm512_mask_storeu_ps(out + (size_t)i * ldo, m, y);                                          \
        }                                                                                                \
    } while (0)
#define STORE_ROW_SCALAR()                                                                               \
    for (int j = 0; j < nv; j++) {                                                                       \
        float y = acc[j] + (bias ? bias[j] : 0.0f);                                                      \
        out[(size_t)i * ldo + j] = res ? res[(size_t)i * ldo + j] + y : y;                               \
    }

#if defined(__AVX512F__)
static inline __attribute__((always_inline)) void tile_f32(int MR, float *out, int ldo, const float *x, int ldx,
                                                           const float *pan, int K, const float *bias, int nv,
                                                           const float *res) {
    __m512 acc[16];
    for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        /* the panel streams from memory: ask for it ~2 KB ahead (the hardware
         * prefetcher alone falls behind while the FMAs of many rows run) */
        _mm_prefetch((const char *)(pan + (size_t)k * TG_PANEL + PF_AHEAD), _MM_HINT_T0);
        __m512 w = _mm512_load_ps(pan + (size_t)k * TG_PANEL);
        for (int i = 0; i < MR; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)i * ldx + k]), w, acc[i]);
    }
    STORE_ROWS();
}
#else
static inline void tile_f32(int MR, float *out, int ldo, const float *x, int ldx, const float *pan, int K,
                            const float *bias, int nv, const float *res) {
    for (int i = 0; i < MR; i++) {
        float acc[TG_PANEL] = {0};
        for (int k = 0; k < K; k++)
            for (int j = 0; j < TG_PANEL; j++) acc[j] += x[(size_t)i * ldx + k] * pan[(size_t)k * TG_PANEL + j];
        STORE_ROW_SCALAR();
    }
}
#endif

/* bf16: xb holds the rows rounded to bf16 (row stride K); each step of k
 * takes a pair of rows of the panel and a pair of x values (dpbf16: two
 * products summed in fp32 per lane). */
#if defined(__AVX512BF16__)
static inline __attribute__((always_inline)) void tile_bf16(int MR, float *out, int ldo, const uint16_t *xb, int K,
                                                            const uint16_t *pan, const float *bias, int nv,
                                                            const float *res) {
    __m512 acc[16];
    for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 2) {
        _mm_prefetch((const char *)(pan + (size_t)k * TG_PANEL + 2 * PF_AHEAD), _MM_HINT_T0);
        __m512bh w = (__m512bh)_mm512_load_si512((const void *)(pan + (size_t)k * TG_PANEL));
        for (int i = 0; i < MR; i++) {
            uint32_t pair;
            memcpy(&pair, xb + (size_t)i * K + k, 4);
            acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32((int)pair), w);
        }
    }
    STORE_ROWS();
}
#else
static inline void tile_bf16(int MR, float *out, int ldo, const uint16_t *xb, int K, const uint16_t *pan,
                             const float *bias, int nv, const float *res) {
    for (int i = 0; i < MR; i++) {
        float acc[TG_PANEL] = {0};
        for (int k = 0; k < K; k += 2)
            for (int j = 0; j < TG_PANEL; j++)
                acc[j] += bf16_to_f32(xb[(size_t)i * K + k]) * bf16_to_f32(pan[((size_t)k / 2 * TG_PANEL + j) * 2]) +
                          bf16_to_f32(xb[(size_t)i * K + k + 1]) *
                              bf16_to_f32(pan[((size_t)k / 2 * TG_PANEL + j) * 2 + 1]);
        STORE_ROW_SCALAR();
    }
}
#endif

/* Up to 16 rows share one pass over a panel: 16 accumulators + the panel
 * vector fit the 32 AVX-512 registers, and the panel is read from memory
 * once for all of them (two passes of 8 rows would each stream the panel,
 * the first at compute speed; bench/README.md has the figure). */
#define TG_MR 16

#define TILE_CASE(n, call) \
    case n: call; break;

static void panel_rows_f32(float *out, int ldo, const float *x, const float *pan, int K, const float *bias, int nv,
                           int M, const float *res) {
    for (int m = 0; m < M; m += TG_MR) {
        float *o = out + (size_t)m * ldo;
        const float *r = res ? res + (size_t)m * ldo : NULL;
        const float *xm = x + (size_t)m * K;
        switch (M - m < TG_MR ? M - m : TG_MR) {
#define T32(n) TILE_CASE(n, tile_f32(n, o, ldo, xm, K, pan, K, bias, nv, r))
            T32(1) T32(2) T32(3) T32(4) T32(5) T32(6) T32(7) T32(8)
            T32(9) T32(10) T32(11) T32(12) T32(13) T32(14) T32(15) T32(16)
#undef T32
        default: break;
        }
    }
}

static void panel_rows_bf16(float *out, int ldo, const uint16_t *xb, const uint16_t *pan, int K, const float *bias,
                            int nv, int M, const float *res) {
    for (int m = 0; m < M; m += TG_MR) {
        float *o = out + (size_t)m * ldo;
        const float *r = res ? res + (size_t)m * ldo : NULL;
        const uint16_t *xm = xb + (size_t)m * K;
        switch (M - m < TG_MR ? M - m : TG_MR) {
#define T16(n) TILE_CASE(n, tile_bf16(n, o, ldo, xm, K, pan, bias, nv, r))
            T16(1) T16(2) T16(3) T16(4) T16(5) T16(6) T16(7) T16(8)
            T16(9) T16(10) T16(11) T16(12) T16(13) T16(14) T16(15) T16(16)
#undef T16
        default: break;
        }
    }
}

/* Rows are processed in blocks of TG_MBLOCK so that a block of x stays in
 * the L2 cache while every panel passes over it (prefill in bf16). */
#define TG_MBLOCK 64

void tg_packed_matmul(float *out, int ldo, const float *x, const tg_packed_weight *W, const float *bias,
                      const float *res, int M, uint16_t *xb, int nt) {
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    const int K = W->K, N = W->N, P = W->Np / TG_PANEL;
    if (W->dtype == TG_DTYPE_BF16) {
        size_t n = (size_t)M * K;
#pragma omp parallel for schedule(static) if (n > 65536) num_threads(nt)
        for (size_t i = 0; i < n; i++) xb[i] = f32_to_bf16(x[i]);
    }
    /* Threads only pay off past ~10 microseconds of work: a parallel region
     * costs a few microseconds, and far more when the cores are shared. */
    const int par = (double)M * K * W->Np >= (double)(1 << 18);
    for (int m0 = 0; m0 < M; m0 += TG_MBLOCK) {
        int mb = M - m0 < TG_MBLOCK ? M - m0 : TG_MBLOCK;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
        for (int p = 0; p < P; p++) {
            int c0 = p * TG_PANEL;
            int nv = N - c0 < TG_PANEL ? N - c0 : TG_PANEL;
            const float *b = bias ? bias + c0 : NULL;
            const float *r = res ? res + (size_t)m0 * ldo + c0 : NULL;
            if (W->dtype == TG_DTYPE_BF16)
                panel_rows_bf16(out + (size_t)m0 * ldo + c0, ldo, xb + (size_t)m0 * K,
                                (const uint16_t *)W->data + (size_t)p * K * TG_PANEL, K, b, nv, mb, r);
            else
                panel_rows_f32(out + (size_t)m0 * ldo + c0, ldo, x + (size_t)m0 * K,
                               (const float *)W->data + (size_t)p * K * TG_PANEL, K, b, nv, mb, r);
        }
    }
}

void tg_matmul_ref(float *out, int ldo, const float *x, const float *W, const float *bias, int M, int K, int N) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0;
            for (int k = 0; k < K; k++) s += (double)x[(size_t)m * K + k] * W[(size_t)k * N + n];
            out[(size_t)m * ldo + n] = (float)s;
        }
}
