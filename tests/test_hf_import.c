/*
 * test_hf_import.c — loading Hugging Face GPT-2 directories (docs/interop.md)
 * through the public tg_model_load: the three hub-style fixtures of
 * tests/fixtures/hf (tests/ref/gen_hf_fixtures.py) load to the same
 * parameters (F16/BF16 within their rounding of the F32 ones); a tied
 * lm_head.weight passes and an untied one is refused; tensors that are not
 * GPT-2's (another head, a layer past n_layer) are refused by name; the
 * config.json fields truthgpt cannot honour are refused naming the field;
 * the tokenizer loads from each of the three file styles to the same ids;
 * our logits on the fixture's prompt equal PyTorch's (1e-5).
 * End-to-end numbers against PyTorch: tests/e2e_hf_import.sh.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "model/safetensors.h"
#include "test_util.h"

#define FX "tests/fixtures/hf"
static char g_dir[] = "/tmp/tg_test_hf_XXXXXX";

/* Every parameter of a loaded model, copied out in tg_params order. */
static float *params_of(tg_model *m, size_t *n) {
    size_t sizes[TG_NUM_PARAM_TENSORS], total = 0;
    tg_param_sizes(tg_model_config(m), sizes);
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) total += sizes[i];
    float *out = malloc(total * sizeof *out);
    size_t off = 0;
    for (int i = 0; i < TG_NUM_PARAM_TENSORS; i++) {
        CHECK_EQ_INT(tg_model_copy_tensor_out(m, i, out + off), TG_OK);
        off += sizes[i];
    }
    *n = total;
    return out;
}

static void test_fixtures_load(void) {
    tg_model *m32 = NULL, *m16 = NULL, *mb16 = NULL;
    CHECK_EQ_INT(tg_model_load(&m32, FX "/gpt2_f32"), TG_OK);
    CHECK_EQ_INT(tg_model_load(&m16, FX "/gpt2_f16"), TG_OK);
    CHECK_EQ_INT(tg_model_load(&mb16, FX "/gpt2_bf16"), TG_OK);
    if (!m32 || !m16 || !mb16) goto done;
    const tg_config *c = tg_model_config(m32);
    CHECK_EQ_INT(c->n_layer, 2);
    CHECK_EQ_INT(c->n_head, 4);
    CHECK_EQ_INT(c->n_embd, 32);
    CHECK_EQ_INT(c->n_ctx, 32);
    CHECK_EQ_INT(c->vocab_size, 281);
    CHECK_EQ_INT(c->eos_id, 280);
    size_t n, n16, nb;
    float *a = params_of(m32, &n), *b = params_of(m16, &n16), *d = params_of(mb16, &nb);
    CHECK_EQ_INT(n16, n);
    CHECK_EQ_INT(nb, n);
    /* The F16/BF16 files hold the F32 weights rounded to nearest: within
     * half an ulp of their formats (2^-11, 2^-8 relative; absolute floor
     * for values in F16's subnormal range). */
    tg_check_close("f16 vs f32 params", b, a, n, 1.0 / 2048, 6e-8);
    tg_check_close("bf16 vs f32 params", d, a, n, 1.0 / 256, 1e-30);
    free(a);
    free(b);
    free(d);
done:
    tg_model_free(m32);
    tg_model_free(m16);
    tg_model_free(mb16);
}

/* A model directory: the F32 fixture's config.json with `from` replaced by
 * `to` (NULL: as is), and its tensors plus `extra` (named extra_name, a
 * copy of wte with element 0 changed by `bump`) under an optional prefix. */
