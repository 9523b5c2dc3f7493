// arch.h: built-in architectures, and turning a plain PyTorch state dict
// (.pth, loaders/pth.h) into a viscnn model file with one of them.
//
// A template is models/arch/NAME.json (written by tools/arch_template.py):
// the viscnn.graph of the architecture (docs/model-format.md) plus
// "param_shapes": {state-dict key: shape}. Every models/arch/*.json is
// embedded at build time (scripts/embed_arch.sh -> build/gen/arch_templates.c),
// so a new file there is a new --arch name after `make`.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

typedef struct {
    const char *name;         // file name without .json
    const char *json;         // NUL-terminated
    size_t len;
} vc_arch_template;
extern const vc_arch_template vc_arch_templates[];   // ends with {0}
extern const int vc_n_arch_templates;

// The built-in template called name, or NULL.
const vc_arch_template *vc_arch_find(const char *name);
// "alexnet, googlenet, ..." (or "none") into buf.
void vc_arch_list(char *buf, size_t n);

typedef struct {
    int legacy;               // the checkpoint was in the legacy (pre-1.6) format
    const char *nested;       // the state dict sat under this key ("state_dict"), or NULL
    int stripped_module;      // a "module." prefix was removed from every key
    int n_written;            // tensors written
    size_t n_values;          // floats written
    int n_ignored;            // tensors the architecture does not use (num_batches_tracked not counted)
    char ignored_example[128];
} vc_convert_info;

// Reads the state dict in pth (zip or legacy), fits it to arch (a built-in
// name, or the path of a template .json) and writes the model to out. Every
// tensor the graph names must be present, float32 and of the template's
// shape; out is written through a temporary file and loaded back (all of
// vc_model_load's checks) before it takes its name.
int vc_convert_pth(const char *pth, const char *arch, const char *out, vc_convert_info *info, vc_error *err);
