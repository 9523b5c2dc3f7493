// picture.h: PNG pictures the CLI writes where a reader would rather look
// than read: contact sheets of maps and a receptive field on its image.
#pragma once
#include "viscnn_internal.h"
#include "../rf.h"

// maps: (rows, cols, h, w) as a grid of cells, each map enlarged by an
// integer factor, on a diverging colour map centred at 0 (blue negative,
// white 0, red positive; symmetric, scaled to the largest |value|), with a
// scale bar labelled -M, 0, +M underneath. Fails (VC_EINPUT) when the sheet
// would exceed 8192 pixels a side.
int picture_sheet(const char *path, const float *maps, int rows, int cols, int h, int w, vc_error *err);
// The preprocessed image x: (C, H, W) (C = 1 or 3), un-normalised with the
// model's mean and std, enlarged, with the pixels outside box dimmed and a
// red frame around box (inclusive input-pixel bounds, already clipped).
int picture_rf(const char *path, const float *x, int c, int h, int w, const vc_preprocess *pre, vc_box box, vc_error *err);
