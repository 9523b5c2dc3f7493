#!/usr/bin/env python3
"""gpu_torch: the PyTorch (CUDA) side of benchmarks/gpu_check.sh.

Self-contained (no torchvision needed): torchvision's AlexNet written out,
random weights from torch.manual_seed(0), eval mode, float32 on cuda:0,
inputs drawn from N(0, 1) on the GPU. One warm-up, then the median of R reps
timed with torch.cuda.synchronize() around time.perf_counter().

    python3 benchmarks/gpu_torch.py fwdbwd [--batch 64] [--reps 10] [--tf32]
        logits = model(x); F.cross_entropy(logits, argmax labels).backward()
        with every parameter's gradient (reset outside the timed region).
        Without --tf32, TF32 is off for cuDNN and matmul (FP32 as viscnn
        computes); with it, PyTorch's defaults (cuDNN convs in TF32).
    python3 benchmarks/gpu_torch.py scores [--images 1024] [--batch 64] [--reps 3] [--method M]
        every node and edge actxgrad score of alexnet toward the loss (the
        per-image cross-entropy against the argmax label, summed), averaged
        over the images: node mean_p relu(z)|g|, edge mean_p |e_ji g_j| with
        e_ji = W[j,i] * x_i. Methods (each exact; --method best runs all and
        reports the fastest):
          unfold     per layer, chunks of input channels: x unfolded to
                     (B, C, k*k, P), e = einsum(W[:, chunk], X[chunk]) as
                     (B, Co, c, P), then |e * g| summed over P
          dissection the original VISCNN tool's way: a grouped conv with
                     groups = C_in producing all C_in*C_out edge maps at once
                     (chunked over input channels to fit memory)
Prints one line: MODE seconds=S images_per_s=R batch=B [method=M] [tf32=0|1]
"""
import argparse, statistics, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class AlexNet(nn.Module):   # torchvision.models.alexnet, ReLUs not in place
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 36, 4096), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def timed(fn, reps, before=None):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        if before:
            before()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def edge_sums(x, w, g, conv, method, chunk):
    """(B, Co, Ci) sums over P of |e_ji g_j|; x: conv input, g: dF/d(conv output)."""
    B, C, H, W = x.shape
    Co, _, kh, kw = w.shape
    Ho, Wo = g.shape[2], g.shape[3]
    out = torch.empty(B, Co, C, device=x.device)
    if method == "unfold":
        X = F.unfold(x, (kh, kw), dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
        X = X.view(B, C, kh * kw, Ho * Wo)
        G = g.reshape(B, Co, 1, Ho * Wo)
        Wr = w.reshape(Co, C, kh * kw)
        for lo in range(0, C, chunk):
            hi = min(C, lo + chunk)
            e = torch.einsum("jik,bikp->bjip", Wr[:, lo:hi], X[:, lo:hi])
            out[:, :, lo:hi] = (e * G).abs_().sum(3)
    else:   # dissection: grouped conv, channel (i - lo) * Co + j = e_ji
        for lo in range(0, C, chunk):
            hi = min(C, lo + chunk)
            wd = w[:, lo:hi].permute(1, 0, 2, 3).reshape((hi - lo) * Co, 1, kh, kw)
            e = F.conv2d(x[:, lo:hi], wd, None, conv.stride, conv.padding, conv.dilation, groups=hi - lo)
            e = e.view(B, hi - lo, Co, Ho * Wo)
            out[:, :, lo:hi] = (e * g.reshape(B, 1, Co, Ho * Wo)).abs_().sum(3).permute(0, 2, 1)
    return out


def scores(model, xs, bsz, method, chunk):
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    dev = xs[0].device
    node = [torch.zeros(c.out_channels, device=dev) for c in convs]
    edge = [torch.zeros(c.out_channels, c.in_channels, device=dev) for c in convs]
    n_img = 0
    for x in xs:
        ins, outs = [], []

        def keep(mod, i, o):   # returns None: the output is left as it is
            ins.append(i[0].detach())
            o.retain_grad()
            outs.append(o)

        hooks = [c.register_forward_hook(keep) for c in convs]
        logits = model(x)
        for h in hooks:
            h.remove()
        lab = logits.argmax(1)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(logits, lab, reduction="sum").backward()
        with torch.no_grad():
            for k, c in enumerate(convs):
                z, g = outs[k], outs[k].grad
                P = z.shape[2] * z.shape[3]
                node[k] += (z.clamp_min(0) * g.abs()).sum((2, 3)).sum(0) / P
                edge[k] += edge_sums(ins[k], c.weight, g, c, method, chunk).sum(0) / P
        n_img += x.shape[0]
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return [n / n_img for n in node], [e / n_img for e in edge]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fwdbwd", "scores"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--method", default="best", choices=["best", "unfold", "dissection"])
    ap.add_argument("--chunk", type=int, default=16)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_torch: no CUDA device for PyTorch")
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = AlexNet().cuda().eval()
    gen = torch.Generator(device="cuda").manual_seed(0)
    if a.mode == "fwdbwd":
        x = torch.randn(a.batch, 3, 224, 224, device="cuda", generator=gen)

        def step():
            logits = model(x)
            F.cross_entropy(logits, logits.argmax(1)).backward()

        t = timed(step, a.reps or 10, before=lambda: model.zero_grad(set_to_none=True))
        print(f"fwdbwd seconds={t:.4f} images_per_s={a.batch / t:.1f} batch={a.batch} tf32={int(a.tf32)}")
        return
    # two distinct batches, alternating (as gpu_bench), images in batches of --batch
    pool = [torch.randn(a.batch, 3, 224, 224, device="cuda", generator=gen) for _ in range(2)]
    xs = [pool[k % 2][: min(a.batch, a.images - k * a.batch)] for k in range((a.images + a.batch - 1) // a.batch)]
    methods = ["unfold", "dissection"] if a.method == "best" else [a.method]
    best = None
    for meth in methods:
        try:
            t = timed(lambda: scores(model, xs, a.batch, meth, a.chunk), a.reps or 3)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            print(f"# {meth}: out of memory at chunk {a.chunk}", file=sys.stderr)
            continue
        print(f"# scores method={meth} seconds={t:.4f}", file=sys.stderr)
        if best is None or t < best[1]:
            best = (meth, t)
    if best is None:
        sys.exit("gpu_torch: every method ran out of memory")
    print(f"scores seconds={best[1]:.4f} images_per_s={a.images / best[1]:.1f} batch={a.batch} images={a.images} method={best[0]}")


if __name__ == "__main__":
    main()
