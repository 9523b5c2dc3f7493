#!/usr/bin/python3
"""Tests of tools/torch2viscnn.py (the PyTorch -> viscnn model converter).

    /usr/bin/python3 tests/test_converter.py

Converts the six torchvision models at seed 0, a small user module that uses
every supported op, and a few unsupported modules; checks the files against
docs/model-format.md with checks written independently of the converter
(safetensors layout, topological order, unique names, known ops, parameter
shapes against the attributes via shape inference, labels).  Prints one line
per case, "ok   <case>" or "FAIL <case>: reason"; exits 1 if any failed.
"""

import glob
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import vcio  # noqa: E402

PYTHON = "/usr/bin/python3"
CONVERTER = os.path.join(ROOT, "tools", "torch2viscnn.py")
TORCHVISION = ["alexnet", "vgg11", "vgg16", "resnet18", "googlenet", "squeezenet1_1"]

# op -> (min inputs, max inputs or None, allowed params, attrs)
OPS = {
    "conv2d": (1, 1, {"weight", "bias"}, {"kernel", "stride", "padding", "dilation", "groups"}),
    "linear": (1, 1, {"weight", "bias"}, set()),
    "relu": (1, 1, set(), set()),
    "maxpool2d": (1, 1, set(), {"kernel", "stride", "padding", "dilation", "ceil_mode"}),
    "avgpool2d": (1, 1, set(), {"kernel", "stride", "padding", "ceil_mode",
                                "count_include_pad", "divisor_override"}),
    "adaptive_avgpool2d": (1, 1, set(), {"output"}),
    "batchnorm2d": (1, 1, {"weight", "bias", "running_mean", "running_var"}, {"eps"}),
    "lrn": (1, 1, set(), {"size", "alpha", "beta", "k"}),
    "concat": (1, None, set(), set()),
    "add": (2, 2, set(), set()),
    "flatten": (1, 1, set(), set()),
    "dropout": (1, 1, set(), {"p"}),
    "log_softmax": (1, 1, set(), set()),
}
PAIR_ATTRS = {"kernel", "stride", "padding", "dilation", "output"}
BOOL_ATTRS = {"ceil_mode", "count_include_pad"}


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------------------
# File-level checks

