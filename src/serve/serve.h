/*
 * serve.h — internal interfaces of the server (src/serve),
 * docs/architecture.md "Server layering".
 *
 * Layers, each in its own file:
 *   http.c      libmicrohttpd daemon: routing, limits, API key, streaming,
 *               client disconnects, SIGTERM drain. Runs one thread a connection.
 *   openai.c    OpenAI request validation (JSON in) and response shapes
 *               (JSON out). The only place that knows the OpenAI field names.
 *   scheduler.c the one thread that owns the model: a bounded queue of
 *               requests, continuous batching through the generation engine.
 *   metrics.c   counters and gauges, Prometheus text format.
 *   assets.c    the web page (the files of web/), embedded at build time.
 *
 * The scheduler sees only token ids, sampling numbers and per-token events
 * (no JSON below the HTTP layer); HTTP threads see only requests and events.
 */
#ifndef TG_SERVE_H
#define TG_SERVE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h" /* the request limits, TG_MAX_* */

/* Request limits (stop strings, their length, top_logprobs, messages) are
 * the engine's table in truthgpt.h (TG_MAX_*), not a copy. */

/* Options of `truthgpt serve`. */
typedef struct {
    const char *model_path;  /* checkpoint or run directory */
    const char *host;        /* address to bind, "127.0.0.1" */
    int port;                /* 0: any free port (printed) */
    const char *api_key;     /* NULL: no key required */
    int parallel;            /* sequences decoded together */
    int max_queue;           /* requests waiting beyond `parallel` before 429 */
    int max_tokens_cap;      /* largest max_tokens accepted (400 above) */
    size_t max_body;         /* request body cap in bytes (413 above) */
    int threads;             /* compute threads for the model (0: all cores) */
    tg_dtype dtype;          /* weight precision of generation (fp32, bf16, int8) */
    int max_connections;     /* open connections served in full (global) */
    int max_per_client;      /* of them from one client address (0: no limit) */
    int request_timeout;     /* seconds to receive a whole request, headers and body */
} tg_serve_options;

/* Connections beyond max_connections (or a client's max_per_client) are
 * still accepted, up to this many more, but may only ask GET /health and
 * must send it within TG_SERVE_RESERVED_TIMEOUT seconds: a server whose
 * data connections are all held by slow clients still answers its health
 * check. Everything else on them gets 503 (429 over a client's limit). */
#define TG_SERVE_RESERVED_CONNECTIONS 16
#define TG_SERVE_RESERVED_TIMEOUT 2

/* Loads the model and serves until SIGTERM/SIGINT, then drains (stops
 * accepting, finishes running requests) and returns TG_OK. */
int tg_serve_run(const tg_serve_options *opt);

/* ------------------------------------------------------------- requests */

typedef enum { TG_SREQ_CHAT = 0, TG_SREQ_COMPLETION = 1 } tg_sreq_kind;

/* One step of a request's output as the HTTP layer needs it: the text it
 * adds to the reply (the engine holds back partial UTF-8 and possible stop
 * strings, so this may be empty or span several tokens) and the token it
 * generated with its log-probability and top alternatives. */
typedef struct {
    char *text;              /* content to append (malloc'd, may be empty) */
    int text_len;
    bool has_token;          /* false: a final flush that shows no token in logprobs */
    int32_t id;
    char *tok;               /* the token's own bytes (malloc'd, may be partial UTF-8) */
    int tok_len;
    float logprob;           /* log p(token) at temperature 1 before penalties */
    int n_top;
    char *top_text[TG_MAX_TOP_LOGPROBS];  /* malloc'd */
    int top_len[TG_MAX_TOP_LOGPROBS];
    float top_logprob[TG_MAX_TOP_LOGPROBS];
    int n_generated;         /* the request's generated tokens so far (usage) */
} tg_sevent;

