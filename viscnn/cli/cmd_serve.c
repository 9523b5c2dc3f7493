// cmd_serve.c: viscnn serve — the browser GUI (viscnn/server/, web/).
//
//   viscnn serve MODEL --images PATH [--host 127.0.0.1] [--port 8050] [--cache DIR]
//                [--target T] [--threads N] [--web DIR] [--no-precompute]
//
// Idle OpenMP threads must sleep, not spin, in a server: its compute thread
// waits between requests, and spinning threads would hold the cores that
// other processes need. libgomp reads OMP_WAIT_POLICY once, when the program
// loads, so when it is not set the command sets it to PASSIVE and executes
// itself again (same arguments, from /proc/self/cmdline).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static void reexec_passive(void) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0 || n >= sizeof buf - 1) return;
    buf[n] = 0;
    char *argv[512];
    int argc = 0;
    for (size_t i = 0; i < n && argc < 511; i += strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;
    fflush(stdout);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "viscnn serve: warning: could not restart with OMP_WAIT_POLICY=PASSIVE (%s); "
                    "set it in the environment\n", strerror(errno));
}

int cmd_serve(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "serve", argc, argv, (const char *const[]){"no-precompute", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "serve: expected one MODEL argument, got %d", a.n_pos);
    const char *images = cli_opt(&a, "images"), *host = cli_opt(&a, "host"), *web = cli_opt(&a, "web"),
               *target = cli_opt(&a, "target"), *cache = cli_opt(&a, "cache");
    int no_precompute = cli_flag(&a, "no-precompute"), port, threads;
    if ((rc = cli_int(&a, "port", 8050, 0, 65535, &port, err))) return rc;
    if ((rc = cli_int(&a, "threads", 0, 0, 1024, &threads, err))) return rc;
    if ((rc = cli_check_unused(&a, err))) return rc;
    if (!images) return cli_fail(err, VC_EINPUT, "serve: missing --images PATH (an image, a folder, or class subfolders)");
    char def[PATH_MAX];
    if (!cache) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg) snprintf(def, sizeof def, "%s/viscnn", xdg);
        else if (home && *home) snprintf(def, sizeof def, "%s/.cache/viscnn", home);
        else snprintf(def, sizeof def, ".viscnn-cache");
        cache = def;
    }
    reexec_passive();
    return vc_serve(a.pos[0], images, host, port, cache, web, target, threads, no_precompute, err);
}
