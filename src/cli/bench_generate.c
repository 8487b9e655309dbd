/*
 * bench_generate.c — `truthgpt bench generate`: generation speed of the
 * engine on this machine, each figure beside the bound measured in the same
 * invocation:
 *   - single-stream decode tokens/s vs the memory-bandwidth bound: bytes of
 *     weights read per token (every layer matrix plus the LM head, in the
 *     engine's dtype) over the bandwidth of a streaming read measured here;
 *   - prefill tokens/s of a P-token prompt (default 512) vs the GEMM-peak
 *     bound: flops per prompt token (2 x layer weights, plus attention's
 *     4 x L x C x P/2 on average) over tg_gemm_peak_gflops;
 *   - N concurrent streams decoding together: aggregate tokens/s;
 *   - under that load (N slots kept busy by --requests requests, each a
 *     100-token prompt and G generated tokens, a new one joining as soon as
 *     one ends): p50 and p99 time to first token, and the throughput
 *     including the prefills;
 *   - peak RSS.
 * A --preset model has random weights (GPT-2 initialisation; speed does not
 * depend on the values) and the preset's vocabulary (GPT-2's 50257); every
 * request ignores <|endoftext|> so each generates exactly G tokens.
 * Timings are the best of a few repetitions (the machine may be shared).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "core/core.h"
#include "infer/engine.h"

/* Streaming read bandwidth (GB/s) over a buffer far larger than the caches,
 * all threads, best of 3. Each thread sums its contiguous share into 4
 * vector accumulators (reduced once at the end), so the loop is bound by
 * memory, not by add latency or horizontal sums. */
static double measure_bandwidth(void) {
    const size_t n = (size_t)1 << 27; /* 512 MB of floats */
    float *a = tg_alloc(n * sizeof *a, "bandwidth buffer");
    if (!a) return 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 0, sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = tg_now(), total = 0;
#pragma omp parallel reduction(+ : total)
        {
            int nt = 1, id = 0;
#ifdef _OPENMP
            nt = omp_get_num_threads();
            id = omp_get_thread_num();
#endif
            size_t chunk = n / 64 / (size_t)nt, lo = chunk * (size_t)id * 64,
                   hi = id == nt - 1 ? n : chunk * (size_t)(id + 1) * 64;
#if defined(__AVX512F__)
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = lo; i < hi; i += 64) {
                s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
                s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
                s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
                s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
            }
            total += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#else
            float s[8] = {0};
            for (size_t i = lo; i < hi; i += 8)
                for (int j = 0; j < 8; j++) s[j] += a[i + j];
            for (int j = 0; j < 8; j++) total += s[j];
#endif
        }
        t = tg_now() - t;
        sink += total;
        double gbs = (double)n * sizeof *a / t / 1e9;
        if (gbs > best) best = gbs;
    }
    if (sink == 42) printf(" ");
    tg_free(a);
    return best;
}

typedef struct {
    double t_add, t_first;
    int n;
    int done;
} req_timing;

static int count_cb(const tg_token_event *ev, void *user) {
    req_timing *r = user;
    if (ev->token >= 0) {
        if (r->n == 0) r->t_first = tg_now();
        r->n++;
    }
    if (ev->finish != TG_FINISH_NONE) r->done = 1;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static tg_sampling_params bench_params(int gen, uint64_t seed) {
    tg_sampling_params p = tg_sampling_default_params();
    p.temperature = 0; /* greedy: the cheapest sampler, so the figure is the model's */
    p.max_tokens = gen;
    p.ignore_eos = true;
    p.seed = seed;
    return p;
}

static void fill_prompt(int32_t *ids, int n, int V, uint64_t seed) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(tg_rng_next(&r) % (uint64_t)V);
}

