"""test_circuits.py: `viscnn circuit` end to end, one check per item of
docs/circuits.md (issue 12), on the default model with Fashion-MNIST images
(scripts/make-data.sh writes them into build/testdata/circuits/data, the
same folders as `make data`), and on torchvision googlenet and resnet18 with
seeded weights for the edge ends.

  modes     keep:F and keep:N,E select the documented counts; every kept
            kernel's two ends are kept nodes (dead parts removed); threshold,
            hierarchical and --iterative run and say what they did.
  errors    an option that does not apply to the mode, --eval-images or
            --curve without --faithfulness, bad fractions: exit 2, one line.
  faith     --category measures on that category's images; --eval-images on
            held-out ones and the output says which (in-sample in capitals);
            r, relative error and top-1 agreement equal numpy's on the logits
            of `viscnn forward` with and without --circuit; an empty circuit
            has r null with a reason; the curve only with --curve.
  contrast  the clamped count equals numpy's on the categories' scores; a
            contrast with nothing above 0 warns; with loss a note.
  demo      the Makefile's demo circuit command reports held-out faithfulness.
  ends      googlenet and resnet18: every kernel edge's in_layer/in_ch is the
            producing node of its in-channel, traced in Python through the
            model graph (concat, add, pooling, BN, ReLU), and its out end a
            conv channel; add layers' identity edges likewise.
Protocol: one "ok ..." / "FAIL ...: reason" line per check; exit 1 on failure.
"""
import json, math, os, re, shutil, subprocess, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vcio

V = "bin/viscnn"
M = "models/fashion.safetensors"
D = "build/testdata/circuits"
os.makedirs(D, exist_ok=True)
failed = 0


def report(ok, text, why=""):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + text + ("" if ok else f": {why}"), flush=True)


