/*
 * gguf.c — a GPT-2 model written as GGUF v3, the file llama.cpp and Ollama
 * load (docs/interop.md), with llama.cpp's "gpt2" architecture names.
 *
 * The format (little-endian):
 *   "GGUF" | u32 version 3 | u64 tensor count | u64 key-value count
 *   key-values: string key, u32 value type, value (strings are u64 length +
 *     bytes; arrays are u32 element type, u64 count, elements)
 *   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (ne[0] the
 *     contiguous dimension), u32 ggml type, u64 offset into the data
 *   padding to general.alignment (32), then each tensor's data at its
 *     offset, each padded to the alignment.
 * A 2-D tensor of ne {in, out} is `out` rows of `in` values: PyTorch's
 * nn.Linear orientation. Hugging Face's Conv1D weights (ours) are stored
 * [in, out], so c_attn, c_proj and c_fc are transposed on the way out;
 * the embeddings ([V, C], [T, C]) already are rows of C.
 *
 * Types: F32; F16 (2-D weights and the token embedding as IEEE half,
 * rounded to nearest even; LayerNorm weights, biases and the position
 * embedding stay F32, as llama.cpp's own converter keeps them); Q8_0 (the
 * same tensors in ggml's block format: blocks of 32 values, an fp16 scale
 * d = max|x| / 127 then 32 int8 q = round(x / d); a tensor whose rows are
 * not a multiple of 32 falls back to F16).
 *
 * The tokenizer goes in as ggml's "gpt2" BPE: tokens in GPT-2's printable
 * alphabet (the form of vocab.json), their types (special tokens are
 * control tokens), merges by rank, pre-tokenizer "gpt-2", bos = eos =
 * <|endoftext|>, and for a chat model the ChatML template and <|im_end|>
 * as the end-of-turn token.
 *
 * Written through tg_atomic_file: a temporary name, fsync, rename; an
 * error removes the temporary. Tensors are written parameter by parameter
 * (all layers' qkv weights, then all layers' qkv biases, ...), so only one
 * parameter tensor is copied out of the model at a time. Not here: reading
 * GGUF (tests/test_gguf.c has a reader), other quantisations.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "tokenizer/gpt2_vocab.h"

#define GGUF_VERSION 3
#define ALIGN 32
enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9 };
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8 };
enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_UNUSED = 5 };
#define QK8_0 32

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* ---------------------------------------------------------------- numbers */

/* IEEE half of f, rounded to nearest even (overflow: infinity). */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) { /* a half subnormal (or zero): h * 2^-24 */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e), h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry moves into the exponent, as it should */
    return (uint16_t)(sign | h);
}

/* One row of n values in ggml type `type` into dst (row_bytes of it). */
static void encode_row(int type, const float *x, int64_t n, uint8_t *dst) {
    if (type == GGML_F32) {
        memcpy(dst, x, (size_t)n * 4);
    } else if (type == GGML_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = f32_to_f16(x[i]);
            dst[2 * i] = (uint8_t)h;
            dst[2 * i + 1] = (uint8_t)(h >> 8);
        }
    } else { /* Q8_0: ggml's block_q8_0 {fp16 d; int8 qs[32]} */
        for (int64_t b = 0; b < n / QK8_0; b++) {
            const float *v = x + b * QK8_0;
            float amax = 0;
            for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(v[j]));
            float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            uint8_t *blk = dst + b * (2 + QK8_0);
            uint16_t h = f32_to_f16(d);
            blk[0] = (uint8_t)h;
            blk[1] = (uint8_t)(h >> 8);
            for (int j = 0; j < QK8_0; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(v[j] * id);
        }
    }
}

