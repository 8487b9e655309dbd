/*
 * loader.c — micro-batches of the pretraining stream
 * (docs/architecture.md "Training contract" data order) and the keyed
 * permutation used for shuffling. See loader.h for the formula. The loader
 * does no I/O of its own beyond the shards' mmap: a micro-batch copies B*T+1
 * tokens (O(B*T), negligible next to a step).
 */
#include "train/loader.h"

#include <dirent.h>
#include <string.h>

#include "core/core.h"

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int64_t tg_permute_index(int64_t i, int64_t n, uint64_t key) {
    TG_ASSERT(n > 0 && i >= 0 && i < n);
    if (n == 1) return 0;
    /* A balanced Feistel network on 2*half bits is a bijection of
     * [0, 4^half) with 4^half < 4n; walking the cycle until the value
     * lands below n restricts it to a bijection of [0, n) (about 2
     * rounds-trips on average, at most a few). */
    int bits = 0;
    while (bits < 63 && (UINT64_C(1) << bits) < (uint64_t)n) bits++;
    int half = (bits + 1) / 2;
    uint64_t mask = (UINT64_C(1) << half) - 1;
    uint64_t x = (uint64_t)i;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 6; round++) {
            uint64_t f = mix64(r ^ mix64(key + (uint64_t)round)) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half) | r;
    } while (x >= (uint64_t)n);
    return (int64_t)x;
}

int tg_loader_open(tg_loader *l, const char *path, const char *prefix, int B, int T, int slots, int shuffle,
                   uint64_t seed) {
    memset(l, 0, sizeof *l);
    if (B <= 0 || T <= 0 || slots <= 0) return tg_error_set(TG_ERR_INPUT, "loader: batch %d x %d must be positive", B, T);
    TG_TRY(tg_token_stream_open(&l->ts, path, prefix));
    l->B = B;
    l->T = T;
    l->slots = slots;
    l->shuffle = shuffle;
    l->seed = seed;
    int64_t bt = (int64_t)B * T;
    l->n_windows = l->ts.n_tokens / bt > 0 ? l->ts.n_tokens / bt : 1;
    size_t per = (size_t)bt;
    l->tokens = tg_alloc((size_t)slots * (per + 1) * sizeof(int32_t), "loader tokens");
    l->inputs = tg_alloc((size_t)slots * per * sizeof(int32_t), "loader inputs");
    l->targets = tg_alloc((size_t)slots * per * sizeof(int32_t), "loader targets");
    if (!l->tokens || !l->inputs || !l->targets) {
        tg_loader_close(l);
        return TG_ERR_RUNTIME;
    }
    return TG_OK;
}

void tg_loader_close(tg_loader *l) {
    tg_token_stream_close(&l->ts);
    tg_free(l->tokens);
    tg_free(l->inputs);
    tg_free(l->targets);
    tg_free(l->segments);
    memset(l, 0, sizeof *l);
}

int tg_loader_doc_attention(tg_loader *l) {
    if (l->segments) return TG_OK;
    l->segments = tg_alloc((size_t)l->slots * (size_t)l->B * (size_t)l->T * sizeof(int32_t), "loader segments");
    return l->segments ? TG_OK : TG_ERR_RUNTIME;
}

void tg_doc_segments(int32_t *seg, const int32_t *inputs, int B, int T, int eot) {
    for (int b = 0; b < B; b++) {
        const int32_t *in = inputs + (size_t)b * T;
        int32_t *s = seg + (size_t)b * T, id = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && in[t] == eot) id++;
            s[t] = id;
        }
    }
}

int64_t tg_loader_window_start(const tg_loader *l, int64_t k) {
    int64_t bt = (int64_t)l->B * l->T;
    if (!l->shuffle) {
        /* k*B*T mod n without overflow for any k a run can reach. */
        int64_t n = l->ts.n_tokens;
        return (int64_t)(((unsigned __int128)k * (unsigned __int128)bt) % (unsigned __int128)n);
    }
    int64_t e = k / l->n_windows, j = k % l->n_windows;
    uint64_t key = mix64(l->seed ^ mix64((uint64_t)e + 0x5851f42d4c957f2dull));
    return tg_permute_index(j, l->n_windows, key) * bt;
}

int tg_loader_next(void *ctx, int64_t k, tg_batch *out) {
    tg_loader *l = ctx;
    int64_t bt = (int64_t)l->B * l->T;
    int slot = (int)((k / (l->ranks > 1 ? l->ranks : 1)) % l->slots);
    int32_t *tok = l->tokens + (size_t)slot * (size_t)(bt + 1);
    int32_t *in = l->inputs + (size_t)slot * (size_t)bt, *tg = l->targets + (size_t)slot * (size_t)bt;
    tg_token_stream_read(&l->ts, tg_loader_window_start(l, k), tok, bt + 1);
    /* Rows are consecutive in the window, so inputs are tok[0..BT) and
     * targets tok[1..BT]: row b's targets are its inputs shifted by one. */
    memcpy(in, tok, (size_t)bt * sizeof *in);
    memcpy(tg, tok + 1, (size_t)bt * sizeof *tg);
    memset(out, 0, sizeof *out);
    out->inputs = in;
    out->targets = tg;
    if (l->segments) {
        int32_t *seg = l->segments + (size_t)slot * (size_t)bt;
        tg_doc_segments(seg, in, l->B, l->T, l->ts.eot_id);
        out->segments = seg;
    }
    out->B = l->B;
    out->T = l->T;
    return TG_OK;
}

int tg_shards_with_prefix(const char *dir, const char *prefix) {
    DIR *d = tg_path_is_dir(dir) ? opendir(dir) : NULL;
    if (!d) return 0;
    size_t pl = strlen(prefix);
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > pl + 5 && strncmp(e->d_name, prefix, pl) == 0 && e->d_name[pl] == '-' &&
                strcmp(e->d_name + n - 4, ".tok") == 0;
    }
    closedir(d);
    return found;
}
