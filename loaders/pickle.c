// pickle.c: the restricted pickle machine of pickle.h. Opcodes are those of
// CPython's Lib/pickle.py (and pickletools' descriptions); the whitelist is
// the switch below: an opcode that has no case is refused. Nothing a pickle
// names is ever looked up or called: GLOBAL resolves to one of a fixed set of
// tags, and REDUCE builds plain records from those tags.
#include "pickle.h"
#include <stdarg.h>
#include <string.h>
#include "../engine/util.h"

enum {
    MAX_OBJECTS = 1 << 23,    // a 100k-tensor state dict needs ~2M
    MAX_STACK = 1 << 20,
    MAX_MEMO = 1 << 22,
    MAX_NAME = 200,           // GLOBAL module / name length
};

const char *const pk_dtype_names[PK_DTYPE_COUNT] = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"};
const char *const pk_storage_names[PK_DTYPE_COUNT] = {
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"};
const int pk_dtype_size[PK_DTYPE_COUNT] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};

struct pk_vm {
    const char *path;
    pk_persistent_fn persistent;
    void *ctx;
    pk_obj **objs;            // the arena: every object ever made
    size_t n_objs, cap_objs;
    pk_obj **stack;
    size_t sp, cap_stack;
    size_t *marks;            // stack heights at each MARK
    size_t n_marks, cap_marks;
    pk_obj **memo;
    size_t cap_memo, n_memo;  // n_memo: distinct indices set (MEMOIZE uses it)
};

pk_vm *pk_vm_new(const char *path, pk_persistent_fn fn, void *ctx) {
    pk_vm *vm = calloc_check(1, sizeof *vm);
    vm->path = path;
    vm->persistent = fn;
    vm->ctx = ctx;
    return vm;
}

void pk_vm_free(pk_vm *vm) {
    if (!vm) return;
    for (size_t i = 0; i < vm->n_objs; i++) {
        free(vm->objs[i]->s);
        free(vm->objs[i]->items);
        free(vm->objs[i]->tensor);
        free(vm->objs[i]);
    }
    free(vm->objs);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
    free(vm);
}

static void grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    VC_ASSERT(q);
    *p = q;
    *cap = c;
}

// "<file>: <what> (pickle byte N)".
__attribute__((format(printf, 4, 5)))
static int bad(pk_vm *vm, vc_error *err, size_t pos, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vc_fail(err, VC_EINPUT, "%s: %s (pickle byte %zu)", vm->path, msg, pos);
}

static pk_obj *new_obj(pk_vm *vm, pk_type t) {
    if (vm->n_objs >= MAX_OBJECTS) return NULL;
    grow((void **)&vm->objs, &vm->cap_objs, vm->n_objs + 1, sizeof(pk_obj *));
    pk_obj *o = calloc_check(1, sizeof *o);
    o->t = t;
    vm->objs[vm->n_objs++] = o;
    return o;
}

pk_obj *pk_new_storage(pk_vm *vm, int index, pk_dtype dtype) {
    pk_obj *o = new_obj(vm, PK_STORAGE);
    if (o) { o->i = index; o->dtype = dtype; }
    return o;
}

static void add_item(pk_obj *o, pk_obj *x) {
    grow((void **)&o->items, &o->cap, o->n + 1, sizeof(pk_obj *));
    o->items[o->n++] = x;
}

pk_obj *pk_dict_get(const pk_obj *d, const char *key) {
    if (!d || d->t != PK_DICT) return NULL;
    for (size_t i = d->n / 2; i-- > 0;) {
        const pk_obj *k = d->items[2 * i];
        if (k->t == PK_STR && !strcmp(k->s, key)) return d->items[2 * i + 1];
    }
    return NULL;
}

const char *pk_type_name(const pk_obj *o) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict",
                                        "global", "storage", "tensor"};
    return names[o->t];
}

// Copies s (n bytes, from the file) into out for a message: printable ASCII only.
static const char *printable(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) out[k++] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    out[k] = 0;
    return out;
}

