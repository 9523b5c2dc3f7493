// contrast.h: contrasts, arithmetic expressions over image-category names
// (`tiger - overall`, `2*cat - (dog + fox)/2`, `"brown bear" - overall`)
// evaluated on per-category importance scores (docs/architecture.md §4).
//
// A contrast is parsed once (never evaluated as code) into its linear form,
// sum_k coef_k * category_k + constant; products or quotients of two terms
// that both name categories are rejected at parse time. The grammar is at the
// top of contrast.c. In short: numbers (2, 0.5, .5, 1e-1), bare names
// [A-Za-z_][A-Za-z0-9_.]*, names with anything else (spaces, '-', UTF-8)
// quoted with "..." or '...' (no escapes), + - * / ( ) and unary minus/plus.
//
// Errors return VC_EINPUT with one line that quotes the expression, e.g.
//   contrast "2*cat -": expected a name, number or '(' at column 8, found end of expression
// Out of memory returns VC_EINTERNAL.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

enum { CONTRAST_MAX_LEN = 4096 };   // bytes of expression text, excluding the NUL

typedef struct vc_contrast vc_contrast;

// Parses expr. On success *out owns the result (free with contrast_free); on
// failure *out is NULL. Checks syntax, division by a zero constant, non-linear
// terms and that at least one category is named; category names are checked
// against the data at contrast_eval / contrast_linear time.
int contrast_parse(vc_contrast **out, const char *expr, vc_error *err);
void contrast_free(vc_contrast *c);

// The expression text as given to contrast_parse.
const char *contrast_expr(const vc_contrast *c);

// The distinct category names the expression mentions, in order of first
// appearance (quotes removed). *names points into c: valid until
// contrast_free. Returns the count (>= 1).
int contrast_names(const vc_contrast *c, const char *const **names);

// Linear form over the caller's categories: coef[k] (n_names doubles) is the
// coefficient of names[k], 0 for categories the expression does not use;
// *constant is the constant term (`cat + 1` gives 1). Fails with VC_EINPUT,
// naming the category and listing the known ones, when the expression uses a
// name not in names[], or when names[] lists the same name twice.
// A name whose terms cancel (`cat - cat`) must still be known; its coef is 0.
int contrast_linear(const vc_contrast *c, int n_names, const char *const *names,
                    double *coef, double *constant, vc_error *err);

// out[i] = max(0, constant + sum_k coef_k * values[k][i]) for i < n
// (evaluated in double; NaN propagates, negatives and -0 become +0).
// values[k]: (n) the scores of category names[k]; it may be NULL when the
// expression does not use names[k] (or its coefficient folds to 0).
// out: (n) may alias any values[k]. Errors as contrast_linear.
int contrast_eval(const vc_contrast *c, int n_names, const char *const *names,
                  const float *const *values, size_t n, float *out, vc_error *err);
