#!/usr/bin/python3
"""test_pth.py: native PyTorch checkpoints (`viscnn convert IN.pth --arch NAME`).

    /usr/bin/python3 tests/test_pth.py            (from the repo root; needs
                                                   bin/viscnn and build/asan/viscnn)

Data: tests/make_pth.py (cached in build/testdata/pth until it or the
converter changes). Checks, one "ok"/"FAIL" line each:
- the seeded state dict torch.save wrote has exactly the weights that
  tools/torch2viscnn.py --seed wrote (same seed, same weights);
- for alexnet, vgg11, vgg16, resnet18, googlenet, in both the zip and the
  legacy format: convert exits 0, every tensor is bit-identical to the
  safetensors model's, the graph is the converter's (googlenet: but for its
  preprocessing, see tools/arch_template.py), and `viscnn forward` outputs
  agree to <= 1e-6 (identical in practice);
- real-world shapes of a checkpoint: nested under "state_dict", "module."
  prefixes, a non-contiguous tensor, views at storage offsets, an extra
  tensor (noted on stderr); zip64 structures; DEFLATE entries; pickle
  protocol 4; --arch T.json;
- hostile and broken files (tests/make_pth.py BAD) under AddressSanitizer:
  exit 2, one line on stderr naming the file and the reason, no sanitizer
  report, no output file, and the os.system pickles ran nothing;
- tests/test_pth.c under AddressSanitizer: unit cases and a fuzz of the zip,
  pickle and legacy readers seeded with torch-written files.
Exits 1 if any check failed.
"""

import glob
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import vcio  # noqa: E402

os.chdir(ROOT)
PY = "/usr/bin/python3"
D = "build/testdata/pth"
OUT = os.path.join(D, "out")
V, VA = "bin/viscnn", "build/asan/viscnn"
ARCHS = ["alexnet", "vgg11", "vgg16", "resnet18", "googlenet"]
TOL = 1e-6
ASAN_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
failed = 0


def report(name, problem):
    global failed
    if problem:
        failed += 1
        print(f"FAIL {name}: {problem}", flush=True)
    else:
        print(f"ok   {name}", flush=True)


def run(args, env=None):
    for attempt in range(5):   # the binary may be being relinked by a concurrent make
        try:
            return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        except OSError:
            if attempt == 4:
                raise
            time.sleep(3)


def ensure_data():
    stamp = os.path.join(D, "done")
    deps = ["tests/make_pth.py", "tools/torch2viscnn.py"]
    if os.path.exists(stamp) and all(os.path.getmtime(d) < os.path.getmtime(stamp) for d in deps):
        return True
    print("# writing test checkpoints (tests/make_pth.py, about 2 minutes)", flush=True)
    r = run([PY, "tests/make_pth.py", D])
    report("tests/make_pth.py writes the checkpoints", r.returncode and r.stderr.strip()[-400:])
    return r.returncode == 0


def forward(model, out):
    r = run([V, "forward", model, "--input", os.path.join(D, "x.npy"), "-o", out])
    if r.returncode:
        return None, f"forward {model}: exit {r.returncode}: {r.stderr.strip()}"
    return np.load(out), None


def compare_outputs(y, ref):
    if y.shape != ref.shape:
        return f"output shape {y.shape} != {ref.shape}"
    d = float(np.max(np.abs(y.astype(np.float64) - ref)))
    return None if d <= TOL else f"max |diff| {d:.3g} > {TOL}"


def diff_desc(y, ref):
    return "identical" if np.array_equal(y, ref) else f"max |diff| {np.max(np.abs(y - ref)):.2g}"


def convert(pth, arch, out, binary=V, env=None):
    if os.path.exists(out):
        os.unlink(out)
    return run([binary, "convert", pth, "--arch", arch, "-o", out], env)


