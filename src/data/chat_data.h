/*
 * chat_data.h — chat training data from a community's own posts (`truthgpt
 * chat-data`): each post becomes a conversation whose user turn asks for a
 * post about the post's key terms (TF-IDF over the corpus, several phrasings)
 * and whose assistant turn is the post itself. No model is needed.
 *
 * Everything is a deterministic function of the corpus and the seed: the key
 * terms, the phrasing chosen for each post, and the held-out split.
 */
#ifndef TG_CHAT_DATA_H
#define TG_CHAT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ------------------------------------------------------------------ TF-IDF */

/* Document frequencies of the terms of a corpus. Terms are lower-cased words
 * of letters and digits (apostrophes inside words kept), CJK text as
 * character bigrams; URLs, common English function words, numbers and words
 * shorter than 3 characters are not terms. */
typedef struct tg_tfidf tg_tfidf;

int tg_tfidf_init(tg_tfidf **out);
void tg_tfidf_free(tg_tfidf *t);
/* Counts the distinct terms of one document. */
int tg_tfidf_add(tg_tfidf *t, const char *text, size_t len);
int64_t tg_tfidf_docs(const tg_tfidf *t);
/* Up to k key terms of text (which need not have been added), best first:
 * score tf * (ln((1 + N) / (1 + df)) + 1), ties broken by first occurrence.
 * Terms are written to terms[i] (pointers valid until the next call or
 * tg_tfidf_free). Returns the number found. */
int tg_tfidf_terms(tg_tfidf *t, const char *text, size_t len, int k, const char **terms);

/* ------------------------------------------------------------- chat-data */

typedef struct {
    const char *corpus;   /* ingest output directory (train.jsonl [+ val.jsonl]) or a JSONL file */
    const char *field;    /* the text field of each line ("text") */
    const char *out;      /* chat JSONL for training */
    const char *val_out;  /* chat JSONL held out (NULL: no held-out file, val posts dropped) */
    double val_frac;      /* held-out fraction by content hash; < 0: the corpus's own
                             val.jsonl when CORPUS is a directory that has one, else 0.05 */
    uint64_t seed;        /* phrasing choice and split */
    int n_terms;          /* key terms asked for (3) */
    const char *system;   /* optional system message for every conversation (NULL: none) */
} tg_chat_data_params;

tg_chat_data_params tg_chat_data_default_params(void);

typedef struct {
    int64_t posts;     /* documents read */
    int64_t train;     /* conversations written to out */
    int64_t val;       /* conversations written to val_out */
    int64_t empty;     /* documents skipped: empty text */
    int64_t no_terms;  /* conversations asking for "a post" with no key terms */
} tg_chat_data_stats;

/* Writes p->out (and p->val_out) atomically. Errors name the file and line. */
int tg_chat_data_make(const tg_chat_data_params *p, tg_chat_data_stats *st);

/* The user prompt for a post with these terms (phrasing picked by seed and the
 * post's hash); malloc'd. Exposed for tests. */
char *tg_chat_data_prompt(const char *const *terms, int n_terms, uint64_t choice);

/* Ends a run's two outputs: rc == TG_OK commits the open ones (out, then
 * val), otherwise they are removed. Returns rc or the commit's error. */
int tg_chat_data_close(int rc, tg_atomic_file *out, int out_open, tg_atomic_file *val, int val_open);

/* ------------------------------------------- chat-data --grounded DB */

/* Conversations that teach answering from retrieved posts and citing the
 * right one (chat_data_grounded.c): sources block (the server's grounding
 * template) with the target among distractors, a question from the target's
 * key terms, and an answer that quotes the target and ends with its marker. */
typedef struct {
    const char *index;    /* search index (truthgpt index) */
    const char *out;      /* chat JSONL for training */
    const char *val_out;  /* held-out conversations (NULL: none) */
    double val_frac;      /* posts held out by a hash of their id (0.05) */
    uint64_t seed;        /* held-out choice, the target's number, fill-in distractors */
    int top_k;            /* sources in each prompt, 2..10 (3) */
    int64_t max_posts;    /* 0: every post of the index; else the first N */
    const char *system;   /* optional system message before the sources (NULL: none) */
} tg_chat_grounded_params;

tg_chat_grounded_params tg_chat_grounded_default_params(void);
/* Writes p->out (and p->val_out) atomically. Each line is
 * {"messages": [...], "grounding": {"target": ID, "cite": N, "sources": K}}
 * (finetune reads "messages" and ignores the rest). posts counts the index's
 * posts, no_terms those skipped without a key term to quote from. */
int tg_chat_data_grounded(const tg_chat_grounded_params *p, tg_chat_data_stats *st);

#endif /* TG_CHAT_DATA_H */
