// image.h: images in and out — PNG (libpng) and JPEG (libjpeg-turbo) decoding,
// PIL-compatible bilinear resizing, and the model's preprocessing
// (torchvision's Resize(int) -> CenterCrop -> ToTensor -> Normalize).
//
// Images are float (C,H,W) planar, C = 1 (gray) or 3 (RGB), values in [0,1].
// The format is chosen by the file's magic bytes, never by its extension.
// EXIF orientation is ignored, as PIL.Image.open and torchvision ignore it.
//
// Errors: every function returns VC_OK or a VC_E* status. Anything wrong with
// the file (missing, unreadable, not PNG/JPEG, truncated, corrupt, zero or
// absurd size) is VC_EINPUT with a one-line message that starts with the path.
// Nothing is printed; libpng/libjpeg errors are caught (setjmp/longjmp).
#pragma once
#include "viscnn_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { IMAGE_MAX_SIDE = 30000 };    // larger sides are rejected as absurd

// Pixel budget: an image whose header declares more than this many pixels is
// refused before decoding (default 64 Mpx; the CLI's --max-pixels sets it).
// Process-wide; n <= 0 restores the default.
#define IMAGE_DEFAULT_MAX_PIXELS (64LL << 20)
void image_set_max_pixels(long long n);

typedef struct {
    int c, h, w;
    float *data;                    // data: (c,h,w), values in [0,1]
} vc_image;

// Decodes path into img (allocated here; free with image_free) with
// `channels` = 1 or 3 colour channels:
//   PNG: 1/2/4/8/16-bit gray, gray+alpha, palette, RGB, RGBA, interlaced;
//        alpha is dropped (not composited), as PIL's convert("RGB") does.
//        16-bit samples keep their precision (v / 65535).
//   JPEG: gray, YCbCr/RGB, CMYK/YCCK (Adobe-inverted CMYK as PIL reads it).
// Gray -> RGB replicates. RGB -> gray is PIL's convert("L") exactly for 8-bit
// data (ITU-R 601-2, L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e.
// R*299/1000 + G*587/1000 + B*114/1000 rounded), then / 255; 16-bit data uses
// the same weights in float.
// On failure img is left zeroed (data NULL).
int image_load(vc_image *img, const char *path, int channels, vc_error *err);

// Frees img->data and zeroes img. Safe on a zeroed image.
void image_free(vc_image *img);

// dst (allocated here): (src->c, h, w) resampled from src like PIL's
// Image.resize((w, h), Image.BILINEAR), which is what torchvision's Resize
// does to PIL images: separable (horizontal pass, then vertical), triangle
// filter whose support grows with the downscale factor (antialiased), pixel
// centres at (i + 0.5) * in/out, weights normalised per output pixel.
// PIL works on 8-bit data and rounds after each pass; this works in float, so
// on 8-bit inputs the two differ by about one 8-bit level (< 2/255).
// dst must not be src. Returns VC_EINPUT for sizes < 1, VC_EINTERNAL when out
// of memory; dst is zeroed on failure.
int image_resize(vc_image *dst, const vc_image *src, int h, int w);

// out: (pp->channels, out_h, out_w). Loads path with pp->channels, then
//   - pp->resize > 0: resizes the shorter side to pp->resize, the longer to
//     int(resize * long / short) (torchvision Resize(int));
//   - pp->crop > 0: centre-crops crop x crop (torchvision CenterCrop: top =
//     int(round((h - crop) / 2.0)) with Python's half-to-even round; a side
//     smaller than crop is zero-padded, (crop - h) // 2 before);
//   - neither: resizes straight to out_h x out_w;
// the result must be out_h x out_w (else VC_EINPUT naming path and both
// sizes); then out = (v - mean[c]) / std[c]. The file is decoded a row at a
// time straight into the resized size (loaders/resample.h): a large photo
// never exists at full size in float, only one of its rows does (interlaced
// PNGs are read whole first: their rows complete only in the last pass).
int image_preprocess(float *out, const char *path, const vc_preprocess *pp,
                     int out_h, int out_w, vc_error *err);

// Writes img (c = 1 gray or 3 RGB) as an 8-bit PNG: values clamped to [0,1]
// (NaN -> 0), scaled by 255 and rounded, so a loaded 8-bit image round-trips
// exactly. Writes path.tmp, then renames it to path (no partial file is left).
int image_save_png(const char *path, const vc_image *img, vc_error *err);

#ifdef __cplusplus
}
#endif
