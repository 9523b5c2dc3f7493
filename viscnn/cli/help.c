// help.c: the help table (help_table.c) printed as help text, the overview,
// a roff man page, Markdown (docs/cli.md), synopses (the README's CLI block)
// and a plain list for tests; and `viscnn help`.
#include "help.h"
#include <stdio.h>
#include <string.h>
#include "cli.h"

#define WIDTH 79

// Prints s word-wrapped: the first line continues at column col, later lines
// start with `indent` spaces. Newlines in s start new lines.
static void wrap(FILE *f, const char *s, int col, int indent) {
    while (*s) {
        size_t w = strcspn(s, " \n");
        if (col > indent && col + 1 + (int)w > WIDTH) { fprintf(f, "\n%*s", indent, ""); col = indent; }
        else if (col > indent) { fputc(' ', f); col++; }
        fwrite(s, 1, w, f);
        col += (int)w;
        s += w;
        if (*s == '\n') { fprintf(f, "\n%*s", indent, ""); col = indent; s++; }
        else while (*s == ' ') s++;
    }
    fputc('\n', f);
}

static int n_opts(const cli_help_entry *h) {
    int n = 0;
    while (n < CLI_MAX_OPTS && h->opt[n].name) n++;
    return n;
}

// "-o FILE", "--layer L", "--json"
static void opt_text(char *buf, size_t n, const cli_option *o) {
    snprintf(buf, n, "%s%s%s%s", cli_dash(o->name), o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

// Whether the option is already spelled out in the call's shape (h->args).
static int in_args(const cli_help_entry *h, const cli_option *o) {
    const char *dash = cli_dash(o->name);
    size_t dl = strlen(dash), l = strlen(o->name);
    for (const char *p = h->args; (p = strstr(p, dash)); p += dl) {
        if (p > h->args && p[-1] == '-') continue;   // the second dash of "--x" is no "-x"
        if (!strncmp(p + dl, o->name, l) && strchr(" ])|", p[dl + l])) return 1;   // strchr finds the '\0' too
    }
    return 0;
}

void cli_help_synopsis_one(FILE *f, const cli_help_entry *h) {
    char line[4096];
    int len = snprintf(line, sizeof line, "viscnn %s %s", h->name, h->args);
    for (int k = 0; k < n_opts(h); k++) {
        if (in_args(h, &h->opt[k]) || len >= (int)sizeof line - 300) continue;
        char o[256];
        opt_text(o, sizeof o, &h->opt[k]);
        len += snprintf(line + len, sizeof line - len, " [%s]", o);
    }
    // wrap at option boundaries, continuation lines indented
    const char *s = line;
    int col = 0, indent = 8 + (int)strlen(h->name);
    while (*s) {
        const char *next = strstr(s + 1, " [");
        size_t w = next ? (size_t)(next - s) : strlen(s);
        if (col > indent && col + (int)w > WIDTH) { fprintf(f, "\n%*s", indent, ""); col = indent; if (*s == ' ') { s++; w--; } }
        fwrite(s, 1, w, f);
        col += (int)w;
        s += w;
    }
    fputc('\n', f);
}

void cli_help_print(FILE *f, const cli_help_entry *h) {
    fputs("usage: ", f);
    cli_help_synopsis_one(f, h);
    fputc('\n', f);
    wrap(f, h->summary, 0, 0);
    if (n_opts(h)) fputs("\noptions:\n", f);
    for (int k = 0; k < n_opts(h); k++) {
        char o[256];
        opt_text(o, sizeof o, &h->opt[k]);
        fprintf(f, "  %-24s", o);
        if (strlen(o) > 24) fprintf(f, "\n%*s", 26, "");
        wrap(f, h->opt[k].help, 26, 26);
    }
    if (h->notes) { fputc('\n', f); wrap(f, h->notes, 0, 0); }
}

void cli_help_overview(FILE *f) {
    fputs("usage: viscnn COMMAND [ARGS] [OPTIONS]      (viscnn help COMMAND or viscnn COMMAND --help: its options)\n"
          "       viscnn --version\n\ncommands:\n", f);
    for (int i = 0; i < cli_help_count; i++) fprintf(f, "  %-12s%s\n", cli_help[i].name, cli_help[i].summary);
    fputs("\nOptions are --name value or --name=value. Any command that reads images takes --max-pixels N\n"
          "(refuse larger images from their header before decoding; default 67108864). Exit status: 0 ok,\n"
          "2 bad input (a one-line reason on stderr), 1 internal error. docs/cli.md is the full reference.\n", f);
}

// roff needs '-' as '\-' in options, and a leading '.' or '\'' escaped.
static void roff(FILE *f, const char *s) {
    if (*s == '.' || *s == '\'') fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '-') fputs("\\-", f);
        else if (*s == '\\') fputs("\\e", f);
        else if (*s == '\n') fputs("\n.br\n", f);
        else fputc(*s, f);
    }
}

