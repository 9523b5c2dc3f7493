// test_contrast.c: the contrast parser and evaluator (viscnn/contrast.c).
//
// Cases: "contrast good EXPR" evaluates EXPR on small vectors and compares
// with the same expression written in C (so C's precedence and associativity
// are the oracle), clamped; "contrast linear EXPR" checks the coefficients
// against that oracle on unit vectors; "contrast bad EXPR" checks the message
// substring; "contrast fuzz" feeds random and mutated strings (run it under
// -fsanitize=address,undefined too).
#include "testutil.h"
#include "../viscnn/contrast.h"

enum { NCAT = 9, NV = 5 };
static const char *const cats[NCAT] = {
    "cat", "dog", "fox", "overall", "brown bear", "n01440764", "a-b", "caf\xc3\xa9", "it's",
};
// Scores per category, chosen so that most expressions go negative somewhere
// (exercising the clamp) and all sums are exact in float.
static const float data[NCAT][NV] = {
    { 1, 2, 3, 4, 0.25f },        // cat
    { 4, 3, 2, 1, 0 },            // dog
    { 0.5f, -1, 2, 0, 8 },        // fox
    { 2, 2, 2, 2, 2 },            // overall
    { 10, 0, -10, 1, 0.5f },      // brown bear
    { 3, 1, 4, 1, 5 },            // n01440764
    { -2, 7, 1, 8, 2 },           // a-b
    { 6, 5, 4, 3, 2 },            // café
    { 1, 1, 0, 0, 1 },            // it's
};

// The oracle reads category k at element i through V, so that the linear
// cases can point it at unit vectors.
static const float (*V)[NV] = data;
#define CAT ((double)V[0][i])
#define DOG ((double)V[1][i])
#define FOX ((double)V[2][i])
#define OVR ((double)V[3][i])
#define BEAR ((double)V[4][i])
#define NID ((double)V[5][i])
#define AB ((double)V[6][i])
#define CAFE ((double)V[7][i])
#define ITS ((double)V[8][i])

#define GOOD_CASES(X) \
    X("cat", CAT) \
    X("cat - overall", CAT - OVR) \
    X("2*cat - dog", 2 * CAT - DOG) \
    X("2*cat - (dog + fox)/2", 2 * CAT - (DOG + FOX) / 2) \
    X("cat - dog - fox", CAT - DOG - FOX) \
    X("cat - (dog - fox)", CAT - (DOG - FOX)) \
    X("cat/2/2", CAT / 2 / 2) \
    X("cat/(2/2)", CAT / (2.0 / 2)) \
    X("8/2/2*cat", 8.0 / 2 / 2 * CAT) \
    X("-cat + 2*dog", -CAT + 2 * DOG) \
    X("- -cat", CAT) \
    X("-(-(-cat))", -CAT) \
    X("+cat", CAT) \
    X("cat*-1 + 5", CAT * -1 + 5) \
    X("cat + dog*3 - fox/4", CAT + DOG * 3 - FOX / 4) \
    X("(cat + dog)*3", (CAT + DOG) * 3) \
    X("((((cat))))", CAT) \
    X("((cat - dog) * (1 + 1)) / ((4))", ((CAT - DOG) * 2) / 4) \
    X("3*(cat - 2*(dog - fox/2))", 3 * (CAT - 2 * (DOG - FOX / 2))) \
    X("\"brown bear\" - overall", BEAR - OVR) \
    X("'brown bear'*0.5", BEAR * 0.5) \
    X("'n01440764' * 0.5", NID * 0.5) \
    X("n01440764 - cat", NID - CAT) \
    X("\"a-b\"-cat", AB - CAT) \
    X("'caf\xc3\xa9' + cat", CAFE + CAT) \
    X("\"it's\" * 2", ITS * 2) \
    X("1e-1*cat", 1e-1 * CAT) \
    X("1E+1*cat - 2.5e0*dog", 1e1 * CAT - 2.5 * DOG) \
    X(".5*cat", 0.5 * CAT) \
    X("5.*cat - 0.25*dog", 5.0 * CAT - 0.25 * DOG) \
    X("0.125e3 * fox / 1000", 0.125e3 * FOX / 1000) \
    X("cat+dog", CAT + DOG) \
    X("  cat\t-\n dog\r\n ", CAT - DOG) \
    X("cat-dog", CAT - DOG) \
    X("cat*2-dog/0.5", CAT * 2 - DOG / 0.5) \
    X("cat - cat + dog", DOG) \
    X("cat*0 + fox", FOX) \
    X("cat + 1", CAT + 1) \
    X("1 - cat", 1 - CAT) \
    X("cat + cat + cat", 3 * CAT) \
    X("(1 + 2) * (3 - 1) * cat", 6 * CAT) \
    X("2 * 3 + cat", 6 + CAT) \
    X("2 + 3 * cat", 2 + 3 * CAT) \
    X("cat - overall + dog - overall", CAT - OVR + DOG - OVR) \
    X("(cat + dog + fox)/3 - overall", (CAT + DOG + FOX) / 3 - OVR)

