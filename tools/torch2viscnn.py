#!/usr/bin/python3
"""torch2viscnn: convert a PyTorch model into a viscnn model file.

    /usr/bin/python3 tools/torch2viscnn.py --torchvision NAME [--seed N]
        [--weights F.pth] [--labels FILE] -o OUT.safetensors
    /usr/bin/python3 tools/torch2viscnn.py --module FILE.py:FACTORY
        --input-shape C,H,W [--seed N] [--weights F.pth] [--labels FILE]
        [--mean a,b,c --std a,b,c] -o OUT.safetensors

The model is traced with torch.fx (in eval mode) and every fx node is mapped
generically onto the ops of docs/model-format.md: leaf nn.Modules by their
type, functions and tensor methods by their target.  Nothing is specific to a
particular architecture.  Anything that has no exact viscnn equivalent is
rejected with a one-line error naming the node (exit 2).

Node names: the module path for module calls (a module called again gets
'#2', '#3', ...), '<enclosing module path>.<fx node name>' for function and
method calls (the enclosing module is recorded while tracing), else the fx
node name.  Identity modules (and .contiguous()) are pass-throughs and are
dropped; dropout is kept as an op.  Parameters keep their state-dict names;
only parameters the traced graph uses are written (never num_batches_tracked).

After writing, the file is read back, its graph is executed with PyTorch's
functional ops and compared with the original module on a random input, as is
the fx GraphModule (sanity checks; max abs diff <= 1e-5 relative).

Exit status: 0 success, 2 bad input (one-line reason), 1 internal error.
"""

import argparse
import difflib
import dis
import glob
import gzip
import importlib.util
import inspect
import json
import math
import operator
import os
import re
import sys

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vcio  # noqa: E402

PROG = "torch2viscnn"

IMAGENET_PREPROCESS = {"resize": 256, "crop": 224, "channels": 3,
                       "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]}

# Extra constructor arguments for torchvision models.
TORCHVISION_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True}}

# Ops of docs/model-format.md: op -> (min inputs, max inputs or None).
OPS = {
    "conv2d": (1, 1), "linear": (1, 1), "relu": (1, 1), "maxpool2d": (1, 1),
    "avgpool2d": (1, 1), "adaptive_avgpool2d": (1, 1), "batchnorm2d": (1, 1),
    "lrn": (1, 1), "concat": (1, None), "add": (2, 2), "flatten": (1, 1),
    "dropout": (1, 1), "log_softmax": (1, 1),
    "hardtanh": (1, 1), "hardswish": (1, 1), "hardsigmoid": (1, 1),
    "sigmoid": (1, 1), "silu": (1, 1), "gelu": (1, 1), "mul": (1, 2),
    "layernorm2d": (1, 1), "channel_shuffle": (1, 1), "channel_slice": (1, 1),
}
# Ops that act on each element alone: a channels-last input stays channels-last.
POINTWISE = {"relu", "hardtanh", "hardswish", "hardsigmoid", "sigmoid", "silu",
             "gelu", "dropout"}

VERIFY_BATCH = 2     # batch used for shape propagation and verification
VERIFY_RTOL = 1e-5


class ConvertError(Exception):
    """Bad input: reported as one line, exit status 2."""


# ---------------------------------------------------------------------------
# Building the model

class ModelSpec:
    """A model to convert plus its file metadata."""

    def __init__(self, model, name, input_shape, preprocess, labels, imagenet):
        self.model = model
        self.name = name
        self.input_shape = input_shape      # [C, H, W]
        self.preprocess = preprocess
        self.labels = labels                # list of str or None
        self.imagenet = imagenet            # default to the ImageNet labels


def add_model_arguments(parser):
    """The model-selection options shared by torch2viscnn and torch_dump."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--torchvision", metavar="NAME",
                     help="a torchvision.models constructor (alexnet, vgg11, "
                          "vgg16, resnet18, googlenet, squeezenet1_1, ...)")
    src.add_argument("--module", metavar="FILE.py:FACTORY",
                     help="a Python file and a callable in it returning the "
                          "nn.Module (requires --input-shape)")
    parser.add_argument("--input-shape", metavar="C,H,W",
                        help="input shape (default 3,224,224 for torchvision)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="torch.manual_seed(N) before constructing the "
                             "model; then every BatchNorm gets weight ~ "
                             "U(0.5,1.5), bias ~ N(0,0.1) and running "
                             "statistics measured on 8 random N(0,1) inputs, "
                             "from a generator seeded with N, so that parity "
                             "tests exercise BatchNorm on a healthy signal")
    parser.add_argument("--weights", metavar="F.pth",
                        help="load this state dict into the model (after "
                             "seeding)")
    parser.add_argument("--labels", metavar="FILE",
                        help="class labels, one per line (default for "
                             "torchvision ImageNet models: opencv-doc's "
                             "classification_classes_ILSVRC2012.txt)")
    parser.add_argument("--mean", metavar="a,b,c",
                        help="--module only: per-channel normalisation mean")
    parser.add_argument("--std", metavar="a,b,c",
                        help="--module only: per-channel normalisation std")


def _parse_floats(text, what):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConvertError(f"{what} must be comma-separated numbers, "
                           f"got {text!r}") from None


def _parse_shape(text):
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 3 or min(shape) <= 0:
        raise ConvertError(f"--input-shape must be C,H,W (three positive "
                           f"integers), got {text!r}")
    return shape


def randomise_batchnorm(model, seed, input_shape):
    """Give every BatchNorm non-trivial affine parameters and calibrated statistics.

    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1); then the running statistics are the
    batch statistics of 8 random N(0, 1) inputs (train-mode forward with
    momentum None, i.e. a plain average), so that activations keep unit scale
    through deep nets. With the raw torchvision init and arbitrary statistics
    googlenet's signal dies out (input gradients ~1e-15, pure rounding noise),
    which would make gradient parity meaningless."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    with torch.no_grad():
        for m in bns:
            if m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if m.running_mean is not None:
                m.reset_running_stats()
                m.momentum = None
        was_training, threads = model.training, torch.get_num_threads()
        torch.set_num_threads(1)   # the statistics must not depend on the thread count
        model.train()
        model(torch.randn([8] + list(input_shape), generator=g))
        model.train(was_training)
        torch.set_num_threads(threads)
        for m in bns:
            m.momentum = 0.1
            if m.num_batches_tracked is not None:
                m.num_batches_tracked.zero_()


