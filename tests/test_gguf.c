/*
 * test_gguf.c — tg_gguf_export read back by a GGUF reader written here from
 * the format's description (docs/interop.md), independent of the writer:
 * header (magic, version 3, counts), every key-value with its type and
 * value (the gpt2 hyperparameters, the tokenizer's tokens and merges equal
 * to the fixture's vocab.json and merges.txt, token types, bos/eos, the
 * ChatML template only for a chat vocabulary), tensor infos (llama.cpp's
 * gpt2 names, ne, types, offsets aligned and in bounds), and the tensor
 * data against the model's parameters: F32 bit for bit (Conv1D weights
 * transposed), F16 within half an ulp, Q8_0 block by block (scale =
 * fp16(max|x| / 127), each value within half a step). Also: a failed export
 * leaves nothing behind, and a second export replaces the first whole.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "test_util.h"

#define FX "tests/fixtures/hf/gpt2_f32"
static char g_dir[] = "/tmp/tg_test_gguf_XXXXXX";

/* ---------------------------------------------------------------- reader */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} rd;

static uint64_t rd_n(rd *r, int n) {
    if (r->bad || r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}
/* A string: a pointer into the file and its length. */
static const char *rd_str(rd *r, size_t *len) {
    uint64_t n = rd_n(r, 8);
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = 1;
        *len = 0;
        return "";
    }
    const char *s = (const char *)r->p;
    r->p += n;
    *len = (size_t)n;
    return s;
}

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 };
static const int scalar_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    char key[64];
    int type, elem_type;
    uint64_t u;          /* integer, bool and float bits */
    const char *s;       /* string value */
    size_t slen;
    uint64_t count;      /* array length */
    const uint8_t *data; /* array elements */
} kv;

typedef struct {
    char name[64];
    uint32_t ndim, type;
    uint64_t ne[4], offset;
} tinfo;

typedef struct {
    uint8_t *file;
    size_t size;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    kv *kvs;
    tinfo *ts;
    const uint8_t *data;
} gguf;

static const kv *find_kv(const gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}
static const tinfo *find_t(const gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->ts[i].name, name)) return &g->ts[i];
    return NULL;
}

/* Skips one value of type t (for arrays of strings). */
static void skip_value(rd *r, int t) {
    size_t len;
    if (t == T_STRING) rd_str(r, &len);
    else if (t >= 0 && t <= T_F64 && scalar_size[t]) r->p += scalar_size[t];
    else r->bad = 1;
    if (r->p > r->end) r->bad = 1;
}

static int gguf_read(gguf *g, const char *path) {
    memset(g, 0, sizeof *g);
    char *buf;
    if (tg_read_file(path, &buf, &g->size) != TG_OK) return 0;
    g->file = (uint8_t *)buf;
    rd r = {g->file, g->file + g->size, 0};
    if (g->size < 24 || memcmp(g->file, "GGUF", 4) != 0) return 0;
    r.p += 4;
    g->version = (uint32_t)rd_n(&r, 4);
    g->n_tensors = rd_n(&r, 8);
    g->n_kv = rd_n(&r, 8);
    if (g->n_kv > 1000 || g->n_tensors > 100000) return 0;
    g->kvs = calloc(g->n_kv + 1, sizeof *g->kvs);
    g->ts = calloc(g->n_tensors + 1, sizeof *g->ts);
    for (uint64_t i = 0; i < g->n_kv && !r.bad; i++) {
        kv *k = &g->kvs[i];
        size_t len;
        const char *key = rd_str(&r, &len);
        snprintf(k->key, sizeof k->key, "%.*s", (int)len, key);
        k->type = (int)rd_n(&r, 4);
        if (k->type == T_STRING) {
            k->s = rd_str(&r, &k->slen);
        } else if (k->type == T_ARRAY) {
            k->elem_type = (int)rd_n(&r, 4);
            k->count = rd_n(&r, 8);
            k->data = r.p;
            for (uint64_t j = 0; j < k->count && !r.bad; j++) skip_value(&r, k->elem_type);
        } else if (k->type >= 0 && k->type <= T_F64 && scalar_size[k->type]) {
            k->u = rd_n(&r, scalar_size[k->type]);
        } else {
            r.bad = 1;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors && !r.bad; i++) {
        tinfo *t = &g->ts[i];
        size_t len;
        const char *name = rd_str(&r, &len);
        snprintf(t->name, sizeof t->name, "%.*s", (int)len, name);
        t->ndim = (uint32_t)rd_n(&r, 4);
        if (t->ndim < 1 || t->ndim > 4) r.bad = 1;
        for (uint32_t d = 0; d < t->ndim && !r.bad; d++) t->ne[d] = rd_n(&r, 8);
        t->type = (uint32_t)rd_n(&r, 4);
        t->offset = rd_n(&r, 8);
    }
    if (r.bad) return 0;
    size_t at = (size_t)(r.p - g->file);
    at += (32 - at % 32) % 32;
    g->data = g->file + at;
    return at <= g->size;
}

static void gguf_free(gguf *g) {
    free(g->file);
    free(g->kvs);
    free(g->ts);
}

static uint64_t tensor_bytes(const tinfo *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->ndim; d++) n *= t->ne[d];
    return t->type == 0 ? 4 * n : t->type == 1 ? 2 * n : n / 32 * 34;
}

