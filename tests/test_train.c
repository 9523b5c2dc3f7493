// test_train.c: IDX files (loaders/idx.c) and training (train/train.c).
//
// Cases:
//   "idx ..."       well-formed files (plain and gzip) read back exactly; bad
//                   headers, truncated and corrupt files, trailing bytes and
//                   count mismatches fail with VC_EINPUT and one line naming the file.
//   "optim ..."     three steps of SGD / SGD+momentum+wd / Nesterov / Adam /
//                   Adam+wd / AdamW on a toy tensor against the values
//                   torch.optim (1.13, foreach=False) gives for the same steps.
//   "init ..."      a model from a template: PyTorch's default bounds, seeded.
//   "train ..."     1 epoch on 2,000 Fashion-MNIST images with a small net
//                   lowers the loss and raises the accuracy, and is
//                   deterministic for a seed; the saved model loads back.
// Needs Debian's dataset-fashion-mnist (the train cases FAIL without it).
// Runs from the repository root (tests/run.sh does); scratch in build/testdata/train.
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "testutil.h"
#include "../loaders/idx.h"
#include "../loaders/safetensors.h"
#include "../train/train.h"

#define DIR "build/testdata/train"
#define FASHION "/usr/share/datasets/fashion-mnist/"

static char *tp(const char *name) {
    static char buf[8][256];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], DIR "/%s", name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, p, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

// An IDX header + data: type, dims, then `extra` bytes beyond what the dims say (negative: fewer).
static size_t make_idx(unsigned char *buf, int type, int nd, const unsigned *dims, int extra) {
    size_t o = 0, n = 1;
    buf[o++] = 0; buf[o++] = 0; buf[o++] = (unsigned char)type; buf[o++] = (unsigned char)nd;
    for (int k = 0; k < nd; k++) {
        buf[o++] = dims[k] >> 24; buf[o++] = dims[k] >> 16; buf[o++] = dims[k] >> 8; buf[o++] = dims[k];
        n *= dims[k];
    }
    for (size_t i = 0; i < n + (extra > 0 ? extra : 0); i++) buf[o + i] = (unsigned char)(i * 7 + 3);
    return o + n + extra;
}

static void case_bad_idx(const char *name, const char *path, const char *want) {
    if (!tu_selected(name)) return;
    vc_idx a;
    vc_error err = {{0}};
    int rc = idx_read(&a, path, 0, &err);
    int ok = rc == VC_EINPUT && strstr(err.msg, path) == err.msg && !strchr(err.msg, '\n') && strstr(err.msg, want);
    tu_report(name, ok, "rc %d, message '%s' (want it to start with the path and say '%s')", rc, err.msg, want);
    if (!rc) idx_free(&a);
}

