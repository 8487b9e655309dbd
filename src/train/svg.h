/*
 * svg.h — loss.svg: train and validation loss against tokens seen, a
 * hand-written SVG (no plotting library), redrawn at each evaluation.
 */
#ifndef TG_SVG_H
#define TG_SVG_H

#include <stdint.h>

typedef struct {
    double x, y; /* tokens seen, loss */
} tg_point;

/* Writes the chart atomically to path. Either series may be empty. The
 * train series is averaged into at most ~1,000 buckets so the file stays
 * small for long runs. */
int tg_svg_write_loss(const char *path, const tg_point *train, int64_t n_train, const tg_point *val, int64_t n_val,
                      const char *title);

#endif /* TG_SVG_H */
