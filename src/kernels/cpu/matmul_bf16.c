/*
 * matmul_bf16.c — C = alpha*op(A)*op(B) + beta*C with bf16 products and fp32
 * sums, on AVX512_BF16 (vdpbf16ps), in the BLIS blocking scheme.
 *
 * Why our own kernel and not oneDNN: oneDNN's bf16 matmul wants bf16 inputs,
 * so fp32 activations need a separate conversion pass into extra buffers and
 * a primitive per shape; here the fp32->bf16 rounding happens while packing,
 * which a fast GEMM does anyway, so conversion costs no extra memory pass.
 *
 * Legend: M, N, K as in cblas_sgemm; op(A) is M x K, op(B) is K x N.
 * vdpbf16ps multiplies pairs: lane j of acc += a.lo*b.lo + a.hi*b.hi, so
 * both packed operands hold K in pairs (k even, k+1) per 32-bit lane:
 *   A block  (MC x KC): micro-panels of MR rows: Ap[kp*MR + i] = pair(A(i,2kp), A(i,2kp+1))
 *   B block  (KC x NC): micro-panels of NR cols: Bp[kp*NR + j] = pair(B(2kp,j), B(2kp+1,j))
 * Panels past the matrix edge are zero-filled, so the micro-kernel always
 * runs full MR x NR tiles and only the stores are masked.
 *
 * Loops (BLIS): jc over N by NC, pc over K by KC (B block packed by all
 * threads together into a shared buffer), then each thread takes its own
 * contiguous range of rows (in MR units) and runs ic over it by MC (packing
 * its A block), jr over NR, ir over MR. The B micro-panel (KC x NR, 36 KB)
 * stays in L1/L2 across the ir loop, the A block (MC x KC, 144 KB) in L2.
 *
 * Not done: no pre-packed weights cache (packing W each call costs K*N
 * conversions against 2*M*N*K flops, under 1% at M >= 2048).
 */
#include "kernels/cpu/matmul_bf16.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <omp.h>

#include "core/core.h"

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define TG_BF16_NATIVE 1
#include <immintrin.h>
#else
#define TG_BF16_NATIVE 0
#endif

enum {
    MR = 8,          /* rows of the micro-kernel (8 broadcasts per k pair) */
    NR = 48,         /* columns: 3 zmm of 16 lanes; 8x3 = 24 accumulators */
    KC = 384,        /* most K per block (192 pairs): K = C = 384 in one pass over C */
    MC = 192,        /* rows of an A block: 192*384*2 B = 144 KB, L2 */
    NC = 3072,       /* columns of a B block: 384*3072*2 B = 2.3 MB, shared L3 */
    /* With op(A) = A^T (the dW GEMMs: K = B*T rows, M and N small) K runs
     * in longer blocks over fewer columns, the same B buffer: fewer passes
     * over C and fewer barriers (bench/README.md, "The bf16 GEMM", has the
     * figures). The A block is then 192*768*2 B = 288 KB, still L2. Other
     * GEMMs lost as much as dW won. */
    KC_T = 768,
    NC_T = 1536,
};

/* Rounds to bf16 (nearest, ties to even) and returns the 16 bits. NaN stays NaN. */
static inline uint16_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float tg_bf16_round(float x) {
    uint32_t u = (uint32_t)bf16_bits(x) << 16;
    float y;
    memcpy(&y, &u, 4);
    return y;
}

static inline uint32_t pair_bits(float lo, float hi) {
    return (uint32_t)bf16_bits(lo) | ((uint32_t)bf16_bits(hi) << 16);
}

void tg_gemm_bf16_ref(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)tg_bf16_round(a) * (double)tg_bf16_round(b);
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

/* ------------------------------------------------------------ packing */

