/*
 * cmd_tokenize.c — `truthgpt tokenize`: corpus -> token shards.
 *
 * `tokenize CORPUS --tokenizer PATH --out DIR`
 * (docs/architecture.md "Pipeline"): CORPUS is an ingest directory
 * (train.jsonl, val.jsonl) or a JSONL file of {"text"} lines. It streams: a
 * chunk of documents is read, encoded in parallel (one encoder with its word
 * cache per thread), then written in order, each document preceded by
 * <|endoftext|>, into DIR/train-NNNNNN.tok (and val-NNNNNN.tok) of at most
 * --shard-tokens tokens. Special-token text inside a document stays text (a
 * post cannot forge <|endoftext|>). The tokenizer is copied to
 * DIR/tokenizer.json and its SHA-256 goes into every shard header.
 *
 * `--bytes FILE...` makes byte-level shards without a tokenizer
 * (docs/architecture.md "Pipeline"): ids 0-255 are bytes, 256 is
 * <|endoftext|>, vocabulary 257, each FILE one document preceded by
 * <|endoftext|>.
 */
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "tokenizer/corpus.h"

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

/* ------------------------------------------------------- corpus mode */

#define CHUNK_BYTES (16u << 20)

/* A sequence of shards DIR/PREFIX-NNNNNN.tok of at most max_tokens each. */
typedef struct {
    const char *dir, *prefix;
    int64_t max_tokens, in_shard, total;
    int nshards, vocab, eot;
    uint8_t sha[32];
    tg_shard_writer *w;
} shard_seq;

static int seq_append(shard_seq *s, const int32_t *ids, size_t n) {
    while (n > 0) {
        if (!s->w) {
            char name[64];
            snprintf(name, sizeof name, "%s-%06d.tok", s->prefix, s->nshards);
            char *path = tg_path_join(s->dir, name);
            if (!path) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
            int rc = tg_shard_writer_open(&s->w, path, s->vocab, s->eot, s->sha);
            free(path);
            TG_TRY(rc);
            s->nshards++;
            s->in_shard = 0;
        }
        int64_t room = s->max_tokens - s->in_shard;
        size_t take = (int64_t)n < room ? n : (size_t)room;
        TG_TRY(tg_shard_writer_append(s->w, ids, take));
        s->in_shard += (int64_t)take;
        s->total += (int64_t)take;
        ids += take;
        n -= take;
        if (s->in_shard == s->max_tokens) {
            int rc = tg_shard_writer_close(s->w);
            s->w = NULL;
            TG_TRY(rc);
        }
    }
    return TG_OK;
}

/* Removes PREFIX-*.tok files numbered from `from` on: left over from an
 * earlier, longer run, they would join this run's stream. */
static void remove_stale(const char *dir, const char *prefix, int from) {
    char pat[64];
    snprintf(pat, sizeof pat, "%s-*.tok", prefix);
    char *full = tg_path_join(dir, pat);
    glob_t g;
    if (full && glob(full, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *base = strrchr(g.gl_pathv[i], '/');
            base = base ? base + 1 : g.gl_pathv[i];
            int num;
            char tail[8];
            if (sscanf(base + strlen(prefix), "-%6d%7s", &num, tail) == 2 && strcmp(tail, ".tok") == 0 && num >= from) {
                if (unlink(g.gl_pathv[i]) == 0) tg_warn("removed stale shard %s", g.gl_pathv[i]);
            }
        }
        globfree(&g);
    }
    free(full);
}

typedef struct {
    int64_t docs, tokens, bytes;
    int shards;
} split_stats;

typedef struct {
    int32_t *ids;
    size_t n, cap;
} id_buf;

