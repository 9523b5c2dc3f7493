"""replay: the engine's discrete decisions, imposed on a PyTorch forward.

viscnn's `forward MODEL --input X.npy --decisions D.npz` writes, for every
node whose op branches on its input, the branch its float32 forward took for
every output element (include/viscnn.h, vc_run_decisions; docs/parity.md):

    relu        uint8 (N,C,H,W) or (N,C): 1 where the output passes the input
                (x > 0, or NaN), 0 where it is clamped to 0
    maxpool2d   int32 (N,C,Ho,Wo): the argmax of each window as h*W+w in its
                (unpadded) input plane, PyTorch's return_indices

one .npy entry per node, named by the node.  Replaying them in a float64
forward (run_graph's override) makes the reference take the engine's
branches: the two then differ by rounding alone, so gradients can be compared
pointwise at any thread count.

decision_check() says how far each decision is from the one exact (float64)
arithmetic takes.  Where the plain float64 forward decides otherwise, the
engine's decision must lie within float32 rounding of the boundary: its
margin (for a ReLU, |x| of its float64 input; for a max-pool, the float64 gap
between the window's maximum and the engine's pick) may be at most

    bound = max(FLOOR * s, FACTOR * r)

for that node and image, where s = max |x| over the node's input (its scale)
and r = max |x32 - x| over the same, the distance of a plain float32 PyTorch
forward of the same graph from float64: the float32 rounding accumulated up
to that node, measured.  r is the real scale of rounding: up to 7e-7 of s in
alexnet and 3e-6 in resnet18 and googlenet on photos, 5e-5 deep in googlenet
on random inputs (BN layers with small variances amplify it).  FLOOR covers nodes where r
happens to be tiny; FACTOR covers a summation order less lucky than
PyTorch's.  A disagreement beyond the bound is not rounding but a bug (a
wrong weight, index or padding moves values by far more), and is counted in
out_of_bound.

Each branching op kind is one entry of OPS (a small class); an op added to
the engine with a decisions writer gets its replay here.
"""

import numpy as np
import torch
import torch.nn.functional as F

# The bound on a disagreeing decision (module docstring): FLOOR of the node's
# scale (~84 float32 ulps), or FACTOR times the measured float32 rounding at
# that node, whichever is larger.  Measured on this project's models (alexnet,
# vgg11, resnet18, googlenet, squeezenet; photos and random inputs; 1 to 4
# threads), the farthest disagreement reached 0.03 of its bound; one resnet18
# weight moved by 1e-3 makes disagreements at 7.6 and 36 times it.
FLOOR = 1e-5
FACTOR = 10


class ReplayError(ValueError):
    """A decisions file that does not fit the model or the input."""


class Relu:
    dtype = np.uint8

    @staticmethod
    def validate(name, a, attrs, in_shape):
        if a.size and int(a.max()) > 1:
            raise ReplayError(f"decisions for relu {name}: values other than 0 and 1")

    @staticmethod
    def replay(x, d, attrs):
        # y = x where the engine passed it, else 0 (its gradient: the same mask)
        return torch.where(d.bool(), x, torch.zeros((), dtype=x.dtype))

    @staticmethod
    def decide(x, attrs):
        return ((x > 0) | torch.isnan(x)).to(torch.uint8)

    @staticmethod
    def margin(x, mine, exact, attrs):
        """|x| where the two differ (how far the ReLU input is from 0), else 0."""
        return torch.where(mine != exact, x.abs(), torch.zeros((), dtype=x.dtype))


