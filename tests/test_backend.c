/*
 * test_backend.c — the op conformance test: every op of every backend this
 * build has (kernels/backend.h), forward and backward, through the op table
 * and the backend's own memory, against naive references computed here in
 * double (or, for matmul and attention, the naive loop kernels). It is the
 * test a new backend must pass. Prints each op's max error and tolerance.
 *
 * Error measure: max over elements of |got - want| / (1 + |want|), so the
 * tolerance reads as absolute for small values and relative for large ones.
 *
 * Variants: the CPU kernels are chosen when the program is built (this
 * build's variant is printed); the portable build of tests/run_all.sh (no
 * -march=native) runs this same test over the generic kernels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/backend.h"
#include "kernels/cpu/kernels.h"
#include "test_util.h"

static tg_rng rng;
static tg_backend *be;

static float *randv(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * tg_rng_uniform(&rng) - 1.0f);
    return x;
}

/* device copies: up() allocates and uploads, down() downloads into a fresh host array */
static float *up(const float *h, size_t n) {
    float *d = be->alloc(be, n * sizeof *d, "test buffer");
    be->to_device(be, d, h, n * sizeof *d);
    return d;
}
static int32_t *up_i(const int32_t *h, size_t n) {
    int32_t *d = be->alloc(be, n * sizeof *d, "test buffer");
    be->to_device(be, d, h, n * sizeof *d);
    return d;
}
static float *down(const float *d, size_t n) {
    float *h = malloc(n * sizeof *h);
    be->to_host(be, h, d, n * sizeof *h);
    return h;
}

static void report(const char *op, const float *got_dev, const double *want, size_t n, double tol) {
    float *got = down(got_dev, n);
    double mx = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (!(e <= mx)) mx = e, at = i; /* NaN counts as the worst */
    }
    int ok = mx <= tol;
    printf("  %-44s max err %.2e  tol %.0e  %s\n", op, mx, tol, ok ? "ok" : "FAIL");
    if (!ok) fprintf(stderr, "FAIL %s at %zu: got %.9g want %.9g\n", op, at, got[at], want[at]);
    CHECK(ok);
    free(got);
}

static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ------------------------------------------------------------ memory */

static void test_memory(void) {
    const size_t n = 1000;
    float *h = randv(n, 1), *d = be->alloc(be, n * sizeof(float), "test"), *d2 = be->alloc(be, n * sizeof(float), "t");
    float *z = down(d, n);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= z[i] == 0.0f;
    CHECK(zero); /* alloc zeroes */
    be->to_device(be, d, h, n * sizeof(float));
    be->copy(be, d2, d, n * sizeof(float));
    double *want = to_d(h, n);
    report("memory: to_device, copy, to_host", d2, want, n, 0);
    be->fill(be, d2, 2.5f, n);
    for (size_t i = 0; i < n; i++) want[i] = 2.5;
    report("memory: fill", d2, want, n, 0);
    be->free(be, d);
    be->free(be, d2);
    free(h);
    free(z);
    free(want);
}

/* ------------------------------------------------------------ embedding, LayerNorm, GELU */

