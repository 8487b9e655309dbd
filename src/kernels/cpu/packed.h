/*
 * packed.h — the CPU backend's inference matrix multiply over weights
 * repacked once into panels (packed.c).
 *
 * A weight W (K, N) in Hugging Face [in, out] layout is repacked into panels
 * of one vector register's width of output columns (16 on AVX-512, 8 on AVX2
 * and generic), each panel's K rows contiguous, so every thread streams one
 * contiguous range of memory in decode (where reading the weights is the
 * whole cost). The layouts are the kernel family's own (packed.c).
 *
 * Dimension legend: M rows, K input channels, N output channels.
 */
#ifndef TG_KERNELS_CPU_PACKED_H
#define TG_KERNELS_CPU_PACKED_H

#include "kernels/cpu/variant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h"

typedef struct {
    int K, N, Np;   /* Np = N rounded up to the panel width */
    int Kp;         /* int8: K rounded up to the block of 32 */
    tg_dtype dtype;
    void *data;     /* float or uint16_t (bf16) panels */
} tg_packed_weight;

/* Packs W (K, N), or W^T when transposed (W given as (N, K)), into pw. */
int tg_packed_weight_init(tg_packed_weight *pw, const float *W, int K, int N, int transposed, tg_dtype dtype);
void tg_packed_weight_free(tg_packed_weight *pw);
/* out (M, N; row stride ldo) = x (M, K) @ W + bias, plus res (same stride as
 * out; may be out itself) when res is not NULL; bias may be NULL. Threads
 * (at most nt; 0: all) split the panels and each row's sum runs in one fixed
 * order, so results depend neither on M nor on nt. Called outside a parallel
 * region. For bf16 the rows of x are rounded to bf16 into xb (M*K uint16
 * scratch), sums in fp32. */
void tg_packed_matmul(float *out, int ldo, const float *x, const tg_packed_weight *W, const float *bias,
                      const float *res, int M, uint16_t *xb, int nt);
/* int8 (packed_int8.c): W quantized per column and block of 32 inputs,
 * activations per row and block on the fly into scratch
 * (tg_packed_int8_scratch_bytes(M, K) bytes); otherwise as
 * tg_packed_matmul. */
int tg_packed_int8_init(tg_packed_weight *pw, const float *W, int K, int N, int transposed);
void tg_packed_int8_matmul(float *out, int ldo, const float *x, const tg_packed_weight *W, const float *bias,
                           const float *res, int M, void *scratch, int nt);
size_t tg_packed_int8_scratch_bytes(int M, int K);
/* Reference: plain loops in double over the original fp32 W (K, N). */
void tg_matmul_ref(float *out, int ldo, const float *x, const float *W, const float *bias, int M, int K, int N);

#endif /* TG_KERNELS_CPU_PACKED_H */