class MaxPool:
    dtype = np.int32

    @staticmethod
    def validate(name, a, attrs, in_shape):
        """Every index must name an in-range tap of its own window (the
        engine's padding and dilation conventions are PyTorch's)."""
        if not a.size:
            return
        _, _, H, W = in_shape
        _, _, Ho, Wo = a.shape
        kh, kw = attrs["kernel"]
        sh, sw = attrs["stride"]
        ph, pw = attrs["padding"]
        dh, dw = attrs["dilation"]
        h, w = a // W, a % W
        ok = (a >= 0) & (a < H * W)
        oh = np.arange(Ho).reshape(1, 1, Ho, 1)
        ow = np.arange(Wo).reshape(1, 1, 1, Wo)
        th = h - (oh * sh - ph)
        tw = w - (ow * sw - pw)
        ok &= (th >= 0) & (th % dh == 0) & (th // dh < kh)
        ok &= (tw >= 0) & (tw % dw == 0) & (tw // dw < kw)
        if not ok.all():
            bad = tuple(int(v) for v in np.argwhere(~ok)[0])
            raise ReplayError(f"decisions for maxpool2d {name}: index {int(a[bad])} at {list(bad)} "
                              f"is not in that output's window")

    @staticmethod
    def replay(x, d, attrs):
        N, C = x.shape[:2]
        idx = d.long()
        return x.reshape(N, C, -1).gather(2, idx.reshape(N, C, -1)).view(idx.shape)

    @staticmethod
    def decide(x, attrs):
        a = attrs
        return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"], a["dilation"],
                            a["ceil_mode"], return_indices=True)[1].to(torch.int32)

    @staticmethod
    def margin(x, mine, exact, attrs):
        """x[exact pick] - x[engine's pick] where they differ (how far below
        the window's maximum the engine's pick is), else 0."""
        N, C = x.shape[:2]
        flat = x.reshape(N, C, -1)
        take = lambda i: flat.gather(2, i.long().reshape(N, C, -1)).view(i.shape)
        gap = (take(exact) - take(mine)).abs()
        return torch.where(mine != exact, gap, torch.zeros((), dtype=x.dtype))


class Piecewise:
    """A three-piece op (engine: VC_DEC_REGION with codes 0, 1, 2): region 0
    below the lower kink, 1 between, 2 above, as the op's backward in PyTorch
    decides it (ops/hardtanh.c, hardswish.c, hardsigmoid.c)."""
    dtype = np.uint8
    name = ""

    @staticmethod
    def kinks(attrs):
        return -3.0, 3.0

    @classmethod
    def validate(cls, name, a, attrs, in_shape):
        if a.size and int(a.max()) > 2:
            raise ReplayError(f"decisions for {cls.name} {name}: values other than 0, 1 and 2")

    @classmethod
    def margin(cls, x, mine, exact, attrs):
        """Distance of x from the kink between the two pieces that differ."""
        lo, hi = cls.kinks(attrs)
        pair = torch.maximum(mine, exact).to(torch.int64) + torch.minimum(mine, exact).to(torch.int64)
        d = torch.where(pair == 1, (x - lo).abs(), torch.where(pair == 3, (x - hi).abs(), (x - lo).abs() + (x - hi).abs()))
        return torch.where(mine != exact, d, torch.zeros((), dtype=x.dtype))

    @classmethod
    def pieces(cls, x, d, lower, middle, upper):
        return torch.where(d == 0, lower, torch.where(d == 2, upper, middle))


class Hardtanh(Piecewise):
    name = "hardtanh"

    @staticmethod
    def kinks(attrs):
        return float(attrs.get("min_val", -1.0)), float(attrs.get("max_val", 1.0))

    @classmethod
    def replay(cls, x, d, attrs):
        lo, hi = cls.kinks(attrs)
        z = torch.zeros((), dtype=x.dtype)
        return cls.pieces(x, d, z + lo, x, z + hi)

    @classmethod
    def decide(cls, x, attrs):
        lo, hi = cls.kinks(attrs)   # PyTorch's hardtanh_backward: 0 at x <= lo and x >= hi
        return torch.where(x <= lo, 0, torch.where(x >= hi, 2, 1)).to(torch.uint8)


class Hardswish(Piecewise):
    name = "hardswish"

    @classmethod
    def replay(cls, x, d, attrs):
        return cls.pieces(x, d, torch.zeros((), dtype=x.dtype), x * (x + 3) / 6, x)

    @classmethod
    def decide(cls, x, attrs):      # PyTorch's hardswish_backward: x < -3, [-3, 3], x > 3
        return torch.where(x < -3, 0, torch.where(x > 3, 2, 1)).to(torch.uint8)


class Hardsigmoid(Piecewise):
    name = "hardsigmoid"

    @classmethod
    def replay(cls, x, d, attrs):
        z = torch.zeros((), dtype=x.dtype)
        return cls.pieces(x, d, z, (x + 3) / 6, z + 1)

    @classmethod
    def decide(cls, x, attrs):      # PyTorch's hardsigmoid_backward: 1/6 on (-3, 3) only
        return torch.where(x <= -3, 0, torch.where(x >= 3, 2, 1)).to(torch.uint8)


# op name -> how it branches; the engine's vc_op_impl.decision, op by op
OPS = {"relu": Relu, "maxpool2d": MaxPool, "hardtanh": Hardtanh, "hardswish": Hardswish,
       "hardsigmoid": Hardsigmoid}


def decision_nodes(graph):
    return [n for n in graph["nodes"] if n["op"] in OPS]


class Decisions:
    """The decisions file of one batch, checked against the graph."""

    def __init__(self, path, graph, shapes, N):
        """shapes: node name -> output shape of one image (the input's too);
        N: the batch the decisions must be of."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as e:
            raise ReplayError(f"{path}: not a decisions .npz: {e}") from None
        self.path = path
        self.nodes = {n["name"]: n for n in decision_nodes(graph)}
        extra = sorted(set(arrays) - set(self.nodes))
        if extra:
            raise ReplayError(f"{path}: entries for no branching node of the model: {', '.join(extra[:3])}")
        missing = [n for n in self.nodes if n not in arrays]
        if missing:
            raise ReplayError(f"{path}: no decisions for {', '.join(missing[:3])} (every relu, "
                              f"maxpool2d, hardtanh, hardswish and hardsigmoid node needs them: viscnn forward without --layer)")
        self.arrays = {}
        for name, a in arrays.items():
            node = self.nodes[name]
            op = OPS[node["op"]]
            want = (N,) + tuple(shapes[name])
            if a.dtype != op.dtype or a.shape != want:
                raise ReplayError(f"{path}: {name}: {a.dtype} {a.shape}, expected "
                                  f"{np.dtype(op.dtype)} {want} ({node['op']} of a batch of {N})")
            op.validate(name, a, node.get("attrs", {}), (N,) + tuple(shapes[node["inputs"][0]]))
            self.arrays[name] = a
        self.N = N

    def count(self):
        return sum(a.size for a in self.arrays.values())

    def get(self, name, idx):
        a = self.arrays[name]
        return torch.from_numpy(np.ascontiguousarray(a if idx is None else a[idx]))

    def override(self, idx=None):
        """run_graph override that replays the decisions of images idx (a
        list or slice of the batch; None: all)."""
        def fn(node, inputs, attrs):
            op = OPS.get(node["op"])
            if op is None:
                return None
            return op.replay(inputs[0], self.get(node["name"], idx), attrs)
        return fn


def chain(*overrides):
    """One run_graph override from several (the first answer wins)."""
    def fn(node, inputs, attrs):
        for o in overrides:
            if o is not None:
                y = o(node, inputs, attrs)
                if y is not None:
                    return y
        return None
    return fn


def decision_check(run_graph, graph, tensors, x, dec, images=None, chunk=4):
    """Compares the engine's decisions with those of the plain (unreplayed)
    forward of graph in x's dtype (float64), for the images of the batch in
    `images` (default all); a plain float32 forward of the same graph
    measures how far float32 rounding moves each decision node's input
    (module docstring).  Returns a summary dict: replayed (decisions in the
    file), by_op {op: [count, disagreeing]}, disagree, out_of_bound
    (disagreeing by more than their bound), floor and factor (the bound's
    constants), worst (margin / bound of the farthest disagreement), worst_rel
    (its margin / scale) and worst_at (where, with its numbers)."""
    stats = {"replayed": int(dec.count()), "by_op": {}, "disagree": 0, "out_of_bound": 0,
             "floor": FLOOR, "factor": FACTOR, "worst": 0.0, "worst_rel": 0.0, "worst_at": ""}
    for op in sorted({n["op"] for n in dec.nodes.values()}):
        stats["by_op"][op] = [0, 0]
    images = list(range(x.shape[0])) if images is None else list(images)
    t32 = {k: v.float() if torch.is_tensor(v) else torch.from_numpy(np.asarray(v, np.float32))
           for k, v in tensors.items()}
    for s in range(0, len(images), chunk):
        sl = images[s:s + chunk]
        seen32 = {}

        def keep32(node, inputs, attrs):
            if node["name"] in dec.arrays:
                seen32[node["name"]] = inputs[0]
            return None

        def look(node, inputs, attrs):
            op = OPS.get(node["op"])
            if op is None:
                return None
            xin = inputs[0]
            n_img = xin.shape[0]
            mine = dec.get(node["name"], sl)
            exact = op.decide(xin, attrs)
            differ = int((mine != exact).sum())
            st = stats["by_op"][node["op"]]
            st[0] += mine.numel()
            st[1] += differ
            stats["disagree"] += differ
            if not differ:
                return None
            margin = op.margin(xin, mine, exact, attrs).reshape(n_img, -1)
            flat = xin.reshape(n_img, -1)
            scale = flat.abs().amax(1)
            r32 = (seen32[node["name"]].to(xin.dtype).reshape(n_img, -1) - flat).abs().amax(1)
            bound = torch.maximum(FLOOR * scale, FACTOR * r32).clamp_min(torch.finfo(xin.dtype).tiny)
            ratio = torch.nan_to_num(margin / bound.view(-1, 1), nan=float("inf"))
            stats["out_of_bound"] += int((ratio > 1).sum())
            k = int(ratio.argmax())
            n, e = divmod(k, ratio.shape[1])
            if float(ratio[n, e]) > stats["worst"] or not stats["worst_at"]:
                where = np.unravel_index(e, tuple(mine.shape[1:]))
                stats["worst"] = float(ratio[n, e])
                stats["worst_rel"] = float(margin[n, e] / scale[n]) if scale[n] > 0 else float("inf")
                stats["worst_at"] = (f"{node['name']} image {sl[n]} "
                                     f"[{','.join(str(int(v)) for v in where)}]: margin "
                                     f"{float(margin[n, e]):.3g}, scale {float(scale[n]):.3g}, "
                                     f"float32 rounding there {float(r32[n]):.3g}")
            return None

        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            run_graph(graph, t32, x[sl].float(), override=keep32)
            run_graph(graph, tensors, x[sl], override=look)
    return stats


def describe(stats):
    """One line: what was replayed and how it compares with float64."""
    ops = ", ".join(f"{c} {op}" for op, (c, _) in sorted(stats["by_op"].items()))
    text = (f"{stats['replayed']} decisions replayed ({ops}); {stats['disagree']} differ from "
            f"the float64 forward")
    if stats["disagree"]:
        text += (f", the farthest at {stats['worst']:.2g} of its bound ({stats['worst_rel']:.1e} "
                 f"of scale) at {stats['worst_at']}")
    if stats["out_of_bound"]:
        text += f"; {stats['out_of_bound']} beyond float32 rounding"
    return text
