#!/usr/bin/python3
"""test_cli_help: the CLI that explains itself (issue 13), end to end on the
default model (models/fashion.safetensors) and data/fashion:

- the help table: every option the code reads is in it and every option in
  it is read (the sources, per command), the README's CLI block and
  docs/cli.md are what the binary prints from it; --help, help CMD, -h,
  --version, --opt=value, the man page;
- names: class:NAME, loose folder-name matching, warnings for what a class
  folder set leaves out;
- inputs: predict on folders and many paths, edges --image DIR, the weight
  metric without images;
- outputs: -o extensions, --json, --layer, the PNG pictures (size, not blank,
  the colours they should have);
- feedback: the "wrote" line, the progress bar's rate and ETA;
- names from the converter (--module FILE.py:FACTORY);
- the README's examples, run and their output compared.
Prints one line per case; exits 1 if any failed."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.chdir(ROOT)
V = "bin/viscnn"
M = "models/fashion.safetensors"
PY = "/usr/bin/python3"
failed = 0


def report(ok, text, why=""):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + text + ("" if ok or not why else f": {why}"))


def run(*args, **kw):
    return subprocess.run([V] + [str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)


def one_line_error(r):
    lines = r.stderr.strip().splitlines()
    return r.returncode == 2 and len(lines) == 1, f"exit {r.returncode}, stderr {r.stderr.strip()[-300:]!r}"


WROTE = re.compile(r"^wrote (\S+): (.+), [\d.]+ (bytes|kB|MB), [\d.]+ s$")


def wrote_line(r, path):
    """The 'wrote' line naming path, or None."""
    for line in r.stderr.splitlines():
        m = WROTE.match(line)
        if m and m.group(1) == str(path):
            return line
    return None


for need in (V, M, "data/fashion/sneaker", "data/fashion-heldout"):
    if not os.path.exists(need):
        report(False, f"cli-help: {need} present", "run make and make data first")
        sys.exit(1)
tmp = tempfile.mkdtemp(prefix="viscnn-cli-help-")

# ---- the help table ---------------------------------------------------------
r = run("help", "--list-options")
report(r.returncode == 0, "table: help --list-options: every dispatched command has a table entry and vice versa",
       r.stderr.strip())
table = {}
for line in r.stdout.splitlines():
    parts = line.split()
    table.setdefault(parts[0], {})
    if len(parts) > 1:
        table[parts[0]][parts[1].lstrip("-")] = parts[2] if len(parts) > 2 else None


def c_functions(text):
    """name -> body of each top-level C function in text."""
    out = {}
    # braces inside string and character literals and comments do not count: blank them (same length)
    bare = re.sub(r'"(\\.|[^"\\\n])*"|\'(\\.|[^\'\\])\'|//[^\n]*', lambda m: " " * len(m.group(0)), text)
    for m in re.finditer(r"^[a-z][\w \*]*?\b(\w+)\([^;{]*\)\s*\{", bare, re.M):
        depth, i = 0, m.end() - 1
        while i < len(bare):
            depth += {"{": 1, "}": -1}.get(bare[i], 0)
            i += 1
            if depth == 0:
                break
        out[m.group(1)] = text[m.end():i]
    return out


READ = re.compile(r"\bcli_(?:opt|flag|int|double|opt_all)\(\s*&?a\s*,\s*\"([a-z0-9-]+)\"")
funcs = {}
for f in sorted(os.listdir("viscnn/cli")):
    if f.endswith(".c"):
        funcs.update(c_functions(open(os.path.join("viscnn/cli", f)).read()))
# options read inside helpers the commands call
helper_reads = {h: set(READ.findall(funcs[h])) for h in ("cli_open_set", "cli_load_batch")}
# --device is taken out of the arguments by main (cli_take_device, device.c)
# for the commands listed there, before the command parses the rest
dev_src = open("viscnn/cli/device.c").read()
computing = set(re.findall(r'"([a-z]+)"', re.search(r"computing\[\] = \{(.*?)\}", dev_src, re.S).group(1)))
for name, body in funcs.items():
    m = re.search(r"cli_parse\(&a, \"([a-z]+)\"", body)
    if not m:
        continue
    cmd = m.group(1)
    reads = set(READ.findall(body))
    reachable = set(reads)
    for h, names in helper_reads.items():
        if re.search(r"\b%s\(" % h, body):
            reachable |= names
    for args in re.findall(r"cli_open_labelled\([^;]*?\"([a-z-]+)\", \"([a-z-]+)\", \"([a-z-]+)\"", body):
        reachable |= set(args)
    documented = set(table.get(cmd, {}))
    if cmd in computing:
        reachable.add("device")
        report("device" in documented, f"table: {cmd}: --device (taken by main for computing commands) is in the help table")
    report(reads <= documented, f"table: {cmd}: every option the code reads is in the help table",
           f"undocumented: {sorted(reads - documented)}")
    report(documented <= reachable, f"table: {cmd}: every option in the help table is read by the code",
           f"never read: {sorted(documented - reachable)}")

readme = open("README.md").read()
block = re.search(r"<!-- cli-synopsis: begin -->\n```\n(.*?)```\n<!-- cli-synopsis: end -->", readme, re.S)
synopsis = run("help", "--synopsis").stdout
report(block is not None and block.group(1) == synopsis, "table: README's CLI block is `viscnn help --synopsis`",
       "regenerate it from bin/viscnn help --synopsis")
if block:
    text = block.group(1)
    per_cmd = {}
    for entry in re.split(r"\n(?=viscnn )", text):
        per_cmd[entry.split()[1]] = entry
    missing = [f"{c} {o}" for c, opts in table.items() for o in opts
               if not re.search(r"(?<![\w-])-{1,2}%s\b" % re.escape(o), per_cmd.get(c, ""))]
    report(not missing, "table: every option in the table appears in the README under its command", f"missing {missing[:5]}")
    extra = [f"{c} {o}" for c, e in per_cmd.items() for o in re.findall(r"(?<![\w-])--?([a-z][a-z0-9-]*)", e)
             if o not in table.get(c, {}) and o not in ("idx", "images", "input", "labels", "image") | set(table.get(c, {}))]
    report(not extra, "table: every option the README shows is in the table for that command", f"extra {extra[:5]}")
report(open("docs/cli.md").read() == run("help", "--markdown").stdout, "table: docs/cli.md is `viscnn help --markdown`",
       "regenerate it: bin/viscnn help --markdown > docs/cli.md")

# ---- help, --version, --opt=value, the man page ------------------------------
for cmd, opts in table.items():
    a, b, c = run(cmd, "--help"), run("help", cmd), run(cmd, "-h")
    ok = a.returncode == b.returncode == c.returncode == 0 and a.stdout == b.stdout == c.stdout
    ok = ok and a.stdout.startswith(f"usage: viscnn {cmd}") and all(
        re.search(r"(?<![\w-])-{1,2}%s\b" % re.escape(o), a.stdout) for o in opts)
    report(ok, f"help: viscnn {cmd} --help = viscnn help {cmd} = {cmd} -h, lists its {len(opts)} options",
           (a.stderr + b.stderr + c.stderr)[-200:])
r = run("rf", M, "--layer", "features.6", "--help")
report(r.returncode == 0 and r.stdout.startswith("usage: viscnn rf"), "help: --help after other arguments prints help")
r = run("--version")
report(r.returncode == 0 and re.fullmatch(r"viscnn \d+\.\d+\.\d+\n", r.stdout) is not None, "help: --version",
       repr(r.stdout))
r = run("--help")
report(r.returncode == 0 and all(f"  {c}" in r.stdout for c in table), "help: viscnn --help lists every command")
r = run("help", "nosuch")
ok, why = one_line_error(r)
report(ok, "help: help of an unknown command -> exit 2, one line", why)
a = run("rf", M, "--layer", "features.6", "--y", "3", "--x", "1")
b = run("rf", M, "--layer=features.6", "--y=3", "--x=1")
report(a.returncode == 0 and a.stdout == b.stdout, "parse: --opt=value is --opt value", b.stderr.strip())
for args, what in [(["info", M, "--frobnicate"], "unknown option"), (["info", M, "--json=1"], "a flag given a value"),
                   (["rf", M, "--layer"], "an option without its value"), (["info", M, "--o", "x"], "--o (only -o)")]:
    r = run(*args)
    ok, why = one_line_error(r)
    report(ok and ("--help" in r.stderr or "value" in r.stderr), f"parse: {what} -> exit 2, one line", why)
man = run("help", "--man").stdout
report(man.startswith(".TH VISCNN 1") and all(f".SS {c}\n" in man for c in table), "man: help --man is a roff page with every command")
mp = os.path.join(tmp, "viscnn.1")
open(mp, "w").write(man)
g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", mp], capture_output=True, text=True)
report(g.returncode == 0 and not g.stderr.strip(), "man: groff -man -ww renders it without warnings", g.stderr[-300:])

# ---- names: class:NAME, folders ------------------------------------------------
outs = {}
for t in ["class:9", "class:ankle_boot", 'class:"ankle boot"', "class:Ankle-Boot"]:
    p = os.path.join(tmp, "t%d.csv" % len(outs))
    r = run("importance", M, "--images", "data/fashion/sneaker/00009.png", "--target", t, "--layer", "features.8", "-o", p)
    outs[t] = open(p).read() if r.returncode == 0 else r.stderr
report(len(set(outs.values())) == 1 and outs["class:9"].startswith("kind,"),
       "names: class:9 = class:ankle_boot = class:\"ankle boot\" = class:Ankle-Boot (same scores)",
       str({k: v[:60] for k, v in outs.items()}))
r = run("importance", M, "--images", "data/fashion/sneaker/00009.png", "--target", "class:boots", "-o", os.path.join(tmp, "x.csv"))
ok, why = one_line_error(r)
report(ok and "boots" in r.stderr and "viscnn info" in r.stderr, "names: class:NAME that is no label -> exit 2, names it", why)
r = run("info", M)
labels = json.loads(run("info", M, "--json").stdout)["labels"]
report(r.returncode == 0 and len(labels) == 10 and all(f"{k} {n}" in r.stdout for k, n in enumerate(labels)),
       "names: info lists the 10 labels with their indices")
# a class-folder set with loose names, a folder matching nothing, a stray image, a nested folder, an empty folder
S = os.path.join(tmp, "set")
src = {"Ankle Boot": "ankle_boot", "SNEAKER": "sneaker", "t-shirt": None, "TSHIRT-top": "tshirt_top"}
for folder, cls in src.items():
    os.makedirs(os.path.join(S, folder))
    for f in sorted(os.listdir(f"data/fashion/{cls or 'bag'}"))[:3]:
        shutil.copy(f"data/fashion/{cls or 'bag'}/{f}", os.path.join(S, folder, f))
shutil.copy("data/fashion/bag/" + sorted(os.listdir("data/fashion/bag"))[0], os.path.join(S, "stray.png"))
os.makedirs(os.path.join(S, "SNEAKER", "deeper"))
shutil.copy("data/fashion/bag/" + sorted(os.listdir("data/fashion/bag"))[0], os.path.join(S, "SNEAKER", "deeper", "x.png"))
os.makedirs(os.path.join(S, "empty"))
r = run("predict", M, S, "--top", "1", "--json")
try:
    d = json.loads(r.stdout)
except ValueError:
    d = {}
labelled = [p for p in d.get("predictions", []) if "label" in p]
report(r.returncode == 0 and len(d.get("predictions", [])) == 12 and len(labelled) == 9 and
       {p["label"] for p in labelled} == {9, 7, 0},
       "names: folders 'Ankle Boot', 'SNEAKER', 'TSHIRT-top' match labels 9, 7, 0; 't-shirt' matches none",
       f"exit {r.returncode} {r.stderr[-200:]}")
warn = r.stderr
for what, pat in [("the unmatched folder", "folder 't-shirt' matches no label"), ("the image beside the class folders", "stray.png"),
                  ("the nested folder", "deeper"), ("the empty class folder", "empty")]:
    report(pat in warn, f"names: a warning names {what}", warn[-300:])
L = os.path.join(tmp, "list.txt")
sneaker0 = os.path.abspath("data/fashion/sneaker/" + sorted(os.listdir("data/fashion/sneaker"))[0])
open(L, "w").write(f"{sneaker0}\tsneaker\n{sneaker0}\tflip-flop\n")
r = run("importance", M, "--images", L, "--layer", "features.0", "-o", os.path.join(tmp, "l.json"))
report(r.returncode == 0 and "label 'flip-flop' matches no label" in r.stderr and "folder" not in r.stderr,
       "names: a list file's label that matches no label of the model is named as a label", r.stderr[-300:])
r = run("eval", M, "--images", S)
ok, why = one_line_error(r)
report(ok and "t-shirt" in r.stderr, "names: eval on class folders with one matching no label -> exit 2, one line naming it", why)
S2 = os.path.join(tmp, "set2")
shutil.copytree(os.path.join(S, "SNEAKER"), os.path.join(S2, "Sneaker"))
shutil.copy(os.path.join(S, "stray.png"), S2)
r = run("eval", M, "--images", S2)
report(r.returncode == 0 and "accuracy" in r.stdout and "stray.png" in r.stderr and "deeper" in r.stderr,
       "names: eval (train's reader) warns about the stray image and the nested folder", r.stderr[-300:])
report(d.get("accuracy", {}).get("labelled") == 9, "names: predict --json gives accuracy over the 9 labelled images",
       str(d.get("accuracy")))

# ---- inputs ----------------------------------------------------------------------
r = run("predict", M, "data/fashion-heldout", "data/fashion/sneaker", "data/fashion/bag/" + sorted(os.listdir("data/fashion/bag"))[0],
        "--top", "1")
m = re.search(r"accuracy ([\d.]+)% \((\d+)/(\d+)\)", r.stdout)
report(r.returncode == 0 and r.stdout.count("\n  1. ") == 551 and m is not None and m.group(3) == "500",
       "inputs: predict on two folders and a file: 551 predictions, accuracy over the 500 class-folder images",
       f"exit {r.returncode} {r.stderr[-200:]} {m.group(0) if m else ''}")
t0 = time.time()
r = run("edges", M, "--image", "data", "--layer", "features.3", "-o", os.path.join(tmp, "e.npy"))
ok, why = one_line_error(r)
report(ok and "is a folder" in r.stderr and time.time() - t0 < 5, "inputs: edges --image DIR refused before reading it", why)
r = run("importance", M, "--metric", "weight", "-o", os.path.join(tmp, "w.json"))
ok = r.returncode == 0 and json.load(open(os.path.join(tmp, "w.json")))["images"] == 0
report(ok, "inputs: importance --metric weight needs no images", r.stderr[-200:])
r = run("importance", M, "--images", "data/fashion/sneaker", "-o", os.path.join(tmp, "w.json"))
ok = r.returncode == 0 and json.load(open(os.path.join(tmp, "w.json")))["images"] == 50
report(ok, "inputs: importance --images still reads the images (50)", r.stderr[-200:])
r = run("importance", M, "-o", os.path.join(tmp, "w.json"))
ok, why = one_line_error(r)
report(ok, "inputs: importance without images for a metric that needs them -> exit 2", why)

# ---- outputs ----------------------------------------------------------------------
for args, what in [(["circuit", M, "--images", "data/fashion/sneaker", "--mode", "keep:0.1", "-o", "c.csv"], "circuit -o c.csv"),
                   (["project", M, "--projection", "grid", "-o", "p.csv"], "project -o p.csv"),
                   (["importance", M, "--images", "data/fashion/sneaker", "-o", "s.txt"], "importance -o s.txt"),
                   (["edges", M, "--image", "data/fashion/sneaker/00009.png", "--layer", "features.3", "-o", "e.json"], "edges -o e.json"),
                   (["forward", M, "--input", "x.npy", "-o", "f.csv"], "forward -o f.csv"),
                   (["featvis", M, "--node", "features.3:1", "--steps", "2", "-o", "v.json"], "featvis -o v.json"),
                   (["featvis", M, "--node", "features.3:1", "--steps", "2", "-o", "v.png", "--trace", "t.safetensors"],
                    "featvis --trace t.safetensors"),
                   (["convert", "tests/fuzz/corpus/pth/zip.pth", "--arch", "fashion", "-o", "m.json"], "convert -o m.json"),
                   (["train", "--arch", "models/arch/fashion.json", "--images", "data/fashion/sneaker", "-o", "m.json"],
                    "train -o m.json")]:
    outs = ("c.csv", "p.csv", "s.txt", "e.json", "f.csv", "v.json", "v.png", "t.safetensors", "m.json")
    r = run(*[a if a not in outs else os.path.join(tmp, a) for a in args])
    ok, why = one_line_error(r)
    report(ok and "must end in" in r.stderr, f"outputs: {what} refused (extension)", why)
p = os.path.join(tmp, "s.csv")
r = run("importance", M, "--images", "data/fashion/sneaker", "--layer", "features.0", "-o", p)
report(r.returncode == 0 and open(p).readline() == "kind,layer,out,in,score\n", "outputs: importance -o .csv writes CSV")
rows = {line.split(",")[1] for line in open(p).read().splitlines()[1:]} if r.returncode == 0 else set()
report(rows == {"features.0"}, "outputs: importance --layer features.0 writes that layer only", str(rows))
p = os.path.join(tmp, "s.json")
r = run("importance", M, "--images", "data/fashion/sneaker", "--layer", "features.3", "--layer=features.8", "-o", p)
names = [l["name"] for l in json.load(open(p))["layers"]] if r.returncode == 0 else []
report(names == ["features.3", "features.8"], "outputs: importance --layer twice (JSON): those two layers", str(names))
r = run("importance", M, "--images", "data/fashion/sneaker", "--layer", "features.1", "-o", p)
ok, why = one_line_error(r)
report(ok and "conv2d" in r.stderr, "outputs: importance --layer of a non-conv layer -> exit 2", why)
p = os.path.join(tmp, "c.json")
r = run("circuit", M, "--images", "data/fashion/sneaker", "--target", "class:sneaker", "--mode", "keep:0.1",
        "--layer", "features.6", "-o", p)
names = [l["name"] for l in json.load(open(p))["layers"]] if r.returncode == 0 else []
summary = [l for l in r.stdout.splitlines() if l.startswith("  features.")]
report(names == ["features.6"] and len(summary) == 1 and summary[0].split()[0] == "features.6",
       "outputs: circuit --layer features.6: the JSON and the summary show that layer only", f"{names} {summary} {r.stderr[-200:]}")
report(wrote_line(r, p) is not None, "feedback: circuit prints a wrote line", r.stderr[-200:])
for args, keys in [(["predict", M, "data/fashion/sneaker/00009.png", "--json"], {"model", "predictions"}),
                   (["rf", M, "--layer", "features.6", "--y", "3", "--x", "1", "--json"], {"layer", "rows", "cols", "unclipped", "jump"}),
                   (["eval", M, "--images", "data/fashion-heldout", "--json"], {"accuracy", "classes", "images"}),
                   (["info", M, "--json"], {"model", "layers", "labels", "edges", "parameters"})]:
    r = run(*args)
    try:
        d = json.loads(r.stdout)
    except ValueError:
        d = {}
    report(r.returncode == 0 and keys <= set(d), f"outputs: {args[0]} --json is one JSON object with {sorted(keys)}",
           r.stdout[:200] + r.stderr[-200:])
r = run("eval", M, "--images", "data/fashion-heldout", "--json")
d = json.loads(r.stdout) if r.returncode == 0 else {}
report(d.get("images") == 500 and sum(c["images"] for c in d.get("classes", [])) == 500, "outputs: eval --json counts 500 images in 10 classes")

# the pictures
try:
    import numpy as np
    from PIL import Image
except ImportError as e:
    report(False, "pictures: PIL and numpy for /usr/bin/python3", str(e))
    sys.exit(1)


def picture(path):
    im = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = ((im[..., 0] > 150) & (im[..., 2] < 100)).sum()
    blue = ((im[..., 2] > 150) & (im[..., 0] < 100)).sum()
    return im, red, blue


x = os.path.join(tmp, "x.npy")
run("predict", M, "data/fashion/sneaker/00009.png", "--save-input", x)
p = os.path.join(tmp, "maps.png")
r = run("edges", M, "--image", "data/fashion/sneaker/00009.png", "--layer", "features.3", "--out", "0-7", "--in", "0-3", "-o", p)
if r.returncode == 0:
    im, red, blue = picture(p)
    # 8 rows x 4 columns of 14x14 maps enlarged 4x (56 px) with 2-px gaps, at least 200 wide, a scale bar below
    report(im.shape[0] == 8 * 58 + 2 + 6 + 12 + 4 + 10 + 4 and im.shape[1] == 4 * 58 + 2,
           "pictures: edges -o maps.png is 8 x 4 cells of 56 px plus the scale bar", str(im.shape))
    report(im.std() > 20 and red > 100 and blue > 100, "pictures: the edge sheet is not blank and has both signs (red and blue)",
           f"std {im.std():.1f}, red {red}, blue {blue}")
    line = wrote_line(r, p)
    report(line is not None and "32 edge maps" in line, "feedback: edges prints 'wrote ... 32 edge maps ...'", r.stderr[-200:])
else:
    report(False, "pictures: edges -o maps.png", r.stderr[-300:])
p = os.path.join(tmp, "f.png")
r = run("forward", M, "--input", x, "--layer", "features.6", "-o", p)
if r.returncode == 0:
    im, red, blue = picture(p)
    report(im.shape[1] == 8 * (7 * 7 + 2) + 2 and im.std() > 20 and red > 20 and blue > 20,
           "pictures: forward --layer features.6 -o maps.png: 8 columns of 64 maps, both signs", f"{im.shape} red {red} blue {blue}")
    report(wrote_line(r, p) is not None, "feedback: forward prints a wrote line")
else:
    report(False, "pictures: forward -o maps.png", r.stderr[-300:])
r = run("forward", M, "--input", x, "-o", os.path.join(tmp, "logits.png"))
ok, why = one_line_error(r)
report(ok, "pictures: forward -o maps.png without a layer of maps -> exit 2", why)
p = os.path.join(tmp, "rf.png")
r = run("rf", M, "--layer", "features.6", "--y", "3", "--x", "1", "--image", "data/fashion/sneaker/00009.png", "-o", p)
if r.returncode == 0:
    im, red, blue = picture(p)
    # 28x28 enlarged 8x; the field is rows 5..22, cols 0..14: a red frame at rows 38/39 and 184/185
    report(im.shape == (224, 224, 3) and im.std() > 20, "pictures: rf -o rf.png is the 28x28 image enlarged to 224x224", str(im.shape))
    frame = (im[38, 0:120, 0] == 255) & (im[38, 0:120, 1] == 0)
    report(frame.all() and (im[184, 0:120, 0] == 255).all(), "pictures: rf.png frames rows 5..22, cols 0..14 in red")
    line = wrote_line(r, p)
    report(line is not None and "receptive field of features.6" in line, "feedback: rf prints a wrote line")
else:
    report(False, "pictures: rf -o rf.png", r.stderr[-300:])

# ---- feedback: the wrote line of every file-writing command, the progress bar ----------
for args, out in [(["importance", M, "--images", "data/fashion/sneaker", "-o"], "i.json"),
                  (["project", M, "--projection", "grid", "-o"], "p.json"),
                  (["forward", M, "--input", x, "-o"], "f.npy"),
                  (["forward", M, "--input", x, "--decisions"], "d.npz"),
                  (["predict", M, "data/fashion/sneaker/00009.png", "--save-input"], "s.npy"),
                  (["circuit", M, "--images", "data/fashion/sneaker", "--mode", "keep:0.1", "-o", os.path.join(tmp, "c2.json"), "--pruned"],
                   "c.safetensors")]:
    p = os.path.join(tmp, out)
    r = run(*(args + [p]))
    report(r.returncode == 0 and wrote_line(r, p) is not None, f"feedback: {args[0]} {args[-1]} {out}: one 'wrote' line",
           r.stderr[-200:])
p = os.path.join(tmp, "t.safetensors")
r = run("train", "--arch", "models/arch/fashion.json", "--images", "data/fashion-heldout", "--limit", "100", "--epochs", "1", "-o", p)
line = wrote_line(r, p)
report(r.returncode == 0 and line is not None and "after 1 epochs" in line, "feedback: train: one 'wrote' line", r.stderr[-200:])
pth = os.path.join(tmp, "fashion.pth")
c = subprocess.run([PY, "-c", "import sys, torch; sys.path.insert(0, 'tools'); import vcio; "
                    "t, _ = vcio.read_safetensors(sys.argv[1]); "
                    "torch.save({k: torch.from_numpy(v.copy()) for k, v in t.items()}, sys.argv[2])", M, pth],
                   capture_output=True, text=True, timeout=300)
p = os.path.join(tmp, "conv.safetensors")
r = run("convert", pth, "--arch", "fashion", "-o", p)
line = wrote_line(r, p)
report(c.returncode == 0 and r.returncode == 0 and line is not None and "--arch fashion" in line,
       "feedback: convert: one 'wrote' line", c.stderr[-200:] + r.stderr[-200:])
tty = subprocess.run(["script", "-qec", f"{V} train --arch models/arch/fashion.json --images data/fashion-heldout --limit 200 "
                      f"--epochs 1 --batch 10 -o {tmp}/bar.safetensors", "/dev/null"], capture_output=True, text=True, timeout=300)
bar = tty.stdout.replace("\r", "\n")
report(re.search(r"epoch 1/1 \[=+\] 20/20 .* [\d.]+ img/s  ETA 0:00", bar) is not None,
       "feedback: train's progress bar on a terminal shows images/s and ETA", bar[-300:])
tty = subprocess.run(["script", "-qec", f"{V} importance {M} --images data/fashion --batch 100 -o {tmp}/bar.json", "/dev/null"],
                     capture_output=True, text=True, timeout=300)
bar = tty.stdout.replace("\r", "\n")
report(re.search(r"importance \[=+\] 500/500  [\d.]+/s  ETA 0:00", bar) is not None,
       "feedback: the progress bar on a terminal shows items/s and ETA", bar[-300:])

# ---- converter names ----------------------------------------------------------------
mod = os.path.join(tmp, "net.py")
open(mod, "w").write("""import torch.nn as nn, torch.nn.functional as F
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
    def forward(self, x):
        return F.relu(self.b(F.relu(self.a(x)))) + x
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block1, self.block2 = Block(), Block()
        self.fc = nn.Linear(4 * 8 * 8, 3)
    def forward(self, x):
        return self.fc(self.block2(self.block1(F.relu(self.stem(x)))).flatten(1))
