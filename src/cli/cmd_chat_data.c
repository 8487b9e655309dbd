/* cmd_chat_data.c — `truthgpt chat-data`: not built yet (placeholder until its issue lands). */
#include <stdio.h>

#include "cli.h"

int tg_cmd_chat_data(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "truthgpt: 'chat-data' is not implemented in this build yet\n");
    return 1;
}