static float half_to_float(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

/* ---------------------------------------------------------------- checks */

static void check_u32(const gguf *g, const char *key, uint64_t want) {
    const kv *k = find_kv(g, key);
    CHECK(k != NULL);
    if (!k) return;
    CHECK_EQ_INT(k->type, T_U32);
    if (k->u != want) fprintf(stderr, "%s = %llu, expected %llu\n", key, (unsigned long long)k->u, (unsigned long long)want);
    CHECK(k->u == want);
}
static void check_str(const gguf *g, const char *key, const char *want) {
    const kv *k = find_kv(g, key);
    CHECK(k != NULL);
    if (!k) return;
    CHECK_EQ_INT(k->type, T_STRING);
    CHECK(k->slen == strlen(want) && memcmp(k->s, want, k->slen) == 0);
}

/* The tokens equal vocab.json's keys by id, the merges merges.txt's lines. */
static void check_vocab(const gguf *g, int V) {
    const kv *toks = find_kv(g, "tokenizer.ggml.tokens"), *types = find_kv(g, "tokenizer.ggml.token_type");
    const kv *merges = find_kv(g, "tokenizer.ggml.merges");
    CHECK(toks && types && merges);
    if (!toks || !types || !merges) return;
    CHECK_EQ_INT(toks->elem_type, T_STRING);
    CHECK_EQ_INT(toks->count, V);
    CHECK_EQ_INT(types->elem_type, T_I32);
    CHECK_EQ_INT(types->count, V);
    json_error_t e;
    json_t *vocab = json_load_file(FX "/vocab.json", 0, &e);
    CHECK(vocab != NULL);
    const char **by_id = calloc((size_t)V, sizeof *by_id);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (id >= 0 && id < V) by_id[id] = key;
    }
    rd r = {toks->data, g->file + g->size, 0};
    int same = 0;
    for (int i = 0; i < V; i++) {
        size_t len;
        const char *s = rd_str(&r, &len);
        same += by_id[i] && strlen(by_id[i]) == len && memcmp(by_id[i], s, len) == 0;
        int32_t type = (int32_t)(types->data[4 * i] | types->data[4 * i + 1] << 8);
        CHECK_EQ_INT(type, i == V - 1 ? 3 : 1); /* <|endoftext|> is a control token */
    }
    CHECK_EQ_INT(same, V);
    free(by_id);
    json_decref(vocab);
    char *mt;
    size_t mlen;
    CHECK_EQ_INT(tg_read_file(FX "/merges.txt", &mt, &mlen), TG_OK);
    rd m = {merges->data, g->file + g->size, 0};
    char *line = strchr(mt, '\n') + 1; /* after "#version" */
    uint64_t n = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        size_t len;
        const char *s = rd_str(&m, &len);
        CHECK(len == ll && memcmp(s, line, ll) == 0);
        n++;
        line = nl ? nl + 1 : line + ll;
    }
    CHECK_EQ_INT(merges->count, n);
    free(mt);
}

/* One tensor's data against the HF-layout source src (in x out when
 * transposed; else rows of ne0). */