def check_layout(path):
    """The raw safetensors layout, independently of vcio."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        check(n % 8 == 0, f"header length {n} is not a multiple of 8")
        header = json.loads(f.read(n).decode("utf-8"))
    check(list(header)[0] == "__metadata__", "__metadata__ is not first")
    meta = header.pop("__metadata__")
    check(all(isinstance(v, str) for v in meta.values()), "non-string metadata")
    check(isinstance(meta.get("viscnn.graph"), str), "no viscnn.graph string")
    offset = 0
    for name, info in header.items():
        check(set(info) == {"dtype", "shape", "data_offsets"}, f"{name}: header keys {set(info)}")
        check(info["dtype"] == "F32", f"{name}: dtype {info['dtype']}")
        b, e = info["data_offsets"]
        check(b == offset and e - b == 4 * math.prod(info["shape"]),
              f"{name}: data_offsets {info['data_offsets']} not contiguous")
        offset = e
    check(8 + n + offset == size, "data does not end at the end of the file")


def conv_out(h, k, s, p, d, ceil):
    span = h + 2 * p - d * (k - 1) - 1
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= h + p:
        o -= 1
    return o


def check_graph(path):
    """Checks of docs/model-format.md; returns (graph, tensors, shapes)."""
    check_layout(path)
    tensors, meta = vcio.read_safetensors(path)
    g = json.loads(meta["viscnn.graph"])
    check(g.get("format") == "viscnn.graph" and g.get("version") == 1, "format/version")
    for key in ("name", "input", "preprocess", "output", "nodes"):
        check(key in g, f"graph lacks {key!r}")
    pre = g["preprocess"]
    c_in = g["input"]["shape"][0]
    check(pre["channels"] == c_in and len(pre["mean"]) == c_in and len(pre["std"]) == c_in,
          "preprocess disagrees with the input channels")
    check(("resize" in pre) == ("crop" in pre), "resize without crop")
    shapes = {g["input"]["name"]: tuple(g["input"]["shape"])}  # without N
    used = set()
    for node in g["nodes"]:
        name, op = node["name"], node["op"]
        check(name not in shapes, f"duplicate or reserved name {name!r}")
        check(op in OPS, f"{name}: unknown op {op!r}")
        lo, hi, allowed_params, want_attrs = OPS[op]
        ins = node["inputs"]
        check(len(ins) >= lo and (hi is None or len(ins) <= hi), f"{name}: {len(ins)} inputs")
        for i in ins:
            check(i in shapes, f"{name}: input {i!r} not defined before it")
        params = node.get("params", {})
        attrs = node.get("attrs", {})
        check(set(params) <= allowed_params, f"{name}: params {set(params)}")
        check(set(attrs) == want_attrs, f"{name}: attrs {set(attrs)} != {want_attrs}")
        for a, v in attrs.items():
            if a in PAIR_ATTRS:
                check(isinstance(v, list) and len(v) == 2 and
                      all(type(x) is int for x in v), f"{name}: {a}={v!r}")
            if a in BOOL_ATTRS:
                check(type(v) is bool, f"{name}: {a}={v!r} is not a bool")
        for key in params.values():
            check(key in tensors, f"{name}: missing parameter {key!r}")
            used.add(key)
        P = {k: tuple(tensors[v].shape) for k, v in params.items()}
        x = shapes[ins[0]]
        if op in ("conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d",
                  "batchnorm2d", "lrn"):
            check(len(x) == 3, f"{name}: input {x} is not (C,H,W)")
        if op == "conv2d":
            k, s, p, d, grp = (attrs[a] for a in ("kernel", "stride", "padding", "dilation", "groups"))
            w = P["weight"]
            check(len(w) == 4 and x[0] % grp == 0 and w[0] % grp == 0 and
                  w[1] == x[0] // grp and list(w[2:]) == k,
                  f"{name}: weight {w} vs input {x}, attrs {attrs}")
            check(P.get("bias", (w[0],)) == (w[0],), f"{name}: bias {P.get('bias')}")
            y = (w[0],) + tuple(conv_out(x[i + 1], k[i], s[i], p[i], d[i], False) for i in range(2))
        elif op == "linear":
            w = P["weight"]
            check(len(x) == 1 and len(w) == 2 and w[1] == x[0], f"{name}: weight {w} vs input {x}")
            check(P.get("bias", (w[0],)) == (w[0],), f"{name}: bias")
            y = (w[0],)
        elif op in ("maxpool2d", "avgpool2d"):
            k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
            d = attrs.get("dilation", [1, 1])
            check(all(p[i] <= k[i] // 2 for i in range(2)), f"{name}: padding > kernel/2")
            y = (x[0],) + tuple(conv_out(x[i + 1], k[i], s[i], p[i], d[i], attrs["ceil_mode"])
                                for i in range(2))
        elif op == "adaptive_avgpool2d":
            y = (x[0],) + tuple(attrs["output"])
        elif op == "batchnorm2d":
            check("running_mean" in P and "running_var" in P and
                  ("weight" in P) == ("bias" in P), f"{name}: params {set(P)}")
            check(all(v == (x[0],) for v in P.values()), f"{name}: params {P} vs C={x[0]}")
            y = x
        elif op == "concat":
            xs = [shapes[i] for i in ins]
            check(all(len(v) == len(x) and v[1:] == x[1:] for v in xs), f"{name}: inputs {xs}")
            y = (sum(v[0] for v in xs),) + x[1:]
        elif op == "add":
            check(shapes[ins[1]] == x, f"{name}: add of {x} and {shapes[ins[1]]}")
            y = x
        elif op == "flatten":
            y = (math.prod(x),)
        elif op == "log_softmax":
            check(len(x) == 1, f"{name}: input {x} is not (K,)")
            y = x
        else:
            y = x
        check(min(y) > 0, f"{name}: empty output {y}")
        shapes[name] = y
    check(g["output"] in shapes and g["output"] != g["input"]["name"], "bad output")
    check(used == set(tensors), f"unused tensors in the file: {sorted(set(tensors) - used)[:3]}")
    check(not any(k.endswith("num_batches_tracked") for k in tensors), "num_batches_tracked")
    if "labels" in g:
        out = shapes[g["output"]]
        check(len(out) == 1 and len(g["labels"]) == out[0], "labels length != output width")
    return g, tensors, shapes


def convert(args):
    return subprocess.run([PYTHON, CONVERTER] + args, capture_output=True, text=True)


# ---------------------------------------------------------------------------
# Cases

RESNET_BLOCK = ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2",
                "layer1.0.bn2", "layer1.0.add", "layer1.0.relu#2"]
INCEPTION3A_CAT = ("inception3a.cat", ["inception3a.branch1.relu", "inception3a.branch2.1.relu",
                                       "inception3a.branch3.1.relu", "inception3a.branch4.1.relu"])


def case_torchvision(tmp, name):
    path = os.path.join(tmp, name + ".safetensors")
    r = convert(["--torchvision", name, "--seed", "0", "-o", path])
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()[-300:]}")
    g, tensors, shapes = check_graph(path)
    check(g["name"] == name and g["input"]["shape"] == [3, 224, 224], "name/input")
    check(g["preprocess"] == {"resize": 256, "crop": 224, "channels": 3,
                              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
          f"preprocess {g['preprocess']}")
    check(shapes[g["output"]] == (1000,), f"output shape {shapes[g['output']]}")
    if glob.glob("/usr/share/doc/opencv-doc/**/classification_classes_ILSVRC2012.txt*",
                 recursive=True):
        check(len(g.get("labels", [])) == 1000 and g["labels"][:2] == ["tench", "goldfish"],
              "ImageNet labels missing although opencv-doc is installed")
    names = [n["name"] for n in g["nodes"]]
    byname = {n["name"]: n for n in g["nodes"]}
    if name == "resnet18":
        i = names.index("layer1.0.conv1")
        check(names[i:i + 7] == RESNET_BLOCK, f"layer1.0 names {names[i:i + 7]}")
        check(byname["layer1.0.add"]["inputs"] == ["layer1.0.bn2", "maxpool"], "layer1.0.add inputs")
        # --seed calibrates the statistics on random inputs: not the defaults (0, 1)
        check(float(tensors["bn1.running_var"].std()) > 1e-3 and
              float(abs(tensors["bn1.running_mean"]).max()) > 1e-3 and
              0.5 <= float(tensors["bn1.weight"].min()) and float(tensors["bn1.weight"].max()) <= 1.5,
              "BatchNorm not randomised by --seed")
    if name == "googlenet":
        cat, ins = INCEPTION3A_CAT
        check(byname.get(cat, {}).get("inputs") == ins, f"{cat} inputs")
        check(not any(k.startswith("aux") for k in tensors), "aux classifier tensors written")
        counted = [n for n in names if re.search(r"_\d+$", n)]
        check(not counted, f"tracer counters in node names: {counted[:4]}")
    if name == "squeezenet1_1":
        check(byname["features.3.cat"]["inputs"] == ["features.3.expand1x1_activation",
                                                     "features.3.expand3x3_activation"],
              "squeezenet fire names")
        check(byname["features.2"]["attrs"]["ceil_mode"] is True, "squeezenet ceil_mode")
    if name == "alexnet":
        check(names == ["features.%d" % i for i in range(13)] + ["avgpool", "flatten"] +
              ["classifier.%d" % i for i in range(7)], f"alexnet names {names}")
    return f"{len(names)} nodes"


USER_MODULE = textwrap.dedent("""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=2, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            y = self.relu(self.bn(self.conv(x)))
            return self.relu(y + x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.block = Block(8)
            self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.avg = nn.AvgPool2d(2)
            self.lrn = nn.LocalResponseNorm(3, alpha=1e-3, beta=0.7, k=2.0)
            self.side = nn.Conv2d(8, 4, 1)
            self.skip = nn.Identity()
            self.unused = nn.Linear(3, 3)
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(12 * 4 * 4, 5)

        def forward(self, x):
            x = self.block(self.stem(x))
            x = self.pool(x)
            x = self.lrn(self.avg(x))
            x = torch.cat([self.skip(x), F.relu(self.side(x))], 1)
            x = torch.flatten(x, 1)
            x = x.view(x.size(0), -1)
            x = self.fc(self.drop(x))
            return F.log_softmax(x, dim=1)

    def make():
        return Net()
    """)

USER_NODES = [
    ("stem", "conv2d", ["input"]), ("block.conv", "conv2d", ["stem"]),
    ("block.bn", "batchnorm2d", ["block.conv"]), ("block.relu", "relu", ["block.bn"]),
    ("block.add", "add", ["block.relu", "stem"]), ("block.relu#2", "relu", ["block.add"]),
    ("pool", "maxpool2d", ["block.relu#2"]), ("avg", "avgpool2d", ["pool"]),
    ("lrn", "lrn", ["avg"]), ("side", "conv2d", ["lrn"]), ("relu", "relu", ["side"]),
    ("cat", "concat", ["lrn", "relu"]), ("flatten", "flatten", ["cat"]),
    ("view", "flatten", ["flatten"]), ("drop", "dropout", ["view"]),
    ("fc", "linear", ["drop"]), ("log_softmax", "log_softmax", ["fc"]),
]


def case_user_module(tmp):
    src = os.path.join(tmp, "usermod.py")
    with open(src, "w") as f:
        f.write(USER_MODULE)
    labels = os.path.join(tmp, "labels.txt")
    with open(labels, "w") as f:
        f.write("".join(f"class {i}\n" for i in range(5)))
    path = os.path.join(tmp, "user.safetensors")
    r = convert(["--module", src + ":make", "--input-shape", "3,16,16", "--seed", "7",
                 "--labels", labels, "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25",
                 "-o", path])
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()[-300:]}")
    g, tensors, shapes = check_graph(path)
    got = [(n["name"], n["op"], n["inputs"]) for n in g["nodes"]]
    check(got == USER_NODES, f"nodes {got}")
    byname = {n["name"]: n for n in g["nodes"]}
    check(byname["block.conv"]["attrs"] == {"kernel": [3, 3], "stride": [1, 1], "padding": [2, 2],
                                            "dilation": [2, 2], "groups": 2}, "conv attrs")
    check(byname["pool"]["attrs"] == {"kernel": [3, 3], "stride": [2, 2], "padding": [0, 0],
                                      "dilation": [1, 1], "ceil_mode": True}, "maxpool attrs")
    check(byname["avg"]["attrs"] == {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0],
                                     "ceil_mode": False, "count_include_pad": True,
                                     "divisor_override": 0}, "avgpool attrs")
    check(byname["lrn"]["attrs"] == {"size": 3, "alpha": 1e-3, "beta": 0.7, "k": 2.0}, "lrn attrs")
    check(byname["drop"]["attrs"] == {"p": 0.3}, "dropout attrs")
    check(shapes["pool"] == (8, 8, 8), f"ceil_mode pool shape {shapes['pool']}")
    check(g["name"] == "make" and g["input"]["shape"] == [3, 16, 16], "name/input")
    check(g["preprocess"] == {"channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}, "preprocess")
    check(g["labels"] == [f"class {i}" for i in range(5)], "labels")
    check("unused.weight" not in tensors and "block.conv.bias" not in tensors, "unused tensors")
    check(set(tensors) == {"stem.weight", "stem.bias", "block.conv.weight", "block.bn.weight",
                           "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
                           "side.weight", "side.bias", "fc.weight", "fc.bias"},
          f"tensors {sorted(tensors)}")
    return f"{len(got)} nodes"


BAD_MODULES = {
    # (sigmoid became supported with issue 20: tanh is still refused)
    "tanh": ("torch.tanh(self.fc(torch.flatten(x, 1)))", ["tanh", "torch.tanh", "nearest supported"]),
    "reflect padding": ("self.fc(torch.flatten(self.pad(x), 1))", ["pad", "padding_mode"]),
    "dropout training=True": ("self.fc(F.dropout(torch.flatten(x, 1), 0.5))", ["dropout", "training"]),
}


def case_bad(tmp, case):
    expr, words = BAD_MODULES[case]
    src = os.path.join(tmp, "bad_%d.py" % len(os.listdir(tmp)))
    with open(src, "w") as f:
        f.write(textwrap.dedent(f"""
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Bad(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.pad = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
                    self.fc = nn.Linear(2 * 4 * 4, 3)

                def forward(self, x):
                    return {expr}
            """))
    out = os.path.join(tmp, "bad.safetensors")
    r = convert(["--module", src + ":Bad", "--input-shape", "2,4,4", "-o", out])
    check(r.returncode == 2, f"exit {r.returncode}, expected 2: {r.stderr.strip()[-300:]}")
    lines = r.stderr.strip().splitlines()
    check(len(lines) == 1, f"{len(lines)} lines on stderr: {r.stderr!r}")
    check(all(w in lines[0] for w in words), f"message lacks {words}: {lines[0]!r}")
    check(not os.path.exists(out), "an output file was written")
    return lines[0]


def main():
    failed = 0
    with tempfile.TemporaryDirectory(prefix="viscnn-conv-") as tmp:
        cases = [(f"torchvision {n}", case_torchvision, (tmp, n)) for n in TORCHVISION]
        cases.append(("user module", case_user_module, (tmp,)))
        bad_dir = os.path.join(tmp, "bad")
        os.mkdir(bad_dir)
        cases += [(f"unsupported: {c}", case_bad, (bad_dir, c)) for c in BAD_MODULES]
        for label, fn, args in cases:
            try:
                info = fn(*args)
                print(f"ok   {label} ({info})", flush=True)
            except Fail as e:
                failed += 1
                print(f"FAIL {label}: {e}", flush=True)
            except Exception as e:
                failed += 1
                print(f"FAIL {label}: {type(e).__name__}: {e}", flush=True)
            for f in os.listdir(tmp):   # the big model files are not needed later
                if f.endswith(".safetensors"):
                    os.unlink(os.path.join(tmp, f))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
