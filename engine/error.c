// error.c: filling vc_error. The library reports, the CLI decides.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "viscnn_internal.h"
#include "util.h"

// A message is one line: control bytes that reach it through a format
// argument (a file name, a string read from a file) come out as \xNN.
int vc_fail(vc_error *e, int code, const char *fmt, ...) {
    if (e) {
        char raw[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        size_t o = 0;
        for (const unsigned char *s = (const unsigned char *)raw; *s && o + 5 < sizeof e->msg; s++) {
            if (*s < 0x20 || *s == 0x7f) o += (size_t)snprintf(e->msg + o, 5, "\\x%02x", *s);
            else e->msg[o++] = (char)*s;
        }
        e->msg[o] = 0;
    }
    return code;
}

// Ring of buffers, so that one message can quote several strings.
#define RING 8
const char *vc_str(const char *s) {
    static _Thread_local char ring[RING][VC_STR_MAX * 4 + 8];
    static _Thread_local int next;
    char *out = ring[next];
    next = (next + 1) % RING;
    if (!s) return "(null)";
    size_t o = 0, n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (n == VC_STR_MAX) { memcpy(out + o, "...", 4); return out; }
        if (*p < 0x20 || *p >= 0x7f || *p == '\\') o += (size_t)snprintf(out + o, 5, "\\x%02x", *p);
        else out[o++] = (char)*p;
    }
    out[o] = 0;
    return out;
}
