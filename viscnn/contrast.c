// contrast.c: the contrast parser (a recursive descent that folds the
// expression into its linear form as it goes; nothing is ever executed) and
// its evaluation on per-category score vectors.
//
// Grammar (EBNF; whitespace = space, \t, \n, \r, \v, \f between tokens):
//
//   contrast = expr END ;
//   expr     = term { ( "+" | "-" ) term } ;              (* left associative *)
//   term     = unary { ( "*" | "/" ) unary } ;            (* left associative *)
//   unary    = ( "-" | "+" ) unary | primary ;
//   primary  = number | name | "(" expr ")" ;
//   number   = ( digits [ "." [ digits ] ] | "." digits ) [ exponent ] ;
//   exponent = ( "e" | "E" ) [ "+" | "-" ] digits ;
//   digits   = digit { digit } ;
//   name     = bare | '"' { char - '"' } '"' | "'" { char - "'" } "'" ;
//   bare     = ( letter | "_" ) { letter | digit | "_" | "." } ;
//
// letter is ASCII A-Z a-z; char is any byte but a control character (quoted
// names may hold spaces, '-', UTF-8, and the other kind of quote; there are
// no escapes, and a quoted name is never empty). So `brown-bear` is
// brown minus bear: a name with '-' must be written "brown-bear".
//
// Semantic rules, checked while folding: in a * b at most one side may name
// a category, in a / b b must name none and must not fold to 0 (contrasts are
// linear combinations; `cat*0` is fine, `cat*dog`, `cat/dog` and
// `(cat-cat)*dog` are not), every folded number stays finite, nesting
// (parentheses plus unary signs) is at most MAX_DEPTH deep, and the
// expression names at least one category. Columns in messages count
// characters (UTF-8 code points) from 1.
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "contrast.h"

// SHOW_*: bytes of user text quoted in a message; NAME_BUF holds a shown,
// possibly quoted name.
enum { MAX_DEPTH = 200, SHOW_EXPR = 160, SHOW_NAME = 60, NAME_BUF = SHOW_NAME + 16, MSG = 700 };

struct vc_contrast {
    char *expr;
    int n_names;
    char **names;       // (n_names) distinct, in order of first appearance
    double *coef;       // (n_names)
    double constant;
};

// ---- text shown in messages --------------------------------------------------

// Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid.
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
             : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    for (size_t i = 1; i < k; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

// Copies src[0..n) into dst (size cap) for a one-line message: whitespace
// controls become ' ', other controls and invalid UTF-8 become '?' (one byte
// each, so columns still match), and text beyond max bytes becomes "...".
static void show(char *dst, size_t cap, const char *src, size_t n, size_t max) {
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    if (max + 4 > cap) max = cap - 4;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (o + (k ? k : 1) > max) { memcpy(dst + o, "...", 3); o += 3; break; }
        if (k == 1 && (s[i] < 0x20 || s[i] == 0x7f)) dst[o++] = strchr("\t\n\r\v\f", s[i]) ? ' ' : '?';
        else if (k == 0) dst[o++] = '?';
        else { memcpy(dst + o, s + i, k); o += k; }
        i += k ? k : 1;
    }
    dst[o] = '\0';
}

static int is_bare_start(int ch) { return ch < 128 && (isalpha(ch) || ch == '_'); }
static int is_bare_char(int ch) { return ch < 128 && (isalnum(ch) || ch == '_' || ch == '.'); }

static int needs_quotes(const char *name) {
    if (!is_bare_start((unsigned char)name[0])) return 1;
    for (const char *p = name; *p; p++) if (!is_bare_char((unsigned char)*p)) return 1;
    return 0;
}

// A category name as the user could type it: quoted with whichever quote it
// does not contain, or bare when bare_ok and it can be.
static void show_name(char *dst, size_t cap, const char *name, int bare_ok) {
    char tmp[SHOW_NAME + 4];
    show(tmp, sizeof tmp, name, strlen(name), SHOW_NAME);
    if (bare_ok && !needs_quotes(name)) snprintf(dst, cap, "%s", tmp);
    else if (strchr(name, '\'')) snprintf(dst, cap, "\"%s\"", tmp);
    else snprintf(dst, cap, "'%s'", tmp);
}