/*
 * Packs a panel of R_panel "rows" r (A's rows or B's columns) by kc of K into
 * dst[kp*R_panel + r] (pairs). The source element X(r, k) is
 *   kcontig: src[r*ld + k]   (pairs adjacent in memory: A, or B when transB)
 *   else:    src[k*ld + r]   (rows adjacent in memory: B, or A when transA)
 * with src already offset to the block's (r0, k0). Rows >= nr and k >= kc
 * are zero.
 */
static void pack_scalar(uint32_t *dst, const float *src, int ld, bool kcontig, int nr, int kc, int R_panel) {
    int kp_n = (kc + 1) / 2;
    for (int kp = 0; kp < kp_n; kp++) {
        int k = 2 * kp;
        for (int r = 0; r < R_panel; r++) {
            float lo = 0, hi = 0;
            if (r < nr) {
                lo = kcontig ? src[(size_t)r * ld + k] : src[(size_t)k * ld + r];
                if (k + 1 < kc) hi = kcontig ? src[(size_t)r * ld + k + 1] : src[(size_t)(k + 1) * ld + r];
            }
            dst[(size_t)kp * R_panel + r] = pair_bits(lo, hi);
        }
    }
}

#if TG_BF16_NATIVE
/* 16 fp32 of `lo` rows and 16 of `hi` -> 16 interleaved pairs. */
static inline __m512i interleave_pairs(__m512 lo, __m512 hi) {
    /* cvtne2ps_pbh(a, b): b's 16 values in the low half, a's in the high. */
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                         6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, both);
}
/*
 * rows[i] holds 16 dwords (pairs kp = 0..15) of row i (8 rows). Writes
 * dst[kp*stride + i] for kp < 16, i < 8: an 8x16 transpose of 32-bit
 * elements. Within each 128-bit lane l (pairs 4l..4l+3): unpack 32-bit then
 * 64-bit halves gather rows 0-3 and 4-7 of one pair; a lane shuffle then
 * puts rows 0-3 beside rows 4-7.
 */
static inline void transpose_8x16(const __m512i rows[8], uint32_t *dst, int stride) {
    __m512i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(rows[2 * i], rows[2 * i + 1]);     /* r0 r1 of pairs 4l, 4l+1 */
        t[2 * i + 1] = _mm512_unpackhi_epi32(rows[2 * i], rows[2 * i + 1]); /* of pairs 4l+2, 4l+3 */
    }
    for (int h = 0; h < 2; h++) { /* rows 0-3 (h 0) and 4-7 (h 1) */
        __m512i *tt = t + 4 * h;
        u[4 * h + 0] = _mm512_unpacklo_epi64(tt[0], tt[2]); /* rows 4h..4h+3 of pair 4l */
        u[4 * h + 1] = _mm512_unpackhi_epi64(tt[0], tt[2]); /* pair 4l+1 */
        u[4 * h + 2] = _mm512_unpacklo_epi64(tt[1], tt[3]); /* pair 4l+2 */
        u[4 * h + 3] = _mm512_unpackhi_epi64(tt[1], tt[3]); /* pair 4l+3 */
    }
    for (int j = 0; j < 4; j++) {
        /* lanes (lo of u[j], lo of u[4+j]) for l = 0, 1, then l = 2, 3 */
        __m512i lo = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i hi = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
        lo = _mm512_shuffle_i32x4(lo, lo, _MM_SHUFFLE(3, 1, 2, 0));
        hi = _mm512_shuffle_i32x4(hi, hi, _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((void *)(dst + (size_t)(j)*stride), _mm512_castsi512_si256(lo));
        _mm256_storeu_si256((void *)(dst + (size_t)(4 + j) * stride), _mm512_extracti64x4_epi64(lo, 1));
        _mm256_storeu_si256((void *)(dst + (size_t)(8 + j) * stride), _mm512_castsi512_si256(hi));
        _mm256_storeu_si256((void *)(dst + (size_t)(12 + j) * stride), _mm512_extracti64x4_epi64(hi, 1));
    }
}
#endif

