/*
 * libFuzzer target for the configuration file: the bytes become the file's
 * content (an in-memory file opened by its /proc/self/fd path, so nothing
 * touches the disk) and go through config_load_opts, the loader the daemon
 * runs.  Secret files are left unread, since a fuzzed path must not reach
 * the machine's files.  A load either succeeds, leaving a config that
 * config_free releases, or fails with a one-line message and a zeroed
 * config; anything else aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int file_fd = -1;
static char file_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The environment overrides the file; a stray variable would hide it. */
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (opts[i].env != NULL)
            unsetenv(opts[i].env);
    unsetenv("CREDENTIALS_DIRECTORY");
    log_set_level(LOG_LEVEL_ERROR);

    file_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (file_fd < 0)
        abort();
    snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(file_fd, 0) != 0 || pwrite(file_fd, data, size, 0) != (ssize_t)size)
        abort();

    config_t c;
    char err[512] = "";
    if (config_load_opts(&c, file_path, CONFIG_SKIP_SECRET_FILES, err, sizeof err)) {
        config_free(&c);
    } else {
        static const config_t zero;
        if (err[0] == '\0' || strchr(err, '\n') != NULL || memcmp(&c, &zero, sizeof c) != 0)
            abort();
    }
    return 0;
}
