#!/usr/bin/python3
"""fashion_accuracy: the test accuracy of a viscnn model file, computed by PyTorch.

    /usr/bin/python3 tools/fashion_accuracy.py MODEL.safetensors
        [--images IMAGES-idx3-ubyte.gz --labels LABELS-idx1-ubyte.gz]
        [--limit N] [--json]

Reads the model file with tools/vcio.py (standard library + numpy), runs its
graph with PyTorch's functional ops (tools/torch2viscnn.py's run_graph, eval
mode: dropout is the identity) on IDX images (by default the 10,000
Fashion-MNIST test images of Debian's dataset-fashion-mnist), preprocessed
as the model's metadata says: v = u8 / 255, then (v - mean) / std, no resize.
Prints "accuracy P% (CORRECT/N)" and the accuracy of each class; --json
prints {"accuracy", "correct", "n", "per_class"} instead.

Nothing here comes from viscnn's C code, so the C engine's accuracy on the
same file (viscnn eval) can be checked against it.
Exit status: 0 success, 2 bad input (one-line reason).
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vcio  # noqa: E402
from torch2viscnn import run_graph  # noqa: E402

DATASET = "/usr/share/datasets/fashion-mnist"
PROG = "fashion_accuracy"


def read_idx(path):
    """An IDX file (gzip or plain) of unsigned bytes -> numpy array."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    n = int(np.prod(dims))
    data = np.frombuffer(raw, np.uint8, count=n, offset=4 + 4 * nd)
    if len(raw) != 4 + 4 * nd + n:
        raise ValueError(f"{path}: {len(raw) - 4 - 4 * nd} data bytes for shape {dims}")
    return data.reshape(dims)


def accuracy(model_path, images, labels, limit=0, batch=1000):
    graph, tensors = vcio.read_graph(model_path)
    x8 = read_idx(images)
    y = read_idx(labels).astype(np.int64)
    if limit:
        x8, y = x8[:limit], y[:limit]
    c, h, w = graph["input"]["shape"]
    if x8.ndim != 3 or (c, h, w) != (1,) + x8.shape[1:]:
        raise ValueError(f"{images}: images of shape {x8.shape[1:]}, the model takes {(c, h, w)}")
    if len(y) != len(x8):
        raise ValueError(f"{labels}: {len(y)} labels for {len(x8)} images")
    pre = graph.get("preprocess", {})
    mean = np.float32(pre.get("mean", [0.0])[0])
    std = np.float32(pre.get("std", [1.0])[0])
    params = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    pred = []
    with torch.no_grad():
        for b in range(0, len(x8), batch):
            v = x8[b:b + batch].astype(np.float32) / np.float32(255.0)
            x = torch.from_numpy(((v - mean) / std)[:, None])
            pred.append(run_graph(graph, params, x).reshape(len(v), -1).argmax(1).numpy())
    pred = np.concatenate(pred)
    labels_k = graph.get("labels") or [str(k) for k in range(int(pred.max()) + 1)]
    per_class = {}
    for k, name in enumerate(labels_k):
        m = y == k
        if m.any():
            per_class[name] = float((pred[m] == k).mean())
    correct = int((pred == y).sum())
    return {"accuracy": correct / len(y), "correct": correct, "n": int(len(y)), "per_class": per_class}


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--images", default=os.path.join(DATASET, "t10k-images-idx3-ubyte.gz"))
    p.add_argument("--labels", default=os.path.join(DATASET, "t10k-labels-idx1-ubyte.gz"))
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    try:
        r = accuracy(a.model, a.images, a.labels, a.limit)
    except (OSError, ValueError, KeyError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r))
    else:
        print(f"accuracy {100 * r['accuracy']:.2f}% ({r['correct']}/{r['n']})")
        for name, acc in r["per_class"].items():
            print(f"  {name:<24} {100 * acc:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
