// fuzz_cli.c: the command line itself. viscnn/cli/main.c is compiled with
// -Dmain=viscnn_cli_main (Makefile) and called in-process with an argv the
// input bytes choose: a command, then tokens that are the command's own
// options from the help table (as "--name value" or "--name=value"), values
// from a pool of hostile and ordinary ones (paths to real and broken inputs,
// numbers at the edges of every range, targets, modes, layer names, output
// names of every extension), or raw bytes. The CLI must answer every argv
// with a status and a message, never a crash, a sanitiser report or a leak.
//
// Inputs that begin "ARGV:" are read as a command line instead, one
// argument per line (the seed corpus, tests/fuzz/corpus/cli/, is written so).
//
// Runs in a private folder (made once per process under /dev/shm or /tmp;
// the harness chdirs there, so give libFuzzer absolute corpus and artifact
// paths, as tests/fuzz/run.sh does)
// holding small inputs written at start-up; outputs land there and are
// removed after each input. `serve` (it blocks) and `train` (minutes) are not
// driven; options that scale the work (--steps, --size, --epochs, ...) only
// take small or invalid values, so one input runs in well under a second.
#define _GNU_SOURCE
#include "fuzz_util.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include "viscnn_internal.h"
#include "../../viscnn/cli/help_table.h"
#include "../../loaders/image.h"
#include "../../loaders/npy.h"

int viscnn_cli_main(int argc, char **argv);

static const char *commands[] = {"info", "predict", "forward", "importance", "edges", "circuit",
                                 "rf", "project", "featvis", "convert", "eval", "help", "nosuch"};
#define N_CMD (int)(sizeof commands / sizeof commands[0])

// Values any option may get. MODEL and the in/ files are made by setup().
static const char *values[] = {
    "MODEL", "in/a.png", "in/b.png", "in/imgs", "in/imgs/sneaker", "in/x.npy", "in/lab.npy", "in/bad.npy",
    "in/c.json", "in/m.pth", "in/legacy.pth", "in", "in/nosuch.png", "/dev/null", "/", "",
    "o.json", "o.csv", "o.npy", "o.png", "o.safetensors", "odir", "o.txt", "/nonexistent/x.json", "in/a.png/x.json",
    "0", "1", "2", "3", "-1", "7", "27", "28", "2147483647", "2147483648", "-2147483648",
    "99999999999999999999", "1e300", "-1e300", "nan", "inf", "0.5", "1.5", "0x10", " 3", "3 ", "abc",
    "loss", "class:3", "class:sneaker", "class:ankle boot", "class:99", "class:-1", "class:",
    "node:features.3:2", "node:features.3:9999", "node:nosuch:0", "node:features.3", "logit:1",
    "features.0", "features.3", "features.8", "classifier.1", "input", "nosuch",
    "features.3:1", "features.3:1:0", "features.3:-1", "features.3:99:99", "features.0:0:0",
    "actxgrad", "act", "grad", "taylor", "weight", "snip", "keep:0.1", "keep:0.2,0.5", "keep:1", "keep:0",
    "keep:nan", "threshold", "hierarchical", "sneaker - bag", "sneaker - 0.5*(bag + coat)", "a -", "((",
    "mds", "mds-smooth", "grid", "weights", "pca", "fashion", "alexnet", "mobilenet_v2", "cpu", "cuda", "0.1,0.5,1", "-h", "--help",
};
#define N_VAL (int)(sizeof values / sizeof values[0])

// Options whose value scales the work: small and invalid values only.
static const char *work_opts[] = {"steps", "size", "epochs", "batch", "iterative", "checkpoint-every", "limit",
                                  "test-limit", "threads", "top", "curve", "shards", "eval-batch", NULL};
static const char *small_values[] = {"0", "1", "2", "3", "-1", "", "abc", "1.5", "1e300", "nan",
                                     "2147483648", "99999999999999999999", "0.5,1", "4"};
#define N_SMALL (int)(sizeof small_values / sizeof small_values[0])

