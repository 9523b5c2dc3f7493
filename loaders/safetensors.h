// safetensors.h: the .safetensors container (read and write).
// Layout: u64 little-endian header length, JSON header
// {"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets": [b, e]}},
// then the raw little-endian tensor bytes; offsets are relative to the data start.
#pragma once
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "viscnn_internal.h"

typedef struct {
    char *name;
    char dtype[8];
    int rank;
    int64_t dim[8];
    size_t begin, end;        // byte offsets into the data section
} st_tensor;

typedef struct {
    const char *path;
    unsigned char *buf;       // whole file
    size_t size;
    const unsigned char *data;// start of the data section
    size_t data_size;
    int n;
    st_tensor *t;
    int n_meta;
    char **meta_key, **meta_val;
} st_file;

int st_read(st_file *f, const char *path, vc_error *err);
// The same from size bytes at data (copied); name stands for the path in messages.
int st_read_memory(st_file *f, const void *data, size_t size, const char *name, vc_error *err);
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);

typedef struct {
    const char *name;
    int rank;
    const int *dim;
    const float *data;
} st_out;
// The same into an open stream; returns 1 if every write succeeded.
int st_write_fp(FILE *fp, int n, const st_out *t, int n_meta, const char *const *keys, const char *const *vals);
// Writes F32 tensors and string metadata to path (loaders/atomic_write.c: a
// unique temporary beside it, fsync, rename).
int st_write(const char *path, int n, const st_out *t, int n_meta,
             const char *const *keys, const char *const *vals, vc_error *err);