// GLOBAL module.name -> a PK_GLOBAL object, or the refusal.
static int resolve_global(pk_vm *vm, const char *mod, size_t mlen, const char *name, size_t nlen, size_t pos,
                          pk_obj **out, vc_error *err) {
    static const struct { const char *mod, *name; pk_global g; } allowed[] = {
        {"collections", "OrderedDict", PK_G_ORDERED_DICT},
        {"torch._utils", "_rebuild_tensor_v2", PK_G_REBUILD_TENSOR_V2},
        {"torch._utils", "_rebuild_tensor", PK_G_REBUILD_TENSOR},
        {"torch._utils", "_rebuild_parameter", PK_G_REBUILD_PARAMETER},
    };
    int64_t g = -1;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strlen(allowed[i].mod) == mlen && !memcmp(allowed[i].mod, mod, mlen) &&
            strlen(allowed[i].name) == nlen && !memcmp(allowed[i].name, name, nlen))
            g = allowed[i].g;
    if (g < 0 && mlen == 5 && !memcmp(mod, "torch", 5))
        for (int d = 0; d < PK_DTYPE_COUNT; d++)
            if (strlen(pk_storage_names[d]) == nlen && !memcmp(pk_storage_names[d], name, nlen)) g = PK_G_STORAGE + d;
    if (g < 0) {
        char pm[MAX_NAME + 1], pn[MAX_NAME + 1];
        return bad(vm, err, pos, "pickle references %s.%s, which a state dict never needs; refusing",
                   printable(pm, sizeof pm, mod, mlen), printable(pn, sizeof pn, name, nlen));
    }
    pk_obj *o = new_obj(vm, PK_GLOBAL);
    if (!o) return bad(vm, err, pos, "more than %d pickle objects", MAX_OBJECTS);
    o->i = g;
    *out = o;
    return VC_OK;
}

static int is_int(const pk_obj *o) { return o->t == PK_INT || o->t == PK_BOOL; }

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
// and _rebuild_tensor(storage, offset, size, stride): a tensor record.
static int rebuild_tensor(pk_vm *vm, pk_obj *args, size_t pos, pk_obj **out, vc_error *err) {
    pk_obj **a = args->items;
    if (a[0]->t != PK_STORAGE || !is_int(a[1]) || a[2]->t != PK_TUPLE || a[3]->t != PK_TUPLE)
        return bad(vm, err, pos, "a tensor is rebuilt from (%s, %s, %s, %s), not (storage, offset, size, stride)",
                   pk_type_name(a[0]), pk_type_name(a[1]), pk_type_name(a[2]), pk_type_name(a[3]));
    pk_tensor *t = calloc_check(1, sizeof *t);
    pk_obj *o = new_obj(vm, PK_TENSOR);
    if (!o) { free(t); return bad(vm, err, pos, "more than %d pickle objects", MAX_OBJECTS); }
    o->tensor = t;
    t->storage = (int)a[0]->i;
    t->dtype = a[0]->dtype;
    t->offset = a[1]->i;
    if (a[2]->n > PK_MAX_RANK || a[3]->n != a[2]->n)
        return bad(vm, err, pos, "a tensor has %zu sizes and %zu strides (at most %d dimensions)", a[2]->n, a[3]->n,
                   PK_MAX_RANK);
    t->rank = (int)a[2]->n;
    for (int k = 0; k < t->rank; k++) {
        pk_obj *d = a[2]->items[k], *s = a[3]->items[k];
        if (!is_int(d) || !is_int(s) || d->i < 0 || s->i < 0 || d->i > ((int64_t)1 << 48) || s->i > ((int64_t)1 << 48))
            return bad(vm, err, pos, "a tensor's size or stride is not a non-negative integer below 2^48");
        t->dim[k] = d->i;
        t->stride[k] = s->i;
    }
    if (t->offset < 0 || t->offset > ((int64_t)1 << 48)) return bad(vm, err, pos, "a tensor's storage offset is out of range");
    *out = o;
    return VC_OK;
}

