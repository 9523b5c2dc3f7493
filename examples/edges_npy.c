// edges_npy.c: the exact edge maps e[j][i] = W[j,i] (*) x_i of one conv layer
// for one image, and their gradients dF/de[j][i] = dF/dy_j, to .npy files —
// what `viscnn edges MODEL --layer L --images IMAGE --grad --target T -o OUT.npy`
// writes: OUT.npy (J, I, Ho, Wo) and OUT.grad.npy (J, Ho, Wo).
//   ./edges_npy MODEL IMAGE LAYER TARGET OUT.npy [OUT_CHANNELS like 0,3,7]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <viscnn.h>

// A little-endian float32 .npy (format 1.0) of the given shape (rank >= 2),
// with the header numpy writes.
static int write_npy(const char *path, const float *a, int rank, const int *dim) {
    char h[128];
    size_t n = 1;
    int len = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int k = 0; k < rank; k++) {
        len += snprintf(h + len, sizeof h - len, "%s%d", k ? ", " : "", dim[k]);
        n *= (size_t)dim[k];
    }
    len += snprintf(h + len, sizeof h - len, "), }");
    while ((10 + len + 1) % 64) h[len++] = ' ';
    h[len++] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 255), (unsigned char)(len >> 8)};
    int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(h, 1, len, f) != (size_t)len || fwrite(a, sizeof(float), n, f) != n;
    return fclose(f) || bad;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: edges_npy MODEL IMAGE LAYER TARGET OUT.npy [OUT_CHANNELS]\n");
        return 2;
    }
    vc_error e;
    vc_model *m;
    if (vc_model_load(&m, argv[1], &e)) { fprintf(stderr, "edges_npy: %s\n", e.msg); return 2; }
    int node, c, h, w, cout, cin, ho, wo, J[4096], nj = 0;
    float *x = NULL, *maps = NULL, *grads = NULL;
    vc_session *s = NULL;
    int rc = vc_model_find_node(m, argv[3], &node, &e) || vc_model_conv(m, node, &cout, &cin, NULL, &ho, &wo, &e) ||
             vc_model_node(m, 0, NULL, NULL, &c, &h, &w, &e);
    for (char *p = argc == 7 ? argv[6] : NULL; p && *p && nj < 4096; p += *p == ',')
        J[nj++] = (int)strtol(p, &p, 10);
    if (!rc) {
        x = malloc((size_t)c * h * w * sizeof(float));
        rc = !x || vc_image_preprocess(m, argv[2], x, &e) || vc_session_new(&s, m, &e) ||
             vc_session_forward(s, x, 1, &e) || vc_session_backward(s, argv[4], NULL, &e) ||
             vc_session_edges(s, node, 0, nj ? J : NULL, nj, NULL, 0, &maps, &e) ||
             vc_session_edge_grads(s, node, 0, nj ? J : NULL, nj, &grads, &e);
    }
    if (!rc) {
        char gpath[4096];
        snprintf(gpath, sizeof gpath, "%.*s.grad.npy", (int)strlen(argv[5]) - 4, argv[5]);
        int dm[4] = {nj ? nj : cout, cin, ho, wo}, dg[3] = {nj ? nj : cout, ho, wo};
        if (write_npy(argv[5], maps, 4, dm) || write_npy(gpath, grads, 3, dg)) {
            snprintf(e.msg, sizeof e.msg, "%s: cannot write", argv[5]);
            rc = 1;
        }
    }
    if (rc) fprintf(stderr, "edges_npy: %s\n", e.msg);
    vc_free(maps);
    vc_free(grads);
    free(x);
    vc_session_free(s);
    vc_model_free(m);
    return rc ? 2 : 0;
}