static char g_model[4096];

static int is_work_opt(const char *name) {
    for (int i = 0; work_opts[i]; i++)
        if (!strcmp(work_opts[i], name)) return 1;
    return 0;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) abort();
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(to, buf, n);
}

static void save_png(const char *path, int c, int h, int w) {
    vc_image img = {c, h, w, malloc(sizeof(float) * c * h * w)};
    for (int i = 0; i < c * h * w; i++) img.data[i] = (float)((i * 37) % 101) / 100.0f;
    vc_error err;
    if (image_save_png(path, &img, &err)) abort();
    free(img.data);
}

static char g_root[4096];

// The inputs, in ./in/. MODEL is a copy of the default model in there: an
// argv may name MODEL as an output too, and the repository's file must never
// be what such an input replaces.
static const char *const inputs[] = {"in/model.safetensors", "in/a.png", "in/b.png", "in/imgs/sneaker/1.png",
                                     "in/imgs/bag/2.png", "in/x.npy", "in/lab.npy", "in/bad.npy", "in/m.pth",
                                     "in/legacy.pth", "in/c.json", NULL};
static struct stat input_stat[16];

static void make_inputs(void) {
    mkdir("in", 0755);
    mkdir("in/imgs", 0755);
    mkdir("in/imgs/sneaker", 0755);
    mkdir("in/imgs/bag", 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/models/fashion.safetensors", g_root);
    copy_file(path, "in/model.safetensors");
    save_png("in/a.png", 1, 28, 28);
    save_png("in/b.png", 3, 30, 41);
    save_png("in/imgs/sneaker/1.png", 1, 28, 28);
    save_png("in/imgs/bag/2.png", 3, 28, 28);
    float x[2 * 28 * 28];
    for (int i = 0; i < 2 * 28 * 28; i++) x[i] = (float)((i * 13) % 29) / 7.0f - 2.0f;
    long long dim[4] = {2, 1, 28, 28};
    vc_error err;
    if (npy_write("in/x.npy", x, 4, dim, &err)) abort();
    // labels (2,) int64, written by hand: npy_write writes float32 only
    char hdr[128] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
    size_t hl = strlen(hdr + 10) + 10;
    memset(hdr + hl, ' ', 127 - hl);
    hdr[127] = '\n';
    long long lab[2] = {7, 8};
    unsigned char buf[128 + sizeof lab];
    memcpy(buf, hdr, 128);
    memcpy(buf + 128, lab, sizeof lab);
    write_file("in/lab.npy", buf, sizeof buf);
    write_file("in/bad.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", 26);
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/pth/zip.pth", g_root);
    copy_file(path, "in/m.pth");
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/pth/legacy.pth", g_root);
    copy_file(path, "in/legacy.pth");
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/circuit/keep5.json", g_root);
    copy_file(path, "in/c.json");
    for (int i = 0; inputs[i]; i++)
        if (stat(inputs[i], &input_stat[i])) abort();
}

// Whether the last argv replaced, changed or removed an input, or added a
// file under in/ (the CLI refuses an output that is an input it reads, but an
// argv may still write over an input it does not read); in/ is then made
// again, so that every argv runs on the same files.
static int n_entries;
static int count_entry(const char *p, const struct stat *st, int type, struct FTW *ftw) {
    (void)p; (void)st; (void)type; (void)ftw;
    n_entries++;
    return 0;
}

static int inputs_changed(void) {
    n_entries = 0;   // in/, its 3 folders and the inputs; a file added (featvis --all -o in/imgs) changes the image sets
    if (nftw("in", count_entry, 8, FTW_PHYS) || n_entries != 4 + (int)(sizeof inputs / sizeof *inputs) - 1) return 1;
    for (int i = 0; inputs[i]; i++) {
        struct stat st;
        if (stat(inputs[i], &st) || st.st_ino != input_stat[i].st_ino || st.st_size != input_stat[i].st_size ||
            st.st_mtim.tv_sec != input_stat[i].st_mtim.tv_sec || st.st_mtim.tv_nsec != input_stat[i].st_mtim.tv_nsec)
            return 1;
    }
    return 0;
}

static int rm_below(const char *p, const struct stat *st, int type, struct FTW *ftw) {
    (void)st; (void)type;
    if (ftw->level > 0) remove(p);
    return 0;
}

// Removes everything in path (a folder, or a file), and path itself unless keep.
static void rm_tree(const char *path, int keep) {
    nftw(path, rm_below, 8, FTW_DEPTH | FTW_PHYS);
    if (!keep) remove(path);
}

static char g_dir[256];
// The working folder goes when the harness exits (libFuzzer ends a timed run with exit()).
static void remove_dir(void) {
    if (g_dir[0] && chdir("/") == 0) rm_tree(g_dir, 0);
}

// The working folder DIR (the cwd from here on) and its inputs.
static void setup(void) {
    if (!getcwd(g_root, sizeof g_root)) abort();
    char path[4200];
    snprintf(path, sizeof path, "%s/models/fashion.safetensors", g_root);
    if (access(path, R_OK)) {
        fprintf(stderr, "fuzz_cli: run from the repository root (%s is missing)\n", path);
        abort();
    }
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/viscnn-fuzz-cli-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(tmpl) || chdir(tmpl)) abort();
    snprintf(g_dir, sizeof g_dir, "%s", tmpl);
    atexit(remove_dir);
    snprintf(g_model, sizeof g_model, "%s/in/model.safetensors", tmpl);
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", tmpl);   // featvis's cache: emptied with the outputs
    setenv("VISCNN_CACHE", cache, 1);
    make_inputs();
    // the CLI's own messages are the point of this harness, but 10 minutes of
    // them would swamp libFuzzer's log: stdout goes away, stderr stays
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0 || dup2(fd, 1) < 0) abort();
    close(fd);
}

