"""test_analysis.py: end-to-end checks of the analysis commands (importance,
contrasts, circuits, masked runs, edges) on torchvision AlexNet with seeded
weights and real photographs from python3-skimage. Run from the repo root
after the parity step has written build/testdata/alexnet/model.safetensors.

Protocol: one "ok ..." / "FAIL ...: reason" line per check; exit 1 on failure.
"""
import json, os, shutil, subprocess, sys
import numpy as np
import torch, torchvision
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vcio

V = "bin/viscnn"
D = "build/testdata/analysis"
M = "build/testdata/alexnet/model.safetensors"
os.makedirs(D, exist_ok=True)
torch.set_num_threads(2)
failed = 0


def report(ok, text, why=""):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + text + ("" if ok else f": {why}"), flush=True)


def run(*args):
    return subprocess.run([V] + [str(a) for a in args], capture_output=True, text=True, timeout=600)


def rel(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


if not os.path.exists(M):
    report(False, "analysis: model", f"{M} missing (the parity step makes it)")
    sys.exit(1)
import skimage
data = os.path.join(os.path.dirname(skimage.__file__), "data")
photos = os.path.join(D, "photos")
shutil.rmtree(photos, ignore_errors=True)
for cat, files in {"cat": ["chelsea.png"], "people": ["astronaut.png"], "things": ["coffee.png", "rocket.jpg"]}.items():
    os.makedirs(os.path.join(photos, cat))
    for f in files:
        shutil.copy(os.path.join(data, f), os.path.join(photos, cat, f))
os.makedirs(os.path.join(D, "empty"), exist_ok=True)
imgs = [os.path.join(data, f) for f in ["chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg"]]
x = os.path.join(D, "x.npy")
r = run("predict", M, *imgs, "--save-input", x)
report(r.returncode == 0, "analysis: predict --save-input", r.stderr)

# importance: JSON with categories and a contrast; CSV
out = os.path.join(D, "imp.json")
r = run("importance", M, "--images", photos, "--target", "loss", "--by-class", "--contrast", "cat - overall", "-o", out)
ok = r.returncode == 0
if ok:
    j = json.load(open(out))
    cats = j.get("categories", {})
    ok = set(cats) == {"cat", "people", "things"} and j["images"] == 4 and len(j["layers"]) == 5
    con = j["contrast"]["layers"]
    # overall is the mean of the categories; the contrast is clamped at 0
    l0 = np.array(j["layers"][0]["nodes"])
    mean = np.mean([np.array(cats[c]["layers"][0]["nodes"]) for c in cats], axis=0)
    exp = np.maximum(np.array(cats["cat"]["layers"][0]["nodes"]) - mean, 0)
    ok = ok and np.allclose(l0, mean, rtol=1e-5, atol=1e-12) and np.allclose(con[0]["nodes"], exp, rtol=1e-4, atol=1e-9)
    ok = ok and min(min(v for row in L["edges"] for v in row) for L in con) >= 0
report(ok, "analysis: importance --by-class --contrast 'cat - overall': 3 categories, overall = mean, contrast = clamp(cat - overall)", r.stderr)
csv = os.path.join(D, "imp.csv")
r = run("importance", M, "--input", x, "--target", "class:3", "--metric", "taylor", "-o", csv)
rows = open(csv).read().splitlines() if r.returncode == 0 else []
n_nodes, n_edges = 64 + 192 + 384 + 256 + 256, 3 * 64 + 64 * 192 + 192 * 384 + 384 * 256 + 256 * 256
report(len(rows) == 1 + n_nodes + n_edges and rows[0] == "kind,layer,out,in,score",
       f"analysis: importance CSV has a header and {n_nodes} node + {n_edges} edge rows", r.stderr or f"{len(rows)} rows")

# circuits: keep:1.0 is the whole network
cj = os.path.join(D, "c_all.json")
r = run("circuit", M, "--images", photos, "--target", "node:features.8:3", "--mode", "keep:1.0", "--faithfulness", "--curve", "-o", cj)
ok = r.returncode == 0
fc = json.load(open(cj))["faithfulness"]["circuit"] if ok else {}
report(ok and abs(fc["r"] - 1.0) <= 1e-6 and fc["rel_error"] <= 1e-6, f"analysis: circuit keep:1.0 has faithfulness {fc} (r 1 to 1e-6)", r.stderr)
curve = json.load(open(cj))["faithfulness"]["curve"] if ok else []
report(len(curve) == 13 and all((c["r"] is None and c["r_note"]) or -1 <= c["r"] <= 1 for c in curve) and curve[0]["r"] > 0.9,
       "analysis: faithfulness curve over 13 kept fractions (r, or null with a reason), r(0.9) > 0.9", str(curve[:2]))

# a pruned circuit: masked run == PyTorch on the same weights with the kernels zeroed
cj = os.path.join(D, "c_thr.json")
pruned = os.path.join(D, "pruned.safetensors")
r = run("circuit", M, "--images", photos, "--target", "class:3", "--mode", "threshold",
        "--node-threshold", "0.1", "--edge-threshold", "0.1", "--pruned", pruned, "-o", cj)
ok = r.returncode == 0
kept = json.load(open(cj))["kept"] if ok else {}
report(ok and 0 < kept["edges"] < kept["cone_edges"], f"analysis: threshold circuit prunes: {kept}", r.stderr)
masked, zeroed = os.path.join(D, "masked.npy"), os.path.join(D, "zeroed.npy")
r1 = run("forward", M, "--input", x, "--circuit", cj, "-o", masked)
r2 = run("forward", pruned, "--input", x, "-o", zeroed)
tensors, _ = vcio.read_safetensors(pruned)
net = torchvision.models.alexnet()
net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
net.eval()
with torch.no_grad():
    ref = net(torch.from_numpy(np.load(x))).numpy()
ok = r1.returncode == 0 and r2.returncode == 0
e1 = rel(np.load(masked), ref) if ok else None
e2 = rel(np.load(zeroed), ref) if ok else None
report(ok and e1 <= 1e-4 and e2 <= 1e-4,
       f"analysis: masked run (forward --circuit) vs PyTorch with those kernels zeroed: rel err {e1}; pruned file {e2} (tol 1e-4)",
       r1.stderr + r2.stderr)
full = os.path.join(D, "full.npy")
run("forward", M, "--input", x, "-o", full)
report(ok and rel(np.load(masked), np.load(full)) > 1e-3, "analysis: the masked run differs from the full network")

# hierarchical extraction and monotone thresholds
sizes = []
for t in ["0.05", "0.3", "0.6"]:
    cj = os.path.join(D, f"c_{t}.json")
    r = run("circuit", M, "--input", x, "--target", "class:3", "--mode", "threshold", "--node-threshold", t, "--edge-threshold", t, "-o", cj)
    sizes.append(json.load(open(cj))["kept"]["edges"] if r.returncode == 0 else -1)
report(sizes[0] > sizes[1] > sizes[2] >= 0, f"analysis: higher thresholds keep fewer edges {sizes}")
cj = os.path.join(D, "c_h.json")
r = run("circuit", M, "--input", x, "--target", "loss", "--mode", "hierarchical", "-o", cj)
ok = r.returncode == 0
k = json.load(open(cj))["kept"] if ok else {}
report(ok and 0 < k["nodes"] < k["cone_nodes"] and 0 < k["edges"] < k["cone_edges"], f"analysis: hierarchical circuit {k}", r.stderr)

# bad input: exit 2 with one line
x1 = os.path.join(D, "x1.npy")
np.save(x1, np.load(x)[:1])
for desc, args in [
        ("unknown layer", ["edges", M, "--input", x1, "--layer", "features.99", "-o", os.path.join(D, "e.npy")]),
        ("edges of a non-conv layer", ["edges", M, "--input", x1, "--layer", "features.1", "-o", os.path.join(D, "e.npy")]),
        ("unknown channel", ["importance", M, "--input", x, "--target", "node:features.8:999", "-o", os.path.join(D, "i.json")]),
        ("out-channel out of range", ["edges", M, "--input", x1, "--layer", "features.3", "--out", "500", "-o", os.path.join(D, "e.npy")]),
        ("a target after the last conv", ["importance", M, "--input", x, "--target", "node:classifier.1:0", "-o", os.path.join(D, "i.json")]),
        ("a target on the first conv", ["importance", M, "--input", x, "--target", "node:features.0:0", "-o", os.path.join(D, "i.json")]),
        ("an empty image folder", ["importance", M, "--images", os.path.join(D, "empty"), "-o", os.path.join(D, "i.json")]),
        ("a category that does not exist", ["circuit", M, "--images", photos, "--category", "dogs", "-o", os.path.join(D, "c.json")]),
        ("a contrast with an unknown category", ["importance", M, "--images", photos, "--contrast", "dogs - overall", "-o", os.path.join(D, "i.json")]),
        ("a bad contrast", ["importance", M, "--images", photos, "--contrast", "cat -", "-o", os.path.join(D, "i.json")]),
        ("an unknown metric", ["importance", M, "--input", x, "--metric", "magic", "-o", os.path.join(D, "i.json")]),
        ("a bad mode", ["circuit", M, "--input", x, "--mode", "keep:2", "-o", os.path.join(D, "c.json")]),
        ("a class out of range", ["importance", M, "--input", x, "--target", "class:1000", "-o", os.path.join(D, "i.json")])]:
    r = run(*args)
    lines = r.stderr.strip().splitlines()
    report(r.returncode == 2 and len(lines) == 1, f"analysis bad input: {desc} -> exit 2: {lines[0] if lines else ''}",
           f"exit {r.returncode}, stderr {r.stderr[:200]!r}")
report(not os.path.exists(os.path.join(D, "i.json")), "analysis bad input: nothing half-written")
sys.exit(1 if failed else 0)
