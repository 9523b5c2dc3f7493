// viscnn.h: the public C API of libviscnn, a CNN microscope. docs/api.md is
// the contract of every function; this header is its summary.
//
//   vc_model     a loaded network (DAG of named nodes, PyTorch module paths)
//   vc_session   one thread's run over a model: a batch, its activations and
//                gradients, the exact per-kernel edge maps of any conv layer
//   vc_scoreset  importance of every conv node and kernel toward a target,
//                averaged over the images added to it
//   vc_subnet    a circuit: the nodes and kernels kept from a scoreset
//
// Conventions are PyTorch's: float32, NCHW activations, OIHW conv weights,
// module paths as node names ("features.3"). A node's activation for one
// image is (C,H,W); a vector node (linear, flatten) is (C,1,1).
//
// Errors: every function that can fail returns VC_OK or a VC_E* status and,
// when err is not NULL, fills err->msg with one line naming the file, node or
// argument and the reason. On failure the outputs are left as they were (a
// handle output is set to NULL). The library never exits and never prints to
// stdout.
//
// Threads: a vc_model is immutable once loaded and may be shared by any
// number of threads; every other handle (vc_session, vc_scoreset, vc_subnet)
// belongs to one thread at a time. Give each thread its own vc_session:
// forward, backward and edges on one shared model then give results
// identical to one thread. vc_subnet is read-only after extraction and may
// be shared too.
//
// Versioning: VISCNN_VERSION_MAJOR is the soname's major (libviscnn.so.0);
// it changes when a public symbol disappears or a function's signature or a
// public struct changes incompatibly. Minor versions only add.
#pragma once
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VISCNN_VERSION_MAJOR 0
#define VISCNN_VERSION_MINOR 2
#define VISCNN_VERSION_PATCH 0
#define VISCNN_VERSION_STRING "0.2.0"

#if defined(__GNUC__)
#define VC_API __attribute__((visibility("default")))
#else
#define VC_API
#endif

enum { VC_OK = 0, VC_EINTERNAL = 1, VC_EINPUT = 2 };

typedef struct { char msg[1024]; } vc_error;

typedef struct vc_model vc_model;
typedef struct vc_session vc_session;
typedef struct vc_scoreset vc_scoreset;
typedef struct vc_subnet vc_subnet;

// The library's version as "MAJOR.MINOR.PATCH" (static storage). Compare
// with VISCNN_VERSION_STRING to detect a header/library mismatch.
VC_API const char *vc_version(void);

// Frees a buffer the library allocated for the caller (edge maps, grads).
VC_API void vc_free(void *p);

// ---- models ----------------------------------------------------------------
// A .safetensors model with viscnn.graph metadata (docs/model-format.md).
VC_API int vc_model_load(vc_model **out, const char *path, vc_error *err);
// The same from size bytes at data (copied; data may be freed after). name
// stands for the path in messages (NULL: "<memory>").
VC_API int vc_model_load_memory(vc_model **out, const void *data, size_t size, const char *name, vc_error *err);
VC_API void vc_model_free(vc_model *m);
// Number of nodes (node 0 is the input), the output node's index, and the
// number of class labels (0 when the model has none). Any pointer may be NULL.
VC_API int vc_model_size(const vc_model *m, int *n_nodes, int *output, int *n_labels, vc_error *err);
// Node index: name, op ("input", "conv2d", "relu", ...), shape (C,H,W) of one
// image. Strings live as long as the model. Any output may be NULL.
VC_API int vc_model_node(const vc_model *m, int index, const char **name, const char **op, int *c, int *h, int *w,
                         vc_error *err);
// The nodes whose outputs node `index` takes, in order (indices < index);
// *inputs is owned by the model. The input node has none.
VC_API int vc_model_node_inputs(const vc_model *m, int index, int *n_inputs, const int **inputs, vc_error *err);
VC_API int vc_model_find_node(const vc_model *m, const char *name, int *index, vc_error *err);
VC_API int vc_model_label(const vc_model *m, int k, const char **label, vc_error *err);
// A conv node's sizes: out-channels, in-channels per group, groups, output
// height and width (the size of one edge map). VC_EINPUT for other ops.
VC_API int vc_model_conv(const vc_model *m, int node, int *cout, int *cin_group, int *groups, int *ho, int *wo,
                         vc_error *err);