def _load_user_factory(spec_text):
    path, sep, factory = spec_text.rpartition(":")
    if not sep or not path or not factory:
        raise ConvertError(f"--module must be FILE.py:FACTORY, got {spec_text!r}")
    if not os.path.isfile(path):
        raise ConvertError(f"--module: no such file: {path}")
    spec = importlib.util.spec_from_file_location("viscnn_user_module", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the user's file: report, do not crash
        raise ConvertError(f"--module: cannot import {path}: "
                           f"{type(e).__name__}: {e}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(mod, factory, None)
    if not callable(fn):
        raise ConvertError(f"--module: {path} has no callable {factory!r}")
    return fn, factory


def _load_weights(model, path):
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:
        raise ConvertError(f"--weights: cannot load {path}: "
                           f"{type(e).__name__}: {e}") from None
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError(f"--weights: {path} does not hold a state dict")
    try:
        result = model.load_state_dict(obj, strict=False)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ConvertError(f"--weights: {path} does not fit the model: "
                           f"{' '.join(s.strip() for s in first[:3])}") from None
    missing = [k for k in result.missing_keys
               if not k.endswith("num_batches_tracked")]
    if missing:
        raise ConvertError(f"--weights: {path} lacks {len(missing)} model "
                           f"tensors, e.g. {missing[0]!r}")
    if result.unexpected_keys:
        print(f"{PROG}: warning: ignoring {len(result.unexpected_keys)} "
              f"tensors of {path} the model does not have, e.g. "
              f"{result.unexpected_keys[0]!r}", file=sys.stderr)


def find_imagenet_labels():
    """ImageNet class names, or None: torchvision's own list (unique names,
    'crane bird' vs 'crane'), else the first synonym of each line of Debian's
    opencv-doc classification_classes_ILSVRC2012.txt ('tench, Tinca tinca')."""
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
        if len(_IMAGENET_CATEGORIES) == 1000:
            return list(_IMAGENET_CATEGORIES)
    except ImportError:
        pass
    patterns = ["/usr/share/doc/opencv-doc/**/classification_classes_ILSVRC2012.txt*",
                "/usr/share/opencv*/**/classification_classes_ILSVRC2012.txt*"]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            opener = gzip.open if path.endswith(".gz") else open
            try:
                with opener(path, "rt", encoding="utf-8") as f:
                    lines = [line.rstrip("\r\n") for line in f]
            except OSError:
                continue
            while lines and not lines[-1].strip():
                lines.pop()
            if len(lines) == 1000:
                return [line.split(",")[0].strip() for line in lines]
    return None


def _read_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise ConvertError(f"--labels: cannot read {path}: {e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ConvertError(f"--labels: {path} is empty")
    return lines


def build_model(args):
    """Construct (and seed / load) the model named by the arguments."""
    if args.seed is not None:
        torch.manual_seed(args.seed)
    if args.torchvision:
        import torchvision
        name = args.torchvision
        ctor = getattr(torchvision.models, name, None)
        if not name.islower() or not callable(ctor):
            raise ConvertError(f"--torchvision: unknown model {name!r}")
        if args.mean or args.std:
            raise ConvertError("--mean/--std apply to --module only")
        try:
            model = ctor(weights=None, **TORCHVISION_KWARGS.get(name, {}))
        except TypeError as e:
            raise ConvertError(f"--torchvision: cannot construct {name!r}: {e}") from None
        shape = _parse_shape(args.input_shape) if args.input_shape else [3, 224, 224]
        if shape[0] != 3:
            raise ConvertError("torchvision models take 3 input channels")
        if shape == [3, 224, 224]:
            preprocess = dict(IMAGENET_PREPROCESS)
        else:
            preprocess = {"channels": 3}
            if shape[1] == shape[2]:    # same resize/crop ratio as 256/224
                preprocess.update(resize=round(shape[1] * 8 / 7), crop=shape[1])
            preprocess.update(mean=IMAGENET_PREPROCESS["mean"],
                              std=IMAGENET_PREPROCESS["std"])
    else:
        if not args.input_shape:
            raise ConvertError("--module requires --input-shape C,H,W")
        shape = _parse_shape(args.input_shape)
        factory, name = _load_user_factory(args.module)
        try:
            model = factory()
        except Exception as e:
            raise ConvertError(f"--module: {name}() failed: "
                               f"{type(e).__name__}: {e}") from None
        if not isinstance(model, nn.Module):
            raise ConvertError(f"--module: {name}() returned "
                               f"{type(model).__name__}, not an nn.Module")
        c = shape[0]
        mean = _parse_floats(args.mean, "--mean") if args.mean else [0.0] * c
        std = _parse_floats(args.std, "--std") if args.std else [1.0] * c
        if len(mean) != c or len(std) != c:
            raise ConvertError(f"--mean and --std need {c} values (one per channel)")
        if min(std) <= 0:
            raise ConvertError("--std values must be positive")
        preprocess = {"channels": c, "mean": mean, "std": std}
    if args.seed is not None:
        randomise_batchnorm(model, args.seed, shape)
    if args.weights:
        _load_weights(model, args.weights)
    model.eval()
    labels = _read_labels(args.labels) if args.labels else None
    return ModelSpec(model, name, shape, preprocess, labels,
                     imagenet=bool(args.torchvision) and labels is None)


# ---------------------------------------------------------------------------
# Tracing

class ScopeTracer(fx.Tracer):
    """fx tracer that records, on every node, the path of the innermost
    non-leaf module whose forward() created it (meta['viscnn_scope'])."""

    def __init__(self):
        super().__init__()
        self.scope = []

    def call_module(self, m, forward, args, kwargs):
        path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            return super().call_module(m, forward, args, kwargs)
        self.scope.append(path)
        try:
            return forward(*args, **kwargs)
        finally:
            self.scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["viscnn_scope"] = self.scope[-1] if self.scope else ""
        return node

    def iter(self, obj):
        """`a, b = x.chunk(2, dim=1)` (ShuffleNet): unpacking a Proxy.  torch
        1.13's Proxy.__iter__ finds the UNPACK_SEQUENCE by f_lasti // 2, which
        is wrong on Python 3.11 (its bytecode has inline caches), and then
        gives up here; look the instruction up by its offset instead."""
        frame = inspect.currentframe().f_back.f_back   # Proxy.__iter__'s caller
        if frame is not None:
            for inst in dis.get_instructions(frame.f_code):
                if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
                    return (obj[i] for i in range(inst.argval))
        return super().iter(obj)


def trace(model):
    """Symbolically trace `model` (eval mode) into a GraphModule."""
    model.eval()
    tracer = ScopeTracer()
    try:
        graph = tracer.trace(model)
    except Exception as e:
        msg = " ".join(str(e).split())
        raise ConvertError(f"torch.fx cannot trace the model: "
                           f"{type(e).__name__}: {msg[:300]}") from None
    return fx.GraphModule(tracer.root, graph, model.__class__.__name__)


# ---------------------------------------------------------------------------
# fx node -> viscnn op

def _describe(node, gm=None):
    """'call_function torch.sigmoid' and the like, for error messages."""
    if node.op == "call_module":
        kind = type(gm.get_submodule(node.target)).__name__ if gm is not None else "?"
        return f"call_module {node.target} ({kind})"
    if node.op == "call_function":
        t = node.target
        mod = getattr(t, "__module__", None) or "torch"
        if mod.startswith("torch._C"):
            mod = "torch"
        elif mod == "_operator":
            mod = "operator"
        return f"call_function {mod}.{getattr(t, '__name__', repr(t))}"
    if node.op == "call_method":
        return f"call_method .{node.target}()"
    return f"{node.op} {node.target}"


class _Unsupported(Exception):
    pass


def _pair(value, what):
    if isinstance(value, bool):
        raise _Unsupported(f"{what} must be an int or a pair of ints")
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (tuple, list)) and len(value) == 1 and isinstance(value[0], int):
        return [value[0], value[0]]
    if isinstance(value, (tuple, list)) and len(value) == 2 and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [int(value[0]), int(value[1])]
    raise _Unsupported(f"{what} must be an int or a pair of ints, got {value!r}")


def _stride(stride, kernel):
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return list(kernel)
    return _pair(stride, "stride")


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Unsupported(f"{what} must be a number, got {value!r}")
    return float(value)


# Python signatures used to normalise (args, kwargs) of call_function and
# call_method nodes.  Methods take the tensor as their first argument.
def _sig_relu(input, inplace=False): pass
def _sig_relu_(input): pass
def _sig_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,
                    ceil_mode=False, return_indices=False): pass
def _sig_avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True, divisor_override=None): pass
def _sig_adaptive_avg_pool2d(input, output_size): pass
def _sig_dropout(input, p=0.5, training=True, inplace=False): pass
def _sig_log_softmax(input, dim=None, _stacklevel=3, dtype=None): pass
def _sig_lrn(input, size, alpha=1e-4, beta=0.75, k=1.0): pass
def _sig_flatten(input, start_dim=0, end_dim=-1): pass
def _sig_add(input, other, alpha=1, out=None): pass
def _sig_cat(tensors, dim=0, out=None): pass
def _sig_view(input, *shape): pass
def _sig_size(input, dim=None): pass
def _sig_contiguous(input, memory_format=None): pass
def _sig_unary(input, inplace=False): pass
def _sig_unary_(input): pass
def _sig_hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False): pass
def _sig_relu6(input, inplace=False): pass
def _sig_gelu(input, approximate="none"): pass
def _sig_mul(input, other, out=None): pass
def _sig_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5): pass
def _sig_permute(input, *dims): pass
def _sig_permute_f(input, dims): pass
def _sig_transpose(input, dim0, dim1): pass
def _sig_chunk(input, chunks, dim=0): pass
def _sig_mean(input, dim=None, keepdim=False, dtype=None): pass
def _sig_stochastic_depth(input, p, mode, training=True): pass