static int tokenize_split(const char *path, const char *prefix, const tg_tokenizer *tok, tg_encoder **enc, int nt,
                          shard_seq *seq, split_stats *st) {
    tg_jsonl_reader rd;
    TG_TRY(tg_jsonl_open(&rd, path));
    id_buf *tb = calloc((size_t)nt, sizeof *tb);
    size_t dcap = 0;
    int *dtid = NULL;
    size_t *doff = NULL, *dn = NULL;
    int rc = tb ? TG_OK : tg_error_set(TG_ERR_RUNTIME, "out of memory");
    tg_progress prog;
    char label[64];
    snprintf(label, sizeof label, "tokenize %s", prefix);
    tg_progress_start(&prog, label, (double)rd.size);
    double t0 = tg_now();
    size_t nl;
    const int32_t eot = seq->eot;
    while (rc == TG_OK && (rc = tg_jsonl_next_chunk(&rd, CHUNK_BYTES, &nl)) == TG_OK && nl > 0) {
        if (nl > dcap) {
            dcap = nl * 2;
            free(dtid);
            free(doff);
            free(dn);
            dtid = malloc(dcap * sizeof *dtid);
            doff = malloc(dcap * sizeof *doff);
            dn = malloc(dcap * sizeof *dn);
            if (!dtid || !doff || !dn) {
                rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                break;
            }
        }
        for (int k = 0; k < nt; k++) tb[k].n = 0;
        int64_t err_line = INT64_MAX;
        int err_rc = TG_OK;
        char err_msg[512] = "";
        int64_t chunk_bytes = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64) reduction(+ : chunk_bytes)
        for (size_t i = 0; i < nl; i++) {
            int tid = omp_get_thread_num();
            json_t *obj;
            const char *text;
            size_t tl;
            const int32_t *ids = NULL;
            size_t n = 0;
            int r = tg_jsonl_text(rd.buf + rd.off[i], rd.len[i], rd.path, rd.no[i], &obj, &text, &tl);
            if (r == TG_OK) {
                r = tg_encoder_encode(enc[tid], text, tl, 0, &ids, &n);
                if (r != TG_OK) tg_jsonl_error(r, rd.path, rd.no[i]);
                chunk_bytes += (int64_t)tl;
                json_decref(obj);
            }
            id_buf *b = &tb[tid];
            if (r == TG_OK && b->n + n > b->cap) {
                size_t cap = b->cap ? b->cap : (1 << 20);
                while (cap < b->n + n) cap *= 2;
                int32_t *g = realloc(b->ids, cap * sizeof *g);
                if (!g) r = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                else b->ids = g, b->cap = cap;
            }
            if (r == TG_OK) {
                memcpy(b->ids + b->n, ids, n * sizeof *ids);
                dtid[i] = tid;
                doff[i] = b->n;
                dn[i] = n;
                b->n += n;
            } else {
#pragma omp critical(tokenize_err)
                if (rd.no[i] < err_line) { /* report the first bad line */
                    err_line = rd.no[i];
                    err_rc = r;
                    snprintf(err_msg, sizeof err_msg, "%s", tg_error_message());
                }
            }
        }
        if (err_rc != TG_OK) {
            rc = tg_error_set(err_rc, "%s", err_msg);
            break;
        }
        for (size_t i = 0; i < nl && rc == TG_OK; i++) {
            rc = seq_append(seq, &eot, 1);
            if (rc == TG_OK) rc = seq_append(seq, tb[dtid[i]].ids + doff[i], dn[i]);
            st->tokens += 1 + (int64_t)dn[i];
        }
        st->docs += (int64_t)nl;
        st->bytes += chunk_bytes;
        char extra[128];
        double el = tg_now() - t0;
        snprintf(extra, sizeof extra, "%lld docs, %.1fM tokens, %.1f MB/s", (long long)st->docs, st->tokens / 1e6,
                 el > 0 ? rd.bytes_read / 1e6 / el : 0.0);
        tg_progress_update(&prog, (double)rd.bytes_read, extra);
    }
    if (rc == TG_OK && seq->w) {
        rc = tg_shard_writer_close(seq->w);
        seq->w = NULL;
    }
    if (rc != TG_OK && seq->w) {
        tg_shard_writer_abort(seq->w);
        seq->w = NULL;
    }
    /* an empty val split happens with small corpora (1% of a few posts):
     * no val shards then; an empty train split is an error */
    if (rc == TG_OK && st->docs == 0 && strcmp(prefix, "val") != 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: no documents", path);
    else if (rc == TG_OK && st->docs == 0)
        tg_warn("%s: no documents, no %s shards written", path, prefix);
    if (rc == TG_OK && st->docs > 0) {
        char extra[128];
        snprintf(extra, sizeof extra, "%lld docs, %lld tokens, %d shard(s)", (long long)st->docs, (long long)st->tokens,
                 seq->nshards);
        tg_progress_finish(&prog, (double)rd.bytes_read, extra);
    }
    st->shards = seq->nshards;
    for (int k = 0; tb && k < nt; k++) free(tb[k].ids);
    free(tb);
    free(dtid);
    free(doff);
    free(dn);
    tg_jsonl_close(&rd);
    return rc;
}

