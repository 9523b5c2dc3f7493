#!/usr/bin/python3
"""Safe writes (issue 14, loaders/atomic_write.c): a run killed with SIGKILL
or SIGINT while it writes a large output leaves nothing under the target's
name (and, for SIGINT, no temporary file either); symlinks planted at the old
predictable temporary name and at the target are never followed.

    /usr/bin/python3 tests/bad_inputs/test_safe_write.py [VISCNN_BINARY]
"""
import os, shutil, signal, subprocess, sys, time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import vcio

V = sys.argv[1] if len(sys.argv) > 1 else "bin/viscnn"
D = os.path.abspath("build/testdata/safe_write")
shutil.rmtree(D, ignore_errors=True)
os.makedirs(D)
MODEL = "models/fashion.safetensors"
failed = 0


def report(ok, desc, why=""):
    global failed
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {desc}" + ("" if ok else f": {why}"))


# 1500 images -> features.0 is (1500, 32, 28, 28) float32 = 150 MB of output
N = 1500
vcio.save_npy(os.path.join(D, "x.npy"), np.random.default_rng(0).standard_normal((N, 1, 28, 28)).astype(np.float32))


def temps(out):
    b = os.path.basename(out)
    return [f for f in os.listdir(D) if f.startswith("." + b + ".tmp-")]


def kill_during_write(sig):
    out = os.path.join(D, f"out_{sig.name}.npy")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # SIGINT and SIGTERM as a terminal would deliver them: a shell's background
    # job (nohup, `&`, some CI runners) starts with SIGINT ignored, which the
    # child would inherit and (rightly) keep
    def default_signals():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    proc = subprocess.Popen([V, "forward", MODEL, "--input", os.path.join(D, "x.npy"), "--layer", "features.0", "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=default_signals)
    seen = 0
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 120:
        t = temps(out)
        if t:
            try:
                seen = os.path.getsize(os.path.join(D, t[0]))
            except FileNotFoundError:
                seen = 0
            if seen > 0:
                proc.send_signal(sig)
                break
        time.sleep(0.0005)
    proc.wait()
    if not seen:
        return report(False, f"{sig.name} during a large write", "the write was never caught in progress (it finished first)")
    partial = os.path.exists(out)
    left = temps(out)
    if sig == signal.SIGKILL:
        ok = not partial
        why = f"{out} exists"
    else:
        ok = not partial and not left and proc.returncode == -sig
        why = f"target exists: {partial}, temporaries left: {left}, exit {proc.returncode}"
    report(ok, f"{sig.name} after {seen} bytes of a 150 MB write: nothing under the target's name"
           + ("" if sig == signal.SIGKILL else ", no temporary file, killed by the signal"), why)
    for f in left:
        os.remove(os.path.join(D, f))


kill_during_write(signal.SIGKILL)
kill_during_write(signal.SIGINT)
kill_during_write(signal.SIGTERM)

# Symlinks planted at OUT.tmp (the name writers used before) and at OUT itself.
vcio.save_npy(os.path.join(D, "x2.npy"), np.zeros((2, 1, 28, 28), np.float32))
victim = os.path.join(D, "victim.txt")
open(victim, "w").write("precious\n")
out = os.path.join(D, "sym.npy")
os.symlink(victim, out + ".tmp")
r = subprocess.run([V, "forward", MODEL, "--input", os.path.join(D, "x2.npy"), "-o", out], capture_output=True, text=True)
ok = r.returncode == 0 and open(victim).read() == "precious\n" and os.path.islink(out + ".tmp") and vcio.load_npy(out).shape == (2, 10)
report(ok, "a symlink planted at OUT.tmp is not followed: its target is untouched, OUT is written", r.stderr)
out2 = os.path.join(D, "sym2.json")
os.symlink(victim, out2)
r = subprocess.run([V, "importance", MODEL, "--input", os.path.join(D, "x2.npy"), "--target", "class:1", "-o", out2], capture_output=True, text=True)
ok = r.returncode == 0 and open(victim).read() == "precious\n" and not os.path.islink(out2) and os.path.isfile(out2)
report(ok, "a symlink at the target itself is replaced, not written through: its target is untouched", r.stderr)
# An output that is one of the command's inputs (by another spelling, or a
# hard link) is refused before anything is read or written.
mcopy = os.path.join(D, "model.safetensors")
shutil.copy(MODEL, mcopy)
os.link(mcopy, os.path.join(D, "hard.safetensors"))
want = open(mcopy, "rb").read()
cases = [(["circuit", mcopy, "--input", os.path.join(D, "x2.npy"), "--mode", "keep:0.1", "-o", os.path.join(D, ".", "model.safetensors")], "-o"),
         (["circuit", mcopy, "--input", os.path.join(D, "x2.npy"), "--mode", "keep:0.1", "-o", os.path.join(D, "c.json"),
           "--pruned", os.path.join(D, "hard.safetensors")], "--pruned"),
         (["forward", mcopy, "--input", os.path.join(D, "x2.npy"), "-o", os.path.join(D, "x2.npy")], "-o")]
for args, opt in cases:
    r = subprocess.run([V] + args, capture_output=True, text=True)
    ok = r.returncode == 2 and f"{opt} " in r.stderr and "is the input" in r.stderr and open(mcopy, "rb").read() == want \
        and r.stderr.count("\n") == 1
    report(ok, f"{args[0]} {opt} naming its own input is refused (exit 2, one line), the input untouched", f"exit {r.returncode}: {r.stderr.strip()}")
# A temporary of the new form can never be reused: every one is created O_EXCL in the target's folder.
left = [f for f in os.listdir(D) if ".tmp-" in f]
report(not left, "no temporary files left after successful writes", str(left))
print(f"safe writes: {failed} failed")
sys.exit(1 if failed else 0)