static void test_idx(void) {
    static unsigned char buf[1 << 17];
    unsigned dims[3] = {5, 4, 3};
    size_t n = make_idx(buf, 0x08, 3, dims, 0);
    for (int gz = 0; gz < 2; gz++) {
        char name[64], file[32];
        snprintf(file, sizeof file, "good.idx%s", gz ? ".gz" : "");
        write_bytes(tp(file), buf, n, gz);
        snprintf(name, sizeof name, "idx read %s (5,4,3)", gz ? "gzip" : "plain");
        if (!tu_selected(name)) continue;
        vc_idx a;
        vc_error err = {{0}};
        int rc = idx_read(&a, tp(file), 0, &err);
        int ok = !rc && a.rank == 3 && a.dim[0] == 5 && a.dim[1] == 4 && a.dim[2] == 3 && a.size == 60;
        for (size_t i = 0; ok && i < 60; i++) ok = a.data[i] == (unsigned char)(i * 7 + 3);
        tu_report(name, ok, "rc %d (%s), rank %d", rc, err.msg, rc ? -1 : a.rank);
        if (!rc) idx_free(&a);
    }
    // A labelled set: images (6,2,2) and labels (6); then a labels file of the wrong count.
    unsigned di[3] = {6, 2, 2}, dl[1] = {6}, dl5[1] = {5};
    n = make_idx(buf, 0x08, 3, di, 0);
    write_bytes(tp("set-images.gz"), buf, n, 1);
    n = make_idx(buf, 0x08, 1, dl, 0);
    write_bytes(tp("set-labels.gz"), buf, n, 1);
    n = make_idx(buf, 0x08, 1, dl5, 0);
    write_bytes(tp("set-labels5.gz"), buf, n, 1);
    if (tu_selected("idx set images+labels")) {
        vc_idx_set s;
        vc_error err = {{0}};
        int rc = idx_read_set(&s, tp("set-images.gz"), tp("set-labels.gz"), &err);
        int ok = !rc && s.n == 6 && s.rows == 2 && s.cols == 2 && s.labels[1] == 10 && s.pixels[23] == (unsigned char)(23 * 7 + 3);
        tu_report("idx set images+labels", ok, "rc %d (%s)", rc, err.msg);
        if (!rc) idx_set_free(&s);
    }
    if (tu_selected("idx set count mismatch")) {
        vc_idx_set s;
        vc_error err = {{0}};
        int rc = idx_read_set(&s, tp("set-images.gz"), tp("set-labels5.gz"), &err);
        tu_report("idx set count mismatch", rc == VC_EINPUT && strstr(err.msg, "5 labels for the 6 images"), "rc %d '%s'", rc, err.msg);
        if (!rc) idx_set_free(&s);
    }
    if (tu_selected("idx set labels rank")) {
        vc_idx_set s;
        vc_error err = {{0}};
        int rc = idx_read_set(&s, tp("set-images.gz"), tp("set-images.gz"), &err);
        tu_report("idx set labels rank", rc == VC_EINPUT && strstr(err.msg, "1 dimension"), "rc %d '%s'", rc, err.msg);
        if (!rc) idx_set_free(&s);
    }

    n = make_idx(buf, 0x08, 3, dims, 0);
    buf[0] = 1;
    write_bytes(tp("bad-magic.idx"), buf, n, 0);
    case_bad_idx("idx bad: first bytes not zero", tp("bad-magic.idx"), "not an IDX file");
    n = make_idx(buf, 0x0D, 3, dims, 0);
    write_bytes(tp("float.idx.gz"), buf, n, 1);
    case_bad_idx("idx bad: float data type", tp("float.idx.gz"), "0x0d is not supported");
    n = make_idx(buf, 0x08, 0, dims, 0);
    write_bytes(tp("rank0.idx"), buf, n, 0);
    case_bad_idx("idx bad: zero dimensions", tp("rank0.idx"), "0 dimensions");
    unsigned zero[2] = {3, 0};
    n = make_idx(buf, 0x08, 2, zero, 0);
    write_bytes(tp("zero.idx"), buf, n, 0);
    case_bad_idx("idx bad: a zero size", tp("zero.idx"), "dimension 1 is 0");
    unsigned huge[3] = {60000, 30000, 30000};
    n = make_idx(buf, 0x08, 3, (unsigned[]){1, 1, 1}, 0);
    for (int k = 0; k < 3; k++) { buf[4 + 4 * k] = huge[k] >> 24; buf[5 + 4 * k] = huge[k] >> 16; buf[6 + 4 * k] = huge[k] >> 8; buf[7 + 4 * k] = huge[k]; }
    write_bytes(tp("huge.idx"), buf, n, 0);
    case_bad_idx("idx bad: absurd size", tp("huge.idx"), "larger than");
    n = make_idx(buf, 0x08, 3, dims, 0);
    write_bytes(tp("trunc-header.idx"), buf, 9, 0);
    case_bad_idx("idx bad: truncated header", tp("trunc-header.idx"), "truncated");
    write_bytes(tp("trunc-data.idx.gz"), buf, n - 7, 1);
    case_bad_idx("idx bad: truncated data (gzip of a short file)", tp("trunc-data.idx.gz"), "truncated");
    n = make_idx(buf, 0x08, 3, dims, 5);
    write_bytes(tp("trailing.idx"), buf, n, 0);
    case_bad_idx("idx bad: trailing bytes", tp("trailing.idx"), "the file has more");
    // A gzip stream cut short: the compressed file itself is truncated.
    {
        n = make_idx(buf, 0x08, 3, (unsigned[]){100, 28, 28}, 0);
        write_bytes(tp("full.idx.gz"), buf, n, 1);
        FILE *f = fopen(tp("full.idx.gz"), "rb");
        static unsigned char z[1 << 17];
        size_t zn = fread(z, 1, sizeof z, f);
        fclose(f);
        write_bytes(tp("cut.idx.gz"), z, zn / 2, 0);
        case_bad_idx("idx bad: gzip file cut in half", tp("cut.idx.gz"), "truncated");
        z[zn / 2] ^= 0xFF; z[zn / 2 + 1] ^= 0x55; z[zn / 2 + 2] ^= 0xAA;
        write_bytes(tp("corrupt.idx.gz"), z, zn, 0);
        case_bad_idx("idx bad: corrupt gzip data", tp("corrupt.idx.gz"), tp("corrupt.idx.gz"));
    }
    case_bad_idx("idx bad: missing file", tp("no-such-file.gz"), "cannot open");
}