def run(*args, timeout=900):
    return subprocess.run([V] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def load(path):
    with open(path) as f:
        return json.load(f)


def closed(j):
    """Every kept kernel's in end is a kept node (or the input) and its out end a kept node."""
    kept = {(L["name"], n["ch"]) for L in j["layers"] for n in L["nodes"]}
    for L in j["layers"]:
        for e in L["edges"]:
            if (e["out_layer"], e["out_ch"]) not in kept:
                return f"edge out end {e['out_layer']}:{e['out_ch']} not kept"
            if e["in_layer"] != "input" and (e["in_layer"], e["in_ch"]) not in kept:
                return f"edge in end {e['in_layer']}:{e['in_ch']} not kept"
    return None


DATA = os.path.join(D, "data")
p = subprocess.run(["scripts/make-data.sh", DATA], capture_output=True, text=True)
if p.returncode != 0 or not os.path.isdir(os.path.join(DATA, "fashion-heldout", "sneaker")):
    report(False, "circuits: image data (scripts/make-data.sh)", p.stderr[-300:])
    sys.exit(1)

# a small class-folder set: 3 categories x 12 images, and a held-out one
small, small_ho = os.path.join(D, "small"), os.path.join(D, "small_heldout")
for dst, src in [(small, os.path.join(DATA, "fashion")), (small_ho, os.path.join(DATA, "fashion-heldout"))]:
    shutil.rmtree(dst, ignore_errors=True)
    for cat in ["sneaker", "bag", "coat"]:
        os.makedirs(os.path.join(dst, cat))
        for f in sorted(os.listdir(os.path.join(src, cat)))[:12]:
            shutil.copy(os.path.join(src, cat, f), os.path.join(dst, cat, f))
SNK, SNK_HO = os.path.join(DATA, "fashion", "sneaker"), os.path.join(DATA, "fashion-heldout", "sneaker")

# ---- modes ----
cj = os.path.join(D, "k.json")
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.1", "-o", cj)
j = load(cj) if r.returncode == 0 else {}
k = j.get("kept", {})
report(r.returncode == 0 and k["cone_nodes"] == 192 and k["cone_edges"] == 7200 and k["selected_nodes"] == 192
       and k["selected_edges"] == 720 and 0 < k["edges"] <= 720 and k["nodes"] < 192 and j["keep"] == {"nodes": 1, "edges": 0.1}
       and j["mode"] == "keep:0.1" and j["metric"] == "taylor",
       f"modes keep:0.1 = keep:1,0.1 (metric taylor by default): all 192 cone nodes and 720 of 7200 kernels selected, dead parts removed: {k}", r.stderr)
why = closed(j) if j else "no JSON"
report(why is None, "modes keep:0.1: every kept kernel's two ends are kept nodes", why)
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.5,0.2", "-o", cj)
j = load(cj) if r.returncode == 0 else {}
k = j.get("kept", {})
report(r.returncode == 0 and k["selected_nodes"] == 96 and 0 < k["selected_edges"] <= 1440 and k["edges"] <= k["selected_edges"]
       and closed(j) is None and j["keep"] == {"nodes": 0.5, "edges": 0.2},
       f"modes keep:0.5,0.2: 96 nodes, at most 1440 kernels between them: {k}", r.stderr)
for mode, extra in [("threshold", ["--node-threshold", "0.3", "--edge-threshold", "0.4"]), ("hierarchical", [])]:
    r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", mode, *extra, "-o", cj)
    j = load(cj) if r.returncode == 0 else {}
    k = j.get("kept", {})
    want = {"node": 0.3, "edge": 0.4} if mode == "threshold" else {"node": 0.8, "edge": 0.8}
    report(r.returncode == 0 and j["thresholds"] == want and 0 < k["edges"] <= k["selected_edges"] < k["cone_edges"]
           and closed(j) is None, f"modes {mode}: thresholds {want} recorded, a closed circuit {k}", r.stderr)
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.1", "--iterative", "3", "-o", cj)
j = load(cj) if r.returncode == 0 else {}
k = j.get("kept", {})
report(r.returncode == 0 and j.get("iterative") == 3 and k["selected_edges"] == 720 and closed(j) is None,
       f"modes keep:0.1 --iterative 3: 720 kernels selected in the last round, recorded: {k}", r.stderr)

# ---- a circuit JSON read back (forward --circuit) must name real kernels ----
good = load(cj)
xh = os.path.join(D, "x_one.npy")
np.save(xh, np.zeros((1, 1, 28, 28), np.float32))
for desc, mutate in [("kernel_index 1.5", lambda e: e.update(kernel_index=1.5)),
                     ("out_ch out of range", lambda e: e.update(out_ch=10 ** 6)),
                     ("no kernel_index", lambda e: e.pop("kernel_index"))]:
    jj = json.loads(json.dumps(good))
    mutate(jj["layers"][1]["edges"][0])
    hostile = os.path.join(D, "hostile.json")
    with open(hostile, "w") as f:
        json.dump(jj, f)
    r = run("forward", M, "--input", xh, "--circuit", hostile, "-o", os.path.join(D, "h.npy"))
    lines = r.stderr.strip().splitlines()
    report(r.returncode == 2 and len(lines) == 1 and "bad edge" in lines[0],
           f"errors forward --circuit with {desc} -> exit 2: {lines[0] if lines else ''}", r.stderr[-300:])

# ---- options that do not apply, bad values ----
bad = os.path.join(D, "bad.json")
for desc, args, expect in [
        ("--node-threshold with keep", ["--mode", "keep:0.1", "--node-threshold", "0.2"], "does not apply"),
        ("--edge-threshold with keep", ["--mode", "keep:0.1", "--edge-threshold", "0.2"], "does not apply"),
        ("--iterative with threshold", ["--mode", "threshold", "--iterative", "2"], "keep only"),
        ("--iterative with hierarchical", ["--mode", "hierarchical", "--iterative", "2"], "keep only"),
        ("--iterative with a contrast", ["--mode", "keep:0.1", "--iterative", "2", "--contrast", "sneaker - overall"], "contrast"),
        ("--eval-images without --faithfulness", ["--eval-images", SNK_HO], "--faithfulness"),
        ("--curve without --faithfulness", ["--curve"], "--faithfulness"),
        ("--curve 1.5", ["--faithfulness", "--curve", "1.5"], "--curve"),
        ("--mode keep:0.5,", ["--mode", "keep:0.5,"], "keep:0.5,"),
        ("--mode keep:2", ["--mode", "keep:2"], "keep:2"),
        ("--node-threshold 1.5", ["--node-threshold", "1.5"], "1.5"),
        ("--category with --contrast", ["--category", "sneaker", "--contrast", "sneaker - overall"], "not both"),
        ("--eval-images without the category", ["--category", "sneaker", "--faithfulness", "--eval-images",
                                                 os.path.join(small_ho, "..", "small_heldout_nosneaker")], "no category")]:
    if "nosneaker" in args[-1]:
        nos = args[-1]
        shutil.rmtree(nos, ignore_errors=True)
        for cat in ["bag", "coat"]:
            shutil.copytree(os.path.join(small_ho, cat), os.path.join(nos, cat))
    r = run("circuit", M, "--images", small, "--target", "class:7", *args, "-o", bad)
    lines = r.stderr.strip().splitlines()
    report(r.returncode == 2 and len(lines) == 1 and expect in lines[0] and not os.path.exists(bad),
           f"errors {desc} -> exit 2: {lines[0] if lines else ''}", f"exit {r.returncode}, stderr {r.stderr[-300:]!r}")

# ---- faithfulness ----
r = run("circuit", M, "--images", small, "--category", "sneaker", "--target", "class:7", "--mode", "keep:0.2",
        "--faithfulness", "-o", cj)
j = load(cj) if r.returncode == 0 else {}
fa = j.get("faithfulness", {})
report(r.returncode == 0 and fa["sample"] == "in-sample" and fa["images"] == 12 and "IN-SAMPLE" in r.stdout and "curve" not in fa,
       f"faith --category sneaker: measured on its 12 images, marked in-sample, no curve: {fa.get('images')} images", r.stdout + r.stderr)
r = run("circuit", M, "--images", small, "--category", "sneaker", "--target", "class:7", "--mode", "keep:0.2",
        "--faithfulness", "--eval-images", small_ho, "-o", cj)
j = load(cj) if r.returncode == 0 else {}
fa = j.get("faithfulness", {})
report(r.returncode == 0 and fa["sample"] == "held-out" and fa["images"] == 12 and fa["source"] == small_ho and "held-out" in r.stdout,
       "faith --eval-images FOLDER --category sneaker: its sneaker subfolder, marked held-out", r.stdout + r.stderr)

# the numbers against numpy on viscnn forward's logits (full and masked)
cj = os.path.join(D, "f.json")
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.1", "--faithfulness",
        "--eval-images", SNK_HO, "-o", cj)
