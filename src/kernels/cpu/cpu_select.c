/*
 * cpu_select.c — which copy of the CPU kernels runs (variant.h): the best
 * this CPU can execute, found once from CPUID (and the OS's saved register
 * state, XGETBV), or the one TG_CPU names (generic, avx2, avx512,
 * avx512bf16), for tests and comparisons. Also the public
 * tg_gemm_peak_gflops, which states the peak of the hardware the chosen
 * kernels run on.
 *
 * Families (x86-64): generic (the x86-64 baseline, SSE2: plain loops,
 * slow), avx2 (AVX2 + FMA + F16C: Haswell and later, Zen 1-3), avx512
 * (F, DQ, BW, VL: Skylake-X and later), avx512bf16 (+ AVX512_BF16 and
 * VNNI: Cooper Lake, Sapphire Rapids, Zen 4 and 5). aarch64 builds one family (NEON is
 * its baseline). A -DTG_NATIVE=ON build has one copy for the build machine.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/backend.h"

#if defined(__x86_64__) && !defined(TG_HAVE_CPU_native)
#include <cpuid.h>
#define TG_X86 1
#endif

/* What a family needs of the CPU, as bits of detect()'s answer. */
enum {
    F_AVX2 = 1 << 0, F_FMA = 1 << 1, F_F16C = 1 << 2, F_AVX512F = 1 << 3, F_AVX512DQ = 1 << 4,
    F_AVX512BW = 1 << 5, F_AVX512VL = 1 << 6, F_AVX512BF16 = 1 << 7, F_AVX512VNNI = 1 << 8,
    NEEDS_AVX2 = F_AVX2 | F_FMA | F_F16C,
    NEEDS_AVX512 = NEEDS_AVX2 | F_AVX512F | F_AVX512DQ | F_AVX512BW | F_AVX512VL,
    NEEDS_AVX512BF16 = NEEDS_AVX512 | F_AVX512BF16 | F_AVX512VNNI,
};

/* One family: its name, what it needs (bits, and in words for messages),
 * and its entry points (declared by name here: each copy's symbols carry
 * its suffix). Listed from worst to best: the last one the CPU runs wins. */
typedef struct {
    const char *name;
    unsigned needs;
    const char *needs_text;
    int (*backend)(tg_backend **out);
    double (*peak)(void);
    bool bf16; /* bf16 products in hardware */
} family;

#define DECLARE(v)                                   \
    int tg_cpu_backend_fill_##v(tg_backend **out); \
    double tg_cpu_gemm_peak_##v(void);
int tg_cpu_backend_fill(tg_backend **out);
double tg_cpu_gemm_peak(void);
#ifdef TG_HAVE_CPU_avx2
DECLARE(avx2)
#endif
#ifdef TG_HAVE_CPU_avx512
DECLARE(avx512)
#endif
#ifdef TG_HAVE_CPU_avx512bf16
DECLARE(avx512bf16)
#endif

static const family families[] = {
#ifdef TG_HAVE_CPU_native
    {"native", 0, "the machine it was built on (-DTG_NATIVE=ON)", tg_cpu_backend_fill, tg_cpu_gemm_peak,
#if defined(__AVX512BF16__)
     true},
#else
     false},
#endif
#else
    {"generic", 0, "nothing beyond the architecture's baseline", tg_cpu_backend_fill, tg_cpu_gemm_peak, false},
#endif
#ifdef TG_HAVE_CPU_avx2
    {"avx2", NEEDS_AVX2, "AVX2, FMA and F16C", tg_cpu_backend_fill_avx2, tg_cpu_gemm_peak_avx2, false},
#endif
#ifdef TG_HAVE_CPU_avx512
    {"avx512", NEEDS_AVX512, "AVX-512 F, DQ, BW and VL", tg_cpu_backend_fill_avx512, tg_cpu_gemm_peak_avx512, false},
#endif
#ifdef TG_HAVE_CPU_avx512bf16
    {"avx512bf16", NEEDS_AVX512BF16, "AVX-512 F, DQ, BW, VL, BF16 and VNNI", tg_cpu_backend_fill_avx512bf16,
     tg_cpu_gemm_peak_avx512bf16, true},
#endif
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

/* ------------------------------------------------------------ CPUID */

/* The feature bits this CPU has and the OS has enabled (XCR0 must save the
 * YMM / ZMM state for AVX / AVX-512 to be usable). */
