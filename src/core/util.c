/*
 * util.c — allocation, clocks, logging, thread count and the RNG.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/core.h"

void *tg_alloc(size_t bytes, const char *what) {
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0) {
        tg_error_set(TG_ERR_RUNTIME, "out of memory allocating %.1f MB for %s", bytes / 1e6, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void tg_free(void *p) { free(p); }

/* Huge pages because on 4 KB pages the first-touch faults of a large table
 * are a visible part of an ingest run (bench/README.md). */
void *tg_big_zalloc(size_t n) {
    if (n < TG_BIG_BYTES) return calloc(1, n);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

void *tg_big_grow(void *p, size_t n, size_t m) {
    if (!p) return tg_big_zalloc(m);
    if (n >= TG_BIG_BYTES) {
        void *q = mremap(p, n, m, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
        madvise(q, m, MADV_HUGEPAGE);
#endif
        return q;
    }
    void *q = tg_big_zalloc(m);
    if (!q) return NULL;
    memcpy(q, p, n);
    free(p);
    return q;
}

void tg_big_free(void *p, size_t n) {
    if (!p) return;
    if (n < TG_BIG_BYTES) free(p);
    else munmap(p, n);
}

double tg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int tg_log_quiet = 0;

void tg_info(const char *fmt, ...) {
    if (tg_log_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tg_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double tg_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

int tg_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void tg_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tg_rng_next(tg_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float tg_rng_uniform(tg_rng *r) { return (float)(tg_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float tg_rng_normal(tg_rng *r) {
    /* Box-Muller on doubles for accuracy in the tails; one sample per call
     * keeps the stream simple to reproduce. */
    double u1 = ((tg_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (tg_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