def check_converted(label, pth, arch, ref_path, ref_out, graph_except=()):
    """Converts pth and compares tensors, graph and forward output with the reference model."""
    out = os.path.join(OUT, os.path.basename(pth) + ".safetensors")
    r = convert(pth, arch, out)
    if r.returncode:
        report(f"{label}: convert", f"exit {r.returncode}: {r.stderr.strip()}")
        return None
    problems = []
    g, t = vcio.read_graph(out)
    g_ref, t_ref = vcio.read_graph(ref_path)
    if set(t) != set(t_ref):
        problems.append(f"tensor names differ: {sorted(set(t) ^ set(t_ref))[:3]}")
    else:
        bad = [k for k in t if t[k].dtype != t_ref[k].dtype or t[k].shape != t_ref[k].shape or
               not np.array_equal(t[k].view(np.uint32), t_ref[k].view(np.uint32))]
        if bad:
            problems.append(f"{len(bad)} tensors differ from the safetensors model's, e.g. {bad[0]}")
    g_cmp, ref_cmp = dict(g), dict(g_ref)
    for k in graph_except:
        g_cmp.pop(k, None)
        ref_cmp.pop(k, None)
    if g_cmp != ref_cmp:
        problems.append("the graph differs from tools/torch2viscnn.py's: keys " +
                        str([k for k in set(g_cmp) | set(ref_cmp) if g_cmp.get(k) != ref_cmp.get(k)]))
    y, err = forward(out, out + ".npy")
    if err:
        problems.append(err)
    else:
        e = compare_outputs(y, ref_out)
        if e:
            problems.append(e)
    desc = "" if problems else f" ({len(t)} tensors bit-identical, forward {diff_desc(y, ref_out)})"
    report(f"{label}{desc}", "; ".join(problems))
    for p in (out, out + ".npy"):
        if os.path.exists(p):
            os.unlink(p)
    return r