def _bind(sig, args, kwargs):
    try:
        bound = inspect.signature(sig).bind(*args, **kwargs)
    except TypeError as e:
        raise _Unsupported(f"unexpected arguments ({e})") from None
    bound.apply_defaults()
    return bound.arguments


# Function and method targets -> (handler kind, signature).
FUNCTIONS = {
    F.relu: ("relu", _sig_relu), torch.relu: ("relu", _sig_relu_),
    torch.relu_: ("relu", _sig_relu_),
    F.max_pool2d: ("max_pool2d", _sig_max_pool2d),
    torch.max_pool2d: ("max_pool2d", _sig_max_pool2d),
    F.avg_pool2d: ("avg_pool2d", _sig_avg_pool2d),
    F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", _sig_adaptive_avg_pool2d),
    F.dropout: ("dropout", _sig_dropout),
    F.log_softmax: ("log_softmax", _sig_log_softmax),
    torch.log_softmax: ("log_softmax", _sig_log_softmax),
    F.local_response_norm: ("lrn", _sig_lrn),
    torch.flatten: ("flatten", _sig_flatten),
    operator.add: ("add", _sig_add), operator.iadd: ("add", _sig_add),
    torch.add: ("add", _sig_add),
    torch.cat: ("cat", _sig_cat),
}
if hasattr(torch, "concat"):
    FUNCTIONS[torch.concat] = ("cat", _sig_cat)
FUNCTIONS.update({
    F.relu6: ("relu6", _sig_relu6), F.hardtanh: ("hardtanh", _sig_hardtanh),
    F.hardswish: ("hardswish", _sig_unary), F.hardsigmoid: ("hardsigmoid", _sig_unary),
    F.silu: ("silu", _sig_unary), torch.sigmoid: ("sigmoid", _sig_unary_),
    F.sigmoid: ("sigmoid", _sig_unary_), F.gelu: ("gelu", _sig_gelu),
    operator.mul: ("mul", _sig_mul), torch.mul: ("mul", _sig_mul),
    F.layer_norm: ("layer_norm", _sig_layer_norm),
    torch.permute: ("permute", _sig_permute_f), torch.transpose: ("transpose", _sig_transpose),
    torch.chunk: ("chunk", _sig_chunk), torch.mean: ("mean", _sig_mean),
})
try:   # torchvision's stochastic depth is an fx-wrapped function: an identity in eval
    from torchvision.ops import stochastic_depth as _tv_stochastic_depth
    FUNCTIONS[_tv_stochastic_depth] = ("stochastic_depth", _sig_stochastic_depth)
except ImportError:
    pass

METHODS = {
    "relu": ("relu", _sig_relu_), "relu_": ("relu", _sig_relu_),
    "flatten": ("flatten", _sig_flatten),
    "view": ("view", _sig_view), "reshape": ("view", _sig_view),
    "add": ("add", _sig_add), "add_": ("add", _sig_add),
    "log_softmax": ("log_softmax", _sig_log_softmax),
    "contiguous": ("pass", _sig_contiguous),
    "sigmoid": ("sigmoid", _sig_unary_), "mul": ("mul", _sig_mul),
    "permute": ("permute", _sig_permute), "transpose": ("transpose", _sig_transpose),
    "chunk": ("chunk", _sig_chunk), "mean": ("mean", _sig_mean),
}

# The module types the converter knows, for "nearest supported" in errors.
SUPPORTED_MODULES = [
    "Conv2d", "Linear", "ReLU", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid",
    "SiLU", "Sigmoid", "GELU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm2d", "LayerNorm", "LocalResponseNorm", "Dropout", "Flatten",
    "LogSoftmax", "Identity"]
SUPPORTED_FUNCTIONS = [
    "relu", "relu6", "hardtanh", "hardswish", "hardsigmoid", "silu", "sigmoid",
    "gelu", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "dropout",
    "log_softmax", "local_response_norm", "flatten", "add", "mul", "cat",
    "layer_norm", "permute", "transpose", "chunk", "mean", "view", "reshape",
    "contiguous", "stochastic_depth"]


def nearest_supported(name, choices):
    """The supported name closest to `name` (for one-line errors)."""
    low = {c.lower(): c for c in choices}
    hit = difflib.get_close_matches(name.lower(), list(low), n=1, cutoff=0.0)
    return low[hit[0]] if hit else choices[0]

# Functions and methods that compute sizes (ints), consumed by view/reshape.
SHAPE_FUNCTIONS = {getattr, operator.getitem, operator.floordiv}
SHAPE_METHODS = {"size"}


