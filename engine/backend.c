// backend.c: choosing a run's device, and the public entry points that
// forward to the run's backend (engine/backend.h).
#include "backend.h"

static vc_device default_device = VC_DEVICE_CPU;

static const vc_backend *backend_of(vc_device d) {
    if (d == VC_DEVICE_CPU) return &vc_backend_cpu;
    if (d == VC_DEVICE_CUDA) return &vc_backend_cuda;   // NULL unless the CUDA objects are linked in
    return NULL;
}

int vc_device_parse(const char *s, vc_device *d, vc_error *err) {
    if (!strcmp(s, "cpu")) { *d = VC_DEVICE_CPU; return VC_OK; }
    if (!strcmp(s, "cuda")) { *d = VC_DEVICE_CUDA; return VC_OK; }
    return vc_fail(err, VC_EINPUT, "--device %s: unknown device (cpu, cuda)", s);
}

int vc_device_available(vc_device d, vc_error *err) {
    const vc_backend *be = backend_of(d);
    if (!be)
        return vc_fail(err, VC_EINPUT, "--device cuda: this viscnn was built without CUDA "
                       "(build it with `make CUDA=1`; the binary is build/cuda/bin/viscnn)");
    return be->available(err);
}

int vc_set_device(vc_device d, vc_error *err) {
    int rc = vc_device_available(d, err);
    if (!rc) default_device = d;
    return rc;
}
vc_device vc_get_device(void) { return default_device; }
int vc_run_has_grad(const vc_run *r, int node) { return node >= 0 && node < r->m->n_nodes && r->grad[node] != NULL; }
vc_device vc_run_device(const vc_run *r) { return r->be == &vc_backend_cpu ? VC_DEVICE_CPU : VC_DEVICE_CUDA; }

// Called by vc_model_free: a backend may hold a copy of the model's parameters.
void vc_backends_forget_model(const vc_model *m) {
    const vc_backend *cuda = backend_of(VC_DEVICE_CUDA);
    if (cuda && cuda->forget_model) cuda->forget_model(m);
}

static int conv_node(const vc_run *r, int conv, const char *what, vc_error *err) {
    if (conv < 0 || conv >= r->m->n_nodes || r->m->nodes[conv].op != VC_OP_CONV2D)
        return vc_fail(err, VC_EINPUT, "%s: node %d is not a conv2d layer", what, conv);
    if (!r->act[r->m->nodes[conv].in[0]])
        return vc_fail(err, VC_EINPUT, "%s: the input of %s was not computed (or was freed)", what, vc_str(r->m->nodes[conv].name));
    return VC_OK;
}

int vc_run_edge_maps(vc_run *r, int conv, int n, int ci, float *e, vc_error *err) {
    if (conv_node(r, conv, "edge maps", err)) return VC_EINPUT;
    if (n < 0 || n >= r->N || ci < 0 || ci >= r->m->nodes[r->m->nodes[conv].in[0]].c)
        return vc_fail(err, VC_EINPUT, "edge maps: image %d / in-channel %d out of range", n, ci);
    r->be->edge_maps(r, conv, n, ci, e);
    return VC_OK;
}

int vc_run_edge_scores(vc_run *r, int conv, vc_edge_score kind, float scale, float *acc, vc_error *err) {
    if (conv_node(r, conv, "edge scores", err)) return VC_EINPUT;
    if (kind != VC_EDGE_ABS_E && !r->grad[conv])
        return vc_fail(err, VC_EINPUT, "edge scores: %s has no gradient (not upstream of the last backward)", vc_str(r->m->nodes[conv].name));
    r->be->edge_scores(r, conv, kind, scale, acc);
    return VC_OK;
}

int vc_run_node_sums(vc_run *r, int node, vc_node_sum kind, double *out, vc_error *err) {
    if (node < 1 || node >= r->m->n_nodes || !r->act[node])
        return vc_fail(err, VC_EINPUT, "node sums: node %d was not computed (or was freed)", node);
    r->be->node_sums(r, node, kind, out);
    return VC_OK;
}
