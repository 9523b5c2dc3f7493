// featvis.c (api): viscnn.h's feature visualisation (since 0.2), over
// viscnn/featvis*.c.
#include "api.h"

int featvis_layer(const vc_model *m, const char *layer, const vc_featvis_opts *o, int K, const char *cache, const char *outdir,
                  const char *trace, vc_error *err);

void vc_featvis_settings_default(vc_featvis_settings *s) {
    if (!s) return;
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    *s = (vc_featvis_settings){o.steps, o.size, o.lr, o.seed, o.neuron, o.negative};
}

static int settings(vc_featvis_opts *o, const vc_featvis_settings *s, vc_error *err) {
    vc_featvis_defaults(o);
    if (!s) return VC_OK;
    if (s->steps < 1 || s->size < 0 || !(s->lr > 0) || s->neuron < -1 || s->neuron > 1)
        return vc_fail(err, VC_EINPUT, "featvis: settings out of range (steps %d, size %d, lr %g, neuron %d)", s->steps, s->size,
                       s->lr, s->neuron);
    o->steps = s->steps;
    o->size = s->size;
    o->lr = (float)s->lr;
    o->seed = (uint64_t)s->seed;
    o->neuron = s->neuron;
    o->negative = s->negative != 0;
    return VC_OK;
}

int vc_featvis_picture(const vc_model *m, const char *spec, int edge, const vc_featvis_settings *s, const char *cache_dir,
                       const char *png, const char *trace, int *from_cache, vc_error *err) {
    API_NEED(m, err);
    API_NEED(spec, err);
    API_NEED(png, err);
    vc_featvis_opts o;
    vc_featvis_target t;
    int cached = 0;
    int rc = settings(&o, s, err);
    if (!rc) rc = vc_featvis_parse(&t, m, spec, edge, err);
    if (!rc) rc = vc_featvis_png(m, &t, &o, cache_dir, png, trace, &cached, err);
    if (!rc && from_cache) *from_cache = cached;
    return rc;
}

int vc_featvis_layer(const vc_model *m, const char *layer, const vc_featvis_settings *s, int batch, const char *cache_dir,
                     const char *outdir, const char *trace, vc_error *err) {
    API_NEED(m, err);
    API_NEED(layer, err);
    API_NEED(outdir, err);
    if (batch < 1) return vc_fail(err, VC_EINPUT, "featvis: batch %d; need at least 1", batch);
    vc_featvis_opts o;
    int rc = settings(&o, s, err);
    return rc ? rc : featvis_layer(m, layer, &o, batch, cache_dir, outdir, trace, err);
}
