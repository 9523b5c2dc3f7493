#!/usr/bin/python3
"""torch_reference: an independent PyTorch oracle for viscnn's importance scores.

    /usr/bin/python3 tools/torch_reference.py MODEL.safetensors --input X.npy
        [--labels L.npy] [--target T] [--metric M[,M2,...]] [--by-class]
        [--batch B] [--dtype float64|float32] -o OUT.json
    /usr/bin/python3 tools/torch_reference.py MODEL.safetensors --input X.npy
        --edges LAYER [--image-index K] [--out J] [--in I] [--grad]
        [--labels L.npy] [--target T] -o MAPS.npy

It computes node and edge scores the way the original VISCNN tool did, and
exactly as docs/importance.md defines them.  The viscnn graph is executed with
PyTorch ops (tools/torch2viscnn.py's run_graph); every scored conv2d is
replaced by a "dissected" convolution: a grouped conv2d with groups = C_in
whose C_in * (C_out/groups) output channels are the pre-sum edge maps

    E[:, c*Cog + jj] = W[g*Cog + jj, i] * x_c,  c = g*cg + i,  g = c // cg

(Cog = C_out/groups, cg = C_in/groups; for groups=1 this is
conv2d(x, W.permute(1,0,2,3).reshape(Ci*Co,1,k,k), groups=Ci)), followed by
the sum over i plus the bias.  retain_grad() on E gives dF/de_ji = gy_j for
every i, retain_grad() on the node maps z (the following BN's output when the
BN is the conv's only consumer, else the conv output) gives g = dF/dz.  The
weight gradient for `snip` is the autograd gradient of the (dissected) conv's
weight tensor, summed over the images of a set.

Everything is computed in float64 by default (the model's float32 parameters
and the float32 input batch are converted exactly).  Images are processed a
few at a time (the dissected maps hold C_in*C_out*Ho*Wo values per image).

With several metrics, -o may contain "{metric}" (out_{metric}.json); one
forward/backward pass serves all metrics.

Output: the JSON of `viscnn importance` (DESIGN.md section 9):
{"metric", "target", "images", "layers": [{"name", "in_channels",
"out_channels", "groups", "nodes": [...], "edges": [[...], ...]}],
"categories": {NAME: {"images", "layers"}}}  (categories with --by-class).

--edges LAYER writes the edge maps of one conv layer for one image (the batch's
--image-index) as float32 (J, I, Ho, Wo) (all out-channels J and in-channels I
within the group by default; --out/--in take lists like 0,3 or 1-2), and with
--grad also MAPS.grad.npy (J, Ho, Wo), the gradient gy_j = dF/dy_j of the conv
output for --target (default loss).

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

PROG = "torch_reference"
METRICS = ("actxgrad", "act", "grad", "taylor", "weight", "snip")
# single-input ops that act on each channel separately (docs/importance.md)
PER_CHANNEL = ("batchnorm2d", "relu", "maxpool2d", "avgpool2d",
               "adaptive_avgpool2d", "dropout", "lrn")


class BadInput(Exception):
    pass


# ---------------------------------------------------------------------------
# Graph analysis

class Model:
    def __init__(self, path, dtype):
        try:
            self.graph, raw = vcio.read_graph(path)
        except (OSError, ValueError) as e:
            raise BadInput(str(e)) from None
        self.path = path
        self.dtype = dtype
        self.tensors = {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(dtype)
                        for k, v in raw.items()}
        self.nodes = self.graph["nodes"]
        self.index = {n["name"]: k for k, n in enumerate(self.nodes)}
        self.labels = self.graph.get("labels") or []
        consumers = {n["name"]: [] for n in self.nodes}
        for n in self.nodes:
            for i in n["inputs"]:
                if i in consumers:
                    consumers[i].append(n["name"])
        self.consumers = consumers
        self.convs = [n["name"] for n in self.nodes if n["op"] == "conv2d"]

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

    def bias(self, conv):
        b = self.node(conv).get("params", {}).get("bias")
        return self.tensors[b] if b else None

    def layer_info(self, conv):
        n = self.node(conv)
        w = self.weight(conv)
        groups = n["attrs"]["groups"]
        return {"name": conv, "in_channels": int(w.shape[1]) * groups,
                "out_channels": int(w.shape[0]), "groups": groups}


class Target:
    """loss | class:K | node:LAYER:CH, per docs/importance.md."""

    def __init__(self, model, text):
        self.text = text
        self.stop = model.graph["output"]   # the node where the forward stops
        self.layer = None                   # index of the target conv (node targets)
        out_width = None
        if text == "loss":
            self.kind = "loss"
            return
        if text.startswith("class:"):
            try:
                self.ch = int(text[6:])
            except ValueError:
                raise BadInput(f"--target {text}: class must be an integer") from None
            self.kind = "class"
            out_width = len(model.labels) if model.labels else None
            if self.ch < 0 or (out_width is not None and self.ch >= out_width):
                raise BadInput(f"--target {text}: class out of range")
            return
        if text.startswith("node:"):
            rest = text[5:]
            layer, sep, ch = rest.rpartition(":")
            if not sep or not layer or layer not in model.index:
                raise BadInput(f"--target {text}: expected node:LAYER:CH with a layer of the model")
            try:
                c = int(ch)
            except ValueError:
                raise BadInput(f"--target {text}: channel must be an integer") from None
            self.kind = "node"
            self.ch = c
            node = layer
            if model.node(layer)["op"] == "conv2d" and model.bn_after(layer):
                node = model.bn_after(layer)   # the node map z
            self.stop = node
            # walk back to the conv that makes this map
            cur = node
            while model.node(cur)["op"] != "conv2d":
                n = model.node(cur)
                if n["op"] in PER_CHANNEL:
                    cur = n["inputs"][0]
                elif n["op"] == "concat":
                    # not in docs/importance.md's list; follow the input that
                    # holds the channel (as viscnn does)
                    raise_unless = False
                    for inp in n["inputs"]:
                        ci = model.channels[inp]
                        if c < ci:
                            cur = inp
                            raise_unless = True
                            break
                        c -= ci
                    if not raise_unless:
                        raise BadInput(f"--target {text}: channel out of range")
                else:
                    raise BadInput(f"--target {text}: {layer} is not the channel map of a conv layer")
                if cur not in model.index:
                    raise BadInput(f"--target {text}: {layer} is not the channel map of a conv layer")
            self.layer = model.index[cur]
            return
        raise BadInput(f"--target {text}: expected loss, class:K or node:LAYER:CH")

    def scored(self, model):
        """Conv layers that get scores, in graph order."""
        if self.layer is None:
            return list(model.convs)
        return [c for c in model.convs if model.index[c] < self.layer]

    def truncated_graph(self, model):
        g = dict(model.graph)
        g["nodes"] = model.nodes[:model.index[self.stop] + 1]
        g["output"] = self.stop
        return g

    def value(self, out, labels):
        """Per-image F (N,) from the stop node's output; labels: (N,) long or None."""
        if self.kind == "loss":
            logits = out.reshape(out.shape[0], -1)
            if labels is None:
                labels = logits.argmax(1)
            return -F.log_softmax(logits, 1).gather(1, labels.view(-1, 1)).view(-1)
        if self.kind == "class":
            return out.reshape(out.shape[0], -1)[:, self.ch]
        return out[:, self.ch].mean(dim=(1, 2))


