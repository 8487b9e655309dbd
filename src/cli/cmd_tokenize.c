/*
 * cmd_tokenize.c — `truthgpt tokenize`: corpus -> token shards.
 *
 * `--bytes FILE...` makes byte-level shards without a tokenizer (DESIGN §1):
 * ids 0-255 are bytes, 256 is <|endoftext|>, vocabulary 257, each FILE one
 * document preceded by <|endoftext|>.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"

#define BYTES_EOT 256
#define BYTES_VOCAB 257

static int tokenize_bytes(char **files, int nfiles, const char *out) {
    TG_TRY(tg_mkdirs(out));
    char *path = tg_path_join(out, "train-000000.tok");
    tg_shard_writer *w;
    int rc = tg_shard_writer_open(&w, path, BYTES_VOCAB, BYTES_EOT, NULL);
    if (rc != TG_OK) {
        free(path);
        return rc;
    }
    int32_t buf[65536];
    int64_t total_bytes = 0;
    for (int i = 0; i < nfiles && rc == TG_OK; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            rc = tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", files[i], strerror(errno));
            break;
        }
        int32_t eot = BYTES_EOT;
        rc = tg_shard_writer_append(w, &eot, 1);
        unsigned char chunk[65536];
        size_t n;
        while (rc == TG_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            for (size_t k = 0; k < n; k++) buf[k] = chunk[k];
            rc = tg_shard_writer_append(w, buf, n);
            total_bytes += (int64_t)n;
        }
        if (rc == TG_OK && ferror(f)) rc = tg_error_set(TG_ERR_INPUT, "%s: read error", files[i]);
        fclose(f);
    }
    if (rc != TG_OK) {
        tg_shard_writer_abort(w);
        free(path);
        return rc;
    }
    int64_t count = tg_shard_writer_count(w);
    rc = tg_shard_writer_close(w);
    if (rc == TG_OK)
        printf("wrote %s: %d documents, %lld tokens (%lld bytes + %d separators), vocabulary %d\n", path, nfiles,
               (long long)count, (long long)total_bytes, nfiles, BYTES_VOCAB);
    free(path);
    return rc;
}

int tg_cmd_tokenize(int argc, char **argv) {
    int bytes = 0;
    const char *out = NULL;
    tg_opt opts[] = {
        {"bytes", TG_OPT_FLAG, &bytes, NULL, "byte-level shards of raw FILEs (no tokenizer): ids 0-255, 256 = <|endoftext|>"},
        {"out", TG_OPT_STR, &out, "DIR", "output directory for the shards"},
        {0},
    };
    char *pos[4096];
    int npos;
    int rc = tg_args_parse("truthgpt tokenize --bytes FILE... --out DIR",
                           "Turns documents into token shards (DIR/train-NNNNNN.tok).", opts, argc, argv, pos, 4096,
                           &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) {
        fprintf(stderr, "truthgpt: tokenize: --out DIR is required\n");
        return 2;
    }
    if (!bytes) {
        fprintf(stderr, "truthgpt: tokenize: only --bytes is available in this build\n");
        return 2;
    }
    if (npos == 0) {
        fprintf(stderr, "truthgpt: tokenize --bytes: no input FILE given\n");
        return 2;
    }
    rc = tokenize_bytes(pos, npos, out);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
