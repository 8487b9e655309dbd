/*
 * main.c — the truthgpt program: dispatches to one subcommand per file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "truthgpt.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

#define TG_ENTRY(name, help) {#name, tg_cmd_##name, help},
static const command commands[] = {TG_COMMANDS(TG_ENTRY)};
#undef TG_ENTRY

static void usage(FILE *f) {
    fprintf(f,
            "truthgpt %s — train a chat language model on a community's own posts, and serve it\n\n"
            "usage: truthgpt COMMAND [options]   (truthgpt COMMAND --help for each)\n\ncommands:\n",
            TG_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", commands[i].name);
        for (char *c = name; *c; c++)
            if (*c == '_') *c = '-';
        fprintf(f, "  %-11s %s\n", name, commands[i].help);
    }
    fprintf(f, "\npipeline: ingest -> tokenizer train -> tokenize -> train -> finetune -> chat | serve\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("truthgpt %s\n", TG_VERSION);
        printf("CPU kernels: %s (this CPU runs: %s; TG_CPU=NAME forces one)\n", tg_cpu_kernels(),
               tg_cpu_kernels_available());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", commands[i].name);
        for (char *c = name; *c; c++)
            if (*c == '_') *c = '-';
        if (!strcmp(cmd, name)) return commands[i].fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "truthgpt: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
