#!/usr/bin/python3
"""featvis_torch: the feature-visualisation loop of `viscnn featvis` written in
PyTorch 1.13 (CPU), the baseline of benchmarks/featvis.sh.

    /usr/bin/python3 benchmarks/featvis_torch.py --model alexnet|fashion
        --layer features.K (--channel J | --all) [--steps 512] [--threads 2]

The same steps as viscnn/featvis.c: Fourier parameters (1/f scaling,
irfft2, /4), colour decorrelation for RGB, sigmoid, a random affine
transform per picture and step (pad, jitter, scale, rotate, jitter) applied
with one bilinear grid_sample onto the model's input grid (grey outside),
the model's normalisation, the model up to the target layer, the channel
mean of the target channel, backward, Adam (lr 0.05). alexnet: torchvision's
with torch.manual_seed(0) weights, 3x224x224; fashion: models/fashion.safetensors
(1x28x28). --all: every channel of the layer as one batch.
Prints one line: featvis MODEL LAYER pictures steps seconds.
"""
import argparse, json, math, struct, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--layer", required=True)
p.add_argument("--channel", type=int)
p.add_argument("--all", action="store_true")
p.add_argument("--steps", type=int, default=512)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
k = int(a.layer.split(".")[1])

if a.model == "alexnet":
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.alexnet().features[: k + 1].eval()
    C, H, W = 3, 224, 224
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
else:
    f = open("models/fashion.safetensors", "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    base = 8 + n
    def get(name):
        m = hdr[name]; s, e = m["data_offsets"]; f.seek(base + s)
        return torch.tensor(np.frombuffer(f.read(e - s), dtype=np.float32).reshape(m["shape"]).copy())
    layers = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
              nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)]
    for i, l in enumerate(layers):
        if isinstance(l, nn.Conv2d):
            l.weight.data = get(f"features.{i}.weight"); l.bias.data = get(f"features.{i}.bias")
    net = nn.Sequential(*layers[: k + 1]).eval()
    C, H, W = 1, 28, 28
    mean, std = [0.286], [0.353]
for q in net.parameters():
    q.requires_grad_(False)
with torch.no_grad():
    Cout = net(torch.zeros(1, C, H, W)).shape[1]
chans = list(range(Cout)) if a.all else [a.channel]
n = len(chans)

S = max(H, W)
fy = torch.fft.fftfreq(H)[:, None]
fx = torch.arange(W // 2 + 1, dtype=torch.float32)[None, :] / W
scale = 1.0 / torch.maximum(torch.sqrt(fx * fx + fy * fy), torch.tensor(1.0 / S))
g = torch.Generator().manual_seed(0)
par = (torch.randn(n, C, H, W // 2 + 1, 2, generator=g) * 0.01).requires_grad_(True)
M = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
M = M / M.norm(dim=0).max()
mean_t = torch.tensor(mean).view(1, C, 1, 1); std_t = torch.tensor(std).view(1, C, 1, 1)
opt = torch.optim.Adam([par], lr=0.05)
pad, j1, j2 = max(1, round(12 * S / 224)), max(1, round(8 * S / 224)), max(1, round(4 * S / 224))
rng = np.random.default_rng(0)
idx = torch.tensor(chans)

def theta():
    # canvas <- output affine map in grid_sample's normalised coordinates
    out = []
    for _ in range(n):
        s = S / (S + 2 * pad) * (1 + (rng.integers(11) - 5) / 50)
        r = math.radians(rng.integers(21) - 10)
        t = (rng.integers(-j1, j1 + 1) + rng.integers(-j2, j2 + 1), rng.integers(-j1, j1 + 1) + rng.integers(-j2, j2 + 1))
        c, si = math.cos(r) / s, math.sin(r) / s
        out.append([[c, si, -2 * t[1] / W], [-si, c, -2 * t[0] / H]])
    return torch.tensor(out, dtype=torch.float32)

def step():
    spec = torch.view_as_complex(par) * scale / (4 * math.sqrt(H * W))
    t = torch.fft.irfft2(spec, s=(H, W), norm="forward")   # unnormalised inverse, as FFTW's c2r
    if C == 3:
        t = torch.einsum("cd,ndhw->nchw", M, t)
    u = torch.sigmoid(t)
    grid = F.affine_grid(theta(), (n, C, H, W), align_corners=False)
    x = F.grid_sample(u - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
    z = net((x - mean_t) / std_t)
    obj = z[torch.arange(n), idx].mean((1, 2))
    loss = -obj.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()

step()   # warm-up
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
print(f"featvis {a.model} {a.layer} {n} {a.steps} {time.perf_counter() - t0:.3f}")
