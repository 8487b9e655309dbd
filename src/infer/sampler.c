/*
 * sampler.c — picks the next token from a row of logits
 * (docs/architecture.md "Inference and chat"), and the streaming-text helper
 * that holds back incomplete UTF-8 and possible stop-string starts.
 *
 * Order of the transforms (the Hugging Face / OpenAI order):
 *   1. penalties on the raw logits, OpenAI semantics over the tokens this
 *      request has generated so far (not the prompt):
 *        logit[j] -= frequency_penalty * count[j] + presence_penalty * (count[j] > 0)
 *   2. temperature == 0: argmax (ties: lowest id), nothing else applies;
 *      otherwise logits / temperature, softmax
 *   3. top-k (ties at the k-th value: lower ids first), then top-p (the
 *      smallest set of most likely tokens whose mass reaches top_p, over the
 *      renormalised top-k set), then min-p (drop p < min_p * p_max)
 *   4. renormalise and draw with the request's own RNG (double precision
 *      uniform from tg_rng_next).
 * Log-probabilities (OpenAI's logprobs) are those of softmax(raw logits):
 * the model's own distribution at temperature 1, before penalties and
 * filtering, so they do not depend on the sampling settings (vLLM's default
 * choice too); the greedy and sampled paths report the same numbers.
 *
 * Cost: O(V) per token without top-p; top-p sorts only the candidates above
 * a threshold found by O(V) passes (usually a few hundred ids), never all V.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/engine.h"

tg_sampling_params tg_sampling_default_params(void) {
    tg_sampling_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 0;
    p.max_tokens = 256;
    for (int i = 0; i < TG_MAX_STOP_IDS; i++) p.stop_ids[i] = -1;
    return p;
}

const char *tg_finish_reason_str(tg_finish_reason r) {
    switch (r) {
    case TG_FINISH_STOP: return "stop";
    case TG_FINISH_LENGTH: return "length";
    case TG_FINISH_CANCELLED: return "cancelled";
    default: return "";
    }
}

void tg_sampler_reset(tg_sampler *s, const tg_sampling_params *p, int32_t *counts, int V) {
    s->p = *p;
    s->counts = counts;
    s->V = V;
    tg_rng_seed(&s->rng, p->seed);
    if (counts) memset(counts, 0, (size_t)V * sizeof *counts);
}

/* "a ranks before b": larger value, then lower id. */
static inline int ranks_before(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

/* The n best (value, id) pairs of v[0..V) into ids (best first), using a
 * min-heap of size n: O(V log n), and O(V) in practice since most values
 * lose against the heap's root at once. */
static int top_n(const float *v, int V, int n, int32_t *ids) {
    if (n > V) n = V;
    if (n <= 0) return 0;
    int h = 0; /* heap of ids, root = the worst kept */
    for (int32_t i = 0; i < V; i++) {
        if (h < n) {
            int c = h++;
            ids[c] = i;
            while (c > 0) { /* sift up: parent must be worse than child */
                int par = (c - 1) / 2;
                if (ranks_before(v[ids[par]], ids[par], v[ids[c]], ids[c])) {
                    int32_t t = ids[par];
                    ids[par] = ids[c];
                    ids[c] = t;
                    c = par;
                } else {
                    break;
                }
            }
        } else if (ranks_before(v[i], i, v[ids[0]], ids[0])) {
            ids[0] = i;
            int c = 0;
            for (;;) { /* sift down */
                int l = 2 * c + 1, r = l + 1, w = c;
                if (l < h && ranks_before(v[ids[w]], ids[w], v[ids[l]], ids[l])) w = l;
                if (r < h && ranks_before(v[ids[w]], ids[w], v[ids[r]], ids[r])) w = r;
                if (w == c) break;
                int32_t t = ids[w];
                ids[w] = ids[c];
                ids[c] = t;
                c = w;
            }
        }
    }
    /* heap -> sorted best first: repeatedly move the worst to the end */
    for (int end = h - 1; end > 0; end--) {
        int32_t t = ids[0];
        ids[0] = ids[end];
        ids[end] = t;
        int c = 0;
        for (;;) {
            int l = 2 * c + 1, r = l + 1, w = c;
            if (l < end && ranks_before(v[ids[w]], ids[w], v[ids[l]], ids[l])) w = l;
            if (r < end && ranks_before(v[ids[w]], ids[w], v[ids[r]], ids[r])) w = r;
            if (w == c) break;
            int32_t u = ids[w];
            ids[w] = ids[c];
            ids[c] = u;
            c = w;
        }
    }
    return h;
}

/* qsort has no context argument: the values being sorted, per thread */
static _Thread_local const float *tl_sort_vals;
static int cmp_desc(const void *a, const void *b) {
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    float va = tl_sort_vals[ia], vb = tl_sort_vals[ib];
    if (ranks_before(va, ia, vb, ib)) return -1;
    if (ranks_before(vb, ib, va, ia)) return 1;
    return 0;
}

static void apply_penalties(tg_sampler *s, float *logits) {
    float f = s->p.frequency_penalty, pr = s->p.presence_penalty;
    if ((f == 0.0f && pr == 0.0f) || !s->counts) return;
    for (int j = 0; j < s->V; j++)
        if (s->counts[j] > 0) logits[j] -= f * (float)s->counts[j] + pr;
}

static int32_t argmax(const float *v, int V) {
    int32_t best = 0;
    for (int32_t j = 1; j < V; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

/* Turns logits (after penalties) into the final distribution in probs:
 * temperature, softmax, top-k, top-p, min-p, renormalised. iscratch holds V
 * ints. Returns the number of ids left with p > 0. temperature must be > 0. */
static int filtered_probs(tg_sampler *s, const float *logits, float *probs, int32_t *iscratch) {
    const int V = s->V;
    const float invT = 1.0f / s->p.temperature;
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = fmaxf(mx, logits[j]);
    double sum = 0;
    for (int j = 0; j < V; j++) {
        float e = expf((logits[j] - mx) * invT);
        probs[j] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < V; j++) probs[j] *= inv;
    int alive = V;
    /* top-k: keep the k best (ties: lower id) */
    if (s->p.top_k > 0 && s->p.top_k < V) {
        int k = top_n(probs, V, s->p.top_k, iscratch);
        double ks = 0;
        for (int i = 0; i < k; i++) ks += probs[iscratch[i]];
        /* probabilities are >= 0: a sign flip marks the kept ids in place */
        for (int i = 0; i < k; i++) probs[iscratch[i]] = -probs[iscratch[i]];
        for (int j = 0; j < V; j++) probs[j] = probs[j] < 0 ? (float)(-probs[j] / ks) : 0.0f;
        alive = k;
    }
    /* top-p: the nucleus is a prefix of the ids sorted by probability; find a
     * threshold c whose set {p >= c} already has mass >= top_p, then sort only
     * that set. */
    if (s->p.top_p < 1.0f && s->p.top_p > 0.0f) {
        float pmax = 0;
        for (int j = 0; j < V; j++) pmax = fmaxf(pmax, probs[j]);
        float c = pmax / 64.0f;
        int n = 0;
        for (int iter = 0; iter < 40; iter++) {
            double mass = 0;
            n = 0;
            for (int j = 0; j < V; j++)
                if (probs[j] >= c && probs[j] > 0) {
                    mass += probs[j];
                    iscratch[n++] = j;
                }
            if (mass >= s->p.top_p || c == 0.0f) break;
            c = c / 64.0f;
            if (c < 1e-38f) c = 0.0f;
        }
        tl_sort_vals = probs;
        qsort(iscratch, (size_t)n, sizeof *iscratch, cmp_desc);
        double cum = 0;
        int keep_n = n;
        for (int i = 0; i < n; i++) {
            cum += probs[iscratch[i]];
            if (cum >= s->p.top_p) {
                keep_n = i + 1;
                break;
            }
        }
        /* zero all, then restore the kept ones (renormalised) */
        double ks = 0;
        for (int i = 0; i < keep_n; i++) ks += probs[iscratch[i]];
        for (int i = 0; i < keep_n; i++) probs[iscratch[i]] = -probs[iscratch[i]];
        for (int j = 0; j < V; j++) probs[j] = probs[j] < 0 ? (float)(-probs[j] / ks) : 0.0f;
        alive = keep_n;
    }
    if (s->p.min_p > 0.0f) {
        float pmax = 0;
        for (int j = 0; j < V; j++) pmax = fmaxf(pmax, probs[j]);
        float cut = s->p.min_p * pmax;
        double ks = 0;
        alive = 0;
        for (int j = 0; j < V; j++) {
            if (probs[j] < cut) probs[j] = 0.0f;
            if (probs[j] > 0) {
                ks += probs[j];
                alive++;
            }
        }
        for (int j = 0; j < V; j++) probs[j] = (float)(probs[j] / ks);
    }
    return alive;
}

int tg_sampler_probs(tg_sampler *s, float *logits, float *probs, int32_t *iscratch) {
    apply_penalties(s, logits);
    if (s->p.temperature <= 0.0f) {
        memset(probs, 0, (size_t)s->V * sizeof *probs);
        probs[argmax(logits, s->V)] = 1.0f;
        return 1;
    }
    return filtered_probs(s, logits, probs, iscratch);
}

int32_t tg_sampler_sample(tg_sampler *s, float *logits, float *scratch, int32_t *iscratch, int want_logprobs,
                          float *logprob, int n_top, int32_t *top_ids, float *top_lp) {
    const int V = s->V;
    float lse = 0;
    if (want_logprobs) {
        /* log-softmax of the raw logits, before anything changes them */
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) mx = fmaxf(mx, logits[j]);
        double sum = 0;
        for (int j = 0; j < V; j++) sum += exp((double)(logits[j] - mx));
        lse = mx + (float)log(sum);
        if (n_top > 0) {
            int got = top_n(logits, V, n_top, top_ids);
            for (int i = 0; i < got; i++) top_lp[i] = logits[top_ids[i]] - lse;
        }
        memcpy(scratch + V, logits, (size_t)V * sizeof *logits); /* raw copy for the chosen token's logprob */
    }
    apply_penalties(s, logits);
    int32_t tok;
    if (s->p.temperature <= 0.0f) {
        tok = argmax(logits, V);
    } else {
        float *probs = scratch;
        filtered_probs(s, logits, probs, iscratch);
        double u = (double)(tg_rng_next(&s->rng) >> 11) * (1.0 / 9007199254740992.0);
        double cum = 0;
        tok = -1;
        int32_t last = 0;
        for (int32_t j = 0; j < V; j++) {
            if (probs[j] <= 0) continue;
            last = j;
            cum += probs[j];
            if (u < cum) {
                tok = j;
                break;
            }
        }
        if (tok < 0) tok = last; /* u fell in the rounding slack of the sum */
    }
    if (want_logprobs) *logprob = scratch[V + tok] - lse;
    if (s->counts) s->counts[tok]++;
    return tok;
}

/* ------------------------------------------------------------ stream text */

/* Copies b[0..n) to out, replacing every byte that is not part of a valid
 * UTF-8 sequence with U+FFFD (tg_utf8_sanitize), so events always carry
 * valid UTF-8 (JSON needs it). Returns the bytes written (at most 3n, capped
 * at cap). */
static int utf8_sanitize(const unsigned char *b, int n, char *out, int cap) {
    if (n <= 0 || cap <= 0) return 0;
    return (int)tg_utf8_sanitize((const char *)b, (size_t)n, out, (size_t)cap, NULL);
}

int tg_stream_text_push(tg_stream_text *st, const char *bytes, int n, char *out, int out_cap, int *emit_len) {
    *emit_len = 0;
    if (n > st->cap - st->len) { /* cannot happen with sane tokens; release what is held first */
        *emit_len = utf8_sanitize((const unsigned char *)st->buf, st->len, out, out_cap);
        st->len = 0;
        if (n > st->cap) n = st->cap;
    }
    memcpy(st->buf + st->len, bytes, (size_t)n);
    st->len += n;
    /* the earliest complete stop string ends the text */
    int best = -1;
    for (int i = 0; i < st->n_stop; i++) {
        const char *p = memmem(st->buf, (size_t)st->len, st->stops[i], (size_t)st->stop_len[i]);
        if (p && (best < 0 || p - st->buf < best)) best = (int)(p - st->buf);
    }
    if (best >= 0) {
        *emit_len += utf8_sanitize((const unsigned char *)st->buf, best, out + *emit_len, out_cap - *emit_len);
        st->len = 0;
        return 1;
    }
    /* hold the longest tail that could still grow into a stop string */
    int hold = 0;
    for (int i = 0; i < st->n_stop; i++) {
        int max = st->stop_len[i] - 1 < st->len ? st->stop_len[i] - 1 : st->len;
        for (int h = max; h > hold; h--)
            if (!memcmp(st->buf + st->len - h, st->stops[i], (size_t)h)) {
                hold = h;
                break;
            }
    }
    int u = (int)tg_utf8_incomplete_tail((const uint8_t *)st->buf, (size_t)st->len);
    if (u > hold) hold = u;
    int safe = st->len - hold;
    *emit_len += utf8_sanitize((const unsigned char *)st->buf, safe, out + *emit_len, out_cap - *emit_len);
    memmove(st->buf, st->buf + safe, (size_t)hold);
    st->len = hold;
    return 0;
}

int tg_stream_text_flush(tg_stream_text *st, char *out, int out_cap) {
    int n = utf8_sanitize((const unsigned char *)st->buf, st->len, out, out_cap);
    st->len = 0;
    return n;
}
