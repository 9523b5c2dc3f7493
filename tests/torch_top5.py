"""torch_top5.py: the PyTorch side of tests/test_cli.sh.

  torch_top5.py MODEL.safetensors X.npy ARCH                 -> top-5 indices, one line per image
  torch_top5.py MODEL.safetensors X.npy ARCH --forward LOGITS.npy --layer NAME OUT.npy
                                                             -> "match ..." or "differ ..."
Loads the viscnn model file's tensors into torchvision's ARCH (eval mode).
"""
import sys, os
import numpy as np
import torch, torchvision
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vcio

path, xpath, arch = sys.argv[1:4]
tensors, _ = vcio.read_safetensors(path)
model = getattr(torchvision.models, arch)()
model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=False)
model.eval()
x = torch.from_numpy(np.load(xpath))
if "--forward" in sys.argv:
    ours = np.load(sys.argv[sys.argv.index("--forward") + 1])
    li = sys.argv.index("--layer")
    layer, lpath = sys.argv[li + 1], sys.argv[li + 2]
    got = {}

    def keep(module, inputs, output):   # a hook that returns None leaves the output alone
        got.setdefault("o", output.detach().clone().numpy())

    dict(model.named_modules())[layer].register_forward_hook(keep)
    with torch.no_grad():
        ref = model(x).numpy()
    e1 = np.abs(ours - ref).max() / np.abs(ref).max()
    e2 = np.abs(np.load(lpath) - got["o"]).max() / np.abs(got["o"]).max()
    print(("match" if e1 <= 1e-4 and e2 <= 1e-4 else "differ") + f" logits rel err {e1:.2e}, {layer} rel err {e2:.2e}")
else:
    with torch.no_grad():
        y = model(x)
    for row in y:
        print(" ".join(str(int(i)) for i in torch.argsort(row, descending=True, stable=True)[:5]))