// ---- images ------------------------------------------------------------------
// Loads a PNG or JPEG and preprocesses it as the model's metadata says
// (resize, centre crop, normalise) into out: (C,H,W) of node 0.
VC_API int vc_image_preprocess(const vc_model *m, const char *path, float *out, vc_error *err);

// ---- sessions: forward, backward, edges ---------------------------------------
VC_API int vc_session_new(vc_session **out, const vc_model *m, vc_error *err);
VC_API void vc_session_free(vc_session *s);
// Runs the whole network on x: (n,C,H,W), n >= 1, keeping every activation.
VC_API int vc_session_forward(vc_session *s, const float *x, int n, vc_error *err);
// Since 0.2: inference only, up to node (-1: the output): nothing backward
// needs is kept, so afterwards node's activation alone is readable and
// vc_session_backward refuses; less memory than vc_session_forward.
VC_API int vc_session_infer(vc_session *s, const float *x, int n, int node, vc_error *err);
// Since 0.2: vc_session_infer that also writes the decisions of every
// branching node (max-pool argmax indices as int32, ReLU-like regions as
// uint8; one .npy entry per node, named by it) to the .npz archive npz, for
// replay in a float64 reference (docs/parity.md). The archive is written
// through a temporary file; nothing is left of it on failure.
VC_API int vc_session_infer_decisions(vc_session *s, const float *x, int n, int node, const char *npz, vc_error *err);
// Since 0.2: checks a target string (as vc_session_backward takes) against
// the model; *layer (may be NULL): for "node:NAME:CH" the conv layer the
// target reads (scores and gradients stop before it), else -1.
VC_API int vc_target_check(const vc_model *m, const char *target, int *layer, vc_error *err);
// A node's output for the batch of the last forward: *data (n,C,H,W),
// *count floats, owned by the session, valid until its next forward,
// backward or free.
VC_API int vc_session_activation(const vc_session *s, int node, const float **data, size_t *count, vc_error *err);
// Gradients of a target for the batch of the last forward: "loss" (cross-
// entropy against labels[n], or the argmax where labels is NULL or
// labels[n] < 0), "class:K" (logit K) or "node:NAME:CH" (mean of a channel).
VC_API int vc_session_backward(vc_session *s, const char *target, const int *labels, vc_error *err);
// dF/d(output of node), as vc_session_activation; VC_EINPUT when the last
// backward did not reach the node.
VC_API int vc_session_gradient(const vc_session *s, int node, const float **data, size_t *count, vc_error *err);
// Exact edge maps of conv node `node` for image `image` of the last forward:
// e[j][i] = W[j,i] (*) x_i, (n_out, n_in, Ho, Wo) for the out-channels
// out_ch and in-channels in_ch (counted within the group of each out-channel);
// out_ch / in_ch NULL: all, in order (n_out / n_in then ignored). *maps not
// NULL: the caller's buffer of that many floats; NULL: allocated here, free
// with vc_free. Sum over all i of e[j][i] plus the bias is the conv output.
VC_API int vc_session_edges(vc_session *s, int node, int image, const int *out_ch, int n_out, const int *in_ch, int n_in,
                            float **maps, vc_error *err);
// Their gradients after vc_session_backward: dF/de[j][i] = dF/dy_j for every
// i, so one map per out-channel: (n_out, Ho, Wo), buffers as above.
VC_API int vc_session_edge_grads(vc_session *s, int node, int image, const int *out_ch, int n_out, float **grads,
                                 vc_error *err);

// ---- importance ------------------------------------------------------------------
// metric: "actxgrad", "act", "grad", "taylor", "weight", "snip"; target as
// vc_session_backward. batch: images per internal pass (e.g. 8). The scores
// are means over every image added (docs/importance.md).
VC_API int vc_importance_new(vc_scoreset **out, const vc_model *m, const char *metric, const char *target, int batch,
                             vc_error *err);
