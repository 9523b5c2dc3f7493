// cli.h: shared pieces of the command-line front end (viscnn/cli/cmd_*.c).
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "viscnn.h"

// Fills err as the library does (one line: control bytes as \xNN) and returns code.
int cli_fail(vc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Allocation that ends the program with a line on stderr when memory runs out
// (not a user error); size 0 gives a valid 1-byte block.
void *cli_malloc(size_t n);
void *cli_calloc(size_t n, size_t size);
char *cli_strdup(const char *s);

// Parsed "--name value" options and positional arguments of one command.
typedef struct {
    const char *cmd;
    int n_pos;
    const char *pos[256];
    int n_opt;
    const char *key[64], *val[64];   // val NULL for flags
    int used[64];
} cli_args;

// Parses against the help table (help_table.c): unknown options fail;
// "--name value", "--name=value", "-o FILE". flags: optional list of the
// command's flags, checked against the table.
int cli_parse(cli_args *a, const char *cmd, int argc, char **argv, const char *const *flags, vc_error *err);
const char *cli_opt(cli_args *a, const char *name);      // value or NULL
int cli_flag(cli_args *a, const char *name);
// Every value of a repeatable option, in order, into out[0..max); returns the count.
int cli_opt_all(cli_args *a, const char *name, const char **out, int max);
// Fails when an option was given that the command never asked for.
int cli_check_unused(cli_args *a, vc_error *err);
int cli_int(cli_args *a, const char *name, int def, int lo, int hi, int *out, vc_error *err);

// Loads the batch a command runs on: --input X.npy, or images (the given
// paths), preprocessed as the model says. x: (N, C, H, W), malloc'd.
int cli_load_batch(const vc_model *m, cli_args *a, int n_images, const char *const *images,
                   float **x, int *N, vc_error *err);

// Fails unless every name is a conv layer of m ("CMD: --layer NAME: ...").
int cli_check_layers(const vc_model *m, const char *const *names, int n, const char *cmd, vc_error *err);

// The path the model was loaded from.
const char *cli_model_path(const vc_model *m);

// The image set of a command: --images PATH (or --image FILE), or --input
// X.npy [--labels L.npy] (by_label: a category per label value), with
// --checkpoint DIR [--checkpoint-every K] where the command has them.
int cli_open_set(vc_imageset **s, const vc_model *m, cli_args *a, int by_label, vc_error *err);

// s on f with control bytes, DEL and '\\' as \xNN (as vc_str, but never cut:
// for paths, whose end is the part that matters).
void cli_put_escaped(FILE *f, const char *s);
// Seconds on a monotonic clock.
double cli_now(void);
// One line on stderr for a file a command wrote: "wrote PATH: WHAT, SIZE, TIME"
// (what: the count and kind of the contents; time since t0 from cli_now).
void cli_wrote(const char *path, const char *what, double t0);
// The index of path's extension in exts (NULL-terminated, e.g. ".json"),
// or -1 with err "CMD: OPT PATH: the output must end in .json or .csv".
int cli_check_ext(const char *cmd, const char *opt, const char *path, const char *const *exts, vc_error *err);

int cmd_info(int argc, char **argv, vc_error *err);
int cmd_predict(int argc, char **argv, vc_error *err);
int cmd_forward(int argc, char **argv, vc_error *err);
int cmd_importance(int argc, char **argv, vc_error *err);
int cmd_edges(int argc, char **argv, vc_error *err);
int cmd_circuit(int argc, char **argv, vc_error *err);
int cmd_rf(int argc, char **argv, vc_error *err);
int cmd_project(int argc, char **argv, vc_error *err);
int cmd_convert(int argc, char **argv, vc_error *err);
int cmd_train(int argc, char **argv, vc_error *err);
int cmd_eval(int argc, char **argv, vc_error *err);
int cmd_serve(int argc, char **argv, vc_error *err);
int cmd_featvis(int argc, char **argv, vc_error *err);

// A real-valued option in [lo, hi].
int cli_double(cli_args *a, const char *name, double def, double lo, double hi, double *out, vc_error *err);
// A labelled set from --IDX_KEY IMAGES --LABELS_KEY LABELS (IDX files) or
// --IMAGES_KEY FOLDER (class subfolders); when none is given, fails if
// `required`, else leaves *s NULL. limit > 0 keeps the first images only.
int cli_open_labelled(vc_labelled **s, const vc_model *m, cli_args *a, const char *idx_key, const char *labels_key,
                      const char *images_key, int limit, int required, vc_error *err);

// viscnn/cli/device.c: removes --device cpu|cuda from the arguments of a
// computing command and makes it the device of its runs (exit 2 with the
// reason when that device is not there).
int cli_take_device(const char *cmd, int *argc, char **argv, vc_error *err);
