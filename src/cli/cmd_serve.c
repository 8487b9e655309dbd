/*
 * cmd_serve.c — `truthgpt serve`: an OpenAI-compatible HTTP API and a web
 * chat page over a checkpoint (docs/architecture.md "Server layering"). The
 * server itself is src/serve; this file parses the flags and turns the
 * outcome into an exit status.
 */
#include <stdio.h>

#include "cli.h"
#include "core/core.h"
#include "serve/serve.h"

int tg_cmd_serve(int argc, char **argv) {
    tg_serve_options o = {
        .model_path = NULL,
        .host = "127.0.0.1",
        .port = 8080,
        .api_key = NULL,
        .parallel = 8,
        .max_queue = 64,
        .max_tokens_cap = 4096,
        .max_body = 0,
        .threads = 0,
        .max_connections = 256,
        .max_per_client = 64,
        .request_timeout = 30,
    };
    int max_body_kb = 1024, ground_k = 0;
    const char *index = NULL, *dtype_s = "fp32";
    const char *device = "cpu";
    const tg_opt opts[] = {
        {"model", TG_OPT_STR, &o.model_path, "DIR", "checkpoint or run directory (its newest checkpoint)"},
        {"host", TG_OPT_STR, &o.host, "ADDR", "address to listen on (loopback unless told otherwise)"},
        {"port", TG_OPT_INT, &o.port, "N", "TCP port (0: any free port, printed at start)"},
        {"api-key", TG_OPT_STR, &o.api_key, "KEY", "require 'Authorization: Bearer KEY' on the /v1 endpoints"},
        {"parallel", TG_OPT_INT, &o.parallel, "N", "requests decoded together in one batch"},
        {"max-queue", TG_OPT_INT, &o.max_queue, "N", "requests waiting for a slot before 429"},
        {"max-tokens-cap", TG_OPT_INT, &o.max_tokens_cap, "N", "largest max_tokens a request may ask (400 above)"},
        {"max-body-kb", TG_OPT_INT, &max_body_kb, "N", "request body limit in KiB (413 above)"},
        {"threads", TG_OPT_INT, &o.threads, "N", "compute threads (0: all cores)"},
        {"dtype", TG_OPT_STR, &dtype_s, "fp32|bf16|int8", "weight precision for generation (int8: blocks of 32)"},
        {"index", TG_OPT_STR, &index, "DB", "search index (truthgpt index): GET /v1/search and grounded chat"},
        {"ground-top-k", TG_OPT_INT, &ground_k, "K", "ground every chat request in K posts unless it says otherwise"},
        {"max-connections", TG_OPT_INT, &o.max_connections, "N", "open connections served (more: /health only)"},
        {"max-connections-per-client", TG_OPT_INT, &o.max_per_client, "N",
         "of them from one client address (0: no limit; behind a proxy all share its address)"},
        {"request-timeout", TG_OPT_INT, &o.request_timeout, "S",
         "seconds to receive a whole request, headers and body (408 and close after)"},
        TG_OPT_DEVICE(device),
        {0},
    };
    char *pos[1];
    int npos;
    int rc = tg_args_parse("truthgpt serve --model DIR [--host ADDR] [--port N] [--api-key KEY] [--parallel N]",
                           "Serves the model behind an OpenAI-compatible API (POST /v1/chat/completions,\n"
                           "POST /v1/completions, GET /v1/models), GET /health, GET /metrics (Prometheus)\n"
                           "and a chat page at GET /. SIGTERM or Ctrl-C finishes running requests, then exits.\n"
                           "With --index DB: GET /v1/search?q=... and chat grounded in the posts (a request's\n"
                           "\"grounding\": {\"index\": true, \"top_k\": K}) with cited sources; see docs/search.md.",
                           opts, argc, argv, pos, 0, &npos);
    if (rc == -1) return 0;
    if (rc != 0) return rc;
    if ((rc = tg_cli_device(device)) != 0) return rc;
    if (!o.model_path) {
        fprintf(stderr, "truthgpt serve: --model DIR is required (see truthgpt serve --help)\n");
        return 2;
    }
    if (max_body_kb < 1 || max_body_kb > 1024 * 1024) {
        fprintf(stderr, "truthgpt serve: --max-body-kb must be between 1 and 1048576, got %d\n", max_body_kb);
        return 2;
    }
    o.max_body = (size_t)max_body_kb * 1024;
    if (tg_cli_dtype(dtype_s, &o.dtype) != TG_OK) return tg_cli_fail(TG_ERR_INPUT);
    if (o.threads < 0) {
        fprintf(stderr, "truthgpt serve: --threads must be >= 0, got %d\n", o.threads);
        return 2;
    }
    if (o.threads > 0) tg_set_threads(o.threads);
    if ((rc = tg_grounding_open(index, ground_k)) != TG_OK) return tg_cli_fail(rc);
    rc = tg_serve_run(&o);
    tg_grounding_close();
    return rc == TG_OK ? 0 : tg_cli_fail(rc);
}