// x: (n,C,H,W); labels (n) or NULL (for "loss": the argmax).
VC_API int vc_importance_add(vc_scoreset *s, const float *x, int n, const int *labels, vc_error *err);
// Ends the accumulation; the scores are readable after it, adding is not.
VC_API int vc_importance_finish(vc_scoreset *s, vc_error *err);
VC_API void vc_importance_free(vc_scoreset *s);
// Scored conv layers (those before the target), in model order.
VC_API int vc_importance_layers(const vc_scoreset *s, int *n_layers, vc_error *err);
// Layer l: its conv node, cout, in-channels per group, node scores (cout) and
// kernel scores (cout, cin_group) [out][in], owned by the scoreset.
VC_API int vc_importance_layer(const vc_scoreset *s, int l, int *node, int *cout, int *cin_group, const float **nodes,
                               const float **kernels, vc_error *err);

// ---- circuits --------------------------------------------------------------------
// Extracts a circuit from finished scores: mode "keep:F", "keep:NODES,KERNELS",
// "threshold" or "hierarchical" (docs/circuits.md), dead parts removed.
VC_API int vc_subnet_extract(vc_subnet **out, const vc_scoreset *s, const char *mode, vc_error *err);
VC_API void vc_subnet_free(vc_subnet *c);
// Since 0.2: a circuit read back from the JSON `viscnn circuit` writes (its
// layers' kept nodes and edges; layers it does not list are kept whole), for
// the target the file names.
VC_API int vc_subnet_load(vc_subnet **out, const vc_model *m, const char *path, vc_error *err);
// Kept nodes and kernels, and the totals in the target's upstream cone.
VC_API int vc_subnet_counts(const vc_subnet *c, size_t *nodes, size_t *kernels, size_t *cone_nodes, size_t *cone_kernels,
                            vc_error *err);
// Layer l (as vc_importance_layer): kept flags of its nodes (cout) and kernels
// (cout, cin_group), 1 kept, owned by the circuit.
VC_API int vc_subnet_layer(const vc_subnet *c, int l, int *node, const unsigned char **nodes,
                           const unsigned char **kernels, vc_error *err);
// Masks the session's network to the circuit (removed kernels and nodes
// contribute nothing) for its following forwards; NULL: the whole network.
// The circuit must outlive its use in the session.
VC_API int vc_session_set_subnet(vc_session *s, const vc_subnet *c, vc_error *err);
// Faithfulness of the circuit on images x (n,C,H,W) (labels as for "loss"):
// Pearson r and relative error of the target's values, masked vs whole
// network, and top-1 agreement (class and loss targets; else NAN).
// Any output may be NULL.
VC_API int vc_subnet_evaluate(const vc_subnet *c, const float *x, int n, const int *labels, int batch, double *r,
                              double *rel_error, double *top1, vc_error *err);

// ---- since 0.2: what a command-line front end needs (docs/api.md) ----------------
// Model details. Name and path live as long as the model.
VC_API int vc_model_about(const vc_model *m, const char **name, const char **path, vc_error *err);
// The preprocessing the model's metadata asks for: resize (0: none), centre
// crop (0: none), channels, and per-channel mean and std (mean[3], std[3];
// the first `channels` are set, at most 3). Any output may be NULL.
VC_API int vc_model_preprocess(const vc_model *m, int *resize, int *crop, int *channels, float *mean, float *std,
                               vc_error *err);
// Node index: rank of its batch output (4: (N,C,H,W), 2: (N,C)) and its number
// of parameters. Any output may be NULL.
VC_API int vc_model_node_detail(const vc_model *m, int index, int *rank, size_t *params, vc_error *err);
// Totals: display nodes (the input's channels plus every conv layer's), edges
// (2-D conv kernels) and parameters. Any output may be NULL.
VC_API int vc_model_totals(const vc_model *m, size_t *nodes, size_t *edges, size_t *params, vc_error *err);
// The model described as one JSON object on f (what `viscnn info --json` prints).
VC_API int vc_model_write_json(const vc_model *m, FILE *f, vc_error *err);