// ---- optimizers against torch.optim ------------------------------------------------
static void case_optim(const char *name, train_optim_kind kind, double lr, double mom, int nesterov, double wd,
                       double b1, double b2, double eps, const double want[3]) {
    if (!tu_selected(name)) return;
    static const float g[3][3] = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.0f}, {0.2f, 0.1f, -0.3f}};
    float p[3] = {0.5f, -1.25f, 2.0f}, gs[3];
    train_optim_cfg c;
    train_optim_defaults(&c, kind);
    c.lr = lr; c.momentum = mom; c.nesterov = nesterov; c.weight_decay = wd;
    if (b1 > 0) { c.beta1 = b1; c.beta2 = b2; c.eps = eps; }
    train_optimizer o;
    size_t size = 3;
    train_optim_init(&o, &c, 1, &size);
    float *pp[1] = {p}, *gg[1] = {gs};
    for (int t = 0; t < 3; t++) {
        memcpy(gs, g[t], sizeof gs);
        train_optim_step(&o, pp, gg, lr);
    }
    train_optim_free(&o);
    double worst = 0;
    for (int i = 0; i < 3; i++) worst = fmax(worst, fabs(p[i] - want[i]) / fmax(fabs(want[i]), 1e-3));
    tu_report(name, worst < 2e-6, "got (%.9g, %.9g, %.9g), torch (%.9g, %.9g, %.9g), rel err %.3g",
              p[0], p[1], p[2], want[0], want[1], want[2], worst);
}

static void test_optim(void) {
    // /usr/bin/python3: p = torch.tensor([0.5, -1.25, 2.0]); grads g[0..2] as above; opt.step() each.
    case_optim("optim sgd lr=0.1", TRAIN_SGD, 0.1, 0, 0, 0, 0, 0, 0, (const double[]){0.474999994, -1.27999997, 2});
    case_optim("optim sgd lr=0.1 momentum=0.9 wd=0.01", TRAIN_SGD, 0.1, 0.9, 0, 0.01, 0, 0, 0,
               (const double[]){0.45963037, -1.27482951, 1.93760359});
    case_optim("optim sgd lr=0.05 nesterov momentum=0.9 wd=5e-4", TRAIN_SGD, 0.05, 0.9, 1, 5e-4, 0, 0, 0,
               (const double[]){0.470480472, -1.27905929, 1.97651649});
    case_optim("optim adam lr=0.01", TRAIN_ADAM, 0.01, 0, 0, 0, 0, 0, 0, (const double[]){0.480755508, -1.24781752, 1.98415804});
    case_optim("optim adam lr=0.01 betas=(0.8,0.99) eps=1e-6 wd=0.1", TRAIN_ADAM, 0.01, 0, 0, 0.1, 0.8, 0.99, 1e-6,
               (const double[]){0.475365818, -1.24010777, 1.97632885});
    case_optim("optim adamw lr=0.01 wd=0.05", TRAIN_ADAMW, 0.01, 0, 0, 0.05, 0, 0, 0,
               (const double[]){0.480017185, -1.24595153, 1.98117268});
}

