/*
 * packed_int8.c — int8 weights for inference: the CPU backend's matrix
 * multiply over weights quantized once per block of 32 inputs (GGUF's
 * Q8_0 idea: w = scale * q, q in [-127, 127], one scale per output column
 * and block of 32 along K), and activations quantized the same way per row
 * on the fly; int8 products summed exactly in int32 inside a block, then
 * scaled and summed across blocks in fp32. A quarter of fp32's bytes: decode,
 * which only reads weights, gets that much faster.
 *
 * Kernel families (variant.h):
 *   AVX-512 VNNI (vpdpbusd: u8 x s8, four products a lane): 16 columns a
 *     panel, activations offset by +128 to be unsigned and the offset taken
 *     back with the block's column sums (128 * sum_k q[k][j], packed);
 *   AVX2 (vpmaddubsw + vpmaddwd): 8 columns, the sign of x moved onto w
 *     (|x| * sign(x) w) so the 16-bit pair sums cannot saturate;
 *   generic: plain loops.
 * Every row is summed in the same order whatever the other rows: batched
 * decode stays bitwise equal to one stream within a family.
 *
 * Layout of a panel p (PANEL columns), block b (32 k): PANEL fp32 scales,
 * PANEL int32 column sums x 128, then 8 quads of PANEL x 4 bytes:
 * q[k][c] at quads[((k%32)/4 * PANEL + j) * 4 + k%4]. K is padded to a
 * multiple of 32 with zeros, N to PANEL.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "kernels/cpu/packed.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define I8_PANEL 16
#define I8_MR 8
#define I8_VNNI 1
#elif defined(__AVX2__) && defined(__FMA__)
#define I8_PANEL 8
#define I8_MR 4
#define I8_VNNI 0
#else
#define I8_PANEL 8
#define I8_MR 4
#define I8_VNNI 0
#endif
#define QB 32 /* inputs a block */

/* bytes of one (panel, block): scales, column sums, quads */
#define BLOCK_BYTES (I8_PANEL * 4 + I8_PANEL * 4 + QB * I8_PANEL)

int tg_packed_int8_init(tg_packed_weight *pw, const float *W, int K, int N, int transposed) {
    memset(pw, 0, sizeof *pw);
    pw->K = K;
    pw->N = N;
    pw->Np = (N + I8_PANEL - 1) / I8_PANEL * I8_PANEL;
    pw->Kp = (K + QB - 1) / QB * QB;
    pw->dtype = TG_DTYPE_INT8;
    int P = pw->Np / I8_PANEL, NB = pw->Kp / QB;
    pw->data = tg_alloc((size_t)P * NB * BLOCK_BYTES, "int8 weights");
    if (!pw->data) return TG_ERR_RUNTIME;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++)
        for (int b = 0; b < NB; b++) {
            uint8_t *blk = (uint8_t *)pw->data + ((size_t)p * NB + b) * BLOCK_BYTES;
            float *scale = (float *)blk;
            int32_t *csum = (int32_t *)(blk + I8_PANEL * 4);
            int8_t *q = (int8_t *)(blk + I8_PANEL * 8);
            for (int j = 0; j < I8_PANEL; j++) {
                int c = p * I8_PANEL + j;
                float w[QB], amax = 0;
                for (int i = 0; i < QB; i++) {
                    int k = b * QB + i;
                    w[i] = c < N && k < K ? (transposed ? W[(size_t)c * K + k] : W[(size_t)k * N + c]) : 0.0f;
                    amax = fmaxf(amax, fabsf(w[i]));
                }
                float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
                scale[j] = s;
                int32_t sum = 0;
                for (int i = 0; i < QB; i++) {
                    int v = (int)lrintf(w[i] * inv);
                    v = v > 127 ? 127 : (v < -127 ? -127 : v);
                    q[((i / 4) * I8_PANEL + j) * 4 + i % 4] = (int8_t)v;
                    sum += v;
                }
                csum[j] = 128 * sum;
            }
        }
    return TG_OK;
}

/* Row m of x (K floats) into blocks of 32: int8 values (offset +128 for
 * VNNI), one fp32 scale a block. */
static void quantize_row(const float *x, int K, int Kp, int8_t *xq, float *xs) {
    for (int b = 0; b < Kp / QB; b++) {
        float amax = 0;
        for (int i = 0; i < QB; i++) {
            int k = b * QB + i;
            if (k < K) amax = fmaxf(amax, fabsf(x[k]));
        }
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
        xs[b] = s;
        for (int i = 0; i < QB; i++) {
            int k = b * QB + i;
            int v = k < K ? (int)lrintf(x[k] * inv) : 0;
            v = v > 127 ? 127 : (v < -127 ? -127 : v);
            xq[k] = (int8_t)(I8_VNNI ? (uint8_t)(v + 128) : v);
        }
    }
}

size_t tg_packed_int8_scratch_bytes(int M, int K) {
    int Kp = (K + QB - 1) / QB * QB;
    return (size_t)M * Kp + (size_t)M * (Kp / QB) * sizeof(float);
}

/* MR rows of quantized x against one panel: out[i][0:nv] = sum over blocks
 * of (sum_k xq wq) * xs * ws, + bias, + res. */
