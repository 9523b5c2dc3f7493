// files.c (api): viscnn.h's process settings, .npy and PNG files, JSON
// helpers, receptive fields, .pth conversion and the GUI server (since 0.2).
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../arch.h"
#include "../export.h"
#include "../rf.h"
#include "../server/server.h"
#include "../../engine/util.h"
#include "../../loaders/image.h"
#include "../../loaders/npy.h"

void vc_json_string(FILE *f, const char *s) { export_string(f, s ? s : ""); }
void vc_json_number(FILE *f, double v) { export_float(f, v); }

void vc_set_max_pixels(long long n) { image_set_max_pixels(n); }

int vc_device_select(const char *name, vc_error *err) {
    API_NEED(name, err);
    vc_device d;
    int rc = vc_device_parse(name, &d, err);
    return rc ? rc : vc_set_device(d, err);
}

int vc_npy_read(const char *path, float **data, int *rank, long long *dim, vc_error *err) {
    API_NEED(path, err);
    API_NEED(data, err);
    vc_npy a;
    int rc = npy_read(&a, path, 'f', err);
    if (rc) return rc;
    *data = a.f;
    a.f = NULL;
    if (rank) *rank = a.rank;
    for (int k = 0; dim && k < a.rank; k++) dim[k] = a.dim[k];
    npy_free(&a);
    return VC_OK;
}

int vc_npy_write(const char *path, const float *data, int rank, const long long *dim, vc_error *err) {
    API_NEED(path, err);
    API_NEED(data, err);
    API_NEED(dim, err);
    return npy_write(path, data, rank, dim, err);
}

int vc_png_write(const char *path, const float *x, int c, int h, int w, vc_error *err) {
    API_NEED(path, err);
    API_NEED(x, err);
    vc_image im = {c, h, w, (float *)x};
    return image_save_png(path, &im, err);
}

int vc_model_rf(const vc_model *m, int node, int y, int x, int *box, int *clipped, int *affine, int *jump, vc_error *err) {
    API_NEED(m, err);
    vc_box b, cl;
    vc_rf_geom g;
    int rc = rf_unit(m, node, y, x, &b, &cl, err);
    if (!rc) rc = rf_geom(m, node, &g, err);
    if (rc) return rc;
    if (box) { box[0] = b.y0; box[1] = b.x0; box[2] = b.y1; box[3] = b.x1; }
    if (clipped) { clipped[0] = cl.y0; clipped[1] = cl.x0; clipped[2] = cl.y1; clipped[3] = cl.x1; }
    if (affine) *affine = g.affine;
    if (jump) { jump[0] = g.affine ? g.jump[0] : 0; jump[1] = g.affine ? g.jump[1] : 0; }
    return VC_OK;
}

void vc_arch_names(char *buf, size_t cap) {
    if (buf && cap) vc_arch_list(buf, cap);
}

int vc_pth_convert(const char *pth, const char *arch, const char *out, vc_pth_report *report, vc_error *err) {
    API_NEED(pth, err);
    API_NEED(arch, err);
    API_NEED(out, err);
    vc_convert_info info;
    int rc = vc_convert_pth(pth, arch, out, &info, err);
    if (rc || !report) return rc;
    memset(report, 0, sizeof *report);
    report->n_written = info.n_written;
    report->n_values = info.n_values;
    report->legacy = info.legacy;
    report->stripped_module = info.stripped_module;
    report->n_ignored = info.n_ignored;
    snprintf(report->ignored_example, sizeof report->ignored_example, "%s", info.ignored_example);
    snprintf(report->nested, sizeof report->nested, "%s", info.nested ? info.nested : "");
    return VC_OK;
}

int vc_serve(const char *model, const char *images, const char *host, int port, const char *cache_dir, const char *web_dir,
             const char *target, int threads, int no_precompute, vc_error *err) {
    API_NEED(model, err);
    API_NEED(images, err);
    API_NEED(cache_dir, err);
    server_opts o = {0};
    o.model_path = model;
    o.images = images;
    o.host = host;
    o.port = port;
    o.cache_dir = cache_dir;
    o.web_dir = web_dir;
    o.target = target;
    o.threads = threads;
    o.no_precompute = no_precompute;
    return server_run(&o, err);
}