pngs = sorted(os.path.join(SNK_HO, f) for f in os.listdir(SNK_HO))
x = os.path.join(D, "x_heldout.npy")
rp = run("predict", M, *pngs, "--save-input", x)
full, circ = os.path.join(D, "full.npy"), os.path.join(D, "circ.npy")
r1, r2 = run("forward", M, "--input", x, "-o", full), run("forward", M, "--input", x, "--circuit", cj, "-o", circ)
ok = all(p.returncode == 0 for p in [r, rp, r1, r2])
if ok:
    f, g = np.load(full).astype(np.float64), np.load(circ).astype(np.float64)
    want_r = float(np.corrcoef(f[:, 7], g[:, 7])[0, 1])
    want_e = float(np.abs(g[:, 7] - f[:, 7]).mean() / np.abs(f[:, 7]).mean())
    want_t = float((f.argmax(1) == g.argmax(1)).mean())
    c = load(cj)["faithfulness"]["circuit"]
    ok = abs(c["r"] - want_r) < 1e-4 and abs(c["rel_error"] - want_e) < 1e-4 * max(1, want_e) and abs(c["top1_agreement"] - want_t) < 1e-9
    got = f"r {c['r']} vs {want_r}, rel error {c['rel_error']} vs {want_e}, top-1 {c['top1_agreement']} vs {want_t}"
else:
    got = r.stderr + rp.stderr + r1.stderr + r2.stderr
report(ok, "faith held-out r, relative error and top-1 agreement = numpy's on viscnn forward (full vs --circuit)", got)

r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0", "--faithfulness", "-o", cj)
text = open(cj).read() if r.returncode == 0 else ""
c = json.loads(text)["faithfulness"]["circuit"] if text else {}
report(r.returncode == 0 and c["edges"] == 0 and c["r"] is None and "constant" in c.get("r_note", "") and "NaN" not in text
       and "nan" not in text.lower().replace("null", ""), f"faith an empty circuit: r null with a reason ({c.get('r_note')})", r.stderr)
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.1", "--faithfulness", "--curve", "0.5,0.05", "-o", cj)
cu = load(cj)["faithfulness"].get("curve", []) if r.returncode == 0 else []
report([p.get("keep") for p in cu] == [0.5, 0.05] and all("rel_error" in p and "top1_agreement" in p for p in cu),
       f"faith --curve 0.5,0.05: two points with r, relative error, top-1", r.stderr)