static double expect(int k, int i) {
    int j = 0;
#define X(e, v) if (k == j++) return (double)(v);
    GOOD_CASES(X)
#undef X
    return NAN;
}
static const char *const good[] = {
#define X(e, v) e,
    GOOD_CASES(X)
#undef X
};
enum { N_GOOD = sizeof good / sizeof good[0] };

static const float *vals[NCAT];

static void test_good(void) {
    for (int k = 0; k < N_GOOD; k++) {
        char name[256];
        snprintf(name, sizeof name, "contrast good %s", good[k]);
        for (char *q = name; *q; q++) if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        if (!tu_selected(name)) continue;
        vc_error err = { "" };
        vc_contrast *c = NULL;
        if (contrast_parse(&c, good[k], &err) != VC_OK) { tu_report(name, 0, "parse: %s", err.msg); continue; }
        float out[NV];
        int st = contrast_eval(c, NCAT, cats, vals, NV, out, &err);
        double worst = 0;
        int bad_i = -1;
        V = data;
        for (int i = 0; st == VC_OK && i < NV; i++) {
            double e = expect(k, i);
            e = e > 0 ? e : 0;
            double d = fabs(out[i] - e) / fmax(1, fabs(e));
            if (d > worst) { worst = d; bad_i = i; }
        }
        if (st != VC_OK) tu_report(name, 0, "eval: %s", err.msg);
        else tu_report(name, worst < 1e-6, "element %d: got %g, want %g", bad_i, bad_i >= 0 ? out[bad_i] : 0,
                       bad_i >= 0 ? fmax(expect(k, bad_i), 0) : 0);
        contrast_free(c);
    }
}

// coef[k] must be oracle(e_k) - oracle(0) and the constant oracle(0).
static void test_linear(void) {
    for (int k = 0; k < N_GOOD; k++) {
        char name[256];
        snprintf(name, sizeof name, "contrast linear %s", good[k]);
        for (char *q = name; *q; q++) if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        if (!tu_selected(name)) continue;
        vc_error err = { "" };
        vc_contrast *c = NULL;
        if (contrast_parse(&c, good[k], &err) != VC_OK) { tu_report(name, 0, "parse: %s", err.msg); continue; }
        double coef[NCAT], k0 = NAN;
        int st = contrast_linear(c, NCAT, cats, coef, &k0, &err);
        static float b[NCAT][NV];
        V = (const float (*)[NV])b;
        memset(b, 0, sizeof b);
        const double want0 = expect(k, 0);
        double worst = fabs(k0 - want0) / fmax(1, fabs(want0));
        int bad = -1;
        for (int j = 0; st == VC_OK && j < NCAT; j++) {
            memset(b, 0, sizeof b);
            b[j][0] = 1;
            const double want = expect(k, 0) - want0;
            const double d = fabs(coef[j] - want) / fmax(1, fabs(want));
            if (d > worst) { worst = d; bad = j; }
        }
        V = data;
        if (st != VC_OK) tu_report(name, 0, "%s", err.msg);
        else tu_report(name, worst < 1e-12, "%s off by %g", bad < 0 ? "constant" : cats[bad], worst);
        contrast_free(c);
    }
}