// s made printable for one line of text: bytes below 0x20, above 0x7e and
// '\\' as \xNN, cut after 80 characters with "...". The result is one of 8
// buffers per thread, reused in turn (copy it to keep it). NULL: "(null)".
VC_API const char *vc_str(const char *s);
// s as a JSON string (quoted; '"', '\\' and control bytes escaped) on f; v as
// a JSON number with 7 significant digits (%.7g; NaN and infinities as null).
VC_API void vc_json_string(FILE *f, const char *s);
VC_API void vc_json_number(FILE *f, double v);

// Process-wide settings (call them before any other thread uses the library).
// The most pixels an image file may have before it is decoded (default 64M).
VC_API void vc_set_max_pixels(long long n);
// The device of every session and analysis made afterwards: "cpu" or "cuda".
// VC_EINPUT for an unknown name or a device that is not there.
VC_API int vc_device_select(const char *name, vc_error *err);
// Tunes glibc malloc to keep freed large buffers for reuse (programs that
// run many passes over big activations); no effect elsewhere.
VC_API void vc_malloc_keep(void);

// ---- files ---------------------------------------------------------------------------
// A float32 .npy (float16/64 converted; C order): *data (malloc'd, vc_free),
// rank (at most 8) and dim[0..rank).
VC_API int vc_npy_read(const char *path, float **data, int *rank, long long *dim, vc_error *err);
// Writes data (rank, dim) as a float32 .npy, through a temporary file renamed
// over path (nothing half-written on failure).
VC_API int vc_npy_write(const char *path, const float *data, int rank, const long long *dim, vc_error *err);
// Writes x: (c, h, w), c = 1 or 3, values in [0, 1] (clamped), as an 8-bit PNG.
VC_API int vc_png_write(const char *path, const float *x, int c, int h, int w, vc_error *err);

// ---- receptive fields ------------------------------------------------------------------
// The input pixels unit (y, x) of node `node` reads: box[4] = {y0, x0, y1, x1}
// inclusive, unclipped (may reach into padding) and clipped[4] clipped to the
// image (y1 < y0 when the unit reads only padding). jump[2]: input pixels
// between neighbouring units when the node's geometry is affine (*affine 1),
// else 0. Any output may be NULL.
VC_API int vc_model_rf(const vc_model *m, int node, int y, int x, int *box, int *clipped, int *affine, int *jump,
                       vc_error *err);

// ---- PyTorch checkpoints -------------------------------------------------------------
// The built-in architecture names, comma-separated, into buf (cap bytes).
VC_API void vc_arch_names(char *buf, size_t cap);
// Converts a PyTorch state dict (zip or legacy torch.save) in pth, fitted to
// arch (a built-in name or a template .json), into the model file out (written
// through a temporary file, loaded back and checked before it takes the name).
// A report of what was read and written, any pointer NULL if not wanted:
typedef struct {
    int n_written;            // tensors written
    size_t n_values;          // floats written
    int legacy;               // 1: legacy torch.save format, 0: zip
    int stripped_module;      // every key had a 'module.' prefix (removed)
    int n_ignored;            // tensors the architecture does not use
    char ignored_example[128];
    char nested[256];         // the key the state dict was nested under, or ""
} vc_pth_report;
VC_API int vc_pth_convert(const char *pth, const char *arch, const char *out, vc_pth_report *report, vc_error *err);

// ---- the browser GUI ---------------------------------------------------------------------
// Serves the GUI for model over HTTP until SIGINT/SIGTERM (docs/gui.md):
// images a file, folder or class subfolders; host NULL: 127.0.0.1; port 0:
// any free one; cache_dir for computed results; web_dir NULL: the default;
// target NULL: "loss"; threads 0: all cores; no_precompute 1: compute on
// demand only. Prints the URL on stdout once listening.
VC_API int vc_serve(const char *model, const char *images, const char *host, int port, const char *cache_dir,
                    const char *web_dir, const char *target, int threads, int no_precompute, vc_error *err);

