/*
 * cmd_inspect.c — `truthgpt inspect DIR`: where a model came from. DIR is a
 * checkpoint or a run directory; prints a summary (model, data, tokenizer,
 * code, command line) and then the manifest and config.json as stored, or
 * with --json one object {"path", "manifest", "config"}.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"

static json_t *load_json(const char *dir, const char *name, int required) {
    char *path = tg_path_join(dir, name);
    json_error_t e;
    json_t *j = NULL;
    if (tg_path_exists(path)) {
        j = json_load_file(path, 0, &e);
        if (!j) tg_error_set(TG_ERR_INPUT, "%s: not valid JSON: %s (line %d)", path, e.text, e.line);
    } else if (required) tg_error_set(TG_ERR_INPUT, "%s: missing", path);
    free(path);
    return j;
}

/* A JSON string's value, or "?" when absent. */
static const char *str_or(json_t *j) {
    const char *s = json_string_value(j);
    return s ? s : "?";
}

int tg_cmd_inspect(int argc, char **argv) {
    int json = 0;
    tg_opt opts[] = {
        {"json", TG_OPT_FLAG, &json, NULL, "print {\"path\", \"manifest\", \"config\"} as JSON"},
        {0},
    };
    char *pos[2];
    int npos;
    int rc = tg_args_parse("truthgpt inspect DIR [--json]",
                           "Shows where a model came from: its manifest (data shard and tokenizer SHA-256, config,\n"
                           "git commit, command line) and config.json. DIR: a checkpoint or run directory.",
                           opts, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1) {
        fprintf(stderr, "truthgpt: inspect: give one DIR (a checkpoint or run directory)\n");
        return 2;
    }
    char dir[4096];
    if ((rc = tg_checkpoint_resolve(pos[0], dir, sizeof dir)) != TG_OK) return tg_cli_fail(rc);
    json_t *cfg = load_json(dir, "config.json", 1);
    if (!cfg) return tg_cli_fail(TG_ERR_INPUT);
    /* A checkpoint's own manifest, else the run's. */
    json_t *man = load_json(dir, "manifest.json", 0);
    if (!man && tg_error_code() == TG_OK && strcmp(dir, pos[0]) != 0) man = load_json(pos[0], "manifest.json", 0);
    if (!man && tg_error_code() != TG_OK) {
        json_decref(cfg);
        return tg_cli_fail(TG_ERR_INPUT);
    }
    if (json) {
        json_t *o = json_pack("{s:s,s:O,s:O}", "path", dir, "manifest", man ? man : json_null(), "config", cfg);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("checkpoint: %s\n", dir);
        printf("model:      GPT-2, %lld layers, %lld heads, width %lld, context %lld, vocabulary %lld\n",
               json_integer_value(json_object_get(cfg, "n_layer")), json_integer_value(json_object_get(cfg, "n_head")),
               json_integer_value(json_object_get(cfg, "n_embd")), json_integer_value(json_object_get(cfg, "n_positions")),
               json_integer_value(json_object_get(cfg, "vocab_size")));
        json_t *st = load_json(dir, "trainer_state.json", 0);
        if (st)
            printf("trained:    %lld steps, %lld tokens\n", json_integer_value(json_object_get(st, "step")),
                   json_integer_value(json_object_get(st, "tokens")));
        json_decref(st);
        tg_error_clear();
        if (man) {
            printf("code:       truthgpt %s, git %s\n", str_or(json_object_get(man, "truthgpt_version")),
                   str_or(json_object_get(man, "git_commit")));
            printf("command:    %s\n", str_or(json_object_get(man, "command_line")));
            json_t *data = json_object_get(man, "data");
            size_t i;
            json_t *d;
            json_array_foreach(data, i, d) {
                printf("data:       %s  sha256 %s  %lld tokens\n", str_or(json_object_get(d, "path")),
                       str_or(json_object_get(d, "sha256")),
                       json_integer_value(json_object_get(d, "tokens")));
            }
            json_t *tk = json_object_get(man, "tokenizer");
            if (json_is_object(tk) && json_object_get(tk, "sha256"))
                printf("tokenizer:  %s  sha256 %s\n", str_or(json_object_get(tk, "path")),
                       str_or(json_object_get(tk, "sha256")));
            else if (json_is_object(tk) && json_object_get(tk, "kind"))
                printf("tokenizer:  %s\n", str_or(json_object_get(tk, "kind")));
            char *s = json_dumps(man, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("\nmanifest.json:\n%s\n", s);
            free(s);
        } else {
            printf("manifest:   none (not made by truthgpt train: provenance unknown)\n");
        }
        char *s = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\nconfig.json:\n%s\n", s);
        free(s);
    }
    json_decref(man);
    json_decref(cfg);
    return 0;
}
