"""test_bad_input.py: broken model files and inputs must give exit status 2
and a one-line message naming the file and the problem, with no crash and no
AddressSanitizer/UBSan report (the CLI under test is build/asan/viscnn).

Run from the repo root: /usr/bin/python3 tests/test_bad_input.py
"""
import json, os, subprocess, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vcio

D = "build/testdata/bad"
V = "build/asan/viscnn"
os.makedirs(D, exist_ok=True)
env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
failed = 0

def graph(nodes=None, **kw):
    g = {"format": "viscnn.graph", "version": 1, "name": "tiny",
         "input": {"name": "input", "shape": [3, 8, 8]},
         "output": "fc",
         "nodes": nodes if nodes is not None else [
             {"name": "conv", "op": "conv2d", "inputs": ["input"], "params": {"weight": "conv.weight", "bias": "conv.bias"},
              "attrs": {"kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}},
             {"name": "relu", "op": "relu", "inputs": ["conv"]},
             {"name": "flat", "op": "flatten", "inputs": ["relu"]},
             {"name": "fc", "op": "linear", "inputs": ["flat"], "params": {"weight": "fc.weight", "bias": "fc.bias"}}]}
    g.update(kw)
    return g

rng = np.random.default_rng(0)
good_t = {"conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
          "conv.bias": rng.standard_normal(4).astype(np.float32),
          "fc.weight": rng.standard_normal((5, 256)).astype(np.float32),
          "fc.bias": rng.standard_normal(5).astype(np.float32)}

def write(name, tensors, g):
    p = os.path.join(D, name)
    vcio.write_safetensors(p, tensors, {"viscnn.graph": json.dumps(g)})
    return p

def case(desc, args, expect_in_msg, path_in_msg):
    global failed
    r = subprocess.run([V] + args, capture_output=True, text=True, env=env, timeout=120)
    err = r.stderr.strip()
    lines = err.splitlines()
    problems = []
    if r.returncode != 2: problems.append(f"exit {r.returncode}, expected 2")
    if "AddressSanitizer" in err or "runtime error" in err or "LeakSanitizer" in err: problems.append("sanitizer report")
    elif len(lines) != 1: problems.append(f"{len(lines)} lines on stderr")
    if path_in_msg and path_in_msg not in err: problems.append(f"message does not name {path_in_msg}")
    if expect_in_msg and expect_in_msg not in err: problems.append(f"message lacks '{expect_in_msg}'")
    if problems:
        failed += 1
        print(f"FAIL bad input: {desc}: {'; '.join(problems)}: {err[:300]!r}")
    else:
        print(f"ok   bad input: {desc} -> {lines[0]}")

good = write("good.safetensors", good_t, graph())
r = subprocess.run([V, "info", good], capture_output=True, text=True, env=env)
if r.returncode == 0 and "edges (2-D conv kernels): 12" in r.stdout:
    print("ok   bad input: the untouched tiny model loads (info: 12 edges)")
else:
    failed += 1
    print(f"FAIL bad input: the untouched tiny model does not load: {r.stderr.strip()[:300]}")

raw = open(good, "rb").read()
for frac, desc in [(0.5, "half"), (0.99, "last bytes missing")]:
    p = os.path.join(D, f"truncated_{int(frac*100)}.safetensors")
    open(p, "wb").write(raw[:int(len(raw) * frac)])
    case(f"truncated model file ({desc})", ["info", p], "", p)
p = os.path.join(D, "truncated_header.safetensors"); open(p, "wb").write(raw[:20])
case("model file cut inside its header", ["info", p], "", p)
p = os.path.join(D, "empty.safetensors"); open(p, "wb").write(b"")
case("empty model file", ["info", p], "", p)
p = os.path.join(D, "random.safetensors"); open(p, "wb").write(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
case("random bytes as a model", ["info", p], "", p)
p = os.path.join(D, "missing.safetensors")
case("missing model file", ["info", p], "cannot open", p)

t = dict(good_t); del t["conv.bias"]
case("graph references a missing tensor", ["info", write("missing_tensor.safetensors", t, graph())], "conv.bias", "missing_tensor.safetensors")
t = dict(good_t); t["conv.weight"] = np.zeros((4, 3, 5, 5), np.float32)
case("tensor with the wrong shape", ["info", write("wrong_shape.safetensors", t, graph())], "conv.weight", "wrong_shape.safetensors")
t = dict(good_t); t["fc.weight"] = np.zeros((5, 100), np.float32)
case("linear weight that does not fit its input", ["info", write("wrong_shape_fc.safetensors", t, graph())], "fc.weight", "wrong_shape_fc.safetensors")
g = graph(); g["nodes"][1]["op"] = "softplus"
case("unknown op", ["info", write("unknown_op.safetensors", good_t, g)], "softplus", "unknown_op.safetensors")
g = graph(); g["nodes"][0]["inputs"] = ["relu"]
case("cyclic graph", ["info", write("cyclic.safetensors", good_t, g)], "cycle", "cyclic.safetensors")
g = graph(); g["nodes"][2]["inputs"] = ["nowhere"]
case("input that is not a node", ["info", write("dangling.safetensors", good_t, g)], "nowhere", "dangling.safetensors")
g = graph(); g["nodes"][1]["name"] = "conv"
case("duplicate node name", ["info", write("dup.safetensors", good_t, g)], "twice", "dup.safetensors")
g = graph(); g["nodes"][0]["attrs"]["groups"] = 2
case("groups that do not divide the channels", ["info", write("groups.safetensors", good_t, g)], "groups", "groups.safetensors")
g = graph(); g["nodes"][0]["attrs"]["kernel"] = [9, 9]; g["nodes"][0]["attrs"]["padding"] = [0, 0]
t = dict(good_t); t["conv.weight"] = np.zeros((4, 3, 9, 9), np.float32)
case("kernel larger than the input", ["info", write("empty_out.safetensors", t, g)], "empty", "empty_out.safetensors")
p = os.path.join(D, "nograph.safetensors"); vcio.write_safetensors(p, good_t, {})
case("safetensors without viscnn.graph", ["info", p], "viscnn.graph", p)
p = os.path.join(D, "badjson.safetensors"); vcio.write_safetensors(p, good_t, {"viscnn.graph": "{nodes: ["})
case("graph metadata that is not JSON", ["info", p], "JSON", p)
t = {k: v.astype(np.float64) if k == "conv.bias" else v for k, v in good_t.items()}
# write one F64 tensor by hand: vcio writes float32 only, so patch the header
p = os.path.join(D, "f64.safetensors")
hdr = {"__metadata__": {"viscnn.graph": json.dumps(graph())}}
blob = b""
for k, v in t.items():
    hdr[k] = {"dtype": "F64" if v.dtype == np.float64 else "F32", "shape": list(v.shape), "data_offsets": [len(blob), len(blob) + v.nbytes]}
    blob += v.tobytes()
h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
open(p, "wb").write(len(h).to_bytes(8, "little") + h + blob)
case("tensor that is not float32", ["info", p], "F64", p)

txt = os.path.join(D, "not_an_image.png"); open(txt, "w").write("hello, I am text\n")
case("non-image file given to predict", ["predict", good, txt], "", txt)
trunc_png = os.path.join(D, "truncated.png")
import zlib, struct
def png_bytes(w, h):
    rows = b"".join(b"\x00" + bytes(rng.integers(0, 256, w * 3, dtype=np.uint8)) for _ in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(trunc_png, "wb").write(png_bytes(16, 16)[:60])
case("truncated PNG given to predict", ["predict", good, trunc_png], "", trunc_png)
np.save(os.path.join(D, "wrong_shape_input.npy"), np.zeros((2, 3, 7, 8), np.float32))
case("forward input of the wrong shape", ["forward", good, "--input", os.path.join(D, "wrong_shape_input.npy"), "-o", os.path.join(D, "o.npy")], "does not match", "wrong_shape_input.npy")
open(os.path.join(D, "bad.npy"), "wb").write(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',")
case("truncated .npy input", ["forward", good, "--input", os.path.join(D, "bad.npy"), "-o", os.path.join(D, "o.npy")], "", "bad.npy")
np.save(os.path.join(D, "ok_input.npy"), np.zeros((2, 3, 8, 8), np.float32))
case("output into a missing folder", ["forward", good, "--input", os.path.join(D, "ok_input.npy"), "-o", "/nonexistent/dir/o.npy"], "", "/nonexistent/dir/o.npy")
sys.exit(1 if failed else 0)
