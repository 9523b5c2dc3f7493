#!/usr/bin/python3
"""test_fashion: the embedded default model (models/fashion.safetensors) and `make data`.

Cases (one "ok   ..." or "FAIL ...: reason" line each; exit 1 on any failure):
  - the committed model loads in viscnn (info): >= 4 conv layers, 10 labels;
  - its accuracy computed by viscnn (`viscnn eval --idx`) on the 10,000
    Fashion-MNIST test images is >= 91%;
  - PyTorch (tools/fashion_accuracy.py, which reads the file itself) gets the
    same accuracy to 0.1 percentage points;
  - the file's training record (viscnn.train metadata) names the command and
    its last epoch's test accuracy equals viscnn eval's;
  - scripts/make-data.sh (what `make data` runs) writes 10 class folders
    named by the model's labels with 50 PNGs each, pixel for pixel the IDX
    test images; viscnn eval --images on them agrees with PyTorch on the same
    images, and viscnn predict on one PNG per class gives PyTorch's class;
  - a truncated IDX file is a one-line error (exit 2) naming the file.
Needs bin/viscnn (make), Debian's dataset-fashion-mnist, python3-torch,
python3-skimage and darknet (scripts/install-deps.sh).
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import vcio  # noqa: E402
import fashion_accuracy  # noqa: E402
from torch2viscnn import run_graph  # noqa: E402

VISCNN = os.path.join(ROOT, "bin", "viscnn")
MODEL = os.environ.get("FASHION_MODEL", os.path.join(ROOT, "models", "fashion.safetensors"))
DATASET = "/usr/share/datasets/fashion-mnist"
IMAGES = os.path.join(DATASET, "t10k-images-idx3-ubyte.gz")
LABELS = os.path.join(DATASET, "t10k-labels-idx1-ubyte.gz")
SCRATCH = os.path.join(ROOT, "build", "testdata", "fashion")

failed = 0


def report(name, ok, reason=""):
    global failed
    if ok:
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {reason}", flush=True)


def viscnn(*args):
    p = subprocess.run([VISCNN, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_png_gray(path):
    """The pixels of an 8-bit grayscale, non-interlaced PNG (filter types 0-4)."""
    raw = open(path, "rb").read()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", path
    o, idat, w = 8, b"", None
    while o < len(raw):
        (n,) = struct.unpack(">I", raw[o:o + 4])
        tag, data = raw[o + 4:o + 8], raw[o + 8:o + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and ctype == 0 and interlace == 0, f"{path}: not 8-bit gray"
        elif tag == b"IDAT":
            idat += data
        o += 12 + n
    rows = zlib.decompress(idat)
    out = np.zeros((h, w), np.int32)
    prev = np.zeros(w, np.int32)
    for r in range(h):
        f, line = rows[r * (w + 1)], np.frombuffer(rows[r * (w + 1) + 1:(r + 1) * (w + 1)], np.uint8).astype(np.int32)
        cur = np.zeros(w, np.int32)
        for c in range(w):
            a = cur[c - 1] if c else 0
            b, cc = prev[c], prev[c - 1] if c else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else cc
            cur[c] = (line[c] + pred) & 255
        out[r], prev = cur, cur
    return out.astype(np.uint8)


def torch_predict(graph, tensors, x8):
    pre = graph["preprocess"]
    v = x8.astype(np.float32) / np.float32(255.0)
    x = torch.from_numpy(((v - np.float32(pre["mean"][0])) / np.float32(pre["std"][0]))[:, None])
    params = {k: torch.from_numpy(t.copy()) for k, t in tensors.items()}
    with torch.no_grad():
        return run_graph(graph, params, x).reshape(len(x8), -1).argmax(1).numpy()


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    os.makedirs(SCRATCH, exist_ok=True)
    for need in (VISCNN, MODEL, IMAGES, LABELS):
        if not os.path.exists(need):
            report("fashion prerequisites", False, f"{need} is missing (make; scripts/install-deps.sh)")
            return 1

    graph, tensors = vcio.read_graph(MODEL)
    rc, out, err = viscnn("info", MODEL)
    convs = len(re.findall(r"\sconv2d\s", out))
    report("fashion model loads: >= 4 conv layers, 10 labels, dropout",
           rc == 0 and convs >= 4 and len(graph.get("labels", [])) == 10
           and any(n["op"] == "dropout" for n in graph["nodes"]),
           f"rc {rc}, {convs} conv layers, labels {graph.get('labels')} {err.strip()}")
    labels = graph["labels"]
    report("fashion labels are safe folder names",
           all(re.fullmatch(r"[a-z0-9_]+", s) for s in labels), f"labels {labels}")

    # Accuracy by viscnn on the whole test set.
    rc, out, err = viscnn("eval", MODEL, "--idx", IMAGES, "--labels", LABELS)
    m = re.search(r"accuracy ([0-9.]+)% \((\d+)/(\d+)\)", out)
    c_correct = int(m.group(2)) if m else -1
    c_acc = c_correct / 10000 if m else -1
    report("fashion accuracy by viscnn eval on 10,000 test images >= 91%",
           rc == 0 and m and int(m.group(3)) == 10000 and c_acc >= 0.91,
           f"rc {rc}, {out.strip().splitlines()[:1]} {err.strip()}")

    # The same file in PyTorch.
    r = fashion_accuracy.accuracy(MODEL, IMAGES, LABELS)
    report(f"fashion accuracy by PyTorch agrees to 0.1% (viscnn {100 * c_acc:.2f}%, torch {100 * r['accuracy']:.2f}%)",
           r["n"] == 10000 and abs(r["accuracy"] - c_acc) <= 0.001,
           f"viscnn {c_correct}/10000, torch {r['correct']}/10000")

    # The training record.
    _, meta = vcio.read_safetensors(MODEL)
    try:
        rec = json.loads(meta["viscnn.train"])
        last = rec["history"][-1]
        ok = rec["command"].startswith("viscnn train ") and abs(last["test_acc"] - c_acc) <= 0.001 and len(rec["history"]) == rec["epochs"]
        why = f"command {rec['command']!r}, last test_acc {last.get('test_acc')}, eval {c_acc}"
    except (KeyError, ValueError, IndexError) as e:
        ok, why = False, f"no usable viscnn.train metadata ({e})"
    report("fashion training record: command and final test accuracy", ok, why)

    # make data, into a scratch folder.
    data = os.path.join(SCRATCH, "data")
    shutil.rmtree(data, ignore_errors=True)
    p = subprocess.run([os.path.join(ROOT, "scripts", "make-data.sh"), data], capture_output=True, text=True)
    fdir = os.path.join(data, "fashion")
    folders = sorted(os.listdir(fdir)) if p.returncode == 0 and os.path.isdir(fdir) else []
    counts = {f: len([x for x in os.listdir(os.path.join(fdir, f)) if x.endswith(".png")]) for f in folders}
    photos = os.listdir(os.path.join(data, "photos")) if os.path.isdir(os.path.join(data, "photos")) else []
    report("make data: 10 class folders named by the labels, 50 PNGs each, photographs",
           p.returncode == 0 and folders == sorted(labels) and set(counts.values()) == {50} and len(photos) >= 10,
           f"rc {p.returncode} {p.stderr.strip()}; folders {counts}; {len(photos)} photos")
    if not folders:
        return 1

    x8 = fashion_accuracy.read_idx(IMAGES)
    y = fashion_accuracy.read_idx(LABELS)
    files = [(os.path.join(fdir, f, x), int(x[:-4]), labels.index(f)) for f in folders
             for x in sorted(os.listdir(os.path.join(fdir, f)))]
    bad = [path for path, i, k in files if y[i] != k or not np.array_equal(read_png_gray(path), x8[i])]
    report("make data: each PNG is its IDX test image, in its class's folder", not bad, f"{len(bad)} differ, e.g. {bad[:2]}")

    idx = np.array([i for _, i, _ in files])
    pred = torch_predict(graph, tensors, x8[idx])
    t_correct = int((pred == y[idx]).sum())
    rc, out, err = viscnn("eval", MODEL, "--images", fdir)
    m = re.search(r"\((\d+)/500\)", out)
    report(f"make data: viscnn eval --images agrees with PyTorch on the 500 PNGs ({t_correct}/500)",
           rc == 0 and m and abs(int(m.group(1)) - t_correct) <= 1,
           f"rc {rc}, viscnn {m.group(1) if m else out.strip()[:80]} {err.strip()}")
    one = [next(j for j, f in enumerate(files) if f[2] == k) for k in range(10)]
    rc, out, err = viscnn("predict", MODEL, *[files[j][0] for j in one], "--top", "1")
    got = [int(s) for s in re.findall(r"^\s+1\.\s+(\d+)\s", out, re.M)]
    want = [int(pred[j]) for j in one]
    report("make data: viscnn predict on one PNG per class gives PyTorch's classes",
           rc == 0 and got == want, f"rc {rc}, viscnn {got}, torch {want} {err.strip()}")

    # A truncated IDX file.
    trunc = os.path.join(SCRATCH, "t10k-images-truncated.gz")
    raw = open(IMAGES, "rb").read()
    open(trunc, "wb").write(raw[:len(raw) // 3])
    rc, out, err = viscnn("eval", MODEL, "--idx", trunc, "--labels", LABELS)
    report("eval bad: truncated IDX file -> exit 2, one line naming it",
           rc == 2 and err.count("\n") == 1 and trunc in err and "truncated" in err, f"rc {rc}, stderr {err!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
