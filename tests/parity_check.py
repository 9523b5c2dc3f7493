"""parity_check.py: compares viscnn's forward and gradients with PyTorch.

  /usr/bin/python3 tests/parity_check.py DIR NAME

DIR holds tools/torch_dump.py's reference files and build/tests/parity_run's
ours.safetensors and decisions.npz. Prints one "ok"/"FAIL" line per check,
with the measured errors (max |diff| / max |ref| per tensor):

- logits: against the original PyTorch module, tolerance 1e-4.
- decisions: viscnn's ReLU signs and max-pool argmaxes (decisions.npz, the
  format of `viscnn forward --decisions`) against those of a plain float64
  forward of the same graph: how many differ, and FAIL if one differs by more
  than float32 rounding (tools/replay.py's bound; docs/parity.md).
- d loss/d input and d loss/d every parameter, tolerance 1e-3, against
  PyTorch's float32 autograd through the same graph *on the same branch*:
  viscnn's decisions are replayed (tools/replay.py). Why: with seeded random
  weights deep maps are nearly flat, and neighbouring max-pool inputs differ
  in the 7th digit (googlenet: 0.11421928 vs 0.11421929), so float32 rounding
  alone can pick a different argmax (or flip a ReLU at 1e-6), which moves a
  whole gradient entry to a neighbouring pixel. Those are different but
  equally valid subgradients; matching the branch makes the comparison exact
  for everything the backward computes. The errors against PyTorch's own
  branch are printed too ("#" lines).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import replay  # noqa: E402
import torch2viscnn as t2v  # noqa: E402
import vcio  # noqa: E402

torch.set_num_threads(2)
d, name = sys.argv[1], sys.argv[2]
failed = 0


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def report(ok, text):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + text, flush=True)


graph, tensors = vcio.read_graph(os.path.join(d, "model.safetensors"))
ours, _ = vcio.read_safetensors(os.path.join(d, "ours.safetensors"))
ref_grads, _ = vcio.read_safetensors(os.path.join(d, "grads.safetensors"))
x = np.load(os.path.join(d, "input.npy"))
labels = torch.from_numpy(np.load(os.path.join(d, "labels.npy")))
ref_logits = np.load(os.path.join(d, "logits.npy"))
ref_dinput = np.load(os.path.join(d, "dinput.npy"))
N, K = ref_logits.shape

e = rel(ours["logits"], ref_logits)
report(e <= 1e-4, f"parity {name} logits (N={N}, K={K}) rel err {e:.2e} (tol 1e-4)")

# viscnn's decisions, checked against the plain float64 forward
t64 = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()}
x64 = torch.from_numpy(x.astype(np.float64))
with torch.no_grad():
    _, env = t2v.run_graph(graph, t64, x64[:1], keep=True)
shapes = {k: tuple(v.shape[1:]) for k, v in env.items()}
shapes[graph["input"]["name"]] = tuple(x.shape[1:])
try:
    dec = replay.Decisions(os.path.join(d, "decisions.npz"), graph, shapes, N)
    st = replay.decision_check(t2v.run_graph, graph, t64, x64, dec)
except replay.ReplayError as err:
    report(False, f"parity {name} decisions: {err}")
    sys.exit(1)
report(st["out_of_bound"] == 0 and st["replayed"] > 0,
       f"parity {name} decisions: {replay.describe(st)}")

# PyTorch's own branch (the plain dump): information only.
e_in = rel(ours["dinput"], ref_dinput)
e_p = max(rel(ours["grad:" + k], v) for k, v in ref_grads.items())
print(f"# against PyTorch's own float32 branch: d input {e_in:.2e}, worst param {e_p:.2e}")

params = {k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=True)
          for k, v in tensors.items()}
xt = torch.tensor(x.astype(np.float64), requires_grad=True)
out = t2v.run_graph(graph, params, xt, override=dec.override())
F.cross_entropy(out, labels).backward()

e = rel(ours["dinput"], xt.grad.numpy())
report(e <= 1e-3, f"parity {name} d loss/d input rel err {e:.2e} (tol 1e-3)")
worst, worst_name, missing = 0.0, "-", []
for k, p in params.items():
    if p.grad is None or k.endswith("running_mean") or k.endswith("running_var"):
        continue
    if "grad:" + k not in ours:
        missing.append(k)
        continue
    pe = rel(ours["grad:" + k], p.grad.numpy())
    if not pe <= worst:
        worst, worst_name = pe, k
n_checked = sum(1 for k, p in params.items() if p.grad is not None) - len(missing)
report(not missing and worst <= 1e-3,
       f"parity {name} d loss/d params: {n_checked} tensors, worst {worst_name} rel err {worst:.2e} (tol 1e-3)"
       + (f"; missing {missing[:3]}" if missing else ""))
sys.exit(1 if failed else 0)