static void check_data(const gguf *g, const tinfo *t, const float *src, int transpose, const char *what) {
    int64_t n0 = (int64_t)t->ne[0], n1 = t->ndim == 2 ? (int64_t)t->ne[1] : 1;
    const uint8_t *d = g->data + t->offset;
    float *want = malloc((size_t)(n0 * n1) * sizeof *want), *got = malloc((size_t)(n0 * n1) * sizeof *got);
    for (int64_t r = 0; r < n1; r++)
        for (int64_t i = 0; i < n0; i++) want[r * n0 + i] = transpose ? src[i * n1 + r] : src[r * n0 + i];
    int bad_scale = 0;
    for (int64_t i = 0; i < n0 * n1; i++) {
        if (t->type == 0) memcpy(&got[i], d + 4 * i, 4);
        else if (t->type == 1) got[i] = half_to_float((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
    }
    if (t->type == 8) {
        for (int64_t b = 0; b < n0 * n1 / 32; b++) {
            const uint8_t *blk = d + 34 * b;
            float s = half_to_float((uint16_t)(blk[0] | blk[1] << 8)), amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(want[32 * b + j]));
            /* the scale is amax/127 rounded to fp16 (relative 2^-11) */
            if (fabsf(s - amax / 127) > amax / 127 / 2048 + 1e-12f) bad_scale++;
            for (int j = 0; j < 32; j++) got[32 * b + j] = s * (float)(int8_t)blk[2 + j];
        }
        CHECK_EQ_INT(bad_scale, 0);
    }
    if (t->type == 0) {
        CHECK(memcmp(got, want, (size_t)(n0 * n1) * 4) == 0);
    } else if (t->type == 1) {
        /* half: 11 significant bits, so within 2^-11 relative (subnormals: 2^-25 absolute) */
        tg_check_close(what, got, want, (size_t)(n0 * n1), 1.0 / 2048, 3e-8);
    } else {
        /* within half a quantisation step of each block (<= amax/254), plus the scale's rounding */
        int far = 0;
        for (int64_t b = 0; b < n0 * n1 / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(want[32 * b + j]));
            for (int j = 0; j < 32; j++)
                far += fabsf(got[32 * b + j] - want[32 * b + j]) > amax / 254 * 1.01f + amax / 2048;
        }
        if (far) fprintf(stderr, "%s: %d q8_0 values more than half a step off\n", what, far);
        CHECK_EQ_INT(far, 0);
    }
    free(want);
    free(got);
}

static void test_export(tg_model *m, const tg_tokenizer *tok, tg_gguf_type type, int want_type) {
    char path[256];
    snprintf(path, sizeof path, "%s/m%d.gguf", g_dir, (int)type);
    CHECK_EQ_INT(tg_gguf_export(m, tok, type, "fixture", path), TG_OK);
    gguf g;
    int ok = gguf_read(&g, path);
    CHECK(ok);
    if (!ok) {
        gguf_free(&g);
        return;
    }
    const tg_config *c = tg_model_config(m);
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size;
    CHECK_EQ_INT(g.version, 3);
    CHECK_EQ_INT(g.n_tensors, 4 + 12 * L);
    check_str(&g, "general.architecture", "gpt2");
    check_str(&g, "general.name", "fixture");
    check_u32(&g, "general.file_type", type == TG_GGUF_F32 ? 0 : type == TG_GGUF_F16 ? 1 : 7);
    check_u32(&g, "general.alignment", 32);
    check_u32(&g, "gpt2.context_length", (uint64_t)c->n_ctx);
    check_u32(&g, "gpt2.embedding_length", (uint64_t)C);
    check_u32(&g, "gpt2.feed_forward_length", 4 * (uint64_t)C);
    check_u32(&g, "gpt2.block_count", (uint64_t)L);
    check_u32(&g, "gpt2.attention.head_count", (uint64_t)c->n_head);
    const kv *eps = find_kv(&g, "gpt2.attention.layer_norm_epsilon");
    CHECK(eps && eps->type == T_F32);
    if (eps) {
        float e;
        uint32_t bits = (uint32_t)eps->u;
        memcpy(&e, &bits, 4);
        CHECK(e == c->ln_eps);
    }
    check_str(&g, "tokenizer.ggml.model", "gpt2");
    check_str(&g, "tokenizer.ggml.pre", "gpt-2");
    check_u32(&g, "tokenizer.ggml.bos_token_id", (uint64_t)c->eos_id);
    check_u32(&g, "tokenizer.ggml.eos_token_id", (uint64_t)c->eos_id);
    CHECK(find_kv(&g, "tokenizer.chat_template") == NULL); /* no chat tokens in this vocabulary */
    check_vocab(&g, V);

    /* Tensors: names, shapes, types, offsets; then the data. */
    size_t sizes[TG_NUM_PARAM_TENSORS];
    tg_param_sizes(c, sizes);
    static const char *const names[TG_NUM_PARAM_TENSORS] = {
        "token_embd.weight", "position_embd.weight", "attn_norm.weight", "attn_norm.bias",
        "attn_qkv.weight",   "attn_qkv.bias",        "attn_output.weight", "attn_output.bias",
        "ffn_norm.weight",   "ffn_norm.bias",        "ffn_up.weight",      "ffn_up.bias",
        "ffn_down.weight",   "ffn_down.bias",        "output_norm.weight", "output_norm.bias"};
    static const int in_mul[] = {1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 4, 4, 1, 1, 1};
    static const int out_mul[] = {0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0};
    uint64_t data_size = g.size - (uint64_t)(g.data - g.file);
    for (int p = 0; p < TG_NUM_PARAM_TENSORS; p++) {
        float *buf = malloc(sizes[p] * sizeof *buf);
        CHECK_EQ_INT(tg_model_copy_tensor_out(m, p, buf), TG_OK);
        int per_layer = p >= 2 && p <= 13;
        for (int l = 0; l < (per_layer ? L : 1); l++) {
            char name[64];
            if (per_layer) snprintf(name, sizeof name, "blk.%d.%s", l, names[p]);
            else snprintf(name, sizeof name, "%s", names[p]);
            const tinfo *t = find_t(&g, name);
            CHECK(t != NULL);
            if (!t) continue;
            int matrix = p == 0 || out_mul[p];
            CHECK_EQ_INT(t->ndim, p <= 1 || out_mul[p] ? 2 : 1);
            CHECK_EQ_INT(t->ne[0], (uint64_t)(in_mul[p] * C));
            if (p == 0) CHECK_EQ_INT(t->ne[1], (uint64_t)V);
            if (p == 1) CHECK_EQ_INT(t->ne[1], (uint64_t)c->n_ctx);
            if (out_mul[p]) CHECK_EQ_INT(t->ne[1], (uint64_t)(out_mul[p] * C));
            CHECK_EQ_INT(t->type, matrix ? (uint32_t)want_type : 0u);
            CHECK_EQ_INT(t->offset % 32, 0);
            CHECK(t->offset + tensor_bytes(t) <= data_size);
            if (t->offset + tensor_bytes(t) > data_size) continue;
            size_t slice = per_layer ? sizes[p] / (size_t)L : 0;
            check_data(&g, t, buf + (size_t)l * slice, out_mul[p] != 0, name);
        }
        free(buf);
    }
    /* no two tensors overlap */
    for (uint64_t i = 0; i < g.n_tensors; i++)
        for (uint64_t j = i + 1; j < g.n_tensors; j++) {
            uint64_t a0 = g.ts[i].offset, a1 = a0 + tensor_bytes(&g.ts[i]);
            uint64_t b0 = g.ts[j].offset, b1 = b0 + tensor_bytes(&g.ts[j]);
            CHECK(a1 <= b0 || b1 <= a0);
        }
    gguf_free(&g);
}

