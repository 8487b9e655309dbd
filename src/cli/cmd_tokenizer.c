/*
 * cmd_tokenizer.c — `truthgpt tokenizer train|encode|decode|bench`.
 *
 *   train CORPUS --vocab N --out tokenizer.json   byte-level BPE on a corpus
 *   encode --tokenizer PATH [--jsonl]             text (or {"text"} lines) -> ids
 *   decode --tokenizer PATH [--jsonl]             ids (or {"ids"} lines) -> text
 *   bench --tokenizer PATH FILE [--threads N] [--repeat N]   encoding speed in MB/s
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/core.h"
#include "tokenizer/corpus.h"
#include "tokenizer/tok_internal.h"

#define CHUNK_BYTES (32u << 20)

/* ------------------------------------------------------------------ train */

static int train(int argc, char **argv) {
    int vocab = 0, threads = 0, quiet = 0;
    const char *out = NULL;
    tg_opt opts[] = {
        {"vocab", TG_OPT_INT, &vocab, "N", "vocabulary size: 256 bytes + 3 special tokens + merges"},
        {"out", TG_OPT_STR, &out, "FILE", "where to write the tokenizer.json"},
        {"threads", TG_OPT_INT, &threads, "N", "threads counting words (default: all cores)"},
        {"quiet", TG_OPT_FLAG, &quiet, NULL, "no progress line"},
        {0},
    };
    char *pos[2];
    int npos;
    int rc = tg_args_parse("truthgpt tokenizer train CORPUS --vocab N --out tokenizer.json",
                           "Trains a byte-level BPE tokenizer (GPT-2's pre-tokenisation, special tokens <|endoftext|>, "
                           "<|im_start|>, <|im_end|>)\non CORPUS: an ingest directory (its train.jsonl) or a JSONL file "
                           "of {\"text\": ...} lines.",
                           opts, argc, argv, pos, 2, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1) return fprintf(stderr, "truthgpt: tokenizer train: give one CORPUS (see --help)\n"), 2;
    if (!out) return fprintf(stderr, "truthgpt: tokenizer train: --out FILE is required\n"), 2;
    if (vocab < 259 || vocab > (1 << 24))
        return fprintf(stderr, "truthgpt: tokenizer train: --vocab must be between 259 and 16777216 (got %d)\n", vocab), 2;
    if (threads < 0) return fprintf(stderr, "truthgpt: tokenizer train: --threads must be >= 0\n"), 2;
    if (threads) tg_set_threads(threads);
    if (quiet) tg_log_quiet = 1;
    int nt = tg_num_threads();
    {
        /* the output's directory first, so a long run cannot fail at its end */
        char *dir = strdup(out), *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash && slash != dir) {
            *slash = 0;
            rc = tg_mkdirs(dir);
        }
        free(dir);
        if (rc != TG_OK) return tg_cli_fail(rc);
    }
    char *train_path = NULL, *val_path = NULL;
    if ((rc = tg_corpus_paths(pos[0], &train_path, &val_path)) != TG_OK) return tg_cli_fail(rc);
    free(val_path);
    double t0 = tg_now();
    tg_bpe_trainer **tr = calloc((size_t)nt, sizeof *tr);
    for (int i = 0; i < nt && rc == TG_OK; i++) rc = tg_bpe_trainer_new(&tr[i]);
    tg_jsonl_reader rd;
    if (rc == TG_OK) rc = tg_jsonl_open(&rd, train_path);
    if (rc != TG_OK) {
        for (int i = 0; i < nt; i++) tg_bpe_trainer_free(tr[i]);
        free(tr);
        free(train_path);
        return tg_cli_fail(rc);
    }
    json_object_seed(0); /* before threads parse JSON */
    tg_progress prog;
    tg_progress_start(&prog, "counting words", (double)rd.size);
    int64_t docs = 0, text_bytes = 0;
    size_t nl;
    while (rc == TG_OK && (rc = tg_jsonl_next_chunk(&rd, CHUNK_BYTES, &nl)) == TG_OK && nl > 0) {
        int err = TG_OK;
        char errmsg[512] = "";
        int64_t chunk_text = 0;
#pragma omp parallel reduction(+ : chunk_text)
        {
            tg_bpe_trainer *mine = tr[omp_get_thread_num()];
            /* contiguous slices: each thread's words go to its own table */
#pragma omp for schedule(static)
            for (size_t i = 0; i < nl; i++) {
                if (__atomic_load_n(&err, __ATOMIC_RELAXED) != TG_OK) continue;
                json_t *obj;
                const char *text;
                size_t tl;
                int r = tg_jsonl_text(rd.buf + rd.off[i], rd.len[i], rd.path, rd.no[i], &obj, &text, &tl);
                if (r == TG_OK) {
                    r = tg_bpe_trainer_feed(mine, text, tl);
                    if (r != TG_OK) tg_jsonl_error(r, rd.path, rd.no[i]);
                    json_decref(obj);
                    chunk_text += (int64_t)tl;
                }
                if (r != TG_OK) {
#pragma omp critical(tok_train_err)
                    if (err == TG_OK) {
                        err = r;
                        snprintf(errmsg, sizeof errmsg, "%s", tg_error_message());
                    }
                }
            }
        }
        if (err != TG_OK) {
            rc = tg_error_set(err, "%s", errmsg);
            break;
        }
        docs += (int64_t)nl;
        text_bytes += chunk_text;
        char extra[96];
        snprintf(extra, sizeof extra, "%lld docs, %.1f MB", (long long)docs, rd.bytes_read / 1e6);
        tg_progress_update(&prog, (double)rd.bytes_read, extra);
    }
    double file_size = (double)rd.bytes_read;
    tg_jsonl_close(&rd);
    if (rc == TG_OK && docs == 0) rc = tg_error_set(TG_ERR_INPUT, "%s: no documents", train_path);
    for (int i = 1; i < nt && rc == TG_OK; i++) rc = tg_bpe_trainer_merge_counts(tr[0], tr[i]);
    for (int i = 1; i < nt; i++) tg_bpe_trainer_free(tr[i]);
    double t_count = tg_now() - t0;
    if (rc == TG_OK) {
        char extra[96];
        snprintf(extra, sizeof extra, "%lld docs, %.1f MB of text", (long long)docs, text_bytes / 1e6);
        tg_progress_finish(&prog, file_size, extra);
    }
    tg_tokenizer *tok = NULL;
    if (rc == TG_OK) rc = tg_bpe_trainer_finish(tr[0], vocab, !quiet, &tok);
    tg_bpe_trainer_free(tr[0]);
    free(tr);
    if (rc == TG_OK) rc = tg_tokenizer_save(tok, out);
    if (rc == TG_OK) {
        double el = tg_now() - t0;
        printf("wrote %s: vocabulary %d (%d merges) from %lld documents, %.1f MB of text; counting %.1fs, total %.1fs, "
               "peak memory %.0f MB\n",
               out, tg_tokenizer_vocab_size(tok), tg_tokenizer_vocab_size(tok) - 259, (long long)docs, text_bytes / 1e6,
               t_count, el, tg_peak_rss_mb());
    }
    tg_tokenizer_free(tok);
    free(train_path);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}

