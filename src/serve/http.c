/*
 * http.c — the HTTP layer of `truthgpt serve` on libmicrohttpd
 * (docs/architecture.md "Server layering").
 *
 * One thread a connection (MHD's thread-per-connection mode), so a thread
 * may block waiting for its request's tokens: non-streamed requests wait in
 * the request handler, streamed ones in the response's content callback.
 * Either wait is a poll() over the client's socket and the request's
 * eventfd (which the scheduler writes on every token), so a client that
 * hangs up (POLLRDHUP) is noticed at once: the request is cancelled and its
 * engine slot freed at the next step. MHD's request-completed callback
 * cancels whatever is still running when a connection ends any other way.
 *
 * Limits: a request body cap (413, checked against Content-Length before
 * the body is read, and again while reading chunked bodies), the max_tokens
 * cap and the scheduler's bounded queue (400, 429), a connection limit and
 * an idle timeout (a client that never reads is dropped after it). Errors
 * are OpenAI-shaped JSON. --api-key guards the /v1 endpoints with a Bearer token
 * compared in constant time (CRYPTO_memcmp over SHA-256 digests, so not
 * even the key's length leaks through timing).
 *
 * SIGTERM or SIGINT drains: the listening socket closes, new generation
 * requests get 503, running and queued ones finish, then the process
 * returns TG_OK. Signals are taken synchronously with sigwait in the main
 * thread (no async-signal-safety hazards).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "serve/serve.h"

typedef struct {
    tg_serve_options opt;
    struct MHD_Daemon *daemon;
    tg_serve_model *model;
    tg_scheduler *sched;
    tg_api_ctx api;
    char model_name[128];
    int64_t started;
    bool has_key;
    uint8_t key_hash[32];
    atomic_int inflight;     /* requests between their first callback and completion */
    atomic_int draining;
} server;

/* Per-request state (MHD's con_cls). */
typedef struct {
    server *srv;
    tg_endpoint ep;
    int fd;                  /* the client socket, for hang-up checks */
    char *body;
    size_t len, cap;
    bool responded;          /* a response is queued (e.g. 413 before the body) */
    bool too_big;            /* the body passed the cap: the rest is dropped, then 413 */
    size_t dropped;          /* bytes dropped so far */
    tg_sreq *req;            /* a submitted generation request (HTTP's reference) */
    tg_api_stream st;        /* streaming state */
    char *out;               /* SSE bytes formatted and not yet handed to MHD */
    size_t out_len, out_cap, out_pos;
} conn;

/* ------------------------------------------------------------- responses */