static inline __attribute__((always_inline)) void tile_i8(int MR, float *out, int ldo, const int8_t *xq,
                                                          const float *xs, int Kp, const uint8_t *pan,
                                                          const float *bias, int nv, const float *res) {
    const int NB = Kp / QB;
    float r[I8_MR][I8_PANEL] __attribute__((aligned(64)));
#if I8_VNNI
    __m512 f[I8_MR];
    for (int i = 0; i < MR; i++) f[i] = _mm512_setzero_ps();
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = pan + (size_t)b * BLOCK_BYTES;
        _mm_prefetch((const char *)(blk + 4 * BLOCK_BYTES), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + 4 * BLOCK_BYTES + 64), _MM_HINT_T0);
        const __m512i *qw = (const __m512i *)(blk + I8_PANEL * 8);
        __m512i acc[I8_MR];
        for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_si512();
        for (int qd = 0; qd < QB / 4; qd++) {
            __m512i w = _mm512_loadu_si512(qw + qd);
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, xq + (size_t)i * Kp + b * QB + qd * 4, 4);
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(quad), w);
            }
        }
        __m512 ws = _mm512_loadu_ps((const float *)blk);
        __m512i cs = _mm512_loadu_si512((const void *)(blk + I8_PANEL * 4));
        for (int i = 0; i < MR; i++) {
            __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], cs));
            f[i] = _mm512_fmadd_ps(d, _mm512_mul_ps(ws, _mm512_set1_ps(xs[(size_t)i * NB + b])), f[i]);
        }
    }
    for (int i = 0; i < MR; i++) _mm512_store_ps(r[i], f[i]);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 f[I8_MR];
    for (int i = 0; i < MR; i++) f[i] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = pan + (size_t)b * BLOCK_BYTES;
        _mm_prefetch((const char *)(blk + 4 * BLOCK_BYTES), _MM_HINT_T0);
        const __m256i *qw = (const __m256i *)(blk + I8_PANEL * 8);
        __m256i acc[I8_MR];
        for (int i = 0; i < MR; i++) acc[i] = _mm256_setzero_si256();
        for (int qd = 0; qd < QB / 4; qd++) {
            __m256i w = _mm256_loadu_si256(qw + qd);
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, xq + (size_t)i * Kp + b * QB + qd * 4, 4);
                __m256i xb = _mm256_set1_epi32(quad);
                /* |x| * (sign(x) w): u8 x s8 pairs of at most 2 * 127 * 127, no saturation */
                __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(xb), _mm256_sign_epi8(w, xb));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
            }
        }
        __m256 ws = _mm256_loadu_ps((const float *)blk);
        for (int i = 0; i < MR; i++)
            f[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i]), _mm256_mul_ps(ws, _mm256_set1_ps(xs[(size_t)i * NB + b])),
                                   f[i]);
    }
    for (int i = 0; i < MR; i++) _mm256_store_ps(r[i], f[i]);
#else
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < I8_PANEL; j++) r[i][j] = 0.0f;
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = pan + (size_t)b * BLOCK_BYTES;
        const float *ws = (const float *)blk;
        const int8_t *q = (const int8_t *)(blk + I8_PANEL * 8);
        for (int i = 0; i < MR; i++) {
            const int8_t *x = xq + (size_t)i * Kp + b * QB;
            int32_t acc[I8_PANEL] = {0};
            for (int k = 0; k < QB; k++)
                for (int j = 0; j < I8_PANEL; j++) acc[j] += (int32_t)x[k] * q[((k / 4) * I8_PANEL + j) * 4 + k % 4];
            float sx = xs[(size_t)i * NB + b];
            for (int j = 0; j < I8_PANEL; j++) r[i][j] += (float)acc[j] * (ws[j] * sx);
        }
    }
#endif
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < nv; j++) {
            float y = r[i][j] + (bias ? bias[j] : 0.0f);
            out[(size_t)i * ldo + j] = res ? res[(size_t)i * ldo + j] + y : y;
        }
}

#define I8_CASE(n) \
    case n: tile_i8(n, o, ldo, xqm, xsm, Kp, pan, bias, nv, r); break;

void tg_packed_int8_matmul(float *out, int ldo, const float *x, const tg_packed_weight *W, const float *bias,
                           const float *res, int M, void *scratch, int nt) {
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    const int K = W->K, Kp = W->Kp, N = W->N, P = W->Np / I8_PANEL, NB = Kp / QB;
    int8_t *xq = scratch;
    float *xs = (float *)((char *)scratch + (size_t)M * Kp);
#pragma omp parallel for schedule(static) if ((size_t)M * K > 65536) num_threads(nt)
    for (int m = 0; m < M; m++) quantize_row(x + (size_t)m * K, K, Kp, xq + (size_t)m * Kp, xs + (size_t)m * NB);
    const int par = (double)M * K * W->Np >= (double)(1 << 18);
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
    for (int p = 0; p < P; p++) {
        int c0 = p * I8_PANEL;
        int nv = N - c0 < I8_PANEL ? N - c0 : I8_PANEL;
        const uint8_t *pan = (const uint8_t *)W->data + (size_t)p * NB * BLOCK_BYTES;
        const float *b = bias ? bias + c0 : NULL;
        for (int m = 0; m < M; m += I8_MR) {
            float *o = out + (size_t)m * ldo + c0;
            const float *r = res ? res + (size_t)m * ldo + c0 : NULL;
            const int8_t *xqm = xq + (size_t)m * Kp;
            const float *xsm = xs + (size_t)m * NB;
            const float *bias = b;
            switch (M - m < I8_MR ? M - m : I8_MR) {
                I8_CASE(1) I8_CASE(2) I8_CASE(3) I8_CASE(4)
#if I8_MR > 4
                I8_CASE(5) I8_CASE(6) I8_CASE(7) I8_CASE(8)
#endif
            default: break;
            }
        }
    }
}