// ---- models from templates --------------------------------------------------------------
// A small net for the training cases: conv 1->8, pool, conv 8->16, pool, linear 784->10.
static const char *small_template =
    "{\"format\":\"viscnn.graph\",\"version\":1,\"name\":\"small\",\"input\":{\"name\":\"input\",\"shape\":[1,28,28]},"
    "\"preprocess\":{\"channels\":1,\"mean\":[0.286],\"std\":[0.353]},\"output\":\"fc\",\"nodes\":["
    "{\"name\":\"c1\",\"op\":\"conv2d\",\"inputs\":[\"input\"],\"params\":{\"weight\":\"c1.weight\",\"bias\":\"c1.bias\"},"
    "\"attrs\":{\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"dilation\":[1,1],\"groups\":1}},"
    "{\"name\":\"r1\",\"op\":\"relu\",\"inputs\":[\"c1\"]},"
    "{\"name\":\"p1\",\"op\":\"maxpool2d\",\"inputs\":[\"r1\"],\"attrs\":{\"kernel\":[2,2],\"stride\":[2,2],\"padding\":[0,0],\"dilation\":[1,1],\"ceil_mode\":false}},"
    "{\"name\":\"c2\",\"op\":\"conv2d\",\"inputs\":[\"p1\"],\"params\":{\"weight\":\"c2.weight\",\"bias\":\"c2.bias\"},"
    "\"attrs\":{\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"dilation\":[1,1],\"groups\":1}},"
    "{\"name\":\"r2\",\"op\":\"relu\",\"inputs\":[\"c2\"]},"
    "{\"name\":\"p2\",\"op\":\"maxpool2d\",\"inputs\":[\"r2\"],\"attrs\":{\"kernel\":[2,2],\"stride\":[2,2],\"padding\":[0,0],\"dilation\":[1,1],\"ceil_mode\":false}},"
    "{\"name\":\"flat\",\"op\":\"flatten\",\"inputs\":[\"p2\"]},"
    "{\"name\":\"drop\",\"op\":\"dropout\",\"inputs\":[\"flat\"],\"attrs\":{\"p\":0.2}},"
    "{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"drop\"],\"params\":{\"weight\":\"fc.weight\",\"bias\":\"fc.bias\"}}],"
    "\"param_shapes\":{\"c1.weight\":[8,1,3,3],\"c1.bias\":[8],\"c2.weight\":[16,8,3,3],\"c2.bias\":[16],"
    "\"fc.weight\":[10,784],\"fc.bias\":[10]}}";

