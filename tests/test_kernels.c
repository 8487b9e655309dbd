/*
 * test_kernels.c — every CPU kernel of src/kernels/cpu against a reference:
 *   - each backward against central finite differences of its forward
 *     (loss = sum(out * R) for a random R, summed in double);
 *   - each optimised kernel (BLAS matmul, GEMM attention) against its naive
 *     loop version, forward and backward;
 *   - segment-masked attention against plain causal attention run
 *     separately on each segment;
 *   - cross-entropy: weighted loss equals the weighted mean computed here,
 *     padded vocabulary columns get zero gradient (and so zero wte rows);
 *   - the fast exp/tanh against libm.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "kernels/cpu/fastmath.h"
#include "kernels/cpu/kernels.h"
#include "test_util.h"

static tg_rng rng;

static float *randv(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * tg_rng_uniform(&rng) - 1.0f);
    return x;
}
static float *zerov(size_t n) { return calloc(n, sizeof(float)); }

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A forward closure: fills out from the current inputs. */
typedef void (*fwd_fn)(void *ctx, float *out);

/* Central finite differences of sum(out * R) with respect to x at up to
 * `samples` coordinates, against the analytic gradient g.
 * Tolerance: |fd - g| <= rtol * max|g| + 1e-4 (float forward, h = 1e-3). */
static void check_fd(const char *what, fwd_fn f, void *ctx, float *x, size_t nx, const float *g, const float *R,
                     size_t nout, int samples, double rtol) {
    float *out = malloc(nout * sizeof *out);
    double gmax = 0, maxerr = 0;
    for (size_t i = 0; i < nx; i++) gmax = fmax(gmax, fabs(g[i]));
    int bad = 0;
    const float h = 1e-3f;
    for (int s = 0; s < samples; s++) {
        size_t i = nx <= (size_t)samples ? (size_t)s : (size_t)(tg_rng_next(&rng) % nx);
        if (i >= nx) break;
        float x0 = x[i];
        x[i] = x0 + h;
        f(ctx, out);
        double lp = dot_d(out, R, nout);
        x[i] = x0 - h;
        f(ctx, out);
        double lm = dot_d(out, R, nout);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * h);
        double err = fabs(fd - g[i]);
        maxerr = fmax(maxerr, err);
        if (err > rtol * gmax + 1e-4) {
            if (bad < 3) fprintf(stderr, "  %s[%zu]: analytic %.6g finite-diff %.6g\n", what, i, g[i], fd);
            bad++;
        }
    }
    printf("  %-32s fd max err %.2e (max |grad| %.2e)\n", what, maxerr, gmax);
    tg_test_checks++;
    if (bad) {
        tg_test_failures++;
        fprintf(stderr, "FAIL %s: %d finite-difference mismatches\n", what, bad);
    }
    free(out);
}