def main():
    if not ensure_data():
        return 1
    os.makedirs(OUT, exist_ok=True)
    import torch
    refs = {}
    for arch in ARCHS:
        ref_path = os.path.join(D, f"{arch}.safetensors")
        # same seed, same weights: torch.load of the .pth vs torch2viscnn.py's separate run
        sd = torch.load(os.path.join(D, f"{arch}.zip.pth"))
        _, t_ref = vcio.read_graph(ref_path)
        bad = [k for k in t_ref if k not in sd or not np.array_equal(sd[k].numpy(), t_ref[k])]
        report(f"same seed, same weights: {arch} (torch.save'd state dict vs torch2viscnn.py --seed, "
               f"{len(t_ref)} tensors)", bad and f"{len(bad)} tensors differ, e.g. {bad[0]}")
        del sd
        y, err = forward(ref_path, os.path.join(OUT, f"{arch}.ref.npy"))
        if err:
            report(f"{arch}: forward of the safetensors model", err)
            continue
        refs[arch] = y.astype(np.float64)
        for fmt in ("zip", "legacy"):
            check_converted(f"{arch} {fmt} .pth -> convert -> forward == safetensors", os.path.join(D, f"{arch}.{fmt}.pth"),
                            arch, ref_path, refs[arch], ("preprocess",) if arch == "googlenet" else ())

    if "alexnet" in refs:
        ref = os.path.join(D, "alexnet.safetensors")
        for fmt in ("zip", "legacy"):
            r = check_converted(f"alexnet {fmt} checkpoint nested under 'state_dict', 'module.' keys, strided and "
                                f"offset tensors", os.path.join(D, f"alexnet.variant.{fmt}.pth"), "alexnet", ref,
                                refs["alexnet"])
            if r is not None:
                report(f"alexnet {fmt} variant: stderr notes the ignored extra tensor and the removed prefix",
                       not ("aux.extra.weight" in r.stderr and "module." in r.stderr) and r.stderr.strip())
        check_converted("--arch models/arch/alexnet.json (a template file)", os.path.join(D, "alexnet.zip.pth"),
                        "models/arch/alexnet.json", ref, refs["alexnet"])
    if "resnet18" in refs:
        z64 = os.path.join(D, "resnet18.zip64.pth")
        try:
            with zipfile.ZipFile(z64) as z:
                valid = z.testzip() is None and all(i.header_offset >= 0 for i in z.infolist())
            import torch
            sd = torch.load(z64)
            valid = valid and all(torch.equal(sd[k], v) for k, v in torch.load(os.path.join(D, "resnet18.zip.pth")).items())
            report("the hand-made zip64 file reads back with Python's zipfile and torch.load", not valid and "differs")
        except Exception as e:
            report("the hand-made zip64 file reads back with Python's zipfile and torch.load", f"{type(e).__name__}: {e}")
        check_converted("resnet18 with zip64 structures", z64, "resnet18", os.path.join(D, "resnet18.safetensors"),
                        refs["resnet18"])
        for fmt in ("zip", "legacy"):
            check_converted(f"resnet18 {fmt}, saved with pickle protocol 4", os.path.join(D, f"resnet18.p4.{fmt}.pth"),
                            "resnet18", os.path.join(D, "resnet18.safetensors"), refs["resnet18"])
        check_converted("resnet18 with DEFLATE entries", os.path.join(D, "resnet18.deflate.pth"), "resnet18",
                        os.path.join(D, "resnet18.safetensors"), refs["resnet18"])

    # every models/arch/*.json is a built-in name
    r = run([V, "convert", os.path.join(D, "tiny.zip.pth"), "-o", os.path.join(OUT, "x.safetensors")])
    names = sorted(os.path.basename(p)[:-5] for p in glob.glob("models/arch/*.json"))
    report(f"convert without --arch lists every models/arch/*.json ({', '.join(names)})",
           (r.returncode != 2 or not all(n in r.stderr for n in names)) and r.stderr.strip())

    # the success path under AddressSanitizer (leaks included), on the smaller models
    for f, arch in (("resnet18.legacy.pth", "resnet18"), ("resnet18.deflate.pth", "resnet18"),
                    ("resnet18.zip64.pth", "resnet18"), ("googlenet.zip.pth", "googlenet")):
        out = os.path.join(OUT, "asan.safetensors")
        r = convert(os.path.join(D, f), arch, out, VA, ASAN_ENV)
        report(f"{f} converts under AddressSanitizer with no report",
               (r.returncode or "Sanitizer" in r.stderr or "runtime error" in r.stderr) and
               f"exit {r.returncode}: {r.stderr.strip()[-300:]}")
        if os.path.exists(out):
            os.unlink(out)

    # hostile and broken files, under AddressSanitizer
    bad_dir = os.path.join(D, "bad")
    expect = json.load(open(os.path.join(bad_dir, "expect.json")))
    marker = os.path.join(bad_dir, "pth_marker_must_not_exist")
    for name, want in sorted(expect.items()):
        path = os.path.join(bad_dir, name)
        out = os.path.join(OUT, "bad.safetensors")
        r = convert(path, "alexnet", out, VA, ASAN_ENV)
        err = r.stderr.strip()
        lines = err.splitlines()
        problems = []
        if r.returncode != 2:
            problems.append(f"exit {r.returncode}, expected 2")
        if "Sanitizer" in err or "runtime error" in err:
            problems.append("sanitizer report")
        elif len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if path not in err:
            problems.append("the message does not name the file")
        if want not in err:
            problems.append(f"the message lacks '{want}'")
        if os.path.exists(out) or os.path.exists(out + ".part"):
            problems.append("an output file was written")
        if os.path.exists(marker):
            problems.append("THE PICKLE RAN A COMMAND")
        report(f"hostile/broken {name} -> exit 2: {lines[0][:150] if lines else ''}", "; ".join(problems) + (f": {err[:300]!r}" if problems else ""))
    report("no hostile pickle created its marker file", os.path.exists(marker) and "the marker exists")

    # the C-level reader tests and fuzz, under AddressSanitizer
    exe = "build/asan/test_pth"
    srcs = ["tests/test_pth.c", "loaders/pth.c", "loaders/pickle.c", "loaders/zip.c", "engine/error.c"]
    hdrs = glob.glob("loaders/*.h") + ["tests/testutil.h", "include/viscnn_internal.h"]
    if not os.path.exists(exe) or any(os.path.getmtime(s) > os.path.getmtime(exe) for s in srcs + hdrs):
        r = run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Iinclude", "-Itests", "-O1", "-g", "-fsanitize=address,undefined",
                 "-fno-omit-frame-pointer"] + srcs + ["-lz", "-o", exe])
        if r.returncode:
            report("compile tests/test_pth.c under AddressSanitizer", r.stderr.strip()[-400:])
            return 1
    seeds = [f"--seed-file={os.path.join(D, 'tiny.' + k + '.pth')}" for k in ("zip", "legacy", "zip64", "deflate")]
    r = run([exe, "--iters=5000"] + seeds, ASAN_ENV)
    for line in r.stdout.splitlines():
        if line.startswith("ok "):
            print(line.replace("ok   ", "ok   [asan test_pth] ", 1), flush=True)
        elif line.startswith("FAIL"):
            name, _, why = line[5:].partition(": ")
            report("[asan test_pth] " + name, why)
    if r.returncode or "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        report("tests/test_pth.c under AddressSanitizer", f"exit {r.returncode}: {r.stderr.strip()[-600:]}")
    return 1 if failed else 0


def cleanup():
    """The converted models and big checkpoints are not read again: removed, so
    that build/ stays small after make test (the next run writes them again)."""
    for folder in (D, OUT):
        for f in os.listdir(folder) if os.path.isdir(folder) else []:
            p = os.path.join(folder, f)
            if os.path.isfile(p) and os.path.getsize(p) > (1 << 20):
                os.unlink(p)
    if os.path.exists(os.path.join(D, "done")):
        os.unlink(os.path.join(D, "done"))


if __name__ == "__main__":
    rc = main()
    cleanup()
    sys.exit(rc)