// Fails with `contrast "EXPR": <fmt...>`.
static int fail_expr(vc_error *err, int code, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_expr(vc_error *err, int code, const char *expr, const char *fmt, ...) {
    char shown[SHOW_EXPR + 8], msg[MSG];
    show(shown, sizeof shown, expr, strlen(expr), SHOW_EXPR);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vc_fail(err, code, "contrast \"%s\": %s", shown, msg);
}

// ---- lexer -------------------------------------------------------------------

typedef enum { T_END, T_NUM, T_NAME, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_LPAREN, T_RPAREN, T_ERROR } tok_kind;

typedef struct {
    tok_kind kind;
    int pos, len;       // bytes of source text (quotes included)
    double num;         // T_NUM
    int name;           // T_NAME: index into parser.names
} token;

typedef struct {
    const char *expr;
    token *tok;         // whole expression, ends with T_END or T_ERROR
    int n_tok, at;      // at: the current token
    int n_names;
    char **names;
    char lex_msg[MSG];  // the message of the T_ERROR token
    vc_error *err;
    int status;         // first failure, VC_OK while none
} parser;

static int column(const parser *p, int pos) {
    int col = 1;
    for (int i = 0; i < pos; i++) col += ((unsigned char)p->expr[i] & 0xC0) != 0x80;
    return col;
}

static int fail(parser *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *p, int code, const char *fmt, ...) {
    char msg[MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->status == VC_OK) p->status = fail_expr(p->err, code, p->expr, "%s", msg);
    return p->status;
}

static int lex_error(parser *p, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lex_error(parser *p, int pos, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->lex_msg, sizeof p->lex_msg, fmt, ap);
    va_end(ap);
    p->tok[p->n_tok++] = (token){ .kind = T_ERROR, .pos = pos };
    return 0;
}

static int intern(parser *p, const char *s, int len) {
    for (int k = 0; k < p->n_names; k++)
        if ((int)strlen(p->names[k]) == len && memcmp(p->names[k], s, len) == 0) return k;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->names[p->n_names] = copy;   // room for one per token was reserved
    return p->n_names++;
}

// Tokenises all of p->expr into p->tok. A lexical error becomes a final
// T_ERROR token so that the parser reports whichever error comes first in
// the text. Returns VC_EINTERNAL on out-of-memory, else VC_OK.
static int lex(parser *p) {
    const char *s = p->expr;
    int i = 0;
    for (;;) {
        while (s[i] && strchr(" \t\n\r\v\f", s[i])) i++;
        const int start = i;
        const unsigned char ch = (unsigned char)s[i];
        token t = { .pos = start };
        if (ch == '\0') {
            t.kind = T_END;
        } else if (isdigit(ch) || (ch == '.' && isdigit((unsigned char)s[i + 1]))) {
            while (isdigit((unsigned char)s[i])) i++;
            if (s[i] == '.') { i++; while (isdigit((unsigned char)s[i])) i++; }
            if (s[i] == 'e' || s[i] == 'E') {
                int j = i + 1;
                if (s[j] == '+' || s[j] == '-') j++;
                if (!isdigit((unsigned char)s[j])) {
                    char shown[SHOW_NAME + 8];
                    show(shown, sizeof shown, s + start, j - start + (s[j] != '\0'), SHOW_NAME);
                    return lex_error(p, start, "malformed number '%s' at column %d (an exponent needs digits, as in 1e-3)",
                                     shown, column(p, start));
                }
                i = j;
                while (isdigit((unsigned char)s[i])) i++;
            }
            // Copied so that strtod reads only what the grammar accepted (it
            // would also take hex, "inf", ...).
            char buf[CONTRAST_MAX_LEN + 1], *end;
            memcpy(buf, s + start, i - start);
            buf[i - start] = '\0';
            t.kind = T_NUM;
            t.num = strtod(buf, &end);
            char shown[SHOW_NAME + 8];
            show(shown, sizeof shown, buf, i - start, SHOW_NAME);
            if (*end != '\0')   // only under a locale whose decimal point is not '.'
                return lex_error(p, start, "cannot read number '%s' at column %d", shown, column(p, start));
            if (isinf(t.num))
                return lex_error(p, start, "number '%s' at column %d is out of range", shown, column(p, start));
        } else if (is_bare_start(ch)) {
            while (is_bare_char((unsigned char)s[i])) i++;
            t.kind = T_NAME;
            t.name = intern(p, s + start, i - start);
        } else if (ch == '"' || ch == '\'') {
            i++;
            while (s[i] && s[i] != (char)ch) {
                const unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f)
                    return lex_error(p, i, "control character in the quoted name at column %d", column(p, i));
                i++;
            }
            if (!s[i])
                return lex_error(p, start, "unterminated quote: the %c at column %d is never closed", ch, column(p, start));
            if (i == start + 1)
                return lex_error(p, start, "empty category name at column %d", column(p, start));
            t.kind = T_NAME;
            t.name = intern(p, s + start + 1, i - start - 1);
            i++;
        } else {
            static const char ops[] = "+-*/()";
            static const tok_kind kinds[] = { T_PLUS, T_MINUS, T_STAR, T_SLASH, T_LPAREN, T_RPAREN };
            const char *op = strchr(ops, ch);
            if (!op) {
                char shown[16];
                size_t k = utf8_len((const unsigned char *)s + i, strlen(s + i));
                show(shown, sizeof shown, s + i, k ? k : 1, 8);
                return lex_error(p, start, "unexpected character '%s' at column %d (operators are + - * / and "
                                 "parentheses; quote names that contain anything else, as in \"brown bear\")",
                                 shown, column(p, start));
            }
            t.kind = kinds[op - ops];
            i++;
        }
        if (t.kind == T_NAME && t.name < 0) return VC_EINTERNAL;
        t.len = i - start;
        p->tok[p->n_tok++] = t;
        if (t.kind == T_END) return VC_OK;
    }
}