class Converter:
    """Maps the nodes of a traced GraphModule onto viscnn graph nodes."""

    def __init__(self, gm):
        self.gm = gm
        self.nodes = []          # viscnn nodes (dicts), topological order
        self.tensors = {}        # state-dict name -> np.ndarray
        self.names = {}          # fx node -> viscnn name (tensor nodes)
        self.shape_nodes = set()  # fx nodes that compute sizes, not tensors
        self.used = {"input"}
        self.module_calls = {}
        self.fx_to_name = {}     # fx node name -> viscnn node name (op nodes)
        self.nhwc = set()        # fx nodes holding a viscnn node permuted to (N,H,W,C)
        self.attrs = {}          # get_attr fx node -> (qualified name, tensor)
        self.chunks = {}         # chunk fx node -> (source fx node, [channel bounds])
        self.shuffle = {}        # fx node -> (source, groups, "grouped" | "transposed")

    # -- shapes ------------------------------------------------------------
    @staticmethod
    def shape(node):
        """The shape of node's result in the sample run (None if no tensor)."""
        return node.meta.get("viscnn_shape")

    def propagate_shapes(self, x):
        """Run the GraphModule on `x`, recording every tensor result's shape."""
        class Recorder(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if isinstance(result, torch.Tensor):
                    n.meta["viscnn_shape"] = tuple(result.shape)
                return result
        try:
            with torch.no_grad():
                return Recorder(self.gm).run(x)
        except Exception as e:
            msg = " ".join(str(e).split())
            raise ConvertError(f"the model fails on an input of shape "
                               f"{list(x.shape)}: {type(e).__name__}: {msg[:300]}") from None

    # -- naming ------------------------------------------------------------
    def _unique(self, name):
        if name in self.used:
            k = 2
            while f"{name}#{k}" in self.used:
                k += 1
            name = f"{name}#{k}"
        self.used.add(name)
        return name

    def _name_for(self, node):
        if node.op == "call_module":
            k = self.module_calls.get(node.target, 0) + 1
            self.module_calls[node.target] = k
            return self._unique(node.target if k == 1 else f"{node.target}#{k}")
        # fx numbers repeated functions model-wide (relu_3, cat_1); the scope
        # already says where a node is, so drop the counter and let _unique
        # number repeats within the scope (#2) as for modules called twice:
        # googlenet's inception3a.branch1.relu, resnet18's layer1.1.add
        scope = node.meta.get("viscnn_scope", "")
        base = re.sub(r"_\d+$", "", node.name) if node.op != "get_attr" else node.name
        return self._unique(f"{scope}.{base}" if scope else base)

    # -- inputs ------------------------------------------------------------
    def _tensor_input(self, value, what="input"):
        if not isinstance(value, fx.Node) or value not in self.names:
            raise _Unsupported(f"{what} must be a tensor computed by the model, "
                               f"got {value!r}")
        return value

    def _rank(self, node, ranks, what="input"):
        shape = self.shape(node)
        if shape is None or len(shape) not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise _Unsupported(f"{what} must be a {want} tensor, got shape "
                               f"{list(shape) if shape else shape}")
        return shape

    # -- main loop -----------------------------------------------------------
    def convert(self):
        graph = self.gm.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        outputs = [n for n in graph.nodes if n.op == "output"]
        if len(placeholders) != 1:
            raise ConvertError(f"the model must take exactly one input, its "
                               f"forward() takes {len(placeholders)}")
        if len(outputs) != 1 or not isinstance(outputs[0].args[0], fx.Node):
            raise ConvertError("the model must return exactly one tensor")
        live = self._live_nodes(outputs[0])
        for node in graph.nodes:
            if node.op in ("placeholder", "output") or node in live:
                continue
            if self._is_inplace(node):
                raise ConvertError(f"node '{node.name}' ({_describe(node, self.gm)}): "
                                   f"in-place op whose result is not used; "
                                   f"write 'x = op(x)' instead")
        self._check_inplace_aliasing(live)
        self.names[placeholders[0]] = "input"
        for node in graph.nodes:
            if node.op in ("placeholder", "output") or node not in live:
                continue
            try:
                self._convert_node(node)
            except _Unsupported as e:
                raise ConvertError(f"node '{node.name}' ({_describe(node, self.gm)}): "
                                   f"{e}") from None
        out = outputs[0].args[0]
        if out in self.nhwc:
            raise ConvertError("the model output is channels-last (permute(0, 2, 3, 1) "
                               "without the permute back)")
        if out not in self.names or self.names[out] == "input":
            raise ConvertError("the model output must be computed by at least "
                               "one op from the input")
        shape = self.shape(out)
        if shape is None or len(shape) not in (2, 4):
            raise ConvertError(f"the model output must be (N,K) or (N,C,H,W), "
                               f"got shape {list(shape) if shape else shape}")
        return self.names[out]

    @staticmethod
    def _live_nodes(output):
        live, stack = set(), [output]
        while stack:
            n = stack.pop()
            for m in n.all_input_nodes:
                if m not in live:
                    live.add(m)
                    stack.append(m)
        return live

    def _is_inplace(self, node):
        if node.op == "call_method":
            return node.target.endswith("_") and not node.target.startswith("_")
        if node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            return node.kwargs.get("inplace") is True or \
                node.target in (operator.iadd, operator.imul, operator.isub) or \
                (name.endswith("_") and not name.startswith("_"))
        if node.op == "call_module":
            return getattr(self.gm.get_submodule(node.target), "inplace", False) is True
        return False

    def _check_inplace_aliasing(self, live):
        """An in-place op overwrites its input; the graph would be wrong if
        that input were read again afterwards."""
        order = {n: i for i, n in enumerate(self.gm.graph.nodes)}
        for node in self.gm.graph.nodes:
            if node not in live or not self._is_inplace(node) or not node.args:
                continue
            src = node.args[0]
            if not isinstance(src, fx.Node):
                continue
            for user in src.users:
                if user is not node and order[user] > order[node]:
                    raise ConvertError(
                        f"node '{node.name}' ({_describe(node, self.gm)}): "
                        f"in-place op overwrites '{src.name}', which node "
                        f"'{user.name}' reads afterwards")

    def _emit(self, node, op, inputs, params=None, attrs=None, nhwc_ok=False, name=None):
        """Appends the viscnn node for fx `node`.  nhwc_ok: the op may take a
        channels-last input (ConvNeXt's permute -> LayerNorm / Linear / GELU ->
        permute back), and its result is channels-last too."""
        nhwc = [i for i in inputs if i in self.nhwc]
        if nhwc and not nhwc_ok:
            raise _Unsupported(f"{op} of a channels-last tensor (after permute(0, 2, 3, 1)): only "
                               f"LayerNorm, Linear, pointwise activations, mul and the "
                               f"permute back are supported there")
        if nhwc:
            self.nhwc.add(node)
        name = name or self._name_for(node)
        entry = {"name": name, "op": op, "inputs": [self.names[i] for i in inputs]}
        if params:
            entry["params"] = params
        if attrs:
            entry["attrs"] = attrs
        shape = self.shape(node)
        if shape is None or len(shape) not in (2, 4):
            raise _Unsupported(f"result must be a 2-D or 4-D tensor, got "
                               f"shape {list(shape) if shape else shape}")
        self.nodes.append(entry)
        self.names[node] = name
        self.fx_to_name[node.name] = name

    def _passthrough(self, node, source):
        if isinstance(source, fx.Node) and source in self.shuffle:   # .contiguous() inside a shuffle
            self.shuffle[node] = self.shuffle[source]
            return
        self.names[node] = self.names[self._tensor_input(source)]
        if source in self.nhwc:
            self.nhwc.add(node)

    def _emit_raw(self, name, op, input_names, attrs=None):
        """An extra viscnn node with no fx node of its own (mean -> pool + flatten)."""
        entry = {"name": name, "op": op, "inputs": list(input_names)}
        if attrs:
            entry["attrs"] = attrs
        self.nodes.append(entry)
        return name

    def _add_param(self, params, role, module_path, tensor, key=None, shape=None):
        """params[role] = the state-dict key; shape: store the tensor reshaped
        (a channels-last Linear's weight as a 1x1 conv's)."""
        key = key or (f"{module_path}.{role}" if module_path else role)
        if shape is not None:
            tensor = tensor.reshape(shape)
        params[role] = key
        if key not in self.tensors:
            self.tensors[key] = tensor.detach().cpu().to(torch.float32).numpy().copy()

    def _convert_node(self, node):
        if node.op == "get_attr":
            # a parameter used directly (ConvNeXt's layer scale, LayerNorm2d's
            # affine): only mul and layer_norm may take one
            try:
                t = self.gm.get_parameter(node.target)
            except AttributeError:
                try:
                    t = self.gm.get_buffer(node.target)
                except AttributeError:
                    raise _Unsupported("get_attr of something that is not a tensor") from None
            self.attrs[node] = (node.target, t)
            return
        if node.op == "call_module":
            return self._convert_module(node)
        if node.op == "call_function" and node.target is operator.getitem and \
                node.args and node.args[0] in self.chunks:
            return self._chunk_item(node)
        if node.op == "call_function":
            if node.target in SHAPE_FUNCTIONS:
                return self._convert_shape_node(node)
            if node.target not in FUNCTIONS:
                fname = getattr(node.target, "__name__", repr(node.target))
                raise _Unsupported(f"unsupported function {fname} (nearest supported: "
                                   f"{nearest_supported(fname, SUPPORTED_FUNCTIONS)})")
            kind, sig = FUNCTIONS[node.target]
        elif node.op == "call_method":
            if node.target in SHAPE_METHODS:
                return self._convert_shape_node(node)
            if node.target not in METHODS:
                raise _Unsupported(f"unsupported method .{node.target}() (nearest supported: "
                                   f".{nearest_supported(node.target, SUPPORTED_FUNCTIONS)}())")
            kind, sig = METHODS[node.target]
        else:
            raise _Unsupported("unsupported node kind")
        a = _bind(sig, node.args, node.kwargs)
        getattr(self, f"_fn_{kind}")(node, a)

    def _convert_shape_node(self, node):
        if node.op == "call_function" and node.target is getattr:
            if len(node.args) != 2 or node.args[1] != "shape":
                raise _Unsupported("only getattr(x, 'shape') is supported")
        if node.op == "call_function" and node.target is operator.getitem:
            if not (isinstance(node.args[0], fx.Node) and node.args[0] in self.shape_nodes):
                raise _Unsupported("indexing or slicing is not supported "
                                   "(except x.shape[i] feeding view/reshape)")
        if node.op == "call_function" and node.target is operator.floordiv:
            if not (isinstance(node.args[0], fx.Node) and node.args[0] in self.shape_nodes):
                raise _Unsupported("floor division of a tensor is not supported")
        for user in node.users:
            ok = (user.op == "call_method" and user.target in ("view", "reshape")) or \
                 (user.op == "call_function" and user.target in (operator.getitem, operator.floordiv))
            if not ok:
                raise _Unsupported(f"size values may only feed view/reshape, "
                                   f"but node '{user.name}' uses it")
        self.shape_nodes.add(node)

    # -- modules -------------------------------------------------------------
    def _convert_module(self, node):
        m = self.gm.get_submodule(node.target)
        if node.kwargs or len(node.args) != 1:
            raise _Unsupported("module must be called with one tensor argument")
        x = self._tensor_input(node.args[0])
        path = node.target
        t = type(m)
        if t is nn.Identity:
            return self._passthrough(node, x)
        if t is nn.Conv2d:
            self._rank(x, (4,))
            if m.padding_mode != "zeros":
                raise _Unsupported(f"padding_mode {m.padding_mode!r} (only 'zeros')")
            kernel = _pair(m.kernel_size, "kernel_size")
            dilation = _pair(m.dilation, "dilation")
            padding = m.padding
            if padding == "valid":
                padding = [0, 0]
            elif padding == "same":
                total = [d * (k - 1) for d, k in zip(dilation, kernel)]
                if any(t_ % 2 for t_ in total):
                    raise _Unsupported("padding='same' with asymmetric padding")
                padding = [t_ // 2 for t_ in total]
            params = {}
            self._add_param(params, "weight", path, m.weight)
            if m.bias is not None:
                self._add_param(params, "bias", path, m.bias)
            attrs = {"kernel": kernel, "stride": _pair(m.stride, "stride"),
                     "padding": _pair(padding, "padding"), "dilation": dilation,
                     "groups": int(m.groups)}
            return self._emit(node, "conv2d", [x], params, attrs)
        if t is nn.Linear and x in self.nhwc:
            # channels-last Linear (ConvNeXt): a 1x1 convolution, whose kernels are edges
            params = {}
            self._add_param(params, "weight", path, m.weight,
                            shape=(m.out_features, m.in_features, 1, 1))
            if m.bias is not None:
                self._add_param(params, "bias", path, m.bias)
            attrs = {"kernel": [1, 1], "stride": [1, 1], "padding": [0, 0],
                     "dilation": [1, 1], "groups": 1}
            return self._emit(node, "conv2d", [x], params, attrs, nhwc_ok=True)
        if t is nn.Linear:
            self._rank(x, (2,))
            params = {}
            self._add_param(params, "weight", path, m.weight)
            if m.bias is not None:
                self._add_param(params, "bias", path, m.bias)
            return self._emit(node, "linear", [x], params)
        if t is nn.ReLU:
            return self._emit(node, "relu", [x], nhwc_ok=True)
        if t in (nn.ReLU6, nn.Hardtanh):
            return self._hardtanh(node, x, m.min_val, m.max_val)
        simple = {nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid",
                  nn.SiLU: "silu", nn.Sigmoid: "sigmoid"}
        if t in simple:
            return self._emit(node, simple[t], [x], nhwc_ok=True)
        if t is nn.GELU:
            return self._gelu(node, x, m.approximate)
        if t is nn.LayerNorm:
            return self._layer_norm(node, x, m.normalized_shape, m.eps,
                                    ("weight", path, m.weight) if m.weight is not None else None,
                                    ("bias", path, m.bias) if m.bias is not None else None)
        if t is nn.MaxPool2d:
            return self._maxpool(node, x, m.kernel_size, m.stride, m.padding,
                                 m.dilation, m.ceil_mode, m.return_indices)
        if t is nn.AvgPool2d:
            return self._avgpool(node, x, m.kernel_size, m.stride, m.padding,
                                 m.ceil_mode, m.count_include_pad, m.divisor_override)
        if t is nn.AdaptiveAvgPool2d:
            return self._adaptive(node, x, m.output_size)
        if t is nn.BatchNorm2d:
            self._rank(x, (4,))
            if m.running_mean is None or m.running_var is None:
                raise _Unsupported("BatchNorm2d without running statistics "
                                   "(track_running_stats=False)")
            params = {}
            if m.weight is not None:
                self._add_param(params, "weight", path, m.weight)
                self._add_param(params, "bias", path, m.bias)
            self._add_param(params, "running_mean", path, m.running_mean)
            self._add_param(params, "running_var", path, m.running_var)
            return self._emit(node, "batchnorm2d", [x], params, {"eps": float(m.eps)})
        if t is nn.LocalResponseNorm:
            return self._lrn(node, x, m.size, m.alpha, m.beta, m.k)
        if t is nn.Dropout:
            return self._emit(node, "dropout", [x], attrs={"p": float(m.p)}, nhwc_ok=True)
        if t is nn.Flatten:
            return self._flatten(node, x, m.start_dim, m.end_dim)
        if t is nn.LogSoftmax:
            return self._log_softmax(node, x, m.dim)
        raise _Unsupported(f"unsupported module type {t.__name__} (nearest supported: "
                           f"nn.{nearest_supported(t.__name__, SUPPORTED_MODULES)})")

    # -- the mobile and modern families --------------------------------------
    def _hardtanh(self, node, x, lo, hi):
        lo, hi = _number(lo, "min_val"), _number(hi, "max_val")
        if not lo < hi:
            raise _Unsupported(f"hardtanh needs min_val < max_val, got {lo} and {hi}")
        self._emit(node, "hardtanh", [x], attrs={"min_val": lo, "max_val": hi}, nhwc_ok=True)

    def _gelu(self, node, x, approximate):
        if approximate != "none":
            raise _Unsupported(f"GELU(approximate={approximate!r}): only the exact erf "
                               f"form is supported (nearest supported op: gelu)")
        self._emit(node, "gelu", [x], nhwc_ok=True)

    def _layer_norm(self, node, x, normalized_shape, eps, weight, bias):
        """LayerNorm over the last dim of a channels-last map: layernorm2d.
        weight, bias: (role, module path, tensor) or (role, None, tensor, key)."""
        shape = self._rank(x, (4,))
        if x not in self.nhwc:
            raise _Unsupported("LayerNorm is supported over the channels of a map only: "
                               "x.permute(0, 2, 3, 1) -> LayerNorm(C) -> permute back "
                               "(nearest supported op: layernorm2d)")
        if tuple(normalized_shape) != (shape[3],):
            raise _Unsupported(f"LayerNorm over {list(normalized_shape)}: only over the "
                               f"channels ({shape[3]}) is supported")
        params = {}
        for spec in (weight, bias):
            if spec is not None:
                role, path, t = spec[:3]
                self._add_param(params, role, path, t, key=spec[3] if len(spec) > 3 else None)
        if ("weight" in params) != ("bias" in params):
            raise _Unsupported("LayerNorm with a weight but no bias (or the reverse)")
        self._emit(node, "layernorm2d", [x], params, {"eps": _number(eps, "eps")}, nhwc_ok=True)

    # -- shared op builders ----------------------------------------------------
    def _maxpool(self, node, x, kernel, stride, padding, dilation, ceil_mode,
                 return_indices):
        self._rank(x, (4,))
        if return_indices:
            raise _Unsupported("return_indices=True is not supported")
        k = _pair(kernel, "kernel_size")
        attrs = {"kernel": k, "stride": _stride(stride, k),
                 "padding": _pair(padding, "padding"),
                 "dilation": _pair(dilation, "dilation"),
                 "ceil_mode": bool(ceil_mode)}
        self._emit(node, "maxpool2d", [x], attrs=attrs)

    def _avgpool(self, node, x, kernel, stride, padding, ceil_mode,
                 count_include_pad, divisor_override):
        self._rank(x, (4,))
        k = _pair(kernel, "kernel_size")
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or divisor_override <= 0):
            raise _Unsupported(f"divisor_override must be a positive int, "
                               f"got {divisor_override!r}")
        attrs = {"kernel": k, "stride": _stride(stride, k),
                 "padding": _pair(padding, "padding"),
                 "ceil_mode": bool(ceil_mode),
                 "count_include_pad": bool(count_include_pad),
                 "divisor_override": int(divisor_override or 0)}
        self._emit(node, "avgpool2d", [x], attrs=attrs)

    def _adaptive(self, node, x, output_size):
        shape = self._rank(x, (4,))
        if isinstance(output_size, int) and not isinstance(output_size, bool):
            output_size = (output_size, output_size)
        if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
            raise _Unsupported(f"output_size must be an int or a pair, got {output_size!r}")
        out = [shape[2 + i] if v is None else v for i, v in enumerate(output_size)]
        self._emit(node, "adaptive_avgpool2d", [x], attrs={"output": _pair(out, "output_size")})

    def _lrn(self, node, x, size, alpha, beta, k):
        self._rank(x, (4,))
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise _Unsupported(f"size must be a positive int, got {size!r}")
        self._emit(node, "lrn", [x], attrs={"size": size,
                                           "alpha": _number(alpha, "alpha"),
                                           "beta": _number(beta, "beta"),
                                           "k": _number(k, "k")})

    def _flatten(self, node, x, start_dim, end_dim):
        shape = self._rank(x, (2, 4))
        nd = len(shape)
        if start_dim % nd != 1 or end_dim % nd != nd - 1:
            raise _Unsupported(f"only flatten(start_dim=1, end_dim=-1) is "
                               f"supported, got ({start_dim}, {end_dim})")
        self._emit(node, "flatten", [x])

    def _log_softmax(self, node, x, dim):
        shape = self._rank(x, (2,))
        if dim is None:
            dim = 1         # PyTorch's implicit choice for a 2-D input
        if not isinstance(dim, int) or dim % len(shape) != 1:
            raise _Unsupported(f"only log_softmax over dim 1 is supported, got {dim!r}")
        self._emit(node, "log_softmax", [x])

    # -- functions and methods -------------------------------------------------
    def _fn_pass(self, node, a):
        self._passthrough(node, a["input"])

    def _fn_relu6(self, node, a):
        self._hardtanh(node, self._tensor_input(a["input"]), 0.0, 6.0)

    def _fn_hardtanh(self, node, a):
        self._hardtanh(node, self._tensor_input(a["input"]), a["min_val"], a["max_val"])

    def _fn_hardswish(self, node, a):
        self._emit(node, "hardswish", [self._tensor_input(a["input"])], nhwc_ok=True)

    def _fn_hardsigmoid(self, node, a):
        self._emit(node, "hardsigmoid", [self._tensor_input(a["input"])], nhwc_ok=True)

    def _fn_silu(self, node, a):
        self._emit(node, "silu", [self._tensor_input(a["input"])], nhwc_ok=True)

    def _fn_sigmoid(self, node, a):
        self._emit(node, "sigmoid", [self._tensor_input(a["input"])], nhwc_ok=True)

    def _fn_gelu(self, node, a):
        self._gelu(node, self._tensor_input(a["input"]), a["approximate"])

    def _fn_stochastic_depth(self, node, a):
        if a["training"] is not False:
            raise _Unsupported("stochastic_depth with training=True stays active in "
                               "eval mode")
        self._passthrough(node, a["input"])

    def _fn_mul(self, node, a):
        """x * gate (N,C,1,1) (squeeze-excitation), x * y (same shape), or
        x * parameter (layer scale: (C,1,1), or (C) channels-last)."""
        if a["out"] is not None:
            raise _Unsupported("mul with out= is not supported")
        ops = [a["input"], a["other"]]
        params = [o for o in ops if isinstance(o, fx.Node) and o in self.attrs]
        if params:
            p = params[0]
            x = self._tensor_input(ops[1] if ops[0] is p else ops[0])
            key, t = self.attrs[p]
            shape = self._rank(x, (4,))
            C = shape[3] if x in self.nhwc else shape[1]
            want = (C,) if x in self.nhwc else (C, 1, 1)
            if tuple(t.shape) != want:
                raise _Unsupported(f"mul by parameter {key} of shape {list(t.shape)}: only "
                                   f"a per-channel scale {list(want)} is supported")
            prm = {}
            self._add_param(prm, "weight", None, t, key=key)
            return self._emit(node, "mul", [x], prm, nhwc_ok=True)
        xs = [self._tensor_input(o, "operand") for o in ops]
        s0, s1 = self.shape(xs[0]), self.shape(xs[1])
        if s0 != s1 and len(s0) == 4 and tuple(s0[2:]) == (1, 1):
            xs, s0, s1 = xs[::-1], s1, s0      # the gate first: put the map first
        ok = s0 == s1 or (len(s0) == 4 and tuple(s1) == (s0[0], s0[1], 1, 1))
        if not ok or (xs[0] in self.nhwc) != (xs[1] in self.nhwc):
            raise _Unsupported(f"mul of shapes {list(s0)} and {list(s1)}: only equal shapes "
                               f"or a (N,C,1,1) gate are supported")
        self._emit(node, "mul", xs, nhwc_ok=True)

    def _fn_layer_norm(self, node, a):
        specs = []
        for role in ("weight", "bias"):
            v = a[role]
            if v is None:
                specs.append(None)
            elif isinstance(v, fx.Node) and v in self.attrs:
                key, t = self.attrs[v]
                specs.append((role, None, t, key))
            else:
                raise _Unsupported(f"layer_norm {role} must be a parameter of the model")
        self._layer_norm(node, self._tensor_input(a["input"]), a["normalized_shape"],
                         a["eps"], specs[0], specs[1])

    def _fn_permute(self, node, a):
        x = self._tensor_input(a["input"])
        dims = a.get("dims")
        if dims is None or (len(dims) == 1 and isinstance(dims[0], (tuple, list))):
            dims = dims[0] if dims else dims
        dims = tuple(int(d) % 4 for d in dims) if dims is not None and len(dims) == 4 else None
        self._rank(x, (4,))
        if x not in self.nhwc and dims == (0, 2, 3, 1):
            self.names[node] = self.names[x]
            self.nhwc.add(node)
        elif x in self.nhwc and dims == (0, 3, 1, 2):
            self.names[node] = self.names[x]
        else:
            raise _Unsupported(f"only permute(0, 2, 3, 1) of a map and permute(0, 3, 1, 2) "
                               f"back are supported (channels-last LayerNorm/Linear), got {dims}")

    def _fn_transpose(self, node, a):
        x = a["input"]
        d = sorted(int(v) % 5 for v in (a["dim0"], a["dim1"]))
        if isinstance(x, fx.Node) and x in self.shuffle and self.shuffle[x][2] == "grouped" \
                and d == [1, 2]:
            src, g, _ = self.shuffle[x]
            self.shuffle[node] = (src, g, "transposed")
            return
        raise _Unsupported("transpose is supported only inside a channel shuffle "
                           "(view(N, g, C/g, H, W) -> transpose(1, 2) -> view(N, C, H, W))")

    def _fn_chunk(self, node, a):
        x = self._tensor_input(a["input"])
        shape = self._rank(x, (4,))
        k, dim = a["chunks"], a["dim"]
        if x in self.nhwc or not isinstance(dim, int) or dim % 4 != 1 or \
                not isinstance(k, int) or k < 1:
            raise _Unsupported(f"only chunk(k, dim=1) of a (N,C,H,W) map is supported, got "
                               f"chunks={k!r}, dim={dim!r}")
        C = shape[1]
        size = -(-C // k)
        self.chunks[node] = (x, [(s, min(s + size, C)) for s in range(0, C, size)])

    def _chunk_item(self, node):
        x, bounds = self.chunks[node.args[0]]
        i = node.args[1]
        if not isinstance(i, int) or not -len(bounds) <= i < len(bounds):
            raise _Unsupported(f"chunk index {i!r} out of range")
        start, end = bounds[i]
        self._emit(node, "channel_slice", [x], attrs={"start": start, "end": end})

    def _fn_mean(self, node, a):
        x = self._tensor_input(a["input"])
        self._rank(x, (4,))
        dims = a["dim"]
        if isinstance(dims, int):
            dims = [dims]
        if a["dtype"] is not None or x in self.nhwc or dims is None or \
                sorted(int(d) % 4 for d in dims) != [2, 3]:
            raise _Unsupported(f"only mean over the spatial dims [2, 3] of a map is supported, "
                               f"got dim={a['dim']!r} (nearest supported op: adaptive_avgpool2d)")
        if a["keepdim"]:
            return self._emit(node, "adaptive_avgpool2d", [x], attrs={"output": [1, 1]})
        # (N,C): the spatial mean, then flatten
        name = self._name_for(node)
        pool = self._emit_raw(self._unique(f"{name}.pool"), "adaptive_avgpool2d",
                              [self.names[x]], {"output": [1, 1]})
        entry_inputs = [pool]
        self.nodes.append({"name": name, "op": "flatten", "inputs": entry_inputs})
        self.names[node] = name
        self.fx_to_name[node.name] = name

    def _fn_relu(self, node, a):
        self._emit(node, "relu", [self._tensor_input(a["input"])])

    def _fn_max_pool2d(self, node, a):
        self._maxpool(node, self._tensor_input(a["input"]), a["kernel_size"],
                      a["stride"], a["padding"], a["dilation"], a["ceil_mode"],
                      a["return_indices"])

    def _fn_avg_pool2d(self, node, a):
        self._avgpool(node, self._tensor_input(a["input"]), a["kernel_size"],
                      a["stride"], a["padding"], a["ceil_mode"],
                      a["count_include_pad"], a["divisor_override"])

    def _fn_adaptive_avg_pool2d(self, node, a):
        self._adaptive(node, self._tensor_input(a["input"]), a["output_size"])

    def _fn_dropout(self, node, a):
        x = self._tensor_input(a["input"])
        if a["training"] is not False:
            raise _Unsupported("dropout with training=True stays active in eval "
                               "mode; pass training=self.training")
        self._emit(node, "dropout", [x], attrs={"p": _number(a["p"], "p")})

    def _fn_log_softmax(self, node, a):
        if a["dtype"] is not None:
            raise _Unsupported("log_softmax with a dtype is not supported")
        self._log_softmax(node, self._tensor_input(a["input"]), a["dim"])

    def _fn_lrn(self, node, a):
        self._lrn(node, self._tensor_input(a["input"]), a["size"], a["alpha"],
                  a["beta"], a["k"])

    def _fn_flatten(self, node, a):
        self._flatten(node, self._tensor_input(a["input"]), a["start_dim"], a["end_dim"])

    def _fn_add(self, node, a):
        if a["out"] is not None or a["alpha"] != 1:
            raise _Unsupported("add with alpha or out= is not supported")
        x = self._tensor_input(a["input"])
        y = self._tensor_input(a["other"], "the second operand")
        if self.shape(x) != self.shape(y):
            raise _Unsupported(f"add needs operands of the same shape (no "
                               f"broadcasting), got {list(self.shape(x))} and "
                               f"{list(self.shape(y))}")
        self._emit(node, "add", [x, y])

    def _fn_cat(self, node, a):
        tensors, dim = a["tensors"], a["dim"]
        if a["out"] is not None or not isinstance(tensors, (list, tuple)) or not tensors:
            raise _Unsupported("cat needs a non-empty list of tensors")
        xs = [self._tensor_input(t) for t in tensors]
        ranks = {len(self._rank(t, (2, 4))) for t in xs}
        if len(ranks) != 1 or not isinstance(dim, int) or dim % ranks.pop() != 1:
            raise _Unsupported(f"only cat along dim 1 (channels) is supported, got dim={dim!r}")
        self._emit(node, "concat", xs)

    def _fn_view(self, node, a):
        src = a["input"]
        out_shape = self.shape(node)
        if isinstance(src, fx.Node) and src in self.shuffle:
            base, g, state = self.shuffle[src]
            bs = self.shape(base)
            if state == "transposed" and out_shape == bs:
                return self._emit(node, "channel_shuffle", [base], attrs={"groups": g})
            raise _Unsupported("a channel shuffle must end with view(N, C, H, W)")
        if isinstance(src, fx.Node) and src in self.names and src not in self.nhwc:
            ins = self.shape(src)
            if ins is not None and len(ins) == 4 and out_shape is not None and len(out_shape) == 5 \
                    and out_shape[0] == ins[0] and out_shape[1] * out_shape[2] == ins[1] \
                    and tuple(out_shape[3:]) == tuple(ins[2:]):
                self.shuffle[node] = (src, int(out_shape[1]), "grouped")
                return
        x = self._tensor_input(a["input"])
        dims = a["shape"]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        in_shape, out_shape = self.shape(x), self.shape(node)
        flat = in_shape is not None and len(in_shape) >= 2 and \
            out_shape == (in_shape[0], math.prod(in_shape[1:]))

        def is_size(d):
            return isinstance(d, fx.Node) and d in self.shape_nodes
        batch_free = len(dims) == 2 and (is_size(dims[0]) or dims[0] == -1) and \
            (is_size(dims[1]) or dims[1] == -1 or
             (flat and dims[1] == out_shape[1])) and dims != (-1, -1)
        if not (flat and batch_free):
            raise _Unsupported(f"only view/reshape to (N, -1) (a flatten) is "
                               f"supported, got shape args {list(dims)!r}")
        self._emit(node, "flatten", [x])


# ---------------------------------------------------------------------------
# The viscnn graph: validation and a reference executor

def validate_graph(graph, tensors):
    """Static checks of a viscnn graph (what the C loader checks, minus
    shape inference).  Raises ValueError."""
    seen = {graph["input"]["name"]}
    for n in graph["nodes"]:
        name, op = n["name"], n["op"]
        if name in seen:
            raise ValueError(f"duplicate node name {name!r}")
        if op not in OPS:
            raise ValueError(f"{name}: unknown op {op!r}")
        lo, hi = OPS[op]
        if len(n["inputs"]) < lo or (hi is not None and len(n["inputs"]) > hi):
            raise ValueError(f"{name}: {op} takes {lo}..{hi} inputs")
        for i in n["inputs"]:
            if i not in seen:
                raise ValueError(f"{name}: input {i!r} is not an earlier node")
        p = n.get("params", {})
        for key in p.values():
            if key not in tensors:
                raise ValueError(f"{name}: missing parameter {key!r}")
        shp = {k: tuple(tensors[v].shape) for k, v in p.items()}
        at = n.get("attrs", {})
        if op == "conv2d":
            w = shp.get("weight")
            if w is None or len(w) != 4 or list(w[2:]) != at["kernel"] or \
                    w[0] % at["groups"]:
                raise ValueError(f"{name}: conv weight {w} disagrees with attrs")
            if "bias" in shp and shp["bias"] != (w[0],):
                raise ValueError(f"{name}: conv bias shape {shp['bias']}")
        elif op == "linear":
            w = shp.get("weight")
            if w is None or len(w) != 2 or ("bias" in shp and shp["bias"] != (w[0],)):
                raise ValueError(f"{name}: bad linear parameters")
        elif op == "batchnorm2d":
            need = {"running_mean", "running_var"}
            if not need <= set(shp) or ("weight" in shp) != ("bias" in shp) or \
                    len({s for s in shp.values()}) != 1 or len(shp["running_mean"]) != 1:
                raise ValueError(f"{name}: bad batchnorm parameters")
        elif op == "mul" and p:
            if set(shp) != {"weight"} or len(n["inputs"]) != 1:
                raise ValueError(f"{name}: bad mul parameters")
        elif op == "layernorm2d":
            if set(shp) not in (set(), {"weight", "bias"}) or \
                    any(len(v) != 1 for v in shp.values()):
                raise ValueError(f"{name}: bad layernorm2d parameters")
        elif p:
            raise ValueError(f"{name}: {op} takes no parameters")
        seen.add(name)
    if graph["output"] not in seen:
        raise ValueError(f"output {graph['output']!r} is not a node")


def run_graph(graph, tensors, x, keep=False, override=None):
    """Execute a viscnn graph with PyTorch ops (eval semantics).

    tensors: name -> numpy array or torch tensor (tensors that require grad
    receive gradients; running statistics never do).  override, if given, is
    called as override(node, inputs, attrs) before each node and may return
    the node's output instead (None: compute it normally).
    Returns the output, or (output, {name: tensor}) with keep=True."""
    T = {k: torch.as_tensor(v) for k, v in tensors.items()}
    env = {graph["input"]["name"]: x}
    for n in graph["nodes"]:
        xs = [env[i] for i in n["inputs"]]
        p = {k: T[v] for k, v in n.get("params", {}).items()}
        a = n.get("attrs", {})
        op = n["op"]
        y = override(n, xs, a) if override is not None else None
        if y is not None:
            pass
        elif op == "conv2d":
            y = F.conv2d(xs[0], p["weight"], p.get("bias"), a["stride"],
                         a["padding"], a["dilation"], a["groups"])
        elif op == "linear":
            y = F.linear(xs[0], p["weight"], p.get("bias"))
        elif op == "relu":
            y = F.relu(xs[0])
        elif op == "maxpool2d":
            y = F.max_pool2d(xs[0], a["kernel"], a["stride"], a["padding"],
                             a["dilation"], a["ceil_mode"])
        elif op == "avgpool2d":
            y = F.avg_pool2d(xs[0], a["kernel"], a["stride"], a["padding"],
                             a["ceil_mode"], a["count_include_pad"],
                             a["divisor_override"] or None)
        elif op == "adaptive_avgpool2d":
            y = F.adaptive_avg_pool2d(xs[0], a["output"])
        elif op == "batchnorm2d":
            y = F.batch_norm(xs[0], p["running_mean"].detach(), p["running_var"].detach(),
                             p.get("weight"), p.get("bias"), False, 0.0, a["eps"])
        elif op == "lrn":
            y = F.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["k"])
        elif op == "concat":
            y = torch.cat(xs, 1)
        elif op == "add":
            if xs[0].shape != xs[1].shape:
                raise ValueError(f"{n['name']}: add of different shapes")
            y = xs[0] + xs[1]
        elif op == "flatten":
            y = torch.flatten(xs[0], 1)
        elif op == "dropout":
            y = xs[0]
        elif op == "log_softmax":
            y = F.log_softmax(xs[0], 1)
        elif op == "hardtanh":
            y = F.hardtanh(xs[0], a["min_val"], a["max_val"])
        elif op == "hardswish":
            y = F.hardswish(xs[0])
        elif op == "hardsigmoid":
            y = F.hardsigmoid(xs[0])
        elif op == "sigmoid":
            y = torch.sigmoid(xs[0])
        elif op == "silu":
            y = F.silu(xs[0])
        elif op == "gelu":
            y = F.gelu(xs[0])
        elif op == "mul":
            if "weight" in p:
                y = xs[0] * p["weight"].reshape(1, -1, 1, 1)
            else:
                y = xs[0] * xs[1]
        elif op == "layernorm2d":
            C = xs[0].shape[1]
            y = F.layer_norm(xs[0].permute(0, 2, 3, 1), (C,), p.get("weight"), p.get("bias"),
                             a.get("eps", 1e-5)).permute(0, 3, 1, 2)
        elif op == "channel_shuffle":
            N, C, H, W = xs[0].shape
            g = a["groups"]
            y = xs[0].reshape(N, g, C // g, H, W).transpose(1, 2).reshape(N, C, H, W)
        elif op == "channel_slice":
            y = xs[0][:, a["start"]:a["end"]]
        else:
            raise ValueError(f"unknown op {op!r}")
        env[n["name"]] = y
    out = env[graph["output"]]
    if keep:
        return out, {n["name"]: env[n["name"]] for n in graph["nodes"]}
    return out


# ---------------------------------------------------------------------------
# Conversion driver

class Conversion:
    """The result of converting a model."""

    def __init__(self, spec, gm, graph, tensors, fx_to_name, verify_input,
                 verify_output):
        self.spec = spec
        self.gm = gm                    # the fx GraphModule
        self.graph = graph              # the viscnn graph (dict)
        self.tensors = tensors          # name -> np.ndarray float32
        self.fx_to_name = fx_to_name    # fx node name -> viscnn node name
        self.verify_input = verify_input    # a random input batch ...
        self.verify_output = verify_output  # ... and the module's output

    def metadata(self):
        return {"viscnn.graph": json.dumps(self.graph, separators=(",", ":"))}


def _max_rel_diff(a, b):
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        return math.inf
    scale = max(1.0, float(a.abs().max()))
    return float((a - b).abs().max()) / scale


def convert_model(spec):
    """Trace and convert `spec.model`; returns a Conversion."""
    model = spec.model.eval()
    gm = trace(model)
    conv = Converter(gm)
    g = torch.Generator().manual_seed(12345)
    x = torch.randn([VERIFY_BATCH] + spec.input_shape, generator=g)
    fx_out = conv.propagate_shapes(x.clone())
    output = conv.convert()
    with torch.no_grad():
        ref = model(x.clone())
    if not isinstance(fx_out, torch.Tensor) or _max_rel_diff(ref, fx_out) > VERIFY_RTOL:
        raise ConvertError("the fx trace does not reproduce the model's output "
                           "(data-dependent behaviour?)")

    out_shape = conv.shape(next(n for n in gm.graph.nodes if n.op == "output").args[0])
    labels = spec.labels
    if labels is not None:
        if len(out_shape) != 2 or out_shape[1] != len(labels):
            raise ConvertError(f"--labels has {len(labels)} lines but the model "
                               f"output is {list(out_shape[1:])}")
    elif spec.imagenet and len(out_shape) == 2 and out_shape[1] == 1000:
        labels = find_imagenet_labels()
        if labels is None:
            print(f"{PROG}: warning: ImageNet labels not found (install "
                  f"opencv-doc for classification_classes_ILSVRC2012.txt); "
                  f"writing no labels", file=sys.stderr)

    graph = {"format": "viscnn.graph", "version": 1, "name": spec.name,
             "input": {"name": "input", "shape": list(spec.input_shape)},
             "preprocess": spec.preprocess}
    if labels is not None:
        graph["labels"] = labels
    graph["output"] = output
    graph["nodes"] = conv.nodes
    try:
        validate_graph(graph, conv.tensors)
    except ValueError as e:
        raise RuntimeError(f"converter produced an invalid graph: {e}") from None
    return Conversion(spec, gm, graph, conv.tensors, conv.fx_to_name, x, ref)


def write_model(conversion, path):
    """Write the model file, read it back and check it reproduces the model."""
    vcio.write_safetensors(path, conversion.tensors, conversion.metadata())
    try:
        graph, tensors = vcio.read_graph(path)
        if graph != json.loads(json.dumps(conversion.graph)) or \
                set(tensors) != set(conversion.tensors):
            raise RuntimeError(f"{path}: the file does not read back as written")
        with torch.no_grad():
            out = run_graph(graph, tensors, conversion.verify_input.clone())
        diff = _max_rel_diff(conversion.verify_output, out)
        if diff > VERIFY_RTOL:
            raise RuntimeError(f"{path}: the converted graph does not reproduce "
                               f"the model (max rel diff {diff:.3g})")
    except BaseException:
        os.unlink(path)     # never leave a wrong model file behind
        raise
    return diff


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="torch2viscnn.py",
        description="Convert a PyTorch model (torchvision or your own "
                    "nn.Module, traced with torch.fx) into a viscnn "
                    "model file (.safetensors with a 'viscnn.graph' header; "
                    "see docs/model-format.md).")
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
    args = parser.parse_args(argv)
    try:
        spec = build_model(args)
        conversion = convert_model(spec)
        diff = write_model(conversion, args.output)
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        import traceback
        traceback.print_exc()
        print(f"{PROG}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.seed is None and not args.weights:
        print(f"{PROG}: warning: neither --seed nor --weights: the weights are "
              f"random and not reproducible", file=sys.stderr)
    nparams = sum(a.size for a in conversion.tensors.values())
    print(f"{PROG}: wrote {args.output}: {spec.name}, "
          f"{len(conversion.graph['nodes'])} nodes, {len(conversion.tensors)} "
          f"tensors ({nparams} values), output '{conversion.graph['output']}', "
          f"verified (max rel diff {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
