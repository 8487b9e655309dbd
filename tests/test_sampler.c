/*
 * test_sampler.c — the sampler on hand-made logits: greedy (ties to the
 * lowest id), temperature, top-k (ties by id), top-p, min-p, frequency and
 * presence penalties (OpenAI's formula), the empirical frequencies of
 * 40,000 draws against the distribution, seeded reproducibility, and the
 * log-probabilities with their top alternatives.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "infer/engine.h"
#include "test_util.h"

#define V 6

static void set_logits(float *l, const double *p, int n) {
    for (int i = 0; i < n; i++) l[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

/* The distribution the sampler would draw from for these settings. */
static void probs_for(const tg_sampling_params *p, const float *logits_in, const int32_t *counts_in, float *probs) {
    tg_sampler s;
    int32_t counts[V] = {0};
    float l[V];
    int32_t isc[V];
    memcpy(l, logits_in, sizeof l);
    tg_sampler_reset(&s, p, counts, V);
    if (counts_in) memcpy(counts, counts_in, sizeof counts);
    tg_sampler_probs(&s, l, probs, isc);
}

static void expect(const char *what, const float *got, const double *want) {
    float w[V];
    for (int i = 0; i < V; i++) w[i] = (float)want[i];
    /* float softmax and renormalisation: 1e-6 absolute */
    tg_check_close(what, got, w, V, 0, 1e-6);
}