// Removes everything in the working folder but in/, and remakes in/ if an
// argv changed it.
static void clean(void) {
    DIR *d = opendir(".");
    if (!d) abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "in")) continue;
        rm_tree(e->d_name, 0);
    }
    closedir(d);
    if (inputs_changed()) {
        rm_tree("in", 1);
        make_inputs();
    }
}

// A work option's value above 4 becomes 4 (in "--steps 9" and "--steps=9"),
// --size's above 32.
static void cap_work(int argc, char **argv, char store[][160], int *ns, int max) {
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] != '-') continue;
        const char *eq = strchr(a, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) continue;
        memcpy(name, a + 2, len);
        name[len] = 0;
        if (!is_work_opt(name)) continue;
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        int cap = strcmp(name, "size") ? 4 : 32;
        if (!v || !(strtod(v, NULL) > cap)) continue;
        if (eq) {
            if (*ns >= max) continue;
            char *s = store[(*ns)++];
            snprintf(s, 160, "--%s=%d", name, cap);
            argv[i] = s;
        } else {
            argv[i + 1] = cap == 4 ? "4" : "32";
        }
    }
}

static void run(int argc, char **argv) {
    image_set_max_pixels(IMAGE_DEFAULT_MAX_PIXELS);
    vc_error err;
    vc_set_device(VC_DEVICE_CPU, &err);
    int rc = viscnn_cli_main(argc, argv);
    if (rc != 0 && rc != 1 && rc != 2) {
        fprintf(stderr, "fuzz_cli: exit status %d\n", rc);
        abort();
    }
    clean();
}

