// imageset.h: the images a command runs on, from --images PATH (a file, a
// folder, or class subfolders) or --input X.npy [--labels L.npy], grouped by
// category, loaded batch by batch, and the per-category importance driver.
#pragma once
#include "viscnn_internal.h"
#include "importance.h"
#include "../loaders/dataset.h"

typedef struct vc_imageset {
    int n;                    // images
    int n_cat;
    char **cat_names;
    int *cat;                 // (n) category of each image
    int *label;               // (n) class label, -1 = the model's argmax
    vc_dataset ds;            // --images
    float *x;                 // --input: the whole (n, C, H, W) batch
    const vc_model *m;
    const char *source;       // PATH or X.npy, for messages and exports
    const char *checkpoint;   // --checkpoint DIR (importance_over_set's partial sums), or NULL
    int checkpoint_every;     // --checkpoint-every K: this rank's images between checkpoints
} vc_imageset;

// An empty set of one category, for the weight metric (which reads no image).
void imageset_weights_only(vc_imageset *s, const vc_model *m);
// The --input X.npy [--labels L.npy] part of imageset_open.
int imageset_open_npy(vc_imageset *s, const vc_model *m, const char *input, const char *labels, int by_label, vc_error *err);
// A preprocessed batch (N, C, H, W of the model's input) from an .npy file.
int imageset_read_batch(const vc_model *m, const char *npy, float **x, int *N, vc_error *err);
// The --images PATH part of imageset_open (a file, a folder, class subfolders).
int imageset_open_path(vc_imageset *s, const vc_model *m, const char *path, vc_error *err);
void imageset_free(vc_imageset *s);
// Warnings on stderr for what a class-folder set leaves out: images beside
// the class folders, deeper folders, empty class folders, folders matching
// no label. Callers print them once their arguments are checked, so that a
// bad argument still fails with one line.
void imageset_warn(const vc_imageset *s);
// The indices of the images whose category c has cats[c] != 0 (cats NULL:
// every image) into idx (room for s->n); returns how many.
int imageset_indices(const vc_imageset *s, const unsigned char *cats, int *idx);
// A category's index by name (exact, else ignoring case with ' ', '_', '-'
// alike), or -1.
int imageset_find_category(const vc_imageset *s, const char *name);
// Loads images idx[0..n) into x (n, C, H, W) and their labels.
int imageset_load(const vc_imageset *s, const int *idx, int n, float *x, int *labels, vc_error *err);

// Scores of every category and their mean ("overall").
typedef struct {
    int n_cat;
    char **cat_names;         // borrowed from the imageset
    int *cat_images;
    vc_scores *cat;           // (n_cat)
    vc_scores overall;
    int images;
} vc_set_scores;

// The images are split into units, the batches the one-process loop makes
// (per category, in order, `batch` images each); under MPI rank r scores the
// units u with u % ranks == r, decoding the next unit while it computes this
// one, and the ranks' double sums are added (dist_sum) at the end, so every
// rank returns the same scores (docs/mpi.md). With s->checkpoint the partial
// sums are saved and resumed (checkpoint.h); not for the setup variant.
int importance_over_set(vc_set_scores *out, const vc_model *m, vc_metric metric, const vc_target *t,
                        const vc_imageset *s, int batch, vc_error *err);
// The same on a modified network (setup: see importance_set_setup).
int importance_over_set_setup(vc_set_scores *out, const vc_model *m, vc_metric metric, const vc_target *t,
                              const vc_imageset *s, int batch, int (*setup)(vc_run *, const void *, vc_error *),
                              const void *ctx, vc_error *err);
void set_scores_free(vc_set_scores *s);
// "overall" or a category name -> pointer, or NULL.
const vc_scores *set_scores_find(const vc_set_scores *s, const char *name);

// Contrasts (viscnn/contrast.h) over a set's categories and "overall":
// contrast_check validates an expression's names before the long work;
// contrast_scores evaluates it into out (negatives clamped to 0).
int contrast_check(const char *expr, const vc_imageset *set, vc_error *err);
int contrast_scores(vc_scores *out, const vc_set_scores *ss, const char *expr, vc_error *err);
// The coefficient of each category (n_cat) and of "overall" (coef[n_cat]) in
// the expression's linear form.
int contrast_terms(const char *expr, const vc_imageset *set, double *coef, vc_error *err);
// How many of the contrast's scores (nodes and edges of every layer, *total)
// are negative before the clamp, i.e. set to 0 by contrast_scores.
int contrast_clamped(size_t *clamped, size_t *total, const vc_set_scores *ss, const char *expr, vc_error *err);

// A progress bar on stderr when it is a terminal: "label [=====     ] i/n
// R/s  ETA m:ss" (the rate counted from the bar's first report).
// While this thread has a progress hook (progress_set_hook), the hook gets
// the report instead, and a nonzero return from it asks the caller to stop:
// progress() returns it, and the loops that report (importance_over_set)
// then fail with VC_EINPUT "cancelled". The server's compute thread uses
// this to show and cancel jobs, and to serve short requests between batches.
typedef int (*vc_progress_hook)(void *ctx, const char *label, int done, int total);
void progress_set_hook(vc_progress_hook fn, void *ctx);   // NULL: back to the terminal bar
int progress(const char *label, int done, int total);