typedef struct tg_sreq tg_sreq;
struct tg_sreq {
    /* ---- set by the HTTP thread before submission, read-only afterwards */
    tg_sreq_kind kind;
    char id[48];             /* "chatcmpl-..." or "cmpl-..." */
    int64_t created;         /* unix seconds */
    char model[128];         /* the model name echoed back */
    int32_t *prompt;         /* (n_prompt) token ids */
    int n_prompt;
    int max_tokens;
    float temperature, top_p;
    float frequency_penalty, presence_penalty;
    uint64_t seed;
    bool has_seed;
    char stop[TG_MAX_STOP][TG_MAX_STOP_LEN + 1]; /* NUL-terminated */
    int n_stop;
    bool logprobs;           /* return per-token logprobs */
    int top_logprobs;        /* alternatives per token, 0..20 */
    bool stream, include_usage;
    bool echo;               /* completions: echo the prompt (text only) */
    char *prompt_text;       /* completions with echo: the prompt (malloc'd) */
    void *grounding;         /* chat grounded in the search index: its sources (grounding.c), or NULL */
    double t_submit;

    /* ---- shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_sevent *events;       /* tokens so far, in order */
    int n_events, cap_events;
    bool done;               /* no more events will come */
    const char *finish_reason; /* "stop", "length", or "cancelled" (static string) */
    int n_generated;         /* completion tokens (including a stop token's text cut) */
    char *error;             /* a runtime failure's message (malloc'd) or NULL */
    double t_first_token;

    int wake_fd;             /* eventfd the HTTP thread polls beside its socket (-1: none);
                                written on every push and at the finish, closed on free */
    atomic_int cancelled;    /* set by HTTP on disconnect; the scheduler drops it */
    atomic_int refs;         /* HTTP side + scheduler side */
};

tg_sreq *tg_sreq_new(void);
/* Drops one reference; frees on the last. */
void tg_sreq_release(tg_sreq *r);
/* Scheduler side: append an event (takes ownership of its strings) / finish. */
void tg_sreq_push(tg_sreq *r, tg_sevent *ev);
void tg_sreq_finish(tg_sreq *r, const char *finish_reason, const char *error);

/* --------------------------------------------------------------- openai.c */

/* A validation failure: HTTP status plus OpenAI error fields. */
typedef struct {
    int status;
    char message[512];
    const char *type;        /* "invalid_request_error", ... */
    char param[64];          /* "" when none */
    const char *code;        /* NULL when none */
} tg_api_error;

/* Context the validator needs: the tokenizer (through a callback so that the
 * HTTP layer does not depend on the tokenizer's header) and the limits. */
typedef struct {
    /* Encodes text (special-token names stay plain text) to ids; returns
     * the count or -1. ids is malloc'd. */
    int (*encode)(void *ctx, const char *text, size_t len, int32_t **ids);
    /* Tokenizes a chat through the model's template (ChatML) with the
     * assistant's turn opened; returns the count or -1; ids is malloc'd. */
    int (*encode_chat)(void *ctx, const char *const *roles, const char *const *contents, int n, int32_t **ids);
    void *ctx;
    int max_tokens_cap;
    int n_ctx;               /* the model's context: the prompt must leave room for a token */
    int vocab_size;          /* token ids accepted in a completions prompt */
    const char *model_name;
} tg_api_ctx;

/* Parses and validates a request body into a new tg_sreq (refs 1). Returns
 * NULL and fills *err on bad input. */
tg_sreq *tg_api_parse(const tg_api_ctx *ctx, tg_sreq_kind kind, const char *body, size_t len,
                      tg_api_error *err);