// ---- image sets (since 0.2) -------------------------------------------------------------
typedef struct vc_imageset vc_imageset;
// Images from path: one image file, a folder of images (one category), or a
// folder of class subfolders (one category each; a subfolder's name matched
// against the model's labels gives its images' label, else -1). Paths are
// listed, not read: images are decoded by vc_imageset_load. The set keeps a
// pointer to m and to path (both must outlive it).
VC_API int vc_imageset_open(vc_imageset **out, const vc_model *m, const char *path, vc_error *err);
// A preprocessed batch x_npy (N,C,H,W of the model's input) with labels_npy
// (N integers in [0, classes); NULL: none, -1 each). by_label: one category
// per label value (named by the model's labels), else one named after x_npy.
VC_API int vc_imageset_open_npy(vc_imageset **out, const vc_model *m, const char *x_npy, const char *labels_npy,
                                int by_label, vc_error *err);
VC_API void vc_imageset_free(vc_imageset *s);
// Number of images and categories, and the source (path or X.npy) named in messages.
VC_API int vc_imageset_size(const vc_imageset *s, int *n_images, int *n_categories, const char **source, vc_error *err);
// Image i: its file (NULL for an .npy batch), label (-1: unknown) and category.
VC_API int vc_imageset_image(const vc_imageset *s, int i, const char **path, int *label, int *category, vc_error *err);
VC_API int vc_imageset_category(const vc_imageset *s, int c, const char **name, vc_error *err);
// A category by name (exact, else ignoring case with ' ', '_', '-' alike): *c, or -1.
VC_API int vc_imageset_find_category(const vc_imageset *s, const char *name, int *c, vc_error *err);
// Loads images idx[0..n) preprocessed into x (n,C,H,W) and their labels (may be NULL).
VC_API int vc_imageset_load(const vc_imageset *s, const int *idx, int n, float *x, int *labels, vc_error *err);
// Long analyses over the set (importance) save their partial sums in dir
// every `every` images of this process and resume from them after a crash
// (docs/importance.md); dir NULL: none (the default). dir must outlive s.
VC_API int vc_imageset_set_checkpoint(vc_imageset *s, const char *dir, int every, vc_error *err);
// Warnings on stderr for what a class-folder set leaves out (images beside
// the class folders, deeper folders, empty ones, names matching no label).
VC_API void vc_imageset_warn(const vc_imageset *s);
// A preprocessed batch from an .npy file whose shape must be (N,C,H,W) of
// the model's input, N >= 1: *x malloc'd (vc_free), *n images.
VC_API int vc_batch_read(const vc_model *m, const char *path, float **x, int *n, vc_error *err);

// ---- labelled sets and accuracy (since 0.2) -----------------------------------------
// n images with a class label each, preprocessed for the model and held in
// memory (for training and accuracy).
typedef struct vc_labelled vc_labelled;
// An IDX pair (images: the model's input H x W, one channel; labels) or a
// folder of class subfolders named by the model's labels (or class numbers).
// limit > 0 keeps the first `limit` images.
VC_API int vc_labelled_open_idx(vc_labelled **out, const vc_model *m, const char *images, const char *labels, int limit,
                                vc_error *err);
VC_API int vc_labelled_open_folder(vc_labelled **out, const vc_model *m, const char *folder, int limit, vc_error *err);
// The images of an image set, loaded (copied) with their labels; every image
// must have one (labels from class folders or an .npy of labels).
VC_API int vc_labelled_from_imageset(vc_labelled **out, const vc_imageset *s, int limit, vc_error *err);
VC_API void vc_labelled_free(vc_labelled *s);
// Number of images and their labels (owned by the set).
VC_API int vc_labelled_size(const vc_labelled *s, int *n, const int **labels, vc_error *err);
// The predicted class of every image (pred: n ints, may be NULL) and the
// accuracy (may be NULL), in batches of `batch` images over the cores.
VC_API int vc_evaluate(const vc_model *m, const vc_labelled *s, int batch, int *pred, double *accuracy, vc_error *err);