/* ------------------------------------------------------------ layernorm */
typedef struct {
    float *inp, *w, *b;
    size_t N;
    int C;
} ln_ctx;
static void ln_fwd(void *c, float *out) {
    ln_ctx *k = c;
    tg_layernorm_forward(out, NULL, NULL, k->inp, k->w, k->b, k->N, k->C, 1e-5f);
}
static void test_layernorm(void) {
    size_t N = 12;
    int C = 40;
    ln_ctx k = {randv(N * C, 1.0f), randv(C, 1.0f), randv(C, 0.5f), N, C};
    for (int c = 0; c < C; c++) k.w[c] += 1.0f;
    float *out = zerov(N * C), *mean = zerov(N), *rstd = zerov(N), *R = randv(N * C, 1.0f);
    tg_layernorm_forward(out, mean, rstd, k.inp, k.w, k.b, N, C, 1e-5f);
    /* forward against a double computation */
    double maxd = 0;
    for (size_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += k.inp[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (k.inp[n * C + c] - m) * (k.inp[n * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++)
            maxd = fmax(maxd, fabs((k.inp[n * C + c] - m) / sqrt(v + 1e-5) * k.w[c] + k.b[c] - out[n * C + c]));
    }
    printf("  layernorm forward vs double      max diff %.2e\n", maxd);
    CHECK(maxd < 1e-5);
    float *dinp = zerov(N * C), *dw = zerov(C), *db = zerov(C);
    tg_layernorm_backward(dinp, dw, db, R, k.inp, k.w, mean, rstd, N, C);
    check_fd("layernorm dinp", ln_fwd, &k, k.inp, N * C, dinp, R, N * C, 200, 1e-2);
    check_fd("layernorm dweight", ln_fwd, &k, k.w, C, dw, R, N * C, C, 1e-2);
    check_fd("layernorm dbias", ln_fwd, &k, k.b, C, db, R, N * C, C, 1e-2);
    free(k.inp), free(k.w), free(k.b), free(out), free(mean), free(rstd), free(R), free(dinp), free(dw), free(db);
}

/* ------------------------------------------------------------ matmul */
typedef struct {
    float *inp, *w, *b;
    size_t N;
    int C, OC;
    int nt;
} mm_ctx;
static void mm_fwd(void *c, float *out) {
    mm_ctx *k = c;
    if (k->nt)
        tg_matmul_forward_nt(out, k->inp, k->w, k->N, k->C, k->OC, false);
    else
        tg_matmul_forward(out, k->inp, k->w, k->b, k->N, k->C, k->OC, false);
}
static void test_matmul(void) {
    /* sizes not multiples of the BLAS blocking, to reach the edge code */
    size_t N = 37;
    int C = 29, OC = 53;
    mm_ctx k = {randv(N * C, 1.0f), randv((size_t)C * OC, 0.5f), randv(OC, 0.5f), N, C, OC, 0};
    float *out = zerov(N * OC), *ref = zerov(N * OC), *R = randv(N * OC, 1.0f);
    tg_matmul_forward(out, k.inp, k.w, k.b, N, C, OC, false);
    tg_matmul_forward_naive(ref, k.inp, k.w, k.b, N, C, OC);
    tg_check_close("matmul forward vs naive", out, ref, N * OC, 1e-5, 1e-5);
    float *res = randv(N * OC, 1.0f), *out2 = zerov(N * OC);
    tg_matmul_forward_residual(out2, res, k.inp, k.w, k.b, N, C, OC, false);
    for (size_t i = 0; i < N * OC; i++) ref[i] += res[i];
    tg_check_close("matmul+residual vs naive", out2, ref, N * OC, 1e-5, 1e-5);
    /* backward accumulates: start from non-zero buffers on both sides */
    float *di = randv(N * C, 1.0f), *dw = randv((size_t)C * OC, 1.0f), *db = randv(OC, 1.0f);
    float *di2 = malloc(N * C * 4), *dw2 = malloc((size_t)C * OC * 4), *db2 = malloc(OC * 4);
    memcpy(di2, di, N * C * 4), memcpy(dw2, dw, (size_t)C * OC * 4), memcpy(db2, db, OC * 4);
    tg_matmul_backward(di, dw, db, R, k.inp, k.w, N, C, OC, false);
    tg_matmul_backward_naive(di2, dw2, db2, R, k.inp, k.w, N, C, OC);
    tg_check_close("matmul dinp vs naive", di, di2, N * C, 1e-5, 1e-5);
    tg_check_close("matmul dweight vs naive", dw, dw2, (size_t)C * OC, 1e-5, 1e-5);
    tg_check_close("matmul dbias vs naive", db, db2, OC, 1e-5, 1e-5);
    /* _set overwrites dinp (garbage before), accumulates dweight */
    for (size_t i = 0; i < N * C; i++) di[i] = 1e30f;
    memcpy(dw2, dw, (size_t)C * OC * 4);
    tg_matmul_backward_set(di, dw, NULL, R, k.inp, k.w, N, C, OC, false);
    memset(di2, 0, N * C * 4);
    tg_matmul_backward_naive(di2, dw2, NULL, R, k.inp, k.w, N, C, OC);
    tg_check_close("matmul_set dinp vs naive", di, di2, N * C, 1e-5, 1e-5);
    tg_check_close("matmul_set dweight vs naive", dw, dw2, (size_t)C * OC, 1e-5, 1e-5);
    memset(di, 0, N * C * 4), memset(dw, 0, (size_t)C * OC * 4), memset(db, 0, OC * 4);
    tg_matmul_backward(di, dw, db, R, k.inp, k.w, N, C, OC, false);
    check_fd("matmul dinp", mm_fwd, &k, k.inp, N * C, di, R, N * OC, 100, 1e-3);
    check_fd("matmul dweight", mm_fwd, &k, k.w, (size_t)C * OC, dw, R, N * OC, 100, 1e-3);
    check_fd("matmul dbias", mm_fwd, &k, k.b, OC, db, R, N * OC, OC, 1e-3);

    /* the LM head: out = inp @ w^T with w (OC, C); naive through the transpose */
    k.nt = 1;
    float *wt = malloc((size_t)C * OC * 4);
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) wt[(size_t)c * OC + o] = k.w[(size_t)o * C + c];
    tg_matmul_forward_nt(out, k.inp, k.w, N, C, OC, false);
    tg_matmul_forward_naive(ref, k.inp, wt, NULL, N, C, OC);
    tg_check_close("matmul_nt forward vs naive", out, ref, N * OC, 1e-5, 1e-5);
    memset(di, 0, N * C * 4), memset(dw, 0, (size_t)C * OC * 4);
    memset(di2, 0, N * C * 4), memset(dw2, 0, (size_t)C * OC * 4);
    tg_matmul_backward_nt(di, dw, R, k.inp, k.w, N, C, OC, false);
    tg_matmul_backward_naive(di2, dw2, NULL, R, k.inp, wt, N, C, OC);
    tg_check_close("matmul_nt dinp vs naive", di, di2, N * C, 1e-5, 1e-5);
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) wt[(size_t)o * C + c] = dw2[(size_t)c * OC + o];
    tg_check_close("matmul_nt dweight vs naive", dw, wt, (size_t)C * OC, 1e-5, 1e-5);
    check_fd("matmul_nt dweight", mm_fwd, &k, k.w, (size_t)C * OC, dw, R, N * OC, 100, 1e-3);
    free(k.inp), free(k.w), free(k.b), free(out), free(ref), free(R), free(res), free(out2), free(di), free(dw),
        free(db), free(di2), free(dw2), free(db2), free(wt);
}