static void pack_panel(uint32_t *dst, const float *src, int ld, bool kcontig, int nr, int kc, int R_panel) {
#if TG_BF16_NATIVE
    if (nr == R_panel && (kc & 31) == 0) {
        int kp_n = kc / 2;
        if (kcontig && (R_panel & 7) == 0) {
            /* 32 consecutive k of one row convert to 16 pairs in k order;
             * 8 rows at a time are transposed into [kp][r] in registers. */
            for (int r = 0; r < R_panel; r += 8)
                for (int kp = 0; kp < kp_n; kp += 16) {
                    __m512i rows[8];
                    for (int i = 0; i < 8; i++) {
                        const float *s = src + (size_t)(r + i) * ld + 2 * kp;
                        rows[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
                    }
                    transpose_8x16(rows, dst + (size_t)kp * R_panel + r, R_panel);
                }
            return;
        }
        if ((R_panel & 15) == 0) {
            for (int kp = 0; kp < kp_n; kp++) {
                const float *s0 = src + (size_t)(2 * kp) * ld, *s1 = s0 + ld;
                for (int r = 0; r < R_panel; r += 16)
                    _mm512_storeu_si512((void *)(dst + (size_t)kp * R_panel + r),
                                        interleave_pairs(_mm512_loadu_ps(s0 + r), _mm512_loadu_ps(s1 + r)));
            }
            return;
        }
        if (R_panel == 8) {
            /* 8 rows: interleave 8 columns with 256-bit halves. */
            for (int kp = 0; kp < kp_n; kp++) {
                const float *s0 = src + (size_t)(2 * kp) * ld, *s1 = s0 + ld;
                __m512 lo = _mm512_castps256_ps512(_mm256_loadu_ps(s0));
                __m512 hi = _mm512_castps256_ps512(_mm256_loadu_ps(s1));
                __m512i v = interleave_pairs(lo, hi);
                _mm256_storeu_si256((void *)(dst + (size_t)kp * 8), _mm512_castsi512_si256(v));
            }
            return;
        }
    }
#endif
    pack_scalar(dst, src, ld, kcontig, nr, kc, R_panel);
}

/* Column sums of op(B) for tg_gemm_bf16_colsum: the running fp32 sums of
 * the K blocks packed so far, per thread (as g_Bp) and column of a block. */
typedef struct {
    float *acc;   /* NC sums, for the columns of the current jc block */
    float *out;   /* the caller's colsum, offset to the jc block */
    bool first;   /* the K block is the first: the sums start at 0 */
    bool last;    /* the last: out += sums */
} colsum_blk;

/* Adds the panel's source rows to its column sums, in K order (so the sums
 * are those of a plain loop over k), while the block is still in cache. */
static void colsum_panel(const colsum_blk *cs, int p, const float *src, int ld, bool kcontig, int nr, int kc) {
    float acc[NR];
    float *run = cs->acc + (size_t)p * NR;
    for (int j = 0; j < NR; j++) acc[j] = cs->first ? 0.0f : run[j];
    for (int k = 0; k < kc; k++) {
        if (kcontig)
            for (int j = 0; j < nr; j++) acc[j] += src[(size_t)j * ld + k];
        else {
            const float *row = src + (size_t)k * ld;
#pragma omp simd
            for (int j = 0; j < nr; j++) acc[j] += row[j];
        }
    }
    if (cs->last)
        for (int j = 0; j < nr; j++) cs->out[p * NR + j] += acc[j];
    else
        memcpy(run, acc, sizeof acc);
}

/* Packs op(B)'s rows [k0, k0+kc) x cols [j0, j0+nc) into NR-column panels,
 * panels [p0, p1) only (threads split the panels); cs: also their column
 * sums (NULL: none). */
static void pack_B(uint32_t *Bp, bool transB, const float *B, int ldb, int k0, int kc, int j0, int nc, int p0, int p1,
                   const colsum_blk *cs) {
    int kp_n = (kc + 1) / 2;
    for (int p = p0; p < p1; p++) {
        int j = j0 + p * NR, nr = nc - p * NR < NR ? nc - p * NR : NR;
        const float *s = transB ? B + (size_t)j * ldb + k0 : B + (size_t)k0 * ldb + j;
        pack_panel(Bp + (size_t)p * kp_n * NR, s, ldb, transB, nr, kc, NR);
        if (cs) colsum_panel(cs, p, s, ldb, transB, nr, kc);
    }
}

/* Packs op(A)'s rows [i0, i0+mc) x cols [k0, k0+kc) into MR-row panels. */
static void pack_A(uint32_t *Ap, bool transA, const float *A, int lda, int i0, int mc, int k0, int kc) {
    int kp_n = (kc + 1) / 2;
    int p = 0;
#if TG_BF16_NATIVE
    if (transA && (kc & 31) == 0) {
        /* A^T (the weight-gradient GEMMs): op(A)'s rows are adjacent floats
         * of A's rows, so two panels at a time read whole 64-byte lines (one
         * panel alone used half of each line it loaded; this packing was
         * the costliest part of the bf16 GEMM). */
        for (; (p + 2) * MR <= mc; p += 2) {
            const float *s = A + (size_t)k0 * lda + i0 + p * MR;
            uint32_t *d0 = Ap + (size_t)p * kp_n * MR, *d1 = d0 + (size_t)kp_n * MR;
            for (int kp = 0; kp < kp_n; kp++) {
                const float *s0 = s + (size_t)(2 * kp) * lda;
                __m512i v = interleave_pairs(_mm512_loadu_ps(s0), _mm512_loadu_ps(s0 + lda));
                _mm256_storeu_si256((void *)(d0 + (size_t)kp * MR), _mm512_castsi512_si256(v));
                _mm256_storeu_si256((void *)(d1 + (size_t)kp * MR), _mm512_extracti64x4_epi64(v, 1));
            }
        }
    }
#endif
    for (; p * MR < mc; p++) {
        int i = i0 + p * MR, nr = mc - p * MR < MR ? mc - p * MR : MR;
        const float *s = transA ? A + (size_t)k0 * lda + i : A + (size_t)i * lda + k0;
        pack_panel(Ap + (size_t)p * kp_n * MR, s, lda, !transA, nr, kc, MR);
    }
}

/* ------------------------------------------------------- micro-kernel */

/*
 * C[0:mr, 0:nr] (= or +=) alpha * Ap(MR x kc) * Bp(kc x NR).
 * first: this is the first K block, so C = beta*C + alpha*acc (C not read
 * when beta == 0, as BLAS does), or with bias (the tile's nr columns of it)
 * C = alpha*acc + bias; otherwise C += alpha*acc.
 */
static void micro_kernel(int kp_n, const uint32_t *Ap, const uint32_t *Bp, float *C, int ldc, int mr, int nr,
                         float alpha, float beta, bool first, const float *bias) {
#if TG_BF16_NATIVE
    __m512 c[MR][3];
    /* The C tile is read and written at the end: fetch it now, for
     * writing, behind the products, so its misses overlap the arithmetic.
     * Also when beta is 0 and C is only stored: the store still brings each
     * line in. (Figures: bench/README.md, "The bf16 GEMM".) */
    for (int i = 0; i < mr; i++) {
        const char *row = (const char *)(C + (size_t)i * ldc);
        __builtin_prefetch(row, 1, 3);
        __builtin_prefetch(row + 64, 1, 3);
        __builtin_prefetch(row + 128, 1, 3);
        __builtin_prefetch(row + 191, 1, 3);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = c[i][2] = _mm512_setzero_ps();
    for (int kp = 0; kp < kp_n; kp++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(Bp + 0));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(Bp + 16));
        __m512bh b2 = (__m512bh)_mm512_loadu_si512((const void *)(Bp + 32));
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)Ap[i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
            c[i][2] = _mm512_dpbf16_ps(c[i][2], a, b2);
        }
        Ap += MR;
        Bp += NR;
    }
    __mmask16 m[3];
    for (int v = 0; v < 3; v++) {
        int left = nr - 16 * v;
        m[v] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __m512 vbias[3];
    for (int v = 0; v < 3; v++) vbias[v] = bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        float *row = C + (size_t)i * ldc;
        for (int v = 0; v < 3; v++) {
            if (!m[v]) continue;
            __m512 r = _mm512_mul_ps(va, c[i][v]);
            if (!first)
                r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m[v], row + 16 * v));
            else if (bias)
                r = _mm512_add_ps(r, vbias[v]);
            else if (beta != 0.0f)
                r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[v], row + 16 * v), r);
            _mm512_mask_storeu_ps(row + 16 * v, m[v], r);
        }
    }
