// train.h: training a model on a labelled image set (how the default model
// was made). Mini-batch SGD with momentum or Adam, PyTorch's semantics for
// both, weight decay, shuffling from a seed, dropout active while training,
// an optional learning-rate schedule, and test accuracy after every epoch.
//
// A batch is split into a fixed number of shards that run on their own
// vc_run each, in parallel (one OpenMP thread and single-threaded OpenBLAS
// per shard), and their parameter gradients are summed in shard order, so a
// run is deterministic for a given seed and shard count whatever the number
// of cores.
//
// The library prints nothing: progress and per-epoch results go to callbacks.
#pragma once
#include <stdint.h>
#include "viscnn_internal.h"

// ---- models to train --------------------------------------------------------
// Builds a model from an architecture template (viscnn/arch.h: the graph of
// docs/model-format.md as a JSON object plus "param_shapes": {tensor name:
// shape}), given as a file path or a built-in name, with PyTorch's default
// initialisation drawn from a generator seeded with `seed`: conv and linear
// weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform
// with a = sqrt(5); fan_in = the weight's size / its first dimension);
// batchnorm weight 1, bias 0, running mean 0, running var 1. The model's
// graph is the template less "param_shapes"; its parameters are writable.
int train_model_from_template(vc_model **out, const char *arch, uint64_t seed, vc_error *err);
// A model file (*.safetensors, to train further), else a template as above.
int train_model_open(vc_model **out, const char *arch, uint64_t seed, vc_error *err);
// Writes the model's graph and current parameters as a viscnn model file
// (path.tmp, then rename). extra_key/extra_val: one more metadata string, or NULL.
int train_model_save(const vc_model *m, const char *path, const char *extra_key, const char *extra_val, vc_error *err);

// ---- data ---------------------------------------------------------------------
// n labelled images of the model's input shape (C,H,W): either raw bytes u8
// (n, C, H, W), normalised on the fly as (u8/255 - mean[c]) / std[c] with the
// model's preprocessing, or already preprocessed floats f (n, C, H, W).
typedef struct {
    int n;
    const unsigned char *u8;
    const float *f;
    const int *labels;        // (n), each in [0, K)
} train_data;

// x: (count, C, H, W) = images idx[0..count) of d, preprocessed for m.
void train_data_fill(float *x, int *labels, const train_data *d, const vc_model *m, const int *idx, int count);

// ---- the optimizer ------------------------------------------------------------
typedef enum { TRAIN_SGD, TRAIN_ADAM, TRAIN_ADAMW } train_optim_kind;

typedef struct {
    train_optim_kind kind;
    double lr;
    double momentum;          // SGD; 0 = plain SGD
    int nesterov;             // SGD
    double weight_decay;      // SGD, Adam: L2 added to the gradient; AdamW: decoupled
    double beta1, beta2, eps; // Adam, AdamW
} train_optim_cfg;

// Defaults: SGD lr 0.01, momentum 0.9; Adam betas (0.9, 0.999), eps 1e-8.
void train_optim_defaults(train_optim_cfg *c, train_optim_kind kind);

typedef struct {
    train_optim_cfg cfg;
    int n;                    // parameters
    size_t *size;             // (n) floats of each
    float **m1, **m2;         // (n) momentum buffer / Adam first moment; Adam second moment
    long step;                // steps taken
} train_optimizer;

void train_optim_init(train_optimizer *o, const train_optim_cfg *cfg, int n, const size_t *sizes);
void train_optim_free(train_optimizer *o);
// One update of every parameter p[i] (size[i] floats) from its gradient g[i]
// with learning rate lr (the schedule's value for this step), exactly as
// torch.optim.SGD / Adam / AdamW (foreach=False) do it in float32:
//   SGD:   g += wd*p; buf = step 1 ? g : momentum*buf + g;
//          g = nesterov ? g + momentum*buf : buf; p -= lr*g
//   Adam:  g += wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
//          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//   AdamW: p *= 1 - lr*wd, then Adam without the L2 term.
void train_optim_step(train_optimizer *o, float *const *p, float *const *g, double lr);

// ---- the loop ------------------------------------------------------------------
typedef enum { TRAIN_SCHED_NONE, TRAIN_SCHED_COSINE, TRAIN_SCHED_STEP } train_sched;

typedef struct {
    int epochs;
    int batch;
    int shards;               // a batch runs as this many parallel pieces (>= 1)
    uint64_t seed;            // shuffling and dropout
    train_sched sched;        // cosine: lr * (1 + cos(pi * t / T)) / 2 per step t of T;
    int step_epochs;          // step: lr * gamma^floor(epoch / step_epochs)
    double step_gamma;
    int eval_batch;
} train_cfg;

void train_cfg_defaults(train_cfg *c);

typedef struct {
    int epoch;                // 1-based
    double loss;              // mean training loss over the epoch (dropout active)
    double train_acc;         // accuracy on the training batches as they were trained
    double test_acc;          // after the epoch; -1 without test data
    double lr;                // at the epoch's last step
    double seconds;           // training + test time of this epoch
} train_epoch;

typedef struct {
    // batch b of nb done, with the running mean loss and accuracy of the epoch
    void (*on_batch)(void *ctx, int epoch, int b, int nb, double loss, double acc);
    void (*on_epoch)(void *ctx, const train_epoch *e);
    void *ctx;
} train_callbacks;

// Trains m in place. test may be NULL. history: (cfg->epochs) or NULL.
int train_run(vc_model *m, const train_data *train, const train_data *test, const train_cfg *cfg,
              const train_optim_cfg *ocfg, const train_callbacks *cb, train_epoch *history, vc_error *err);

// Predicted class of every image of d (pred: (d->n), may be NULL) and the
// accuracy against d->labels; batches of `batch`, split over the cores.
int train_evaluate(const vc_model *m, const train_data *d, int batch, int *pred, double *acc, vc_error *err);

// ---- labelled sets from files ----------------------------------------------------
// A train_data with its storage: an IDX pair (images, labels; the images must
// have the model's input H x W and one channel) or a folder of class
// subfolders whose names are model labels (or class numbers), preprocessed
// as the model says. limit > 0 keeps the first `limit` images.
typedef struct train_set {
    train_data d;
    unsigned char *u8;
    float *f;
    int *labels;
} train_set;

int train_set_open_idx(train_set *s, const vc_model *m, const char *images, const char *labels, int limit, vc_error *err);
int train_set_open_folder(train_set *s, const vc_model *m, const char *folder, int limit, vc_error *err);
void train_set_free(train_set *s);