r = run("circuit", M, "--images", SNK, "--target", "class:7", "--mode", "keep:0.1", "--faithfulness", "--curve", "-o", cj)
cu = load(cj)["faithfulness"].get("curve", []) if r.returncode == 0 else []
report(len(cu) == 13 and cu[0]["keep"] == 0.9 and cu[-1]["keep"] == 0.001
       and all((p["r"] is None) == ("r_note" in p) for p in cu), "faith bare --curve: the 13 default fractions", r.stderr)
r = run("circuit", M, "--images", SNK, "--target", "node:features.6:5", "--mode", "keep:0.3", "--faithfulness", "-o", cj)
fa = load(cj)["faithfulness"] if r.returncode == 0 else {}
report(r.returncode == 0 and fa["values"] == 50 * 7 * 7 and "top1_agreement" not in fa["circuit"],
       f"faith node target: r over images x positions ({fa.get('values')} values), no top-1", r.stderr)

# ---- contrasts ----
imp = os.path.join(D, "imp.json")
r = run("importance", M, "--images", small, "--target", "class:7", "--metric", "taylor", "--by-class", "-o", imp)
r2 = run("circuit", M, "--images", small, "--target", "class:7", "--metric", "taylor", "--contrast", "sneaker - overall",
         "--mode", "keep:0.1", "-o", cj)
ok = r.returncode == 0 and r2.returncode == 0
m = re.search(r"clamped (\d+) of (\d+) scores", r2.stderr)
if ok and m:
    ij = load(imp)
    def flat(layers):
        return np.concatenate([np.concatenate([np.asarray(L["nodes"], np.float64), np.asarray(L["edges"], np.float64).ravel()])
                               for L in layers])
    a, b = flat(ij["categories"]["sneaker"]["layers"]), flat(ij["layers"])
    d = a - b
    # the JSON prints 7 significant digits, float32 needs 9: near-ties may go either way
    eps = 1e-6 * np.maximum(np.abs(a), np.abs(b))
    lo, hi, got_n = int((d < -eps).sum()), int((d < eps).sum()), int(m.group(1))
    ok = lo <= got_n <= hi and hi - lo <= 10 and int(m.group(2)) == d.size and \
        load(cj)["contrast"] == {"clamped": got_n, "scores": d.size}
    got = f"{m.group(0)}; numpy {lo} to {hi} of {d.size}"
else:
    ok, got = False, r.stderr + r2.stderr
report(ok, "contrast sneaker - overall: the clamped count on stderr and in the JSON = numpy's", got)
r = run("circuit", M, "--images", small, "--target", "class:7", "--contrast", "-sneaker", "--mode", "keep:0.1", "-o", cj)
report(r.returncode == 0 and "warning: no score of the contrast is above 0" in r.stderr, "contrast -sneaker: warns that nothing is above 0",
       r.stderr)
r = run("circuit", M, "--images", small, "--target", "loss", "--contrast", "sneaker - overall", "--mode", "keep:0.1", "-o", cj)
report(r.returncode == 0 and "own label" in r.stderr, "contrast with --target loss: a note that the categories' targets differ", r.stderr)

# ---- make demo's circuit command ----
demo = [l.strip() for l in open("Makefile") if l.strip().startswith("bin/viscnn circuit")]
if demo:
    args = [a.replace("data/", DATA + "/", 1) if a.startswith("data/") else a
            for a in demo[0].replace("$(DEFAULT_MODEL)", M).split()[1:]]
    args[args.index("-o") + 1] = os.path.join(D, "demo.json")
    r = run(*args)
    fa = load(os.path.join(D, "demo.json")).get("faithfulness", {}) if r.returncode == 0 else {}
    report(r.returncode == 0 and fa.get("sample") == "held-out" and "held-out" in r.stdout and "curve" not in fa,
           f"demo the Makefile's circuit command reports held-out faithfulness without a curve", r.stdout + r.stderr)
else:
    report(False, "demo the Makefile's circuit command", "no 'bin/viscnn circuit' line in the Makefile")

# ---- edge ends on googlenet and resnet18 ----
PER_CHANNEL = {"batchnorm2d", "relu", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "dropout", "lrn"}


via = set()   # ops the traces walked through


def producer(nodes, name, ch):
    """The display node (conv, add of two 4-D tensors, or the input) that makes channel ch of node name."""
    while True:
        n = nodes[name]
        op = n["op"]
        if name == "input" or op == "conv2d" or (op == "add" and len(n["inputs"]) == 2):
            return name, ch
        via.add(op)
        if op == "concat":
            for src in n["inputs"]:
                if ch < nodes[src]["c"]:
                    break
                ch -= nodes[src]["c"]
            name = src
        elif op in PER_CHANNEL:
            name = n["inputs"][0]
        else:
            return None, None


