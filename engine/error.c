// error.c: filling vc_error. The library reports, the CLI decides.
#include <stdarg.h>
#include <stdio.h>
#include "viscnn_internal.h"

int vc_fail(vc_error *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