/* Error body {"error":{message,type,param,code}} (malloc'd). */
char *tg_api_error_json(const tg_api_error *err);
void tg_api_error_fill(tg_api_error *err, int status, const char *type, const char *param, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Whole response of a finished non-streamed request (malloc'd JSON). */
char *tg_api_response_json(const tg_sreq *r);
/* /v1/models body. */
char *tg_api_models_json(const char *model_name, int64_t created);

/* Streaming: converts events [*cursor, n_events) into SSE "data: ..." chunks
 * appended to *out (a growing buffer). When the request is done and all
 * events are out, appends the final chunk(s) and "data: [DONE]". Call with
 * r->mu held. Returns true when the stream is complete. */
typedef struct {
    int cursor;              /* next event to send */
    char pending[8];         /* an incomplete UTF-8 sequence held back */
    int n_pending;
    size_t text_offset;      /* completions' text_offset of the next token */
    bool sent_role;          /* chat: the first chunk carries the role */
    bool finished;
} tg_api_stream;
bool tg_api_stream_next(tg_sreq *r, tg_api_stream *st, char **out, size_t *out_len, size_t *out_cap);

/* ------------------------------------------------------------ grounding.c */

/* Opens the search index that /v1/search and grounded chat use (NULL: none,
 * then both answer that there is none). default_top_k > 0 grounds every
 * chat request that does not say otherwise. */
int tg_grounding_open(const char *index_path, int default_top_k);
void tg_grounding_close(void);
/* Tokenizes a chat like ctx->encode_chat; when the request's "grounding"
 * (or the server default) asks for it, the top posts for the last user
 * message go in a system message before it (tg_search_sources_prompt) and
 * *sources holds them for the reply. Returns the count, or -1 with *err. */
int tg_grounding_encode_chat(const tg_api_ctx *ctx, json_t *body, const char **roles, char **contents, int n,
                             int32_t **ids, void **sources, tg_api_error *err);
void tg_grounding_free(void *sources);
/* A finished reply's message gets "annotations" (url_citation, one per
 * marker [N] of its content) and "sources". No-op without sources. */
void tg_grounding_message(const void *sources, json_t *message);
/* Streaming: the first delta carries "sources", the last "annotations". */
void tg_grounding_stream_start(const void *sources, json_t *delta);
void tg_grounding_stream_end(const void *sources, const tg_sreq *r, json_t *delta);
/* GET /v1/search: arg(ctx, name) gives a query-string argument or NULL.
 * Returns the body (malloc'd JSON) and its HTTP status. */
char *tg_grounding_search_json(const char *(*arg)(void *ctx, const char *name), void *ctx, int *status);

/* ------------------------------------------------------------ scheduler.c */

typedef struct tg_scheduler tg_scheduler;
typedef struct tg_serve_model tg_serve_model;  /* model + tokenizer, scheduler.c */

/* Loads the checkpoint (model and tokenizer) at path. */
int tg_serve_model_load(tg_serve_model **out, const char *path, int parallel, tg_dtype dtype);
void tg_serve_model_free(tg_serve_model *m);
/* The validator context for this model (encode, chat template, n_ctx). */
void tg_serve_model_api_ctx(tg_serve_model *m, tg_api_ctx *ctx);

int tg_scheduler_start(tg_scheduler **out, tg_serve_model *m, int parallel, int max_queue);
/* Queues r (takes one reference). Returns 0, or 429 when the queue is full,
 * or 503 when draining. */
int tg_scheduler_submit(tg_scheduler *s, tg_sreq *r);
/* Stops taking requests; the thread finishes queued and running ones. */
void tg_scheduler_drain(tg_scheduler *s);
/* Drains, joins the thread and frees. */
void tg_scheduler_stop(tg_scheduler *s);

/* -------------------------------------------------------------- metrics.c */

typedef enum {
    TG_EP_CHAT = 0, TG_EP_COMPLETIONS, TG_EP_MODELS, TG_EP_HEALTH, TG_EP_METRICS, TG_EP_PAGE, TG_EP_SEARCH, TG_EP_OTHER,
    TG_EP_COUNT
} tg_endpoint;

void tg_metrics_request(tg_endpoint ep, int status);
void tg_metrics_tokens(int64_t prompt_tokens, int64_t completion_tokens);
void tg_metrics_queue(int queued, int running);
void tg_metrics_decode(double tok_per_s);
/* One engine step that decoded `rows` running requests together. */
void tg_metrics_step(int rows);
void tg_metrics_ttft(double seconds);
void tg_metrics_cancelled(void);
/* Prometheus text exposition format 0.0.4 (malloc'd). */
char *tg_metrics_text(void);

/* --------------------------------------------------------------- assets.c */

/* The embedded web file for a URL path ("/" is index.html); NULL if none. */
const unsigned char *tg_asset_find(const char *path, size_t *len, const char **content_type);

#endif /* TG_SERVE_H */
