/* cmd_ingest.c — `truthgpt ingest`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_ingest(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'ingest' is not implemented in this build yet\n");
    return 1;
}
