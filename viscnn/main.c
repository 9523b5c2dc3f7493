// main.c: the viscnn command line. Each command lives in viscnn/cmd_*.c;
// errors come back as a vc_error and become one line on stderr.
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *usage =
    "usage: viscnn COMMAND ...\n"
    "  info MODEL                                     layers, shapes, nodes, edges, parameters\n"
    "  predict MODEL IMAGE... [--top K] [--save-input X.npy]\n"
    "                                                 top-K classes for PNG/JPEG images\n"
    "  predict MODEL --input X.npy                    the same on a preprocessed (N,C,H,W) batch\n"
    "  forward MODEL --input IN.npy [--layer L] -o OUT.npy\n"
    "                                                 raw output (N,K), or layer L's (N,C,H,W)\n"
    "Exit status: 0 ok, 2 bad input (one-line reason on stderr), 1 internal error.\n";

static const struct { const char *name; int (*fn)(int, char **, vc_error *); } commands[] = {
    {"info", cmd_info}, {"predict", cmd_predict}, {"forward", cmd_forward},
};

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        vc_error err = {{0}};
        int rc = commands[i].fn(argc - 2, argv + 2, &err);
        if (rc) {
            fprintf(stderr, "viscnn %s: %s\n", argv[1], err.msg[0] ? err.msg : "failed");
            return rc == VC_EINPUT ? 2 : 1;
        }
        return 0;
    }
    fprintf(stderr, "viscnn: unknown command '%s' (try viscnn --help)\n", argv[1]);
    return 2;
}
