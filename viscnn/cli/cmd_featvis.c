// cmd_featvis.c: viscnn featvis — feature visualisation of a node or an edge
// (one PNG, optional trace JSON), or of every node of a conv layer as one
// batch (a PNG per node and a contact sheet), through the disk cache.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

// Default cache folder: $VISCNN_CACHE/featvis, else $XDG_CACHE_HOME/viscnn/featvis, else ~/.cache/viscnn/featvis.
static const char *default_cache(char *buf, size_t cap) {
    const char *v = getenv("VISCNN_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (v && *v) snprintf(buf, cap, "%s/featvis", v);
    else if (x && *x) snprintf(buf, cap, "%s/viscnn/featvis", x);
    else if (h && *h) snprintf(buf, cap, "%s/.cache/viscnn/featvis", h);
    else return NULL;
    return buf;
}

int cmd_featvis(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "featvis", argc, argv, (const char *const[]){"neuron", "channel", "negative", "all", "no-cache", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "featvis: expected one MODEL argument, got %d", a.n_pos);
    const char *nodes = cli_opt(&a, "node"), *edges = cli_opt(&a, "edge"), *layer = cli_opt(&a, "layer");
    const char *out = cli_opt(&a, "o"), *trace = cli_opt(&a, "trace"), *cache = cli_opt(&a, "cache");
    int all = cli_flag(&a, "all");
    if ((nodes != NULL) + (edges != NULL) + (layer != NULL) != 1)
        return cli_fail(err, VC_EINPUT, "featvis: give one of --node L:J, --edge L:J:I or --layer L --all");
    if (layer && !all) return cli_fail(err, VC_EINPUT, "featvis: --layer %s needs --all (every node of the layer)", layer);
    if (all && !layer) return cli_fail(err, VC_EINPUT, "featvis: --all needs --layer L");
    if (!out) return cli_fail(err, VC_EINPUT, "featvis: missing -o %s", layer ? "DIR" : "OUT.png");
    if (!layer && cli_check_ext("featvis", "-o", out, (const char *const[]){".png", NULL}, err) < 0) return VC_EINPUT;
    if (trace && cli_check_ext("featvis", "--trace", trace, (const char *const[]){".json", NULL}, err) < 0) return VC_EINPUT;
    vc_featvis_settings o;
    vc_featvis_settings_default(&o);
    double lr, seed;
    if ((rc = cli_int(&a, "steps", 512, 1, 1000000, &o.steps, err))) return rc;
    if ((rc = cli_int(&a, "size", 0, 1, 100000, &o.size, err))) return rc;
    int batch;   // --all: nodes per batch (and the unit of the MPI split)
    if ((rc = cli_int(&a, "batch", 64, 1, 4096, &batch, err))) return rc;
    if (cli_opt(&a, "batch") && !layer) return cli_fail(err, VC_EINPUT, "featvis: --batch needs --layer L --all");
    if ((rc = cli_double(&a, "lr", 0.05, 1e-6, 10, &lr, err))) return rc;
    if ((rc = cli_double(&a, "seed", 0, 0, 9007199254740992.0, &seed, err))) return rc;
    if (seed != floor(seed)) return cli_fail(err, VC_EINPUT, "featvis: --seed %s: expected a non-negative integer", cli_opt(&a, "seed"));
    o.lr = lr;
    o.seed = (unsigned long long)seed;
    if (cli_flag(&a, "neuron") && cli_flag(&a, "channel")) return cli_fail(err, VC_EINPUT, "featvis: give --neuron or --channel, not both");
    if (cli_flag(&a, "neuron")) o.neuron = 1;
    if (cli_flag(&a, "channel")) o.neuron = 0;
    o.negative = cli_flag(&a, "negative");
    char cbuf[4096];
    if (cli_flag(&a, "no-cache")) {
        if (cache) return cli_fail(err, VC_EINPUT, "featvis: give --cache DIR or --no-cache, not both");
    } else if (!cache) cache = default_cache(cbuf, sizeof cbuf);
    if ((rc = cli_check_unused(&a, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    if (layer) rc = vc_featvis_layer(m, layer, &o, batch, cache, out, trace, err);
    else {   // one picture: under mpirun rank 0 makes it, the others wait
        int cached = 0;
        if (vc_dist_is_root()) {
            rc = vc_featvis_picture(m, nodes ? nodes : edges, edges != NULL, &o, cache, out, trace, &cached, err);
            if (!rc) fprintf(stderr, "featvis %s: wrote %s%s\n", nodes ? nodes : edges, out, cached ? " (from the cache)" : "");
        }
        rc = vc_dist_agree(rc, err);
    }
    vc_model_free(m);
    return rc;
}
