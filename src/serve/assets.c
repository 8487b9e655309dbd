/*
 * assets.c — the chat page (web/index.html, app.js, style.css), embedded
 * into the program at build time by cmake/embed_web.cmake, so `serve` never
 * reads web/ from disk and needs no network (no CDN).
 */
#include <string.h>

#include "serve/serve.h"
#include "tg_web_assets.h"

const unsigned char *tg_asset_find(const char *path, size_t *len, const char **content_type) {
    if (!path) return NULL;
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (int i = 0; tg_web_files[i].path; i++)
        if (strcmp(tg_web_files[i].path, path) == 0) {
            *len = tg_web_files[i].len;
            *content_type = tg_web_files[i].type;
            return tg_web_files[i].data;
        }
    return NULL;
}