static void test_rowwise(void) {
    const int B = 2, T = 5, C = 24, V = 11;
    const size_t N = (size_t)B * T;
    printf("  shapes: B=%d T=%d C=%d V=%d\n", B, T, C, V);
    int32_t inp[10], pos[10];
    for (size_t i = 0; i < N; i++) inp[i] = (int32_t)(tg_rng_next(&rng) % V), pos[i] = (int32_t)(i % 3);
    float *wte = randv((size_t)V * C, 1), *wpe = randv((size_t)T * C, 1), *dout = randv(N * C, 1);
    float *d_wte = up(wte, (size_t)V * C), *d_wpe = up(wpe, (size_t)T * C), *d_out = be->alloc(be, N * C * 4, "t");
    int32_t *d_inp = up_i(inp, N), *d_pos = up_i(pos, N);
    double *want = calloc(N * C, sizeof *want), *w2 = calloc((size_t)V * C, sizeof *w2), *w3 = calloc((size_t)T * C, 8);
    for (int usepos = 0; usepos < 2; usepos++) {
        be->encoder_forward(be, d_out, d_inp, usepos ? d_pos : NULL, d_wte, d_wpe, B, T, C);
        for (size_t n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                want[n * C + c] = (double)wte[inp[n] * C + c] + wpe[(usepos ? pos[n] : (int)(n % T)) * C + c];
        report(usepos ? "encoder_forward (positions)" : "encoder_forward", d_out, want, N * C, 0);
    }
    /* backward accumulates into zeroed gradients */
    float *d_dout = up(dout, N * C), *d_dwte = be->alloc(be, (size_t)V * C * 4, "t");
    float *d_dwpe = be->alloc(be, (size_t)T * C * 4, "t");
    be->encoder_backward(be, d_dwte, d_dwpe, d_dout, d_inp, d_pos, B, T, C);
    for (size_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) w2[inp[n] * C + c] += dout[n * C + c], w3[pos[n] * C + c] += dout[n * C + c];
    report("encoder_backward dwte", d_dwte, w2, (size_t)V * C, 1e-6);
    report("encoder_backward dwpe", d_dwpe, w3, (size_t)T * C, 1e-6);

    /* LayerNorm */
    float *x = randv(N * C, 2), *g = randv(C, 1), *b = randv(C, 1);
    float *d_x = up(x, N * C), *d_g = up(g, C), *d_b = up(b, C), *d_mean = be->alloc(be, N * 4, "t");
    float *d_rstd = be->alloc(be, N * 4, "t");
    be->layernorm_forward(be, d_out, d_mean, d_rstd, d_x, d_g, d_b, N, C, 1e-5f);
    double *dx_want = calloc(N * C, 8), *dg_want = calloc(C, 8), *db_want = calloc(C, 8);
    for (size_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
        double r = 1.0 / sqrt(v / C + 1e-5);
        double sdy = 0, sdyx = 0;
        for (int c = 0; c < C; c++) {
            double xh = (x[n * C + c] - m) * r, dy = (double)dout[n * C + c] * g[c];
            want[n * C + c] = xh * g[c] + b[c];
            dg_want[c] += dout[n * C + c] * xh;
            db_want[c] += dout[n * C + c];
            sdy += dy;
            sdyx += dy * xh;
        }
        for (int c = 0; c < C; c++) {
            double xh = (x[n * C + c] - m) * r, dy = (double)dout[n * C + c] * g[c];
            dx_want[n * C + c] = r * (dy - sdy / C - xh * sdyx / C);
        }
    }
    report("layernorm_forward", d_out, want, N * C, 1e-5);
    float *d_dx = be->alloc(be, N * C * 4, "t"), *d_dg = be->alloc(be, C * 4, "t"), *d_db = be->alloc(be, C * 4, "t");
    be->layernorm_backward(be, d_dx, d_dg, d_db, d_dout, d_x, d_g, d_mean, d_rstd, N, C);
    report("layernorm_backward dinp", d_dx, dx_want, N * C, 1e-5);
    report("layernorm_backward dweight", d_dg, dg_want, C, 1e-5);
    report("layernorm_backward dbias", d_db, db_want, C, 1e-5);

    /* GELU, tanh form, over [-8, 8] */
    for (size_t i = 0; i < N * C; i++) x[i] *= 4.0f;
    be->to_device(be, d_x, x, N * C * 4);
    be->gelu_forward(be, d_out, d_x, N * C);
    for (size_t i = 0; i < N * C; i++) {
        double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v), t = tanh(u);
        want[i] = 0.5 * v * (1 + t);
        double du = 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
        dx_want[i] = dout[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
    }
    report("gelu_forward", d_out, want, N * C, 1e-6);
    be->to_device(be, d_dx, dout, N * C * 4);
    be->gelu_backward_inplace(be, d_dx, d_x, N * C);
    report("gelu_backward_inplace", d_dx, dx_want, N * C, 1e-5);

    void *bufs[] = {d_wte, d_wpe, d_out, d_inp, d_pos, d_dout, d_dwte, d_dwpe, d_x, d_g, d_b, d_mean, d_rstd, d_dx,
                    d_dg, d_db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    void *hb[] = {wte, wpe, dout, want, w2, w3, x, g, b, dx_want, dg_want, db_want};
    for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
}

/* ------------------------------------------------------------ matmul */

/* Block-of-32 int8 quantization as the int8 weights promise it: scale =
 * max|v| / 127 over the block, q = round(v / scale) (to even, as lrintf). */
static void quantize_blocks(const float *v, int n, int stride, double *deq) {
    for (int b0 = 0; b0 < n; b0 += 32) {
        float amax = 0;
        for (int i = b0; i < n && i < b0 + 32; i++) amax = fmaxf(amax, fabsf(v[(size_t)i * stride]));
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
        for (int i = b0; i < n && i < b0 + 32; i++) deq[i] = (double)lrintf(v[(size_t)i * stride] * inv) * s;
    }
}

/* out = quant(x) @ quant(W) + bias in double, quantized per 32 along K */
static void int8_reference(double *out, const float *x, const float *W, const float *bias, int N, int K, int M) {
    double *xq = malloc(sizeof(double) * K), *wq = malloc(sizeof(double) * K * M);
    for (int j = 0; j < M; j++) {
        double col[4096];
        quantize_blocks(W + j, K, M, col);
        for (int k = 0; k < K; k++) wq[(size_t)k * M + j] = col[k];
    }
    for (int n = 0; n < N; n++) {
        quantize_blocks(x + (size_t)n * K, K, 1, xq);
        for (int j = 0; j < M; j++) {
            double s = bias ? bias[j] : 0;
            for (int k = 0; k < K; k++) s += xq[k] * wq[(size_t)k * M + j];
            out[(size_t)n * M + j] = s;
        }
    }
    free(xq);
    free(wq);
}

static void test_matmul(void) {
    const int N = 37, K = 48, M = 40; /* rows, inputs, outputs: none a multiple of the panel or block sizes */
    printf("  shapes: rows N=%d, inputs K=%d, outputs OC=%d\n", N, K, M);
    float *x = randv((size_t)N * K, 1), *W = randv((size_t)K * M, 0.5f), *bias = randv(M, 1);
    float *res = randv((size_t)N * M, 1), *dout = randv((size_t)N * M, 1);
    float *Wt = malloc(sizeof(float) * K * M);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < M; j++) Wt[(size_t)j * K + k] = W[(size_t)k * M + j];
    float *d_x = up(x, (size_t)N * K), *d_W = up(W, (size_t)K * M), *d_Wt = up(Wt, (size_t)K * M);
    float *d_bias = up(bias, M), *d_res = up(res, (size_t)N * M), *d_dout = up(dout, (size_t)N * M);
    float *d_out = be->alloc(be, sizeof(float) * N * M, "t");
    CHECK(be->reserve(be, (size_t)N, K > M ? K : M, 8) == TG_OK);
    /* int8 weights exist for inference only */
    tg_weight w8 = {.master = d_W, .K = K, .N = M, .dtype = TG_DTYPE_INT8};
    CHECK(be->weight_prepare(be, &w8) == TG_ERR_INPUT);
    tg_error_clear();
    float *ref = malloc(sizeof(float) * N * M);
    tg_matmul_forward_naive(ref, x, W, bias, (size_t)N, K, M);
    double *want = to_d(ref, (size_t)N * M), *want_r = malloc(sizeof(double) * N * M);
    for (size_t i = 0; i < (size_t)N * M; i++) want_r[i] = want[i] + res[i];
    double *want_nt = malloc(sizeof(double) * N * M);
    tg_matmul_forward_naive(ref, x, W, NULL, (size_t)N, K, M);
    for (size_t i = 0; i < (size_t)N * M; i++) want_nt[i] = ref[i];
    for (int inf = 0; inf < 2; inf++)
        for (int dt = 0; dt < (inf ? 3 : 2); dt++) {
            /* bf16: inputs rounded to 8 significant bits, sums of 48 products of size ~0.25: 2e-2;
             * int8: weights and activations to 1/254 of their block's range: 3e-2 */
            double tol = dt == 2 ? 3e-2 : dt ? 2e-2 : 1e-5;
            char nm[80];
            tg_weight w = {.master = d_W, .K = K, .N = M, .dtype = (tg_dtype)dt, .inference = inf};
            tg_weight wt = {.master = d_Wt, .K = K, .N = M, .transposed = true, .dtype = (tg_dtype)dt, .inference = inf};
            CHECK(be->weight_prepare(be, &w) == TG_OK && be->weight_prepare(be, &wt) == TG_OK);
            const char *kind = inf ? "inference" : "training";
            const char *dn = dt == 2 ? "int8" : dt ? "bf16" : "fp32";
            be->matmul_forward(be, d_out, d_x, &w, d_bias, (size_t)N);
            snprintf(nm, sizeof nm, "matmul_forward %s %s", kind, dn);
            report(nm, d_out, want, (size_t)N * M, tol);
            be->to_device(be, d_out, res, sizeof(float) * N * M);
            be->matmul_forward_residual(be, d_out, d_out, d_x, &w, d_bias, (size_t)N); /* in place */
            snprintf(nm, sizeof nm, "matmul_forward_residual %s %s", kind, dn);
            report(nm, d_out, want_r, (size_t)N * M, tol);
            be->matmul_forward(be, d_out, d_x, &wt, NULL, (size_t)N);
            snprintf(nm, sizeof nm, "matmul_forward transposed %s %s", kind, dn);
            report(nm, d_out, want_nt, (size_t)N * M, tol);
            if (dt == 2) { /* exactly the promised quantization: only the fp32 sums' order differs */
                double *q8 = malloc(sizeof(double) * N * M);
                int8_reference(q8, x, W, bias, N, K, M);
                be->matmul_forward(be, d_out, d_x, &w, d_bias, (size_t)N);
                report("matmul_forward int8 = block-32 quantization", d_out, q8, (size_t)N * M, 1e-5);
                free(q8);
            }
            be->matmul_forward(be, d_out, d_x, &w, d_bias, 1); /* one row (a decode step) */
            snprintf(nm, sizeof nm, "matmul_forward one row %s %s", kind, dn);
            report(nm, d_out, want, (size_t)M, tol);
            be->weight_release(be, &w);
            be->weight_release(be, &wt);
        }
    /* backward (training handles): dinp, dweight, dbias against the naive loops */
    float *dx0 = randv((size_t)N * K, 1), *dW0 = randv((size_t)K * M, 1), *db0 = randv(M, 1);
    float *rdx = malloc(sizeof(float) * N * K), *rdW = malloc(sizeof(float) * K * M), *rdb = malloc(sizeof(float) * M);
    float *d_dx = be->alloc(be, sizeof(float) * N * K, "t"), *d_dW = be->alloc(be, sizeof(float) * K * M, "t");
    float *d_db = be->alloc(be, sizeof(float) * M, "t");
    for (int set = 0; set < 2; set++)
        for (int tr = 0; tr < 2; tr++)
            for (int dt = 0; dt < 2; dt++) {
                memcpy(rdx, dx0, sizeof(float) * N * K);
                memcpy(rdW, dW0, sizeof(float) * K * M);
                memcpy(rdb, db0, sizeof(float) * M);
                if (set) memset(rdx, 0, sizeof(float) * N * K);
                tg_matmul_backward_naive(rdx, rdW, tr ? NULL : rdb, dout, x, W, (size_t)N, K, M);
                be->to_device(be, d_dx, dx0, sizeof(float) * N * K);
                /* the transposed weight's gradient is laid out like its master, (M, K) */
                if (tr) {
                    float *t0 = malloc(sizeof(float) * K * M);
                    for (int k = 0; k < K; k++)
                        for (int j = 0; j < M; j++) t0[(size_t)j * K + k] = dW0[(size_t)k * M + j];
                    be->to_device(be, d_dW, t0, sizeof(float) * K * M);
                    free(t0);
                } else {
                    be->to_device(be, d_dW, dW0, sizeof(float) * K * M);
                }
                be->to_device(be, d_db, db0, sizeof(float) * M);
                tg_weight w = {.master = tr ? d_Wt : d_W, .K = K, .N = M, .transposed = tr, .dtype = (tg_dtype)dt};
                CHECK(be->weight_prepare(be, &w) == TG_OK);
                if (set)
                    be->matmul_backward_set(be, d_dx, d_dW, tr ? NULL : d_db, d_dout, d_x, &w, (size_t)N);
                else
                    be->matmul_backward(be, d_dx, d_dW, tr ? NULL : d_db, d_dout, d_x, &w, (size_t)N);
                be->weight_release(be, &w);
                double tol = dt ? 3e-2 : 1e-5; /* bf16: sums over 37 rows of rounded products */
                char nm[96];
                const char *v = set ? "backward_set" : "backward", *d = dt ? "bf16" : "fp32";
                double *wdx = to_d(rdx, (size_t)N * K), *wdW = malloc(sizeof(double) * K * M), *wdb = to_d(rdb, M);
                for (int k = 0; k < K; k++)
                    for (int j = 0; j < M; j++)
                        wdW[tr ? (size_t)j * K + k : (size_t)k * M + j] = rdW[(size_t)k * M + j];
                snprintf(nm, sizeof nm, "matmul_%s%s %s dinp", v, tr ? " transposed" : "", d);
                report(nm, d_dx, wdx, (size_t)N * K, tol);
                snprintf(nm, sizeof nm, "matmul_%s%s %s dweight", v, tr ? " transposed" : "", d);
                report(nm, d_dW, wdW, (size_t)K * M, tol);
                if (!tr) {
                    snprintf(nm, sizeof nm, "matmul_%s %s dbias", v, d);
                    report(nm, d_db, wdb, M, tol);
                }
                free(wdx);
                free(wdW);
                free(wdb);
            }
    void *bufs[] = {d_x, d_W, d_Wt, d_bias, d_res, d_dout, d_out, d_dx, d_dW, d_db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    void *hb[] = {x, W, bias, res, dout, Wt, ref, want, want_r, want_nt, dx0, dW0, db0, rdx, rdW, rdb};
    for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
}

/* ------------------------------------------------------------ attention */

static void test_attention(void) {
    const int B = 2, T = 19, NH = 3, HS = 8, C = NH * HS;
    const size_t BT = (size_t)B * T;
    printf("  shapes: B=%d T=%d NH=%d HS=%d; KV cache: 2 slots, prefills of 150 and 40 rows, ctx 160\n", B, T, NH, HS);
    float *qkv = randv(BT * 3 * C, 1), *dout = randv(BT * C, 1);
    int32_t rs[2 * 19];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) rs[b * T + t] = t < 7 ? 0 : (t < 13 ? 7 : 13); /* three segments */
    float *ref = malloc(sizeof(float) * BT * C), *att_ref = malloc(sizeof(float) * BT * NH * T);
    float *dref = calloc(BT * 3 * C, sizeof(float));
    float *d_qkv = up(qkv, BT * 3 * C), *d_out = be->alloc(be, sizeof(float) * BT * C, "t");
    float *d_att = be->alloc(be, sizeof(float) * BT * NH * T, "t"), *d_dout = up(dout, BT * C);
    float *d_dqkv = be->alloc(be, sizeof(float) * BT * 3 * C, "t");
    int32_t *d_rs = up_i(rs, BT);
    CHECK(be->reserve(be, BT, 4 * C, T) == TG_OK);
    for (int seg = 0; seg < 2; seg++) {
        const int32_t *r = seg ? rs : NULL;
        tg_attention_forward_naive(ref, att_ref, qkv, r, B, T, C, NH);
        memset(dref, 0, sizeof(float) * BT * 3 * C);
        tg_attention_backward_naive(dref, dout, qkv, att_ref, r, B, T, C, NH);
        be->attention_forward(be, d_out, d_att, d_qkv, seg ? d_rs : NULL, B, T, C, NH);
        double *w = to_d(ref, BT * C), *wa = to_d(att_ref, BT * NH * T), *wd = to_d(dref, BT * 3 * C);
        report(seg ? "attention_forward (segments) out" : "attention_forward out", d_out, w, BT * C, 1e-5);
        report(seg ? "attention_forward (segments) att" : "attention_forward att", d_att, wa, BT * NH * T, 1e-5);
        be->fill(be, d_dqkv, 0.0f, BT * 3 * C);
        be->attention_backward(be, d_dqkv, d_dout, d_qkv, d_att, seg ? d_rs : NULL, B, T, C, NH);
        report(seg ? "attention_backward (segments)" : "attention_backward", d_dqkv, wd, BT * 3 * C, 1e-5);
        free(w);
        free(wa);
        free(wd);
    }

    /* KV cache: slot 1 prefills 150 rows (more than one 128-row block), slot 0
     * decodes one row at position 40 after a 40-row prefill: every row must
     * equal plain causal attention over its own sequence. */
    const int P = 150, S = 2, L = 2, ctx = 160, l = 1;
    tg_kv_cache kv = {.S = S, .L = L, .NH = NH, .HS = HS, .max_ctx = ctx};
    size_t kvn = (size_t)S * L * ctx * C;
    kv.k = be->alloc(be, kvn * sizeof(float), "t");
    kv.v = be->alloc(be, kvn * sizeof(float), "t");
    CHECK(be->reserve(be, (size_t)P + 41, 4 * C, ctx) == TG_OK);
    float *seqA = randv((size_t)P * 3 * C, 1), *seqB = randv((size_t)41 * 3 * C, 1);
    int32_t tok[191], pos[191], slot[191];
    int gs[2], gl[2];
    /* step 1: both prefills (slot 1: 150 rows, slot 0: 40 rows) */
    float *rows1 = malloc(sizeof(float) * (P + 40) * 3 * C);
    memcpy(rows1, seqA, sizeof(float) * P * 3 * C);
    memcpy(rows1 + (size_t)P * 3 * C, seqB, sizeof(float) * 40 * 3 * C);
    for (int i = 0; i < P + 40; i++) tok[i] = 0, pos[i] = i < P ? i : i - P, slot[i] = i < P ? 1 : 0;
    gs[0] = 0, gl[0] = P, gs[1] = P, gl[1] = 40;
    tg_step_rows st = {.tok = tok, .pos = pos, .slot = slot, .n = P + 40, .n_prefill = P + 40, .grp_start = gs,
                       .grp_len = gl, .n_grp = 2};
    float *d_rows = up(rows1, (size_t)(P + 40) * 3 * C), *d_o = be->alloc(be, sizeof(float) * (P + 40) * C, "t");
    be->kv_store(be, &kv, l, d_rows, &st);
    be->attention_kv(be, d_o, d_rows, &kv, l, &st);
    /* reference: causal attention over each sequence alone */
    float *oA = malloc(sizeof(float) * P * C), *aA = malloc(sizeof(float) * NH * P * P);
    float *oB = malloc(sizeof(float) * 41 * C), *aB = malloc(sizeof(float) * NH * 41 * 41);
    tg_attention_forward_naive(oA, aA, seqA, NULL, 1, P, C, NH);
    tg_attention_forward_naive(oB, aB, seqB, NULL, 1, 41, C, NH);
    double *w1 = malloc(sizeof(double) * (P + 40) * C);
    for (int i = 0; i < P * C; i++) w1[i] = oA[i];
    for (int i = 0; i < 40 * C; i++) w1[P * C + i] = oB[i];
    report("kv_store + attention_kv (2 prefills)", d_o, w1, (size_t)(P + 40) * C, 1e-5);
    /* step 2: one decode row of slot 0 at position 40 */
    tok[0] = 0, pos[0] = 40, slot[0] = 0;
    tg_step_rows st2 = {.tok = tok, .pos = pos, .slot = slot, .n = 1, .n_prefill = 0};
    be->to_device(be, d_rows, seqB + (size_t)40 * 3 * C, sizeof(float) * 3 * C);
    be->kv_store(be, &kv, l, d_rows, &st2);
    be->attention_kv(be, d_o, d_rows, &kv, l, &st2);
    double *w2 = to_d(oB + 40 * C, C);
    report("kv_store + attention_kv (decode row)", d_o, w2, (size_t)C, 1e-5);

    void *bufs[] = {d_qkv, d_out, d_att, d_dout, d_dqkv, d_rs, kv.k, kv.v, d_rows, d_o};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    void *hb[] = {qkv, dout, ref, att_ref, dref, seqA, seqB, rows1, oA, aA, oB, aB, w1, w2};
    for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
}

/* ------------------------------------------------------------ loss, optimizer */

static void test_loss_optim(void) {
    const int N = 9, V = 70, Vp = 128;
    printf("  shapes: N=%d V=%d Vp=%d; optimizer n=1000\n", N, V, Vp);
    float *lg = randv((size_t)N * Vp, 4), *w = randv(N, 1);
    int32_t tg[9];
    for (int i = 0; i < N; i++) tg[i] = (int32_t)(tg_rng_next(&rng) % V), w[i] = fabsf(w[i]);
    w[3] = 0; /* an uncounted target */
    float *d_lg = up(lg, (size_t)N * Vp), *d_w = up(w, N), *d_losses = be->alloc(be, N * 4, "t");
    float *d_lse = be->alloc(be, N * 4, "t");
    int32_t *d_tg = up_i(tg, N);
    double wsum = 0;
    double s = be->crossentropy_forward(be, d_losses, d_lse, d_lg, d_tg, d_w, (size_t)N, V, Vp, &wsum);
    double *wl = malloc(sizeof(double) * N), *wg = malloc(sizeof(double) * N * Vp), want_s = 0, want_w = 0;
    const float scale = 0.3f;
    for (int n = 0; n < N; n++) {
        const float *x = lg + (size_t)n * Vp;
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < V; v++) z += exp(x[v] - mx);
        double lse = mx + log(z);
        wl[n] = lse - x[tg[n]];
        want_s += w[n] * wl[n];
        want_w += w[n];
        for (int v = 0; v < Vp; v++)
            wg[(size_t)n * Vp + v] = v < V ? scale * w[n] * (exp(x[v] - lse) - (v == tg[n])) : 0.0;
    }
    report("crossentropy_forward losses", d_losses, wl, (size_t)N, 1e-5);
    float got_s = (float)s;
    double want_sd = want_s;
    float *d_gs = up(&got_s, 1);
    report("crossentropy_forward weighted sum", d_gs, &want_sd, 1, 1e-5);
    CHECK(fabs(wsum - want_w) < 1e-6);
    be->crossentropy_backward_inplace(be, d_lg, d_lse, d_tg, d_w, scale, (size_t)N, V, Vp);
    report("crossentropy_backward_inplace", d_lg, wg, (size_t)N * Vp, 1e-6);
    be->to_device(be, d_lg, lg, sizeof(float) * N * Vp);
    be->mask_padded_vocab(be, d_lg, (size_t)N, V, Vp);
    float *m = down(d_lg, (size_t)N * Vp);
    int masked = 1;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < Vp; v++) masked &= v < V ? m[n * Vp + v] == lg[n * Vp + v] : isinf(m[n * Vp + v]) && m[n * Vp + v] < 0;
    printf("  %-44s %s\n", "mask_padded_vocab", masked ? "ok" : "FAIL");
    CHECK(masked);

    /* AdamW: two steps, as torch.optim.AdamW */
    const size_t n = 1000;
    float *p = randv(n, 1), *g = randv(n, 1), *m1 = calloc(n, 4), *v2 = calloc(n, 4);
    float *d_p = up(p, n), *d_g = up(g, n), *d_m1 = up(m1, n), *d_v2 = up(v2, n);
    double *wp = to_d(p, n), *wm = calloc(n, 8), *wv = calloc(n, 8);
    const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    for (int t = 1; t <= 2; t++) {
        double bc1 = 1 - pow(b1, t), bc2 = sqrt(1 - pow(b2, t));
        be->adamw_update(be, d_p, d_g, d_m1, d_v2, n, (float)(1 - lr * wd), (float)(lr / bc1), (float)b1, (float)b2,
                         (float)bc2, (float)eps);
        for (size_t i = 0; i < n; i++) {
            wm[i] = b1 * wm[i] + (1 - b1) * g[i];
            wv[i] = b2 * wv[i] + (1 - b2) * (double)g[i] * g[i];
            wp[i] = wp[i] * (1 - lr * wd) - lr / bc1 * wm[i] / (sqrt(wv[i]) / bc2 + eps);
        }
    }
    report("adamw_update params (2 steps)", d_p, wp, n, 1e-6);
    report("adamw_update first moments", d_m1, wm, n, 1e-6);
    report("adamw_update second moments", d_v2, wv, n, 1e-6);
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    float got_ss = (float)be->sum_squares(be, d_g, n);
    double want_ss = ss;
    float *d_ss = up(&got_ss, 1);
    report("sum_squares", d_ss, &want_ss, 1, 1e-6);
    be->scale(be, d_g, 0.25f, n);
    double *wsc = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) wsc[i] = 0.25 * g[i];
    report("scale", d_g, wsc, n, 0);

    void *bufs[] = {d_lg, d_w, d_losses, d_lse, d_tg, d_gs, d_p, d_g, d_m1, d_v2, d_ss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    void *hb[] = {lg, w, wl, wg, m, p, g, m1, v2, wp, wm, wv, wsc};
    for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
}

