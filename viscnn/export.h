// export.h: writing scores as JSON and CSV (formats of docs/formats.md).
#pragma once
#include <stdio.h>
#include "scores.h"

// The "layers" array: [{"name", "in_channels", "out_channels", "groups",
// "nodes": [C_out], "edges": [[C_in/groups] x C_out]}, ...]
void export_layers_json(FILE *f, const vc_model *m, const vc_scores *s);
// One float as JSON (non-finite -> null).
void export_float(FILE *f, double v);
// JSON string with escapes.
void export_string(FILE *f, const char *s);
// CSV rows kind,layer,out,in,score[,category] (category NULL: no column).
void export_scores_csv(FILE *f, const vc_model *m, const vc_scores *s, const char *category);

// Opens path.tmp for writing; export_close renames it over path on success
// and removes it on failure. Returns NULL with err set.
FILE *export_open(const char *path, vc_error *err);
int export_close(FILE *f, const char *path, int ok, vc_error *err);
