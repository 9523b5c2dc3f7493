// main.c: the viscnn command line. Each command lives in viscnn/cli/cmd_*.c,
// its help and options in viscnn/cli/help_table.c;
// errors come back as a vc_error and become one line on stderr.
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "help.h"
#include <stdlib.h>

static const struct { const char *name; int (*fn)(int, char **, vc_error *); } commands[] = {
    {"info", cmd_info}, {"predict", cmd_predict}, {"forward", cmd_forward},
    {"importance", cmd_importance}, {"edges", cmd_edges},
    {"circuit", cmd_circuit},
    {"rf", cmd_rf},
    {"project", cmd_project},
    {"serve", cmd_serve},
    {"convert", cmd_convert},
    {"train", cmd_train}, {"eval", cmd_eval},
    {"featvis", cmd_featvis},
    {"help", NULL},   // cli_help_command (help.c), which is given these names
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

// Whether a command's arguments ask for its help (-h or --help where an
// option may stand, not as another option's value).
static int wants_help(const cli_help_entry *h, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
        const char *s = argv[i];
        if (s[0] != '-' || strchr(s, '=')) continue;
        const cli_option *o = cli_help_option(h, s + (s[1] == '-' ? 2 : 1));
        if (o && (s[1] == '-') != (cli_dash(o->name)[1] == '-')) o = NULL;
        if (o && o->arg) i++;
    }
    return 0;
}

int main(int argc, char **argv) {
    vc_malloc_keep();
    if (argc < 2) {
        fputs("viscnn: missing COMMAND (try viscnn --help)\n", stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_help_overview(stdout);
        return 0;
    }
    // --max-pixels N (any command that reads images): taken out before the command parses.
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--max-pixels")) continue;
        char *end = NULL;
        long long n = i + 1 < argc ? strtoll(argv[i + 1], &end, 10) : 0;
        if (!end || *end || n < 1) {
            fprintf(stderr, "viscnn %s: --max-pixels needs a positive integer\n", argv[1]);
            return 2;
        }
        vc_set_max_pixels(n);
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);   // keeps argv[argc] == NULL
        argc -= 2;
        i--;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("viscnn " VISCNN_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        const cli_help_entry *h = cli_help_find(argv[1]);
        if (h && wants_help(h, argc - 2, argv + 2)) {
            cli_help_print(stdout, h);
            return 0;
        }
        vc_error err = {{0}};
        const char *names[N_COMMANDS];
        for (int k = 0; k < N_COMMANDS; k++) names[k] = commands[k].name;
        // under mpirun these split their images across the ranks (docs/mpi.md)
        int dist = !strcmp(argv[1], "importance") || !strcmp(argv[1], "circuit") || !strcmp(argv[1], "project");
        dist |= !strcmp(argv[1], "featvis");   // its --layer L --all batches (batch u on rank u % N)
        if (dist) vc_dist_start(&argc, &argv);
        int nargs = argc - 2;
        int rc = cli_take_device(argv[1], &nargs, argv + 2, &err);
        if (!rc) rc = commands[i].fn ? commands[i].fn(nargs, argv + 2, &err)
                                     : cli_help_command(nargs, argv + 2, names, N_COMMANDS, &err);
        if (rc && !vc_dist_error_quiet()) {   // (an error all ranks agreed on: rank 0 prints it)
            const char *msg = err.msg[0] ? err.msg : "failed";
            size_t cl = strlen(argv[1]);   // messages may already start with "<command>: "
            if (!strncmp(msg, argv[1], cl) && msg[cl] == ':' && msg[cl + 1] == ' ') msg += cl + 2;
            fprintf(stderr, "viscnn %s: %s\n", argv[1], msg);
        }
        // an error only this rank saw (not agreed at a collective): the others
        // may be waiting in one, so end the whole job with this status
        if (dist && rc && !vc_dist_error_agreed()) vc_dist_abort(rc == VC_EINPUT ? 2 : 1);
        if (dist) vc_dist_end();   // after rank 0 has printed: the others wait for it here
        return !rc ? 0 : rc == VC_EINPUT ? 2 : 1;
    }
    fprintf(stderr, "viscnn: unknown command '%s' (try viscnn --help)\n", argv[1]);
    return 2;
}