int tg_bench_generate(int argc, char **argv) {
    const char *model_path = NULL, *preset = NULL, *dtype_s = "fp32";
    int streams = 8, prompt_len = 512, gen = 64, json = 0, threads = 0, ttft_prompt = 100, requests = -1, fixed = 0;
    const char *device = "cpu";
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &model_path, "PATH", "checkpoint or run directory"},
        {"preset", TG_OPT_STR, &preset, "NAME", "a preset with random weights instead (tiny, small, gpt2, ...)"},
        {"streams", TG_OPT_INT, &streams, "N", "concurrent streams for the batched figures"},
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16|int8", "weight precision (bf16/int8: converted once, fp32 sums)"},
        {"prompt-len", TG_OPT_INT, &prompt_len, "P", "prompt tokens for the prefill figure"},
        {"gen-tokens", TG_OPT_INT, &gen, "G", "tokens generated per stream"},
        {"ttft-prompt", TG_OPT_INT, &ttft_prompt, "N", "prompt tokens of the requests timed to first token"},
        {"requests", TG_OPT_INT, &requests, "N", "requests in the time-to-first-token load test (-1: 2 x streams, 0: skip)"},
        {"fixed-threads", TG_OPT_FLAG, &fixed, NULL, "always use every thread (no adaptive 1-thread fallback)"},
        {"json", TG_OPT_FLAG, &json, NULL, "end with one JSON line of the figures"},
        {"threads", TG_OPT_INT, &threads, "N", "threads (0: all cores)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt bench generate --model DIR|--preset NAME [--streams N] [--dtype fp32|bf16] "
                           "[--prompt-len 512] [--json]",
                           "Generation speed against its bounds: single-stream decode vs memory bandwidth, prefill vs\n"
                           "the GEMM peak, N streams together, time to first token under load, peak memory.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!model_path == !preset) {
        fprintf(stderr, "truthgpt: bench generate: give --model PATH or --preset NAME\n");
        return 2;
    }
    tg_dtype dtype;
    if (tg_cli_dtype(dtype_s, &dtype) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (streams < 1 || streams > 256) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--streams must be 1-256"));
    if (gen < 2) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--gen-tokens must be >= 2"));
    if (prompt_len < 1 || ttft_prompt < 1) return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "prompt lengths must be >= 1"));
    if (threads > 0) tg_set_threads(threads);

    tg_model *model = NULL;
    tg_tokenizer *tok = NULL;
    char dir[4096];
    if (model_path) {
        rc = tg_infer_load(model_path, &model, &tok, dir, sizeof dir);
    } else {
        tg_config cfg;
        rc = tg_config_preset(preset, &cfg);
        if (rc == TG_OK) rc = tg_model_init(&model, &cfg);
        if (rc == TG_OK) rc = tg_model_init_weights(model, 1);
        snprintf(dir, sizeof dir, "preset %s", preset);
    }
    if (rc != TG_OK) return tg_cli_fail(rc);
    const tg_config *cfg = tg_model_config(model);
    const int n_ctx = cfg->n_ctx, V = cfg->vocab_size, L = cfg->n_layer, C = cfg->n_embd;
    if (prompt_len + 1 > n_ctx) prompt_len = n_ctx - 1;
    if (ttft_prompt + gen > n_ctx) ttft_prompt = n_ctx - gen > 1 ? n_ctx - gen : 1;
    const int single_prompt = 16 < n_ctx - gen ? 16 : 1;
    if (single_prompt + gen > n_ctx) gen = n_ctx - single_prompt;

    int32_t *ids = malloc((size_t)n_ctx * sizeof *ids);
    tg_engine *e = NULL;
    if (!ids) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    fprintf(stderr, "bench generate: %s (L=%d C=%d V=%d), %s, %d threads, CPU kernels %s\n", dir, L, C, V, dtype_s,
            tg_num_threads(), tg_cpu_kernels());

    /* bounds */
    double bw = measure_bandwidth();
    double peak = tg_gemm_peak_gflops(dtype);
    /* bytes a weight: int8 blocks of 32 carry a scale and a column sum (8 bytes) */
    const double wsize = dtype == TG_DTYPE_BF16 ? 2.0 : dtype == TG_DTYPE_INT8 ? 40.0 / 32 : 4.0;
    double layer_params = 12.0 * L * (double)C * C; /* qkv 3C^2 + proj C^2 + fc 4C^2 + fcproj 4C^2 */
    double bytes_per_token = (layer_params + (double)cfg->padded_vocab * C) * wsize;
    double bound_decode = bw * 1e9 / bytes_per_token;
    double prefill_flops = 2.0 * layer_params + 4.0 * L * (double)C * prompt_len / 2;
    double bound_prefill = peak * 1e9 / prefill_flops;

    /* single-stream decode and prefill: one slot */
    double decode_tps = 0, prefill_tps = 0;
    if (rc == TG_OK) rc = tg_engine_init(&e, model, tok, 1, 0, dtype);
    if (rc == TG_OK) tg_engine_set_adaptive_threads(e, !fixed);
    int threads_single = 0, threads_multi = 0;
    for (int rep = 0; rc == TG_OK && rep < 3; rep++) {
        req_timing rt = {0};
        tg_sampling_params p = bench_params(gen, 1);
        fill_prompt(ids, single_prompt, V, 7);
        rc = tg_engine_add(e, ids, single_prompt, &p, count_cb, &rt, NULL);
        if (rc == TG_OK) rc = tg_engine_step(e); /* prefill + first token: not timed */
        double t0 = tg_now();
        while (rc == TG_OK && !rt.done) rc = tg_engine_step(e);
        double dt = tg_now() - t0;
        if (rc == TG_OK && (rt.n - 1) / dt > decode_tps) decode_tps = (rt.n - 1) / dt;
    }
    for (int rep = 0; rc == TG_OK && rep < 3; rep++) {
        req_timing rt = {0};
        tg_sampling_params p = bench_params(1, 1);
        fill_prompt(ids, prompt_len, V, 11 + (uint64_t)rep);
        double t0 = tg_now();
        rc = tg_engine_add(e, ids, prompt_len, &p, count_cb, &rt, NULL);
        if (rc == TG_OK) rc = tg_engine_step(e); /* the whole prompt, then one token */
        double dt = tg_now() - t0;
        if (rc == TG_OK && prompt_len / dt > prefill_tps) prefill_tps = prompt_len / dt;
    }
    if (e) threads_single = tg_engine_threads(e);
    tg_engine_free(e);
    e = NULL;

    /* N streams: all decoding together (prefills not timed) */
    double agg_tps = 0;
    int ctx_n = ttft_prompt + gen + 1 < n_ctx ? ttft_prompt + gen + 1 : n_ctx;
    req_timing *rts = calloc((size_t)streams * 64, sizeof *rts);
    if (rc == TG_OK && !rts) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) rc = tg_engine_init(&e, model, tok, streams, ctx_n, dtype);
    if (rc == TG_OK) tg_engine_set_adaptive_threads(e, !fixed);
    for (int rep = 0; rc == TG_OK && rep < 2; rep++) {
        memset(rts, 0, (size_t)streams * sizeof *rts);
        for (int s = 0; rc == TG_OK && s < streams; s++) {
            tg_sampling_params p = bench_params(gen, (uint64_t)s);
            fill_prompt(ids, single_prompt, V, 100 + (uint64_t)s);
            rc = tg_engine_add(e, ids, single_prompt, &p, count_cb, &rts[s], NULL);
        }
        if (rc == TG_OK) rc = tg_engine_step(e); /* all prefills + first tokens */
        double t0 = tg_now();
        while (rc == TG_OK && tg_engine_active(e) > 0) rc = tg_engine_step(e);
        double dt = tg_now() - t0;
        int total = 0;
        for (int s = 0; s < streams; s++) total += rts[s].n - 1;
        if (rc == TG_OK && total / dt > agg_tps) agg_tps = total / dt;
    }

    /* time to first token under load: N slots kept busy by a stream of
     * requests (ttft_prompt-token prompts, gen tokens each), 3N requests */
    int n_req = requests < 0 ? 2 * streams : requests, added = 0, finished = 0, load_tokens = 0;
    if (n_req > streams * 64) n_req = streams * 64;
    double *ttft = calloc((size_t)n_req + 1, sizeof *ttft);
    if (rc == TG_OK && !ttft) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) memset(rts, 0, (size_t)streams * 64 * sizeof *rts);
    double t_load = tg_now();
    tg_progress pr;
    tg_progress_start(&pr, "load test", n_req);
    while (rc == TG_OK && finished < n_req) {
        while (rc == TG_OK && added < n_req && added < streams * 64 && tg_engine_free_slots(e) > 0) {
            tg_sampling_params p = bench_params(gen, (uint64_t)added);
            fill_prompt(ids, ttft_prompt, V, 1000 + (uint64_t)added);
            rts[added].t_add = tg_now();
            rc = tg_engine_add(e, ids, ttft_prompt, &p, count_cb, &rts[added], NULL);
            added++;
        }
        if (rc == TG_OK) rc = tg_engine_step(e);
        finished = 0;
        for (int i = 0; i < added; i++) finished += rts[i].done;
        tg_progress_update(&pr, finished, NULL);
    }
    tg_progress_finish(&pr, finished, NULL);
    double load_dt = tg_now() - t_load;
    if (load_dt <= 0) load_dt = 1e-9;
    for (int i = 0; i < added && rc == TG_OK; i++) {
        ttft[i] = rts[i].t_first - rts[i].t_add;
        load_tokens += rts[i].n;
    }
    double p50 = 0, p99 = 0;
    if (rc == TG_OK && added > 0) {
        qsort(ttft, (size_t)added, sizeof *ttft, cmp_double);
        p50 = ttft[(added - 1) / 2];
        p99 = ttft[(int)ceil(0.99 * added) - 1];
    }
    if (e) threads_multi = tg_engine_threads(e);
    double rss = tg_peak_rss_mb();
    if (rc == TG_OK) {
        printf("\n%-44s %12s %12s %8s\n", "figure", "ours", "bound", "of bound");
        printf("%-44s %12.1f %12.1f %7.0f%%\n", "decode, 1 stream (tokens/s)", decode_tps, bound_decode,
               100 * decode_tps / bound_decode);
        printf("%-44s %12.1f %12.1f %7.0f%%\n", "prefill (tokens/s)", prefill_tps, bound_prefill,
               100 * prefill_tps / bound_prefill);
        char label[64];
        snprintf(label, sizeof label, "decode, %d streams (tokens/s, all)", streams);
        printf("%-44s %12.1f %12s %7.1fx\n", label, agg_tps, "", agg_tps / decode_tps);
        if (added > 0) {
            snprintf(label, sizeof label, "under load: %d requests, %d-token prompts (tokens/s)", added, ttft_prompt);
            printf("%-44s %12.1f\n", label, load_tokens / load_dt);
            printf("%-44s %12.1f\n", "  time to first token p50 (ms)", p50 * 1e3);
            printf("%-44s %12.1f\n", "  time to first token p99 (ms)", p99 * 1e3);
        }
        printf("%-44s %12.0f\n", "peak RSS (MB)", rss);
        printf("CPU kernels: %s\n", tg_cpu_kernels());
        printf("threads used at the end: %d single stream, %d with %d streams (of %d%s)\n", threads_single,
               threads_multi, streams, tg_num_threads(), fixed ? ", fixed" : ", adaptive");
        printf("bounds: %.1f GB/s streaming read, %.1f MB of weights a token; %.0f GFLOP/s %s GEMM peak, "
               "%.2f GFLOP a prompt token\n",
               bw, bytes_per_token / 1e6, peak, dtype_s, prefill_flops / 1e9);
        if (json)
            printf("{\"decode_tok_per_s\": %.2f, \"prefill_tok_per_s\": %.2f, \"bound_tok_per_s\": %.2f, "
                   "\"streams\": %d, \"aggregate_tok_per_s\": %.2f, \"peak_rss_mb\": %.1f, \"dtype\": \"%s\", "
                   "\"prefill_bound_tok_per_s\": %.2f, \"bandwidth_gb_per_s\": %.2f, \"gemm_peak_gflops\": %.1f, "
                   "\"ttft_p50_ms\": %.2f, \"ttft_p99_ms\": %.2f, \"load_tok_per_s\": %.2f, \"prompt_len\": %d, "
                   "\"threads_single\": %d, \"threads_streams\": %d, \"cpu_kernels\": \"%s\"}\n",
                   decode_tps, prefill_tps, bound_decode, streams, agg_tps, rss, dtype_s, bound_prefill, bw, peak,
                   p50 * 1e3, p99 * 1e3, load_tokens / load_dt, prompt_len, threads_single, threads_multi,
                   tg_cpu_kernels());
    }
    free(ttft);
    free(rts);
    free(ids);
    tg_engine_free(e);
    tg_tokenizer_free(tok);
    tg_model_free(model);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
