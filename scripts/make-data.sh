#!/bin/sh
# make-data.sh [OUT]: the small image sets the demos, the tests and the GUI use
# (`make data`; OUT defaults to data/, which is not committed).
#
#   OUT/fashion/<label>/NNNNN.png  the first PER_CLASS (50) Fashion-MNIST test
#       images of each class, 28x28 8-bit grayscale, white on black exactly as
#       in the IDX file; NNNNN is the image's index in t10k-images. The folder
#       names are the labels of the default model (models/arch/fashion.json),
#       so `viscnn importance/eval --images OUT/fashion` gets the classes.
#   OUT/fashion-heldout/<label>/NNNNN.png  the next PER_CLASS test images of
#       each class, the same way: held-out images for `viscnn circuit
#       --eval-images` (faithfulness on images the scores did not come from).
#   OUT/photos/  real photographs from Debian packages: python3-skimage's data
#       folder (skimage-NAME.png/jpg) and darknet's (darknet-NAME.jpg).
#
# Needs dataset-fashion-mnist, python3-skimage and darknet (scripts/install-deps.sh)
# and only the Python standard library. Each folder is written beside its
# final name and renamed into place, so a failed run leaves the old one.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-data}
FASHION=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
PER_CLASS=${PER_CLASS:-50}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for f in t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    if [ ! -f "$FASHION/$f" ]; then
        echo "make-data: $FASHION/$f is missing (Debian package dataset-fashion-mnist: run scripts/install-deps.sh)" >&2
        exit 2
    fi
done
SKIMAGE=$($PY -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))' 2>/dev/null) || SKIMAGE=
DARKNET=/usr/share/darknet/data
if [ -z "$SKIMAGE" ] || [ ! -d "$SKIMAGE" ]; then
    echo "make-data: python3-skimage's data folder was not found (run scripts/install-deps.sh)" >&2
    exit 2
fi
if [ ! -d "$DARKNET" ]; then
    echo "make-data: $DARKNET is missing (Debian package darknet: run scripts/install-deps.sh)" >&2
    exit 2
fi
mkdir -p "$OUT"

# ---- Fashion-MNIST test images as PNGs in class folders ----
rm -rf "$OUT/fashion.part" "$OUT/fashion-heldout.part"
$PY - "$FASHION" "$OUT/fashion.part" "$PER_CLASS" models/arch/fashion.json "$OUT/fashion-heldout.part" <<'EOF'
import gzip, json, os, struct, sys, zlib

src, out, per_class, arch, heldout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
labels = json.load(open(arch))["labels"]

def idx(path):
    raw = gzip.open(path).read()
    if raw[:3] != b"\x00\x00\x08":
        sys.exit(f"make-data: {path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return dims, raw[4 + 4 * nd:]

def png_gray(path, w, h, pixels):
    """8-bit grayscale PNG, no filter, written with zlib alone."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[r * w:(r + 1) * w] for r in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))

(n, h, w), pix = idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
(nl,), lab = idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))
if nl != n or len(pix) != n * h * w or len(lab) != n:
    sys.exit("make-data: Fashion-MNIST test images and labels disagree")
for name in labels:
    os.makedirs(os.path.join(out, name))
    os.makedirs(os.path.join(heldout, name))
count = [0] * len(labels)
for i in range(n):
    k = lab[i]
    if count[k] < 2 * per_class:
        folder = out if count[k] < per_class else heldout
        png_gray(os.path.join(folder, labels[k], f"{i:05d}.png"), w, h, pix[i * h * w:(i + 1) * h * w])
        count[k] += 1
print(f"make-data: {sum(count)} Fashion-MNIST test images in {len(labels)} class folders (half of them in fashion-heldout)")
EOF
rm -rf "$OUT/fashion" "$OUT/fashion-heldout"
mv "$OUT/fashion.part" "$OUT/fashion"
mv "$OUT/fashion-heldout.part" "$OUT/fashion-heldout"

# ---- photographs ----
rm -rf "$OUT/photos.part"
mkdir -p "$OUT/photos.part"
n=0
for f in astronaut.png camera.png chelsea.png coffee.png coins.png hubble_deep_field.jpg ihc.png moon.png \
         motorcycle_left.png retina.jpg rocket.jpg brick.png grass.png gravel.png; do
    if [ -f "$SKIMAGE/$f" ]; then cp "$SKIMAGE/$f" "$OUT/photos.part/skimage-$f"; n=$((n + 1)); fi
done
for f in dog.jpg eagle.jpg giraffe.jpg horses.jpg kite.jpg person.jpg; do
    if [ -f "$DARKNET/$f" ]; then cp "$DARKNET/$f" "$OUT/photos.part/darknet-$f"; n=$((n + 1)); fi
done
rm -rf "$OUT/photos"
mv "$OUT/photos.part" "$OUT/photos"
echo "make-data: $n photographs in $OUT/photos"