#else
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int kp = 0; kp < kp_n; kp++) {
        for (int i = 0; i < MR; i++) {
            uint32_t a = Ap[i];
            float a0, a1;
            uint32_t t = a << 16;
            memcpy(&a0, &t, 4);
            t = a & 0xffff0000u;
            memcpy(&a1, &t, 4);
            for (int j = 0; j < NR; j++) {
                float b0, b1;
                t = Bp[j] << 16;
                memcpy(&b0, &t, 4);
                t = Bp[j] & 0xffff0000u;
                memcpy(&b1, &t, 4);
                acc[i][j] += a0 * b0 + a1 * b1;
            }
        }
        Ap += MR;
        Bp += NR;
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *cij = &C[(size_t)i * ldc + j];
            float r = alpha * acc[i][j];
            *cij = !first ? *cij + r : bias ? r + bias[j] : beta != 0.0f ? beta * *cij + r : r;
        }
#endif
}

/* ------------------------------------------------------------- driver */

/* Packing buffers, mapped once at the first call and kept (see the header):
 * no allocation on any later call. A top level call shares g_Bp[0] and
 * g_Bp[1] among its threads, one B block in each by turns; a call made from
 * inside a parallel region (one thread each) uses the B buffer after its
 * thread number, so OpenMP threads may call concurrently. Untouched slots
 * cost no memory (zero pages), so 65 slots of 2.3 MB are only address space
 * — mapped on first use, not in the program image, because the program holds
 * one copy of this file per kernel family (variant.h) and most never call it
 * (a process under a tight `ulimit -v` must not pay for them). */