static void test_chat_and_atomic(tg_model *m, tg_tokenizer *tok) {
    /* A vocabulary with chat markers needs rows for them: a 283-row model. */
    tg_config c = *tg_model_config(m);
    c.vocab_size += 2;
    tg_model *m2 = NULL;
    CHECK_EQ_INT(tg_model_init(&m2, &c), TG_OK);
    tg_model_init_weights(m2, 1);
    CHECK_EQ_INT(tg_tokenizer_add_special(tok, TG_TOKEN_IM_START, NULL), TG_OK);
    CHECK_EQ_INT(tg_tokenizer_add_special(tok, TG_TOKEN_IM_END, NULL), TG_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/chat.gguf", g_dir);
    /* the 281-row model cannot take a 283-token vocabulary... unless the extra ids are special: they are dropped */
    CHECK_EQ_INT(tg_gguf_export(m, tok, TG_GGUF_F32, "x", path), TG_OK);
    gguf g;
    CHECK(gguf_read(&g, path));
    CHECK(find_kv(&g, "tokenizer.chat_template") == NULL); /* the markers have no rows: no chat */
    gguf_free(&g);
    CHECK_EQ_INT(tg_gguf_export(m2, tok, TG_GGUF_Q8_0, "x", path), TG_OK); /* replaces the file */
    CHECK(gguf_read(&g, path));
    const kv *tmpl = find_kv(&g, "tokenizer.chat_template");
    CHECK(tmpl && tmpl->slen > 0 && memmem(tmpl->s, tmpl->slen, "<|im_start|>", 12) != NULL);
    check_u32(&g, "tokenizer.ggml.eot_token_id", (uint64_t)tg_tokenizer_token_id(tok, TG_TOKEN_IM_END));
    check_u32(&g, "general.file_type", 7);
    check_u32(&g, "general.quantization_version", 2);
    gguf_free(&g);
    /* a failed export (no such directory) leaves nothing behind, TG_ERR_RUNTIME or INPUT naming the path */
    snprintf(path, sizeof path, "%s/missing/x.gguf", g_dir);
    tg_error_clear();
    CHECK(tg_gguf_export(m2, tok, TG_GGUF_F16, "x", path) != TG_OK);
    CHECK(strstr(tg_error_message(), "missing") != NULL);
    CHECK(!tg_path_exists(path));
    tg_model_free(m2);
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL);
    tg_model *m = NULL;
    tg_tokenizer *tok = NULL;
    CHECK_EQ_INT(tg_model_load(&m, FX), TG_OK);
    CHECK_EQ_INT(tg_tokenizer_load(&tok, FX), TG_OK);
    if (m && tok) {
        test_export(m, tok, TG_GGUF_F32, 0);
        test_export(m, tok, TG_GGUF_F16, 1);
        test_export(m, tok, TG_GGUF_Q8_0, 8);
        test_chat_and_atomic(m, tok);
    }
    tg_tokenizer_free(tok);
    tg_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("test_gguf");
}