/* Device names: what --device accepts, and the reason when a device is
 * missing (no GPU or driver here; no CUDA in the build). */
static void test_device_names(void) {
    CHECK(tg_backend_new(&be, "no-such-backend") == TG_ERR_INPUT);
    CHECK(tg_set_default_device("gpu") == TG_ERR_INPUT && !strcmp(tg_default_device(), "cpu"));
    CHECK(tg_set_default_device("cuda:x") == TG_ERR_INPUT && tg_set_default_device("cuda:") == TG_ERR_INPUT);
    CHECK(tg_set_default_device("cpu") == TG_OK && !strcmp(tg_default_device(), "cpu"));
    int rc = tg_set_default_device("cuda:0");
#ifdef TG_HAVE_CUDA
    /* with a GPU this succeeds; without one the runtime's reason is named */
    CHECK(rc == TG_OK || (rc == TG_ERR_INPUT && strstr(tg_error_message(), "no CUDA device: ")));
    CHECK(tg_set_default_device("cuda:4096") == TG_ERR_INPUT && strstr(tg_error_message(), "no CUDA device"));
#else
    CHECK(rc == TG_ERR_INPUT && strstr(tg_error_message(), "this build has no CUDA"));
#endif
    printf("  %-44s %s\n", "device names (cuda:0 here)", rc == TG_OK ? "present" : tg_error_message());
    CHECK(tg_set_default_device("cpu") == TG_OK);
}

