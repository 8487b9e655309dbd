/*
 * metrics.c — the server's counters and gauges, written out in the
 * Prometheus text exposition format (version 0.0.4) at GET /metrics.
 *
 * Counters are lock-free atomics bumped by HTTP threads and the scheduler;
 * the page is built on demand. Cost: O(endpoints x status codes) per scrape.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

static const char *const ep_names[TG_EP_COUNT] = {"/v1/chat/completions", "/v1/completions", "/v1/models",
                                                  "/health", "/metrics", "/", "/v1/search", "other"};
static const int codes[] = {200, 400, 401, 404, 405, 413, 429, 500, 503};
#define N_CODES (int)(sizeof codes / sizeof codes[0])

static atomic_llong requests[TG_EP_COUNT][N_CODES + 1]; /* last column: any other status */
static atomic_llong prompt_tokens, completion_tokens, cancelled;
static atomic_int queued, running;
static atomic_llong ttft_count;
static atomic_llong steps, step_rows;
static _Atomic double ttft_sum, decode_rate;

void tg_metrics_request(tg_endpoint ep, int status) {
    if ((int)ep < 0 || ep >= TG_EP_COUNT) ep = TG_EP_OTHER;
    int k = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == status) k = i;
    atomic_fetch_add(&requests[ep][k], 1);
}

void tg_metrics_tokens(int64_t p, int64_t c) {
    atomic_fetch_add(&prompt_tokens, p);
    atomic_fetch_add(&completion_tokens, c);
}

void tg_metrics_queue(int q, int r) {
    atomic_store(&queued, q);
    atomic_store(&running, r);
}

void tg_metrics_decode(double tok_per_s) { atomic_store(&decode_rate, tok_per_s); }

void tg_metrics_ttft(double s) {
    /* a CAS loop because C11 has no atomic add for double */
    double old = atomic_load(&ttft_sum);
    while (!atomic_compare_exchange_weak(&ttft_sum, &old, old + s)) {
    }
    atomic_fetch_add(&ttft_count, 1);
}

void tg_metrics_cancelled(void) { atomic_fetch_add(&cancelled, 1); }

void tg_metrics_step(int rows) {
    atomic_fetch_add(&steps, 1);
    atomic_fetch_add(&step_rows, rows);
}

char *tg_metrics_text(void) {
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
#define EMIT(...)                                                                  \
    do {                                                                           \
        int w_ = snprintf(out + len, cap - len, __VA_ARGS__);                      \
        if (w_ > 0 && (size_t)w_ < cap - len) len += (size_t)w_;                   \
    } while (0)
/* One metric with a single value: its HELP and TYPE lines, then NAME VALUE. */
#define METRIC(name, type, help, fmt, value) \
    EMIT("# HELP " name " " help "\n# TYPE " name " " type "\n" name " " fmt "\n", value)
    EMIT("# HELP truthgpt_requests_total HTTP requests answered, by endpoint and status code.\n");
    EMIT("# TYPE truthgpt_requests_total counter\n");
    for (int e = 0; e < TG_EP_COUNT; e++)
        for (int k = 0; k <= N_CODES; k++) {
            long long v = atomic_load(&requests[e][k]);
            if (!v) continue;
            if (k < N_CODES) EMIT("truthgpt_requests_total{endpoint=\"%s\",code=\"%d\"} %lld\n", ep_names[e], codes[k], v);
            else EMIT("truthgpt_requests_total{endpoint=\"%s\",code=\"other\"} %lld\n", ep_names[e], v);
        }
    METRIC("truthgpt_prompt_tokens_total", "counter", "Prompt tokens of accepted generation requests.",
           "%lld", (long long)atomic_load(&prompt_tokens));
    METRIC("truthgpt_completion_tokens_total", "counter", "Tokens generated.",
           "%lld", (long long)atomic_load(&completion_tokens));
    METRIC("truthgpt_requests_cancelled_total", "counter", "Generations cancelled because the client went away.",
           "%lld", (long long)atomic_load(&cancelled));
    METRIC("truthgpt_queue_depth", "gauge", "Requests waiting for a decoding slot.", "%d", atomic_load(&queued));
    METRIC("truthgpt_running_requests", "gauge", "Requests in the running batch.", "%d", atomic_load(&running));
    METRIC("truthgpt_decode_tokens_per_second", "gauge", "Tokens generated per second over the last few seconds.",
           "%.3f", atomic_load(&decode_rate));
    METRIC("truthgpt_decode_steps_total", "counter", "Engine steps (each decodes every running request once).",
           "%lld", (long long)atomic_load(&steps));
    METRIC("truthgpt_batch_rows_total", "counter", "Requests decoded, summed over steps (over steps: the mean batch size).",
           "%lld", (long long)atomic_load(&step_rows));
    EMIT("# HELP truthgpt_time_to_first_token_seconds Time from a request's arrival to its first token.\n");
    EMIT("# TYPE truthgpt_time_to_first_token_seconds summary\n");
    EMIT("truthgpt_time_to_first_token_seconds_sum %.6f\n", atomic_load(&ttft_sum));
    EMIT("truthgpt_time_to_first_token_seconds_count %lld\n", (long long)atomic_load(&ttft_count));
#undef METRIC
#undef EMIT
    return out;
}