def tiny_net():
    return Net()
""")
out = os.path.join(tmp, "tiny.safetensors")
c = subprocess.run([PY, "tools/torch2viscnn.py", "--module", f"{mod}:tiny_net", "--input-shape", "1,8,8", "-o", out],
                   capture_output=True, text=True, timeout=300)
d = json.loads(run("info", out, "--json").stdout) if c.returncode == 0 else {}
names = [l["name"] for l in d.get("layers", [])]
report(d.get("model") == "tiny_net", "names: --module FILE.py:tiny_net names the model tiny_net", f"{d.get('model')} {c.stderr[-200:]}")
report({"block1.relu", "block1.relu#2", "block1.add", "block2.relu", "block2.relu#2", "block2.add"} <= set(names) and
       not any(re.search(r"_\d+$", n) for n in names),
       "names: functional nodes named from their module path, no tracer counters", str(names))

# ---- the README's examples ------------------------------------------------------------
ex = re.search(r"<!-- cli-examples: begin -->\n```\n(.*?)```\n<!-- cli-examples: end -->", readme, re.S)
report(ex is not None, "readme: the examples block is there")
os.makedirs("build/readme", exist_ok=True)
for chunk in re.split(r"^\$ ", ex.group(1) if ex else "", flags=re.M)[1:]:
    cmdline, *expect = chunk.rstrip("\n").split("\n")
    r = subprocess.run(cmdline, shell=True, capture_output=True, text=True, timeout=300)
    got = (r.stdout + r.stderr).splitlines()
    k, ok = 0, True
    for e in expect:   # each shown line, in order; "..." alone skips, a trailing "..." matches a prefix
        if e == "...":
            continue
        while k < len(got) and not (got[k] == e or (e.endswith("...") and got[k].startswith(e[:-3]))):
            k += 1
        if k == len(got):
            ok = False
            break
        k += 1
    report(ok, f"readme: $ {cmdline[:90]}", f"line {e!r} not in output: {(r.stdout + r.stderr)[-300:]!r}" if not ok else "")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