// REDUCE: fn(*args) for the whitelisted builders only.
static int reduce(pk_vm *vm, pk_obj *fn, pk_obj *args, size_t pos, pk_obj **out, vc_error *err) {
    if (fn->t != PK_GLOBAL) return bad(vm, err, pos, "pickle calls a %s; refusing", pk_type_name(fn));
    if (args->t != PK_TUPLE) return bad(vm, err, pos, "pickle calls with %s arguments, not a tuple", pk_type_name(args));
    switch (fn->i) {
    case PK_G_ORDERED_DICT: {
        if (args->n > 1 || (args->n == 1 && args->items[0]->t != PK_LIST))
            return bad(vm, err, pos, "OrderedDict() takes no arguments or a list of pairs here");
        pk_obj *d = new_obj(vm, PK_DICT);
        if (!d) return bad(vm, err, pos, "more than %d pickle objects", MAX_OBJECTS);
        for (size_t i = 0; args->n == 1 && i < args->items[0]->n; i++) {
            pk_obj *pr = args->items[0]->items[i];
            if ((pr->t != PK_TUPLE && pr->t != PK_LIST) || pr->n != 2)
                return bad(vm, err, pos, "OrderedDict() item %zu is not a (key, value) pair", i);
            add_item(d, pr->items[0]);
            add_item(d, pr->items[1]);
        }
        *out = d;
        return VC_OK;
    }
    case PK_G_REBUILD_TENSOR_V2:
        if (args->n != 6 && args->n != 7) return bad(vm, err, pos, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", args->n);
        return rebuild_tensor(vm, args, pos, out, err);
    case PK_G_REBUILD_TENSOR:
        if (args->n != 4) return bad(vm, err, pos, "_rebuild_tensor takes 4 arguments, got %zu", args->n);
        return rebuild_tensor(vm, args, pos, out, err);
    case PK_G_REBUILD_PARAMETER:
        if (args->n != 3 || args->items[0]->t != PK_TENSOR)
            return bad(vm, err, pos, "_rebuild_parameter takes (tensor, requires_grad, hooks)");
        *out = args->items[0];
        return VC_OK;
    default:
        return bad(vm, err, pos, "pickle calls torch.%s directly; a state dict never does",
                   pk_storage_names[fn->i - PK_G_STORAGE]);
    }
}

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int pk_load(pk_vm *vm, const unsigned char *buf, size_t size, size_t *used, pk_obj **result, vc_error *err) {
    vm->sp = vm->n_marks = vm->n_memo = 0;
    if (vm->memo) memset(vm->memo, 0, vm->cap_memo * sizeof(pk_obj *));
    *result = NULL;
    size_t pos = 0;
#define NEED(k) do { if (size - pos < (size_t)(k)) return bad(vm, err, op_at, "the pickle ends early (truncated file?)"); } while (0)
#define POP(x) do { if (vm->sp <= base) return bad(vm, err, op_at, "pickle stack underflow"); (x) = vm->stack[--vm->sp]; } while (0)
#define TOP() (vm->stack[vm->sp - 1])
#define NEW(x, type) do { if (!((x) = new_obj(vm, type))) return bad(vm, err, op_at, "more than %d pickle objects", MAX_OBJECTS); } while (0)
#define PUSH(x) do { if (vm->sp >= MAX_STACK) return bad(vm, err, op_at, "pickle stack deeper than %d", MAX_STACK); \
        grow((void **)&vm->stack, &vm->cap_stack, vm->sp + 1, sizeof(pk_obj *)); vm->stack[vm->sp++] = (x); } while (0)
    for (;;) {
        size_t op_at = pos;
        size_t base = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;   // objects below the last mark are not poppable
        NEED(1);
        unsigned char op = buf[pos++];
        pk_obj *o = NULL, *a = NULL, *b = NULL;
        switch (op) {
        case 0x80:   // PROTO
            NEED(1);
            if (buf[pos] > 5) return bad(vm, err, op_at, "pickle protocol %d is not supported", buf[pos]);
            pos++;
            break;
        case 0x95:   // FRAME (protocol 4): a length prefix; the bytes follow inline
            NEED(8);
            if (rd_le(buf + pos, 8) > size - pos - 8) return bad(vm, err, op_at, "a pickle frame runs past the data (truncated file?)");
            pos += 8;
            break;
        case '.':    // STOP
            POP(o);
            *result = o;
            *used = pos;
            return VC_OK;
        case '(':    // MARK
            if (vm->n_marks >= MAX_STACK) return bad(vm, err, op_at, "more than %d pickle marks", MAX_STACK);
            grow((void **)&vm->marks, &vm->cap_marks, vm->n_marks + 1, sizeof(size_t));
            vm->marks[vm->n_marks++] = vm->sp;
            break;
        case '}': NEW(o, PK_DICT); PUSH(o); break;    // EMPTY_DICT
        case ']': NEW(o, PK_LIST); PUSH(o); break;    // EMPTY_LIST
        case ')': NEW(o, PK_TUPLE); PUSH(o); break;   // EMPTY_TUPLE
        case 'N': NEW(o, PK_NONE); PUSH(o); break;    // NONE
        case 0x88: case 0x89:                         // NEWTRUE, NEWFALSE
            NEW(o, PK_BOOL); o->i = op == 0x88; PUSH(o); break;
        case 'J': case 'K': case 'M': {               // BININT, BININT1, BININT2
            int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            NEED(n);
            NEW(o, PK_INT);
            o->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)rd_le(buf + pos, 4) : (int64_t)rd_le(buf + pos, n);
            pos += n;
            PUSH(o);
            break;
        }
        case 0x8a: {  // LONG1: n-byte two's complement
            NEED(1);
            int n = buf[pos++];
            NEED(n);
            if (n > 8) return bad(vm, err, op_at, "a %d-byte integer is out of range", n);
            uint64_t v = n ? rd_le(buf + pos, n) : 0;
            if (n && n < 8 && (buf[pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
            pos += n;
            NEW(o, PK_INT);
            o->i = (int64_t)v;
            PUSH(o);
            break;
        }
        case 'G': {   // BINFLOAT: big-endian double
            NEED(8);
            uint64_t v = 0;
            for (int i = 0; i < 8; i++) v = v << 8 | buf[pos + i];
            pos += 8;
            NEW(o, PK_FLOAT);
            memcpy(&o->f, &v, 8);
            PUSH(o);
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': {   // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
            int lb = (op == 'X' || op == 'T') ? 4 : op == 0x8d ? 8 : 1;
            NEED(lb);
            uint64_t n = rd_le(buf + pos, lb);
            if (op == 'T' && n > 0x7fffffffu) return bad(vm, err, op_at, "negative string length");
            pos += lb;
            NEED(n);
            NEW(o, PK_STR);
            o->s = malloc_check(n + 1);
            memcpy(o->s, buf + pos, n);
            o->s[n] = 0;
            o->len = n;
            pos += n;
            PUSH(o);
            break;
        }
        case 'q': case 'r': case 0x94: {   // BINPUT, LONG_BINPUT, MEMOIZE
            size_t idx = vm->n_memo;
            if (op != 0x94) {
                int n = op == 'q' ? 1 : 4;
                NEED(n);
                idx = rd_le(buf + pos, n);
                pos += n;
            }
            if (vm->sp <= base) return bad(vm, err, op_at, "pickle memoizes from an empty stack");
            if (idx >= MAX_MEMO) return bad(vm, err, op_at, "pickle memo index %zu is too large", idx);
            if (idx >= vm->cap_memo) {
                size_t old = vm->cap_memo;
                grow((void **)&vm->memo, &vm->cap_memo, idx + 1, sizeof(pk_obj *));
                memset(vm->memo + old, 0, (vm->cap_memo - old) * sizeof(pk_obj *));
            }
            if (!vm->memo[idx]) vm->n_memo++;
            vm->memo[idx] = TOP();
            break;
        }
        case 'h': case 'j': {   // BINGET, LONG_BINGET
            int n = op == 'h' ? 1 : 4;
            NEED(n);
            size_t idx = rd_le(buf + pos, n);
            pos += n;
            if (idx >= vm->cap_memo || !vm->memo[idx]) return bad(vm, err, op_at, "pickle reads memo %zu, which was never set", idx);
            PUSH(vm->memo[idx]);
            break;
        }
        case 't': case 'l': case 'd': {   // TUPLE, LIST, DICT (from the last mark)
            if (!vm->n_marks) return bad(vm, err, op_at, "pickle builds a collection without a mark");
            size_t m = vm->marks[--vm->n_marks], k = vm->sp - m;
            if (op == 'd' && k % 2) return bad(vm, err, op_at, "pickle builds a dict from an odd number of items");
            NEW(o, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT);
            for (size_t i = m; i < vm->sp; i++) add_item(o, vm->stack[i]);
            vm->sp = m;
            PUSH(o);
            break;
        }
        case 0x85: case 0x86: case 0x87: {   // TUPLE1..3
            size_t k = op - 0x84;
            if (vm->sp - base < k) return bad(vm, err, op_at, "pickle stack underflow");
            NEW(o, PK_TUPLE);
            for (size_t i = vm->sp - k; i < vm->sp; i++) add_item(o, vm->stack[i]);
            vm->sp -= k;
            PUSH(o);
            break;
        }
        case 'a':   // APPEND
            POP(a);
            if (vm->sp <= base || TOP()->t != PK_LIST) return bad(vm, err, op_at, "pickle appends to something that is not a list");
            add_item(TOP(), a);
            break;
        case 's':   // SETITEM
            POP(b);
            POP(a);
            if (vm->sp <= base || TOP()->t != PK_DICT) return bad(vm, err, op_at, "pickle sets an item of something that is not a dict");
            add_item(TOP(), a);
            add_item(TOP(), b);
            break;
        case 'e': case 'u': {   // APPENDS, SETITEMS (items since the last mark)
            if (!vm->n_marks) return bad(vm, err, op_at, "pickle %s without a mark", op == 'e' ? "APPENDS" : "SETITEMS");
            size_t m = vm->marks[--vm->n_marks];
            size_t below = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
            if (m <= below) return bad(vm, err, op_at, "pickle stack underflow");
            pk_obj *c = vm->stack[m - 1];
            if (c->t != (op == 'e' ? PK_LIST : PK_DICT) || (op == 'u' && (vm->sp - m) % 2))
                return bad(vm, err, op_at, "pickle %s into a %s", op == 'e' ? "appends" : "sets items", pk_type_name(c));
            for (size_t i = m; i < vm->sp; i++) add_item(c, vm->stack[i]);
            vm->sp = m;
            break;
        }
        case 'c': {   // GLOBAL "module\nname\n"
            const char *mod = (const char *)buf + pos, *nl1, *nl2;
            size_t lim = size - pos < 2 * MAX_NAME + 2 ? size - pos : 2 * MAX_NAME + 2;
            nl1 = memchr(mod, '\n', lim);
            nl2 = nl1 ? memchr(nl1 + 1, '\n', lim - (size_t)(nl1 + 1 - mod)) : NULL;
            if (!nl2 && lim == size - pos) return bad(vm, err, op_at, "the pickle ends early (truncated file?)");
            if (!nl2) return bad(vm, err, op_at, "a GLOBAL name is longer than %d bytes", MAX_NAME);
            int rc = resolve_global(vm, mod, (size_t)(nl1 - mod), nl1 + 1, (size_t)(nl2 - nl1 - 1), op_at, &o, err);
            if (rc) return rc;
            pos = (size_t)((const unsigned char *)nl2 + 1 - buf);
            PUSH(o);
            break;
        }
        case 0x93: {   // STACK_GLOBAL: module and name from the stack
            POP(b);
            POP(a);
            if (a->t != PK_STR || b->t != PK_STR) return bad(vm, err, op_at, "STACK_GLOBAL needs two strings");
            int rc = resolve_global(vm, a->s, a->len, b->s, b->len, op_at, &o, err);
            if (rc) return rc;
            PUSH(o);
            break;
        }
        case 'R': {   // REDUCE
            POP(b);
            POP(a);
            int rc = reduce(vm, a, b, op_at, &o, err);
            if (rc) return rc;
            PUSH(o);
            break;
        }
        case 'b':   // BUILD: only a dict's instance state (OrderedDict._metadata), dropped
            POP(b);
            if (vm->sp <= base || TOP()->t != PK_DICT)
                return bad(vm, err, op_at, "pickle sets the state of a %s; a state dict never does",
                           vm->sp > base ? pk_type_name(TOP()) : "nothing");
            break;
        case 'Q': {   // BINPERSID
            POP(a);
            if (!vm->persistent) return bad(vm, err, op_at, "this pickle may not refer to storages");
            int rc = vm->persistent(vm->ctx, vm, a, &o, err);
            if (rc) return rc;
            VC_ASSERT(o && o->t == PK_STORAGE);
            PUSH(o);
            break;
        }
        default: {
            char shown[8] = "";
            if (op >= 32 && op < 127) snprintf(shown, sizeof shown, " ('%c')", op);
            return bad(vm, err, op_at, "pickle opcode 0x%02x%s is not one a state dict needs; refusing", op, shown);
        }
        }
    }
#undef NEED
#undef POP
#undef TOP
#undef NEW
#undef PUSH
}