/* --------------------------------------------------------- encode/decode */

/* Writes bytes as a JSON string, invalid UTF-8 replaced by U+FFFD (a token
 * boundary may split a character). */
static int print_json_text(FILE *f, const char *s, size_t n) {
    char *fixed = malloc(3 * n + 1);
    if (!fixed) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    size_t k = 0, i = 0;
    while (i < n) {
        /* the longest valid run, then one replacement for the bad byte */
        size_t ok = tg_utf8_valid_prefix((const uint8_t *)s + i, n - i);
        memcpy(fixed + k, s + i, ok);
        k += ok;
        i += ok;
        if (i < n) {
            memcpy(fixed + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    json_t *js = json_stringn_nocheck(fixed, k);
    char *txt = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
    int rc = TG_OK;
    if (!txt) rc = tg_error_set(TG_ERR_RUNTIME, "cannot write text as JSON");
    else fprintf(f, "{\"text\":%s}\n", txt);
    free(txt);
    json_decref(js);
    free(fixed);
    return rc;
}

static int print_ids(FILE *f, const int32_t *ids, size_t n, int jsonl) {
    if (jsonl) fputs("{\"ids\":[", f);
    for (size_t i = 0; i < n; i++) fprintf(f, i ? (jsonl ? ",%d" : " %d") : "%d", ids[i]);
    fputs(jsonl ? "]}\n" : "\n", f);
    return ferror(f) ? tg_error_set(TG_ERR_RUNTIME, "write error: %s", strerror(errno)) : TG_OK;
}

static int encode_decode(int argc, char **argv, int decode) {
    const char *tpath = NULL;
    int jsonl = 0, special = 0;
    tg_opt opts[] = {
        {"tokenizer", TG_OPT_STR, &tpath, "PATH", "tokenizer.json, a directory holding one, or encoder.json + vocab.bpe"},
        {"jsonl", TG_OPT_FLAG, &jsonl, NULL,
         decode ? "read {\"ids\": [...]} lines, write {\"text\": ...} lines" : "read {\"text\": ...} lines, write {\"ids\": [...]} lines"},
        {"special", TG_OPT_FLAG, &special, NULL, "encode special tokens written in the text (<|endoftext|>, ...)"},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse(decode ? "truthgpt tokenizer decode --tokenizer PATH [--jsonl] < ids"
                                  : "truthgpt tokenizer encode --tokenizer PATH [--jsonl] < text",
                           decode ? "Decodes token ids from stdin (whitespace-separated, or JSONL with --jsonl) to text."
                                  : "Encodes stdin (all of it as one text, or one {\"text\"} document a line with --jsonl) "
                                    "to token ids.",
                           opts, argc, argv, pos, 1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos) return fprintf(stderr, "truthgpt: tokenizer %s: unexpected argument '%s'\n", decode ? "decode" : "encode", pos[0]), 2;
    if (!tpath) return fprintf(stderr, "truthgpt: tokenizer: --tokenizer PATH is required\n"), 2;
    tg_tokenizer *tok;
    if ((rc = tg_tokenizer_load(&tok, tpath)) != TG_OK) return tg_cli_fail(rc);
    tg_encoder *enc = NULL;
    rc = tg_encoder_new(&enc, tok);
    if (rc == TG_OK && jsonl) {
        tg_jsonl_reader rd;
        rc = tg_jsonl_open(&rd, "-");
        size_t nl;
        while (rc == TG_OK && (rc = tg_jsonl_next_chunk(&rd, 1 << 20, &nl)) == TG_OK && nl > 0) {
            for (size_t i = 0; i < nl && rc == TG_OK; i++) {
                const char *line = rd.buf + rd.off[i];
                if (!decode) {
                    json_t *obj;
                    const char *text;
                    size_t tl;
                    const int32_t *ids;
                    size_t n;
                    rc = tg_jsonl_text(line, rd.len[i], rd.path, rd.no[i], &obj, &text, &tl);
                    if (rc != TG_OK) break;
                    rc = tg_encoder_encode(enc, text, tl, special, &ids, &n);
                    if (rc != TG_OK) rc = tg_jsonl_error(rc, rd.path, rd.no[i]);
                    else rc = print_ids(stdout, ids, n, 1);
                    json_decref(obj);
                } else {
                    json_error_t err;
                    json_t *obj = json_loadb(line, rd.len[i], 0, &err);
                    json_t *arr = json_object_get(obj, "ids");
                    if (!json_is_array(arr)) {
                        rc = tg_error_set(TG_ERR_INPUT, "%s:%lld: expected {\"ids\": [...]}", rd.path, (long long)rd.no[i]);
                        json_decref(obj);
                        break;
                    }
                    size_t n = json_array_size(arr);
                    int32_t *ids = malloc((n + 1) * sizeof *ids);
                    for (size_t k = 0; ids && k < n; k++) {
                        json_t *v = json_array_get(arr, k);
                        ids[k] = json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < INT32_MAX
                                     ? (int32_t)json_integer_value(v)
                                     : -1;
                    }
                    char *txt = NULL;
                    size_t tl;
                    rc = ids ? tg_tokenizer_decode(tok, ids, n, &txt, &tl) : tg_error_set(TG_ERR_RUNTIME, "out of memory");
                    if (rc != TG_OK) rc = tg_jsonl_error(rc, rd.path, rd.no[i]);
                    else rc = print_json_text(stdout, txt, tl);
                    free(txt);
                    free(ids);
                    json_decref(obj);
                }
            }
        }
        tg_jsonl_close(&rd);
    } else if (rc == TG_OK) {
        /* all of stdin */
        size_t cap = 1 << 16, len = 0, n;
        char *buf = malloc(cap);
        while (buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0) {
            len += n;
            if (len == cap) {
                char *b = realloc(buf, cap *= 2);
                if (!b) free(buf);
                buf = b;
            }
        }
        if (!buf) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory reading stdin");
        else if (!decode) {
            const int32_t *ids;
            size_t m;
            rc = tg_encoder_encode(enc, buf, len, special, &ids, &m);
            if (rc != TG_OK) rc = tg_jsonl_error(rc, "<stdin>", 0);
            else rc = print_ids(stdout, ids, m, 0);
        } else {
            buf[len] = 0; /* len < cap: the buffer grows when full */
            size_t m = 0, idcap = 1024;
            int32_t *ids = malloc(idcap * sizeof *ids);
            char *p = buf, *end;
            if (!ids) rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
            while (rc == TG_OK) {
                while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
                if (!*p) break;
                errno = 0;
                long v = strtol(p, &end, 10);
                if (end == p || errno || v < 0 || v > INT32_MAX) {
                    rc = tg_error_set(TG_ERR_INPUT, "<stdin>: '%.20s' is not a token id", p);
                    break;
                }
                if (m == idcap) {
                    int32_t *g = realloc(ids, (idcap *= 2) * sizeof *ids);
                    if (!g) {
                        rc = tg_error_set(TG_ERR_RUNTIME, "out of memory");
                        break;
                    }
                    ids = g;
                }
                ids[m++] = (int32_t)v;
                p = end;
            }
            char *txt = NULL;
            size_t tl;
            if (rc == TG_OK && (rc = tg_tokenizer_decode(tok, ids, m, &txt, &tl)) == TG_OK) fwrite(txt, 1, tl, stdout);
            free(txt);
            free(ids);
        }
        free(buf);
    }
    fflush(stdout);
    tg_encoder_free(enc);
    tg_tokenizer_free(tok);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}

/* ------------------------------------------------------------------ bench */

/* One timed encoding of data[cut[i], cut[i+1]) on thread i, each slice in
 * ~1 MB pieces as a caller streaming documents would: wall and summed
 * thread CPU seconds, and the token count. */
static int encode_slices(tg_tokenizer *tok, const char *data, const size_t *cut, int threads, double *wall,
                         double *cpu_out, int64_t *tokens_out) {
    int64_t tokens = 0;
    int err = TG_OK;
    double t0 = tg_now(), cpu = 0;
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(+ : tokens, cpu)
    for (int i = 0; i < threads; i++) {
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        tg_encoder *e;
        if (tg_encoder_new(&e, tok) != TG_OK) {
            err = TG_ERR_RUNTIME;
            continue;
        }
        const int32_t *ids;
        size_t n;
        size_t a = cut[i];
        while (a < cut[i + 1]) {
            size_t b = a + (1 << 20) < cut[i + 1] ? a + (1 << 20) : cut[i + 1];
            while (b < cut[i + 1] && data[b] != '\n') b++;
            if (tg_encoder_encode(e, data + a, b - a, 0, &ids, &n) != TG_OK) {
                err = TG_ERR_INPUT;
                break;
            }
            tokens += (int64_t)n;
            a = b;
        }
        tg_encoder_free(e);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        cpu += (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    }
    *wall = tg_now() - t0;
    *cpu_out = cpu;
    *tokens_out = tokens;
    return err;
}

static int bench(int argc, char **argv) {
    const char *tpath = NULL;
    int threads = 1, json = 0, repeat = 1;
    tg_opt opts[] = {
        {"tokenizer", TG_OPT_STR, &tpath, "PATH", "tokenizer (GPT-2's directory or a tokenizer.json)"},
        {"threads", TG_OPT_INT, &threads, "N", "encoding threads, each on a contiguous slice"},
        {"repeat", TG_OPT_INT, &repeat, "N",
         "encode N times, each with a freshly loaded tokenizer (cold caches), and report the fastest"},
        {"json", TG_OPT_FLAG, &json, NULL, "print one JSON line"},
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt tokenizer bench --tokenizer PATH FILE [--threads N] [--repeat N]",
                           "Encodes FILE (UTF-8 text, in memory) and prints the speed in MB/s.", opts, argc, argv, pos,
                           1, &npos);
    if (rc) return rc < 0 ? 0 : rc;
    if (npos != 1 || !tpath || threads < 1 || repeat < 1)
        return fprintf(stderr, "truthgpt: tokenizer bench: needs --tokenizer PATH, one FILE, --threads >= 1 and "
                               "--repeat >= 1\n"),
               2;
    char *data;
    size_t len;
    if ((rc = tg_read_file(pos[0], &data, &len)) != TG_OK) return tg_cli_fail(rc);
    /* slices end at newlines so no word is cut */
    size_t *cut = malloc(((size_t)threads + 1) * sizeof *cut);
    cut[0] = 0;
    for (int i = 1; i < threads; i++) {
        size_t c = len * (size_t)i / (size_t)threads;
        if (c < cut[i - 1]) c = cut[i - 1];
        while (c < len && data[c] != '\n') c++;
        cut[i] = c;
    }
    cut[threads] = len;
    double best = INFINITY, best_cpu = 0;
    int64_t tokens = 0;
    int err = TG_OK;
    for (int run = 0; run < repeat && err == TG_OK && rc == TG_OK; run++) {
        tg_tokenizer *tok;
        if ((rc = tg_tokenizer_load(&tok, tpath)) != TG_OK) break;
        double el, cpu;
        err = encode_slices(tok, data, cut, threads, &el, &cpu, &tokens);
        tg_tokenizer_free(tok);
        if (el < best) best = el, best_cpu = cpu;
    }
    free(cut);
    if (rc != TG_OK) {
        free(data);
        return tg_cli_fail(rc);
    }
    double el = best, cpu = best_cpu;
    if (err != TG_OK) rc = tg_error_set(err, "%s: encoding failed (invalid UTF-8?)", pos[0]);
    else if (json)
        printf("{\"impl\": \"truthgpt\", \"threads\": %d, \"mb\": %.2f, \"seconds\": %.3f, \"mb_per_s\": %.2f, "
               "\"cpu_seconds\": %.3f, \"mb_per_cpu_s\": %.2f, \"tokens\": %lld, \"runs\": %d}\n",
               threads, len / 1e6, el, len / 1e6 / el, cpu, len / 1e6 / cpu, (long long)tokens, repeat);
    else
        printf("truthgpt: %d thread(s): %.1f MB in %.2fs = %.1f MB/s (%.2f CPU-s, %.1f MB per CPU-s), %lld tokens "
               "(%.2f bytes/token)%s\n",
               threads, len / 1e6, el, len / 1e6 / el, cpu, len / 1e6 / cpu, (long long)tokens,
               tokens ? (double)len / tokens : 0.0, repeat > 1 ? ", fastest run" : "");
    free(data);
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}


int tg_cmd_tokenizer(int argc, char **argv) {
    const char *usage =
        "usage: truthgpt tokenizer train|encode|decode|bench ...\n\n"
        "  train CORPUS --vocab N --out tokenizer.json   train a byte-level BPE tokenizer\n"
        "  encode --tokenizer PATH [--jsonl]             text -> token ids\n"
        "  decode --tokenizer PATH [--jsonl]             token ids -> text\n"
        "  bench --tokenizer PATH FILE [--threads N]     encoding speed\n\n"
        "Each takes --help.\n";
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "train") == 0) return train(argc - 1, argv + 1);
    if (strcmp(argv[0], "encode") == 0) return encode_decode(argc - 1, argv + 1, 0);
    if (strcmp(argv[0], "decode") == 0) return encode_decode(argc - 1, argv + 1, 1);
    if (strcmp(argv[0], "bench") == 0) return bench(argc - 1, argv + 1);
    fprintf(stderr, "truthgpt: tokenizer: unknown subcommand '%s'\n%s", argv[0], usage);
    return 2;
}
