#!/usr/bin/python3
"""arch_template: write the template of a built-in architecture, the file
models/arch/NAME.json that `viscnn convert IN.pth --arch NAME` (and anything
else that takes --arch) uses to turn a plain PyTorch state dict into a model.

    /usr/bin/python3 tools/arch_template.py --torchvision NAME -o models/arch/NAME.json
    /usr/bin/python3 tools/arch_template.py --module FILE.py:FACTORY --input-shape C,H,W
        [--labels FILE] [--mean a,b,c --std a,b,c] -o models/arch/NAME.json
    /usr/bin/python3 tools/arch_template.py --builtin     (all five torchvision templates)

A template is the converter's viscnn.graph (tools/torch2viscnn.py: the same
trace, node names, preprocessing and labels; see docs/model-format.md) with
one extra top-level key, "param_shapes": {state-dict key: shape} for every
tensor the graph uses, so that the C side can name a misshapen tensor before
it builds anything, and "param_views": {key: shape} for a tensor the graph
uses in another shape than the state dict's (ConvNeXt's Linear weights, used
as 1x1 convs). viscnn drops both when it writes a model.
Every models/arch/*.json is embedded into the library at build time (the
Makefile runs scripts/embed_arch.sh); the file name is the --arch name.

Weights play no part: the model is built with seed 0 only to be traced.

One deliberate difference from `torch2viscnn.py --torchvision googlenet`:
torchvision's published GoogLeNet weights are used with transform_input=True,
which turns ImageNet-normalised input into (x - 0.5) / 0.5 inside forward().
The template has no such node, so its preprocessing says mean = std = 0.5
instead, which is the same thing: a published googlenet checkpoint converted
with --arch googlenet then predicts what torchvision predicts. (The network
itself, and so the output for a given preprocessed input, is unchanged.)
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch2viscnn as t2v  # noqa: E402

BUILTIN = ["alexnet", "vgg11", "vgg16", "resnet18", "googlenet",
           "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny"]   # issue 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Preprocessing that differs from the converter's, see the docstring.
PREPROCESS_OVERRIDE = {
    "googlenet": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
}


def template(args):
    """The template (a dict) for the model the arguments name."""
    if args.seed is None:
        args.seed = 0
    spec = t2v.build_model(args)
    conv = t2v.convert_model(spec)
    graph = dict(conv.graph)
    if args.torchvision in PREPROCESS_OVERRIDE:
        graph["preprocess"] = dict(graph["preprocess"], **PREPROCESS_OVERRIDE[args.torchvision])
    shapes, views = {}, {}
    sd = spec.model.state_dict()
    for n in graph["nodes"]:
        for key in n.get("params", {}).values():
            shapes[key] = list(conv.tensors[key].shape)
            if key in sd and list(sd[key].shape) != shapes[key]:
                # used in another shape than the state dict's (ConvNeXt's Linear
                # as a 1x1 conv): the file's shape is checked, the graph's is a view
                views[key] = shapes[key]
                shapes[key] = list(sd[key].shape)
    graph["param_shapes"] = shapes
    if views:
        graph["param_views"] = views
    return graph


def dump(graph):
    """JSON text, one top-level key (and one node) per line, for readable diffs."""
    lines = []
    for k, v in graph.items():
        if k == "nodes":
            body = ",\n".join("  " + json.dumps(n, separators=(",", ":")) for n in v)
            lines.append(f'"nodes":[\n{body}\n]')
        else:
            lines.append(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write(graph, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump(graph))
    os.replace(tmp, path)
    print(f"arch_template: wrote {path} ({os.path.getsize(path)} bytes, "
          f"{len(graph['nodes'])} nodes, {len(graph['param_shapes'])} tensors)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--builtin"]:
        os.makedirs(os.path.join(ROOT, "models", "arch"), exist_ok=True)
        for name in BUILTIN:
            rc = main(["--torchvision", name, "-o",
                       os.path.join(ROOT, "models", "arch", name + ".json")])
            if rc:
                return rc
        return 0
    parser = argparse.ArgumentParser(prog="arch_template.py",
                                     description=__doc__.split("\n\n")[0])
    t2v.add_model_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT.json")
    args = parser.parse_args(argv)
    try:
        graph = template(args)
    except t2v.ConvertError as e:
        print(f"arch_template: error: {e}", file=sys.stderr)
        return 2
    write(graph, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
