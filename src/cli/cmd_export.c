/*
 * cmd_export.c — `truthgpt export gguf`: a checkpoint (ours, or any Hugging
 * Face GPT-2 directory) as one GGUF file for llama.cpp and Ollama
 * (docs/interop.md). `export hf` does not exist: a checkpoint already is a
 * Hugging Face directory.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define BYTE_VOCAB 257 /* `tokenize --bytes`: ids 0-255 bytes, 256 <|endoftext|> */

/* The model's tokenizer; a byte-level model without one gets the byte-level
 * BPE with no merges (its ids 0-255 are the bytes, 256 <|endoftext|>). */
static int load_tokenizer(const char *dir, int vocab, tg_tokenizer **tok) {
    char tp[4200];
    if (tg_checkpoint_tokenizer_path(dir, tp, sizeof tp)) return tg_tokenizer_load(tok, tp);
    if (vocab != BYTE_VOCAB)
        return tg_error_set(TG_ERR_INPUT, "--model %s: no tokenizer (tokenizer.json, vocab.json + merges.txt), and a "
                                          "vocabulary of %d is not byte-level",
                            dir, vocab);
    tg_bpe_trainer *tr = NULL;
    int rc = tg_bpe_trainer_new(&tr);
    /* 259: the bytes, <|endoftext|> and the chat markers (left out of the file: the model lacks their rows) */
    if (rc == TG_OK) rc = tg_bpe_trainer_finish(tr, BYTE_VOCAB + 2, 0, tok);
    tg_bpe_trainer_free(tr);
    if (rc == TG_OK && tg_tokenizer_token_id(*tok, TG_TOKEN_ENDOFTEXT) != BYTE_VOCAB - 1)
        rc = tg_error_set(TG_ERR_RUNTIME, "byte-level tokenizer: <|endoftext|> is not id 256");
    return rc;
}

static int export_gguf(int argc, char **argv) {
    const char *model_path = NULL, *out = NULL, *type_s = "f16", *name = NULL;
    tg_opt opts[] = {
        {"model", TG_OPT_STR, &model_path, "PATH", "checkpoint directory, run directory, or Hugging Face GPT-2 directory"},
        {"out", TG_OPT_STR, &out, "FILE", "the GGUF file to write (replaced atomically)"},
        {"type", TG_OPT_STR, &type_s, "f32|f16|q8_0", "tensor type of the 2-D weights (norms and biases stay f32)"},
        {"name", TG_OPT_STR, &name, "NAME", "general.name in the file (default: the model directory's name)"},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt export gguf --model PATH --out FILE [--type f32|f16|q8_0] [--name NAME]",
                           "Writes the model as GGUF v3 (llama.cpp's \"gpt2\" architecture, with its tokenizer and, for\n"
                           "a chat model, the ChatML template), the file llama.cpp and Ollama load.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (!model_path || !out) {
        fprintf(stderr, "truthgpt: export gguf: --model PATH and --out FILE are required\n");
        return 2;
    }
    tg_gguf_type type;
    if (!strcmp(type_s, "f32")) type = TG_GGUF_F32;
    else if (!strcmp(type_s, "f16")) type = TG_GGUF_F16;
    else if (!strcmp(type_s, "q8_0")) type = TG_GGUF_Q8_0;
    else return tg_cli_fail(tg_error_set(TG_ERR_INPUT, "--type must be f32, f16 or q8_0 (got '%s')", type_s));

    char dir[4096];
    tg_model *m = NULL;
    tg_tokenizer *tok = NULL;
    rc = tg_checkpoint_resolve(model_path, dir, sizeof dir);
    if (rc == TG_OK) rc = tg_model_load(&m, dir);
    if (rc == TG_OK) rc = load_tokenizer(dir, tg_model_config(m)->vocab_size, &tok);
    if (rc == TG_OK && !name) {
        const char *slash = strrchr(dir, '/');
        name = slash && slash[1] ? slash + 1 : dir;
    }
    if (rc == TG_OK) rc = tg_gguf_export(m, tok, type, name, out);
    if (rc == TG_OK) {
        struct stat sb;
        const tg_config *c = tg_model_config(m);
        double mb = stat(out, &sb) == 0 ? (double)sb.st_size / 1e6 : 0;
        fprintf(stderr, "truthgpt: wrote %s: gguf v3, gpt2, %s, %d layers, %d tokens, %.2f MB\n", out, type_s, c->n_layer,
                c->vocab_size, mb);
    }
    tg_tokenizer_free(tok);
    tg_model_free(m);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}

int tg_cmd_export(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "gguf")) return export_gguf(argc - 1, argv + 1);
    int help = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
    FILE *f = help ? stdout : stderr;
    fprintf(f, "usage: truthgpt export gguf --model PATH --out FILE [--type f32|f16|q8_0]\n\n"
               "  gguf   write the model as one GGUF file for llama.cpp and Ollama (see docs/interop.md)\n\n"
               "There is no `export hf`: a checkpoint directory already is a Hugging Face GPT-2 directory\n"
               "(config.json, model.safetensors, tokenizer.json).\n");
    if (help) return 0;
    if (argc >= 1) fprintf(stderr, "\ntruthgpt: export: unknown format '%s'\n", argv[0]);
    return 2;
}
