/*
 * packed.c — the CPU backend's matrix multiply for inference weights:
 * weights repacked once into panels of one vector register's width (fp32,
 * bf16, or bf16 pairs for AVX512_BF16's dot product) and multiplied by a few
 * rows at a time, per kernel family (AVX-512, AVX2, generic: variant.h).
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

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/packed.h"

/* The kernel family's panel width and rows a pass (MR): one panel row is one
 * vector register, and MR accumulators + the panel vector + a broadcast fit
 * the register file, so every row of a pass reads the panel from memory once:
 *   AVX-512: 16 columns, 16 rows (16 + 2 of 32 zmm)
 *   AVX2:     8 columns, 12 rows (12 + 2 of 16 ymm)
 *   generic:  8 columns,  4 rows (plain loops the compiler vectorises: slow)
 * Layouts (the panel's K rows contiguous, N padded to PANEL with zeros):
 *   fp32:       W[k][P p + j] at data[(p K + k) P + j]
 *   bf16:       the same, 16 bits each; widened to fp32 in registers (half
 *               the bytes of fp32, so decode is faster without bf16 products)
 *   bf16 pairs: with AVX512_BF16, rows k and k+1 interleaved for
 *               vdpbf16ps: W[k][P p + j] at data[((p K/2 + k/2) P + j) 2 + k%2]
 *               (K even), activations rounded to bf16 (xb) */
#if defined(__AVX512F__)
#define PANEL 16
#define MR_MAX 16
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define BF16_PAIRS 1
#else
#define BF16_PAIRS 0
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#define PANEL 8
#define MR_MAX 12
#define BF16_PAIRS 0
#else
#define PANEL 8
#define MR_MAX 4
#define BF16_PAIRS 0
#endif

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
    pw->Np = (N + PANEL - 1) / PANEL * PANEL;
    pw->dtype = dtype;
    if (dtype == TG_DTYPE_BF16 && BF16_PAIRS && K % 2)
        return tg_error_set(TG_ERR_INPUT, "bf16 weights need an even K (got %d)", K);
    size_t n = (size_t)K * pw->Np;
    pw->data = tg_alloc(n * (dtype == TG_DTYPE_BF16 ? 2 : 4), "packed weights");
    if (!pw->data) return TG_ERR_RUNTIME;
    int P = pw->Np / PANEL;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        for (int k = 0; k < K; k++) {
            for (int j = 0; j < PANEL; j++) {
                int c = p * PANEL + j;
                float w = 0.0f;
                if (c < N) w = transposed ? W[(size_t)c * K + k] : W[(size_t)k * N + c];
                if (dtype == TG_DTYPE_BF16) {
                    size_t at = BF16_PAIRS ? (((size_t)p * (K / 2) + k / 2) * PANEL + j) * 2 + (k % 2)
                                           : ((size_t)p * K + k) * PANEL + j;
                    ((uint16_t *)pw->data)[at] = f32_to_bf16(w);
                } else {
                    ((float *)pw->data)[((size_t)p * K + k) * PANEL + j] = w;
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

/* One panel (PANEL columns) times MR rows of x: out[i, 0:nv] = x[i, :] @
 * panel + bias (+ res). always_inline with a constant MR keeps the MR
 * accumulators in registers. Rows are summed in k order, independent of MR,
 * so a row's bits do not depend on the other rows. The store adds the bias,
 * then the residual: res + (acc + bias), the order of separate passes. */
#ifndef PF_AHEAD
#define PF_AHEAD 2048 /* elements of the panel ahead of the loads (8 KB in fp32; tuned on AVX-512) */
#endif

#if defined(__AVX512F__)
#define VEC __m512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_load_ps(p)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
/* 16 bf16 widened to fp32: the 16 bits become the high half of each lane */
#define VLOAD_BF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#elif defined(__AVX2__) && defined(__FMA__)
#define VEC __m256
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VLOAD_BF16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#endif

#ifdef VEC
/* Stores MR rows of accumulators: vector stores (masked at the matrix's
 * right edge on AVX-512; through a small buffer there on AVX2). */
static inline __attribute__((always_inline)) void store_rows(int MR, const VEC *acc, float *out, int ldo,
                                                             const float *bias, int nv, const float *res) {
#if defined(__AVX512F__)
    __mmask16 m = nv >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nv) - 1);
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
    for (int i = 0; i < MR; i++) {
        __m512 y = _mm512_add_ps(acc[i], b);
        if (res) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, res + (size_t)i * ldo), y);
        _mm512_mask_storeu_ps(out + (size_t)i * ldo, m, y);
    }