// On random vectors, contrast_eval must equal the clamped linear form.
static void test_eval_vs_linear(void) {
    enum { N = 1000 };
    tu_rng rng = { 12345 };
    float *v[NCAT];
    for (int k = 0; k < NCAT; k++) v[k] = tu_rand(&rng, N);
    float *out = tu_zeros(N), *ref = tu_zeros(N);
    for (int k = 0; k < N_GOOD; k++) {
        char name[256];
        snprintf(name, sizeof name, "contrast eval-vs-linear n=%d %s", N, good[k]);
        for (char *q = name; *q; q++) if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
        if (!tu_selected(name)) continue;
        vc_error err = { "" };
        vc_contrast *c = NULL;
        double coef[NCAT], k0 = 0;
        int st = contrast_parse(&c, good[k], &err);
        if (st == VC_OK) st = contrast_linear(c, NCAT, cats, coef, &k0, &err);
        if (st == VC_OK) st = contrast_eval(c, NCAT, cats, (const float *const *)v, N, out, &err);
        for (int i = 0; i < N; i++) {
            double s = k0;
            for (int j = 0; j < NCAT; j++) s += coef[j] * v[j][i];
            ref[i] = s > 0 ? (float)s : 0.0f;
        }
        const double e = st == VC_OK ? tu_rel_err(out, ref, N, 1e-6) : INFINITY;
        tu_report(name, e < 1e-6, "rel err %g %s", e, err.msg);
        contrast_free(c);
    }
    for (int k = 0; k < NCAT; k++) free(v[k]);
    free(out);
    free(ref);
}

typedef struct { const char *expr, *want; } bad_case;
static const bad_case bad[] = {
    // syntax
    { "2*cat -", "contrast \"2*cat -\": expected a name, number or '(' at column 8, found end of expression" },
    { "", "contrast \"\": empty expression" },
    { "   \t ", "empty expression" },
    { "cat dog", "expected an operator or end of expression at column 5, found 'dog' (a name with spaces must be quoted" },
    { "brown bear - overall", "found 'bear' (a name with spaces must be quoted" },
    { "2cat", "expected an operator or end of expression at column 2, found 'cat' (multiplying needs '*'" },
    { "(cat)dog", "found 'dog' (multiplying needs '*'" },
    { "cat ** 2", "expected a name, number or '(' at column 6, found '*'" },
    { "cat +", "expected a name, number or '(' at column 6, found end of expression" },
    { "* cat", "expected a name, number or '(' at column 1, found '*'" },
    { "cat ()", "expected an operator or end of expression at column 5, found '('" },
    { "()", "expected a name, number or '(' at column 2, found ')'" },
    { "(cat - dog", "expected ')' (to close the '(' at column 1) at column 11, found end of expression" },
    { "((cat - dog)", "expected ')' (to close the '(' at column 1) at column 13" },
    { "(cat dog)", "expected ')' (to close the '(' at column 1) at column 6, found 'dog' (a name with spaces" },
    { "cat - dog)", "unmatched ')' at column 10" },
    { "cat)(", "unmatched ')' at column 4" },
    { "cat $ dog", "unexpected character '$' at column 5" },
    { "cat ^ 2", "unexpected character '^' at column 5" },
    { "caf\xc3\xa9 - dog", "unexpected character '\xc3\xa9' at column 4" },
    { "\xc3\xa9\xc3\xa9 @", "unexpected character '\xc3\xa9' at column 1" },
    { "'caf\xc3\xa9' @", "unexpected character '@' at column 8" },
    { ".cat", "unexpected character '.' at column 1" },
    { "cat, dog", "unexpected character ',' at column 4" },
    { "cat = dog", "unexpected character '='" },
    { "cat - \xff", "unexpected character '?' at column 7" },
    { "\"brown bear - overall", "unterminated quote: the \" at column 1 is never closed" },
    { "cat - 'brown bear", "unterminated quote: the ' at column 7 is never closed" },
    { "'it\"s", "unterminated quote" },
    { "cat - \"\"", "empty category name at column 7" },
    { "\"brown\nbear\"", "control character in the quoted name at column 7" },
    { "1e", "malformed number '1e' at column 1" },
    { "2*cat - 3e+", "malformed number '3e+' at column 9" },
    { "1ex*cat", "malformed number '1ex'" },
    { "1.2.3*cat", "expected an operator or end of expression at column 4, found '.3'" },
    { "1e999*cat", "number '1e999' at column 1 is out of range" },
    { "1e300*1e300*cat", "the '*' at column 6 overflows" },
    { "cat*1e300*1e300", "the '*' at column 10 overflows" },
    { "cat/1e-300/1e-300", "overflows" },
    { "0x10*cat", "found 'x10'" },
    // semantics
    { "cat/0", "division by zero at column 4" },
    { "cat/(2-2)", "division by zero at column 4" },
    { "cat/0.0e5", "division by zero" },
    { "cat/-0", "division by zero" },
    { "cat*dog", "the '*' at column 4 multiplies two terms that both name categories; contrasts are linear" },
    { "2*cat*(dog+1)", "the '*' at column 6 multiplies two terms that both name categories" },
    { "(cat-cat)*dog", "multiplies two terms that both name categories" },
    { "cat/dog", "the '/' at column 4 divides by a term that names a category" },
    { "1/cat", "divides by a term that names a category" },
    { "2 + 3", "contrast \"2 + 3\": names no category" },
    { "-(1)", "names no category" },
    { "cat + 1/0", "division by zero at column 8" },
    // leftmost error wins
    { "cat * dog $", "multiplies two terms" },
    { "cat $ \"unterminated", "unexpected character '$' at column 5" },
    { "(cat \"x", "unterminated quote" },
};
enum { N_BAD = sizeof bad / sizeof bad[0] };

