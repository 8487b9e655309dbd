/*
 * cmd_chat_data.c — `truthgpt chat-data CORPUS --out chat.jsonl`: chat
 * training data from a community's posts (src/data/chat_data.c), in the
 * OpenAI chat fine-tuning format that `truthgpt finetune --chat` reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"
#include "data/chat_data.h"

/* chat.jsonl -> chat_val.jsonl (the default held-out file beside --out). */
static char *default_val_path(const char *out) {
    size_t n = strlen(out);
    char *s = malloc(n + 16);
    if (!s) return NULL;
    if (n > 6 && strcmp(out + n - 6, ".jsonl") == 0) snprintf(s, n + 16, "%.*s_val.jsonl", (int)(n - 6), out);
    else snprintf(s, n + 16, "%s.val", out);
    return s;
}

int tg_cmd_chat_data(int argc, char **argv) {
    tg_chat_data_params p = tg_chat_data_default_params();
    const char *out = NULL, *val_out = NULL, *field = p.field, *system = NULL;
    double val_frac = -1;
    int64_t seed = (int64_t)p.seed;
    int terms = p.n_terms, no_val = 0;
    tg_chat_grounded_params gp = tg_chat_grounded_default_params();
    const char *grounded = NULL;
    tg_opt opts[] = {
        {"out", TG_OPT_STR, &out, "FILE", "chat JSONL to write (training conversations)"},
        {"val-out", TG_OPT_STR, &val_out, "FILE", "held-out conversations (default: OUT with _val.jsonl)"},
        {"no-val", TG_OPT_FLAG, &no_val, NULL, "write no held-out file (held-out posts are then left out)"},
        {"val-frac", TG_OPT_DOUBLE, &val_frac, "F",
         "held-out fraction by content hash (default: the corpus's own val.jsonl, else 0.05)"},
        {"seed", TG_OPT_I64, &seed, "S", "seed for the phrasing choice and the split"},
        {"terms", TG_OPT_INT, &terms, "K", "key terms (TF-IDF) asked for in each prompt"},
        {"field", TG_OPT_STR, &field, "NAME", "text field of each JSONL line"},
        {"system", TG_OPT_STR, &system, "TEXT", "a system message for every conversation"},
        {"grounded", TG_OPT_STR, &grounded, "DB", "answer-from-sources conversations from a search index (no CORPUS)"},
        {"top-k", TG_OPT_INT, &gp.top_k, "K", "--grounded: sources in each prompt, the right one among them (2..10)"},
        {"max-posts", TG_OPT_I64, &gp.max_posts, "N", "--grounded: use only the index's first N posts (0: all)"},
        {0},
    };
    char *pos[2];
    int npos;
    int rc = tg_args_parse(
        "truthgpt chat-data CORPUS --out chat.jsonl [--val-out FILE] [--val-frac F] [--seed S]",
        "Makes chat fine-tuning data from posts, no model needed: for each post a user turn asks for a post\n"
        "about its key terms (TF-IDF over the corpus, several phrasings) and the post is the assistant's\n"
        "reply. CORPUS is an ingest output directory (train.jsonl, val.jsonl) or a JSONL file of\n"
        "{\"text\": ...} lines. Deterministic for a given corpus and seed.\n"
        "--grounded DB (instead of CORPUS): conversations whose prompt holds retrieved posts in the server's\n"
        "grounding template (the right post among distractors) and whose answer quotes the right post and\n"
        "cites its number, so that a fine-tuned model learns to answer from sources (docs/search.md).",
        opts, argc, argv, pos, 2, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (grounded) {
        if (npos != 0) {
            fprintf(stderr, "truthgpt: chat-data: --grounded DB takes the posts from DB: give no CORPUS\n");
            return 2;
        }
        if (!out) {
            fprintf(stderr, "truthgpt: chat-data: --out FILE is required\n");
            return 2;
        }
        char *vd = NULL;
        if (!val_out && !no_val) val_out = vd = default_val_path(out);
        gp.index = grounded;
        gp.out = out;
        gp.val_out = no_val ? NULL : val_out;
        if (tg_args_given(argc, argv, "val-frac")) gp.val_frac = val_frac;
        if (tg_args_given(argc, argv, "seed")) gp.seed = (uint64_t)seed;
        gp.system = system;
        tg_chat_data_stats st;
        rc = tg_chat_data_grounded(&gp, &st);
        if (rc == TG_OK)
            printf("chat-data --grounded: %lld posts -> %lld training conversations (%s), %lld held out%s%s; "
                   "%lld without a key term skipped\n",
                   (long long)st.posts, (long long)st.train, out, (long long)st.val, gp.val_out ? " " : "",
                   gp.val_out ? gp.val_out : "", (long long)st.no_terms);
        free(vd);
        return rc == TG_OK ? 0 : tg_cli_fail(rc);
    }
    if (npos != 1) {
        fprintf(stderr, "truthgpt: chat-data: expected one CORPUS (a directory or a JSONL file), got %d\n", npos);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "truthgpt: chat-data: --out FILE is required\n");
        return 2;
    }
    if (val_frac >= 1 || (val_frac < 0 && tg_args_given(argc, argv, "val-frac"))) {
        fprintf(stderr, "truthgpt: --val-frac: must be in [0, 1) (got %g)\n", val_frac);
        return 2;
    }
    if (terms < 0 || terms > 16) {
        fprintf(stderr, "truthgpt: --terms: must be 0..16 (got %d)\n", terms);
        return 2;
    }
    char *val_default = NULL;
    if (!val_out && !no_val) val_out = val_default = default_val_path(out);
    p.corpus = pos[0];
    p.out = out;
    p.val_out = no_val ? NULL : val_out;
    p.val_frac = val_frac;
    p.seed = (uint64_t)seed;
    p.n_terms = terms;
    p.field = field;
    p.system = system;
    tg_chat_data_stats st;
    rc = tg_chat_data_make(&p, &st);
    if (rc == TG_OK) {
        printf("chat-data: %lld posts -> %lld training conversations (%s)", (long long)st.posts, (long long)st.train,
               out);
        if (p.val_out) printf(", %lld held out (%s)", (long long)st.val, p.val_out);
        printf("; %lld empty skipped, %lld without key terms\n", (long long)st.empty, (long long)st.no_terms);
    }
    free(val_default);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