/* ------------------------------------------------------------ gelu, residual, encoder */
typedef struct {
    float *x;
    size_t n;
} gelu_ctx;
static void gelu_fwd(void *c, float *out) {
    gelu_ctx *k = c;
    tg_gelu_forward(out, k->x, k->n);
}
static void test_gelu(void) {
    size_t n = 999;
    gelu_ctx k = {randv(n, 4.0f), n};
    float *out = zerov(n), *R = randv(n, 1.0f), *dx = zerov(n);
    tg_gelu_forward(out, k.x, n);
    double maxd = 0;
    for (size_t i = 0; i < n; i++) {
        double x = k.x[i];
        double y = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
        maxd = fmax(maxd, fabs(y - out[i]));
    }
    printf("  gelu forward vs double           max diff %.2e\n", maxd);
    CHECK(maxd < 2e-6);
    tg_gelu_backward(dx, k.x, R, n);
    check_fd("gelu dinp", gelu_fwd, &k, k.x, n, dx, R, n, 300, 1e-3);
    float *d2 = malloc(n * 4);
    memcpy(d2, R, n * 4);
    tg_gelu_backward_inplace(d2, k.x, n);
    tg_check_close("gelu backward in place", d2, dx, n, 0, 0); /* same arithmetic: bitwise */
    free(d2);
    free(k.x), free(out), free(R), free(dx);
}

