// pth.h: PyTorch checkpoints (torch.save of a state dict) read natively,
// without Python, and without executing anything.
//
// Two containers:
// - zip (torch >= 1.6): "<archive>/data.pkl" is the pickled state dict,
//   whose persistent ids ('storage', torch.XStorage, KEY, location, numel)
//   name the raw little-endian entries "<archive>/data/KEY" (zip.h).
// - legacy (torch.save(..., _use_new_zipfile_serialization=False), and the
//   older published torchvision checkpoints): five pickles in a row (magic
//   number 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info, the state
//   dict, the list of storage keys), then for each key in that list an 8-byte
//   little-endian element count and the raw data. Persistent ids carry a
//   sixth item, None or a view (KEY, offset, size) into the root storage.
// The pickles go through the restricted machine of pickle.h. The state dict
// may be the top-level dict or nested under "state_dict" (or "model"); a
// "module." prefix on every key (DataParallel) is removed. Every offset,
// size and stride is checked against the file before anything is read.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "viscnn_internal.h"
#include "pickle.h"
#include "zip.h"

typedef struct {
    char *name;               // state-dict key
    pk_dtype dtype;
    int rank;
    int64_t dim[PK_MAX_RANK], stride[PK_MAX_RANK];
    int64_t offset;           // elements into its storage
    int storage;              // index into pth_file.storages
    size_t numel;
} pth_tensor;

typedef struct {
    char *key;
    pk_dtype dtype;
    int64_t numel;
    int root;                 // legacy views: the storage whose data this is a slice of (else itself)
    int64_t view_offset;      // elements into the root
    const zip_entry *entry;   // zip: the entry holding the data
    const unsigned char *bytes; // the data once resolved (root storages)
    unsigned char *owned;     // an inflated copy, if the entry was compressed
} pth_storage;

typedef struct {
    char *path;
    int legacy;               // 0 zip, 1 legacy
    const char *nested;       // "state_dict" / "model" when the dict was nested, else NULL
    int stripped_module;      // a "module." prefix was removed from every key
    int n;                    // tensors, in file order
    pth_tensor *t;
    int n_other;              // values that are not tensors (skipped)
    int n_storages, cap_storages;
    pth_storage *storages;
    // internals
    unsigned char *map;       // mmap'd file (pth_read) or NULL (pth_read_mem)
    const unsigned char *buf;
    size_t size;
    zip_archive zip;
    char *prefix;             // "<archive>/" of the zip entries
    int *keys;                // hash of storage keys -> index (size n_keys, -1 empty)
    size_t n_keys;
    int *names;               // hash of tensor names -> index (last wins)
    size_t n_names;
} pth_file;

int pth_read(pth_file *f, const char *path, vc_error *err);
// The same from a buffer the caller keeps alive until pth_free.
int pth_read_mem(pth_file *f, const char *path, const unsigned char *buf, size_t size, vc_error *err);
void pth_free(pth_file *f);
// The tensor with this key, or NULL.
const pth_tensor *pth_find(const pth_file *f, const char *name);
// The tensor's values as contiguous row-major float32: *data points into the
// file where it can, else into a malloc'd copy that *owned also points to.
// Fails (VC_EINPUT) unless the tensor is float32.
int pth_float32(pth_file *f, const pth_tensor *t, const float **data, float **owned, vc_error *err);
// A key or name from a file, made safe to print on one line (at most 79
// characters, non-printable bytes as '?'). Returns out.
const char *pth_shown(char out[80], const char *s);