// ---- importance over an image set (since 0.2) ---------------------------------------------
// Every image of an image set scored toward one target: per category and
// overall (the mean over every image), as `viscnn importance` does. Under
// vc_dist (MPI) the images are split over the ranks and every rank gets the
// same scores (docs/mpi.md).
typedef struct vc_setscores vc_setscores;
// VC_EINPUT naming the metric when it is not one of vc_importance_new's.
VC_API int vc_metric_check(const char *metric, vc_error *err);
// Scores set (NULL: no images, for the "weight" metric only), batch images
// per pass. The set must outlive the scores.
VC_API int vc_importance_over_set(vc_setscores **out, const vc_model *m, const char *metric, const char *target,
                                  const vc_imageset *set, int batch, vc_error *err);
VC_API void vc_setscores_free(vc_setscores *s);
// Images scored, and categories.
VC_API int vc_setscores_size(const vc_setscores *s, int *images, int *n_categories, vc_error *err);
// Checks a contrast expression ("sneaker - sandal", "2*coat - overall";
// docs/importance.md) against the set's category names, before scoring.
VC_API int vc_contrast_check(const char *expr, const vc_imageset *set, vc_error *err);
// Evaluates the contrast over the categories' scores (negatives clamped to
// 0); the scores then carry it (written by vc_setscores_write).
VC_API int vc_setscores_contrast(vc_setscores *s, const char *expr, vc_error *err);
// Writes the scores to path, .json or .csv by its extension (the formats of
// docs/importance.md): overall, each category's when by_class, the contrast's
// when there is one; layers[0..n_layers) (conv layer names) only, or every
// scored layer when n_layers is 0. *n_written (may be NULL): layers written.
// Through a temporary file: nothing half-written on failure.
VC_API int vc_setscores_write(const vc_setscores *s, const char *path, int by_class, const char *const *layers, int n_layers,
                              int *n_written, vc_error *err);

// Node layouts of the GUI (docs/architecture.md §6): "mds", "mds-smooth"
// (from per-category scores: *needs_scores 1), "grid", "weights" (none).
VC_API int vc_projection_check(const char *projection, int *needs_scores, vc_error *err);
// Lays out every display node and writes the layout JSON `viscnn project`
// writes to path (through a temporary file); s: the scores (2 or more
// categories) when the projection needs them, else NULL. *n_layers,
// *n_nodes (may be NULL): display layers and nodes laid out.
VC_API int vc_project_write(const vc_model *m, const char *projection, const vc_setscores *s, const char *path, int *n_layers,
                            int *n_nodes, vc_error *err);

// ---- feature visualisation (since 0.2; docs/featvis.md) ------------------------------------
// The settings of an optimised picture (a public struct: it changes only
// with a major version).
typedef struct {
    int steps;                // Adam steps (512)
    int size;                 // canvas side in pixels, at most the model's input; 0: the input's own H x W
    double lr;                // Adam learning rate (0.05; used as float32)
    unsigned long long seed;  // with the target, fixes the picture (byte-identical on one machine)
    int neuron;               // -1: default (node: channel mean; edge: centre unit); 0: channel mean; 1: centre unit
    int negative;             // minimise instead of maximise
} vc_featvis_settings;
VC_API void vc_featvis_settings_default(vc_featvis_settings *s);
// The picture that most excites a node ("LAYER:J", edge 0) or an edge
// ("LAYER:J:I", edge 1) as a PNG at png, with its optimisation trace as JSON
// at trace (NULL: none); through cache_dir (NULL: no cache), *from_cache
// (may be NULL) 1 when it came from there.
VC_API int vc_featvis_picture(const vc_model *m, const char *spec, int edge, const vc_featvis_settings *s, const char *cache_dir,
                              const char *png, const char *trace, int *from_cache, vc_error *err);
