#!/usr/bin/python3
"""bench_torch: PyTorch (CPU) baselines for viscnn's benchmarks.

One measurement per process, so that the peak RSS printed is that
measurement's own:

    /usr/bin/python3 benchmarks/bench_torch.py MODE --model NAME
        [--batch B] [--images N] [--reps R] [--threads T] [--input X.npy]
        [--method M] [--chunk C] [--style original|lean]
    /usr/bin/python3 benchmarks/bench_torch.py fastest --model NAME --check
        [--check-dtype float32|float64]

prints exactly one line on stdout:

    MODE NAME median_seconds min_seconds peak_rss_kib key=value ...

Common to every mode: torch.set_num_threads(T) (default 2), then
torch.manual_seed(0) and the torchvision model NAME built with random weights
(googlenet: aux_logits=False, init_weights=True), in eval mode.  The input is
a batch of 3x224x224 images drawn from N(0, 1) with a generator seeded 0, or
the images of --input X.npy (float32, N x 3 x H x W; cycled when it holds
fewer images than needed).  Each mode runs once untimed (warm-up; for the
score modes one batch), then R times timed (default 5) with
time.perf_counter; median and min are over the R reps, in seconds.
peak_rss_kib is resource.getrusage(RUSAGE_SELF).ru_maxrss at the end of the
process (KiB on Linux): model, input, warm-up and reps included.  Every
line also ends with cpu= (the median over reps of the process's user +
system CPU seconds; with T threads, wall time well above cpu/T means the
process was waiting for a CPU that other processes held; OpenMP threads
spinning while they wait for each other count as CPU).

Modes (what one timed rep is, exactly):

  forward     model(x) under torch.no_grad() for one batch of B images
              (default 8).
  fwdbwd      logits = model(x); loss = F.cross_entropy(logits, argmax
              labels) (mean over the batch); loss.backward() with gradients
              for every parameter, one batch of B.  Parameter gradients are
              reset (set to None) between reps, outside the timed region.
  dissection  the original VISCNN tool's importance computation: every
              nn.Conv2d is replaced by a "dissected" conv, a grouped conv2d
              with groups = C_in whose C_in*C_out output channels are all the
              pre-sum edge maps (for groups=1: weight
              W.permute(1,0,2,3).reshape(Ci*Co,1,k,k), channel i*Co+j = e_ji),
              summed over i plus the bias to give the conv output y; ReLU
              modules are made non-inplace and parameters keep requires_grad
              (as in the original tool).  Tensor hooks on the edge maps and on
              the node maps compute, during the backward of the loss (the
              per-image cross-entropy against the argmax label, summed over
              the batch), every node score mean_p relu(z)*|g| and every edge
              score mean_p |e*gy| (actxgrad toward the loss,
              docs/importance.md; z = the BatchNorm2d output when a BN
              directly follows the conv, else y).  One rep scores N images
              (--images, default 64) in batches of B (default 8) and
              averages the per-image scores; extra fields per_image=
              (median / N), total= (the median) and style=.
              --style original (default) also does, per forward, what the
              original tool's dissected conv does beyond the scores above
              (its dissected_Conv2d with dissect_model's defaults,
              store_activations and store_ranks on): it keeps the conv's
              input, edge maps and output on the module until the next
              forward; it sums the edge maps per output channel by gathering
              them out-channel-major (index_select), splitting into C_out
              groups, concatenating and summing (the step its code marks as
              the one to speed up); and its hooks build the act |e|, grad |g|
              and actxgrad |e*g| maps together and reduce all three, for the
              edges and for the conv output (groups=1 only, as the original).
              --style lean: only what the scores need (a view and a sum, one
              reduction per hook), a stronger baseline than the original.
  fastest     the same scores (all nodes and edges of every conv layer, same
              definitions, same N, same B) computed the fastest way found in
              PyTorch: the unmodified model (in-place ReLUs kept, parameters
              frozen, the input requires grad so that there is a backward),
              forward hooks that keep each conv's input x and register a
              gradient hook on its output, and in that hook (during the
              backward, layer by layer, so nothing is kept longer than
              needed) the edge sums  S[j,i] = sum_b mean_p |e_ji(p) gy_j(p)|
              with e_ji = W[j,i] * x_i computed for a chunk of c input
              channels at a time (c = the most whose edge maps fit in
              --chunk floats, at least 1), by --method:
                split   (default; fastest measured here) U = unfold(x)
                        rearranged once per layer to (Ci, k^2, B*P) and gy
                        to (Co, B*P); per chunk one contiguous batched GEMM
                        (c, Co, k^2) @ (c, k^2, B*P) -> E (c, Co, B*P), then
                        E.mul_(gy).abs_().sum(-1); the input channels are
                        split between T Python threads (a thread pool) that
                        each run torch with 1 intra-op thread (torch ops
                        release the GIL); default chunk 2^18 floats, i.e. one
                        input channel per GEMM for alexnet at batch 8
                bmm     the same on the calling thread with T intra-op
                        threads (default chunk 2^22)
                einsum  E (B, c, Co, P) = torch.einsum('ijk,bikp->bijp',
                        W chunk (c, Co, k^2), unfold(x) chunk (B, c, k^2, P)),
                        then E.mul_(gy).abs_().sum(-1) (default chunk 2^22)
                conv    E = the grouped conv2d of the dissection restricted to
                        a chunk of input channels (groups = c; default chunk
                        2^22), then the same reduction
              Extra fields method= and chunk=.  Per-method timings:
              benchmarks/README.md.

  --check     (with fastest or dissection) instead of timing: computes the
              scores of 2 images (batch 2) with the dissection and with every
              fastest method, in --check-dtype (default float32), and prints
                  check NAME max_rel_err=E images=2 dtype=D bmm=E1 split=E2 ...
              where, per layer, rel err = max |diff| / max |ref| for the node
              scores and for the edge scores, and E is the largest over
              layers, methods, nodes and edges; per-layer errors go to
              stderr.  Exit status 1 when E > 1e-4.  (In float32, models
              with large maps (resnet18, googlenet) can exceed 1e-4: the two
              computations round differently, a few pixels then fall on the
              other side of a ReLU or maxpool tie and route the gradient
              differently; in float64 they agree to ~1e-15.)

Exit status: 0 success, 1 check failed, 2 bad arguments.
"""

