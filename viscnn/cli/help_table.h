// help_table.h: every command and option of the CLI, in one table
// (help_table.c). The parser accepts exactly these options; `viscnn CMD
// --help`, `viscnn help CMD`, the man page (`viscnn help --man`), the README's
// CLI block and docs/cli.md are all printed from it (help.c), and
// tests/test_cli_help.py checks the code reads every option it lists and no
// other. Adding an option is one row in its command's `opt` list.
#pragma once
#include "viscnn.h"

#define VISCNN_VERSION VISCNN_VERSION_STRING
#define CLI_MAX_OPTS 40

typedef struct {
    const char *name;         // "layer" for --layer; "o" for -o (the only short one)
    const char *arg;          // "L", "PATH", ...; NULL: a flag, takes no value
    const char *help;         // one sentence, no trailing period needed
} cli_option;

typedef struct {
    const char *name;         // the command word
    const char *args;         // the call's shape: positional arguments and required options
    const char *summary;      // one line
    const char *notes;        // text after the options (targets, metrics, formats) or NULL
    cli_option opt[CLI_MAX_OPTS];   // ends at the first row with name NULL
} cli_help_entry;

extern const cli_help_entry cli_help[];
extern const int cli_help_count;

// The command's entry, or NULL.
const cli_help_entry *cli_help_find(const char *cmd);
// "-" for the one short option, -o; "--" for the rest (--x and --y included).
const char *cli_dash(const char *name);
// The option's row in the entry, or NULL.
const cli_option *cli_help_option(const cli_help_entry *h, const char *name);