// ---- parser: each rule folds its text into a linear form -------------------------

typedef struct {
    double *coef;       // (p->n_names)
    double c;           // constant term
    int named;          // the text names a category (even if its coefficient folds to 0)
} lin;

static int lin_init(parser *p, lin *v) {
    v->coef = calloc(p->n_names ? p->n_names : 1, sizeof(double));
    v->c = 0;
    v->named = 0;
    return v->coef ? VC_OK : fail(p, VC_EINTERNAL, "out of memory");
}

static int lin_finite(const parser *p, const lin *v) {
    if (!isfinite(v->c)) return 0;
    for (int k = 0; k < p->n_names; k++) if (!isfinite(v->coef[k])) return 0;
    return 1;
}

static const token *cur(const parser *p) { return &p->tok[p->at]; }

// What the current token is, for "found ..." in messages.
static void describe(const parser *p, char *dst, size_t cap) {
    const token *t = cur(p);
    if (t->kind == T_END) { snprintf(dst, cap, "end of expression"); return; }
    char shown[SHOW_NAME + 8];
    show(shown, sizeof shown, p->expr + t->pos, t->len, SHOW_NAME);
    snprintf(dst, cap, "'%s'", shown);
}

// Fails at the current token: with the lexer's message when that is where
// the lexer stopped, else "expected <what> at column N, found <token>", with
// a hint for the two likely slips, an unquoted name with a space and a
// missing '*'.
static int expected(parser *p, const char *what) {
    const token *t = cur(p);
    if (t->kind == T_ERROR) return fail(p, VC_EINPUT, "%s", p->lex_msg);
    char found[SHOW_NAME + 16];
    describe(p, found, sizeof found);
    const tok_kind prev = p->at > 0 ? p->tok[p->at - 1].kind : T_END;
    const char *hint = t->kind != T_NAME ? ""
                     : prev == T_NAME ? " (a name with spaces must be quoted, as in \"brown bear\")"
                     : prev == T_NUM || prev == T_RPAREN ? " (multiplying needs '*', as in 2*cat)" : "";
    return fail(p, VC_EINPUT, "expected %s at column %d, found %s%s", what, column(p, t->pos), found, hint);
}