static void test_residual(void) {
    size_t n = 100;
    float *a = randv(n, 1), *b = randv(n, 1), *o = zerov(n), *d = randv(n, 1), *da = zerov(n), *db = zerov(n);
    tg_residual_forward(o, a, b, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= o[i] == a[i] + b[i];
    CHECK(ok);
    tg_residual_backward(da, db, d, n);
    tg_residual_backward(da, db, d, n); /* accumulates */
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= da[i] == 2 * d[i] && db[i] == 2 * d[i];
    CHECK(ok);
    free(a), free(b), free(o), free(d), free(da), free(db);
}

typedef struct {
    int32_t *inp, *pos;
    float *wte, *wpe;
    int B, T, C;
} enc_ctx;
static void enc_fwd(void *c, float *out) {
    enc_ctx *k = c;
    tg_encoder_forward(out, k->inp, k->pos, k->wte, k->wpe, k->B, k->T, k->C);
}
static void test_encoder(void) {
    int B = 3, T = 7, C = 35, Vv = 11;
    enc_ctx k = {malloc(B * T * 4), malloc(B * T * 4), randv((size_t)Vv * C, 1), randv((size_t)T * C, 1), B, T, C};
    for (int i = 0; i < B * T; i++) {
        k.inp[i] = (int32_t)(tg_rng_next(&rng) % Vv);
        k.pos[i] = (i % T) % 4; /* restarting positions, as with segments */
    }
    float *out = zerov((size_t)B * T * C), *R = randv((size_t)B * T * C, 1);
    float *dwte = zerov((size_t)Vv * C), *dwpe = zerov((size_t)T * C);
    tg_encoder_forward(out, k.inp, k.pos, k.wte, k.wpe, B, T, C);
    CHECK(out[(size_t)(T + 5) * C + 3] == k.wte[(size_t)k.inp[T + 5] * C + 3] + k.wpe[(size_t)1 * C + 3]);
    tg_encoder_backward(dwte, dwpe, R, k.inp, k.pos, B, T, C);
    check_fd("encoder dwte", enc_fwd, &k, k.wte, (size_t)Vv * C, dwte, R, (size_t)B * T * C, 200, 1e-3);
    check_fd("encoder dwpe", enc_fwd, &k, k.wpe, (size_t)T * C, dwpe, R, (size_t)B * T * C, 200, 1e-3);
    int ok = 1; /* positions >= 4 never used: zero gradient */
    for (size_t i = 4 * (size_t)C; i < (size_t)T * C; i++) ok &= dwpe[i] == 0.0f;
    CHECK(ok);
    free(k.inp), free(k.pos), free(k.wte), free(k.wpe), free(out), free(R), free(dwte), free(dwpe);
}

/* ------------------------------------------------------------ attention */
typedef struct {
    float *qkv, *att;
    int32_t *rs;
    int B, T, C, NH;
} att_ctx;
static void att_fwd(void *c, float *out) {
    att_ctx *k = c;
    tg_attention_forward(out, k->att, k->qkv, k->rs, k->B, k->T, k->C, k->NH);
}
static void test_attention(void) {
    /* T = 150 spans three row blocks of 64 (a partial last one) */
    int B = 2, T = 150, C = 48, NH = 3;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    att_ctx k = {randv(nq, 1.5f), zerov(na), NULL, B, T, C, NH};
    float *out = zerov(no), *out2 = zerov(no), *att2 = zerov(na), *R = randv(no, 1.0f);
    float *scratch = zerov(tg_attention_scratch_floats(T, tg_num_threads()));
    for (int pass = 0; pass < 2; pass++) {
        const char *tag = pass ? "segmented" : "causal";
        if (pass) { /* runs: [0,40) [40,41) [41,100) [100,150) in row 0; one id repeated non-contiguously in row 1 */
            k.rs = malloc((size_t)B * T * 4);
            for (int t = 0; t < T; t++) {
                k.rs[t] = t < 40 ? 0 : t < 41 ? 40 : t < 100 ? 41 : 100;
                k.rs[T + t] = t < 70 ? 0 : 70;
            }
        }
        tg_attention_forward(out, k.att, k.qkv, k.rs, B, T, C, NH);
        tg_attention_forward_naive(out2, att2, k.qkv, k.rs, B, T, C, NH);
        char nm[64];
        snprintf(nm, sizeof nm, "attention %s out vs naive", tag);
        tg_check_close(nm, out, out2, no, 1e-5, 1e-6);
        snprintf(nm, sizeof nm, "attention %s att vs naive", tag);
        tg_check_close(nm, k.att, att2, na, 1e-5, 1e-7);
        float *dq = randv(nq, 1.0f), *dq2 = malloc(nq * 4);
        memcpy(dq2, dq, nq * 4);
        tg_attention_backward(dq, scratch, R, k.qkv, k.att, k.rs, B, T, C, NH);
        tg_attention_backward_naive(dq2, R, k.qkv, att2, k.rs, B, T, C, NH);
        snprintf(nm, sizeof nm, "attention %s dqkv vs naive", tag);
        tg_check_close(nm, dq, dq2, nq, 1e-4, 1e-5);
        memset(dq, 0, nq * 4);
        tg_attention_backward(dq, scratch, R, k.qkv, k.att, k.rs, B, T, C, NH);
        snprintf(nm, sizeof nm, "attention %s dqkv", tag);
        check_fd(nm, att_fwd, &k, k.qkv, nq, dq, R, no, 150, 1e-2);
        free(dq), free(dq2);
    }
    /* segmented output == plain causal attention run on each segment alone */
    int runs[][3] = {{0, 0, 40}, {0, 40, 41}, {0, 41, 100}, {0, 100, 150}, {1, 0, 70}, {1, 70, 150}};
    tg_attention_forward(out, k.att, k.qkv, k.rs, B, T, C, NH);
    double maxd = 0;
    for (int r = 0; r < 6; r++) {
        int b = runs[r][0], t0 = runs[r][1], len = runs[r][2] - t0;
        float *sq = malloc((size_t)len * 3 * C * 4), *so = malloc((size_t)len * C * 4),
              *sa = malloc((size_t)NH * len * len * 4);
        memcpy(sq, k.qkv + ((size_t)b * T + t0) * 3 * C, (size_t)len * 3 * C * 4);
        tg_attention_forward(so, sa, sq, NULL, 1, len, C, NH);
        for (int t = 0; t < len; t++)
            for (int c = 0; c < C; c++)
                maxd = fmax(maxd, fabs(so[(size_t)t * C + c] - out[((size_t)b * T + t0 + t) * C + c]));
        free(sq), free(so), free(sa);
    }
    printf("  segmented vs per-segment causal  max diff %.2e\n", maxd);
    CHECK(maxd < 1e-5);
    free(k.qkv), free(k.att), free(k.rs), free(out), free(out2), free(att2), free(R), free(scratch);
}

/* ------------------------------------------------------------ loss */
typedef struct {
    float *logits, *work, *w;
    int32_t *tg;
    size_t N;
    int V, Vp;
} ce_ctx;
static void ce_fwd(void *c, float *out) {
    ce_ctx *k = c;
    memcpy(k->work, k->logits, k->N * k->Vp * 4);
    double wsum;
    out[0] = (float)tg_crossentropy_forward(NULL, NULL, k->work, k->tg, k->w, k->N, k->V, k->Vp, &wsum);
}
static void test_crossentropy(void) {
    size_t N = 9;
    int V = 50, Vp = 64;
    ce_ctx k = {randv(N * Vp, 3.0f), zerov(N * Vp), malloc(N * 4), malloc(N * 4), N, V, Vp};
    float wv[] = {1, 0, 0.5f, 2, 1, 0, 1, 0.25f, 1};
    memcpy(k.w, wv, sizeof wv);
    for (size_t n = 0; n < N; n++) k.tg[n] = (int32_t)(tg_rng_next(&rng) % V);
    float *losses = zerov(N), *lse = zerov(N);
    memcpy(k.work, k.logits, N * Vp * 4);
    double wsum = 0;
    double s = tg_crossentropy_forward(losses, lse, k.work, k.tg, k.w, N, V, Vp, &wsum);
    /* weighted mean computed here in double, only over the first V columns */
    double want = 0, wtot = 0;
    for (size_t n = 0; n < N; n++) {
        const float *x = k.logits + n * Vp;
        double mx = -1e30, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < V; v++) z += exp(x[v] - mx);
        want += k.w[n] * (mx + log(z) - x[k.tg[n]]);
        wtot += k.w[n];
    }
    printf("  weighted CE mean: ours %.8f, double %.8f\n", s / wsum, want / wtot);
    CHECK(fabs(wsum - wtot) < 1e-9);
    CHECK(fabs(s / wsum - want / wtot) < 1e-5 * fabs(want / wtot));
    int ok = 1;
    for (size_t n = 0; n < N; n++)
        for (int v = V; v < Vp; v++) ok &= isinf(k.work[n * Vp + v]) && k.work[n * Vp + v] < 0;
    CHECK(ok); /* padded columns masked to -inf */
    /* backward: d(sum w*loss)/dlogits, in place */
    tg_crossentropy_backward_inplace(k.work, lse, k.tg, k.w, 1.0f, N, V, Vp);
    ok = 1;
    for (size_t n = 0; n < N; n++)
        for (int v = 0; v < Vp; v++)
            if (v >= V || k.w[n] == 0.0f) ok &= k.work[n * Vp + v] == 0.0f;
    CHECK(ok); /* padded columns and weight-0 rows: exactly zero gradient */
    float *g = malloc(N * Vp * 4), one = 1.0f;
    memcpy(g, k.work, N * Vp * 4);
    /* finite differences on the real columns only (padded ones are masked) */
    for (size_t n = 0; n < N; n++) {
        char nm[64];
        snprintf(nm, sizeof nm, "crossentropy dlogits row %zu", n);
        if (n % 3 == 0) check_fd(nm, ce_fwd, &k, k.logits + n * Vp, V, g + n * Vp, &one, 1, V, 1e-2);
    }
    /* padded wte rows: dwte = dlogits^T x is zero on rows >= V */
    int C = 8;
    float *x = randv(N * C, 1), *dwte = zerov((size_t)Vp * C);
    tg_matmul_backward_nt(NULL, dwte, g, x, NULL, N, C, Vp, false);
    ok = 1;
    for (size_t i = (size_t)V * C; i < (size_t)Vp * C; i++) ok &= dwte[i] == 0.0f;
    CHECK(ok);
    /* softmax helper: rows sum to 1 over V, padded probabilities 0 */
    float *probs = zerov(N * Vp);
    tg_softmax_forward(probs, k.logits, N, V, Vp);
    double maxd = 0;
    for (size_t n = 0; n < N; n++) {
        double sum = 0;
        for (int v = 0; v < Vp; v++) sum += probs[n * Vp + v];
        maxd = fmax(maxd, fabs(sum - 1.0));
        CHECK(probs[n * Vp + Vp - 1] == 0.0f);
    }
    CHECK(maxd < 1e-5);
    free(k.logits), free(k.work), free(k.w), free(k.tg), free(losses), free(lse), free(g), free(x), free(dwte),
        free(probs);
}