static unsigned detect(void) {
    unsigned f = 0;
#ifdef TG_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    uint64_t xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((uint64_t)hi << 32) | lo;
    }
    bool ymm_os = avx && (xcr0 & 0x6) == 0x6; /* SSE and AVX state saved by the OS */
    bool zmm_os = ymm_os && (xcr0 & 0xe6) == 0xe6; /* and opmask, ZMM_Hi256, Hi16_ZMM */
    if (ymm_os) f |= ((c >> 12) & 1 ? F_FMA : 0) | ((c >> 29) & 1 ? F_F16C : 0);
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (ymm_os && ((b >> 5) & 1)) f |= F_AVX2;
        if (zmm_os) {
            f |= ((b >> 16) & 1 ? F_AVX512F : 0) | ((b >> 17) & 1 ? F_AVX512DQ : 0) |
                 ((b >> 30) & 1 ? F_AVX512BW : 0) | ((b >> 31) & 1 ? F_AVX512VL : 0) |
                 ((c >> 11) & 1 ? F_AVX512VNNI : 0);
            unsigned a1, b1, c1, d1;
            if (a >= 1 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1)) f |= F_AVX512BF16;
        }
    }
#endif
    return f;
}

static bool runs(const family *fm, unsigned have) { return (have & fm->needs) == fm->needs; }

/* ------------------------------------------------------------ choice */

static const family *g_chosen;
static char g_error[256];

/* The family TG_CPU names (must run here), or the best that runs. Once. */
static const family *choose(void) {
    if (g_chosen || g_error[0]) return g_chosen;
    unsigned f = detect();
    const char *want = getenv("TG_CPU");
    if (want && *want && strcmp(want, "auto") != 0) {
        for (int i = 0; i < N_FAMILIES; i++)
            if (!strcmp(families[i].name, want)) {
                if (!runs(&families[i], f))
                    snprintf(g_error, sizeof g_error, "TG_CPU=%s: this CPU lacks %s", want, families[i].needs_text);
                else
                    g_chosen = &families[i];
                return g_chosen;
            }
        char list[128] = "";
        for (int i = 0; i < N_FAMILIES; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", families[i].name);
        snprintf(g_error, sizeof g_error, "TG_CPU=%s is not a kernel family of this build (%s, or auto)", want, list);
        return NULL;
    }
    const family *best = &families[0];
    for (int i = 1; i < N_FAMILIES; i++)
        if (runs(&families[i], f)) best = &families[i];
    g_chosen = best;
    return g_chosen;
}

const char *tg_cpu_kernels(void) {
    const family *fm = choose();
    return fm ? fm->name : "none";
}

const char *tg_cpu_kernels_available(void) {
    static char list[160];
    if (list[0]) return list;
    unsigned f = detect();
    for (int i = 0; i < N_FAMILIES; i++)
        if (runs(&families[i], f))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "", families[i].name);
    return list;
}

bool tg_cpu_bf16_native(void) {
    const family *fm = choose();
    return fm && fm->bf16;
}

int tg_backend_cpu_new(tg_backend **out) {
    *out = NULL;
    const family *fm = choose();
    if (!fm) return tg_error_set(TG_ERR_INPUT, "%s", g_error);
    return fm->backend(out);
}

int tg_backend_cpu_family_new(tg_backend **out, const char *name) {
    *out = NULL;
    unsigned f = detect();
    for (int i = 0; i < N_FAMILIES; i++)
        if (!strcmp(families[i].name, name)) {
            if (!runs(&families[i], f))
                return tg_error_set(TG_ERR_INPUT, "cpu:%s: this CPU lacks %s", name, families[i].needs_text);
            return families[i].backend(out);
        }
    return tg_error_set(TG_ERR_INPUT, "cpu:%s: not a kernel family of this build (have: %s)", name,
                        tg_cpu_kernels_available());
}

/* fp32: the chosen family's measured GEMM plateau (the better of OpenBLAS's
 * and the model's own sgemm). bf16: where the CPU multiplies bf16 pairs
 * (AVX512_BF16's vdpbf16ps does two products a lane where an fp32 FMA does
 * one, at the same rate), twice that; elsewhere bf16 matmuls run in fp32
 * (matmul.c) and the peak is fp32's. Either way the figure is the
 * hardware's, not that of the kernel being measured against it. */
double tg_gemm_peak_gflops(tg_dtype dtype) {
    const family *fm = choose();
    if (!fm) return 0;
    double fp32 = fm->peak();
    return dtype == TG_DTYPE_BF16 && fm->bf16 ? 2.0 * fp32 : fp32;
}