def compute_channels(model, x_shape):
    """Channel count of every node (for concat walks), by a shape pass."""
    ch = {model.graph["input"]["name"]: model.graph["input"]["shape"][0]}
    with torch.no_grad():
        x = torch.zeros([1] + list(x_shape), dtype=model.dtype)
        _, env = run_graph(model.graph, model.tensors, x, keep=True)
    for name, t in env.items():
        ch[name] = int(t.shape[1])
    return ch


# ---------------------------------------------------------------------------
# The dissected convolution

def dissected_weight(w, groups):
    """(Co, cg, kh, kw) -> (C_in*Cog, 1, kh, kw): channel c*Cog+jj = W[g*Cog+jj, c%cg]."""
    Co, cg, kh, kw = w.shape
    G = groups
    Cog = Co // G
    return w.reshape(G, Cog, cg, kh, kw).permute(0, 2, 1, 3, 4).reshape(G * cg * Cog, 1, kh, kw)


def dissect(x, w, b, a):
    """Returns (E, y): E (N, C_in*Cog, Ho, Wo) the edge maps, y the conv output."""
    G = a["groups"]
    Co, cg = w.shape[0], w.shape[1]
    Cin = cg * G
    Cog = Co // G
    E = F.conv2d(x, dissected_weight(w, G), None, a["stride"], a["padding"],
                 a["dilation"], Cin)
    N, _, Ho, Wo = E.shape
    y = E.view(N, G, cg, Cog, Ho, Wo).sum(2).reshape(N, Co, Ho, Wo)
    if b is not None:
        y = y + b.view(1, Co, 1, 1)
    return E, y