def channels(graph, tensors):
    """Output channels of every node, from the weights and the graph (4-D part only)."""
    nodes = {"input": {"op": "input", "inputs": [], "c": graph["input"]["shape"][0]}}
    for n in graph["nodes"]:
        op, ins = n["op"], n["inputs"]
        if op == "conv2d":
            c = tensors[n["params"]["weight"]].shape[0]
        elif op == "concat":
            c = sum(nodes[i]["c"] for i in ins)
        else:
            c = nodes[ins[0]]["c"] if ins else 0
        nodes[n["name"]] = {"op": op, "inputs": ins, "c": c, "n": n}
    return nodes


made = []
for name, target in [("resnet18", "class:3"), ("googlenet", "class:3"), ("googlenet", "node:inception4a.branch3.1.bn:5"),
                     ("resnet18", "node:layer3.0.bn2:7")]:
    # the parity step of tests/run.sh converts the same models (seed 0); else convert here and delete after
    path = os.path.join("build/testdata", name, "model.safetensors")
    if not os.path.exists(path):
        path = os.path.join(D, f"{name}.safetensors")
        made.append(path)
    if not os.path.exists(path):
        p = subprocess.run(["/usr/bin/python3", "tools/torch2viscnn.py", "--torchvision", name, "--seed", "0", "-o", path],
                           capture_output=True, text=True)
        if p.returncode != 0:
            report(False, f"ends {name}: convert", p.stderr[-300:])
            continue
    graph, tensors = vcio.read_graph(path)
    nodes = channels(graph, tensors)
    x = os.path.join(D, f"x_{name}.npy")
    if not os.path.exists(x):
        np.save(x, np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32))
    cj = os.path.join(D, f"ends_{name}.json")
    r = run("circuit", path, "--input", x, "--target", target, "--mode", "keep:0.05", "--batch", "2", "-o", cj)
    if r.returncode != 0:
        report(False, f"ends {name} {target}: viscnn circuit", r.stderr)
        continue
    j = load(cj)
    bad, n_k, n_id, ins = [], 0, 0, set()
    via.clear()
    kept = {(L["name"], n["ch"]) for L in j["layers"] for n in L["nodes"]}
    for L in j["layers"]:
        for e in L["edges"]:
            out = nodes.get(e["out_layer"])
            if e["out_layer"] != L["name"] or (e["out_layer"], e["out_ch"]) not in kept:
                bad.append(f"{e}: out end not this layer's kept node")
                continue
            if L["kind"] == "conv":
                n_k += 1
                w = tensors[out["n"]["params"]["weight"]]
                groups = out["n"].get("attrs", {}).get("groups", 1)
                cg, cog = w.shape[1], w.shape[0] // groups
                if out["op"] != "conv2d" or not 0 <= e["out_ch"] < w.shape[0] or not 0 <= e["kernel_index"] < cg:
                    bad.append(f"{e}: out end not a conv channel / kernel")
                    continue
                src = producer(nodes, out["inputs"][0], (e["out_ch"] // cog) * cg + e["kernel_index"])
            else:
                n_id += 1
                src = producer(nodes, out["inputs"][e["operand"]], e["out_ch"])
            if src != (e["in_layer"], e["in_ch"]):
                bad.append(f"{e['out_layer']}:{e['out_ch']} <- {e['in_layer']}:{e['in_ch']}, graph says {src}")
            elif e["in_layer"] != "input" and (e["in_layer"], e["in_ch"]) not in kept:
                bad.append(f"{e}: in end not kept")
            ins.add(nodes[e["in_layer"]]["op"])
    # resnet18: kernels read adds (through ReLU) and adds have identity edges; googlenet: kernels read through concats
    need = {"add", "conv2d"} <= ins and n_id > 0 if name == "resnet18" else "concat" in via and "maxpool2d" in via
    os.remove(cj)   # up to 20 MB of JSON
    report(not bad and n_k > 0 and need,
           f"ends {name} {target}: {n_k} kernel and {n_id} identity edges, both ends = the graph's producer "
           f"(in ends {sorted(ins)}, traced through {sorted(via)})", "; ".join(bad[:3]) or "a case the graph should exercise is missing")

for path in set(made):
    if os.path.exists(path):
        os.remove(path)
sys.exit(1 if failed else 0)