// Every node of a layer, `batch` nodes per optimisation batch: outdir/L_J.png
// for each node J, the contact sheet outdir/L.png, and the traces as one
// JSON array at trace (NULL: none). Progress and a summary go to stderr.
// Under vc_dist (MPI) batch u is made by rank u % size; the files are the
// same as one process's.
VC_API int vc_featvis_layer(const vc_model *m, const char *layer, const vc_featvis_settings *s, int batch,
                            const char *cache_dir, const char *outdir, const char *trace, vc_error *err);

// ---- training (since 0.2; docs/training.md) ----------------------------------------------
// A model to train: an architecture (a built-in name or a template .json;
// weights initialised from seed) or a model file to train further.
VC_API int vc_train_model_new(vc_model **out, const char *arch, unsigned long long seed, vc_error *err);
// Writes m's graph and current weights as a .safetensors model file (through
// a temporary file); key/value: one more metadata string, or both NULL.
VC_API int vc_model_save(const vc_model *m, const char *path, const char *key, const char *value, vc_error *err);
// One epoch's figures: mean training loss, accuracy on the training batches,
// test accuracy (-1 without a test set), the last step's learning rate, and
// seconds. (A public struct: it changes only with a major version.)
typedef struct {
    int epoch;                // 1-based
    double loss, train_acc, test_acc, lr, seconds;
} vc_epoch;
typedef void (*vc_batch_fn)(void *ctx, int epoch, int batch, int n_batches, double loss, double acc);
typedef void (*vc_epoch_fn)(void *ctx, const vc_epoch *e);
// The settings of a training run and the history of its last run. optimizer:
// "sgd" (NULL; lr 0.01, momentum 0.9), "adam" or "adamw" (betas 0.9, 0.999,
// eps 1e-8); 1 epoch, batch 64 in 2 shards, seed 0, eval batch 500.
typedef struct vc_trainer vc_trainer;
VC_API int vc_trainer_new(vc_trainer **out, const char *optimizer, vc_error *err);
VC_API void vc_trainer_free(vc_trainer *t);
// Settings by name: "epochs", "batch", "shards", "seed", "eval_batch", "lr",
// "momentum", "nesterov" (0/1), "weight_decay", "beta1", "beta2", "eps".
VC_API int vc_trainer_set(vc_trainer *t, const char *name, double value, vc_error *err);
VC_API int vc_trainer_get(const vc_trainer *t, const char *name, double *value, vc_error *err);
// "none", "cosine" or "step:EPOCHS:GAMMA".
VC_API int vc_trainer_schedule(vc_trainer *t, const char *schedule, vc_error *err);
// The optimizer's and the schedule's names (static strings).
VC_API int vc_trainer_names(const vc_trainer *t, const char **optimizer, const char **schedule, vc_error *err);
// Called on the training thread: after each batch, and after each epoch
// (once its figures are in the history; vc_trainer_record may be called there).
VC_API void vc_trainer_callbacks(vc_trainer *t, vc_batch_fn on_batch, vc_epoch_fn on_epoch, void *ctx);
// Trains m in place on train, testing on test (may be NULL) after each epoch.
VC_API int vc_train(vc_trainer *t, vc_model *m, const vc_labelled *train, const vc_labelled *test, vc_error *err);
// The record of the run so far as JSON (the "viscnn.train" metadata: command,
// arch, settings, image counts, each epoch's figures); malloc'd, vc_free.
VC_API char *vc_trainer_record(const vc_trainer *t, const char *command, const char *arch, int n_train, int n_test);

