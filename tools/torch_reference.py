#!/usr/bin/python3
"""torch_reference: an independent PyTorch oracle for viscnn's importance scores.

    /usr/bin/python3 tools/torch_reference.py MODEL.safetensors --input X.npy
        [--labels L.npy] [--target T [--target T2 ...]] [--metric M[,M2,...]]
        [--by-class] [--probe-float32] [--mem-gb G]
        [--replay D.npz [--replay-report R.json]] -o OUT.json|OUT.npz
    /usr/bin/python3 tools/torch_reference.py MODEL.safetensors --input X.npy
        --edges LAYER [--image-index K] [--out J] [--in I] [--grad]
        [--labels L.npy] [--target T] [--replay D.npz [--replay-report R.json]]
        -o MAPS.npy

Scores follow docs/importance.md exactly, computed the way the original VISCNN
tool did.  The viscnn graph is executed with PyTorch ops (run_graph of
tools/torch2viscnn.py, in float64) and every scored conv2d is replaced by a
"dissected" convolution: a grouped conv2d with groups = C_in whose
C_in*(C_out/groups) output channels are the pre-sum edge maps

    E[:, c*Cog + jj] = W[g*Cog + jj, i] (*) x_c,   c = g*cg + i

(cg = C_in/groups, Cog = C_out/groups, g = group of the input channel c; for
groups=1 this is conv2d(x, W.permute(1,0,2,3).reshape(Ci*Co,1,k,k),
groups=Ci), channel i*Co+j = e_ji; depthwise is cg = 1), followed by the sum
over i plus the bias.  That sum is the conv output y that the rest of the
network sees.  The maps are float32 (PyTorch's float64 grouped conv is 20x
slower); a 1x1 unpadded kernel is evaluated as the equal broadcast product
x_c * W[j, i]; the sum over i is accumulated in float64 (float32 blocks of
128 channels).

Gradients come from autograd: g = dF/dz on the node maps z (the output of the
batchnorm2d that directly follows the conv when it is the conv's only
consumer, else y), gy = dF/dy on the sum node, which is the gradient of every
edge map e_ji of out-channel j (d(sum_i e_ji)/de_ji = 1; --edges mode takes it
from the edge-map tensor itself and checks that it is the same for every i).
The gradient to the layer's input and weight flows through an ordinary
conv2d of the same x and W (value-neutral: y + (c - c.detach())), the same
derivative as through the dissected one but far cheaper.  snip's dF/dW is
that weight gradient, summed over the images of a set.

Edge sums over the pixels are batched dot products (float32 GEMMs) of the
edge maps with the gradient maps: taylor sum_p e*gy, actxgrad sum_p |e|*|gy|
(|e*gy| = |e|*|gy|), act sum_p |e|.  Node scores, the means over pixels and
images are float64.  One dissection serves every target and metric of a run:
several --target options and metrics may be given, and -o is then a pattern
with {target} (':' and '/' written as '_') and/or {metric}.  Images are
processed a few at a time (the maps hold C_in*C_out*Ho*Wo floats per image
and layer; --mem-gb bounds them, splitting the layers over several passes
when one image's maps do not fit).

Output: the JSON of `viscnn importance` (docs/formats.md):
{"metric", "target", "images", "layers": [{"name", "in_channels",
"out_channels", "groups", "nodes": [...], "edges": [[...], ...]}],
"categories": {NAME: {"images", "layers"}}}.  With --by-class and --labels the
categories are the label values in increasing order, named by the model's
labels (or the number), and "layers" is "overall", the mean of the category
scores.  An -o name ending in .npz stores the same document with the score
lists as float64 arrays (load_scores() reads both; JSON text of millions of
floats is slow to write and read).

--replay D.npz imposes the engine's own discrete decisions on the float64
forward: every ReLU's sign and every max-pool's argmax as `viscnn forward
MODEL --input X.npy --decisions D.npz` recorded them for the same --input
(tools/replay.py, docs/parity.md).  The reference then takes the engine's
branches and differs from it by rounding alone, so scores, maps and
gradients can be compared tightly whatever float32 rounding (and the thread
count behind it) decided near a tie.  It also compares those decisions with
the plain (unreplayed) float64 forward's: how many differ, and whether one
differs by more than float32 rounding; the summary goes to stderr and, with
--replay-report, to R.json.  A decisions file that does not fit the model
and the batch is refused (exit 2).

--probe-float32 (.npz only) adds "nodes_f32"/"edges_f32" to every layer: the
same scores from an ordinary float32 forward/backward (PyTorch's im2col+GEMM
convolutions, sharing the edge maps).  Their distance from the float64 scores
is the float32 noise floor of each score: in deep nets with small maps a
ReLU input or a max-pool pair that rounding puts on the other side of 0 (of
each other) moves a score by a visible fraction (one 7x7 pixel of one of 8
images: 1/392).  The probe never replays.

--edges LAYER writes the edge maps of one conv layer for one image of the batch
(--image-index) as float32 (J, I, Ho, Wo) (all out-channels J and in-channels I
within the group by default; --out/--in take lists like 0,3 or 1-2), and with
--grad (or --target) also MAPS.grad.npy (J, Ho, Wo): gy_j = dF/dy_j for the
target (default loss; label from --labels, else the argmax).

Exit status: 0 success, 2 bad input (one-line reason), 1 internal error.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vcio  # noqa: E402
from torch2viscnn import run_graph  # noqa: E402
from replay import Decisions, ReplayError, chain, decision_check, describe  # noqa: E402

PROG = "torch_reference"
METRICS = ("actxgrad", "act", "grad", "taylor", "weight", "snip")
# single-input ops that act on each channel separately (docs/importance.md)
PER_CHANNEL = ("batchnorm2d", "relu", "maxpool2d", "avgpool2d",
               "adaptive_avgpool2d", "dropout", "lrn")
DT = torch.float64       # scores, sums over pixels and images
NET = torch.float64      # the network (--net-dtype)


class BadInput(Exception):
    pass


# ---------------------------------------------------------------------------
# Model and graph analysis

class Model:
    def __init__(self, path):
        try:
            self.graph, raw = vcio.read_graph(path)
        except (OSError, ValueError) as e:
            raise BadInput(str(e)) from None
        self.path = path
        self.tensors = {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(NET)
                        for k, v in raw.items()}
        self.nodes = self.graph["nodes"]
        self.index = {n["name"]: k for k, n in enumerate(self.nodes)}
        self.labels = self.graph.get("labels") or []
        self.consumers = {n["name"]: [] for n in self.nodes}
        for n in self.nodes:
            for i in n["inputs"]:
                if i in self.consumers:
                    self.consumers[i].append(n["name"])
        self.convs = [n["name"] for n in self.nodes if n["op"] == "conv2d"]
        # shapes of every node, from a zero image
        shape = self.graph["input"]["shape"]
        with torch.no_grad():
            _, env = run_graph(self.graph, self.tensors,
                               torch.zeros([1] + list(shape), dtype=NET), keep=True)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in env.items()}
        self.shapes[self.graph["input"]["name"]] = tuple(shape)
        self.n_out = int(np.prod(self.shapes[self.graph["output"]]))

    def node(self, name):
        return self.nodes[self.index[name]]

    def bn_after(self, conv):
        """The batchnorm2d directly following `conv` when it is its only consumer."""
        cons = self.consumers[conv]
        if len(cons) == 1 and self.node(cons[0])["op"] == "batchnorm2d" \
                and conv != self.graph["output"]:
            return cons[0]
        return None

    def z_name(self, conv):
        return self.bn_after(conv) or conv

    def weight(self, conv):
        return self.tensors[self.node(conv)["params"]["weight"]]

    def dims(self, conv):
        """(G, cg, Cog, Co, P) of a conv layer."""
        w = self.weight(conv)
        G = self.node(conv)["attrs"]["groups"]
        Co, cg = int(w.shape[0]), int(w.shape[1])
        _, Ho, Wo = self.shapes[conv]
        return G, cg, Co // G, Co, Ho * Wo

    def layer_info(self, conv):
        G, cg, _, Co, _ = self.dims(conv)
        return {"name": conv, "in_channels": cg * G, "out_channels": Co, "groups": G}


class Target:
    """loss | class:K | node:LAYER:CH, per docs/importance.md."""

    def __init__(self, model, text):
        self.text = text
        self.stop = model.graph["output"]   # the node whose output F reads
        self.layer = None                   # graph index of the target conv
        self.ch = None
        if text == "loss":
            self.kind = "loss"
        elif text.startswith("class:"):
            self.kind = "class"
            self.ch = _int(text[6:], f"--target {text}: class must be an integer")
            if not 0 <= self.ch < model.n_out:
                raise BadInput(f"--target {text}: class must be in [0, {model.n_out})")
        elif text.startswith("node:"):
            self.kind = "node"
            layer, sep, ch = text[5:].rpartition(":")
            if not sep or layer not in model.index:
                raise BadInput(f"--target {text}: expected node:LAYER:CH with a layer of the model")
            self.ch = c = _int(ch, f"--target {text}: channel must be an integer")
            node = layer
            if model.node(layer)["op"] == "conv2d" and model.bn_after(layer):
                node = model.bn_after(layer)          # the node map z
            shp = model.shapes[node]
            if len(shp) != 3:
                raise BadInput(f"--target {text}: {node} is not a channel map (for the "
                               f"model's outputs use class:K)")
            if not 0 <= c < shp[0]:
                raise BadInput(f"--target {text}: {node} has no channel {c}")
            self.stop = node
            cur = node            # walk back to the conv that makes this map
            while model.node(cur)["op"] != "conv2d":
                n = model.node(cur)
                if n["op"] in PER_CHANNEL:
                    cur = n["inputs"][0]
                elif n["op"] == "concat":
                    # beyond docs/importance.md's list: follow the input that
                    # holds the channel (as viscnn does)
                    for inp in n["inputs"]:
                        if c < model.shapes[inp][0]:
                            cur = inp
                            break
                        c -= model.shapes[inp][0]
                else:
                    cur = None
                if cur not in model.index:
                    raise BadInput(f"--target {text}: {layer} is not the channel map of a conv layer")
            self.layer = model.index[cur]
        else:
            raise BadInput(f"--target {text}: expected loss, class:K or node:LAYER:CH")
        self.scored = [c for c in model.convs
                       if self.layer is None or model.index[c] < self.layer]
        if not self.scored:
            raise BadInput(f"--target {text}: no conv layer comes before the target layer")

    def value(self, env, output, labels):
        """Per-image F (N,)."""
        out = env[self.stop]
        if self.kind == "loss":
            logits = out.reshape(out.shape[0], -1)
            if labels is None:
                labels = logits.detach().argmax(1)
            return -F.log_softmax(logits, 1).gather(1, labels.view(-1, 1)).view(-1)
        if self.kind == "class":
            return out.reshape(out.shape[0], -1)[:, self.ch]
        return out[:, self.ch].mean(dim=(1, 2))

    def tag(self):
        return self.text.replace(":", "_").replace("/", "_")


def _int(s, msg):
    try:
        return int(s)
    except ValueError:
        raise BadInput(msg) from None


# ---------------------------------------------------------------------------
# The dissected convolution

def dissected_weight(w, groups):
    """(Co, cg, kh, kw) -> (C_in*Cog, 1, kh, kw): channel c*Cog+jj = W[g*Cog+jj, c%cg]."""
    Co, cg, kh, kw = w.shape
    Cog = Co // groups
    return w.reshape(groups, Cog, cg, kh, kw).permute(0, 2, 1, 3, 4) \
            .reshape(groups * cg * Cog, 1, kh, kw)


def dissect(x, w, a):
    """The edge maps E (N, C_in*Cog, Ho, Wo): channel c*Cog+jj is e_(g*Cog+jj),(c%cg).

    A 1x1 kernel without padding makes the grouped convolution a plain
    product x_c * W[j, i]; it is evaluated as that broadcast product (the same
    float32 numbers, 3x faster than PyTorch's grouped conv)."""
    dw = dissected_weight(w, a["groups"])
    if tuple(dw.shape[2:]) == (1, 1) and tuple(a["padding"]) == (0, 0):
        sh, sw = a["stride"]
        xs = x[:, :, ::sh, ::sw]
        N, Cin, Ho, Wo = xs.shape
        Cog = dw.shape[0] // Cin
        E = xs.reshape(N, Cin, 1, Ho * Wo) * dw.view(1, Cin, Cog, 1)
        return E.view(N, Cin * Cog, Ho, Wo)
    return F.conv2d(x, dw, None, a["stride"], a["padding"], a["dilation"], x.shape[1])


def edge_sum(E, G, cg, Cog, b):
    """sum_i e_ji (+ b_j): (N, Co, Ho, Wo) in the network's dtype.  float32
    partial sums over blocks of 128 in-channels, accumulated in float64 (a
    float64 reduction over all of E is 7x slower; a float32 one has the
    rounding of a float32 conv, which flips the odd ReLU)."""
    N, _, Ho, Wo = E.shape
    Ev = E.view(N, G, cg, Cog, Ho, Wo)
    if E.dtype == DT:
        y = Ev.sum(2)
    else:
        y = Ev[:, :, :128].sum(2).to(DT)
        for i in range(128, cg, 128):
            y += Ev[:, :, i:i + 128].sum(2)
    y = y.reshape(N, G * Cog, Ho, Wo).to(NET)
    return y + b.view(1, -1, 1, 1) if b is not None else y


def edges_jI(E, G, cg, Cog):
    """(N, C_in*Cog, Ho, Wo) -> (N, Co, cg, Ho, Wo): [n, j, i] = e_ji."""
    N, _, Ho, Wo = E.shape
    return E.view(N, G, cg, Cog, Ho, Wo).permute(0, 1, 3, 2, 4, 5).reshape(N, G * Cog, cg, Ho, Wo)


# ---------------------------------------------------------------------------
# One pass: dissected forward, gradients for every target

def forward_pass(model, graph, x, dissected, want_wgrad, replay=None):
    """Runs `graph` on x with the convs in `dissected` replaced by their
    dissection (and with replay, a run_graph override, the engine's decisions
    imposed).  Returns (env, {conv: {"E": float32 maps, "y": output, "w":
    weight tensor}})."""
    tensors = dict(model.tensors)
    if want_wgrad:
        for c in dissected:
            wn = model.node(c)["params"]["weight"]
            tensors[wn] = model.tensors[wn].clone().requires_grad_(True)
    saved = {}

    def override(node, inputs, attrs):
        name = node["name"]
        if name not in dissected:
            return None
        p = node.get("params", {})
        w = tensors[p["weight"]]
        b = tensors[p["bias"]] if p.get("bias") else None
        xin = inputs[0]
        G, cg, Cog, _, _ = model.dims(name)
        with torch.no_grad():
            E = dissect(xin.detach().float(), w.detach().float(), attrs)
            y = edge_sum(E, G, cg, Cog, b)
        # y is the dissected sum; the gradient flows to y (a leaf) and, through
        # an ordinary conv of the same x and W (value-neutral), on to x and W
        y.requires_grad_(True)
        if xin.requires_grad or w.requires_grad:
            c = F.conv2d(xin, w, None, attrs["stride"], attrs["padding"],
                         attrs["dilation"], attrs["groups"])
            y = y + (c - c.detach())
        saved[name] = {"E": E, "y": y, "w": w}
        return y

    _, env = run_graph(graph, tensors, x, keep=True, override=chain(override, replay))
    return env, saved


def target_grads(model, target, env, saved, labels, layers, want_wgrad):
    """Gradients of sum_n F_n for one target: {conv: (gy, g, dW)} for `layers`."""
    Fv = target.value(env, model.graph["output"], labels)
    inputs, keys = [], []
    for c in layers:
        inputs.append(saved[c]["y"])
        keys.append((c, "gy"))
        zt = env[model.z_name(c)]
        inputs.append(zt)
        keys.append((c, "g"))
        if want_wgrad:
            inputs.append(saved[c]["w"])
            keys.append((c, "dw"))
    grads = torch.autograd.grad(Fv.sum(), inputs, retain_graph=True, allow_unused=True)
    out = {c: {} for c in layers}
    for (c, k), t, g in zip(keys, inputs, grads):
        out[c][k] = g.detach() if g is not None else torch.zeros_like(t)
    return out


def edge_reductions(E, gys, G, cg, Cog, P, want_signed, want_abs, want_act):
    """Per-image edge sums over the pixels of one layer.

    E: float32 (N, C_in*Cog, Ho, Wo) (made |E| in place); gys: list of float64
    (N, Co, Ho, Wo), one per target.  Returns (signed, absg, act): lists (one
    per target) of float64 (N, Co, cg) with sum_p e*gy, sum_p |e|*|gy|, and
    (N, Co, cg) sum_p |e| (or None)."""
    N = E.shape[0]
    T = len(gys)
    Ev = E.view(N, G, cg, Cog, P)
    signed = [torch.zeros(N, G, Cog, cg, dtype=DT) for _ in range(T)] if want_signed else None
    absg = [torch.zeros(N, G, Cog, cg, dtype=DT) for _ in range(T)] if want_abs else None
    act = torch.zeros(N, G, Cog, cg, dtype=DT) if want_act else None
    for n in range(N):
        for g in range(G):
            Ep = Ev[n, g].permute(1, 0, 2)          # (Cog, cg, P) view
            gy = [t[n].reshape(G, Cog, P)[g].float() for t in gys]
            if want_signed and T:
                r = torch.bmm(Ep, torch.stack(gy, 2))   # (Cog, cg, T)
                for t in range(T):
                    signed[t][n, g] = r[:, :, t].double()
            if want_abs or want_act:
                Ep.abs_()
                cols = [v.abs() for v in gy] if want_abs else []
                if want_act:
                    cols.append(torch.ones(Cog, P))
                r = torch.bmm(Ep, torch.stack(cols, 2))
                k = 0
                if want_abs:
                    for t in range(T):
                        absg[t][n, g] = r[:, :, t].double()
                    k = T
                if want_act:
                    act[n, g] = r[:, :, k].double()
    shape = (N, G * Cog, cg)
    return ([s.reshape(shape) for s in signed] if signed else None,
            [s.reshape(shape) for s in absg] if absg else None,
            act.reshape(shape) if act is not None else None)


# ---------------------------------------------------------------------------
# Scores over image sets

class Accumulator:
    """Sums of per-image scores of one image set, per target, metric and layer."""

    def __init__(self):
        self.sums = {}     # (target, metric, conv) -> [nodes, edges]
        self.wgrad = {}    # (target, conv) -> sum of dF/dW
        self.probe = False

    def add(self, key, nodes, edges):
        """nodes, edges: fresh tensors (kept and added to in place)."""
        if key in self.sums:
            self.sums[key][0] += nodes
            self.sums[key][1] += edges
        else:
            self.sums[key] = [nodes, edges]


PROBE = "@f32"    # key suffix of the float32-network probe scores


def tensors32(model):
    if not hasattr(model, "tensors32"):
        model.tensors32 = {k: v.float() for k, v in model.tensors.items()}
    return model.tensors32


def probe_grads(model, graph, x, labels, targets, layers, want_wgrad):
    """The float32 probe: an ordinary float32 forward of the graph and, per
    target, the gradients on the conv outputs and node maps.  PyTorch's
    im2col+GEMM convolution, not mkldnn's (whose float32 rounding is 3x larger
    and flips many more decisions than a plain float32 conv).
    Returns ({t.text: {conv: {"gy", "g", "dw"}}}, env)."""
    tensors = dict(tensors32(model))
    wparams = {}
    if want_wgrad:
        for c in layers:
            wn = model.node(c)["params"]["weight"]
            tensors[wn] = wparams[c] = model.tensors32[wn].clone().requires_grad_(True)
    with torch.enable_grad(), torch.backends.mkldnn.flags(enabled=False):
        _, env = run_graph(graph, tensors, x.float().requires_grad_(True), keep=True)
        out = {}
        for t in targets:
            mine = [c for c in layers if c in t.scored]
            if not mine:
                continue
            Fv = t.value(env, model.graph["output"], labels)
            inputs, keys = [], []
            for c in mine:
                inputs += [env[c], env[model.z_name(c)]]
                keys += [(c, "gy"), (c, "g")]
                if want_wgrad:
                    inputs.append(wparams[c])
                    keys.append((c, "dw"))
            with torch.backends.mkldnn.flags(enabled=False):
                grads = torch.autograd.grad(Fv.sum(), inputs, retain_graph=True,
                                            allow_unused=True)
            out[t.text] = {c: {} for c in mine}
            for (c, k), tt, g in zip(keys, inputs, grads):
                out[t.text][c][k] = g.detach() if g is not None else torch.zeros_like(tt)
    return out, env


def run_batch(model, targets, metrics, x, labels, layers, acc, replay=None):
    """Adds the scores of the images x for the conv layers `layers` (and, with
    acc.probe, those of the float32 probe, which never replays)."""
    need_E = any(m in metrics for m in ("actxgrad", "act", "taylor"))
    need_grad = any(m in metrics for m in ("actxgrad", "grad", "taylor", "snip"))
    want_wgrad = "snip" in metrics
    last = max(model.index[t.stop] for t in targets)
    graph = dict(model.graph)
    graph["nodes"] = model.nodes[:last + 1]
    graph["output"] = model.nodes[last]["name"]
    with torch.set_grad_enabled(need_grad):
        env, saved = forward_pass(model, graph, x, set(layers), want_wgrad, replay)
        grads = {}
        if need_grad:
            for t in targets:
                mine = [c for c in layers if c in t.scored]
                if mine:
                    grads[t.text] = target_grads(model, t, env, saved, labels, mine, want_wgrad)
    variants = [("", env, grads)]
    if acc.probe:
        if need_grad:
            g32, env32 = probe_grads(model, graph, x, labels, targets, layers, want_wgrad)
        else:
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                _, env32 = run_graph(graph, tensors32(model), x.float(), keep=True)
            g32 = {}
        variants.append((PROBE, env32, g32))
    N = x.shape[0]
    for c in layers:
        G, cg, Cog, Co, P = model.dims(c)
        tlist = [t for t in targets if c in t.scored]
        # (variant suffix, target, gradients) of every gradient set, in bmm column order
        sets = [(suf, t, gr[t.text][c]) for suf, _, gr in variants for t in tlist] if need_grad else []
        if need_E:
            signed, absg, act = edge_reductions(
                saved[c]["E"], [gr["gy"] for _, _, gr in sets], G, cg, Cog, P,
                "taylor" in metrics, "actxgrad" in metrics, "act" in metrics)
            saved[c]["E"] = None
        rz = {}
        for suf, ev, _ in variants:
            z = ev[model.z_name(c)].detach().reshape(N, Co, P).to(DT)
            rz[suf] = torch.relu(z)
            if "act" in metrics:
                nd = rz[suf].sum(2).sum(0) / P
                ed = act.sum(0) / P
                for t in tlist:
                    acc.add((t.text + suf, "act", c), nd.clone(), ed.clone())
        for k, (suf, t, gr) in enumerate(sets):
            key = t.text + suf
            g = gr["g"].reshape(N, Co, P).to(DT)
            r = rz[suf]
            ag = g.abs() if "actxgrad" in metrics or "grad" in metrics else None
            if "actxgrad" in metrics:
                acc.add((key, "actxgrad", c), torch.einsum("ncp,ncp->c", r, ag) / P,
                        absg[k].sum(0) / P)
            if "taylor" in metrics:
                acc.add((key, "taylor", c), (torch.einsum("ncp,ncp->nc", r, g) / P).abs().sum(0),
                        (signed[k] / P).abs().sum(0))
            if "grad" in metrics:
                ng = ag.sum(2).sum(0) / P
                acc.add((key, "grad", c), ng, ng.unsqueeze(1).expand(Co, cg).clone())
            if "snip" in metrics:
                dw = gr["dw"].to(DT)
                acc.wgrad[(key, c)] = acc.wgrad[(key, c)] + dw if (key, c) in acc.wgrad else dw
        del saved[c]


def weight_scores(model, c):
    """The data-free `weight` scores of conv c (computed once)."""
    cache = model.__dict__.setdefault("weight_cache", {})
    if c not in cache:
        w = model.weight(c).to(DT)
        e = w.abs().reshape(w.shape[0], w.shape[1], -1).mean(2)
        cache[c] = (e.mean(1), e)
    return cache[c]


def set_scores(model, targets, metrics, x, labels, idx, mem_bytes, log, probe=False, dec=None):
    """{(target, metric): {conv: (nodes (Co,), edges (Co, cg))}} for images idx
    (with probe, also {(target + PROBE, metric): ...} from the float32 probe;
    with dec, a Decisions of the whole batch, its decisions replayed)."""
    layers = sorted({c for t in targets for c in t.scored}, key=model.index.get)
    acc = Accumulator()
    acc.probe = probe
    data_metrics = [m for m in metrics if m != "weight"]
    if data_metrics:
        per_layer = {c: model.dims(c) for c in layers}
        need_E = any(m in metrics for m in ("actxgrad", "act", "taylor"))
        # float32 maps of one image (plus slack for the rest of the pass)
        cost = {c: (d[1] * d[0] * d[2] * d[4] * 4 if need_E else 0) + 1
                for c, d in per_layer.items()}
        total = sum(cost.values())
        batch = int(max(1, min(8, mem_bytes // max(total, 1))))
        chunks, cur, size = [], [], 0
        for c in layers:
            if cur and (size + cost[c]) * batch > mem_bytes:
                chunks.append(cur)
                cur, size = [], 0
            cur.append(c)
            size += cost[c]
        chunks.append(cur)
        log(f"{len(idx)} images, batch {batch}, {len(chunks)} pass(es) per batch, "
            f"{total / 2**20:.0f} MiB of edge maps per image")
        for s in range(0, len(idx), batch):
            bi = idx[s:s + batch]
            lb = labels[bi] if labels is not None else None
            for chunk in chunks:
                run_batch(model, targets, data_metrics, x[bi], lb, chunk, acc,
                          dec.override(bi) if dec is not None else None)
    n = len(idx)
    out = {}
    for t in targets:
        for suf in ["", PROBE] if probe else [""]:
            key = t.text + suf
            for m in metrics:
                res = {}
                for c in t.scored:
                    if m == "weight":
                        res[c] = weight_scores(model, c)
                    elif m == "snip":
                        G = acc.wgrad.get((key, c))
                        w = model.weight(c).to(DT)
                        Co, cg = w.shape[:2]
                        e = (w * G).abs().reshape(Co, cg, -1).mean(2) if G is not None \
                            else torch.zeros(Co, cg, dtype=DT)
                        res[c] = (e.sum(1), e)
                    else:
                        nd, ed = acc.sums[(key, m, c)]
                        res[c] = (nd / n, ed / n)
                out[(key, m)] = res
    return out


def layers_json(model, scored, sc, probe=None):
    out = []
    for c in scored:
        d = model.layer_info(c)
        nd, ed = sc[c]
        d["nodes"] = nd.double().numpy()
        d["edges"] = ed.double().numpy()
        if probe is not None:
            d["nodes_f32"] = probe[c][0].double().numpy()
            d["edges_f32"] = probe[c][1].double().numpy()
        out.append(d)
    return out


def write_scores(path, doc):
    """JSON (viscnn's format), or with a .npz name the same document with the
    score lists stored as float64 arrays (JSON text of millions of floats is
    slow to write and to read): "meta" holds the JSON with every "nodes" and
    "edges" list replaced by the name of its array.  load_scores() reads
    either form."""
    if path.endswith(".npz"):
        arrays = {}

        def strip(layers, prefix):
            out = []
            for k, layer in enumerate(layers):
                layer = dict(layer)
                for part in ("nodes", "edges", "nodes_f32", "edges_f32"):
                    if part not in layer:
                        continue
                    key = f"{prefix}{k}.{part}"
                    arrays[key] = np.asarray(layer[part], dtype=np.float64)
                    layer[part] = key
                out.append(layer)
            return out
        meta = dict(doc)
        meta["layers"] = strip(doc["layers"], "overall.")
        if "categories" in doc:
            meta["categories"] = {
                name: {"images": c["images"], "layers": strip(c["layers"], f"cat{k}.")}
                for k, (name, c) in enumerate(doc["categories"].items())}
        f, tmp = vcio._atomic_writer(path)
        try:
            with f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return
    for layers in [doc["layers"]] + [c["layers"] for c in doc.get("categories", {}).values()]:
        for layer in layers:
            layer["nodes"] = layer["nodes"].tolist()
            layer["edges"] = layer["edges"].tolist()
    f, tmp = vcio._atomic_writer(path)
    try:
        with f:
            f.write((json.dumps(doc) + "\n").encode())   # (json.dump is 10x slower)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_scores(path):
    """Reads a scores file (viscnn's JSON or this tool's .npz) into the JSON
    document with "nodes" and "edges" as float64 numpy arrays."""
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(str(z["meta"]))
            for layers in [doc["layers"]] + [c["layers"] for c in doc.get("categories", {}).values()]:
                for layer in layers:
                    for part in ("nodes", "edges", "nodes_f32", "edges_f32"):
                        if part in layer:
                            layer[part] = z[layer[part]]
        return doc
    with open(path) as f:
        doc = json.load(f)
    for layers in [doc["layers"]] + [c["layers"] for c in doc.get("categories", {}).values()]:
        for layer in layers:
            layer["nodes"] = np.asarray(layer["nodes"], dtype=np.float64)
            layer["edges"] = np.asarray(layer["edges"], dtype=np.float64).reshape(
                len(layer["nodes"]), -1)
    return doc


def cmd_scores(args, model, x, labels, log):
    metrics = []
    for m in args.metric.split(","):
        m = m.strip()
        if m not in METRICS:
            raise BadInput(f"--metric {m}: expected one of {', '.join(METRICS)}")
        if m not in metrics:
            metrics.append(m)
    targets = []
    for text in args.target or ["loss"]:
        if text not in [t.text for t in targets]:
            targets.append(Target(model, text))
    if len(metrics) > 1 and "{metric}" not in args.o:
        raise BadInput("-o must contain {metric} when several metrics are given")
    if len(targets) > 1 and "{target}" not in args.o:
        raise BadInput("-o must contain {target} when several targets are given")
    N = x.shape[0]
    if args.by_class and labels is not None:
        cats = []
        for k in sorted(set(int(v) for v in labels.tolist())):
            name = model.labels[k] if k < len(model.labels) else str(k)
            cats.append((name, [i for i in range(N) if int(labels[i]) == k]))
    else:
        cats = [(os.path.basename(args.input), list(range(N)))]
    if args.probe and not args.o.endswith(".npz"):
        raise BadInput("--probe-float32 writes .npz files only")
    mem = int(args.mem_gb * 2**30)
    cat_scores = [set_scores(model, targets, metrics, x, labels, idx, mem, log, args.probe,
                             args.dec)
                  for _, idx in cats]

    def overall(key, t):
        if len(cats) == 1:
            return cat_scores[0][key]
        return {c: (sum(cs[key][c][0] for cs in cat_scores) / len(cats),
                    sum(cs[key][c][1] for cs in cat_scores) / len(cats)) for c in t.scored}
    for t in targets:
        for met in metrics:
            key = (t.text, met)
            pkey = (t.text + PROBE, met)
            doc = {"metric": met, "target": t.text, "images": N, "source": args.input,
                   "model": model.path,
                   "layers": layers_json(model, t.scored, overall(key, t),
                                         overall(pkey, t) if args.probe else None)}
            if args.by_class:
                doc["categories"] = {
                    name: {"images": len(idx),
                           "layers": layers_json(model, t.scored, cs[key],
                                                 cs[pkey] if args.probe else None)}
                    for (name, idx), cs in zip(cats, cat_scores)}
            path = args.o.replace("{metric}", met).replace("{target}", t.tag())
            write_scores(path, doc)


# ---------------------------------------------------------------------------
# Edge maps of one layer (the literal way: autograd on the edge-map tensor)

def parse_list(s, n, opt):
    if s is None:
        return list(range(n))
    out = []
    for part in s.split(","):
        try:
            a, _, b = part.partition("-")
            a = int(a)
            b = int(b) if b else a
        except ValueError:
            raise BadInput(f"--{opt} {s}: expected channels like 3, 0,2,5 or 0-7") from None
        if a < 0 or b >= n or a > b:
            raise BadInput(f"--{opt} {s}: channel out of range [0, {n})")
        out.extend(range(a, b + 1))
    return out


def cmd_edges(args, model, x, labels, log):
    L = args.edges
    if L not in model.index or model.node(L)["op"] != "conv2d":
        raise BadInput(f"--edges {L}: not a conv2d layer of the model")
    k = args.image_index
    if not 0 <= k < x.shape[0]:
        raise BadInput(f"--image-index {k}: the batch holds {x.shape[0]} images")
    tgts = args.target or ["loss"]
    if len(tgts) != 1:
        raise BadInput("--edges takes one --target")
    args.grad = args.grad or bool(args.target)
    target = Target(model, tgts[0]) if args.grad else None
    if target is not None and target.layer is not None and target.layer <= model.index[L]:
        raise BadInput(f"--target {target.text} is at or before layer {L}")
    G, cg, Cog, Co, P = model.dims(L)
    J = parse_list(args.out, Co, "out")
    I = parse_list(getattr(args, "in"), cg, "in")
    xb = x[k:k + 1]
    lb = labels[k:k + 1] if labels is not None else None
    stop = target.stop if target is not None else L
    graph = dict(model.graph)
    graph["nodes"] = model.nodes[:model.index[stop] + 1]
    graph["output"] = stop
    saved = {}

    def override(node, inputs, attrs):
        if node["name"] != L:
            return None
        p = node.get("params", {})
        w = model.tensors[p["weight"]]
        b = model.tensors[p["bias"]] if p.get("bias") else None
        E32 = dissect(inputs[0].float(), w.float(), attrs)
        E = E32.double()
        if E.requires_grad:
            E.retain_grad()
        saved["E"] = E
        return edge_sum(E, G, cg, Cog, b)

    with torch.set_grad_enabled(args.grad):
        env = run_graph(graph, model.tensors, xb.clone().requires_grad_(args.grad), keep=True,
                        override=chain(override, args.dec.override([k]) if args.dec else None))[1]
        E = saved["E"]
        if args.grad:
            target.value(env, model.graph["output"], lb).sum().backward()
    maps = edges_jI(E.detach(), G, cg, Cog)[0]          # (Co, cg, Ho, Wo)
    vcio.save_npy(args.o, maps[J][:, I].float().numpy())
    if args.grad:
        gE = E.grad if E.grad is not None else torch.zeros_like(E)
        gE = edges_jI(gE, G, cg, Cog)[0]                    # (Co, cg, Ho, Wo)
        gy = gE[:, 0]
        spread = float((gE - gy.unsqueeze(1)).abs().max())
        log(f"dF/de_ji differs across i by at most {spread:.3g} "
            f"(max |gy| {float(gy.abs().max()):.3g})")
        base = args.o[:-4] if args.o.endswith(".npy") else args.o
        vcio.save_npy(base + ".grad.npy", gy[J].float().numpy())


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--input", required=True, help="preprocessed float32 batch (N,C,H,W) .npy")
    p.add_argument("--labels", help="integer class per image .npy (for the loss target)")
    p.add_argument("--target", action="append",
                   help="loss | class:K | node:LAYER:CH (repeatable; default loss)")
    p.add_argument("--metric", default="actxgrad", help="comma-separated: " + ",".join(METRICS))
    p.add_argument("--by-class", action="store_true", help="one category per label value")
    p.add_argument("--mem-gb", type=float, default=2.5,
                   help="memory for the dissected maps of a pass (default 2.5)")
    p.add_argument("--probe-float32", dest="probe", action="store_true",
                   help="also compute every score with an ordinary float32 forward/backward "
                        "(sharing the edge maps) and store it as nodes_f32/edges_f32 in the "
                        ".npz: the size of float32 rounding effects (ReLU and max-pool "
                        "decisions flipped by rounding) on each score")
    p.add_argument("--net-dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the network's forward/backward (scores are summed in "
                        "float64 either way; the edge maps are float32)")
    p.add_argument("--replay", metavar="D.npz",
                   help="impose the engine's decisions (viscnn forward --decisions D.npz on the "
                        "same --input): ReLU signs and max-pool argmaxes")
    p.add_argument("--replay-report", metavar="R.json",
                   help="with --replay: write how many decisions were replayed and how many "
                        "differ from the plain float64 forward, and by how much (tools/replay.py)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--edges", metavar="LAYER", help="write the edge maps of this conv layer")
    p.add_argument("--image-index", type=int, default=0)
    p.add_argument("--out", help="out-channels for --edges (e.g. 0,3 or 1-2)")
    p.add_argument("--in", help="in-channels (within the group) for --edges")
    p.add_argument("--grad", action="store_true", help="--edges: also write OUT.grad.npy")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-o", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    global NET
    NET = torch.float64 if args.net_dtype == "float64" else torch.float32

    def log(msg):
        if not args.quiet:
            print(f"{PROG}: {msg}", file=sys.stderr)

    try:
        model = Model(args.model)
        try:
            xa = vcio.load_npy(args.input)
        except (OSError, ValueError) as e:
            raise BadInput(f"{args.input}: {e}") from None
        shape = model.graph["input"]["shape"]
        if xa.ndim != 4 or list(xa.shape[1:]) != list(shape) or xa.dtype.kind != "f":
            raise BadInput(f"{args.input}: expected a float (N,{','.join(map(str, shape))}) "
                           f"batch, got {xa.dtype} {xa.shape}")
        x = torch.from_numpy(np.array(xa, dtype=np.float64)).to(NET)
        labels = None
        if args.labels:
            try:
                la = vcio.load_npy(args.labels)
            except (OSError, ValueError) as e:
                raise BadInput(f"{args.labels}: {e}") from None
            if la.ndim != 1 or la.shape[0] != x.shape[0] or la.dtype.kind not in "iu":
                raise BadInput(f"{args.labels}: expected {x.shape[0]} integer labels")
            labels = torch.from_numpy(la.astype(np.int64))
            if int(labels.min()) < 0 or int(labels.max()) >= model.n_out:
                raise BadInput(f"{args.labels}: labels outside [0, {model.n_out})")
        args.dec = None
        if args.replay_report and not args.replay:
            raise BadInput("--replay-report needs --replay")
        if args.replay:
            args.dec = Decisions(args.replay, model.graph, model.shapes, x.shape[0])
            # the check first: it is cheap, and its verdict matters even if
            # the comparison it qualifies is long
            images = [args.image_index] if args.edges else list(range(x.shape[0]))
            if args.edges and not 0 <= args.image_index < x.shape[0]:
                raise BadInput(f"--image-index {args.image_index}: the batch holds "
                               f"{x.shape[0]} images")
            stats = decision_check(run_graph, model.graph, model.tensors, x, args.dec, images)
            log(describe(stats))
            if args.replay_report:
                f, tmp = vcio._atomic_writer(args.replay_report)
                with f:
                    f.write((json.dumps(stats) + "\n").encode())
                os.replace(tmp, args.replay_report)
        if args.edges:
            cmd_edges(args, model, x, labels, log)
        else:
            cmd_scores(args, model, x, labels, log)
    except ReplayError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except BadInput as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