import argparse
import concurrent.futures
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

METHODS = ("bmm", "split", "einsum", "conv")
DEFAULT_METHOD = "split"
# default --chunk (floats of edge maps per chunk) per method
DEFAULT_CHUNK = {"bmm": 1 << 22, "split": 1 << 18, "einsum": 1 << 22, "conv": 1 << 22}
CHECK_TOL = 1e-4


# ---------------------------------------------------------------------------
# model and input

def die(msg):
    """Bad arguments or input: one line on stderr, exit status 2."""
    print(f"bench_torch: {msg}", file=sys.stderr)
    sys.exit(2)


def build_model(name, dtype=torch.float32):
    """torchvision model NAME, random weights seeded 0, eval mode, in dtype."""
    if not hasattr(torchvision.models, name) or name.startswith("_"):
        die(f"unknown torchvision model {name!r}")
    kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None, **kw).eval().to(dtype)


def make_input(args, n, dtype=torch.float32):
    """n images: the first n of --input (cycled), else N(0,1) seeded 0."""
    if args.input:
        try:
            a = np.load(args.input)
        except (OSError, ValueError) as e:
            die(f"{args.input}: {e}")
        if a.ndim != 4 or a.shape[1] != 3 or a.shape[0] == 0:
            die(f"{args.input}: expected N x 3 x H x W, got {a.shape}")
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        if x.shape[0] < n:
            x = x.repeat((n + x.shape[0] - 1) // x.shape[0], 1, 1, 1)
        return x[:n].to(dtype).contiguous()
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 224, 224, generator=g).to(dtype)


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---------------------------------------------------------------------------
# score bookkeeping