#else
    if (nv == PANEL) {
        __m256 b = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
        for (int i = 0; i < MR; i++) {
            __m256 y = _mm256_add_ps(acc[i], b);
            if (res) y = _mm256_add_ps(_mm256_loadu_ps(res + (size_t)i * ldo), y);
            _mm256_storeu_ps(out + (size_t)i * ldo, y);
        }
        return;
    }
    for (int i = 0; i < MR; i++) {
        float t[PANEL] __attribute__((aligned(64)));
        memcpy(t, &acc[i], sizeof t);
        float *o = out + (size_t)i * ldo;
        const float *r = res ? res + (size_t)i * ldo : NULL;
        for (int j = 0; j < nv; j++) {
            float y = t[j] + (bias ? bias[j] : 0.0f);
            o[j] = r ? r[j] + y : y;
        }
    }
#endif
}

static inline __attribute__((always_inline)) void tile_f32(int MR, float *out, int ldo, const float *x, int ldx,
                                                           const float *pan, int K, const float *bias, int nv,
                                                           const float *res) {
    VEC acc[MR_MAX];
    for (int i = 0; i < MR; i++) acc[i] = VZERO();
    for (int k = 0; k < K; k++) {
        /* the panel streams from memory: ask for it ahead (the hardware
         * prefetcher alone falls behind while the FMAs of many rows run) */
        _mm_prefetch((const char *)(pan + (size_t)k * PANEL + PF_AHEAD), _MM_HINT_T0);
        VEC w = VLOAD(pan + (size_t)k * PANEL);
        for (int i = 0; i < MR; i++) acc[i] = VFMA(VBCAST(x[(size_t)i * ldx + k]), w, acc[i]);
    }
    store_rows(MR, acc, out, ldo, bias, nv, res);
}

#if !BF16_PAIRS /* with bf16 products, bf16 weights use tile_bf16 */
/* bf16 storage, fp32 arithmetic: the panel widened in registers, x as is. */
static inline __attribute__((always_inline)) void tile_bf16w(int MR, float *out, int ldo, const float *x, int ldx,
                                                             const uint16_t *pan, int K, const float *bias, int nv,
                                                             const float *res) {
    VEC acc[MR_MAX];
    for (int i = 0; i < MR; i++) acc[i] = VZERO();
    for (int k = 0; k < K; k++) {
        _mm_prefetch((const char *)(pan + (size_t)k * PANEL + 2 * PF_AHEAD), _MM_HINT_T0);
        VEC w = VLOAD_BF16(pan + (size_t)k * PANEL);
        for (int i = 0; i < MR; i++) acc[i] = VFMA(VBCAST(x[(size_t)i * ldx + k]), w, acc[i]);
    }
    store_rows(MR, acc, out, ldo, bias, nv, res);
}
#endif
#else
/* The portable family: plain loops over a PANEL-wide accumulator per row. */
static inline void store_rows_scalar(int MR, float acc[][PANEL], float *out, int ldo, const float *bias, int nv,
                                     const float *res) {
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < nv; j++) {
            float y = acc[i][j] + (bias ? bias[j] : 0.0f);
            out[(size_t)i * ldo + j] = res ? res[(size_t)i * ldo + j] + y : y;
        }
}

static inline void tile_f32(int MR, float *out, int ldo, const float *x, int ldx, const float *pan, int K,
                            const float *bias, int nv, const float *res) {
    float acc[MR_MAX][PANEL];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < K; k++) {
        const float *w = pan + (size_t)k * PANEL;
        for (int i = 0; i < MR; i++) {
            float xi = x[(size_t)i * ldx + k];
            for (int j = 0; j < PANEL; j++) acc[i][j] += xi * w[j];
        }
    }
    store_rows_scalar(MR, acc, out, ldo, bias, nv, res);
}

static inline void tile_bf16w(int MR, float *out, int ldo, const float *x, int ldx, const uint16_t *pan, int K,
                              const float *bias, int nv, const float *res) {
    float acc[MR_MAX][PANEL];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < K; k++) {
        float w[PANEL];
        for (int j = 0; j < PANEL; j++) w[j] = bf16_to_f32(pan[(size_t)k * PANEL + j]);
        for (int i = 0; i < MR; i++) {
            float xi = x[(size_t)i * ldx + k];
            for (int j = 0; j < PANEL; j++) acc[i][j] += xi * w[j];
        }
    }
    store_rows_scalar(MR, acc, out, ldo, bias, nv, res);
}
#endif

