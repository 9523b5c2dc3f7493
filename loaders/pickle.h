// pickle.h: a pickle reader for PyTorch state dicts that never executes
// anything. It is a small stack machine over the opcodes torch.save emits
// (protocol 2, plus the few protocol 4 ones a re-saved file may use); every
// other opcode is refused. GLOBAL may name only
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2,
//   torch._utils._rebuild_tensor, torch._utils._rebuild_parameter and the
//   typed storages torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,
//   Byte,Bool}Storage;
// anything else (os.system, builtins.eval, a model class) is refused with
// the name in the message. REDUCE "calls" those builders symbolically: an
// empty dict, or a tensor record (storage, offset, shape, stride). BUILD is
// accepted only on a dict (the state dict's _metadata, ignored).
// Persistent ids (BINPERSID) go to a callback that returns a storage object.
// Objects live in the VM's arena until pk_vm_free.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "viscnn_internal.h"

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL,       // a whitelisted callable or storage type (i: pk_global)
    PK_STORAGE,      // what the persistent-id callback returned (i: its storage index)
    PK_TENSOR,       // a rebuilt tensor record
} pk_type;

// Element types of torch's typed storages.
typedef enum {
    PK_F32, PK_F64, PK_F16, PK_BF16, PK_I64, PK_I32, PK_I16, PK_I8, PK_U8, PK_BOOLT, PK_DTYPE_COUNT
} pk_dtype;
extern const char *const pk_dtype_names[PK_DTYPE_COUNT];     // "float32", ...
extern const char *const pk_storage_names[PK_DTYPE_COUNT];   // "FloatStorage", ...
extern const int pk_dtype_size[PK_DTYPE_COUNT];

typedef enum {
    PK_G_ORDERED_DICT, PK_G_REBUILD_TENSOR_V2, PK_G_REBUILD_TENSOR, PK_G_REBUILD_PARAMETER,
    PK_G_STORAGE,    // + dtype
} pk_global;

enum { PK_MAX_RANK = 8 };

typedef struct {
    int storage;              // index returned by the persistent-id callback
    pk_dtype dtype;
    int rank;
    int64_t dim[PK_MAX_RANK], stride[PK_MAX_RANK];
    int64_t offset;           // in elements
} pk_tensor;

typedef struct pk_obj pk_obj;
struct pk_obj {
    pk_type t;
    int64_t i;                // BOOL, INT; GLOBAL: pk_global (+ dtype); STORAGE: index
    double f;                 // FLOAT
    char *s;                  // STR (NUL-terminated; len bytes)
    size_t len;
    pk_obj **items;           // TUPLE, LIST: n items; DICT: n (key, value) pairs as 2n items
    size_t n, cap;
    pk_dtype dtype;           // STORAGE
    pk_tensor *tensor;        // TENSOR
};

typedef struct pk_vm pk_vm;
// The persistent-id callback: pid is the object BINPERSID popped; *out must
// be set to a PK_STORAGE object (pk_new_storage) or an error returned.
typedef int (*pk_persistent_fn)(void *ctx, pk_vm *vm, pk_obj *pid, pk_obj **out, vc_error *err);

pk_vm *pk_vm_new(const char *path, pk_persistent_fn fn, void *ctx);
void pk_vm_free(pk_vm *vm);
// Runs one pickle from buf up to its STOP; *used is the number of bytes it
// took (a legacy checkpoint is several pickles in a row).
int pk_load(pk_vm *vm, const unsigned char *buf, size_t size, size_t *used, pk_obj **result, vc_error *err);
pk_obj *pk_new_storage(pk_vm *vm, int index, pk_dtype dtype);

// "None", "int", "dict", "tensor", ... for messages.
const char *pk_type_name(const pk_obj *o);
// Dict lookup by string key (the last one wins, as in Python), or NULL.
pk_obj *pk_dict_get(const pk_obj *d, const char *key);
