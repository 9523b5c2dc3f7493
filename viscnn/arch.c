// arch.c: built-in architecture templates and the .pth -> .safetensors
// conversion of arch.h. The template's graph goes into the model file as
// it is (less "param_shapes"); the tensors come from the state dict by name.
#include "arch.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "../engine/util.h"
#include "../loaders/pth.h"
#include "../loaders/safetensors.h"
#include "../loaders/fileio.h"
#include "../loaders/atomic_write.h"

const vc_arch_template *vc_arch_find(const char *name) {
    for (int i = 0; i < vc_n_arch_templates; i++)
        if (!strcmp(vc_arch_templates[i].name, name)) return &vc_arch_templates[i];
    return NULL;
}

void vc_arch_list(char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < vc_n_arch_templates && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", vc_arch_templates[i].name);
    if (!vc_n_arch_templates) snprintf(buf, n, "none");
}

// The template text for arch: built in, or a .json file.
static char *template_text(const char *arch, vc_error *err) {
    const vc_arch_template *t = vc_arch_find(arch);
    if (t) return strdup_check(t->json);
    size_t n = strlen(arch);
    char names[512];
    vc_arch_list(names, sizeof names);
    if (n < 5 || strcmp(arch + n - 5, ".json")) {
        vc_fail(err, VC_EINPUT, "--arch %s: no such built-in architecture (built in: %s; or give a template .json)", arch, names);
        return NULL;
    }
    return vc_read_file(arch, (size_t)64 << 20, NULL, err);
}