/* Copies the tokenizer into DIR/tokenizer.json: the file itself when it is
 * one (same bytes, same SHA-256), else written from memory (GPT-2's files). */
static int copy_tokenizer(const tg_tokenizer *tok, const char *src, const char *dst) {
    char *file = NULL;
    if (tg_path_is_dir(src)) {
        file = tg_path_join(src, "tokenizer.json");
        if (file && !tg_path_exists(file)) {
            free(file);
            file = NULL;
        }
    } else {
        file = strdup(src);
    }
    int rc;
    if (file) {
        char *data;
        size_t len;
        rc = tg_read_file(file, &data, &len);
        if (rc == TG_OK) {
            uint8_t sha[32];
            tg_sha256(data, len, sha);
            /* the file changed since it was loaded: write what we loaded */
            if (memcmp(sha, tg_tokenizer_sha256(tok), 32) != 0) rc = tg_tokenizer_save(tok, dst);
            else rc = tg_write_file_atomic(dst, data, len);
            free(data);
        }
        free(file);
    } else {
        rc = tg_tokenizer_save(tok, dst);
    }
    return rc;
}

static int tokenize_corpus(const char *corpus, const char *tpath, const char *out, int threads, int64_t shard_tokens) {
    char *train = NULL, *val = NULL, *tdst = NULL;
    tg_tokenizer *tok = NULL;
    tg_encoder **enc = NULL;
    int nt = threads > 0 ? threads : tg_num_threads();
    int rc = tg_corpus_paths(corpus, &train, &val);
    if (rc == TG_OK) rc = tg_tokenizer_load(&tok, tpath);
    int32_t eot = tok ? tg_tokenizer_token_id(tok, TG_TOKEN_ENDOFTEXT) : -1;
    if (rc == TG_OK && eot < 0)
        rc = tg_error_set(TG_ERR_INPUT, "%s: the tokenizer has no %s token (needed between documents)", tpath,
                          TG_TOKEN_ENDOFTEXT);
    if (rc == TG_OK) rc = tg_mkdirs(out);
    if (rc == TG_OK && !(tdst = tg_path_join(out, "tokenizer.json"))) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    if (rc == TG_OK) rc = copy_tokenizer(tok, tpath, tdst);
    uint8_t sha[32];
    if (rc == TG_OK) rc = tg_sha256_file(tdst, sha);
    if (rc == TG_OK && !(enc = calloc((size_t)nt, sizeof *enc))) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < nt && rc == TG_OK; k++) rc = tg_encoder_new(&enc[k], tok);
    json_object_seed(0); /* before threads parse JSON */
    split_stats st[2] = {{0}, {0}};
    const char *paths[2] = {train, val}, *prefixes[2] = {"train", "val"};
    double t0 = tg_now();
    for (int s = 0; s < 2 && rc == TG_OK; s++) {
        if (!paths[s]) continue;
        shard_seq seq = {out, prefixes[s], shard_tokens, 0, 0, 0, tg_tokenizer_vocab_size(tok), eot, {0}, NULL};
        memcpy(seq.sha, sha, 32);
        rc = tokenize_split(paths[s], prefixes[s], tok, enc, nt, &seq, &st[s]);
        if (rc == TG_OK) remove_stale(out, prefixes[s], seq.nshards);
    }
    if (rc == TG_OK) {
        double el = tg_now() - t0;
        char hex[65];
        tg_hex(sha, 32, hex);
        printf("%-6s %10s %14s %14s %12s %7s\n", "split", "documents", "tokens", "bytes", "bytes/token", "shards");
        for (int s = 0; s < 2; s++) {
            if (!paths[s]) continue;
            printf("%-6s %10lld %14lld %14lld %12.3f %7d\n", prefixes[s], (long long)st[s].docs, (long long)st[s].tokens,
                   (long long)st[s].bytes, st[s].tokens ? (double)st[s].bytes / (double)st[s].tokens : 0.0,
                   st[s].shards);
        }
        printf("wrote %s/%s-NNNNNN.tok and tokenizer.json (vocabulary %d, sha256 %.16s...) in %.1fs with %d "
               "thread(s), %.1f MB/s\n",
               out, st[1].docs > 0 ? "{train,val}" : "train", tg_tokenizer_vocab_size(tok), hex, el, nt,
               el > 0 ? (st[0].bytes + st[1].bytes) / 1e6 / el : 0.0);
    }
    for (int k = 0; enc && k < nt; k++) tg_encoder_free(enc[k]);
    free(enc);
    tg_tokenizer_free(tok);
    free(train);
    free(val);
    free(tdst);
    return rc;
}

