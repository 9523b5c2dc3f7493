// zip.h: reading a zip archive held in memory, the container torch.save has
// written since PyTorch 1.6 (PKZIP APPNOTE 6.3: end-of-central-directory,
// zip64 locator and record, central directory, local headers). Entries may
// be STORED (what torch writes) or DEFLATEd; no encryption, no multi-disk.
// zip_open checks every offset and size against the buffer, so that after it
// succeeds an entry's bytes lie inside the buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "viscnn_internal.h"

typedef struct {
    char *name;
    uint64_t data;            // offset of the entry's (compressed) bytes in the buffer
    uint64_t csize, usize;    // compressed and uncompressed sizes
    uint32_t crc;
    int method;               // 0 stored, 8 deflate
} zip_entry;

typedef struct {
    const char *path;         // for messages
    const unsigned char *buf; // the whole file (not owned)
    size_t size;
    int n;
    zip_entry *e;
    int zip64;                // the archive has a zip64 end of central directory
} zip_archive;

// True when buf starts like a zip archive (a local file header).
int zip_is_zip(const unsigned char *buf, size_t size);
int zip_open(zip_archive *z, const char *path, const unsigned char *buf, size_t size, vc_error *err);
void zip_close(zip_archive *z);
const zip_entry *zip_find(const zip_archive *z, const char *name);
// An entry's contents, CRC checked: a pointer into the buffer for a STORED
// entry (*owned = NULL), else a malloc'd copy that *owned also points to.
int zip_read(const zip_archive *z, const zip_entry *e, const unsigned char **data, unsigned char **owned,
             vc_error *err);