def edges_jI(E, G, cg, Cog):
    """(N, C_in*Cog, Ho, Wo) -> (N, Co, cg, Ho, Wo): [n, j, i] = e_ji."""
    N, _, Ho, Wo = E.shape
    return E.view(N, G, cg, Cog, Ho, Wo).permute(0, 1, 3, 2, 4, 5).reshape(N, G * Cog, cg, Ho, Wo)


def edge_reduce(t, G, cg, Cog):
    """(N, C_in*Cog) per-(c, jj) values -> (N, Co, cg)."""
    N = t.shape[0]
    return t.view(N, G, cg, Cog).permute(0, 1, 3, 2).reshape(N, G * Cog, cg)


# ---------------------------------------------------------------------------
# Scores

def forward_backward(model, target, x, labels, scored, want_grad=True, want_wgrad=False):
    """One dissected forward (and backward) on a batch.

    Returns (F (N,), {conv: dict(E, z, ...)}) with gradients retained."""
    graph = target.truncated_graph(model)
    tensors = dict(model.tensors)
    wparams = {}
    if want_wgrad:
        for c in scored:
            wn = model.node(c)["params"]["weight"]
            tensors[wn] = model.tensors[wn].clone().requires_grad_(True)
            wparams[c] = tensors[wn]
    saved = {}
    scored_set = set(scored)

    def override(node, inputs, attrs):
        if node["name"] not in scored_set:
            return None
        p = node.get("params", {})
        w = tensors[p["weight"]]
        b = tensors[p["bias"]] if p.get("bias") else None
        E, y = dissect(inputs[0], w, b, attrs)
        if want_grad and E.requires_grad:
            E.retain_grad()
        saved[node["name"]] = {"E": E, "y": y}
        return y

    x = x.clone().requires_grad_(want_grad)   # so that every E takes part in autograd
    out, env = run_graph(graph, tensors, x, keep=True, override=override)
    for c in scored:
        z = env[model.z_name(c)]
        if want_grad and z.requires_grad:
            z.retain_grad()
        saved[c]["z"] = z
    Fv = target.value(out, labels)
    if want_grad:
        Fv.sum().backward()
    for c in scored:
        saved[c]["wgrad"] = wparams[c].grad if c in wparams else None
    return Fv, saved


def zeros_like_grad(t, g):
    return g if g is not None else torch.zeros_like(t)


def per_image_scores(model, saved, scored, metrics):
    """{metric: {conv: (nodes (N,Co), edges (N,Co,cg))}} per image (not snip/weight)."""
    res = {m: {} for m in metrics}
    for c in scored:
        n = model.node(c)
        w = model.weight(c)
        G = n["attrs"]["groups"]
        Co, cg = int(w.shape[0]), int(w.shape[1])
        Cog = Co // G
        E = saved[c]["E"].detach()
        z = saved[c]["z"].detach()
        gE = zeros_like_grad(E, saved[c]["E"].grad)
        gz = zeros_like_grad(z, saved[c]["z"].grad)
        N = E.shape[0]
        m = E.shape[2] * E.shape[3]
        Ef = E.reshape(N, E.shape[1], -1)
        gEf = gE.reshape(N, gE.shape[1], -1)
        zf = z.reshape(N, Co, -1)
        gzf = gz.reshape(N, Co, -1)
        rz = torch.relu(zf)
        node_grad = gzf.abs().sum(2) / m
        for met in metrics:
            if met == "actxgrad":
                nodes = (rz * gzf.abs()).sum(2) / m
                edges = edge_reduce((Ef * gEf).abs().sum(2) / m, G, cg, Cog)
            elif met == "act":
                nodes = rz.sum(2) / m
                edges = edge_reduce(Ef.abs().sum(2) / m, G, cg, Cog)
            elif met == "grad":
                nodes = node_grad
                edges = node_grad.unsqueeze(2).expand(N, Co, cg).clone()
            elif met == "taylor":
                nodes = ((rz * gzf).sum(2) / m).abs()
                edges = edge_reduce(((Ef * gEf).sum(2) / m).abs(), G, cg, Cog)
            else:
                continue
            res[met][c] = (nodes, edges)
    return res


def weight_scores(model, scored):
    out = {}
    for c in scored:
        w = model.weight(c)
        edges = w.abs().mean(dim=(2, 3))
        out[c] = (edges.mean(1), edges)
    return out


def snip_scores(model, scored, wgrad):
    out = {}
    for c in scored:
        w = model.weight(c)
        G = wgrad[c] if wgrad.get(c) is not None else torch.zeros_like(w)
        edges = (w * G).abs().mean(dim=(2, 3))
        out[c] = (edges.sum(1), edges)
    return out