static int parse_expr(parser *p, lin *v, int depth);

static int parse_unary(parser *p, lin *v, int depth) {
    const token *t = cur(p);
    if (depth > MAX_DEPTH)
        return fail(p, VC_EINPUT, "nested more than %d deep at column %d", MAX_DEPTH, column(p, t->pos));
    if (t->kind == T_MINUS || t->kind == T_PLUS) {
        p->at++;
        if (parse_unary(p, v, depth + 1)) return p->status;
        if (t->kind == T_MINUS) {
            v->c = -v->c;
            for (int k = 0; k < p->n_names; k++) v->coef[k] = -v->coef[k];
        }
        return VC_OK;
    }
    if (t->kind == T_LPAREN) {
        p->at++;
        if (parse_expr(p, v, depth + 1)) return p->status;
        if (cur(p)->kind != T_RPAREN) {
            char what[64];
            snprintf(what, sizeof what, "')' (to close the '(' at column %d)", column(p, t->pos));
            return expected(p, what);
        }
        p->at++;
        return VC_OK;
    }
    if (t->kind != T_NUM && t->kind != T_NAME) return expected(p, "a name, number or '('");
    if (lin_init(p, v)) return p->status;
    if (t->kind == T_NUM) v->c = t->num;
    else { v->coef[t->name] = 1; v->named = 1; }
    p->at++;
    return VC_OK;
}

static int parse_term(parser *p, lin *v, int depth) {
    if (parse_unary(p, v, depth)) return p->status;
    while (cur(p)->kind == T_STAR || cur(p)->kind == T_SLASH) {
        const token *op = cur(p);
        const int col = column(p, op->pos);
        lin r = { 0 };
        p->at++;
        if (parse_unary(p, &r, depth)) { free(r.coef); return p->status; }
        if (op->kind == T_STAR) {
            if (v->named && r.named) {
                free(r.coef);
                return fail(p, VC_EINPUT, "the '*' at column %d multiplies two terms that both name categories; "
                            "contrasts are linear: scale categories by numbers only", col);
            }
            if (r.named) { lin t = *v; *v = r; r = t; }   // v: the named side, r: the number
            v->c *= r.c;
            for (int k = 0; k < p->n_names; k++) v->coef[k] *= r.c;
        } else {
            if (r.named) {
                free(r.coef);
                return fail(p, VC_EINPUT, "the '/' at column %d divides by a term that names a category; "
                            "contrasts are linear: divide by numbers only", col);
            }
            if (r.c == 0) { free(r.coef); return fail(p, VC_EINPUT, "division by zero at column %d", col); }
            v->c /= r.c;
            for (int k = 0; k < p->n_names; k++) v->coef[k] /= r.c;
        }
        free(r.coef);
        if (!lin_finite(p, v)) return fail(p, VC_EINPUT, "the '%c' at column %d overflows", op->kind == T_STAR ? '*' : '/', col);
    }
    return VC_OK;
}

static int parse_expr(parser *p, lin *v, int depth) {
    if (parse_term(p, v, depth)) return p->status;
    while (cur(p)->kind == T_PLUS || cur(p)->kind == T_MINUS) {
        const token *op = cur(p);
        const double s = op->kind == T_PLUS ? 1 : -1;
        lin r = { 0 };
        p->at++;
        if (parse_term(p, &r, depth)) { free(r.coef); return p->status; }
        v->c += s * r.c;
        for (int k = 0; k < p->n_names; k++) v->coef[k] += s * r.coef[k];
        v->named |= r.named;
        free(r.coef);
        if (!lin_finite(p, v))
            return fail(p, VC_EINPUT, "the '%c' at column %d overflows", op->kind == T_PLUS ? '+' : '-', column(p, op->pos));
    }
    return VC_OK;
}

