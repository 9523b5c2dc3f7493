// help.h: printing the help table (help_table.h) as help text, a man page,
// Markdown, synopses and a plain list; the `viscnn help` command.
#pragma once
#include <stdio.h>
#include "help_table.h"
#include "viscnn.h"

void cli_help_print(FILE *f, const cli_help_entry *h);      // viscnn CMD --help
void cli_help_overview(FILE *f);                            // viscnn --help
void cli_help_synopsis_one(FILE *f, const cli_help_entry *h);
void cli_help_synopsis(FILE *f);                            // the README's CLI block
void cli_help_man(FILE *f);                                 // viscnn.1
void cli_help_markdown(FILE *f);                            // docs/cli.md
// "CMD" and "CMD --opt ARG" lines; nonzero (with a line on stderr) when the
// table and the dispatched commands (main.c) differ.
int cli_help_list(FILE *f, const char *const *dispatch, int n_dispatch);
// viscnn help [COMMAND | --man | --markdown | --synopsis | --list-options]
int cli_help_command(int argc, char **argv, const char *const *dispatch, int n_dispatch, vc_error *err);