def scored_layers(model):
    """[(name, conv, z_module)] for every nn.Conv2d, in definition order.

    z_module is the BatchNorm2d registered right after the conv when it
    normalises the conv's channels (torchvision's conv -> bn pairs: resnet,
    googlenet, vgg*_bn), else the conv itself; its output is the node map z.
    """
    mods = list(model.named_modules())
    out = []
    for k, (name, m) in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                die(f"{name}: padding_mode {m.padding_mode} not supported")
            z = m
            if k + 1 < len(mods):
                nxt = mods[k + 1][1]
                if isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == m.out_channels:
                    z = nxt
            out.append((name, m, z))
    return out


class Scores:
    """Sums over images of per-image node and edge scores, per conv layer."""

    def __init__(self, layers):
        self.names = [n for n, _, _ in layers]
        self.shape = {n: (c.out_channels, c.in_channels // c.groups) for n, c, _ in layers}
        self.reset()

    def reset(self):
        self.images = 0
        self.nodes = {n: torch.zeros(s[0], dtype=torch.float64) for n, s in self.shape.items()}
        self.edges = {n: torch.zeros(s, dtype=torch.float64) for n, s in self.shape.items()}

    def mean(self):
        d = max(self.images, 1)
        return {n: (self.nodes[n] / d, self.edges[n] / d) for n in self.names}


def add_node_taps(layers, acc):
    """Forward hooks on each node-map module: node score relu(z)*|dF/dz|."""
    handles = []
    for name, _, zmod in layers:
        def fwd(module, inputs, out, name=name):
            if not out.requires_grad:
                return
            # copy: z may be changed in place later (relu_, resnet's +=);
            # the gradient hook below still gets dF/dz of this version
            zr = torch.relu(out.detach())

            def on_grad(g):
                acc.nodes[name] += (zr * g.abs()).mean((2, 3)).sum(0).double()
            out.register_hook(on_grad)
        handles.append(zmod.register_forward_hook(fwd))
    return handles


def loss_backward(model, x, acc):
    """Forward, per-image cross-entropy against argmax labels summed, backward."""
    logits = model(x)
    labels = logits.detach().argmax(1)
    loss = F.cross_entropy(logits, labels, reduction="sum")
    loss.backward()
    acc.images += x.shape[0]


# ---------------------------------------------------------------------------
# dissection: the original tool's approach

class DissectedConv2d(nn.Module):
    """A conv2d whose C_in*C_out/groups pre-sum edge maps are an intermediate.

    Edge-map channel c*Cog + jj (c = g*cg + i the input channel, Cog =
    C_out/groups, cg = C_in/groups) is e_{g*Cog+jj, i} = W[g*Cog+jj, i] * x_c.

    style "original" does what the original tool's dissected conv does per
    forward (see the module docstring); "lean" only what the scores need.
    """

    def __init__(self, conv, name, acc, style):
        super().__init__()
        co, cg, kh, kw = conv.weight.shape
        g = conv.groups
        if style == "original" and g != 1:
            die(f"{name}: --style original supports groups=1 only (as the original tool)")
        self.name, self.acc, self.style = name, acc, style
        self.co, self.cg, self.g, self.cog, self.ci = co, cg, g, co // g, cg * g
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        w = conv.weight.detach().view(g, co // g, cg, kh, kw).permute(0, 2, 1, 3, 4)
        self.weight = nn.Parameter(w.reshape(self.ci * self.cog, 1, kh, kw).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None
        # original: the edge channels in out-channel-major order (j*Ci + i <- i*Co + j)
        self.register_buffer("out_major", torch.arange(self.ci * co).view(self.ci, co).t().reshape(-1))
        # original: the act and grad ranks it computes alongside actxgrad
        self.side = {k: torch.zeros(self.ci * co) for k in ("act", "grad")}
        self.side_nodes = {k: torch.zeros(co) for k in ("act", "grad", "actxgrad")}
        self.node_actxgrad_to_acc = False   # original style and z is this conv's output

    def forward(self, x):
        e = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.ci)
        b, _, ho, wo = e.shape
        if self.style == "original":
            # store_activations (on by default in the original's dissect_model)
            self.input = x
            self.preadd_out = e
            # its sum within output channels: gather the maps out-channel-major,
            # split into C_out groups of C_in maps, concatenate, sum
            t = e.index_select(1, self.out_major).unsqueeze(1)
            y = torch.cat(torch.split(t, self.ci, dim=2), dim=1).sum(2)
        else:
            y = e.view(b, self.g, self.cg, self.cog, ho, wo).sum(2).reshape(b, self.co, ho, wo)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        if self.acc is not None and e.requires_grad:
            ed = e.detach()
            original = self.style == "original"

            def on_grad(ge):            # dF/de_ji = gy_j, for every i
                if original:            # its three edge ranks, all maps built first
                    t = ed * ge
                    ranks = {"act": ed.abs(), "grad": ge.abs(), "actxgrad": t.abs()}
                    for k in ("act", "grad"):
                        self.side[k] += ranks[k].mean((2, 3)).sum(0)
                    s = ranks["actxgrad"].mean((2, 3)).sum(0)
                else:
                    s = (ed * ge).abs().mean((2, 3)).sum(0)
                s = s.view(self.g, self.cg, self.cog).permute(0, 2, 1).reshape(self.co, self.cg)
                self.acc.edges[self.name] += s.double()
            e.register_hook(on_grad)
            if original:
                self.postbias_out = y
                yd = y.detach()

                def on_node_grad(gy):   # its three node ranks on the conv output
                    zr = torch.relu(yd)
                    ranks = {"act": zr, "grad": gy.abs(), "actxgrad": zr * gy.abs()}
                    for k in ("act", "grad"):
                        self.side_nodes[k] += ranks[k].mean((2, 3)).sum(0)
                    t = ranks["actxgrad"].mean((2, 3)).sum(0)
                    if self.node_actxgrad_to_acc:
                        self.acc.nodes[self.name] += t.double()
                    else:
                        self.side_nodes["actxgrad"] += t
                y.register_hook(on_node_grad)
        return y


def dissect(model, layers, acc, style):
    """Replace every conv of `layers` by a DissectedConv2d; ReLUs non-inplace."""
    dissected = {}
    for name, conv, z in layers:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        dissected[name] = DissectedConv2d(conv, name, acc, style)
        dissected[name].node_actxgrad_to_acc = style == "original" and z is conv
        setattr(parent, attr, dissected[name])
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    # node maps: the dissected conv's output unless a BN follows
    return [(n, dissected[n], dissected[n] if z is c else z) for n, c, z in layers]


# ---------------------------------------------------------------------------
# fastest: hooks on the plain model, edge sums chunk by chunk

def edge_sums(x, w, gy, conv, method, chunk, pool=None):
    """(Co, Ci/groups) float64: sum over the batch of mean_p |e_ji * gy_j|."""
    co, cg, kh, kw = w.shape
    g = conv.groups
    cog = co // g
    out = torch.empty(co, cg, dtype=torch.float64)
    for gi in range(g):
        xs = x[:, gi * cg:(gi + 1) * cg]
        ws = w[gi * cog:(gi + 1) * cog]
        gs = gy[:, gi * cog:(gi + 1) * cog]
        out[gi * cog:(gi + 1) * cog] = _edge_sums_group(xs, ws, gs, conv, method, chunk, pool)
    return out


def _edge_sums_group(x, w, gy, conv, method, chunk, pool):
    b = x.shape[0]
    co, ci, kh, kw = w.shape
    ho, wo = gy.shape[2:]
    p = ho * wo
    k2 = kh * kw
    c = max(1, min(ci, chunk // (b * co * p)))        # input channels per chunk
    res = torch.empty(ci, co, dtype=x.dtype)          # res[i, j]
    if method in ("bmm", "split"):
        # U[i] = unfold(x)_i as (k^2, B*P), G = gy as (Co, B*P): one
        # contiguous (Co x k^2) @ (k^2 x B*P) GEMM per input channel
        u = F.unfold(x, (kh, kw), conv.dilation, conv.padding, conv.stride)
        u = u.view(b, ci, k2, p).permute(1, 2, 0, 3).reshape(ci, k2, b * p)
        wt = w.reshape(co, ci, k2).transpose(0, 1).contiguous()   # (Ci, Co, k^2)
        g = gy.transpose(0, 1).reshape(co, b * p)

        def run(lo, hi):
            for i0 in range(lo, hi, c):
                i1 = min(hi, i0 + c)
                e = torch.bmm(wt[i0:i1], u[i0:i1])                  # (c, Co, B*P)
                res[i0:i1] = e.mul_(g).abs_().sum(-1)
        if method == "bmm" or pool is None:
            run(0, ci)
        else:
            pool.split(run, ci)
    else:
        g = gy.reshape(b, 1, co, p)
        if method == "einsum":
            u = F.unfold(x, (kh, kw), conv.dilation, conv.padding, conv.stride).view(b, ci, k2, p)
            wt = w.reshape(co, ci, k2).transpose(0, 1)               # (Ci, Co, k^2)
        else:
            wd = w.transpose(0, 1).reshape(ci * co, 1, kh, kw)       # channel i*Co + j
        for i0 in range(0, ci, c):
            i1 = min(ci, i0 + c)
            if method == "einsum":
                e = torch.einsum("ijk,bikp->bijp", wt[i0:i1], u[:, i0:i1])
            else:
                e = F.conv2d(x[:, i0:i1], wd[i0 * co:i1 * co], None, conv.stride,
                             conv.padding, conv.dilation, i1 - i0).view(b, i1 - i0, co, p)
            res[i0:i1] = e.mul_(g).abs_().sum(-1).sum(0)                  # (c, Co)
    return res.t().double() / p


def add_edge_taps(layers, acc, method, chunk, pool=None):
    handles = []
    for name, conv, _ in layers:
        def fwd(module, inputs, out, name=name):
            if not out.requires_grad:
                return
            x = inputs[0]
            version = x._version
            xd = x.detach()

            def on_grad(gy):
                if x._version != version:
                    raise RuntimeError(f"{name}: conv input modified in place before backward")
                acc.edges[name] += edge_sums(xd, module.weight.detach(), gy, module, method, chunk, pool)
            out.register_hook(on_grad)
        handles.append(conv.register_forward_hook(fwd))
    return handles


# ---------------------------------------------------------------------------
# score runners

class DissectionRunner:
    def __init__(self, name, style="original", dtype=torch.float32):
        model = build_model(name, dtype)
        layers = scored_layers(model)
        self.acc = Scores(layers)
        self.model = model
        # the original style's conv hook gives the node score itself where
        # the node map is the conv's output; a tap is added for the others
        taps = [t for t in dissect(model, layers, self.acc, style)
                if not (style == "original" and t[2] is t[1])]
        add_node_taps(taps, self.acc)

    def batch(self, x):
        loss_backward(self.model, x, self.acc)
        self.model.zero_grad(set_to_none=True)


class Workers:
    """T Python threads running torch with one intra-op thread each (torch
    ops release the GIL, so the threads compute in parallel)."""

    def __init__(self, n):
        self.n = n
        self.pool = concurrent.futures.ThreadPoolExecutor(
            n, initializer=torch.set_num_threads, initargs=(1,))

    def split(self, fn, count):
        """fn(lo, hi) on n contiguous parts of range(count), in parallel."""
        bounds = [count * k // self.n for k in range(self.n + 1)]
        futures = [self.pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(self.n)]
        for f in futures:
            f.result()


class FastestRunner:
    def __init__(self, name, method, chunk, threads, dtype=torch.float32):
        model = build_model(name, dtype)
        chunk = chunk or DEFAULT_CHUNK[method]
        pool = Workers(threads) if method == "split" else None
        for prm in model.parameters():
            prm.requires_grad_(False)
        layers = scored_layers(model)
        self.acc = Scores(layers)
        self.model = model
        add_node_taps(layers, self.acc)
        add_edge_taps(layers, self.acc, method, chunk, pool)

    def batch(self, x):
        loss_backward(self.model, x.detach().requires_grad_(True), self.acc)


def run_scores(runner, x, bsz):
    """Score every image of x in batches of bsz; returns the mean scores."""
    runner.acc.reset()
    for s in range(0, x.shape[0], bsz):
        runner.batch(x[s:s + bsz])
    return runner.acc.mean()


# ---------------------------------------------------------------------------
# measurements

def timed(fn, reps, before=None):
    """(median, min) wall seconds and median process CPU seconds over reps."""
    ts, cpu = [], []
    for _ in range(reps):
        if before:
            before()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(ts), min(ts), statistics.median(cpu)


def check(args):
    """Compare every fastest method with the dissection on 2 images."""
    dtype = getattr(torch, args.check_dtype)
    x = make_input(args, 2, dtype)
    ref = run_scores(DissectionRunner(args.model, args.style, dtype), x, 2)
    worst, per_method = 0.0, []
    for method in METHODS:
        got = run_scores(FastestRunner(args.model, method, args.chunk, args.threads, dtype), x, 2)
        merr = 0.0
        for layer in ref:
            errs = []
            for r, t in zip(ref[layer], got[layer]):
                scale = r.abs().max().item()
                errs.append((r - t).abs().max().item() / (scale if scale > 0 else 1.0))
            print(f"  {method:7s} {layer:24s} nodes {errs[0]:.2e} edges {errs[1]:.2e}", file=sys.stderr)
            merr = max(merr, *errs)
        per_method.append(f"{method}={merr:.2e}")
        worst = max(worst, merr)
    print(f"check {args.model} max_rel_err={worst:.2e} images=2 dtype={args.check_dtype} "
          + " ".join(per_method))
    return 0 if worst <= CHECK_TOL else 1


def main():
    ap = argparse.ArgumentParser(
        description="PyTorch baselines for viscnn's benchmarks (see the module docstring).")
    ap.add_argument("mode", choices=("forward", "fwdbwd", "dissection", "fastest"))
    ap.add_argument("--model", required=True, help="torchvision model name (alexnet, vgg11, resnet18, googlenet, ...)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--images", type=int, default=64, help="images scored (dissection, fastest)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input", help="X.npy, float32 N x 3 x H x W (default: N(0,1) seeded 0)")
    ap.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help="fastest: edge formulation")
    ap.add_argument("--chunk", type=int, default=0,
                    help="fastest: max floats of edge maps per chunk (default: per method)")
    ap.add_argument("--style", choices=("original", "lean"), default="original",
                    help="dissection: as the original tool does it, or only what the scores need")
    ap.add_argument("--check", action="store_true", help="compare fastest with dissection on 2 images")
    ap.add_argument("--check-dtype", choices=("float32", "float64"), default="float32",
                    help="--check: compute both in this dtype")
    args = ap.parse_args()
    if min(args.batch, args.images, args.reps, args.threads) < 1 or args.chunk < 0:
        ap.error("--batch, --images, --reps and --threads must be >= 1, --chunk >= 0")
    torch.set_num_threads(args.threads)

    if args.check:
        if args.mode not in ("fastest", "dissection"):
            ap.error("--check goes with fastest or dissection")
        return check(args)

    extra = [f"batch={args.batch}", f"threads={args.threads}"]
    if args.mode in ("forward", "fwdbwd"):
        model = build_model(args.model)
        x = make_input(args, args.batch)
        if args.mode == "forward":
            def fn():
                with torch.no_grad():
                    model(x)
            before = None
        else:
            def fn():
                logits = model(x)
                F.cross_entropy(logits, logits.detach().argmax(1)).backward()

            def before():
                model.zero_grad(set_to_none=True)
        fn()                                                   # warm-up
        med, mn, cpu = timed(fn, args.reps, before)
    else:
        if args.mode == "dissection":
            runner = DissectionRunner(args.model, args.style)
            extra.append(f"style={args.style}")
        else:
            runner = FastestRunner(args.model, args.method, args.chunk, args.threads)
            extra += [f"method={args.method}", f"chunk={args.chunk or DEFAULT_CHUNK[args.method]}"]
        x = make_input(args, args.images)
        run_scores(runner, x[:args.batch], args.batch)         # warm-up: one batch
        med, mn, cpu = timed(lambda: run_scores(runner, x, args.batch), args.reps)
        extra = [f"images={args.images}", f"per_image={med / args.images:.4f}",
                 f"total={med:.3f}"] + extra
    extra.append(f"cpu={cpu:.3f}")
    print(f"{args.mode} {args.model} {med:.4f} {mn:.4f} {peak_rss_kib()} " + " ".join(extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
