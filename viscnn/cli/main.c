// main.c: the viscnn command line. Each command lives in viscnn/cli/cmd_*.c;
// errors come back as a vc_error and become one line on stderr.
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include <stdlib.h>
#include "../../loaders/image.h"

static const char *usage =
    "usage: viscnn COMMAND ...\n"
    "  info MODEL                                     layers, shapes, nodes, edges, parameters\n"
    "  predict MODEL IMAGE... [--top K] [--save-input X.npy]\n"
    "                                                 top-K classes for PNG/JPEG images\n"
    "  predict MODEL --input X.npy                    the same on a preprocessed (N,C,H,W) batch\n"
    "  forward MODEL --input IN.npy [--layer L] [--circuit C.json] [--decisions D.npz] -o OUT.npy\n"
    "                                                 raw output (N,K), or layer L's (N,C,H,W)\n"
    "  rf MODEL --layer L --y Y --x X                 input pixels that unit (Y, X) of layer L sees\n"
    "  importance MODEL (--images PATH | --input X.npy [--labels L.npy]) [--target T] [--metric M]\n"
    "             [--by-class] [--contrast EXPR] [--batch B] -o OUT.json|OUT.csv\n"
    "                                                 node and edge importance (T: loss | class:K | node:LAYER:CH;\n"
    "                                                 M: actxgrad | act | grad | taylor | weight | snip)\n"
    "  edges MODEL (--image IMG | --input X.npy) --layer L [--out J] [--in I] [--grad] [--target T] -o OUT.npy\n"
    "                                                 exact per-kernel maps (J, I, Ho, Wo); --grad adds OUT.grad.npy\n"
    "  circuit MODEL (--images PATH | --input X.npy) [--target T] [--metric M (default taylor)]\n"
    "          --mode threshold|hierarchical|keep:F|keep:NODES,EDGES [--node-threshold t] [--edge-threshold t]\n"
    "          [--iterative K] [--category NAME | --contrast EXPR] [--pruned OUT.safetensors]\n"
    "          [--faithfulness [--eval-images PATH] [--curve [F,F,...]]] -o OUT.json\n"
    "                                                 the subgraph that preserves the target, and how faithfully\n"
    "                                                 (docs/circuits.md)\n"
    "  project MODEL --projection mds|mds-smooth|grid|weights [--images PATH | --input X.npy --labels L.npy]\n"
    "          [--target T] [--metric M] [--batch B] -o OUT.json\n"
    "                                                 (y, z) of every display node per layer (mds: class subfolders)\n"
    "  serve MODEL --images PATH [--host 127.0.0.1] [--port 8050] [--cache DIR] [--target T]\n"
    "                                                 the browser GUI (binds 127.0.0.1 unless told otherwise)\n"
    "  convert IN.pth --arch NAME -o OUT.safetensors  a PyTorch state dict (zip or legacy torch.save) as a model\n"
    "                                                 (NAME: alexnet, vgg11, vgg16, resnet18, googlenet, ... or T.json)\n"
    "  train --arch TEMPLATE.json|MODEL (--idx IMAGES --labels LABELS | --images FOLDER)\n"
    "        [--test-idx IMAGES --test-labels LABELS | --test-images FOLDER] [--epochs E] [--batch B]\n"
    "        [--optimizer sgd|adam|adamw] [--lr LR] [--momentum M] [--nesterov] [--weight-decay WD]\n"
    "        [--schedule none|cosine|step:E:G] [--seed S] [--shards S] [--limit N] -o OUT.safetensors\n"
    "                                                 train a model (IDX: MNIST-style .gz files)\n"
    "  eval MODEL (--idx IMAGES --labels LABELS | --images FOLDER | --input X.npy --labels L.npy) [--batch B]\n"
    "                                                 accuracy, overall and per class\n"
    "Any command: --max-pixels N refuses images whose header declares more pixels (default 67108864).\n"
    "Exit status: 0 ok, 2 bad input (one-line reason on stderr), 1 internal error.\n";

static const struct { const char *name; int (*fn)(int, char **, vc_error *); } commands[] = {
    {"info", cmd_info}, {"predict", cmd_predict}, {"forward", cmd_forward},
    {"importance", cmd_importance}, {"edges", cmd_edges},
    {"circuit", cmd_circuit},
    {"rf", cmd_rf},
    {"project", cmd_project},
    {"serve", cmd_serve},
    {"convert", cmd_convert},
    {"train", cmd_train}, {"eval", cmd_eval},
};

int main(int argc, char **argv) {
    vc_malloc_keep();
    if (argc < 2) {
        fputs("viscnn: missing COMMAND (try viscnn --help)\n", stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
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
        image_set_max_pixels(n);
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);   // keeps argv[argc] == NULL
        argc -= 2;
        i--;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        vc_error err = {{0}};
        int rc = commands[i].fn(argc - 2, argv + 2, &err);
        if (rc) {
            const char *msg = err.msg[0] ? err.msg : "failed";
            size_t cl = strlen(argv[1]);   // messages may already start with "<command>: "
            if (!strncmp(msg, argv[1], cl) && msg[cl] == ':' && msg[cl + 1] == ' ') msg += cl + 2;
            fprintf(stderr, "viscnn %s: %s\n", argv[1], msg);
            return rc == VC_EINPUT ? 2 : 1;
        }
        return 0;
    }
    fprintf(stderr, "viscnn: unknown command '%s' (try viscnn --help)\n", argv[1]);
    return 2;
}
