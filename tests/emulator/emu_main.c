/*
 * Entry point of workos-emulator, the project's stand-in for the WorkOS
 * Events API and list endpoints in tests: `serve` answers GET /events from a
 * JSONL stream and the list endpoints from the state it leads to, with fault
 * injection, rate limits, latency and retention; `gen` writes such a stream
 * plus the mirror state a
 * correct consumer must reach, `send` delivers a stream as signed webhooks.
 */
#include "emu_gen.h"
#include "emu_send.h"
#include "emu_serve.h"

#include <stdio.h>
#include <string.h>

static void usage(void)
{
    fputs("usage: workos-emulator serve --events FILE.jsonl [options]   (serve --help)\n"
          "       workos-emulator gen --count N | --users N [options]   (gen --help)\n"
          "       workos-emulator send --url URL --secret S --events FILE (send --help)\n",
          stderr);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 64;
    }
    if (strcmp(argv[1], "serve") == 0)
        return emu_serve_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "gen") == 0)
        return emu_gen_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "send") == 0)
        return emu_send_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
        return 0;
    }
    fprintf(stderr, "workos-emulator: unknown command '%s'\n", argv[1]);
    usage();
    return 64;
}