void cli_help_man(FILE *f) {
    fputs(".TH VISCNN 1 \"\" \"viscnn " VISCNN_VERSION "\" \"User Commands\"\n"
          ".SH NAME\nviscnn \\- a CNN microscope: exact per-kernel maps, importance, circuits\n.SH SYNOPSIS\n", f);
    for (int i = 0; i < cli_help_count; i++) {
        fprintf(f, ".B viscnn %s\n", cli_help[i].name);
        roff(f, cli_help[i].args);
        fputs("\n.br\n", f);
    }
    fputs(".SH DESCRIPTION\nviscnn runs convolutional networks on its own engine and shows the exact output of every "
          "2\\-D kernel, node and edge importance scores and circuits. Options are written \\fB\\-\\-name value\\fR or "
          "\\fB\\-\\-name=value\\fR; \\fBviscnn COMMAND \\-\\-help\\fR lists a command's options.\n.SH COMMANDS\n", f);
    for (int i = 0; i < cli_help_count; i++) {
        const cli_help_entry *h = &cli_help[i];
        fprintf(f, ".SS %s\n", h->name);
        roff(f, h->summary);
        fputc('\n', f);
        for (int k = 0; k < n_opts(h); k++) {
            char o[256];
            opt_text(o, sizeof o, &h->opt[k]);
            fputs(".TP\n.B ", f);
            roff(f, o);
            fputc('\n', f);
            roff(f, h->opt[k].help);
            fputc('\n', f);
        }
        if (h->notes) { fputs(".PP\n", f); roff(f, h->notes); fputc('\n', f); }
    }
    fputs(".SH EXIT STATUS\n0 on success, 2 on bad input (a one\\-line reason on standard error), 1 on an internal "
          "error.\n", f);
}

void cli_help_markdown(FILE *f) {
    fputs("# The viscnn command line\n\n"
          "Generated from the CLI's help table (`viscnn help --markdown`; tests/test_cli_help.py checks this file\n"
          "is current). Options are `--name value` or `--name=value`; `viscnn COMMAND --help` prints the same\n"
          "text for one command. Exit status: 0 ok, 2 bad input (one line on stderr naming the file or\n"
          "argument and the reason), 1 internal error. Any command that reads images takes `--max-pixels N`:\n"
          "larger images are refused from their header, before decoding (default 67108864, 64 Mpx).\n"
          "Every output file must end in an extension its option names (`-o OUT.json|OUT.csv`: .json or .csv),\n"
          "is written to a temporary file and renamed into place (a failed or interrupted run leaves the old\n"
          "file, or none), and may not be one of the command's own input files (`train` alone may write over\n"
          "the model it starts from).\n", f);
    for (int i = 0; i < cli_help_count; i++) {
        const cli_help_entry *h = &cli_help[i];
        fprintf(f, "\n## %s\n\n%s.\n\n```\n", h->name, h->summary);
        cli_help_synopsis_one(f, h);
        fputs("```\n\n", f);
        for (int k = 0; k < n_opts(h); k++) {
            char o[256];
            opt_text(o, sizeof o, &h->opt[k]);
            fprintf(f, "- `%s`: %s\n", o, h->opt[k].help);
        }
        if (h->notes) {
            fputc('\n', f);
            for (const char *s = h->notes; *s; s++) fputs(*s == '\n' ? "\n\n" : (char[]){*s, 0}, f);
            fputc('\n', f);
        }
    }
}

void cli_help_synopsis(FILE *f) {
    for (int i = 0; i < cli_help_count; i++) cli_help_synopsis_one(f, &cli_help[i]);
}

int cli_help_list(FILE *f, const char *const *dispatch, int n_dispatch) {
    int bad = 0;
    for (int d = 0; d < n_dispatch; d++)
        if (!cli_help_find(dispatch[d])) {
            fprintf(stderr, "viscnn: command %s has no entry in the help table (viscnn/cli/help_table.c)\n", dispatch[d]);
            bad = 1;
        }
    for (int i = 0; i < cli_help_count; i++) {
        int found = 0;
        for (int d = 0; d < n_dispatch; d++) found |= !strcmp(dispatch[d], cli_help[i].name);
        if (!found) {
            fprintf(stderr, "viscnn: the help table lists %s, which is no command\n", cli_help[i].name);
            bad = 1;
        }
        fprintf(f, "%s\n", cli_help[i].name);
        for (int k = 0; k < n_opts(&cli_help[i]); k++) {
            const cli_option *o = &cli_help[i].opt[k];
            fprintf(f, "%s %s%s%s%s\n", cli_help[i].name, cli_dash(o->name), o->name, o->arg ? " " : "",
                    o->arg ? o->arg : "");
        }
    }
    return bad;
}

int cli_help_command(int argc, char **argv, const char *const *dispatch, int n_dispatch, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "help", argc, argv, NULL, err);
    if (rc) return rc;
    int man = cli_flag(&a, "man"), md = cli_flag(&a, "markdown"), syn = cli_flag(&a, "synopsis"),
        list = cli_flag(&a, "list-options");
    if (man + md + syn + list + (a.n_pos > 0) > 1)
        return cli_fail(err, VC_EINPUT, "help: give one of COMMAND, --man, --markdown, --synopsis, --list-options");
    if (man) cli_help_man(stdout);
    else if (md) cli_help_markdown(stdout);
    else if (syn) cli_help_synopsis(stdout);
    else if (list) return cli_help_list(stdout, dispatch, n_dispatch) ? VC_EINTERNAL : VC_OK;
    else if (a.n_pos == 1) {
        const cli_help_entry *h = cli_help_find(a.pos[0]);
        if (!h) return cli_fail(err, VC_EINPUT, "help: unknown command '%s' (viscnn help lists them)", a.pos[0]);
        cli_help_print(stdout, h);
    } else cli_help_overview(stdout);
    return VC_OK;
}
