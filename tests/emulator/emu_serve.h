/*
 * `workos-emulator serve`: an HTTP server (libevent evhttp) answering
 * GET /events like the WorkOS Events API from a JSONL stream, with fault
 * injection, rate limiting and a request log for tests to inspect.
 */
#ifndef EMU_SERVE_H
#define EMU_SERVE_H

/* Runs the serve command with argv[0] = "serve". Returns the process exit
 * status: 0 after SIGTERM/SIGINT, 64 on bad usage, 1 on start-up failure. */
int emu_serve_main(int argc, char **argv);

#endif
