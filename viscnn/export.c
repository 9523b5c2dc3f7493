// export.c: JSON and CSV writers, streaming (vgg16 has 15M edge scores: no DOM).
#include "export.h"
#include "../loaders/atomic_write.h"
#include <errno.h>
#include <math.h>
#include <string.h>

void export_float(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.7g", v);
    else fputs("null", f);
}

void export_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void export_layers_json(FILE *f, const vc_model *m, const vc_scores *s) {
    fputc('[', f);
    for (int l = 0; l < s->n_layers; l++) {
        const vc_layer_scores *L = &s->l[l];
        fputs(l ? ",\n{\"name\": " : "\n{\"name\": ", f);
        export_string(f, m->nodes[L->node].name);
        fprintf(f, ", \"in_channels\": %d, \"out_channels\": %d, \"groups\": %d, \"nodes\": [", L->cin, L->cout, L->groups);
        for (int j = 0; j < L->cout; j++) { if (j) fputc(',', f); export_float(f, L->nodes[j]); }
        fputs("], \"edges\": [", f);
        for (int j = 0; j < L->cout; j++) {
            fputs(j ? ",[" : "[", f);
            for (int i = 0; i < L->cg; i++) { if (i) fputc(',', f); export_float(f, L->edges[(size_t)j * L->cg + i]); }
            fputc(']', f);
        }
        fputs("]}", f);
    }
    fputs("\n]", f);
}

void export_scores_csv(FILE *f, const vc_model *m, const vc_scores *s, const char *category) {
    for (int l = 0; l < s->n_layers; l++) {
        const vc_layer_scores *L = &s->l[l];
        const char *name = m->nodes[L->node].name;
        for (int j = 0; j < L->cout; j++) {
            fprintf(f, "node,%s,%d,,", name, j);
            export_float(f, L->nodes[j]);
            if (category) fprintf(f, ",%s", category);
            fputc('\n', f);
        }
        for (int j = 0; j < L->cout; j++)
            for (int i = 0; i < L->cg; i++) {
                fprintf(f, "edge,%s,%d,%d,", name, j, i);
                export_float(f, L->edges[(size_t)j * L->cg + i]);
                if (category) fprintf(f, ",%s", category);
                fputc('\n', f);
            }
    }
}

// Through loaders/atomic_write.c: a unique temporary beside path, renamed on success.
FILE *export_open(const char *path, vc_error *err) { return vc_wopen_fp(path, err); }

int export_close(FILE *f, const char *path, int ok, vc_error *err) {
    (void)path;   // the writer knows it
    return vc_wclose_fp(f, ok, err);
}