// "ARGV:" inputs (the seeds in tests/fuzz/corpus/cli/): the command line as
// text, one argument per line, MODEL standing for the default model; work
// options capped as above, featvis given its small defaults.
static int text_argv(const unsigned char *p, size_t n, char **argv, char store[][160], int max) {
    int argc = 0, ns = 0, has_steps = 0;
    argv[argc++] = "viscnn";
    while (n && argc < max && ns < max) {
        char *s = store[ns++];
        size_t k = 0;
        while (n && *p != '\n') {
            if (k < 159 && *p) s[k++] = (char)*p;
            p++, n--;
        }
        if (n) p++, n--;
        s[k] = 0;
        argv[argc++] = strcmp(s, "MODEL") ? s : g_model;
        has_steps |= !strncmp(s, "--steps", 7);
    }
    if (argc >= 2 && !strcmp(argv[1], "featvis") && !has_steps) { argv[argc++] = "--steps"; argv[argc++] = "2"; }
    if (argc >= 2 && (!strcmp(argv[1], "serve") || !strcmp(argv[1], "train"))) return 0;
    cap_work(argc, argv, store, &ns, max);
    argv[argc] = NULL;
    return argc;
}

typedef struct { const unsigned char *p; size_t n; } reader;

static int next(reader *r) {
    if (!r->n) return -1;
    r->n--;
    return *r->p++;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int ready;
    if (!ready) { setup(); ready = 1; }
    enum { MAX_ARGS = 24 };
    char *argv[MAX_ARGS + 8];
    char store[MAX_ARGS][160];
    int argc = 0;
    if (size >= 5 && !memcmp(data, "ARGV:", 5)) {
        argc = text_argv(data + 5, size - 5, argv, store, MAX_ARGS);
        if (argc >= 2) run(argc, argv);
        return 0;
    }
    reader r = {data, size};
    int b = next(&r);
    if (b < 0) return 0;
    const char *cmd = commands[b % N_CMD];
    const cli_help_entry *h = cli_help_find(cmd);
    int n_opts = 0;
    while (h && h->opt[n_opts].name) n_opts++;

    int ns = 0, has_steps = 0;
    argv[argc++] = "viscnn";
    argv[argc++] = (char *)cmd;
    if (!(b & 0x80) && strcmp(cmd, "convert") && strcmp(cmd, "help")) argv[argc++] = g_model;
    int t;
    while (argc < MAX_ARGS && ns < MAX_ARGS && (t = next(&r)) >= 0) {
        int kind = t & 3, pick = t >> 2;
        char *s = store[ns++];
        if (kind == 0 && n_opts) {         // one of the command's options, with a value if it takes one
            const cli_option *o = &h->opt[pick % n_opts];
            has_steps |= !strcmp(o->name, "steps");
            const char *v = NULL;
            if (o->arg) {
                int vb = next(&r);
                if (vb < 0) vb = 0;
                v = is_work_opt(o->name) ? small_values[vb % N_SMALL] : values[vb % N_VAL];
                if (!strcmp(v, "MODEL")) v = g_model;
            }
            if (v && (pick & 1)) {
                snprintf(s, 160, "%s%s=%s", cli_dash(o->name), o->name, v);
                argv[argc++] = s;
            } else {
                snprintf(s, 160, "%s%s", cli_dash(o->name), o->name);
                argv[argc++] = s;
                if (v) argv[argc++] = (char *)v;
            }
        } else if (kind == 1) {            // a value on its own (a positional argument)
            const char *v = values[pick % N_VAL];
            argv[argc++] = (char *)(strcmp(v, "MODEL") ? v : g_model);
        } else if (kind == 2) {            // raw bytes, up to 63 of them
            int len = pick & 63, k = 0;
            int c;
            while (k < len && (c = next(&r)) > 0) s[k++] = (char)c;
            s[k] = 0;
            argv[argc++] = s;
        } else {                           // options every command meets
            static const char *misc[] = {"--max-pixels", "--device", "--json", "-o", "--", "-", "--x",
                                         "--layer", "--target", "-h"};
            argv[argc++] = (char *)misc[pick % 10];
        }
    }
    // featvis runs 512 steps by default: seconds under ASan
    if (!strcmp(cmd, "featvis") && !has_steps) { argv[argc++] = "--steps"; argv[argc++] = "2"; }
    cap_work(argc, argv, store, &ns, MAX_ARGS);
    argv[argc] = NULL;
    run(argc, argv);
    return 0;
}
