// contrast_set.c: contrasts over an image set's categories (imageset.h):
// checking an expression's names and evaluating it into scores.
#include <stdlib.h>
#include <string.h>
#include "contrast.h"
#include "imageset.h"
#include "../engine/util.h"

// Evaluates a contrast over the set's categories (and "overall") into out.
int contrast_scores(vc_scores *out, const vc_set_scores *ss, const char *expr, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = ss->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    const float **vals = malloc_check(n * sizeof(float *));
    size_t cnt = scores_count(&ss->overall);
    float *flat = malloc_check((size_t)n * cnt * sizeof(float)), *res = malloc_check(cnt * sizeof(float));
    for (int k = 0; k < n; k++) {
        const vc_scores *s = k < ss->n_cat ? &ss->cat[k] : &ss->overall;
        names[k] = k < ss->n_cat ? ss->cat_names[k] : "overall";
        scores_flatten(s, flat + (size_t)k * cnt);
        vals[k] = flat + (size_t)k * cnt;
    }
    rc = contrast_eval(c, n, names, vals, cnt, res, err);
    if (!rc) {
        scores_copy(out, &ss->overall);
        scores_unflatten(out, res);
    }
    free(names); free(vals); free(flat); free(res);
    contrast_free(c);
    return rc;
}

// Checks an expression against the set's categories before the long computation.
int contrast_check(const char *expr, const vc_imageset *set, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = set->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    double *coef = malloc_check(n * sizeof(double)), k0;
    for (int k = 0; k < set->n_cat; k++) names[k] = set->cat_names[k];
    names[set->n_cat] = "overall";
    rc = contrast_linear(c, n, names, coef, &k0, err);
    free(names); free(coef);
    contrast_free(c);
    return rc;
}

