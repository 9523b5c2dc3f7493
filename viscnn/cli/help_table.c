// help_table.c: the CLI's commands and options (see help_table.h). One row per
// option; the order of rows is the order help lists them in.
#include "help_table.h"
#include <string.h>

#define TARGET_NOTE                                                                                          \
    "Targets T: loss (the default: cross-entropy against the image's class folder when it names a class, "  \
    "else against the model's own top class), class:K or class:NAME (one logit; NAME is a label from "        \
    "`viscnn info`, matched ignoring case with space, _ and - alike, e.g. class:\"ankle boot\"), "            \
    "node:LAYER:CH (the mean of channel CH of layer LAYER)."
#define METRIC_NOTE                                                                                          \
    "Metrics M: actxgrad (default), act, grad, taylor, weight, snip (docs/importance.md); weight needs no "   \
    "images."
#define IMAGES_NOTE                                                                                          \
    "PATH is one image, a folder of images, or a folder of class subfolders (each a category; folder names "  \
    "are matched to the model's labels ignoring case, with space, _ and - alike). Folders that match no "     \
    "label and images that would be skipped are named in a warning. PATH may also be a list file (.txt): one "   \
    "image path per line, optionally followed by a label; under mpirun each rank reads only its share."

const cli_help_entry cli_help[] = {
    {"info", "MODEL [--json]", "layers, shapes, labels, nodes, edges and parameters of a model", NULL, {
        {"json", NULL, "print the same as one JSON object"},
    }},
    {"predict", "MODEL (IMAGE|FOLDER)... | MODEL --input X.npy", "the top classes of images, and accuracy on class folders",
     "Folders are read like --images PATH elsewhere: with class subfolders whose names match labels, the "
     "accuracy is printed after the predictions.", {
        {"top", "K", "how many classes to list per image (default 5)"},
        {"input", "X.npy", "a preprocessed float32 batch (N,C,H,W) instead of images"},
        {"save-input", "X.npy", "also write the preprocessed batch the model saw"},
        {"json", NULL, "print predictions (and accuracy) as JSON"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"forward", "MODEL --input IN.npy -o OUT.npy|OUT.png", "raw output of the model or of one layer",
     "OUT.npy is (N,K) or, with --layer, that layer's (N,C,H,W). OUT.png (with --layer) is a contact sheet of "
     "the first image's channel maps: a diverging colour map centred at 0 (blue negative, red positive) with a "
     "scale bar.", {
        {"input", "IN.npy", "the preprocessed float32 batch (N,C,H,W)"},
        {"layer", "L", "stop at layer L and write its output"},
        {"circuit", "C.json", "run the network masked to a circuit from viscnn circuit"},
        {"decisions", "D.npz", "write every branching node's decisions (docs/parity.md)"},
        {"o", "OUT.npy|OUT.png", "where to write the output"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"rf", "MODEL --layer L --y Y --x X", "the receptive field of one unit: the input pixels it sees",
     "With --image and -o RF.png the field is drawn as a box on the preprocessed image.", {
        {"layer", "L", "the layer (see viscnn info)"},
        {"y", "Y", "the unit's row"},
        {"x", "X", "the unit's column"},
        {"image", "IMG", "an image to draw the field on (with -o)"},
        {"o", "RF.png", "write the picture"},
        {"json", NULL, "print the field as JSON"},
    }},
    {"importance", "MODEL (--images PATH | --input X.npy) -o OUT.json|OUT.csv", "node and edge importance over an image set",
     TARGET_NOTE "\n" METRIC_NOTE "\n" IMAGES_NOTE, {
        {"images", "PATH", "the image set"},
        {"input", "X.npy", "a preprocessed float32 batch instead of images"},
        {"labels", "L.npy", "integer class per image of --input (for the loss target, and --by-class)"},
        {"target", "T", "what the scores explain (default loss)"},
        {"metric", "M", "how nodes and edges are scored (default actxgrad)"},
        {"by-class", NULL, "also score each category (class subfolder) on its own"},
        {"contrast", "EXPR", "scores of a linear expression over categories, e.g. 'sneaker - overall'"},
        {"layer", "L", "write only layer L (repeat for several)"},
        {"batch", "B", "images per forward/backward pass (default 8)"},
        {"o", "OUT.json|OUT.csv", "where to write the scores (format from the extension)"},
        {"checkpoint", "DIR", "write partial sums there every K images and resume from them (docs/mpi.md)"},
        {"checkpoint-every", "K", "images between checkpoints (default 1024)"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"edges", "MODEL (--image IMG | --input X.npy) --layer L -o OUT.npy|OUT.png", "the exact per-kernel maps of one conv layer",
     "OUT.npy is float32 (J, I, Ho, Wo); with --grad, OUT.grad.npy (J, Ho, Wo) is written beside it. OUT.png is a "
     "contact sheet of the maps (one row per out-channel, one column per in-channel), on a diverging colour map "
     "centred at 0 with a scale bar.\n" TARGET_NOTE, {
        {"image", "IMG", "one image file (not a folder)"},
        {"input", "X.npy", "a preprocessed float32 batch of one image"},
        {"labels", "L.npy", "the integer class of the --input image (for the loss target)"},
        {"layer", "L", "a conv2d layer"},
        {"out", "J", "out-channels, e.g. 3, 0,2,5 or 0-7 (default all)"},
        {"in", "I", "in-channels within the group (default all)"},
        {"grad", NULL, "also write the gradient of the target at the layer's output"},
        {"target", "T", "what --grad differentiates (default loss)"},
        {"o", "OUT.npy|OUT.png", "where to write the maps"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"circuit", "MODEL (--images PATH | --input X.npy) --mode MODE -o OUT.json", "the subgraph that preserves a target, and how faithfully",
     "MODE: threshold, hierarchical, keep:F (a fraction of the edges) or keep:NODES,EDGES. docs/circuits.md is "
     "the contract.\n" TARGET_NOTE "\n" METRIC_NOTE, {
        {"images", "PATH", "the image set the scores come from"},
        {"input", "X.npy", "a preprocessed float32 batch instead of images"},
        {"labels", "L.npy", "integer class per image of --input"},
        {"target", "T", "what the circuit preserves (default loss)"},
        {"metric", "M", "the scores (default taylor)"},
        {"mode", "MODE", "how nodes and edges are selected"},
        {"node-threshold", "t", "threshold: min normalised node score (default 0.2); hierarchical: cumulative share (0.8)"},
        {"edge-threshold", "t", "the same for kernels (edges)"},
        {"iterative", "K", "keep modes: prune in K rounds, re-scoring on the pruned network each round"},
        {"category", "NAME", "use one category's scores (a class subfolder)"},
        {"contrast", "EXPR", "use a contrast of categories, e.g. 'sneaker - overall'"},
        {"pruned", "OUT.safetensors", "also write the circuit as a model with the rest zeroed"},
        {"faithfulness", NULL, "measure how well the circuit reproduces the target"},
        {"eval-images", "PATH", "held-out images to measure faithfulness on"},
        {"curve", "[F,...]", "faithfulness at these kept fractions too"},
        {"layer", "L", "print and write only layer L (repeat for several)"},
        {"batch", "B", "images per pass (default 8)"},
        {"o", "OUT.json", "where to write the circuit"},
        {"checkpoint", "DIR", "write partial sums there every K images and resume from them (docs/mpi.md)"},
        {"checkpoint-every", "K", "images between checkpoints (default 1024)"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"project", "MODEL --projection P -o OUT.json", "the (y, z) position of every display node, per layer",
     "P: mds and mds-smooth (need class subfolders, or --input with --labels), grid, weights.", {
        {"projection", "P", "mds, mds-smooth, grid or weights"},
        {"images", "PATH", "the image set (class subfolders) for mds"},
        {"input", "X.npy", "a preprocessed float32 batch instead of images"},
        {"labels", "L.npy", "integer class per image of --input"},
        {"target", "T", "what the scores explain (default loss)"},
        {"metric", "M", "the scores (default actxgrad)"},
        {"batch", "B", "images per pass (default 8)"},
        {"o", "OUT.json", "where to write the layout"},
        {"checkpoint", "DIR", "write partial sums there every K images and resume from them (docs/mpi.md)"},
        {"checkpoint-every", "K", "images between checkpoints (default 1024)"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"serve", "MODEL --images PATH", "the browser GUI",
     "Binds 127.0.0.1 unless --host says otherwise (the API has no authentication).", {
        {"images", "PATH", "the image set to explore"},
        {"host", "H", "address to bind (default 127.0.0.1)"},
        {"port", "P", "port (default 8050; 0 picks a free one)"},
        {"cache", "DIR", "where results are cached (default ~/.cache/viscnn)"},
        {"target", "T", "the first view's target (default loss)"},
        {"web", "DIR", "the page's files (default web/)"},
        {"threads", "N", "worker threads (default: all cores)"},
        {"no-precompute", NULL, "do not compute the first view before it is asked for"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"featvis", "MODEL (--node L:J | --edge L:J:I | --layer L --all) -o OUT.png|DIR", "feature visualisation of a node or an exact edge map",
     "Lucid-style optimisation on the engine (docs/featvis.md): a Fourier-parameterised image (colour-decorrelated "
     "for RGB models) under random pad, jitter, scale and rotation, Adam, at the model's own input size. A node "
     "defaults to its channel mean, an edge e_ji to its centre unit. L:J is a conv layer and channel; input:C names "
     "an input channel. Pictures are cached by model hash, target and every setting.", {
        {"node", "L:J", "visualise node J of layer L"},
        {"edge", "L:J:I", "visualise the exact edge map e_ji of layer L (out channel J, in channel I)"},
        {"layer", "L", "with --all: every node of layer L, in batches of --batch nodes"},
        {"all", NULL, "every node of --layer: a contact sheet DIR/L.png and one PNG per node"},
        {"batch", "K", "with --all: nodes optimised together (default 64; under mpirun, batch u runs on rank u % N)"},
        {"neuron", NULL, "maximise the centre unit (the default for an edge)"},
        {"channel", NULL, "maximise the channel mean (the default for a node)"},
        {"negative", NULL, "minimise instead of maximise"},
        {"steps", "N", "optimisation steps (default 512)"},
        {"size", "S", "picture size (default: the model's input size)"},
        {"seed", "N", "random seed; the same seed gives the same PNG (default 0)"},
        {"lr", "LR", "Adam learning rate (default 0.05)"},
        {"cache", "DIR", "where pictures are cached (default ~/.cache/viscnn/featvis)"},
        {"no-cache", NULL, "neither read nor write the cache"},
        {"trace", "OUT.json", "write the objective per step and the final objective without transforms"},
        {"o", "OUT.png|DIR", "the picture, or the folder for --all"},
    }},
    {"convert", "IN.pth --arch NAME -o OUT.safetensors", "a PyTorch state dict as a viscnn model",
     "NAME: alexnet, vgg11, vgg16, resnet18, googlenet, ... or an architecture template T.json.", {
        {"arch", "NAME", "the architecture the state dict belongs to"},
        {"o", "OUT.safetensors", "where to write the model"},
    }},
    {"train", "--arch TEMPLATE.json|MODEL (--idx IMAGES --labels LABELS | --images FOLDER) -o OUT.safetensors",
     "train a model", "IDX files are MNIST-style (.gz allowed); FOLDER holds class subfolders.", {
        {"arch", "T", "an architecture template, or a model to train further"},
        {"idx", "IMAGES", "training images as an IDX file"},
        {"labels", "LABELS", "training labels as an IDX file"},
        {"images", "FOLDER", "training images in class subfolders"},
        {"test-idx", "IMAGES", "test images (IDX)"},
        {"test-labels", "LABELS", "test labels (IDX)"},
        {"test-images", "FOLDER", "test images in class subfolders"},
        {"epochs", "E", "passes over the training set (default 10)"},
        {"batch", "B", "images per step (default 64)"},
        {"optimizer", "O", "sgd, adam or adamw"},
        {"lr", "LR", "learning rate"},
        {"momentum", "M", "SGD momentum"},
        {"nesterov", NULL, "Nesterov momentum"},
        {"weight-decay", "WD", "weight decay"},
        {"beta1", "B1", "Adam beta1"},
        {"beta2", "B2", "Adam beta2"},
        {"eps", "EPS", "Adam epsilon"},
        {"schedule", "S", "none, cosine or step:E:G (multiply the rate by G every E epochs)"},
        {"seed", "S", "random seed (default 0)"},
        {"shards", "S", "data-parallel shards per batch (default 2)"},
        {"limit", "N", "use the first N training images only"},
        {"test-limit", "N", "use the first N test images only"},
        {"eval-batch", "B", "images per pass when testing (default 500)"},
        {"o", "OUT.safetensors", "where to write the model (after every epoch)"},
    }},
    {"eval", "MODEL (--idx IMAGES --labels LABELS | --images FOLDER | --input X.npy --labels L.npy)",
     "accuracy, overall and per class", NULL, {
        {"idx", "IMAGES", "images as an IDX file"},
        {"labels", "LABELS", "labels: an IDX file with --idx, a .npy with --input"},
        {"images", "FOLDER", "images in class subfolders"},
        {"input", "X.npy", "a preprocessed float32 batch"},
        {"batch", "B", "images per pass (default 500)"},
        {"limit", "N", "use the first N images only"},
        {"json", NULL, "print the accuracies as JSON"},
        {"device", "cpu|cuda", "where the runs live (cuda needs a make CUDA=1 build and a GPU; docs/cuda.md)"},
    }},
    {"help", "[COMMAND]", "this overview, or one command's options", NULL, {
        {"man", NULL, "print the manual page (roff, viscnn.1)"},
        {"markdown", NULL, "print the CLI reference as Markdown (docs/cli.md)"},
        {"synopsis", NULL, "print every command's synopsis (the README's CLI block)"},
        {"list-options", NULL, "print every command and option, one per line (for tests and completion)"},
    }},
};
const int cli_help_count = sizeof cli_help / sizeof cli_help[0];

const cli_help_entry *cli_help_find(const char *cmd) {
    for (int i = 0; i < cli_help_count; i++)
        if (!strcmp(cli_help[i].name, cmd)) return &cli_help[i];
    return NULL;
}

const cli_option *cli_help_option(const cli_help_entry *h, const char *name) {
    for (int k = 0; h && k < CLI_MAX_OPTS && h->opt[k].name; k++)
        if (!strcmp(h->opt[k].name, name)) return &h->opt[k];
    return NULL;
}

const char *cli_dash(const char *name) { return strcmp(name, "o") ? "--" : "-"; }
