/*
 * args.c — the option parser every subcommand uses: `--name value`,
 * `--name=value`, flags, positionals, and a generated --help.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "truthgpt.h"

static void print_help(const char *usage, const char *description, const tg_opt *opts) {
    printf("usage: %s\n\n%s\n", usage, description);
    if (opts && opts[0].name) printf("\noptions:\n");
    for (const tg_opt *o = opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->kind == TG_OPT_FLAG ? "" : " ",
                 o->kind == TG_OPT_FLAG ? "" : (o->metavar ? o->metavar : "X"));
        printf("  %-26s %s", left, o->help);
        switch (o->kind) {
        case TG_OPT_STR:
            if (*(const char **)o->dst) printf(" (default %s)", *(const char **)o->dst);
            break;
        case TG_OPT_INT: printf(" (default %d)", *(int *)o->dst); break;
        case TG_OPT_I64: printf(" (default %lld)", (long long)*(int64_t *)o->dst); break;
        case TG_OPT_FLOAT: printf(" (default %g)", *(float *)o->dst); break;
        case TG_OPT_DOUBLE: printf(" (default %g)", *(double *)o->dst); break;
        case TG_OPT_FLAG: break;
        }
        printf("\n");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

static int set_value(const tg_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case TG_OPT_STR: *(const char **)o->dst = v; return 0;
    case TG_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || *end || end == v || x < -2147483647L || x > 2147483647L) break;
        *(int *)o->dst = (int)x;
        return 0;
    }
    case TG_OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || *end || end == v) break;
        *(int64_t *)o->dst = x;
        return 0;
    }
    case TG_OPT_FLOAT:
    case TG_OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || *end || end == v || !isfinite(x)) break;
        if (o->kind == TG_OPT_FLOAT) *(float *)o->dst = (float)x;
        else *(double *)o->dst = x;
        return 0;
    }
    case TG_OPT_FLAG: break;
    }
    fprintf(stderr, "truthgpt: --%s: bad value '%s' (expected %s)\n", o->name, v,
            o->kind == TG_OPT_INT || o->kind == TG_OPT_I64 ? "an integer" : "a number");
    return 2;
}

int tg_args_parse(const char *usage, const char *description, const tg_opt *opts, int argc, char **argv,
                  char **pos, int max_pos, int *npos) {
    *npos = 0;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            print_help(usage, description, opts);
            return -1;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const tg_opt *o = NULL;
            for (const tg_opt *p = opts; p && p->name; p++)
                if (strlen(p->name) == len && strncmp(p->name, name, len) == 0) o = p;
            if (!o) {
                fprintf(stderr, "truthgpt: unknown option '%.*s' (see --help)\nusage: %s\n", (int)len + 2, a, usage);
                return 2;
            }
            if (o->kind == TG_OPT_FLAG) {
                if (eq) {
                    fprintf(stderr, "truthgpt: --%s takes no value\n", o->name);
                    return 2;
                }
                *(int *)o->dst = 1;
                continue;
            }
            const char *v = eq ? eq + 1 : NULL;
            if (!v) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "truthgpt: --%s needs a value (%s)\n", o->name, o->metavar ? o->metavar : "X");
                    return 2;
                }
                v = argv[++i];
            }
            if (set_value(o, v)) return 2;
            continue;
        }
        if (*npos >= max_pos) {
            fprintf(stderr, "truthgpt: unexpected argument '%s'\nusage: %s\n", a, usage);
            return 2;
        }
        pos[(*npos)++] = argv[i];
    }
    return 0;
}

int tg_args_given(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, name, n) == 0 && (a[2 + n] == 0 || a[2 + n] == '=')) return 1;
    }
    return 0;
}

int tg_cli_on_off(const char *flag, const char *value) {
    if (strcmp(value, "on") == 0) return 1;
    if (strcmp(value, "off") == 0) return 0;
    tg_error_set(TG_ERR_INPUT, "--%s must be on or off (got '%s')", flag, value);
    return -1;
}

int tg_cli_dtype(const char *value, tg_dtype *out) {
    if (strcmp(value, "fp32") == 0) *out = TG_DTYPE_FP32;
    else if (strcmp(value, "bf16") == 0) *out = TG_DTYPE_BF16;
    else if (strcmp(value, "int8") == 0) *out = TG_DTYPE_INT8;
    else return tg_error_set(TG_ERR_INPUT, "--dtype must be fp32, bf16 or int8 (got '%s')", value);
    return TG_OK;
}

const char *tg_cli_dtype_name(tg_dtype d) {
    return d == TG_DTYPE_BF16 ? "bf16" : d == TG_DTYPE_INT8 ? "int8" : "fp32";
}

int tg_cli_fail(int status) {
    const char *msg = tg_error_message();
    fprintf(stderr, "truthgpt: %s\n", msg && *msg ? msg : "failed");
    return status == TG_OK ? TG_ERR_RUNTIME : status;
}

int tg_cli_device(const char *device) {
    if (tg_set_default_device(device) == TG_OK) return 0;
    fprintf(stderr, "truthgpt: --device %s: %s\n", device, tg_error_message());
    return 2;
}