// ---- circuits from an image set (since 0.2; docs/circuits.md) ---------------------------
// What `viscnn circuit` does in one call. Strings and arrays are borrowed for
// the call. (A public struct: it changes only with a major version.)
typedef struct {
    const char *metric;         // NULL: "taylor"
    const char *target;         // NULL: "loss"
    const char *mode;           // NULL: "threshold"; "hierarchical", "keep:F", "keep:NODES,EDGES"
    double node_threshold;      // NAN: the mode's default (a value the mode does not use is an error)
    double edge_threshold;      // NAN: the mode's default
    int iterative;              // keep modes: prune in this many rounds, re-scoring (0: one shot)
    const char *category;       // the category's scores (NULL: overall)
    const char *contrast;       // or a contrast's (NULL: none)
    int batch;                  // images per pass (8)
    int faithfulness;           // measure the circuit against the whole network
    const vc_imageset *eval;    // ... on these images (NULL: in-sample, the scoring set's)
    const double *curve;        // ... and at these kept fractions (n_curve; -1: the default 13)
    int n_curve;
    const char *const *layers;  // the layers written and summarised (n_layers; 0: all)
    int n_layers;
} vc_circuit_settings;
VC_API void vc_circuit_settings_default(vc_circuit_settings *s);
// Checks the settings that need no model (mode, thresholds, metric, ...).
VC_API int vc_circuit_check(const vc_circuit_settings *s, vc_error *err);
// Scores set, extracts the circuit and measures it. Under vc_dist (MPI) the
// scoring is split over the ranks; every rank gets the circuit, rank 0 alone
// the faithfulness. The set and s->eval must outlive the circuit.
VC_API int vc_circuit_find(vc_subnet **out, const vc_model *m, const vc_imageset *set, const vc_circuit_settings *s,
                           vc_error *err);
// The circuit JSON of docs/circuits.md (vc_circuit_find's circuits only).
VC_API int vc_subnet_write_json(const vc_subnet *c, const char *path, vc_error *err);
// The model with the circuit baked into its weights (removed kernels and
// nodes zeroed) as a .safetensors file.
VC_API int vc_subnet_write_pruned(const vc_subnet *c, const char *path, vc_error *err);
// The text summary `viscnn circuit` prints (per layer, totals, faithfulness),
// naming json_path as where the JSON went (vc_circuit_find's circuits only).
VC_API int vc_subnet_summary(const vc_subnet *c, FILE *f, const char *json_path, vc_error *err);

// ---- progress ----------------------------------------------------------------------------
// Long loops (importance over a set, predictions) report progress through
// vc_progress: a bar on stderr when it is a terminal, or this thread's hook
// when one is set; a hook returning nonzero asks the loop to stop (it then
// fails with VC_EINPUT "cancelled"). fn NULL: back to the bar.
typedef int (*vc_progress_fn)(void *ctx, const char *label, int done, int total);
VC_API void vc_progress_set_hook(vc_progress_fn fn, void *ctx);
VC_API int vc_progress(const char *label, int done, int total);

// ---- several processes (MPI) --------------------------------------------------------------
// In the plain library the process is rank 0 of 1 and these do nothing; in a
// program linked with the MPI build of viscnn/dist.c (docs/mpi.md) they talk
// to MPI_COMM_WORLD. Every rank must call the collective ones (agree, sum,
// gather) at the same points in the same order.
// Starts MPI when launched by mpirun (may re-exec the program once to set
// the OpenMP policy; argc/argv may change). vc_dist_end finishes it.
VC_API void vc_dist_start(int *argc, char ***argv);
VC_API void vc_dist_end(void);
VC_API int vc_dist_rank(void);
VC_API int vc_dist_size(void);
VC_API int vc_dist_is_root(void);
// Collective: the rc and message of the lowest failing rank, on every rank.
VC_API int vc_dist_agree(int rc, vc_error *err);
// After an error: whether this rank should stay silent (rank 0 reports it),
// and whether the error was agreed by every rank (1 in one process).
VC_API int vc_dist_error_quiet(void);
VC_API int vc_dist_error_agreed(void);
// Ends every rank of the job with this exit status (one process: exit). The
// only library function that ends the process, and only when asked to.
VC_API void vc_dist_abort(int status);
// Collective: element-wise sum of buf (n doubles) over the ranks, on every rank.
VC_API void vc_dist_sum(double *buf, size_t n);
// Collective: block b (0..n-1) is made by rank (b / per) % size; afterwards
// rank 0 holds all of them, the others' as malloc'd copies (free() them).
VC_API void vc_dist_gather_to_root(void **blocks, size_t *lens, int n, int per);

#ifdef __cplusplus
}
#endif
