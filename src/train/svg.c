/*
 * svg.c — the loss chart (loss.svg). Plain SVG 1.1 text: axes with "nice"
 * tick values, the train loss as a polyline (bucket-averaged to at most
 * 1,000 points), the validation loss as a polyline with dots, and a legend.
 * Non-finite values are skipped so a diverged step cannot break the file.
 */
#include "train/svg.h"

#include <math.h>
#include <string.h>

#include "core/core.h"

#define W 800.0
#define H 450.0
#define ML 70.0 /* margins: left, right, top, bottom */
#define MR 20.0
#define MT 40.0
#define MB 50.0
#define MAX_POINTS 1000

/* A growing text buffer: the chart is built in memory, then written once. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double range, int want) {
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_tokens(char *buf, size_t n, double v) {
    if (v >= 1e9) snprintf(buf, n, "%gB", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%gk", v / 1e3);
    else snprintf(buf, n, "%g", v);
}

int tg_svg_write_loss(const char *path, const tg_point *train, int64_t n_train, const tg_point *val, int64_t n_val,
                      const char *title) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const tg_point *series[2] = {train, val};
    int64_t counts[2] = {n_train, n_val};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < counts[s]; i++) {
            tg_point p = series[s][i];
            if (!isfinite(p.x) || !isfinite(p.y)) continue;
            x0 = fmin(x0, p.x), x1 = fmax(x1, p.x), y0 = fmin(y0, p.y), y1 = fmax(y1, p.y);
        }
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 - x0 < 1) x1 = x0 + 1;
    if (y1 - y0 < 1e-3) y0 -= 0.5, y1 += 0.5;
    double pad = 0.05 * (y1 - y0);
    y0 = fmax(0, y0 - pad), y1 += pad;
    double pw = W - ML - MR, ph = H - MT - MB;
#define PX(x) (ML + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (MT + (1 - ((y) - y0) / (y1 - y0)) * ph)
    sbuf b = {0};
    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
              "font-family=\"sans-serif\" font-size=\"12\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              W, H, W, H);
    /* Title: escape the XML specials of a user-given run name. */
    sb_printf(&b, "<text x=\"%g\" y=\"24\" font-size=\"15\">", ML);
    for (const char *c = title ? title : "loss"; *c; c++) {
        if (*c == '<') sb_printf(&b, "&lt;");
        else if (*c == '>') sb_printf(&b, "&gt;");
        else if (*c == '&') sb_printf(&b, "&amp;");
        else sb_printf(&b, "%c", *c);
    }
    sb_printf(&b, "</text>\n");
    double ys = nice_step(y1 - y0, 6), xs = nice_step(x1 - x0, 6);
    for (double y = ceil(y0 / ys) * ys; y <= y1 + 1e-9; y += ys)
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                  ML, PY(y), W - MR, PY(y), ML - 6, PY(y) + 4, y);
    for (double x = ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs) {
        char lab[32];
        fmt_tokens(lab, sizeof lab, x);
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  PX(x), MT, PX(x), H - MB, PX(x), H - MB + 18, lab);
    }
    sb_printf(&b,
              "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#444\"/>\n"
              "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">tokens</text>\n"
              "<text x=\"16\" y=\"%g\" transform=\"rotate(-90 16 %g)\" text-anchor=\"middle\">loss (nats/token)</text>\n",
              ML, MT, pw, ph, ML + pw / 2, H - 12, MT + ph / 2, MT + ph / 2);
    /* Train: average buckets of consecutive points. */
    if (n_train > 0) {
        int64_t per = (n_train + MAX_POINTS - 1) / MAX_POINTS;
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
        for (int64_t i = 0; i < n_train; i += per) {
            double sx = 0, sy = 0;
            int k = 0;
            for (int64_t j = i; j < i + per && j < n_train; j++)
                if (isfinite(train[j].x) && isfinite(train[j].y)) sx += train[j].x, sy += train[j].y, k++;
            if (k) sb_printf(&b, "%.1f,%.1f ", PX(sx / k), PY(sy / k));
        }
        sb_printf(&b, "\"/>\n");
    }
    if (n_val > 0) {
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"");
        for (int64_t i = 0; i < n_val; i++)
            if (isfinite(val[i].x) && isfinite(val[i].y)) sb_printf(&b, "%.1f,%.1f ", PX(val[i].x), PY(val[i].y));
        sb_printf(&b, "\"/>\n");
        for (int64_t i = 0; i < n_val && i < MAX_POINTS; i++)
            if (isfinite(val[i].x) && isfinite(val[i].y))
                sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n", PX(val[i].x), PY(val[i].y));
    }
    sb_printf(&b,
              "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
              "<text x=\"%g\" y=\"%g\">train</text>\n"
              "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>"
              "<text x=\"%g\" y=\"%g\">val</text>\n</svg>\n",
              W - 170, 20.0, W - 150, 20.0, W - 145, 24.0, W - 100, 20.0, W - 80, 20.0, W - 75, 24.0);
#undef PX
#undef PY
    if (b.oom) {
        free(b.s);
        return tg_error_set(TG_ERR_RUNTIME, "%s: out of memory drawing the chart", path);
    }
    int rc = tg_write_file_atomic(path, b.s, b.len);
    free(b.s);
    return rc;
}
