/*
 * progress.c — the live progress line: on a terminal one line redrawn in
 * place (at most 10 times a second) with a bar, rate and ETA; otherwise a
 * plain line every few seconds so logs stay readable.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

void tg_format_duration(double s, char *buf, size_t n) {
    if (s < 0 || s != s) s = 0;
    if (s < 60) snprintf(buf, n, "%.1fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void tg_progress_start(tg_progress *p, const char *label, double total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->start = tg_now();
    p->tty = isatty(fileno(stderr));
    p->plain_every = 5.0;
    p->last_plain = p->start;
}

static void draw(tg_progress *p, double done, const char *extra, int final) {
    double now = tg_now(), el = now - p->start;
    char eta[32] = "", elapsed[32];
    tg_format_duration(el, elapsed, sizeof elapsed);
    if (p->total > 0 && done > 0 && !final) {
        tg_format_duration(el * (p->total - done) / done, eta, sizeof eta);
    }
    if (p->tty) {
        char bar[21];
        double frac = p->total > 0 ? done / p->total : 0;
        if (frac > 1) frac = 1;
        int fill = (int)(frac * 20);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        if (p->total > 0)
            fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s%s%s%s%s", p->label, bar, frac * 100, extra ? extra : "",
                    final ? " in " : " ETA ", final ? elapsed : eta, "", final ? "\n" : "");
        else
            fprintf(stderr, "\r\033[K%s %s %s%s", p->label, extra ? extra : "", elapsed, final ? "\n" : "");
    } else {
        if (p->total > 0)
            fprintf(stderr, "%s %.0f/%.0f %s %s%s\n", p->label, done, p->total, extra ? extra : "",
                    final ? "done in " : "ETA ", final ? elapsed : eta);
        else
            fprintf(stderr, "%s %s %s\n", p->label, extra ? extra : "", elapsed);
    }
    fflush(stderr);
}

void tg_progress_update(tg_progress *p, double done, const char *extra) {
    if (tg_log_quiet) return;
    double now = tg_now();
    if (p->tty) {
        if (now - p->last_draw < 0.1) return;
        p->last_draw = now;
        draw(p, done, extra, 0);
    } else if (now - p->last_plain >= p->plain_every) {
        p->last_plain = now;
        draw(p, done, extra, 0);
    }
}

void tg_progress_finish(tg_progress *p, double done, const char *extra) {
    if (tg_log_quiet) return;
    draw(p, done, extra, 1);
}