int main(void) {
    tg_sampling_params p = tg_sampling_default_params();
    float probs[V];

    /* greedy: argmax, ties to the lowest id */
    {
        float l[V] = {1, 3, 2, 0, 3, -1};
        p.temperature = 0;
        probs_for(&p, l, NULL, probs);
        double want[V] = {0, 1, 0, 0, 0, 0};
        expect("greedy", probs, want);
        p.temperature = 1;
    }
    /* temperature: softmax(l / T) */
    {
        float l[V] = {1, 3, 2, 0, 3, -1};
        p.temperature = 0.5f;
        probs_for(&p, l, NULL, probs);
        double z = 0, want[V];
        for (int i = 0; i < V; i++) z += exp(l[i] / 0.5);
        for (int i = 0; i < V; i++) want[i] = exp(l[i] / 0.5) / z;
        expect("temperature 0.5", probs, want);
        p.temperature = 1;
    }
    /* top-k: the two 3s tie; k = 3 adds the 2 */
    {
        float l[V] = {1, 3, 2, 0, 3, -1};
        p.top_k = 2;
        probs_for(&p, l, NULL, probs);
        double want2[V] = {0, 0.5, 0, 0, 0.5, 0};
        expect("top_k 2", probs, want2);
        p.top_k = 3;
        probs_for(&p, l, NULL, probs);
        double z = 2 * exp(3) + exp(2);
        double want3[V] = {0, exp(3) / z, exp(2) / z, 0, exp(3) / z, 0};
        expect("top_k 3", probs, want3);
        /* ties at the k-th value: the lower id wins */
        float t[V] = {0, 1, 1, 1, -5, -5};
        p.top_k = 2;
        probs_for(&p, t, NULL, probs);
        double wantt[V] = {0, 0.5, 0.5, 0, 0, 0};
        expect("top_k ties", probs, wantt);
        p.top_k = 0;
    }
    /* top-p over p = [0.5, 0.3, 0.15, 0.05, 0, 0] (shuffled ids) */
    {
        double base[V] = {0.15, 0.5, 0, 0.05, 0.3, 0};
        float l[V];
        set_logits(l, base, V);
        p.top_p = 0.75f;
        probs_for(&p, l, NULL, probs);
        double w1[V] = {0, 0.625, 0, 0, 0.375, 0};
        expect("top_p 0.75", probs, w1);
        p.top_p = 0.85f;
        probs_for(&p, l, NULL, probs);
        double w2[V] = {0.15 / 0.95, 0.5 / 0.95, 0, 0, 0.3 / 0.95, 0};
        expect("top_p 0.85", probs, w2);
        p.top_p = 0.4f;
        probs_for(&p, l, NULL, probs);
        double w3[V] = {0, 1, 0, 0, 0, 0};
        expect("top_p 0.4", probs, w3);
        /* top-k then top-p on the renormalised top-k set: k=2 -> {0.625, 0.375}, p=0.6 -> first only */
        p.top_k = 2;
        p.top_p = 0.6f;
        probs_for(&p, l, NULL, probs);
        expect("top_k 2 + top_p 0.6", probs, w3);
        p.top_k = 0;
        p.top_p = 1;
        /* min-p 0.25: drop p < 0.125 */
        p.min_p = 0.25f;
        probs_for(&p, l, NULL, probs);
        double w4[V] = {0.15 / 0.95, 0.5 / 0.95, 0, 0, 0.3 / 0.95, 0};
        expect("min_p 0.25", probs, w4);
        p.min_p = 0;
    }
    /* penalties: logit[j] -= f * count[j] + pres * (count[j] > 0) */
    {
        float l[V] = {2, 1, 0.5f, 0, -1, 1};
        int32_t counts[V] = {2, 0, 1, 0, 0, 5};
        p.frequency_penalty = 0.5f;
        p.presence_penalty = 1.0f;
        probs_for(&p, l, counts, probs);
        double adj[V] = {2 - 1 - 1, 1, 0.5 - 0.5 - 1, 0, -1, 1 - 2.5 - 1}, z = 0, want[V];
        for (int i = 0; i < V; i++) z += exp(adj[i]);
        for (int i = 0; i < V; i++) want[i] = exp(adj[i]) / z;
        expect("penalties", probs, want);
        p.frequency_penalty = p.presence_penalty = 0;
    }
    /* draws follow the distribution; same seed, same draws */
    {
        double base[V] = {0.15, 0.5, 0, 0.05, 0.3, 0};
        float l0[V];
        set_logits(l0, base, V);
        tg_sampler a, b, c;
        int32_t ca[V], cb[V], cc[V];
        float scratch[2 * V];
        int32_t isc[V];
        p.seed = 42;
        tg_sampler_reset(&a, &p, ca, V);
        tg_sampler_reset(&b, &p, cb, V);
        p.seed = 43;
        tg_sampler_reset(&c, &p, cc, V);
        int hist[V] = {0}, same = 1, differ = 0;
        const int N = 40000;
        for (int i = 0; i < N; i++) {
            float la[V], lb[V], lc[V], lp;
            memcpy(la, l0, sizeof la);
            memcpy(lb, l0, sizeof lb);
            memcpy(lc, l0, sizeof lc);
            int32_t ta = tg_sampler_sample(&a, la, scratch, isc, 0, &lp, 0, NULL, NULL);
            int32_t tb = tg_sampler_sample(&b, lb, scratch, isc, 0, &lp, 0, NULL, NULL);
            int32_t tc = tg_sampler_sample(&c, lc, scratch, isc, 0, &lp, 0, NULL, NULL);
            hist[ta]++;
            same &= ta == tb;
            differ += ta != tc;
        }
        CHECK(same);
        CHECK(differ > N / 4);
        float freq[V];
        for (int i = 0; i < V; i++) freq[i] = (float)hist[i] / N;
        float want[V];
        for (int i = 0; i < V; i++) want[i] = (float)base[i];
        /* 40,000 draws: standard error <= 0.0025; 0.01 is 4 sigma */
        tg_check_close("draw frequencies", freq, want, V, 0, 0.01);
        CHECK_EQ_INT(hist[2] + hist[5], 0); /* zero-probability ids never drawn */
        CHECK_EQ_INT(ca[1], hist[1]);       /* counts record the draws (for penalties) */
    }
    /* logprobs: of softmax(raw logits), whatever the temperature/penalties;
     * top alternatives best first, ties to the lower id */
    {
        float l[V] = {1, 3, 2, 0, 3, -1};
        double z = 0;
        for (int i = 0; i < V; i++) z += exp(l[i]);
        tg_sampler s;
        int32_t counts[V];
        float scratch[2 * V];
        int32_t isc[V], top[4];
        float toplp[4], lp = 0;
        p.temperature = 0;
        p.presence_penalty = 10; /* the penalty changes the choice, not the logprobs */
        tg_sampler_reset(&s, &p, counts, V);
        float lc[V];
        memcpy(lc, l, sizeof lc);
        int32_t t1 = tg_sampler_sample(&s, lc, scratch, isc, 1, &lp, 4, top, toplp);
        CHECK_EQ_INT(t1, 1);
        CHECK(fabs(lp - (3 - log(z))) < 1e-5);
        CHECK(top[0] == 1 && top[1] == 4 && top[2] == 2 && top[3] == 0);
        CHECK(fabs(toplp[2] - (2 - log(z))) < 1e-5);
        memcpy(lc, l, sizeof lc);
        int32_t t2 = tg_sampler_sample(&s, lc, scratch, isc, 1, &lp, 4, top, toplp);
        CHECK_EQ_INT(t2, 4); /* id 1 penalised by presence */
        CHECK(fabs(lp - (3 - log(z))) < 1e-5);
        p.presence_penalty = 0;
        p.temperature = 1;
    }
    return test_summary("test_sampler");
}