def per_image_bytes(model, target, scored, x_shape):
    """Rough bytes per image of the dissected maps and their gradients."""
    total = 0
    for c in scored:
        w = model.weight(c)
        G = model.node(c)["attrs"]["groups"]
        Co, cg = int(w.shape[0]), int(w.shape[1])
        P = model.out_pixels[c]
        total += cg * G * (Co // G) * P
    return total * torch.finfo(model.dtype).bits // 8 * 4   # E, grad, temporaries


def set_scores(model, target, x, labels, idx, scored, metrics, batch):
    """Scores of the images idx: {metric: {conv: (nodes (Co,), edges (Co,cg))}}."""
    per_img = [m for m in metrics if m in ("actxgrad", "act", "grad", "taylor")]
    need_grad = bool(per_img) or "snip" in metrics
    sums = {m: {} for m in per_img}
    wgrad = {}
    if per_img or "snip" in metrics:
        for s in range(0, len(idx), batch):
            bi = idx[s:s + batch]
            xb = x[bi]
            lb = labels[bi] if labels is not None else None
            Fv, saved = forward_backward(model, target, xb, lb, scored, need_grad,
                                         want_wgrad="snip" in metrics)
            scores = per_image_scores(model, saved, scored, per_img)
            for met in per_img:
                for c, (nd, ed) in scores[met].items():
                    nd, ed = nd.sum(0), ed.sum(0)
                    if c in sums[met]:
                        sums[met][c] = (sums[met][c][0] + nd, sums[met][c][1] + ed)
                    else:
                        sums[met][c] = (nd, ed)
            if "snip" in metrics:
                for c in scored:
                    g = saved[c]["wgrad"]
                    if g is None:
                        continue
                    wgrad[c] = wgrad[c] + g if c in wgrad else g.clone()
            del saved, Fv
    res = {}
    for met in metrics:
        if met in per_img:
            res[met] = {c: (nd / len(idx), ed / len(idx)) for c, (nd, ed) in sums[met].items()}
        elif met == "weight":
            res[met] = weight_scores(model, scored)
        elif met == "snip":
            res[met] = snip_scores(model, scored, wgrad)
    return res


def layers_json(model, scored, sc):
    out = []
    for c in scored:
        d = model.layer_info(c)
        nd, ed = sc[c]
        d["nodes"] = [float(v) for v in nd.double().tolist()]
        d["edges"] = [[float(v) for v in row] for row in ed.double().tolist()]
        out.append(d)
    return out


def cmd_scores(args, model, target, x, labels):
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    for m in metrics:
        if m not in METRICS:
            raise BadInput(f"--metric {m}: expected one of {', '.join(METRICS)}")
    if len(metrics) > 1 and "{metric}" not in args.o:
        raise BadInput("-o must contain {metric} when several metrics are given")
    scored = target.scored(model)
    if not scored:
        raise BadInput(f"--target {target.text}: no conv layer comes before the target layer")
    N = x.shape[0]
    if args.by_class and labels is not None:
        cats = []
        for k in sorted(set(int(v) for v in labels.tolist())):
            name = model.labels[k] if k < len(model.labels) else str(k)
            cats.append((name, [i for i in range(N) if int(labels[i]) == k]))
    else:
        cats = [(os.path.basename(args.input), list(range(N)))]
    if args.batch:
        batch = args.batch
    else:
        per = per_image_bytes(model, target, scored, x.shape[1:])
        batch = int(max(1, min(8, (args.mem_gb * 2**30) // max(per, 1))))
    cat_scores = [set_scores(model, target, x, labels, idx, scored, metrics, batch)
                  for _, idx in cats]
    for met in metrics:
        overall = {}
        for c in scored:
            nd = sum(cs[met][c][0] for cs in cat_scores) / len(cats)
            ed = sum(cs[met][c][1] for cs in cat_scores) / len(cats)
            overall[c] = (nd, ed)
        doc = {"metric": met, "target": target.text, "images": N,
               "source": args.input, "model": model.path,
               "layers": layers_json(model, scored, overall)}
        if args.by_class:
            doc["categories"] = {name: {"images": len(idx),
                                        "layers": layers_json(model, scored, cs[met])}
                                 for (name, idx), cs in zip(cats, cat_scores)}
        path = args.o.replace("{metric}", met)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.write("\n")
        os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Edge maps of one layer

def parse_list(s, n, opt):
    if s is None:
        return list(range(n))
    out = []
    for part in s.split(","):
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
            else:
                a = b = int(part)
        except ValueError:
            raise BadInput(f"--{opt} {s}: expected channels like 3, 0,2,5 or 0-7") from None
        if a < 0 or b >= n or a > b:
            raise BadInput(f"--{opt} {s}: channel out of range [0, {n})")
        out.extend(range(a, b + 1))
    return out


def cmd_edges(args, model, target, x, labels):
    L = args.edges
    if L not in model.index or model.node(L)["op"] != "conv2d":
        raise BadInput(f"--edges {L}: not a conv2d layer of the model")
    k = args.image_index
    if not 0 <= k < x.shape[0]:
        raise BadInput(f"--image-index {k}: the batch holds {x.shape[0]} images")
    if args.grad and target.layer is not None and target.layer <= model.index[L]:
        raise BadInput(f"--target {target.text} is at or before layer {L}")
    w = model.weight(L)
    G = model.node(L)["attrs"]["groups"]
    Co, cg = int(w.shape[0]), int(w.shape[1])
    Cog = Co // G
    J = parse_list(args.out, Co, "out")
    I = parse_list(args.__dict__["in"], cg, "in")
    xb = x[k:k + 1]
    lb = labels[k:k + 1] if labels is not None else None
    if not args.grad:
        # forward only up to L
        t = Target.__new__(Target)
        t.__dict__.update(target.__dict__)
        t.stop = L
        t.kind = "node"
        t.ch = 0
        with torch.no_grad():
            _, saved = forward_backward(model, t, xb, None, [L], want_grad=False)
    else:
        _, saved = forward_backward(model, target, xb, lb, [L], want_grad=True)
    E = saved[L]["E"]
    maps = edges_jI(E.detach(), G, cg, Cog)[0]          # (Co, cg, Ho, Wo)
    maps = maps[J][:, I]
    vcio.save_npy(args.o, maps.to(torch.float32).numpy())
    if args.grad:
        gE = zeros_like_grad(E, E.grad)
        # gy_j: the gradient of any edge of j (the same for every i)
        gy = edges_jI(gE.detach(), G, cg, Cog)[0, :, 0]   # (Co, Ho, Wo)
        base = args.o[:-4] if args.o.endswith(".npy") else args.o
        vcio.save_npy(base + ".grad.npy", gy[J].to(torch.float32).numpy())


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--input", required=True, help="preprocessed float32 batch (N,C,H,W) .npy")
    p.add_argument("--labels", help="integer class per image .npy")
    p.add_argument("--target", default="loss")
    p.add_argument("--metric", default="actxgrad")
    p.add_argument("--by-class", action="store_true")
    p.add_argument("--batch", type=int, default=0, help="images per pass (default: by memory)")
    p.add_argument("--mem-gb", type=float, default=3.0, help="memory budget for the auto batch")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--edges", metavar="LAYER")
    p.add_argument("--image-index", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--in")
    p.add_argument("--grad", action="store_true")
    p.add_argument("-o", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    try:
        model = Model(args.model, dtype)
        try:
            xa = vcio.load_npy(args.input)
        except (OSError, ValueError) as e:
            raise BadInput(f"{args.input}: {e}") from None
        shape = model.graph["input"]["shape"]
        if xa.ndim != 4 or list(xa.shape[1:]) != list(shape):
            raise BadInput(f"{args.input}: expected (N,{','.join(map(str, shape))}), got {xa.shape}")
        x = torch.from_numpy(np.array(xa, dtype=np.float64)).to(dtype)
        labels = None
        if args.labels:
            la = vcio.load_npy(args.labels)
            if la.ndim != 1 or la.shape[0] != x.shape[0] or la.dtype.kind not in "iu":
                raise BadInput(f"{args.labels}: expected {x.shape[0]} integer labels")
            labels = torch.from_numpy(la.astype(np.int64))
        model.channels = compute_channels(model, shape)
        with torch.no_grad():
            _, env = run_graph(model.graph, model.tensors,
                               torch.zeros([1] + list(shape), dtype=dtype), keep=True)
        model.out_pixels = {c: int(env[c].shape[2] * env[c].shape[3]) for c in model.convs}
        if labels is not None:
            K = int(env[model.graph["output"]].reshape(1, -1).shape[1])
            if int(labels.min()) < 0 or int(labels.max()) >= K:
                raise BadInput(f"{args.labels}: labels outside [0, {K})")
        target = Target(model, args.target)
        if target.kind == "node" and not 0 <= args_channel(args.target) < model.channels[target.stop]:
            raise BadInput(f"--target {args.target}: channel out of range")
        if args.edges:
            cmd_edges(args, model, target, x, labels)
        else:
            cmd_scores(args, model, target, x, labels)
    except BadInput as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return 0


def args_channel(text):
    return int(text.rpartition(":")[2])


if __name__ == "__main__":
    sys.exit(main())