#if BF16_PAIRS
/* bf16 products: xb holds the rows rounded to bf16 (row stride K); each step
 * of k takes a pair of rows of the panel and a pair of x values (vdpbf16ps:
 * two products summed in fp32 per lane). */
static inline __attribute__((always_inline)) void tile_bf16(int MR, float *out, int ldo, const uint16_t *xb, int K,
                                                            const uint16_t *pan, const float *bias, int nv,
                                                            const float *res) {
    __m512 acc[16];
    for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 2) {
        _mm_prefetch((const char *)(pan + (size_t)k * PANEL + 2 * PF_AHEAD), _MM_HINT_T0);
        __m512bh w = (__m512bh)_mm512_load_si512((const void *)(pan + (size_t)k * PANEL));
        for (int i = 0; i < MR; i++) {
            uint32_t pair;
            memcpy(&pair, xb + (size_t)i * K + k, 4);
            acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32((int)pair), w);
        }
    }
    store_rows(MR, acc, out, ldo, bias, nv, res);
}
#endif

#define TILE_CASE(n, call) \
    case n: call; break;

/* M rows (M <= TG_MBLOCK) against one panel, MR_MAX rows a pass. */
/* The cases 1 .. MR_MAX of a switch over a pass's row count (constant MR
 * for each tile call). */
#if MR_MAX == 16
#define MR_CASES(T) T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11) T(12) T(13) T(14) T(15) T(16)
#elif MR_MAX == 12
#define MR_CASES(T) T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11) T(12)
#else
#define MR_CASES(T) T(1) T(2) T(3) T(4)
#endif

static void panel_rows(float *out, int ldo, const float *x, const uint16_t *xb, const void *pan, tg_dtype dt, int K,
                       const float *bias, int nv, int M, const float *res) {
    for (int m = 0; m < M; m += MR_MAX) {
        float *o = out + (size_t)m * ldo;
        const float *r = res ? res + (size_t)m * ldo : NULL;
        const float *xm = x + (size_t)m * K;
        int mr = M - m < MR_MAX ? M - m : MR_MAX;
        if (dt == TG_DTYPE_BF16) {
#if BF16_PAIRS
            const uint16_t *xbm = xb + (size_t)m * K;
#define T(n) TILE_CASE(n, tile_bf16(n, o, ldo, xbm, K, pan, bias, nv, r))
#else
            (void)xb;
#define T(n) TILE_CASE(n, tile_bf16w(n, o, ldo, xm, K, pan, K, bias, nv, r))
#endif
            switch (mr) { MR_CASES(T) default: break; }
#undef T
            continue;
        }
#define T(n) TILE_CASE(n, tile_f32(n, o, ldo, xm, K, pan, K, bias, nv, r))
        switch (mr) { MR_CASES(T) default: break; }
#undef T
    }
}

/* Rows are processed in blocks of TG_MBLOCK so that a block of x stays in
 * the L2 cache while every panel passes over it (prefill). */
#define TG_MBLOCK 64

void tg_packed_matmul(float *out, int ldo, const float *x, const tg_packed_weight *W, const float *bias,
                      const float *res, int M, uint16_t *xb, int nt) {
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    const int K = W->K, N = W->N, P = W->Np / PANEL;
    if (W->dtype == TG_DTYPE_BF16 && BF16_PAIRS) {
        size_t n = (size_t)M * K;
#pragma omp parallel for schedule(static) if (n > 65536) num_threads(nt)
        for (size_t i = 0; i < n; i++) xb[i] = f32_to_bf16(x[i]);
    }
    const size_t esz = W->dtype == TG_DTYPE_BF16 ? 2 : 4;
    /* Threads only pay off past ~10 microseconds of work: a parallel region
     * costs a few microseconds, and far more when the cores are shared. */
    const int par = (double)M * K * W->Np >= (double)(1 << 18);
    for (int m0 = 0; m0 < M; m0 += TG_MBLOCK) {
        int mb = M - m0 < TG_MBLOCK ? M - m0 : TG_MBLOCK;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
        for (int p = 0; p < P; p++) {
            int c0 = p * PANEL;
            int nv = N - c0 < PANEL ? N - c0 : PANEL;
            const float *b = bias ? bias + c0 : NULL;
            const float *r = res ? res + (size_t)m0 * ldo + c0 : NULL;
            const char *pan = (const char *)W->data + (size_t)p * K * PANEL * esz;
            panel_rows(out + (size_t)m0 * ldo + c0, ldo, x + (size_t)m0 * K, xb ? xb + (size_t)m0 * K : NULL, pan,
                       W->dtype, K, b, nv, mb, r);
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