static uint64_t row_bytes(int type, int64_t n) {
    return type == GGML_F32 ? (uint64_t)n * 4 : type == GGML_F16 ? (uint64_t)n * 2 : (uint64_t)(n / QK8_0) * (2 + QK8_0);
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    FILE *f;
    uint64_t pos;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->failed = errno ? errno : EIO;
    w->pos += n;
}
static void put_u32(writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(writer *w, uint64_t v) {
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}
static void put_str(writer *w, const char *s) {
    size_t n = strlen(s);
    put_u64(w, n);
    put(w, s, n);
}
static void put_pad(writer *w) {
    static const uint8_t zero[ALIGN] = {0};
    put(w, zero, (size_t)((ALIGN - w->pos % ALIGN) % ALIGN));
}
static void kv_str(writer *w, const char *k, const char *v) {
    put_str(w, k);
    put_u32(w, T_STRING);
    put_str(w, v);
}
static void kv_u32(writer *w, const char *k, uint32_t v) {
    put_str(w, k);
    put_u32(w, T_U32);
    put_u32(w, v);
}
static void kv_f32(writer *w, const char *k, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_str(w, k);
    put_u32(w, T_F32);
    put_u32(w, bits);
}
static void kv_bool(writer *w, const char *k, int v) {
    uint8_t b = v ? 1 : 0;
    put_str(w, k);
    put_u32(w, T_BOOL);
    put(w, &b, 1);
}
static void kv_str_array(writer *w, const char *k, char *const *v, int n) {
    put_str(w, k);
    put_u32(w, T_ARRAY);
    put_u32(w, T_STRING);
    put_u64(w, (uint64_t)n);
    for (int i = 0; i < n; i++) put_str(w, v[i]);
}

/* ---------------------------------------------------------------- tensors */

/* How each of the 16 parameter tensors (tg_params order) is written. */
static const struct {
    const char *name;  /* "%d" is the layer for per-layer tensors */
    int per_layer;
    int matrix;        /* a 2-D weight: F16/Q8_0 in those types */
    int transpose;     /* Conv1D [in, out] -> rows of `in` */
} kinds[TG_NUM_PARAM_TENSORS] = {
    {"token_embd.weight", 0, 1, 0},        {"position_embd.weight", 0, 0, 0},
    {"blk.%d.attn_norm.weight", 1, 0, 0},  {"blk.%d.attn_norm.bias", 1, 0, 0},
    {"blk.%d.attn_qkv.weight", 1, 1, 1},   {"blk.%d.attn_qkv.bias", 1, 0, 0},
    {"blk.%d.attn_output.weight", 1, 1, 1}, {"blk.%d.attn_output.bias", 1, 0, 0},
    {"blk.%d.ffn_norm.weight", 1, 0, 0},   {"blk.%d.ffn_norm.bias", 1, 0, 0},
    {"blk.%d.ffn_up.weight", 1, 1, 1},     {"blk.%d.ffn_up.bias", 1, 0, 0},
    {"blk.%d.ffn_down.weight", 1, 1, 1},   {"blk.%d.ffn_down.bias", 1, 0, 0},
    {"output_norm.weight", 0, 0, 0},       {"output_norm.bias", 0, 0, 0},
};

typedef struct {
    char name[48];
    int param, layer, ndim, type;
    int64_t ne[2];   /* ne[0] contiguous */
    uint64_t offset; /* in the data section */
} tensor_info;

/* ne of parameter p (one layer's slice), and the HF shape it comes from. */
static void param_shape(const tg_config *c, int p, int64_t ne[2], int *ndim) {
    int64_t C = c->n_embd;
    static const int64_t in_mul[] = {0, 0, 1, 1, 1, 3, 1, 1, 1, 1, 1, 4, 4, 1, 1, 1};
    static const int64_t out_mul[] = {0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0};
    if (p == 0 || p == 1) {
        ne[0] = C;
        ne[1] = p == 0 ? c->vocab_size : c->n_ctx;
        *ndim = 2;
    } else if (out_mul[p]) {
        ne[0] = in_mul[p] * C; /* in */
        ne[1] = out_mul[p] * C; /* out */
        *ndim = 2;
    } else {
        ne[0] = in_mul[p] * C;
        ne[1] = 1;
        *ndim = 1;
    }
}

/* The rows of one tensor: src is the parameter's (layer) slice in HF's
 * layout; rows are gathered (transposed) when needed, encoded, written. */
static void write_tensor(writer *w, const tensor_info *t, const float *src, int transpose, float *row, uint8_t *enc) {
    int64_t n0 = t->ne[0], n1 = t->ndim == 2 ? t->ne[1] : 1;
    uint64_t rb = row_bytes(t->type, n0);
    for (int64_t r = 0; r < n1 && !w->failed; r++) {
        const float *x = src + r * n0;
        if (transpose) { /* HF W[i][o] (in x out) -> row o of ne0 = in values */
            for (int64_t i = 0; i < n0; i++) row[i] = src[i * n1 + r];
            x = row;
        }
        encode_row(t->type, x, n0, enc);
        put(w, enc, rb);
    }
    put_pad(w);
}

/* ---------------------------------------------------------------- export */

int tg_gguf_export(tg_model *m, const tg_tokenizer *tok, tg_gguf_type type, const char *name, const char *path) {
    const tg_config *c = tg_model_config(m);
    if (type != TG_GGUF_F32 && type != TG_GGUF_F16 && type != TG_GGUF_Q8_0)
        return tg_error_set(TG_ERR_INPUT, "%s: unknown GGUF type %d", path, (int)type);
    /* Ids past the model's rows can never be produced or fed: allowed
     * only for special tokens (a byte-level model's tokenizer has chat
     * markers its 257 rows lack), which are left out. */
    int nt = tg_tokenizer_vocab_size(tok);
    for (int i = c->vocab_size; i < nt; i++) {
        size_t len = 0;
        const char *b = tg_tokenizer_token_bytes(tok, i, &len);
        char s[64];
        snprintf(s, sizeof s, "%.*s", (int)(len < 63 ? len : 63), b ? b : "");
        if (tg_tokenizer_token_id(tok, s) != i) /* not a special token */
            return tg_error_set(TG_ERR_INPUT, "%s: the tokenizer has %d tokens but the model only %d rows in wte", path,
                                nt, c->vocab_size);
    }
    const int L = c->n_layer;
    const int n_tensors = 4 + 12 * L;
    tensor_info *ti = calloc((size_t)n_tensors, sizeof *ti);
    size_t sizes[TG_NUM_PARAM_TENSORS], max_size = 0;
    tg_param_sizes(c, sizes);
    for (int p = 0; p < TG_NUM_PARAM_TENSORS; p++)
        if (sizes[p] > max_size) max_size = sizes[p];
    float *buf = malloc(max_size * sizeof *buf), *row = malloc((size_t)(4 * c->n_embd + 64) * sizeof *row);
    uint8_t *enc = malloc((size_t)(4 * c->n_embd + 64) * 4); /* the longest row: 4C values */
    tg_gpt2_vocab v = {0};
    int rc = TG_OK;
    if (!ti || !buf || !row || !enc) rc = tg_error_set(TG_ERR_RUNTIME, "%s: out of memory", path);
    if (rc == TG_OK) rc = tg_gpt2_vocab_init(&v, tok);

    /* The tensor list, parameter by parameter; data offsets follow. */
    int k = 0, fallback = 0;
    uint64_t off = 0;
    for (int p = 0; rc == TG_OK && p < TG_NUM_PARAM_TENSORS; p++) {
        for (int l = 0; l < (kinds[p].per_layer ? L : 1); l++, k++) {
            tensor_info *t = &ti[k];
            t->param = p;
            t->layer = l;
            snprintf(t->name, sizeof t->name, kinds[p].name, l);
            param_shape(c, p, t->ne, &t->ndim);
            t->type = GGML_F32;
            if (kinds[p].matrix && type == TG_GGUF_F16) t->type = GGML_F16;
            if (kinds[p].matrix && type == TG_GGUF_Q8_0) {
                t->type = t->ne[0] % QK8_0 == 0 ? GGML_Q8_0 : GGML_F16;
                fallback += t->type == GGML_F16;
            }
            t->offset = off;
            off += row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ndim == 2 ? t->ne[1] : 1);
            off += (ALIGN - off % ALIGN) % ALIGN;
        }
    }
    if (fallback) tg_warn("%s: %d tensors have rows not a multiple of 32: written as F16, not Q8_0", path, fallback);

    tg_atomic_file af = {0};
    if (rc == TG_OK) rc = tg_atomic_open(&af, path);
    writer w = {af.f, 0, 0};
    if (rc == TG_OK) {
        int32_t im_start = tg_tokenizer_token_id(tok, TG_TOKEN_IM_START), im_end = tg_tokenizer_token_id(tok, TG_TOKEN_IM_END);
        int chat = im_start >= 0 && im_end >= 0 && im_start < c->vocab_size && im_end < c->vocab_size;
        int n_kv = 19 + (type == TG_GGUF_Q8_0) + 2 * chat;
        put(&w, "GGUF", 4);
        put_u32(&w, GGUF_VERSION);
        put_u64(&w, (uint64_t)n_tensors);
        put_u64(&w, (uint64_t)n_kv);
        kv_str(&w, "general.architecture", "gpt2");
        kv_str(&w, "general.name", name && *name ? name : "truthgpt");
        kv_u32(&w, "general.file_type", type == TG_GGUF_F32 ? 0 : type == TG_GGUF_F16 ? 1 : 7);
        if (type == TG_GGUF_Q8_0) kv_u32(&w, "general.quantization_version", 2);
        kv_u32(&w, "general.alignment", ALIGN);
        kv_u32(&w, "gpt2.context_length", (uint32_t)c->n_ctx);
        kv_u32(&w, "gpt2.embedding_length", (uint32_t)c->n_embd);
        kv_u32(&w, "gpt2.feed_forward_length", (uint32_t)(4 * c->n_embd));
        kv_u32(&w, "gpt2.block_count", (uint32_t)L);
        kv_u32(&w, "gpt2.attention.head_count", (uint32_t)c->n_head);
        kv_f32(&w, "gpt2.attention.layer_norm_epsilon", c->ln_eps);
        kv_str(&w, "tokenizer.ggml.model", "gpt2");
        kv_str(&w, "tokenizer.ggml.pre", "gpt-2");
        /* tokens: the tokenizer's, then unused placeholders up to the model's rows */
        put_str(&w, "tokenizer.ggml.tokens");
        put_u32(&w, T_ARRAY);
        put_u32(&w, T_STRING);
        put_u64(&w, (uint64_t)c->vocab_size);
        for (int i = 0; i < c->vocab_size; i++) {
            char pad[32];
            snprintf(pad, sizeof pad, "<|unused_%d|>", i);
            put_str(&w, i < v.n ? v.tokens[i] : pad);
        }
        put_str(&w, "tokenizer.ggml.token_type");
        put_u32(&w, T_ARRAY);
        put_u32(&w, T_I32);
        put_u64(&w, (uint64_t)c->vocab_size);
        for (int i = 0; i < c->vocab_size; i++)
            put_u32(&w, i >= v.n ? TOK_UNUSED : v.special[i] ? TOK_CONTROL : TOK_NORMAL);
        kv_str_array(&w, "tokenizer.ggml.merges", v.merges, v.n_merges);
        kv_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)c->eos_id);
        kv_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
        kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
        kv_bool(&w, "tokenizer.ggml.add_eos_token", 0);
        if (chat) {
            kv_u32(&w, "tokenizer.ggml.eot_token_id", (uint32_t)im_end);
            kv_str(&w, "tokenizer.chat_template", CHATML_TEMPLATE);
        }
        for (int i = 0; i < n_tensors; i++) {
            put_str(&w, ti[i].name);
            put_u32(&w, (uint32_t)ti[i].ndim);
            for (int d = 0; d < ti[i].ndim; d++) put_u64(&w, (uint64_t)ti[i].ne[d]);
            put_u32(&w, (uint32_t)ti[i].type);
            put_u64(&w, ti[i].offset);
        }
        put_pad(&w);
        uint64_t data_start = w.pos;
        int cur = -1;
        for (int i = 0; i < n_tensors && !w.failed && rc == TG_OK; i++) {
            const tensor_info *t = &ti[i];
            if (t->param != cur) {
                rc = tg_model_copy_tensor_out(m, t->param, buf);
                cur = t->param;
            }
            if (w.pos - data_start != t->offset) { /* the offsets above and the bytes written must agree */
                rc = tg_error_set(TG_ERR_RUNTIME, "%s: internal error: tensor %s at %llu, expected %llu", path, t->name,
                                  (unsigned long long)(w.pos - data_start), (unsigned long long)t->offset);
                break;
            }
            size_t per_layer = kinds[t->param].per_layer ? sizes[t->param] / (size_t)L : 0;
            if (rc == TG_OK) write_tensor(&w, t, buf + (size_t)t->layer * per_layer, kinds[t->param].transpose, row, enc);
        }
        if (rc == TG_OK && w.failed)
            rc = tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", path, strerror(w.failed));
        if (rc == TG_OK) rc = tg_atomic_commit(&af);
        else tg_atomic_abort(&af);
    }
    tg_gpt2_vocab_free(&v);
    free(ti);
    free(buf);
    free(row);
    free(enc);
    return rc;
}
