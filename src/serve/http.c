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
 * Limits (docs/api.md, "Limits"): a request body cap (413, checked against
 * Content-Length before the body is read, and again while reading chunked
 * bodies), the max_tokens cap and the scheduler's bounded queue (400, 429),
 * global and per-client connection limits with reserved /health-only
 * connections beyond them, a deadline for a whole request to arrive (408)
 * besides MHD's idle timeout (a client that never reads is dropped after
 * it), and refusal of requests whose framing is ambiguous (two
 * Content-Lengths, Content-Length with Transfer-Encoding: 400 and close;
 * codings other than chunked: 501) or whose path holds %00. Errors
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
    /* Open connections, for the limits and the request deadline (see
     * "connections" below); guarded by mu. */
    pthread_mutex_t mu;
    struct tracked *conns;
    int n_conns;
    pthread_t watchdog;
    atomic_int stop_watchdog;
} server;

/* One open connection (MHD's socket context). */
typedef struct tracked {
    struct tracked *prev, *next;
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    double recv_start;       /* when the request now arriving began (or the connection, or the last reply) */
    bool receiving;          /* a request is arriving: the deadline runs */
    bool cut;                /* the watchdog closed it */
    int over;                /* 0, or 503 / 429: past the global / per-client limit, /health only */
} tracked;

/* Per-request state (MHD's con_cls). */
typedef struct {
    server *srv;
    tg_endpoint ep;
    int fd;                  /* the client socket, for hang-up checks */
    char *body;
    size_t len, cap;
    bool started;            /* the first on_request call (headers) is done */
    bool bad_path;           /* the raw URL holds %00 */
    bool close;              /* answer with Connection: close (a malformed request) */
    tracked *tr;             /* its connection, NULL if untracked */
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
    /* MHD closes the connection after a reply that says so: what follows a
     * request we could not frame (RFC 9112 section 6.3) is never parsed. */
    if (k->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == 503 || status == 429) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
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

/* ----------------------------------------------------------- connections */

/* Every open connection is tracked from MHD's connection-started to its
 * connection-closed notification (which MHD sends before it closes the
 * socket, so the fd held here is never a reused one). Two jobs:
 *
 *   limits: past max_connections open ones, or a client's
 *   max_per_client, a new connection is marked `over` and may only ask
 *   GET /health (up to TG_SERVE_RESERVED_CONNECTIONS of them, MHD's own
 *   hard limit); everything else on it gets 503 / 429 and a close.
 *
 *   deadline: a request must arrive whole (headers and body) within
 *   request_timeout seconds of its first byte's chance (the connection's
 *   start, or the end of the previous reply on a kept-alive one);
 *   TG_SERVE_RESERVED_TIMEOUT on an `over` connection. MHD's own timeout
 *   is an inactivity timeout that every byte resets, so a client sending a
 *   byte a second would hold a connection forever; the watchdog thread
 *   answers 408 and shuts the socket down instead. Cost: one pass over the
 *   open connections every 200 ms. */

static bool same_client(const tracked *a, const struct sockaddr_storage *b) {
    if (a->addr.ss_family != b->ss_family) return false;
    if (b->ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (b->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                      16) == 0;
    return true;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        tracked *t = calloc(1, sizeof *t);
        *socket_context = t;
        if (!t) return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                   : sizeof(struct sockaddr_in);
            memcpy(&t->addr, ci->client_addr, len);
            t->addr_len = len;
        }
        t->recv_start = tg_now();
        t->receiving = true;
        pthread_mutex_lock(&s->mu);
        int same = 0;
        for (tracked *o = s->conns; o; o = o->next) same += !o->over && same_client(o, &t->addr);
        if (s->n_conns >= s->opt.max_connections) t->over = 503;
        else if (s->opt.max_per_client > 0 && same >= s->opt.max_per_client) t->over = 429;
        t->next = s->conns;
        if (s->conns) s->conns->prev = t;
        s->conns = t;
        if (!t->over) s->n_conns++;
        pthread_mutex_unlock(&s->mu);
        if (t->over) tg_metrics_request(TG_EP_OTHER, t->over);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        tracked *t = *socket_context;
        if (!t) return;
        pthread_mutex_lock(&s->mu);
        if (t->prev) t->prev->next = t->next;
        else s->conns = t->next;
        if (t->next) t->next->prev = t->prev;
        if (!t->over) s->n_conns--;
        pthread_mutex_unlock(&s->mu);
        free(t);
        *socket_context = NULL;
    }
}

