// classify.c: the class of one image, as `viscnn predict MODEL IMAGE --top K`
// prints it (softmax of the output, ties to the lower class index).
//   cc classify.c $(pkg-config --cflags --libs viscnn) -lm -o classify
//   ./classify models/fashion.safetensors shoe.png 5
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <viscnn.h>

static int fail(const vc_error *e) {
    fprintf(stderr, "classify: %s\n", e->msg);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: classify MODEL IMAGE [TOP]\n");
        return 2;
    }
    int top = argc == 4 ? atoi(argv[3]) : 5;
    vc_error e;
    vc_model *m;
    if (vc_model_load(&m, argv[1], &e)) return fail(&e);
    int output, n_labels, c, h, w, K;
    float *x = NULL;
    vc_session *s = NULL;
    const float *y;
    int rc = vc_model_size(m, NULL, &output, &n_labels, &e) || vc_model_node(m, 0, NULL, NULL, &c, &h, &w, &e) ||
             vc_model_node(m, output, NULL, NULL, &K, NULL, NULL, &e);
    if (!rc) {
        x = malloc((size_t)c * h * w * sizeof(float));
        rc = !x || vc_image_preprocess(m, argv[2], x, &e) || vc_session_new(&s, m, &e) ||
             vc_session_forward(s, x, 1, &e) || vc_session_activation(s, output, &y, NULL, &e);
    }
    if (!rc) {
        if (top > K) top = K;
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < K; k++) if (y[k] > mx) mx = y[k];
        for (int k = 0; k < K; k++) sum += exp((double)y[k] - mx);
        int used[4096] = {0};
        printf("%s\n", argv[2]);
        for (int t = 0; t < top && K <= 4096; t++) {
            int best = -1;
            for (int k = 0; k < K; k++)
                if (!used[k] && (best < 0 || y[k] > y[best])) best = k;
            used[best] = 1;
            const char *label = "";
            if (best < n_labels) vc_model_label(m, best, &label, &e);
            printf("  %d. %5d  %.4f  %s\n", t + 1, best, exp((double)y[best] - mx) / sum, label);
        }
    }
    free(x);
    vc_session_free(s);
    vc_model_free(m);
    return rc ? fail(&e) : 0;
}