static enum MHD_Result respond(struct MHD_Connection *c, conn *k, int status, const char *type, char *body,
                               size_t len, bool owned) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (status == 405) {
        bool post = k->ep == TG_EP_CHAT || k->ep == TG_EP_COMPLETIONS;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, post ? "POST" : "GET, HEAD");
    }
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    k->responded = true;
    tg_metrics_request(k->ep, status);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, conn *k, int status, char *json) {
    if (!json) {
        static char fallback[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                                 "\"param\":null,\"code\":null}}";
        return respond(c, k, 500, "application/json", fallback, sizeof fallback - 1, false);
    }
    return respond(c, k, status, "application/json", json, strlen(json), true);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, conn *k, int status, const char *type,
                                     const char *param, const char *code, const char *msg) {
    tg_api_error e;
    tg_api_error_fill(&e, status, type, param, code, "%s", msg);
    return respond_json(c, k, status, tg_api_error_json(&e));
}

/* --------------------------------------------------------------- helpers */

static tg_endpoint route(const char *url) {
    if (strcmp(url, "/v1/chat/completions") == 0) return TG_EP_CHAT;
    if (strcmp(url, "/v1/completions") == 0) return TG_EP_COMPLETIONS;
    if (strcmp(url, "/v1/models") == 0) return TG_EP_MODELS;
    if (strcmp(url, "/health") == 0) return TG_EP_HEALTH;
    if (strcmp(url, "/metrics") == 0) return TG_EP_METRICS;
    if (strcmp(url, "/v1/search") == 0) return TG_EP_SEARCH;
    size_t len;
    const char *type;
    if (tg_asset_find(url, &len, &type)) return TG_EP_PAGE;
    return TG_EP_OTHER;
}

/* True when the client has closed its end (or the socket failed). */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Waits (called with r->mu held, which it drops meanwhile) until the
 * request has news or the client's socket shows a hang-up: one poll() over
 * the socket and the request's eventfd, so a client who leaves is noticed
 * at once and its slot is free by the next decode step. The 250 ms timeout
 * is only a safety net. Without an eventfd, a 25 ms condition-variable
 * wait stands in. The caller checks client_gone afterwards. */
static void wait_event(tg_sreq *r, int fd) {
    if (r->wake_fd < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 25 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    struct pollfd p[2] = {{.fd = r->wake_fd, .events = POLLIN}, {.fd = fd, .events = POLLRDHUP}};
    if (poll(p, fd >= 0 ? 2 : 1, 250) > 0 && (p[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t got = read(r->wake_fd, &v, sizeof v); /* resets the counter */
        (void)got;
    }
    pthread_mutex_lock(&r->mu);
}

static bool authorized(server *s, struct MHD_Connection *c) {
    if (!s->has_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    uint8_t got[32];
    tg_sha256(h, strlen(h), got);
    return CRYPTO_memcmp(got, s->key_hash, 32) == 0;
}

static void make_id(char *out, size_t n, const char *prefix) {
    uint8_t b[12];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        static atomic_ullong counter;
        uint64_t x = atomic_fetch_add(&counter, 1) ^ (uint64_t)time(NULL) << 20;
        memcpy(b, &x, 8);
        memset(b + 8, 0, 4);
    }
    char hex[25];
    tg_hex(b, sizeof b, hex);
    snprintf(out, n, "%s%s", prefix, hex);
}

/* ------------------------------------------------------------ streaming */

/* MHD pulls the event stream from here (on this connection's thread). It
 * blocks until the request has new tokens or the client has gone. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn *k = cls;
    tg_sreq *r = k->req;
    if (k->out_pos == k->out_len) {
        k->out_pos = k->out_len = 0;
        if (k->st.finished) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&r->mu);
        for (;;) {
            bool fin = tg_api_stream_next(r, &k->st, &k->out, &k->out_len, &k->out_cap);
            if (k->out_len > 0 || fin) break;
            wait_event(r, k->fd);
            if (!r->done && client_gone(k->fd)) {
                atomic_store(&r->cancelled, 1);
                pthread_mutex_unlock(&r->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        pthread_mutex_unlock(&r->mu);
        if (k->out_len == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = k->out_len - k->out_pos;
    if (n > max) n = max;
    memcpy(buf, k->out + k->out_pos, n);
    k->out_pos += n;
    return (ssize_t)n;
}

/* ------------------------------------------------------------ generation */

static enum MHD_Result handle_generation(struct MHD_Connection *c, conn *k) {
    server *s = k->srv;
    if (atomic_load(&s->draining))
        return respond_error(c, k, 503, "server_error", NULL, "server_shutting_down",
                             "the server is shutting down and takes no new requests");
    tg_api_error err;
    tg_sreq *r = tg_api_parse(&s->api, k->ep == TG_EP_CHAT ? TG_SREQ_CHAT : TG_SREQ_COMPLETION, k->body, k->len,
                              &err);
    if (!r) return respond_json(c, k, err.status, tg_api_error_json(&err));
    make_id(r->id, sizeof r->id, r->kind == TG_SREQ_CHAT ? "chatcmpl-" : "cmpl-");
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* -1: the waits fall back to timed ones */
    r->t_submit = tg_now();
    atomic_fetch_add(&r->refs, 1); /* one for the scheduler, one for us */
    int rc = tg_scheduler_submit(s->sched, r);
    if (rc != 0) {
        tg_sreq_release(r);
        tg_sreq_release(r);
        if (rc == 429)
            return respond_error(c, k, 429, "rate_limit_error", NULL, "rate_limit_exceeded",
                                 "the request queue is full; retry later");
        return respond_error(c, k, 503, "server_error", NULL, "server_shutting_down",
                             "the server is shutting down and takes no new requests");
    }
    k->req = r;
    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, k, NULL);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        k->responded = true;
        tg_metrics_request(k->ep, 200);
        return ret;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        wait_event(r, k->fd);
        if (!r->done && client_gone(k->fd)) {
            atomic_store(&r->cancelled, 1);
            pthread_mutex_unlock(&r->mu);
            return MHD_NO; /* nobody to answer: close the connection */
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (r->error) return respond_error(c, k, 500, "server_error", NULL, NULL, r->error);
    return respond_json(c, k, 200, tg_api_response_json(r));
}

/* ---------------------------------------------------------------- routes */

static const char *query_arg(void *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result handle(server *s, struct MHD_Connection *c, conn *k, const char *url, const char *method) {
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    switch (k->ep) {
    case TG_EP_HEALTH: {
        if (!get) break;
        bool d = atomic_load(&s->draining);
        static char ok[] = "{\"status\":\"ok\"}", dr[] = "{\"status\":\"draining\"}";
        return d ? respond(c, k, 503, "application/json", dr, sizeof dr - 1, false)
                 : respond(c, k, 200, "application/json", ok, sizeof ok - 1, false);
    }
    case TG_EP_METRICS: {
        if (!get) break;
        char *t = tg_metrics_text();
        if (!t) return respond_error(c, k, 500, "server_error", NULL, NULL, "out of memory");
        return respond(c, k, 200, "text/plain; version=0.0.4; charset=utf-8", t, strlen(t), true);
    }
    case TG_EP_PAGE: {
        if (!get) break;
        size_t len;
        const char *type;
        const unsigned char *data = tg_asset_find(url, &len, &type);
        return respond(c, k, 200, type, (char *)data, len, false);
    }
    case TG_EP_MODELS:
        if (!get) break;
        return respond_json(c, k, 200, tg_api_models_json(s->model_name, s->started));
    case TG_EP_CHAT:
    case TG_EP_COMPLETIONS:
        if (strcmp(method, "POST") != 0) break;
        return handle_generation(c, k);
    case TG_EP_SEARCH: { /* grounding.c */
        if (!get) break;
        int status = 500;
        char *json = tg_grounding_search_json(query_arg, c, &status);
        return respond_json(c, k, status, json);
    }
    default: {
        char msg[300];
        snprintf(msg, sizeof msg, "no such endpoint: %s %.200s", method, url);
        size_t ml;
        (void)ml;
        return respond_error(c, k, 404, "invalid_request_error", NULL, "not_found", msg);
    }
    }
    char msg[300];
    snprintf(msg, sizeof msg, "method %s is not allowed on %.200s", method, url);
    return respond_error(c, k, 405, "invalid_request_error", NULL, "method_not_allowed", msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    (void)version;
    server *s = cls;
    conn *k = *con_cls;
    if (!k) {
        /* first call: headers only. Refuse early what needs no body. */
        k = calloc(1, sizeof *k);
        if (!k) return MHD_NO;
        k->srv = s;
        k->fd = -1;
        *con_cls = k;
        atomic_fetch_add(&s->inflight, 1);
        k->ep = route(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) k->fd = ci->connect_fd;
        bool gen = k->ep == TG_EP_CHAT || k->ep == TG_EP_COMPLETIONS || k->ep == TG_EP_MODELS || k->ep == TG_EP_SEARCH;
        if (gen && !authorized(s, c))
            return respond_error(c, k, 401, "invalid_request_error", NULL, "invalid_api_key",
                                 "missing or wrong API key: send 'Authorization: Bearer KEY'");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || n > s->opt.max_body) {
                char msg[160];
                snprintf(msg, sizeof msg, "the request body is larger than this server's limit of %zu bytes",
                         s->opt.max_body);
                return respond_error(c, k, 413, "invalid_request_error", NULL, "request_too_large", msg);
            }
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (k->responded) { /* answered already (413): discard what still arrives */
            *upload_size = 0;
            return MHD_YES;
        }
        if (k->too_big || k->len + *upload_size > s->opt.max_body) {
            /* MHD cannot answer in the middle of a body, so the rest is read
             * and dropped and the 413 goes out at its end; past 64 MiB of
             * dropped bytes the connection is cut instead. */
            k->too_big = true;
            k->dropped += *upload_size;
            *upload_size = 0;
            return k->dropped > ((size_t)64 << 20) ? MHD_NO : MHD_YES;
        }
        if (k->len + *upload_size + 1 > k->cap) {
            size_t cap = k->cap ? k->cap : 4096;
            while (cap < k->len + *upload_size + 1) cap *= 2;
            char *b = realloc(k->body, cap);
            if (!b) return MHD_NO;
            k->body = b;
            k->cap = cap;
        }
        memcpy(k->body + k->len, upload_data, *upload_size);
        k->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->responded) return MHD_YES;
    if (k->too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "the request body is larger than this server's limit of %zu bytes",
                 s->opt.max_body);
        return respond_error(c, k, 413, "invalid_request_error", NULL, "request_too_large", msg);
    }
    return handle(s, c, k, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    server *s = cls;
    conn *k = *con_cls;
    if (!k) return;
    if (k->req) {
        /* the client left before the end (or the reply failed): stop generating for it */
        if (!k->req->done) atomic_store(&k->req->cancelled, 1);
        tg_sreq_release(k->req);
    }
    free(k->body);
    free(k->out);
    free(k);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* ------------------------------------------------------------------ run */

static int bind_address(const char *host, int port, struct sockaddr_storage *ss, bool *v6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) return tg_error_set(TG_ERR_INPUT, "--host %s: %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return TG_OK;
}

static const char *base_name(const char *path, char *buf, size_t n) {
    snprintf(buf, n, "%s", path);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
    const char *b = strrchr(buf, '/');
    return b ? b + 1 : buf;
}

int tg_serve_run(const tg_serve_options *opt) {
    if (opt->parallel < 1 || opt->parallel > 256)
        return tg_error_set(TG_ERR_INPUT, "--parallel must be between 1 and 256, got %d", opt->parallel);
    if (opt->max_queue < 1) return tg_error_set(TG_ERR_INPUT, "--max-queue must be at least 1, got %d", opt->max_queue);
    if (opt->max_tokens_cap < 1)
        return tg_error_set(TG_ERR_INPUT, "--max-tokens-cap must be at least 1, got %d", opt->max_tokens_cap);
    if (opt->port < 0 || opt->port > 65535) return tg_error_set(TG_ERR_INPUT, "--port %d is out of range", opt->port);
    if (opt->api_key && !opt->api_key[0]) return tg_error_set(TG_ERR_INPUT, "--api-key must not be empty");

    /* Signals are taken by sigwait below; block them before any thread
     * starts so that every thread inherits the mask. A client that hangs up
     * must not kill us with SIGPIPE either. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage ss;
    bool v6 = false;
    TG_TRY(bind_address(opt->host, opt->port, &ss, &v6));

    server *s = calloc(1, sizeof *s);
    if (!s) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    s->opt = *opt;
    s->started = (int64_t)time(NULL);
    char nb[512];
    snprintf(s->model_name, sizeof s->model_name, "%.127s", base_name(opt->model_path, nb, sizeof nb));
    if (opt->api_key) {
        s->has_key = true;
        tg_sha256(opt->api_key, strlen(opt->api_key), s->key_hash);
    }
    double t0 = tg_now();
    int rc = tg_serve_model_load(&s->model, opt->model_path, opt->parallel);
    if (rc != TG_OK) {
        free(s);
        return rc;
    }
    tg_serve_model_api_ctx(s->model, &s->api);
    s->api.max_tokens_cap = opt->max_tokens_cap;
    s->api.model_name = s->model_name;
    rc = tg_scheduler_start(&s->sched, s->model, opt->parallel, opt->max_queue);
    if (rc != TG_OK) {
        tg_serve_model_free(s->model);
        free(s);
        return rc;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (v6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)30, MHD_OPTION_END);
    if (!s->daemon) {
        rc = tg_error_set(TG_ERR_INPUT, "cannot listen on %s:%d (address in use or not allowed?)", opt->host,
                          opt->port);
        tg_scheduler_stop(s->sched);
        tg_serve_model_free(s->model);
        free(s);
        return rc;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : opt->port;
    printf("truthgpt serve: model %s (context %d, %d parallel) loaded in %.1fs\n", s->model_name, s->api.n_ctx,
           opt->parallel, tg_now() - t0);
    printf("truthgpt serve: listening on http://%s%s%s:%d/ (API at /v1, chat page at /)\n", v6 ? "[" : "",
           opt->host, v6 ? "]" : "", port);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    printf("truthgpt serve: %s received, draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    fflush(stdout);
    atomic_store(&s->draining, 1);
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    tg_scheduler_drain(s->sched);
    /* running and queued requests finish and their replies go out; a client
     * that never reads is dropped by the idle timeout, so this ends */
    double t_drain = tg_now();
    while (atomic_load(&s->inflight) > 0 && tg_now() - t_drain < 120) usleep(20000);
    MHD_stop_daemon(s->daemon);
    tg_scheduler_stop(s->sched);
    tg_serve_model_free(s->model);
    free(s);
    printf("truthgpt serve: stopped\n");
    fflush(stdout);
    return TG_OK;
}
