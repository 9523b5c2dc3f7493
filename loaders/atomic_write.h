// atomic_write.h: every file viscnn writes goes through here. The output is
// written to a fresh temporary file in the target's folder
// (".NAME.tmp-XXXXXX", created O_CREAT|O_EXCL|O_NOFOLLOW, so a planted
// symlink or file is never followed or reused), flushed and fsync'ed,
// renamed over the target, and the folder fsync'ed. On any error the
// temporary file is removed, and so it is on SIGINT and SIGTERM (a handler,
// installed on first use where the signal is not otherwise handled, unlinks
// every live temporary and re-raises). A half-written output never appears
// under the target's name.
#pragma once
#include <stdio.h>
#include "viscnn_internal.h"

typedef struct {
    FILE *fp;         // write here
    char *path;       // the target
    char *tmp;        // the temporary file (readable while open, e.g. to check it)
    int slot;         // in the signal handler's list
} vc_wfile;

// Creates the temporary file; err names path.
int vc_wopen(vc_wfile *w, const char *path, vc_error *err);
// ok = 0 (or a write error on w->fp): removes the temporary, fails. Otherwise
// flush, fsync, rename, fsync the folder. Frees w's strings either way.
int vc_wcommit(vc_wfile *w, int ok, vc_error *err);
// Removes the temporary file, frees w's strings.
void vc_wabort(vc_wfile *w);

// The same for code that holds only a FILE * (export_open/export_close):
FILE *vc_wopen_fp(const char *path, vc_error *err);
int vc_wclose_fp(FILE *fp, int ok, vc_error *err);   // commit (ok) or abort (!ok)