typedef uint32_t bp_slot[(KC / 2) * NC];
typedef uint32_t ap_slot[(KC_T / 2) * MC];
typedef float colsum_slot[NC];
static bp_slot *g_Bp;
static ap_slot *g_Ap;
static colsum_slot *g_colsum;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
_Static_assert(KC_T >= KC && KC_T * NC_T <= KC * NC && NC_T <= NC, "the A^T blocking fits the buffers");

static void *map_zeroed(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void map_buffers(void) {
    g_Bp = map_zeroed((TG_GEMM_BF16_MAX_THREADS + 1) * sizeof(bp_slot));
    g_Ap = map_zeroed(TG_GEMM_BF16_MAX_THREADS * sizeof(ap_slot));
    g_colsum = map_zeroed(TG_GEMM_BF16_MAX_THREADS * sizeof(colsum_slot));
}

bool tg_gemm_bf16_native(void) { return TG_BF16_NATIVE; }

/* Scales C by beta (for K == 0, where no product touches C). */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

static void gemm_bf16(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, const float *bias, float *colsum);

void tg_gemm_bf16(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL);
}

void tg_gemm_bf16_colsum(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc, float *colsum) {
    gemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, colsum);
}

void tg_gemm_bf16_bias(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, const float *bias, float *C, int ldc) {
    gemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc, bias, NULL);
}