int tg_cmd_tokenize(int argc, char **argv) {
    int bytes = 0, threads = 0;
    int64_t shard_tokens = 100000000;
    const char *out = NULL, *tpath = NULL;
    tg_opt opts[] = {
        {"tokenizer", TG_OPT_STR, &tpath, "PATH", "tokenizer.json, a directory holding one, or encoder.json + vocab.bpe"},
        {"out", TG_OPT_STR, &out, "DIR", "output directory for the shards"},
        {"threads", TG_OPT_INT, &threads, "N", "encoding threads (default: all cores)"},
        {"shard-tokens", TG_OPT_I64, &shard_tokens, "N", "tokens per shard at most"},
        {"bytes", TG_OPT_FLAG, &bytes, NULL, "byte-level shards of raw FILEs (no tokenizer): ids 0-255, 256 = <|endoftext|>"},
        {0},
    };
    char *pos[4096];
    int npos;
    int rc = tg_args_parse("truthgpt tokenize CORPUS --tokenizer PATH --out DIR [--threads N]\n"
                           "       truthgpt tokenize --bytes FILE... --out DIR",
                           "Turns documents into token shards: DIR/train-NNNNNN.tok (and val-NNNNNN.tok when CORPUS has "
                           "a val split),\neach document preceded by <|endoftext|>, and copies the tokenizer to "
                           "DIR/tokenizer.json.\nCORPUS is an ingest output directory or a JSONL file of {\"text\": ...} "
                           "lines.",
                           opts, argc, argv, pos, 4096, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) {
        fprintf(stderr, "truthgpt: tokenize: --out DIR is required\n");
        return 2;
    }
    if (threads < 0 || shard_tokens < 1) {
        fprintf(stderr, "truthgpt: tokenize: --threads must be >= 0 and --shard-tokens >= 1\n");
        return 2;
    }
    if (!bytes) {
        if (npos != 1 || !tpath) {
            fprintf(stderr, "truthgpt: tokenize: give one CORPUS and --tokenizer PATH (or --bytes FILE...; see --help)\n");
            return 2;
        }
        rc = tokenize_corpus(pos[0], tpath, out, threads, shard_tokens);
        return rc == TG_OK ? 0 : tg_cli_fail(rc);
    }
    if (npos == 0) {
        fprintf(stderr, "truthgpt: tokenize --bytes: no input FILE given\n");
        return 2;
    }
    rc = tokenize_bytes(pos, npos, out);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