static tracked *conn_tracked(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The request on t has arrived whole (receiving false) or a new one may
 * start arriving (true). */
static void set_receiving(server *s, tracked *t, bool on) {
    if (!t) return;
    pthread_mutex_lock(&s->mu);
    t->receiving = on;
    if (on) t->recv_start = tg_now();
    pthread_mutex_unlock(&s->mu);
}

static void *watchdog_main(void *arg) {
    server *s = arg;
    static const char body[] = "{\"error\":{\"message\":\"the request did not arrive in time\","
                               "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"timeout\"}}";
    char reply[512];
    int rl = snprintf(reply, sizeof reply,
                      "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      sizeof body - 1, body);
    while (!atomic_load(&s->stop_watchdog)) {
        usleep(200 * 1000);
        double now = tg_now();
        pthread_mutex_lock(&s->mu);
        for (tracked *t = s->conns; t; t = t->next) {
            double limit = t->over ? TG_SERVE_RESERVED_TIMEOUT : s->opt.request_timeout;
            if (!t->receiving || t->cut || t->fd < 0 || now - t->recv_start < limit) continue;
            /* MHD is only reading this socket (no reply is under way while a
             * request arrives), so the 408 cannot interleave with one. */
            ssize_t sent = send(t->fd, reply, (size_t)rl, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)sent;
            shutdown(t->fd, SHUT_RDWR);
            t->cut = true;
            tg_metrics_request(TG_EP_OTHER, 408);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* The raw request target, before MHD decodes it: a %00 would become a NUL
 * that ends the path early ("/health%00x" read as "/health"). Allocates
 * the request's state, which MHD hands to on_request as *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)c;
    conn *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->srv = cls;
    k->fd = -1;
    for (const char *p = uri; p && (p = strchr(p, '%')); p++)
        if (p[1] == '0' && p[2] == '0') k->bad_path = true;
    return k;
}

/* Framing headers, counted (MHD keeps every occurrence). */
typedef struct {
    int n_cl, n_te;
    bool cl_bad;
    char te[64];
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->n_cl++;
        if (!value || !*value || strspn(value, "0123456789") != strlen(value)) f->cl_bad = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (f->n_te++ == 0) snprintf(f->te, sizeof f->te, "%s", value ? value : "");
    }
    return MHD_YES;
}

/* RFC 9112 section 6: a request whose body length is ambiguous is refused
 * and its connection closed, since what follows it cannot be framed (the
 * classic request-smuggling shapes). 0 when the framing is sound. */
static int check_framing(struct MHD_Connection *c, char *msg, size_t n) {
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.n_cl > 1) return snprintf(msg, n, "more than one Content-Length header"), 400;
    if (f.cl_bad) return snprintf(msg, n, "Content-Length is not a decimal number"), 400;
    if (f.n_cl && f.n_te) return snprintf(msg, n, "both Content-Length and Transfer-Encoding"), 400;
    if (f.n_te > 1 || (f.n_te && strcasecmp(f.te, "chunked") != 0))
        return snprintf(msg, n, "transfer coding '%.40s' is not supported (only chunked)", f.te), 501;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    (void)version;
    server *s = cls;
    conn *k = *con_cls;
    if (!k || !k->started) {
        /* first call: headers only. Refuse early what needs no body. */
        if (!k) k = calloc(1, sizeof *k); /* on_uri could not allocate it */
        if (!k) return MHD_NO;
        k->srv = s;
        k->fd = -1;
        k->started = true;
        *con_cls = k;
        atomic_fetch_add(&s->inflight, 1);
        k->ep = route(url);
        k->tr = conn_tracked(c);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) k->fd = ci->connect_fd;
        char why[160];
        int frame = check_framing(c, why, sizeof why);
        if (frame) {
            k->close = true;
            return respond_error(c, k, frame, "invalid_request_error", NULL,
                                 frame == 501 ? "unsupported_transfer_coding" : "bad_framing", why);
        }
        if (k->bad_path) {
            k->close = true;
            return respond_error(c, k, 400, "invalid_request_error", NULL, "bad_path",
                                 "the request path holds an encoded NUL (%00)");
        }
        if (k->tr && k->tr->over && k->ep != TG_EP_HEALTH) {
            k->close = true;
            return respond_error(c, k, k->tr->over, k->tr->over == 429 ? "rate_limit_error" : "server_error", NULL,
                                 "too_many_connections",
                                 k->tr->over == 429 ? "this client has too many open connections; retry later"
                                                    : "the server's connections are all in use; retry later");
        }
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
    /* The whole request is in: its deadline stops (a reply may take long). */
    set_receiving(s, k->tr, false);
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
    (void)toe;
    server *s = cls;
    conn *k = *con_cls;
    if (!k) return;
    /* A kept-alive connection's next request starts its deadline now. */
    set_receiving(s, conn_tracked(c), true);
    if (!k->started) { /* MHD refused the request before on_request */
        free(k);
        *con_cls = NULL;
        return;
    }
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
    if (opt->max_connections < 1 || opt->max_connections > 16384)
        return tg_error_set(TG_ERR_INPUT, "--max-connections must be between 1 and 16384, got %d", opt->max_connections);
    if (opt->max_per_client < 0 || opt->max_per_client > opt->max_connections)
        return tg_error_set(TG_ERR_INPUT, "--max-connections-per-client must be between 0 and --max-connections (%d), got %d",
                            opt->max_connections, opt->max_per_client);
    if (opt->request_timeout < 1 || opt->request_timeout > 3600)
        return tg_error_set(TG_ERR_INPUT, "--request-timeout must be between 1 and 3600 seconds, got %d",
                            opt->request_timeout);

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
    int rc = tg_serve_model_load(&s->model, opt->model_path, opt->parallel, opt->dtype);
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
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        tg_scheduler_stop(s->sched);
        tg_serve_model_free(s->model);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return tg_error_set(TG_ERR_RUNTIME, "cannot start the request-deadline thread");
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (v6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)(opt->max_connections + TG_SERVE_RESERVED_CONNECTIONS),
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_CONNECTION,
                                 on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_END);
    if (!s->daemon) {
        rc = tg_error_set(TG_ERR_INPUT, "cannot listen on %s:%d (address in use or not allowed?)", opt->host,
                          opt->port);
        atomic_store(&s->stop_watchdog, 1);
        pthread_join(s->watchdog, NULL);
        pthread_mutex_destroy(&s->mu);
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
    atomic_store(&s->stop_watchdog, 1);
    pthread_join(s->watchdog, NULL);
    pthread_mutex_destroy(&s->mu);
    tg_scheduler_stop(s->sched);
    tg_serve_model_free(s->model);
    free(s);
    printf("truthgpt serve: stopped\n");
    fflush(stdout);
    return TG_OK;
}
