#!/usr/bin/python3
"""torch_dump: PyTorch reference outputs for viscnn's parity tests.

    /usr/bin/python3 tools/torch_dump.py --torchvision NAME --seed S --batch N -o DIR
    /usr/bin/python3 tools/torch_dump.py --module FILE.py:FACTORY --input-shape C,H,W
        --seed S --batch N -o DIR

The model is built and converted exactly as tools/torch2viscnn.py does (same
options; --seed defaults to 0).  DIR receives:

    model.safetensors  the converted model
    input.npy          float32 (N,C,H,W): torch.randn from a generator seeded S+1
    labels.npy         int64 (N,): random classes, drawn from that generator next
    logits.npy         float32 (N,K): the model output (eval mode)
    dinput.npy         float32 (N,C,H,W): d loss / d input, where loss =
                       F.cross_entropy(logits, labels) (mean over the batch)
    grads.safetensors  d loss / d parameter for every parameter in the model
                       file, by the same name (buffers such as running_mean
                       and running_var are not parameters and are omitted)
    nodes.safetensors  every graph node's output by viscnn node name (the fx
                       GraphModule run by an fx.Interpreter; (N,K) outputs
                       stay (N,K)), to locate the first diverging layer

Exit status: 0 success, 2 bad input (one-line reason), 1 internal error.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch2viscnn as t2v  # noqa: E402
import vcio  # noqa: E402

PROG = "torch_dump"


class _Recorder(fx.Interpreter):
    """Runs a GraphModule and keeps a copy of each converted node's output
    (copied at once: a later in-place op must not change what was seen)."""

    def __init__(self, gm, fx_to_name):
        super().__init__(gm)
        self.fx_to_name = fx_to_name
        self.outputs = {}

    def run_node(self, n):
        result = super().run_node(n)
        name = self.fx_to_name.get(n.name)
        if name is not None:
            self.outputs[name] = result.detach().clone()
        return result


def dump(conversion, seed, batch, outdir):
    """Write the reference files for `conversion` into `outdir`."""
    spec = conversion.spec
    model = spec.model.eval()
    os.makedirs(outdir, exist_ok=True)
    t2v.write_model(conversion, os.path.join(outdir, "model.safetensors"))

    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn([batch] + spec.input_shape, generator=g)

    # Node outputs, from the fx GraphModule.
    with torch.no_grad():
        rec = _Recorder(conversion.gm, conversion.fx_to_name)
        rec.run(x.clone())
    names = [n["name"] for n in conversion.graph["nodes"]]
    missing = [n for n in names if n not in rec.outputs]
    if missing:
        raise RuntimeError(f"no recorded output for nodes {missing[:3]}")

    # Logits and gradients, from the original module.
    xg = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    logits = model(xg.clone())          # clone: the model may work in place
    if logits.dim() != 2:
        raise t2v.ConvertError(f"the model output must be (N,K) for a "
                               f"cross-entropy dump, got {list(logits.shape)}")
    labels = torch.randint(0, logits.shape[1], (batch,), generator=g)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    state = model.state_dict(keep_vars=True)
    grads = {}
    for key in conversion.tensors:
        p = state.get(key)
        if isinstance(p, nn.Parameter):
            grads[key] = (p.grad if p.grad is not None else torch.zeros_like(p)) \
                .detach().float().numpy()

    vcio.save_npy(os.path.join(outdir, "input.npy"), x.numpy().astype(np.float32))
    vcio.save_npy(os.path.join(outdir, "labels.npy"), labels.numpy().astype(np.int64))
    vcio.save_npy(os.path.join(outdir, "logits.npy"),
                  logits.detach().numpy().astype(np.float32))
    vcio.save_npy(os.path.join(outdir, "dinput.npy"),
                  xg.grad.numpy().astype(np.float32))
    vcio.write_safetensors(os.path.join(outdir, "grads.safetensors"), grads)
    vcio.write_safetensors(os.path.join(outdir, "nodes.safetensors"),
                           {n: rec.outputs[n].numpy() for n in names})
    return {"loss": float(loss), "nodes": len(names), "grads": len(grads),
            "classes": int(logits.shape[1])}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="torch_dump.py",
        description="Write PyTorch reference outputs (model, input, logits, "
                    "input and parameter gradients of the cross-entropy loss, "
                    "every node's output) for viscnn's parity tests.")
    t2v.add_model_arguments(parser)
    parser.add_argument("--batch", type=int, default=2, metavar="N",
                        help="batch size (default 2)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = 0
    if args.batch <= 0:
        parser.error("--batch must be positive")
    torch.set_num_threads(2)
    try:
        spec = t2v.build_model(args)
        conversion = t2v.convert_model(spec)
        info = dump(conversion, args.seed, args.batch, args.output)
    except t2v.ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        import traceback
        traceback.print_exc()
        print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {args.output}: {spec.name} seed {args.seed} batch "
          f"{args.batch}, {info['nodes']} nodes, {info['grads']} parameter "
          f"gradients, {info['classes']} classes, loss {info['loss']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