static void make_dir(const char *name, const char *from, const char *to, const char *extra_name, float bump,
                     char *out, size_t n) {
    snprintf(out, n, "%s/%s", g_dir, name);
    CHECK_EQ_INT(tg_mkdirs(out), TG_OK);
    char *cfg;
    size_t len;
    CHECK_EQ_INT(tg_read_file(FX "/gpt2_f32/config.json", &cfg, &len), TG_OK);
    char text[8192];
    const char *hit = from ? strstr(cfg, from) : NULL;
    if (from) CHECK(hit != NULL);
    if (hit)
        snprintf(text, sizeof text, "%.*s%s%s", (int)(hit - cfg), cfg, to, hit + strlen(from));
    else
        snprintf(text, sizeof text, "%s", cfg);
    free(cfg);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", out);
    CHECK_EQ_INT(tg_write_file_atomic(path, text, strlen(text)), TG_OK);

    tg_safetensors st;
    CHECK_EQ_INT(tg_safetensors_open(&st, FX "/gpt2_f32/model.safetensors"), TG_OK);
    tg_st_entry *e = calloc((size_t)st.n_tensors + 1, sizeof *e);
    int k = 0;
    float *head = NULL;
    for (int i = 0; i < st.n_tensors; i++) {
        const tg_st_tensor *t = &st.tensors[i];
        e[k] = (tg_st_entry){t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        k++;
        if (extra_name && !strcmp(t->name, "wte.weight")) {
            head = malloc(t->nbytes);
            memcpy(head, t->data, t->nbytes);
            head[0] += bump;
            e[k] = (tg_st_entry){extra_name, TG_ST_F32, 2, {t->shape[0], t->shape[1]}, head};
            k++;
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECK_EQ_INT(tg_safetensors_write(path, e, k, NULL, NULL, 0), TG_OK);
    tg_safetensors_close(&st);
    free(e);
    free(head);
}

/* tg_model_load on dir gives rc; on an error the message has each needle. */
static void expect_load(const char *dir, int rc_want, const char *n1, const char *n2) {
    tg_model *m = NULL;
    tg_error_clear();
    int rc = tg_model_load(&m, dir);
    if (rc != rc_want) fprintf(stderr, "%s: rc %d, expected %d (%s)\n", dir, rc, rc_want, tg_error_message());
    CHECK_EQ_INT(rc, rc_want);
    if (rc_want != TG_OK) {
        CHECK(m == NULL);
        if (n1 && !strstr(tg_error_message(), n1)) fprintf(stderr, "%s: '%s' lacks '%s'\n", dir, tg_error_message(), n1);
        if (n1) CHECK(strstr(tg_error_message(), n1) != NULL);
        if (n2) CHECK(strstr(tg_error_message(), n2) != NULL);
    }
    tg_model_free(m);
}

static void test_heads_and_names(void) {
    char d[512];
    make_dir("tied", NULL, NULL, "lm_head.weight", 0.0f, d, sizeof d);
    expect_load(d, TG_OK, NULL, NULL);
    make_dir("untied", NULL, NULL, "lm_head.weight", 1e-3f, d, sizeof d);
    expect_load(d, TG_ERR_INPUT, "lm_head.weight", "untied");
    make_dir("score", NULL, NULL, "score.weight", 0.0f, d, sizeof d);
    expect_load(d, TG_ERR_INPUT, "score.weight", "refusing to ignore");
    make_dir("layer2", NULL, NULL, "h.2.ln_1.weight", 0.0f, d, sizeof d);
    expect_load(d, TG_ERR_INPUT, "h.2.ln_1.weight", "2-layer");
    make_dir("qproj", NULL, NULL, "h.0.attn.q_proj.weight", 0.0f, d, sizeof d);
    expect_load(d, TG_ERR_INPUT, "h.0.attn.q_proj.weight", NULL);
}

static void test_config_fields(void) {
    static const struct {
        const char *name, *from, *to, *needle;
        int ok;
    } cases[] = {
        {"c_act", "\"gelu_new\"", "\"gelu\"", "activation_function", 0},
        {"c_act_type", "\"gelu_new\"", "3", "activation_function", 0},
        {"c_tanh", "\"gelu_new\"", "\"gelu_pytorch_tanh\"", NULL, 1},
        {"c_inner", "\"n_inner\": null", "\"n_inner\": 100", "n_inner", 0},
        {"c_inner_type", "\"n_inner\": null", "\"n_inner\": \"128\"", "n_inner", 0},
        {"c_inner_4c", "\"n_inner\": null", "\"n_inner\": 128", NULL, 1},
        {"c_scale", "\"scale_attn_weights\": true", "\"scale_attn_weights\": false", "scale_attn_weights", 0},
        {"c_scale_type", "\"scale_attn_weights\": true", "\"scale_attn_weights\": 1", "scale_attn_weights", 0},
        {"c_inv", "\"scale_attn_by_inverse_layer_idx\": false", "\"scale_attn_by_inverse_layer_idx\": true",
         "scale_attn_by_inverse_layer_idx", 0},
        {"c_reorder", "\"reorder_and_upcast_attn\": false", "\"reorder_and_upcast_attn\": true", NULL, 1},
        {"c_cross", "\"use_cache\": true", "\"use_cache\": true, \"add_cross_attention\": true", "add_cross_attention", 0},
        {"c_tie", "\"use_cache\": true", "\"use_cache\": true, \"tie_word_embeddings\": false", "tie_word_embeddings", 0},
        {"c_quant", "\"use_cache\": true", "\"use_cache\": true, \"quantization_config\": {\"bits\": 4}",
         "quantization_config", 0},
        {"c_arch", "\"GPT2LMHeadModel\"", "\"GPT2DoubleHeadsModel\"", "architectures", 0},
        {"c_arch_base", "\"GPT2LMHeadModel\"", "\"GPT2Model\"", NULL, 1},
        {"c_eps", "\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": -1", "layer_norm_epsilon", 0},
        {"c_type", "\"model_type\": \"gpt2\"", "\"model_type\": \"llama\"", "model_type", 0},
        /* extras a hub config may carry, unused and harmless */
        {"c_extra", "\"use_cache\": true", "\"use_cache\": true, \"pad_token_id\": null, \"_name_or_path\": \"x\"", NULL,
         1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char d[512];
        make_dir(cases[i].name, cases[i].from, cases[i].to, NULL, 0.0f, d, sizeof d);
        expect_load(d, cases[i].ok ? TG_OK : TG_ERR_INPUT, cases[i].needle, cases[i].ok ? NULL : "config.json");
    }
}

/* Our forward's logits at each prompt position equal PyTorch's
 * (prompt_logits.json), 1e-5 absolute on logits up to ~6.5. */
static void test_prompt_logits(void) {
    json_error_t e;
    json_t *ref = json_load_file(FX "/prompt_logits.json", 0, &e);
    CHECK(ref != NULL);
    tg_model *m = NULL;
    CHECK_EQ_INT(tg_model_load(&m, FX "/gpt2_f32"), TG_OK);
    if (!ref || !m) {
        json_decref(ref);
        tg_model_free(m);
        return;
    }
    json_t *prompt = json_object_get(ref, "prompt"), *rows = json_object_get(ref, "logits");
    int T = (int)json_array_size(prompt);
    const tg_config *c = tg_model_config(m);
    int32_t ids[64];
    for (int t = 0; t < T && t < 64; t++) ids[t] = (int32_t)json_integer_value(json_array_get(prompt, (size_t)t));
    CHECK_EQ_INT(tg_model_alloc_train(m, 1, T, TG_DTYPE_FP32), TG_OK);
    tg_batch b = {ids, NULL, NULL, NULL, 1, T};
    CHECK_EQ_INT(tg_model_forward(m, &b, NULL, NULL), TG_OK);
    float *lg = malloc((size_t)T * (size_t)c->padded_vocab * sizeof *lg);
    CHECK_EQ_INT(tg_model_logits_to_host(m, 0, (size_t)T, lg), TG_OK);
    float *want = malloc((size_t)c->vocab_size * sizeof *want), *got = malloc((size_t)c->vocab_size * sizeof *got);
    for (int t = 0; t < T; t++) {
        json_t *row = json_array_get(rows, (size_t)t);
        CHECK_EQ_INT(json_array_size(row), c->vocab_size);
        for (int v = 0; v < c->vocab_size; v++) {
            want[v] = (float)json_number_value(json_array_get(row, (size_t)v));
            got[v] = lg[(size_t)t * (size_t)c->padded_vocab + (size_t)v];
        }
        char what[32];
        snprintf(what, sizeof what, "logits[%d]", t);
        tg_check_close(what, got, want, (size_t)c->vocab_size, 0, 1e-5);
    }
    free(want);
    free(got);
    free(lg);
    json_decref(ref);
    tg_model_free(m);
}

static void test_tokenizer_styles(void) {
    const char *dirs[] = {FX "/gpt2_f32", FX "/gpt2_f16", FX "/gpt2_bf16"};
    const char *text = "the cat and the dog<|endoftext|>";
    int32_t *first = NULL;
    size_t nfirst = 0;
    for (int i = 0; i < 3; i++) {
        tg_tokenizer *t = NULL;
        CHECK_EQ_INT(tg_tokenizer_load(&t, dirs[i]), TG_OK);
        if (!t) continue;
        CHECK_EQ_INT(tg_tokenizer_vocab_size(t), 281);
        CHECK_EQ_INT(tg_tokenizer_token_id(t, TG_TOKEN_ENDOFTEXT), 280);
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_EQ_INT(tg_tokenizer_encode(t, text, strlen(text), 1, &ids, &n), TG_OK);
        CHECK_EQ_INT(n, 11);
        if (n == 11) {
            CHECK_EQ_INT(ids[1], 257); /* h+e */
            CHECK_EQ_INT(ids[4], 279); /* Ġan+d */
            CHECK_EQ_INT(ids[10], 280);
        }
        if (!first) {
            first = ids;
            nfirst = n;
        } else {
            CHECK(n == nfirst && memcmp(ids, first, n * sizeof *ids) == 0);
            free(ids);
        }
        tg_tokenizer_free(t);
    }
    free(first);
    /* the checkpoint's tokenizer path finds the pair files */
    char tp[512];
    CHECK_EQ_INT(tg_checkpoint_tokenizer_path(FX "/gpt2_f32", tp, sizeof tp), 1);
    CHECK(strcmp(tp, FX "/gpt2_f32") == 0);
    CHECK_EQ_INT(tg_checkpoint_tokenizer_path(g_dir, tp, sizeof tp), 0);
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL);
    test_fixtures_load();
    test_heads_and_names();
    test_config_fields();
    test_prompt_logits();
    test_tokenizer_styles();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("test_hf_import");
}
