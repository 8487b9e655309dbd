/*
 * sft.c — chat fine-tuning data and model edits (see sft.h): parses OpenAI
 * chat JSONL with jansson, renders ChatML through tg_chat_encode (the
 * builder sample/chat and the server use) with per-token loss flags, packs
 * conversations into rows with segment ids, serves micro-batches to the
 * trainer, and grows the embedding for new chat tokens.
 *
 * Memory: every conversation's tokens are held (4 + 1 bytes a token), the
 * batch buffers (A x B x T) are allocated once in tg_sft_batcher_init; the
 * batch function allocates nothing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "train/sft.h"

/* --------------------------------------------------------------- tokens */

static int reserve(tg_sft_data *d, int64_t more_tokens) {
    if (d->n_tokens + more_tokens > d->cap_tokens) {
        int64_t nc = d->cap_tokens ? d->cap_tokens : 1 << 14;
        while (nc < d->n_tokens + more_tokens) nc *= 2;
        int32_t *ni = realloc(d->ids, (size_t)nc * sizeof *ni);
        if (ni) d->ids = ni;
        uint8_t *nn = realloc(d->counted, (size_t)nc);
        if (nn) d->counted = nn;
        if (!ni || !nn) return tg_error_set(TG_ERR_RUNTIME, "out of memory holding %lld chat tokens", (long long)nc);
        d->cap_tokens = nc;
    }
    return TG_OK;
}

static int push(tg_sft_data *d, const int32_t *ids, size_t n, int counted) {
    TG_TRY(reserve(d, (int64_t)n));
    memcpy(d->ids + d->n_tokens, ids, n * sizeof *ids);
    memset(d->counted + d->n_tokens, counted, n);
    d->n_tokens += (int64_t)n;
    if (counted) d->n_counted += (int64_t)n;
    return TG_OK;
}

/* ------------------------------------------------------------- parsing */

static const char *const roles[] = {"system", "user", "assistant"};