static int parse_contrast(parser *p, lin *v) {
    if (cur(p)->kind == T_END) return fail(p, VC_EINPUT, "empty expression");
    if (parse_expr(p, v, 0)) return p->status;
    const token *t = cur(p);
    if (t->kind == T_END) return VC_OK;
    if (t->kind == T_RPAREN) return fail(p, VC_EINPUT, "unmatched ')' at column %d", column(p, t->pos));
    return expected(p, "an operator or end of expression");
}

int contrast_parse(vc_contrast **out, const char *expr, vc_error *err) {
    *out = NULL;
    if (!expr) return vc_fail(err, VC_EINPUT, "contrast: no expression given");
    const size_t len = strnlen(expr, CONTRAST_MAX_LEN + 1);
    if (len > CONTRAST_MAX_LEN)
        return fail_expr(err, VC_EINPUT, expr, "longer than %d bytes", CONTRAST_MAX_LEN);

    // Every token takes at least one byte, plus T_END / T_ERROR.
    parser p = { .expr = expr, .err = err, .status = VC_OK };
    p.tok = malloc((len + 1) * sizeof *p.tok);
    p.names = malloc((len + 1) * sizeof *p.names);
    lin v = { 0 };
    int st = !p.tok || !p.names ? VC_EINTERNAL : lex(&p);
    if (st) st = fail(&p, VC_EINTERNAL, "out of memory");
    else st = parse_contrast(&p, &v);
    if (st == VC_OK && p.n_names == 0)
        st = fail(&p, VC_EINPUT, "names no category (a contrast combines categories, as in tiger - overall)");

    vc_contrast *c = NULL;
    if (st == VC_OK) {
        c = calloc(1, sizeof *c);
        if (c) c->expr = strdup(expr);
        if (!c || !c->expr) { free(c); c = NULL; st = fail(&p, VC_EINTERNAL, "out of memory"); }
    }
    if (st == VC_OK) {
        c->n_names = p.n_names;
        c->names = p.names;
        c->coef = v.coef;
        for (int k = 0; k < c->n_names; k++) c->coef[k] += 0.0;   // -0 (from `-cat`) becomes +0
        c->constant = v.c + 0.0;
        *out = c;
    } else {
        for (int k = 0; k < p.n_names; k++) free(p.names[k]);
        free(p.names);
        free(v.coef);
    }
    free(p.tok);
    return st;
}

void contrast_free(vc_contrast *c) {
    if (!c) return;
    for (int k = 0; k < c->n_names; k++) free(c->names[k]);
    free(c->names);
    free(c->coef);
    free(c->expr);
    free(c);
}

const char *contrast_expr(const vc_contrast *c) { return c->expr; }

int contrast_names(const vc_contrast *c, const char *const **names) {
    *names = (const char *const *)c->names;
    return c->n_names;
}

// ---- evaluation --------------------------------------------------------------

// Case-insensitive edit distance counting a swap of neighbours as one edit
// (optimal string alignment), or a large number when either name is long.
static int distance(const char *a, const char *b) {
    enum { MAXN = 64 };
    const int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > MAXN || lb > MAXN) return 1 << 20;
    int d[MAXN + 1][MAXN + 1];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            const int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

// The known name the user most likely meant by `name`, or NULL: first one
// that `name` begins up to a character a bare name cannot hold (the user
// typed brown-bear unquoted and got 'brown'), else the nearest by edit
// distance within a length-dependent bound.
static const char *suggest(const char *name, int n_names, const char *const *names) {
    const size_t len = strlen(name);
    for (int j = 0; j < n_names; j++)
        if (names[j] && strncmp(names[j], name, len) == 0 && names[j][len] && !is_bare_char((unsigned char)names[j][len]))
            return names[j];
    const int bound = len <= 2 ? 0 : len <= 5 ? 1 : len <= 10 ? 2 : 3;
    const char *best = NULL;
    int best_d = bound + 1;
    for (int j = 0; j < n_names; j++) {
        if (!names[j]) continue;
        const int d = distance(name, names[j]);
        if (d < best_d) { best_d = d; best = names[j]; }
    }
    return best;
}