static void shape_str(char *s, size_t n, int rank, const int64_t *dim) {
    size_t k = (size_t)snprintf(s, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += (size_t)snprintf(s + k, n - k, "%s%lld", i ? ", " : "", (long long)dim[i]);
    if (k < n) snprintf(s + k, n - k, "]");
}

// Fills names with the distinct tensor names the graph's nodes use, in order.
static int graph_params(cJSON *g, const char *arch, const char ***names, int *n, vc_error *err) {
    cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    if (!cJSON_IsArray(nodes)) return vc_fail(err, VC_EINPUT, "--arch %s: the template has no nodes", arch);
    int cap = 16;
    *names = malloc_check(cap * sizeof(char *));
    *n = 0;
    for (cJSON *nd = nodes->child; nd; nd = nd->next) {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(nd, "params");
        for (cJSON *e = p ? p->child : NULL; e; e = e->next) {
            if (!cJSON_IsString(e)) return vc_fail(err, VC_EINPUT, "--arch %s: a node's params are not tensor names", arch);
            int seen = 0;
            for (int i = 0; i < *n && !seen; i++) seen = !strcmp((*names)[i], e->valuestring);
            if (seen) continue;
            if (*n == cap) { cap *= 2; *names = realloc(*names, cap * sizeof(char *)); VC_ASSERT(*names); }
            (*names)[(*n)++] = e->valuestring;
        }
    }
    return VC_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int vc_convert_pth(const char *pth, const char *arch, const char *out, vc_convert_info *info, vc_error *err) {
    memset(info, 0, sizeof *info);
    char *text = template_text(arch, err);
    if (!text) return VC_EINPUT;
    cJSON *g = cJSON_Parse(text);
    free(text);
    if (!g || !cJSON_IsObject(g)) { cJSON_Delete(g); return vc_fail(err, VC_EINPUT, "--arch %s: the template is not a JSON object", arch); }
    cJSON *shapes = cJSON_DetachItemFromObjectCaseSensitive(g, "param_shapes");
    // "param_views": {key: shape} for a tensor the graph uses in another shape
    // than the state dict holds (ConvNeXt's Linear on channels-last maps, a
    // (O,I) weight used as the (O,I,1,1) of a 1x1 conv): same values, same order
    cJSON *views = cJSON_DetachItemFromObjectCaseSensitive(g, "param_views");
    const char **names = NULL;
    int n = 0;
    pth_file f;
    int rc = graph_params(g, arch, &names, &n, err);
    int have_file = 0;
    if (!rc) { rc = pth_read(&f, pth, err); have_file = !rc; }
    st_out *t = calloc_check(n ? n : 1, sizeof(st_out));
    int (*dims)[4] = calloc_check(n ? n : 1, sizeof *dims);
    float **owned = calloc_check(n ? n : 1, sizeof(float *));
    for (int i = 0; i < n && !rc; i++) {
        char s1[160], s2[160];
        const pth_tensor *pt = pth_find(&f, names[i]);
        if (!pt) {
            rc = vc_fail(err, VC_EINPUT, "%s: the state dict has no '%s', which --arch %s needs (it has %d tensor%s, the first "
                         "is '%s')", pth, names[i], arch, f.n, f.n == 1 ? "" : "s", pth_shown(s1, f.t[0].name));
            break;
        }
        cJSON *want = shapes ? cJSON_GetObjectItemCaseSensitive(shapes, names[i]) : NULL;
        if (cJSON_IsArray(want)) {
            int64_t w[PK_MAX_RANK];
            int wr = 0, same = 1;
            for (cJSON *d = want->child; d && wr < PK_MAX_RANK; d = d->next) w[wr++] = cJSON_IsNumber(d) ? (int64_t)d->valuedouble : -1;
            same = wr == pt->rank;
            for (int k = 0; k < wr && same; k++) same = w[k] == pt->dim[k];
            if (!same) {
                shape_str(s1, sizeof s1, pt->rank, pt->dim);
                shape_str(s2, sizeof s2, wr, w);
                rc = vc_fail(err, VC_EINPUT, "%s: '%s' has shape %s, --arch %s expects %s", pth, names[i], s1, arch, s2);
                break;
            }
        }
        if (pt->rank > 4) {
            shape_str(s1, sizeof s1, pt->rank, pt->dim);
            rc = vc_fail(err, VC_EINPUT, "%s: '%s' has shape %s, more than 4 dimensions", pth, names[i], s1);
            break;
        }
        for (int k = 0; k < pt->rank; k++) {
            if (pt->dim[k] > INT_MAX) { rc = vc_fail(err, VC_EINPUT, "%s: '%s' is too large", pth, names[i]); break; }
            dims[i][k] = (int)pt->dim[k];
        }
        int rank = pt->rank;
        cJSON *view = views ? cJSON_GetObjectItemCaseSensitive(views, names[i]) : NULL;
        if (!rc && view) {
            int64_t numel = 1;
            int vr = cJSON_IsArray(view) ? cJSON_GetArraySize(view) : -1;
            if (vr < 1 || vr > 4) rc = vc_fail(err, VC_EINPUT, "--arch %s: param_views of '%s' is not a shape", arch, names[i]);
            rank = vr;
            int k = 0;
            for (cJSON *d = view && vr > 0 ? view->child : NULL; d && !rc; d = d->next, k++) {
                if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > INT_MAX)
                    rc = vc_fail(err, VC_EINPUT, "--arch %s: param_views of '%s' is not a shape", arch, names[i]);
                else { dims[i][k] = (int)d->valuedouble; numel *= dims[i][k]; }
            }
            if (!rc && (size_t)numel != (size_t)pt->numel)
                rc = vc_fail(err, VC_EINPUT, "%s: '%s' has %lld values, --arch %s views it as %lld", pth, names[i],
                             (long long)pt->numel, arch, (long long)numel);
        }
        if (!rc) rc = pth_float32(&f, pt, &t[i].data, &owned[i], err);
        t[i].name = names[i];
        t[i].rank = rank;
        t[i].dim = dims[i];
        info->n_values += pt->numel;
    }
    if (!rc) {
        info->legacy = f.legacy;
        info->nested = f.nested;
        info->stripped_module = f.stripped_module;
        info->n_written = n;
        for (int j = 0; j < f.n; j++) {
            int used = 0;
            for (int i = 0; i < n && !used; i++) used = !strcmp(f.t[j].name, names[i]);
            if (used || ends_with(f.t[j].name, "num_batches_tracked")) continue;
            if (!info->n_ignored++) pth_shown(info->ignored_example, f.t[j].name);
        }
    }
    // Write a temporary beside out (loaders/atomic_write.c), load it back with
    // every check the engine makes, then rename it over out.
    vc_wfile wf;
    if (!rc && !(rc = vc_wopen(&wf, out, err))) {
        char *gs = cJSON_PrintUnformatted(g);
        const char *key = "viscnn.graph", *val = gs;
        int ok = st_write_fp(wf.fp, n, t, 1, &key, &val) && fflush(wf.fp) == 0;
        free(gs);
        vc_model *m = NULL;
        vc_error inner = {{0}};
        if (!ok) {
            vc_wabort(&wf);
            rc = vc_fail(err, VC_EINPUT, "%s: write failed: %s", out, strerror(errno));
        } else if (vc_model_load(&m, wf.tmp, &inner)) {
            const char *why = inner.msg, *part = wf.tmp;
            if (!strncmp(why, part, strlen(part)) && !strncmp(why + strlen(part), ": ", 2)) why += strlen(part) + 2;
            rc = vc_fail(err, VC_EINPUT, "%s does not fit --arch %s: %s", pth, arch, why);
            vc_wabort(&wf);
        } else
            rc = vc_wcommit(&wf, 1, err);
        vc_model_free(m);
    }
    for (int i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(dims);
    free(t);
    free(names);
    if (have_file) pth_free(&f);
    cJSON_Delete(shapes);
    cJSON_Delete(views);
    cJSON_Delete(g);
    return rc;
}
