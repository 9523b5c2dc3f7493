// picture.h: PNG pictures the CLI writes where a reader would rather look
// than read: contact sheets of maps and a receptive field on its image.
#pragma once
#include "viscnn.h"

// maps: (rows, cols, h, w) as a grid of cells, each map enlarged by an
// integer factor, on a diverging colour map centred at 0 (blue negative,
// white 0, red positive; symmetric, scaled to the largest |value|), with a
// scale bar labelled -M, 0, +M underneath. Fails (VC_EINPUT) when the sheet
// would exceed 8192 pixels a side.
int picture_sheet(const char *path, const float *maps, int rows, int cols, int h, int w, vc_error *err);
// The preprocessed image x: (C, H, W) (C = 1 or 3), un-normalised with the
// model's mean and std, enlarged, with the pixels outside box dimmed and a
// red frame around box {y0, x0, y1, x1} (inclusive input-pixel bounds, already
// clipped; empty when y1 < y0 or x1 < x0). mean, std: the model's, per channel.
int picture_rf(const char *path, const float *x, int c, int h, int w, const float *mean, const float *std, const int *box,
               vc_error *err);
