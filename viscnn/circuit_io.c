// circuit_io.c: reading a circuit back from the JSON `viscnn circuit` wrote,
// so that other commands can run it as a masked network.
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "circuit.h"
#include "../engine/util.h"

int circuit_read(vc_circuit *c, vc_scores *layout, const vc_model *m, const char *path, vc_error *err) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) return vc_fail(err, VC_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc_check(n > 0 ? (size_t)n + 1 : 1);
    size_t got = fread(buf, 1, n > 0 ? (size_t)n : 0, f);
    fclose(f);
    buf[got] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) return vc_fail(err, VC_EINPUT, "%s: not valid JSON", path);
    int rc = VC_OK;
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    if (!cJSON_IsArray(layers)) rc = vc_fail(err, VC_EINPUT, "%s: no \"layers\" array (not a viscnn circuit)", path);
    if (!rc) {
        scores_init(layout, m, -1);
        c->n_layers = layout->n_layers;
        c->node = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
        c->edge = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
        for (int l = 0; l < c->n_layers; l++) {   // layers not listed run unmasked
            const vc_layer_scores *L = &layout->l[l];
            c->node[l] = malloc_check(L->cout);
            c->edge[l] = malloc_check((size_t)L->cout * L->cg);
            memset(c->node[l], 1, L->cout);
            memset(c->edge[l], 1, (size_t)L->cout * L->cg);
        }
    }
    for (cJSON *e = rc ? NULL : layers->child; e && !rc; e = e->next) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        cJSON *nodes = cJSON_GetObjectItemCaseSensitive(e, "nodes"), *edges = cJSON_GetObjectItemCaseSensitive(e, "edges");
        int l = -1;
        for (int q = 0; cJSON_IsString(name) && q < layout->n_layers; q++)
            if (!strcmp(m->nodes[layout->l[q].node].name, name->valuestring)) l = q;
        if (l < 0 || !cJSON_IsArray(nodes) || !cJSON_IsArray(edges)) {
            rc = vc_fail(err, VC_EINPUT, "%s: layer %s is not a conv layer of %s", path,
                         cJSON_IsString(name) ? name->valuestring : "?", m->path);
            break;
        }
        const vc_layer_scores *L = &layout->l[l];
        memset(c->node[l], 0, L->cout);
        memset(c->edge[l], 0, (size_t)L->cout * L->cg);
        for (cJSON *x = nodes->child; x && !rc; x = x->next) {
            cJSON *ch = cJSON_GetObjectItemCaseSensitive(x, "ch");
            if (!cJSON_IsNumber(ch) || ch->valueint < 0 || ch->valueint >= L->cout)
                rc = vc_fail(err, VC_EINPUT, "%s: layer %s: bad node channel", path, name->valuestring);
            else c->node[l][ch->valueint] = 1;
        }
        for (cJSON *x = edges->child; x && !rc; x = x->next) {
            cJSON *o = cJSON_GetObjectItemCaseSensitive(x, "out"), *i = cJSON_GetObjectItemCaseSensitive(x, "in");
            if (!cJSON_IsNumber(o) || !cJSON_IsNumber(i) || o->valueint < 0 || o->valueint >= L->cout || i->valueint < 0 || i->valueint >= L->cg)
                rc = vc_fail(err, VC_EINPUT, "%s: layer %s: bad edge", path, name->valuestring);
            else c->edge[l][(size_t)o->valueint * L->cg + i->valueint] = 1;
        }
    }
    cJSON_Delete(j);
    if (rc) { circuit_free(c); if (layout->l) scores_free(layout); }
    return rc;
}
