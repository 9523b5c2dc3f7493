"""image_oracle.py: PIL / torchvision reference outputs for tests/test_image.c.

Run as /usr/bin/python3 tests/image_oracle.py JOB... ; each JOB writes one file:
  rgb:IN:OUT                 PIL Image.open(IN).convert("RGB"), / 255
  l:IN:OUT                   PIL Image.open(IN).convert("L"), / 255
  resize:IN:H:W:OUT          convert("RGB").resize((W, H), Image.BILINEAR), / 255
  tv:IN:RESIZE:CROP:CH:OUT   convert("RGB" if CH == 3 else "L"), then torchvision
                             Resize(RESIZE) (an int, or HxW for a fixed size;
                             0 = none), CenterCrop(CROP) (0 = none), ToTensor,
                             Normalize(MEAN, STD) with the constants below
OUT format: int32 c, h, w, then float32 (c, h, w) planar, little-endian.
Exits non-zero (with the reason on stderr) if PIL, numpy or torchvision is
missing: the C test then fails the dependent cases rather than skipping them.
"""
import sys
import warnings

import numpy as np
from PIL import Image

# Keep in sync with tests/test_image.c.
MEAN = {3: [0.485, 0.456, 0.406], 1: [0.5]}
STD = {3: [0.229, 0.224, 0.225], 1: [0.25]}


def save(path, a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[2] in (1, 3) and a.shape[0] not in (1, 3):
        a = a.transpose(2, 0, 1)       # HWC -> CHW
    with open(path, "wb") as f:
        np.array(a.shape, dtype="<i4").tofile(f)
        np.ascontiguousarray(a, dtype="<f4").tofile(f)


def u8(im):
    a = np.asarray(im, dtype=np.float32) / np.float32(255)
    return a.transpose(2, 0, 1) if a.ndim == 3 else a[None]


def main(jobs):
    warnings.simplefilter("ignore")     # PIL's palette-transparency notice etc.
    for job in jobs:
        kind, *args = job.split(":")
        if kind == "rgb":
            src, out = args
            save(out, u8(Image.open(src).convert("RGB")))
        elif kind == "l":
            src, out = args
            save(out, u8(Image.open(src).convert("L")))
        elif kind == "resize":
            src, h, w, out = args
            im = Image.open(src).convert("RGB").resize((int(w), int(h)), Image.BILINEAR)
            save(out, u8(im))
        elif kind == "tv":
            import torchvision.transforms as T
            src, resize, crop, ch, out = args
            ch = int(ch)
            tf = []
            if "x" in resize:
                tf.append(T.Resize(tuple(int(v) for v in resize.split("x"))))
            elif int(resize) > 0:
                tf.append(T.Resize(int(resize)))
            if int(crop) > 0:
                tf.append(T.CenterCrop(int(crop)))
            tf += [T.ToTensor(), T.Normalize(MEAN[ch], STD[ch])]
            im = Image.open(src).convert("RGB" if ch == 3 else "L")
            save(out, T.Compose(tf)(im).numpy())
        else:
            sys.exit(f"image_oracle.py: unknown job {job!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