int tg_sft_add_json(tg_sft_data *d, const char *json, size_t len, const tg_sft_vocab *v, const char *where,
                    int64_t line) {
    long long ln = (long long)line;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return tg_error_set(TG_ERR_INPUT, "%s:%lld: not valid JSON: %s", where, ln, jerr.text);
    int rc = TG_OK;
    json_t *msgs = json_is_object(root) ? json_object_get(root, "messages") : NULL;
    size_t nm = json_is_array(msgs) ? json_array_size(msgs) : 0;
    if (!json_is_object(root)) rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: a line must be a JSON object", where, ln);
    else if (!json_is_array(msgs))
        rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: no \"messages\" array", where, ln);
    else if (nm == 0) rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: empty messages", where, ln);
    /* validate the whole conversation before adding any token of it */
    int last_assistant = -1;
    for (size_t i = 0; rc == TG_OK && i < nm; i++) {
        json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu] is not an object", where, ln, i);
            break;
        }
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        json_t *weight = json_object_get(m, "weight");
        if (!json_is_string(role)) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu].role missing or not a string", where, ln, i);
            break;
        }
        const char *r = json_string_value(role);
        int ri = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(r, roles[k]) == 0) ri = k;
        if (ri < 0) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu]: unknown role \"%.40s\" (system, user or assistant)",
                              where, ln, i, r);
            break;
        }
        if (!json_is_string(content)) {
            rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu].content must be a string", where, ln, i);
            break;
        }
        if (weight) {
            double w = json_is_number(weight) ? json_number_value(weight) : -1;
            if (w != 0 && w != 1) {
                rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu].weight must be 0 or 1", where, ln, i);
                break;
            }
            if (ri != 2) {
                rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: messages[%zu]: weight is only allowed on assistant messages",
                                  where, ln, i);
                break;
            }
        }
        if (ri == 2) last_assistant = (int)i;
    }
    if (rc == TG_OK && last_assistant < 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: no assistant message (nothing to learn)", where, ln);
    if (rc != TG_OK) {
        json_decref(root);
        return rc;
    }
    if (d->n_convs + 1 >= d->cap_convs) {
        int64_t nc = d->cap_convs ? d->cap_convs * 2 : 1024;
        int64_t *ns = realloc(d->start, (size_t)(nc + 1) * sizeof *ns);
        if (ns) d->start = ns;
        int64_t *nr = realloc(d->reply, (size_t)nc * sizeof *nr);
        if (nr) d->reply = nr;
        int64_t *ne = realloc(d->reply_end, (size_t)nc * sizeof *ne);
        if (ne) d->reply_end = ne;
        if (!ns || !nr || !ne) {
            json_decref(root);
            return tg_error_set(TG_ERR_RUNTIME, "out of memory holding %lld conversations", (long long)nc);
        }
        d->cap_convs = nc;
    }
    int64_t c = d->n_convs;
    /* The ids come from tg_chat_encode, the builder sample/chat and the server
     * use; the spans say where each content lies, so the loss weights follow. */
    tg_chat_message *cm = calloc(nm, sizeof *cm);
    tg_chat_span *spans = calloc(nm, sizeof *spans);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (v->im_start < 0 || v->im_end < 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: the vocabulary has no chat tokens", where, ln);
    else if (!cm || !spans) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory holding a conversation of %zu messages", nm);
    for (size_t i = 0; rc == TG_OK && i < nm; i++) {
        json_t *m = json_array_get(msgs, i);
        cm[i] = (tg_chat_message){json_string_value(json_object_get(m, "role")),
                                  json_string_value(json_object_get(m, "content"))};
    }
    if (rc == TG_OK) {
        rc = tg_chat_encode(v->tok, v->im_start, v->im_end, cm, (int)nm, false, &ids, &n_ids, spans);
        if (rc != TG_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", tg_error_message());
            rc = tg_error_set(rc, "%s:%lld: %s", where, ln, msg);
        }
    }
    int64_t base = d->n_tokens;
    if (rc == TG_OK) rc = push(d, ids, n_ids, 0);
    for (size_t i = 0; rc == TG_OK && i < nm; i++) {
        json_t *m = json_array_get(msgs, i), *weight = json_object_get(m, "weight");
        int assistant = strcmp(cm[i].role, "assistant") == 0;
        if (assistant && !(weight && json_number_value(weight) == 0)) {
            /* the content and the <|im_end|> after it: the model must learn to stop */
            size_t from = spans[i].begin, to = spans[i].end + 1;
            memset(d->counted + base + (int64_t)from, 1, to - from);
            d->n_counted += (int64_t)(to - from);
        }
        if ((int)i == last_assistant) {
            d->reply[c] = base + (int64_t)spans[i].begin;
            d->reply_end[c] = base + (int64_t)spans[i].end;
        }
    }
    free(ids);
    free(spans);
    free(cm);
    json_decref(root);
    if (rc != TG_OK) return rc;
    d->start[c] = base;
    d->n_convs++;
    d->start[d->n_convs] = d->n_tokens;
    return TG_OK;
}

int tg_sft_load(tg_sft_data *d, const char *path, const tg_sft_vocab *v) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t lineno = 0;
    int rc = TG_OK;
    while (rc == TG_OK && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t k = (size_t)n;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t'))
            k--;
        if (k == 0) continue;
        rc = tg_sft_add_json(d, line, k, v, path, lineno);
    }
    if (rc == TG_OK && ferror(f)) rc = tg_error_set(TG_ERR_INPUT, "%s: read error", path);
    free(line);
    fclose(f);
    if (rc == TG_OK && d->n_convs == 0) rc = tg_error_set(TG_ERR_INPUT, "%s: no conversations", path);
    if (rc == TG_OK && d->n_counted == 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no assistant tokens to learn (every assistant message has weight 0)", path);
    if (rc != TG_OK) tg_sft_data_free(d);
    return rc;
}

void tg_sft_data_free(tg_sft_data *d) {
    free(d->ids);
    free(d->counted);
    free(d->start);
    free(d->reply);
    free(d->reply_end);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------- batching */

static void shuffle(int64_t *a, int64_t n, uint64_t seed) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)(tg_rng_next(&r) % (uint64_t)(i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int tg_sft_batcher_init(tg_sft_batcher *b, const tg_sft_data *d, int B, int T, int A, bool pack, bool shuffle_rows,
                        uint64_t seed) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || T <= 0 || A <= 0) return tg_error_set(TG_ERR_INPUT, "finetune: batch, context and accum must be positive");
    b->data = d;
    b->B = B, b->T = T, b->A = A;
    b->pack = pack;
    b->shuffle = shuffle_rows;
    b->seed = seed;
    b->perm_epoch = -1;
    int64_t nc = d->n_convs;
    size_t abt = (size_t)A * B * T;
    b->order = tg_alloc((size_t)nc * sizeof(int64_t), "chat order");
    b->wstart = tg_alloc((size_t)(nc + 1) * sizeof(int64_t), "chat rows");
    b->perm = tg_alloc((size_t)nc * sizeof(int64_t), "chat row order");
    b->inputs = tg_alloc(abt * sizeof(int32_t), "batch inputs");
    b->targets = tg_alloc(abt * sizeof(int32_t), "batch targets");
    b->segments = tg_alloc(abt * sizeof(int32_t), "batch segments");
    b->weights = tg_alloc(abt * sizeof(float), "batch weights");
    b->row = tg_alloc((size_t)(T + 1) * sizeof(int32_t), "row");
    b->rowc = tg_alloc((size_t)(T + 1), "row");
    b->rowseg = tg_alloc((size_t)(T + 1) * sizeof(int32_t), "row");
    if (!b->order || !b->wstart || !b->perm || !b->inputs || !b->targets || !b->segments || !b->weights || !b->row ||
        !b->rowc || !b->rowseg) {
        tg_sft_batcher_free(b);
        return TG_ERR_RUNTIME;
    }
    for (int64_t i = 0; i < nc; i++) b->order[i] = i;
    /* Training packs in a seeded order so rows mix conversations from all
     * over the file; evaluation keeps file order. */
    if (shuffle_rows) shuffle(b->order, nc, seed ^ 0x7061636bull);
    int64_t nw = 0, used = 0;
    for (int64_t i = 0; i < nc; i++) {
        int64_t c = b->order[i];
        int64_t len = d->start[c + 1] - d->start[c];
        if (len > T + 1) {
            b->n_truncated++;
            len = T + 1;
        }
        if (i == 0 || !pack || used + len > T + 1) { /* a new row */
            b->wstart[nw++] = i;
            used = 0;
        }
        used += len;
    }
    b->wstart[nw] = nc;
    b->n_windows = nw;
    return TG_OK;
}

void tg_sft_batcher_free(tg_sft_batcher *b) {
    tg_free(b->order);
    tg_free(b->wstart);
    tg_free(b->perm);
    tg_free(b->inputs);
    tg_free(b->targets);
    tg_free(b->segments);
    tg_free(b->weights);
    tg_free(b->row);
    tg_free(b->rowc);
    tg_free(b->rowseg);
    memset(b, 0, sizeof *b);
}

int64_t tg_sft_batches_per_epoch(const tg_sft_batcher *b) { return (b->n_windows + b->B - 1) / b->B; }

/* Lays row w (or padding when w < 0) out as T inputs, targets, weights and
 * segment ids. Target t is token t+1 of the row; its weight is that token's
 * flag, so a row's first token and every token of a user turn weigh 0. */
static void fill_row(tg_sft_batcher *b, int64_t w, int32_t *in, int32_t *tg, float *wt, int32_t *seg) {
    const tg_sft_data *d = b->data;
    int T = b->T, used = 0, s = 0;
    if (w >= 0) {
        for (int64_t i = b->wstart[w]; i < b->wstart[w + 1]; i++, s++) {
            int64_t c = b->order[i];
            int64_t len = d->start[c + 1] - d->start[c];
            if (len > T + 1 - used) len = T + 1 - used;
            memcpy(b->row + used, d->ids + d->start[c], (size_t)len * sizeof(int32_t));
            memcpy(b->rowc + used, d->counted + d->start[c], (size_t)len);
            for (int64_t j = 0; j < len; j++) b->rowseg[used + j] = s;
            used += (int)len;
        }
    }
    for (int j = used; j <= T; j++) { /* padding: id 0, its own segment, never counted */
        b->row[j] = 0;
        b->rowc[j] = 0;
        b->rowseg[j] = s;
    }
    for (int t = 0; t < T; t++) {
        in[t] = b->row[t];
        tg[t] = b->row[t + 1];
        wt[t] = b->rowc[t + 1] ? 1.0f : 0.0f;
        seg[t] = b->rowseg[t];
    }
}

int tg_sft_next_batch(void *ctx, int64_t k, tg_batch *out) {
    tg_sft_batcher *b = ctx;
    int B = b->B, T = b->T;
    size_t off = (size_t)(k % b->A) * B * T; /* A live buffers: the trainer holds a step's slices at once */
    for (int r = 0; r < B; r++) {
        int64_t g = k * B + r, w;
        if (b->shuffle) {
            int64_t epoch = g / b->n_windows;
            if (epoch != b->perm_epoch) { /* a fresh seeded row order each epoch, a function of k alone */
                for (int64_t i = 0; i < b->n_windows; i++) b->perm[i] = i;
                shuffle(b->perm, b->n_windows, b->seed + 0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1));
                b->perm_epoch = epoch;
            }
            w = b->perm[g % b->n_windows];
        } else {
            w = g < b->n_windows ? g : -1;
        }
        size_t o = off + (size_t)r * T;
        fill_row(b, w, b->inputs + o, b->targets + o, b->weights + o, b->segments + o);
    }
    out->inputs = b->inputs + off;
    out->targets = b->targets + off;
    out->weights = b->weights + off;
    out->segments = b->segments + off;
    out->B = B;
    out->T = T;
    return TG_OK;
}

