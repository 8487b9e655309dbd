/*
 * error.c — per-thread error status and message (truthgpt.h "errors").
 * Library code calls tg_error_set and returns the code; only src/cli prints
 * the message and decides the exit status.
 */
#include <stdio.h>
#include <stdarg.h>

#include "truthgpt.h"

static _Thread_local char tg_err_msg[1024];
static _Thread_local int tg_err_code;

int tg_error_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tg_err_msg, sizeof tg_err_msg, fmt, ap);
    va_end(ap);
    tg_err_code = code;
    return code;
}

const char *tg_error_message(void) { return tg_err_msg; }
int tg_error_code(void) { return tg_err_code; }

void tg_error_clear(void) {
    tg_err_msg[0] = 0;
    tg_err_code = TG_OK;
}