static void test_fastmath(void) {
    double maxe = 0, maxt = 0;
    for (int i = -200000; i <= 200000; i++) {
        float x = i * 4.35e-4f; /* [-87, 87] */
        double e = exp((double)x);
        maxe = fmax(maxe, fabs(tg_expf(x) - e) / e);
        float y = i * 1e-4f; /* [-20, 20] */
        double t = tanh((double)y);
        maxt = fmax(maxt, fabs(tg_tanhf(y) - t) / fmax(fabs(t), 1e-30));
    }
    /* GELU and its derivative against double, densely over [-20, 20]: a
     * relative error of a few ulps (times the conditioning below) plus a
     * tiny absolute term for the far negative tail (true values < 1e-20).
     * The reference is the sigmoid form too: in the tanh form 1 + tanh(u)
     * cancels even in double. */
    double maxg = 0, maxgg = 0;
    for (int i = -200000; i <= 200000; i++) {
        double x = i * 1e-4;
        float xf = (float)x;
        x = xf;
        double kk = sqrt(2.0 / M_PI), u = kk * (x + 0.044715 * x * x * x), sg = 1.0 / (1.0 + exp(-2.0 * u));
        double g = x * sg; /* 0.5 x (1 + tanh u) */
        double gg = sg + 2.0 * x * sg * (1.0 - sg) * kk * (1.0 + 3.0 * 0.044715 * x * x);
        /* exp(-2u) of a float u carries |2u| times u's rounding; the
         * derivative is measured against the size of its terms (it crosses
         * zero near x = -0.75). */
        double cond = fmax(1.0, fabs(2.0 * u));
        maxg = fmax(maxg, fabs(tg_gelu(xf) - g) / ((fabs(g) + 1e-20) * cond));
        maxgg = fmax(maxgg, fabs(tg_gelu_grad(xf) - gg) / ((fabs(gg) + sg + 1e-20) * cond));
    }
    printf("  fast exp max rel err %.2e, fast tanh max rel err %.2e, gelu %.2e, gelu' %.2e\n", maxe, maxt, maxg,
           maxgg);
    CHECK(maxg < 1e-6);
    CHECK(maxgg < 1e-6);
    CHECK(maxe < 5e-7); /* a few float ulps */
    CHECK(maxt < 1e-6);
    CHECK(tg_expf(-100.0f) == 0.0f && tg_expf(-INFINITY) == 0.0f);
}

int main(void) {
    tg_rng_seed(&rng, 42);
    printf("fastmath:\n");
    test_fastmath();
    printf("layernorm:\n");
    test_layernorm();
    printf("matmul:\n");
    test_matmul();
    printf("gelu, residual, encoder:\n");
    test_gelu();
    test_residual();
    test_encoder();
    printf("attention:\n");
    test_attention();
    printf("cross-entropy:\n");
    test_crossentropy();
    return test_summary("test_kernels");
}