static void test_bad(void) {
    for (int k = 0; k < N_BAD; k++) {
        char name[256];
        snprintf(name, sizeof name, "contrast bad %s", bad[k].expr);
        for (char *q = name; *q; q++) if ((unsigned char)*q < 0x20) *q = ' ';
        if (!tu_selected(name)) continue;
        vc_error err = { "" };
        vc_contrast *c = (vc_contrast *)&err;   // must be reset to NULL
        int st = contrast_parse(&c, bad[k].expr, &err);
        const int ok = st == VC_EINPUT && c == NULL && strstr(err.msg, bad[k].want) && !strchr(err.msg, '\n')
                    && strncmp(err.msg, "contrast \"", 10) == 0;
        tu_report(name, ok, "status %d, message: %s (want \"%s\")", st, err.msg, bad[k].want);
        if (st == VC_OK) contrast_free(c);
    }
}

// Unknown names, duplicates, missing values: errors at evaluation time.
static void test_unknown(void) {
    static const struct { const char *expr, *want; } cases[] = {
        { "tigr - overall", "contrast \"tigr - overall\": unknown category 'tigr' (known: cat, dog, fox, overall, "
                            "'brown bear', n01440764, 'a-b', 'caf\xc3\xa9', \"it's\")" },
        { "Cat - dog", "unknown category 'Cat' (known: " },
        { "Cat - dog", "; did you mean 'cat'?" },
        { "dgo - cat", "did you mean 'dog'?" },
        { "brown - overall", "unknown category 'brown' " },
        { "brown - overall", "did you mean 'brown bear'? (names with spaces or symbols go in quotes)" },
        { "a-b", "unknown category 'a' " },
        { "a-b", "did you mean 'a-b'?" },
        { "cat - zzzzzz", "unknown category 'zzzzzz' (known: cat, dog, fox, overall, 'brown bear', n01440764, 'a-b', 'caf\xc3\xa9', \"it's\")" },
        { "cat - 'Brown Bear'", "unknown category 'Brown Bear' (known:" },
        { "inf - cat", "unknown category 'inf'" },
        { "q", "unknown category 'q' (known:" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[256];
        snprintf(name, sizeof name, "contrast unknown %s ~ %.40s", cases[k].expr, cases[k].want);
        if (!tu_selected(name)) continue;
        vc_error err = { "" }, err2 = { "" };
        vc_contrast *c = NULL;
        int st = contrast_parse(&c, cases[k].expr, &err);
        if (st != VC_OK) { tu_report(name, 0, "parse: %s", err.msg); continue; }
        float out[NV];
        double coef[NCAT], k0;
        st = contrast_eval(c, NCAT, cats, vals, NV, out, &err);
        int st2 = contrast_linear(c, NCAT, cats, coef, &k0, &err2);
        tu_report(name, st == VC_EINPUT && st2 == VC_EINPUT && strstr(err.msg, cases[k].want) && !strcmp(err.msg, err2.msg),
                  "status %d/%d: %s", st, st2, err.msg);
        contrast_free(c);
    }

    // A long category list is cut, and says how many were left out.
    if (tu_selected("contrast unknown long category list")) {
        static char buf[300][24];
        const char *many[300];
        for (int j = 0; j < 300; j++) { snprintf(buf[j], sizeof buf[j], "category_%03d", j); many[j] = buf[j]; }
        vc_error err = { "" };
        vc_contrast *c = NULL;
        contrast_parse(&c, "categroy_100 - category_000", &err);
        double coef[300], k0;
        int st = contrast_linear(c, 300, many, coef, &k0, &err);
        tu_report("contrast unknown long category list", st == VC_EINPUT && strstr(err.msg, "more)") &&
                  strstr(err.msg, "unknown category 'categroy_100' (known: category_000, category_001")
                  && strstr(err.msg, "more); did you mean 'category_100'?") && strlen(err.msg) < sizeof err.msg - 1,
                  "%s", err.msg);
        contrast_free(c);
    }

    if (tu_selected("contrast unknown duplicate category")) {
        const char *dup[] = { "cat", "dog", "cat" };
        vc_error err = { "" };
        vc_contrast *c = NULL;
        contrast_parse(&c, "cat - dog", &err);
        double coef[3], k0;
        int st = contrast_linear(c, 3, dup, coef, &k0, &err);
        tu_report("contrast unknown duplicate category", st == VC_EINPUT && strstr(err.msg, "category 'cat' is listed twice"),
                  "%s", err.msg);
        contrast_free(c);
    }

    if (tu_selected("contrast unknown no categories")) {
        vc_error err = { "" };
        vc_contrast *c = NULL;
        contrast_parse(&c, "cat", &err);
        float out[1];
        int st = contrast_eval(c, 0, NULL, NULL, 1, out, &err);
        tu_report("contrast unknown no categories", st == VC_EINPUT && strstr(err.msg, "(known: none)"), "%s", err.msg);
        contrast_free(c);
    }
}

static void test_misc(void) {
    vc_error err = { "" };
    vc_contrast *c = NULL;

    if (tu_selected("contrast names dedup and order")) {
        contrast_parse(&c, "2*dog - 'brown bear' + dog/2 - cat + \"brown bear\"", &err);
        const char *const *nm = NULL;
        int n = c ? contrast_names(c, &nm) : -1;
        tu_report("contrast names dedup and order", n == 3 && !strcmp(nm[0], "dog") && !strcmp(nm[1], "brown bear") &&
                  !strcmp(nm[2], "cat") && !strcmp(contrast_expr(c), "2*dog - 'brown bear' + dog/2 - cat + \"brown bear\""),
                  "n=%d %s", n, err.msg);
        contrast_free(c);
        c = NULL;
    }

    if (tu_selected("contrast eval clamp -0 NaN n=0 alias")) {
        contrast_parse(&c, "cat - dog", &err);
        float a[4] = { 1, 2, NAN, -0.0f }, b[4] = { 1, 3, 0, 0 }, out[4];
        const char *nm[2] = { "cat", "dog" };
        const float *v[2] = { a, b };
        int st = contrast_eval(c, 2, nm, v, 4, out, &err);
        int ok = st == VC_OK && out[0] == 0 && !signbit(out[0]) && out[1] == 0 && !signbit(out[1]) && isnan(out[2])
              && out[3] == 0 && !signbit(out[3]);
        st |= contrast_eval(c, 2, nm, v, 0, NULL, &err);              // n = 0 touches nothing
        st |= contrast_eval(c, 2, nm, v, 4, a, &err);                 // out aliases an input
        ok = ok && st == VC_OK && a[0] == 0 && a[1] == 0 && isnan(a[2]) && a[3] == 0;
        tu_report("contrast eval clamp -0 NaN n=0 alias", ok, "st=%d out=%g %g %g %g: %s", st, out[0], out[1], out[2], out[3], err.msg);
        contrast_free(c);
        c = NULL;
    }

    if (tu_selected("contrast eval NULL values")) {
        // Unused or cancelled categories need no vector; a used one does.
        contrast_parse(&c, "cat - cat + dog", &err);
        float d[2] = { 1, 2 }, out[2];
        const char *nm[3] = { "cat", "dog", "fox" };
        const float *v[3] = { NULL, d, NULL };
        int st = contrast_eval(c, 3, nm, v, 2, out, &err);
        int ok = st == VC_OK && out[0] == 1 && out[1] == 2;
        const float *v2[3] = { d, NULL, d };
        int st2 = contrast_eval(c, 3, nm, v2, 2, out, &err);
        tu_report("contrast eval NULL values", ok && st2 == VC_EINPUT && strstr(err.msg, "no scores given for category 'dog'"),
                  "%d %d %s", st, st2, err.msg);
        contrast_free(c);
        c = NULL;
    }

    if (tu_selected("contrast limits length and depth")) {
        static char buf[CONTRAST_MAX_LEN + 2];
        memset(buf, ' ', CONTRAST_MAX_LEN);
        memcpy(buf, "cat", 3);
        buf[CONTRAST_MAX_LEN] = '\0';
        int st1 = contrast_parse(&c, buf, &err);                      // exactly the limit
        contrast_free(c);
        buf[CONTRAST_MAX_LEN] = ' ';
        buf[CONTRAST_MAX_LEN + 1] = '\0';
        int st2 = contrast_parse(&c, buf, &err);                      // one over
        int ok = st1 == VC_OK && st2 == VC_EINPUT && strstr(err.msg, "longer than 4096 bytes") && c == NULL;
        // 200 parentheses parse; 201 do not; a sign counts like a parenthesis.
        for (int depth = 199; depth <= 202; depth++) {
            int o = 0;
            for (int j = 0; j < depth; j++) buf[o++] = '(';
            memcpy(buf + o, "cat", 3); o += 3;
            for (int j = 0; j < depth; j++) buf[o++] = ')';
            buf[o] = '\0';
            int st = contrast_parse(&c, buf, &err);
            contrast_free(c);
            ok = ok && (depth <= 200 ? st == VC_OK : st == VC_EINPUT && strstr(err.msg, "nested more than 200 deep"));
        }
        memset(buf, '-', 3000);
        memcpy(buf + 3000, "cat", 4);
        int st3 = contrast_parse(&c, buf, &err);
        ok = ok && st3 == VC_EINPUT && strstr(err.msg, "nested more than 200 deep at column 202");
        // Long expressions are shortened in messages.
        memset(buf, ' ', 4000);
        memcpy(buf + 3990, "cat $", 5);
        buf[4000] = '\0';
        int st4 = contrast_parse(&c, buf, &err);
        ok = ok && st4 == VC_EINPUT && strstr(err.msg, "...\": unexpected character '$' at column 3995");
        tu_report("contrast limits length and depth", ok, "%d %d %d %d: %s", st1, st2, st3, st4, err.msg);
    }

    if (tu_selected("contrast linear -cat has +0 constant, NULL values with n=0")) {
        contrast_parse(&c, "-cat", &err);
        const char *nm[1] = { "cat" };
        double coef[1], k0 = 1;
        int st = contrast_linear(c, 1, nm, coef, &k0, &err);
        st |= contrast_eval(c, 1, nm, NULL, 0, NULL, &err);
        tu_report("contrast linear -cat has +0 constant, NULL values with n=0",
                  st == VC_OK && coef[0] == -1 && k0 == 0 && !signbit(k0), "st=%d k0=%g %s", st, k0, err.msg);
        contrast_free(c);
        c = NULL;
    }

    if (tu_selected("contrast NULL expression")) {
        int st = contrast_parse(&c, NULL, &err);
        tu_report("contrast NULL expression", st == VC_EINPUT && c == NULL && strstr(err.msg, "no expression"), "%s", err.msg);
    }

    if (tu_selected("contrast many names")) {
        // 1000 distinct categories in one expression: the linear form's width.
        static char expr[CONTRAST_MAX_LEN + 1];
        static char buf[1000][16];
        const char *nm[1000];
        for (int j = 0; j < 1000; j++) { snprintf(buf[j], sizeof buf[j], "c%d", j); nm[j] = buf[j]; }
        int o = 0;
        for (int j = 0; j < 1000 && o < CONTRAST_MAX_LEN - 8; j++)
            o += snprintf(expr + o, sizeof expr - o, "%s%s", j ? "+" : "", buf[j]);
        int st = contrast_parse(&c, expr, &err);
        const char *const *names = NULL;
        int n = st == VC_OK ? contrast_names(c, &names) : 0;
        double coef[1000], k0;
        int st2 = st == VC_OK ? contrast_linear(c, 1000, nm, coef, &k0, &err) : st;
        int ok = st == VC_OK && st2 == VC_OK && n > 500 && k0 == 0;
        for (int j = 0; ok && j < 1000; j++) ok = coef[j] == (j < n ? 1 : 0);
        tu_report("contrast many names", ok, "st=%d/%d n=%d %s", st, st2, n, err.msg);
        contrast_free(c);
        c = NULL;
    }
}

// Random and mutated strings must give VC_OK or VC_EINPUT with a one-line
// "contrast ..." message, never a crash; what parses must evaluate or fail
// with an unknown-category message.
static void test_fuzz(void) {
    if (!tu_selected("contrast fuzz")) return;
    static const char alphabet[] = "catdogfox overall 0123456789.eE+-*/()\"' \t_n$\xc3\xa9\n";
    static const char *const pieces[] = {
        "cat", "dog", "fox", "overall", "'brown bear'", "\"a-b\"", "1e-1", ".5", "2", "0", "(", ")", "+", "-", "*", "/",
        " ", "e", "1e", "\"", "'", "1e999", "((((", "))))", "--", "n01440764",
    };
    tu_rng rng = { 0x9E3779B97F4A7C15ULL };
    int fails = 0, parsed = 0;
    char first[600] = "";
    static char s[CONTRAST_MAX_LEN + 64];
    for (int iter = 0; iter < 2000; iter++) {
        const int mode = iter % 4;
        size_t len = 0;
        if (mode == 0) {   // random bytes of the alphabet, or any byte
            const int n = (int)((tu_uniform(&rng) + 1) * 20);
            for (int j = 0; j < n; j++) {
                float u = tu_uniform(&rng);
                s[len++] = u > 0.9f ? (char)(1 + (int)((u - 0.9f) * 2540)) : alphabet[(int)((u + 1) * 0.5f * (sizeof alphabet - 1)) % (sizeof alphabet - 1)];
            }
        } else if (mode == 1) {   // random sequence of tokens and fragments
            const int n = (int)((tu_uniform(&rng) + 1) * 12);
            for (int j = 0; j < n; j++) {
                const char *p = pieces[(int)((tu_uniform(&rng) + 1) * 0.5f * 26) % 26];
                memcpy(s + len, p, strlen(p));
                len += strlen(p);
            }
        } else {   // a good expression with a few edits
            const char *g = good[(int)((tu_uniform(&rng) + 1) * 0.5f * N_GOOD) % N_GOOD];
            len = strlen(g);
            memcpy(s, g, len);
            const int edits = 1 + (int)((tu_uniform(&rng) + 1) * 2);
            for (int e = 0; e < edits; e++) {
                size_t at = len ? (size_t)((tu_uniform(&rng) + 1) * 0.5f * len) % len : 0;
                char ch = alphabet[(int)((tu_uniform(&rng) + 1) * 0.5f * (sizeof alphabet - 1)) % (sizeof alphabet - 1)];
                float op = tu_uniform(&rng);
                if (op < -0.33f && len) { memmove(s + at, s + at + 1, len - at - 1); len--; }
                else if (op < 0.33f) { memmove(s + at + 1, s + at, len - at); s[at] = ch; len++; }
                else if (len) s[at] = ch;
            }
        }
        if (iter == 1999) { memset(s, '(', 3000); len = 3000; }   // deep and unbalanced
        s[len] = '\0';

        vc_error err = { "" };
        vc_contrast *c = NULL;
        int st = contrast_parse(&c, s, &err);
        int ok = (st == VC_OK && c) || (st == VC_EINPUT && !c && !strncmp(err.msg, "contrast", 8) && !strchr(err.msg, '\n'));
        if (ok && st == VC_OK) {
            parsed++;
            const char *const *nm;
            int n = contrast_names(c, &nm);
            float out[NV];
            double coef[NCAT], k0;
            int e1 = contrast_eval(c, NCAT, cats, vals, NV, out, &err);
            int e2 = contrast_linear(c, NCAT, cats, coef, &k0, &err);
            ok = n >= 1 && e1 == e2 && (e1 == VC_OK || (e1 == VC_EINPUT && strstr(err.msg, "unknown category")));
            for (int i = 0; ok && e1 == VC_OK && i < NV; i++) ok = out[i] >= 0 && !signbit(out[i]);
        }
        if (!ok && !fails++) snprintf(first, sizeof first, "input %.80s -> %d %.400s", s, st, err.msg);
        contrast_free(c);
    }
    tu_report("contrast fuzz 2000 inputs", fails == 0 && parsed > 50, "%d bad (first: %s), %d parsed", fails, first, parsed);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    for (int k = 0; k < NCAT; k++) vals[k] = data[k];
    test_good();
    test_linear();
    test_eval_vs_linear();
    test_bad();
    test_unknown();
    test_misc();
    test_fuzz();
    return tu_finish();
}