/* bias (N) or NULL: the first K block starts from it instead of beta*C. */
static void gemm_bf16(bool transA, bool transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, const float *bias, float *colsum) {
    if (M <= 0 || N <= 0) return;
    pthread_once(&g_once, map_buffers);
    if (!g_Bp || !g_Ap || !g_colsum) { /* no address space for the buffers: the plain loop, slowly */
        if (bias) {
            for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof *C);
            beta = 1.0f;
        }
        if (colsum)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < N; j++) colsum[j] += transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        tg_gemm_bf16_ref(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        if (bias)
            for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof *C);
        return;
    }
    int outer = omp_in_parallel() ? omp_get_thread_num() : -1;
    TG_ASSERT(outer < TG_GEMM_BF16_MAX_THREADS);
    int nthreads = outer >= 0 ? 1 : omp_get_max_threads();
    if (nthreads > TG_GEMM_BF16_MAX_THREADS) nthreads = TG_GEMM_BF16_MAX_THREADS;
    /* Few rows: one thread avoids splitting a handful of micro-panels. */
    int m_panels = (M + MR - 1) / MR;
    /* K in blocks of equal size (a multiple of 32 for the vector packing),
     * not the most and a small remainder: with 384, K = 2048 runs as
     * 5 x 352 + 288. */
    int kc_max = transA ? KC_T : KC, nc_max = transA ? NC_T : NC;
    int k_blocks = (K + kc_max - 1) / kc_max;
    int kc_step = ((K + k_blocks - 1) / k_blocks + 31) / 32 * 32;
    if (kc_step > kc_max) kc_step = kc_max;
    if (nthreads > m_panels) nthreads = m_panels;

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        /* This thread's rows: a contiguous range in whole MR panels. */
        int pa = (int)((int64_t)m_panels * tid / nt), pb = (int)((int64_t)m_panels * (tid + 1) / nt);
        int m0 = pa * MR, m1 = pb * MR < M ? pb * MR : M;
        uint32_t *Ap = g_Ap[outer >= 0 ? outer : tid];
        int blk = 0;
        for (int jc = 0; jc < N; jc += nc_max) {
            int nc = N - jc < nc_max ? N - jc : nc_max;
            int n_panels = (nc + NR - 1) / NR;
            for (int pc = 0; pc < K; pc += kc_step) {
                int kc = K - pc < kc_step ? K - pc : kc_step;
                int kp_n = (kc + 1) / 2;
                /* Two B buffers by turns, so one barrier a block: a thread
                 * packs block i+1 after passing barrier i, which every
                 * thread reached only after its products on block i-1, the
                 * last readers of that buffer. (Barriers cost more than the
                 * small products between them: a dW GEMM has 6 K blocks.) */
                uint32_t *Bp = g_Bp[outer >= 0 ? outer + 1 : blk & 1];
                blk++;
                colsum_blk cs = {g_colsum[outer >= 0 ? outer : 0], colsum ? colsum + jc : NULL, pc == 0,
                                 pc + kc >= K};
                pack_B(Bp, transB, B, ldb, pc, kc, jc, nc, n_panels * tid / nt, n_panels * (tid + 1) / nt,
                       colsum ? &cs : NULL);
#pragma omp barrier
                for (int ic = m0; ic < m1; ic += MC) {
                    int mc = m1 - ic < MC ? m1 - ic : MC;
                    pack_A(Ap, transA, A, lda, ic, mc, pc, kc);
                    for (int jr = 0; jr < nc; jr += NR) {
                        const uint32_t *bp = Bp + (size_t)(jr / NR) * kp_n * NR;
                        int nr = nc - jr < NR ? nc - jr : NR;
                        for (int ir = 0; ir < mc; ir += MR) {
                            int mr = mc - ir < MR ? mc - ir : MR;
                            micro_kernel(kp_n, Ap + (size_t)(ir / MR) * kp_n * MR, bp,
                                         C + (size_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, beta, pc == 0,
                                         bias ? bias + jc + jr : NULL);
                        }
                    }
                }
            }
        }
    }
}
