// dataset.h: image sets on disk. PATH is one image file, a folder of images,
// or a folder of class subfolders (each subfolder a category). Images are
// .png/.jpg/.jpeg (any case); names are sorted, so order is deterministic.
#pragma once
#include "viscnn_internal.h"

typedef struct {
    int n;
    char **paths;
    int *cat;                 // category of each image (0 for a flat set)
    int n_cat;
    char **cat_names;         // folder names; a flat set has one category named after PATH's last component
    int by_folder;            // 1 when the categories are class subfolders (or a list file's labels)
    int from_list;            // 1 for a list file (dataset_open_list)
    // What a class-folder set leaves out, for warnings (counts; the first
    // path of each, malloc'd): images beside the class folders, folders
    // inside class folders (not read), class folders with no images.
    int n_beside, n_nested, n_empty;
    char *beside_first, *nested_first, *empty_first;
} vc_dataset;

int dataset_open(vc_dataset *d, const char *path, vc_error *err);
// PATH ending in .txt (a file): a list of images, one per line with an
// optional label (loaders/imagelist.c); dataset_open calls it.
int dataset_open_list(vc_dataset *d, const char *path, vc_error *err);
void dataset_free(vc_dataset *d);
// Whether two names are equal ignoring case, with ' ', '_' and '-' alike
// ("Ankle boot" = "ankle_boot" = "ANKLE-BOOT").
int dataset_name_eq(const char *a, const char *b);
// The model label matching name (exactly, else by dataset_name_eq), or -1.
int dataset_find_label(const vc_model *m, const char *name);
// Label for a category: the index of a model label matching the folder name,
// or the folder name as an integer in [0, n_labels or K); else -1 (argmax).
int dataset_label(const vc_dataset *d, int cat, const vc_model *m);