static void test_init(void) {
    write_bytes(tp("small.json"), small_template, strlen(small_template), 0);
    if (tu_selected("init fashion template: bounds 1/sqrt(fan_in), seeded")) {
        vc_model *a = NULL, *b = NULL, *c = NULL;
        vc_error err = {{0}};
        int rc = train_model_from_template(&a, "models/arch/fashion.json", 7, &err);
        if (!rc) rc = train_model_from_template(&b, "models/arch/fashion.json", 7, &err);
        if (!rc) rc = train_model_from_template(&c, "models/arch/fashion.json", 8, &err);
        int ok = !rc, same = 1, differ = 0;
        char why[256] = "";
        for (int i = 0; ok && i < a->n_params; i++) {
            const vc_param *p = &a->params[i];
            // fan_in of a weight: its size / first dim; a bias shares its weight's (the param before it).
            const vc_param *w = p->rank == 1 ? &a->params[i - 1] : p;
            double bound = 1.0 / sqrt((double)(w->size / (size_t)w->dim[0])), mx = 0, mean = 0;
            for (size_t k = 0; k < p->size; k++) { mx = fmax(mx, fabs(p->data[k])); mean += p->data[k]; }
            mean /= (double)p->size;
            if (mx > bound || (p->size > 1000 && (mx < 0.95 * bound || fabs(mean) > 0.05 * bound))) {
                ok = 0;
                snprintf(why, sizeof why, "%s: max |w| %g, mean %g, bound %g", p->name, mx, mean, bound);
            }
            same &= !memcmp(p->data, b->params[i].data, p->size * sizeof(float));
            differ |= !!memcmp(p->data, c->params[i].data, p->size * sizeof(float));
        }
        if (ok && (!same || !differ)) { ok = 0; snprintf(why, sizeof why, "same seed same: %d, other seed differs: %d", same, differ); }
        if (ok && (a->n_weights != 140138 || vc_model_find(a, "features.8") < 0 || a->n_labels != 10 ||
                   strstr(a->graph_json, "param_shapes")))
            { ok = 0; snprintf(why, sizeof why, "%zu weights, %d labels, or param_shapes left in the graph", a->n_weights, a->n_labels); }
        tu_report("init fashion template: bounds 1/sqrt(fan_in), seeded", ok, "%s%s", rc ? err.msg : "", why);
        vc_model_free(a); vc_model_free(b); vc_model_free(c);
    }
    if (tu_selected("init bad template: missing param_shapes entry")) {
        const char *bad = "{\"format\":\"viscnn.graph\",\"version\":1,\"input\":{\"name\":\"input\",\"shape\":[1,4,4]},\"nodes\":["
                          "{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"input\"],\"params\":{\"weight\":\"fc.weight\"}}],"
                          "\"param_shapes\":{}}";
        write_bytes(tp("bad.json"), bad, strlen(bad), 0);
        vc_model *m = NULL;
        vc_error err = {{0}};
        int rc = train_model_from_template(&m, tp("bad.json"), 0, &err);
        tu_report("init bad template: missing param_shapes entry",
                  rc == VC_EINPUT && strstr(err.msg, tp("bad.json")) && strstr(err.msg, "fc.weight"), "rc %d '%s'", rc, err.msg);
        vc_model_free(m);
    }
    if (tu_selected("init bad template: shapes that do not fit the graph")) {
        const char *bad = "{\"format\":\"viscnn.graph\",\"version\":1,\"input\":{\"name\":\"input\",\"shape\":[1,4,4]},\"nodes\":["
                          "{\"name\":\"f\",\"op\":\"flatten\",\"inputs\":[\"input\"]},"
                          "{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"f\"],\"params\":{\"weight\":\"fc.weight\"}}],"
                          "\"param_shapes\":{\"fc.weight\":[3,15]}}";
        write_bytes(tp("bad2.json"), bad, strlen(bad), 0);
        vc_model *m = NULL;
        vc_error err = {{0}};
        int rc = train_model_from_template(&m, tp("bad2.json"), 0, &err);
        tu_report("init bad template: shapes that do not fit the graph",
                  rc == VC_EINPUT && strstr(err.msg, tp("bad2.json")) == err.msg && !strstr(err.msg, "/tmp/"), "rc %d '%s'", rc, err.msg);
        vc_model_free(m);
    }
}

// ---- training -------------------------------------------------------------------------------
static double mean_loss(const vc_model *m, const train_data *d) {
    vc_run *r = vc_run_new(m, d->n);
    float *x = malloc((size_t)d->n * m->nodes[0].size * sizeof(float));
    int *idx = malloc(d->n * sizeof(int)), *lab = malloc(d->n * sizeof(int));
    for (int i = 0; i < d->n; i++) idx[i] = i;
    train_data_fill(x, lab, d, m, idx, d->n);
    vc_error err;
    double loss = vc_forward(r, x, -1, VC_FWD_NOGRAD, &err) ? NAN : vc_loss_cross_entropy(r, lab, NULL);
    vc_run_free(r); free(x); free(idx); free(lab);
    return loss;
}