static int unknown(const vc_contrast *c, const char *name, int n_names, const char *const *names, vc_error *err) {
    char list[400], item[NAME_BUF], shown[NAME_BUF], hint[NAME_BUF + 64] = "";
    size_t o = 0;
    int listed = 0, total = 0, full = 0;
    list[0] = '\0';
    for (int j = 0; j < n_names; j++) {
        if (!names[j]) continue;
        total++;
        show_name(item, sizeof item, names[j], 1);
        if (full || (full = o + strlen(item) + 2 >= sizeof list - 24)) continue;
        o += snprintf(list + o, sizeof list - o, "%s%s", listed ? ", " : "", item);
        listed++;
    }
    if (listed < total) snprintf(list + o, sizeof list - o, ", ... %d more", total - listed);
    if (total == 0) snprintf(list, sizeof list, "none");
    show_name(shown, sizeof shown, name, 0);
    const char *s = suggest(name, n_names, names);
    if (s) {
        show_name(item, sizeof item, s, 0);
        snprintf(hint, sizeof hint, "; did you mean %s?%s", item,
                 needs_quotes(s) ? " (names with spaces or symbols go in quotes)" : "");
    }
    return fail_expr(err, VC_EINPUT, c->expr, "unknown category %s (known: %s)%s", shown, list, hint);
}

// idx[k] = the index in names[] of the expression's k-th name.
static int resolve(const vc_contrast *c, int n_names, const char *const *names, int *idx, vc_error *err) {
    for (int k = 0; k < c->n_names; k++) {
        idx[k] = -1;
        for (int j = 0; j < n_names; j++) {
            if (!names[j] || strcmp(names[j], c->names[k]) != 0) continue;
            if (idx[k] >= 0) {
                char shown[NAME_BUF];
                show_name(shown, sizeof shown, c->names[k], 0);
                return fail_expr(err, VC_EINPUT, c->expr, "category %s is listed twice (entries %d and %d)",
                                 shown, idx[k], j);
            }
            idx[k] = j;
        }
        if (idx[k] < 0) return unknown(c, c->names[k], n_names, names, err);
    }
    return VC_OK;
}

int contrast_linear(const vc_contrast *c, int n_names, const char *const *names,
                    double *coef, double *constant, vc_error *err) {
    int *idx = malloc(c->n_names * sizeof *idx);
    if (!idx) return fail_expr(err, VC_EINTERNAL, c->expr, "out of memory");
    int st = resolve(c, n_names, names, idx, err);
    if (st == VC_OK) {
        for (int j = 0; j < n_names; j++) coef[j] = 0;
        for (int k = 0; k < c->n_names; k++) coef[idx[k]] = c->coef[k];
        *constant = c->constant;
    }
    free(idx);
    return st;
}

int contrast_eval(const vc_contrast *c, int n_names, const char *const *names,
                  const float *const *values, size_t n, float *out, vc_error *err) {
    int *idx = malloc(c->n_names * sizeof *idx);
    const float **v = malloc(c->n_names * sizeof *v);
    double *w = malloc(c->n_names * sizeof *w);
    int st = !idx || !v || !w ? fail_expr(err, VC_EINTERNAL, c->expr, "out of memory")
                              : resolve(c, n_names, names, idx, err);
    int m = 0;   // terms with a nonzero coefficient
    for (int k = 0; st == VC_OK && k < c->n_names; k++) {
        if (c->coef[k] == 0) continue;
        v[m] = values ? values[idx[k]] : NULL;
        w[m] = c->coef[k];
        if (!v[m] && n > 0) {
            char shown[NAME_BUF];
            show_name(shown, sizeof shown, c->names[k], 0);
            st = fail_expr(err, VC_EINPUT, c->expr, "no scores given for category %s", shown);
        }
        m++;
    }
    for (size_t i = 0; st == VC_OK && i < n; i++) {
        double s = c->constant;
        for (int t = 0; t < m; t++) s += w[t] * v[t][i];
        float f = (float)s;
        out[i] = !(f > 0) && f == f ? 0.0f : f;   // clamp; NaN stays NaN
    }
    free(idx);
    free(v);
    free(w);
    return st;
}