int main(void) {
    tg_rng_seed(&rng, 2024);
    /* every CPU kernel family of this build, and every other backend compiled
     * in; a family this CPU cannot run, and CUDA on a machine without a GPU,
     * are reported as not run, with the reason */
    const char *backends[] = {"cpu:native", "cpu:generic", "cpu:avx2", "cpu:avx512", "cpu:avx512bf16",
#ifdef TG_HAVE_CUDA
                              "cuda"
#endif
    };
    int ran = 0;
    printf("CPU kernel families this CPU runs: %s (the default picks %s)\n", tg_cpu_kernels_available(),
           tg_cpu_kernels());
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        int rc = tg_backend_new(&be, backends[i]);
        if (rc != TG_OK) {
            const char *why = tg_error_message();
            if (strstr(why, "lacks") || strstr(why, "no CUDA device")) printf("not run: %s\n", why);
            else CHECK(!strncmp(backends[i], "cpu:", 4)); /* only a family absent from this build may fail */
            tg_error_clear();
            continue;
        }
        ran++;
        printf("backend %s (kernels: %s)\n", be->name, be->variant);
        test_memory();
        test_rowwise();
        test_matmul();
        test_attention();
        test_loss_optim();
        CHECK(tg_backend_status(be) == TG_OK); /* no op recorded an error */
        tg_backend_free(be);
    }
    CHECK(ran >= 1);
    test_device_names();
    return test_summary("test_backend");
}
