/*
 * variant.h — one CPU kernel family, compiled once per instruction set.
 *
 * The kernels of src/kernels/cpu are built several times (CMakeLists.txt:
 * generic x86-64, AVX2+FMA, AVX-512, AVX-512+BF16; one build on aarch64), each
 * copy with its own compiler flags, and the CPU backend picks one copy at run
 * time (cpu_select.c). A copy built with TG_CPU_VARIANT=v gets every kernel
 * symbol renamed name_v by the defines below, so the copies link into one
 * program; the generic copy keeps the plain names (what the unit tests that
 * call kernels directly link against). Any new non-static function in these
 * files must be added here.
 */
#ifndef TG_KERNELS_CPU_VARIANT_H
#define TG_KERNELS_CPU_VARIANT_H

#if defined(TG_CPU_VARIANT)
#define TG_VNAME3(a, b) a##_##b
#define TG_VNAME2(a, b) TG_VNAME3(a, b)
#define TG_VNAME(a) TG_VNAME2(a, TG_CPU_VARIANT)
#define tg_adamw_kernel TG_VNAME(tg_adamw_kernel)
#define tg_attention_backward TG_VNAME(tg_attention_backward)
#define tg_attention_backward_naive TG_VNAME(tg_attention_backward_naive)
#define tg_attention_forward TG_VNAME(tg_attention_forward)
#define tg_attention_forward_naive TG_VNAME(tg_attention_forward_naive)
#define tg_attention_kv TG_VNAME(tg_attention_kv)
#define tg_attention_kv_naive TG_VNAME(tg_attention_kv_naive)
#define tg_attention_kv_scratch_floats TG_VNAME(tg_attention_kv_scratch_floats)
#define tg_attention_scratch_floats TG_VNAME(tg_attention_scratch_floats)
#define tg_cpu_backend_fill TG_VNAME(tg_cpu_backend_fill)
#define tg_bf16_round TG_VNAME(tg_bf16_round)
#define tg_crossentropy_backward_inplace TG_VNAME(tg_crossentropy_backward_inplace)
#define tg_crossentropy_forward TG_VNAME(tg_crossentropy_forward)
#define tg_encoder_backward TG_VNAME(tg_encoder_backward)
#define tg_encoder_forward TG_VNAME(tg_encoder_forward)
#define tg_gelu_backward TG_VNAME(tg_gelu_backward)
#define tg_gelu_backward_inplace TG_VNAME(tg_gelu_backward_inplace)
#define tg_gelu_forward TG_VNAME(tg_gelu_forward)
#define tg_gemm TG_VNAME(tg_gemm)
#define tg_gemm_bf16 TG_VNAME(tg_gemm_bf16)
#define tg_gemm_bf16_bias TG_VNAME(tg_gemm_bf16_bias)
#define tg_gemm_bf16_colsum TG_VNAME(tg_gemm_bf16_colsum)
#define tg_gemm_bf16_native TG_VNAME(tg_gemm_bf16_native)
#define tg_gemm_bf16_ref TG_VNAME(tg_gemm_bf16_ref)
#define tg_cpu_gemm_peak TG_VNAME(tg_cpu_gemm_peak)
#define tg_kv_store TG_VNAME(tg_kv_store)
#define tg_layernorm_backward TG_VNAME(tg_layernorm_backward)
#define tg_layernorm_forward TG_VNAME(tg_layernorm_forward)
#define tg_mask_padded_vocab TG_VNAME(tg_mask_padded_vocab)
#define tg_matmul_backward TG_VNAME(tg_matmul_backward)
#define tg_matmul_backward_naive TG_VNAME(tg_matmul_backward_naive)
#define tg_matmul_backward_nt TG_VNAME(tg_matmul_backward_nt)
#define tg_matmul_backward_set TG_VNAME(tg_matmul_backward_set)
#define tg_matmul_forward TG_VNAME(tg_matmul_forward)
#define tg_matmul_forward_naive TG_VNAME(tg_matmul_forward_naive)
#define tg_matmul_forward_nt TG_VNAME(tg_matmul_forward_nt)
#define tg_matmul_forward_residual TG_VNAME(tg_matmul_forward_residual)
#define tg_matmul_ref TG_VNAME(tg_matmul_ref)
#define tg_packed_matmul TG_VNAME(tg_packed_matmul)
#define tg_packed_int8_init TG_VNAME(tg_packed_int8_init)
#define tg_packed_int8_matmul TG_VNAME(tg_packed_int8_matmul)
#define tg_packed_int8_scratch_bytes TG_VNAME(tg_packed_int8_scratch_bytes)
#define tg_packed_weight_free TG_VNAME(tg_packed_weight_free)
#define tg_packed_weight_init TG_VNAME(tg_packed_weight_init)
#define tg_residual_backward TG_VNAME(tg_residual_backward)
#define tg_residual_forward TG_VNAME(tg_residual_forward)
#define tg_scale TG_VNAME(tg_scale)
#define tg_softmax_forward TG_VNAME(tg_softmax_forward)
#define tg_sum_squares TG_VNAME(tg_sum_squares)
#endif

#ifndef TG_CPU_VARIANT_NAME
#define TG_CPU_VARIANT_NAME "generic"
#endif

#endif /* TG_KERNELS_CPU_VARIANT_H */