/* ------------------------------------------------------------ the model */

int tg_sft_grow_vocab(tg_model **mp, int new_vocab, bool mean, uint64_t seed) {
    tg_model *old = *mp;
    tg_config cfg = *tg_model_config(old);
    int V0 = cfg.vocab_size, C = cfg.n_embd;
    if (new_vocab < V0) return tg_error_set(TG_ERR_INPUT, "cannot shrink the vocabulary from %d to %d", V0, new_vocab);
    if (new_vocab == V0) return TG_OK;
    cfg.vocab_size = new_vocab;
    TG_TRY(tg_config_validate(&cfg));
    tg_model *m;
    TG_TRY(tg_model_init(&m, &cfg));
    /* through host copies of both models' parameter memory (tensors in
     * tg_params order; only wte's row count differs) */
    float *src = tg_alloc(tg_model_num_params(old) * sizeof(float), "parameters (host copy)");
    float *dst = tg_alloc(tg_model_num_params(m) * sizeof(float), "parameters (host copy)");
    if (!src || !dst) {
        tg_free(src);
        tg_free(dst);
        tg_model_free(m);
        return TG_ERR_RUNTIME;
    }
    memset(dst, 0, tg_model_num_params(m) * sizeof(float));
    tg_model_params_to_host(old, src);
    size_t sz_old[TG_NUM_PARAM_TENSORS], sz_new[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(tg_model_config(old), sz_old);
    tg_param_sizes(&cfg, sz_new);
    size_t off_old = sz_old[0], off_new = sz_new[0];
    for (int i = 1; i < TG_NUM_PARAM_TENSORS; i++) {
        TG_ASSERT(sz_old[i] == sz_new[i]);
        memcpy(dst + off_new, src + off_old, sz_old[i] * sizeof(float));
        off_old += sz_old[i];
        off_new += sz_new[i];
    }
    memcpy(dst, src, (size_t)V0 * C * sizeof(float));
    float *wte = dst;
    if (mean) { /* a new token starts as the average token: no logit jumps at step 0 */
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int v = 0; v < V0; v++) s += wte[(size_t)v * C + c];
            for (int v = V0; v < new_vocab; v++) wte[(size_t)v * C + c] = (float)(s / V0);
        }
    } else { /* GPT-2's initialisation, N(0, 0.02) */
        tg_rng r;
        tg_rng_seed(&r, seed ^ 0x67726f77ull);
        for (size_t i = (size_t)V0 * C; i < (size_t)new_vocab * C; i++) wte[i] = 0.02f * tg_rng_normal(&r);
    }
    tg_model_params_from_host(m, dst);
    tg_free(src);
    tg_free(dst);
    tg_model_free(old);
    *mp = m;
    return TG_OK;
}