static void test_training(void) {
    const char *name = "train small net 1 epoch on 2000 images (sgd nesterov, cosine, seed 3)";
    if (!tu_selected("train")) return;
    vc_model *m = NULL, *m2 = NULL;
    vc_error err = {{0}};
    train_set tr = {0}, te = {0};
    int rc = train_model_from_template(&m, tp("small.json"), 3, &err);
    if (!rc) rc = train_set_open_idx(&tr, m, FASHION "train-images-idx3-ubyte.gz", FASHION "train-labels-idx1-ubyte.gz", 2000, &err);
    if (!rc) rc = train_set_open_idx(&te, m, FASHION "t10k-images-idx3-ubyte.gz", FASHION "t10k-labels-idx1-ubyte.gz", 1000, &err);
    if (rc) {
        tu_report(name, 0, "%s (the training cases need Debian's dataset-fashion-mnist)", err.msg);
        return;
    }
    train_cfg cfg;
    train_cfg_defaults(&cfg);
    cfg.epochs = 1;
    cfg.batch = 32;
    cfg.seed = 3;
    cfg.sched = TRAIN_SCHED_COSINE;
    train_optim_cfg oc;
    train_optim_defaults(&oc, TRAIN_SGD);
    oc.lr = 0.05;
    oc.nesterov = 1;
    oc.weight_decay = 5e-4;
    double acc0 = 0, acc1 = 0, loss0 = mean_loss(m, &te.d), loss1;
    train_epoch h[1];
    rc = train_evaluate(m, &te.d, 250, NULL, &acc0, &err);
    if (!rc) rc = train_run(m, &tr.d, &te.d, &cfg, &oc, NULL, h, &err);
    if (!rc) rc = train_evaluate(m, &te.d, 100, NULL, &acc1, &err);
    loss1 = mean_loss(m, &te.d);
    tu_report(name, !rc && loss1 < 0.75 * loss0 && acc1 > 0.6 && acc1 > acc0 + 0.3 && fabs(h[0].test_acc - acc1) < 1e-12,
              "rc %d %s; test loss %.4f -> %.4f, test accuracy %.3f -> %.3f (history says %.3f)", rc, err.msg, loss0, loss1,
              acc0, acc1, rc ? -1 : h[0].test_acc);

    // The same seed again gives the same parameters bit for bit.
    if (!rc) rc = train_model_from_template(&m2, tp("small.json"), 3, &err);
    if (!rc) rc = train_run(m2, &tr.d, NULL, &cfg, &oc, NULL, NULL, &err);
    int same = !rc;
    for (int i = 0; same && i < m->n_params; i++) same = !memcmp(m->params[i].data, m2->params[i].data, m->params[i].size * sizeof(float));
    tu_report("train deterministic: same seed, same weights", same, "rc %d %s", rc, err.msg);

    // Saved and loaded back: same graph, same tensors, the extra metadata.
    if (tu_selected("train save + load")) {
        int src = train_model_save(m, tp("small.safetensors"), "viscnn.train", "{\"note\":1}", &err);
        vc_model *b = NULL;
        if (!src) src = vc_model_load(&b, tp("small.safetensors"), &err);
        int ok = !src && b->n_params == m->n_params && !strcmp(b->graph_json, m->graph_json);
        for (int i = 0; ok && i < m->n_params; i++) ok = !memcmp(b->params[i].data, m->params[i].data, m->params[i].size * sizeof(float));
        st_file f;
        if (ok && !st_read(&f, tp("small.safetensors"), &err)) {
            ok = st_meta(&f, "viscnn.train") && !strcmp(st_meta(&f, "viscnn.train"), "{\"note\":1}");
            st_free(&f);
        }
        tu_report("train save + load", ok, "rc %d %s", src, err.msg);
        vc_model_free(b);
    }
    if (tu_selected("train bad: label outside the classes")) {
        int bad_labels[2] = {3, 10};
        train_data bd = {2, tr.d.u8, NULL, bad_labels};
        vc_error e2 = {{0}};
        int brc = train_run(m, &bd, NULL, &cfg, &oc, NULL, NULL, &e2);
        tu_report("train bad: label outside the classes", brc == VC_EINPUT && strstr(e2.msg, "label 10"), "rc %d '%s'", brc, e2.msg);
    }
    vc_model_free(m);
    vc_model_free(m2);
    train_set_free(&tr);
    train_set_free(&te);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    (void)tu_rand; (void)tu_zeros; (void)tu_rel_err;
    mkdir("build", 0777);
    mkdir("build/testdata", 0777);
    mkdir(DIR, 0777);
    test_idx();
    test_optim();
    test_init();
    test_training();
    return tu_finish();
}
