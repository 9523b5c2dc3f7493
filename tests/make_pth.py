#!/usr/bin/python3
"""make_pth.py: PyTorch checkpoints for tests/test_pth.py, written with
Debian's torch.

    /usr/bin/python3 tests/make_pth.py OUTDIR [--seed S]

OUTDIR/
  NAME.zip.pth, NAME.legacy.pth  the seeded state dict of torchvision NAME
                                 (tools/torch2viscnn.py build_model, --seed S),
                                 torch.save(sd, f) and torch.save(sd, f,
                                 _use_new_zipfile_serialization=False)
  NAME.safetensors               tools/torch2viscnn.py --torchvision NAME
                                 --seed S (a separate process: the same seed
                                 must give the same weights)
  alexnet.variant.{zip,legacy}.pth  the alexnet state dict nested under
                                 "state_dict" with a "module." prefix, one
                                 non-contiguous weight, every bias a view at
                                 an offset into one shared storage, and an
                                 extra tensor the architecture does not use
  resnet18.zip64.pth             resnet18.zip.pth rewritten with zip64
                                 structures everywhere (extra fields, zip64
                                 end-of-central-directory record and locator)
  resnet18.deflate.pth           the same entries, DEFLATE-compressed
  resnet18.p4.{zip,legacy}.pth   resnet18 saved with pickle_protocol=4
  tiny.{zip,legacy,zip64,deflate}.pth  a two-tensor state dict (fuzzing seeds)
  bad/*.pth                      hostile and broken files (see BAD below);
                                 bad/expect.json: file -> expected message part
  x.npy                          a (1, 3, 224, 224) input
The hostile pickles are built with pickle's ordinary machinery (__reduce__
returns a callable and its arguments); nothing here ever unpickles them.
"""

import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import torch2viscnn as t2v  # noqa: E402

ARCHS = ["alexnet", "vgg11", "vgg16", "resnet18", "googlenet"]
MAGIC = 0x1950a86a20f9469cfc6c
MARKER = "pth_marker_must_not_exist"     # created only if a hostile pickle ran


def seeded_state_dict(name, seed):
    parser = __import__("argparse").ArgumentParser()
    t2v.add_model_arguments(parser)
    args = parser.parse_args(["--torchvision", name, "--seed", str(seed)])
    return t2v.build_model(args).model.state_dict()


# ---- hand-made torch-like files --------------------------------------------------

class Storage:
    """Pickled as a persistent id, the way torch.save refers to storages."""
    def __init__(self, key, numel, kind="FloatStorage", view=False):
        self.key, self.numel, self.kind, self.view = key, numel, kind, view


class Tensor:
    """Pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)."""
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Call:
    """Pickles as fn(*args): how a hostile file asks the unpickler to run code."""
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class StoragePickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, o):
        if isinstance(o, Storage):
            pid = ("storage", getattr(torch, o.kind), o.key, "cpu", o.numel)
            return pid + (None,) if self.legacy else pid
        return None


def dumps(obj, legacy=False):
    buf = io.BytesIO()
    p = StoragePickler(buf, protocol=2)
    p.legacy = legacy
    p.dump(obj)
    return buf.getvalue()


def entry_data_offset(raw, name):
    """Where the bytes of zip entry `name` start (after its local header)."""
    info = zipfile.ZipFile(io.BytesIO(raw)).getinfo(name)
    n, e = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + n + e


def write_zip(path, entries, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)


def torch_zip(path, pkl, storages=(), extra=()):
    """A zip laid out like torch.save's: archive/data.pkl, archive/data/KEY, archive/version."""
    entries = [("archive/data.pkl", pkl)] + [(f"archive/data/{k}", d) for k, d in storages]
    write_zip(path, entries + list(extra) + [("archive/version", b"3\n")])


def legacy_file(path, pkl, storages=()):
    """The legacy layout: magic, protocol, sys_info, the state dict, the key list, the data."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = [pickle.dumps(MAGIC, protocol=2), pickle.dumps(1001, protocol=2),
           pickle.dumps(sys_info, protocol=2), pkl,
           pickle.dumps([k for k, _, _ in storages], protocol=2)]
    for _, numel, data in storages:
        out.append(struct.pack("<q", numel) + data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def rewrite_zip64(src, dst):
    """Every entry with 0xFFFFFFFF sizes/offsets and zip64 extra fields, a zip64
    end-of-central-directory record and locator (what a >4 GiB file has)."""
    raw = open(src, "rb").read()
    z = zipfile.ZipFile(src)
    out, cd = bytearray(), bytearray()
    for info in z.infolist():
        lh = info.header_offset
        n, e = struct.unpack("<HH", raw[lh + 26:lh + 30])
        data = raw[lh + 30 + n + e:lh + 30 + n + e + info.compress_size]
        name = info.filename.encode()
        off = len(out)
        xl = struct.pack("<HHQQ", 1, 16, info.file_size, info.compress_size)
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, info.compress_type, 0, 0x21, info.CRC,
                           0xFFFFFFFF, 0xFFFFFFFF, len(name), len(xl)) + name + xl + data
        xc = struct.pack("<HHQQQ", 1, 24, info.file_size, info.compress_size, off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, info.compress_type, 0, 0x21, info.CRC,
                          0xFFFFFFFF, 0xFFFFFFFF, len(name), len(xc), 0, 0, 0, 0, 0xFFFFFFFF) + name + xc
    cd_off = len(out)
    out += cd
    rec = len(out)
    count = len(z.infolist())
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, count, count, len(cd), cd_off)
    out += struct.pack("<IIQI", 0x07064b50, 0, rec, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(out)


def rewrite_deflate(src, dst):
    z = zipfile.ZipFile(src)
    write_zip(dst, [(i.filename, z.read(i)) for i in z.infolist()], zipfile.ZIP_DEFLATED)


def variant(sd):
    """The alexnet state dict as real-world checkpoints have it (see the docstring)."""
    biases = [k for k in sd if k.endswith(".bias")]
    packed = torch.cat([sd[k].flatten() for k in biases] + [torch.zeros(5)])
    out = collections.OrderedDict()
    at = 0
    for k, v in sd.items():
        if k in biases:
            v = packed[at:at + v.numel()]        # a view: storage offset `at` into a shared storage
            at += v.numel()
        elif k == "classifier.1.weight":
            v = v.t().contiguous().t()           # same values, column-major strides
            assert not v.is_contiguous()
        out["module." + k] = v
    out["module.aux.extra.weight"] = torch.ones(3)
    return {"epoch": 7, "arch": "alexnet", "state_dict": out}


# ---- hostile and broken files ---------------------------------------------------------

def bad_files(d, tiny_zip, tiny_legacy, rng):
    """Writes the files; returns {file: part of the expected message}."""
    os.makedirs(d, exist_ok=True)
    expect = {}

    def put(name, data, msg):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        expect[name] = msg

    marker = os.path.join(d, MARKER)
    system = dumps(Call(os.system, f"touch {marker}"))
    assert b"system" in system and marker.encode() in system
    torch_zip(os.path.join(d, "os_system.zip.pth"), system)
    expect["os_system.zip.pth"] = "system, which a state dict never needs; refusing"
    legacy_file(os.path.join(d, "os_system.legacy.pth"), system)
    expect["os_system.legacy.pth"] = "system, which a state dict never needs; refusing"
    # os.system hidden as a tensor value inside an otherwise normal state dict
    sd = collections.OrderedDict(w=Tensor(Storage("0", 4), 0, [4], [1]), evil=Call(os.system, f"touch {marker}"))
    torch_zip(os.path.join(d, "os_system_inside.zip.pth"), dumps(sd), [("0", b"\0" * 16)])
    expect["os_system_inside.zip.pth"] = "system, which a state dict never needs; refusing"
    torch_zip(os.path.join(d, "eval.zip.pth"), dumps(Call(eval, "print(1)")))
    expect["eval.zip.pth"] = "eval, which a state dict never needs; refusing"
    # a whole model, not a state dict: its class is an unknown global
    buf = io.BytesIO()
    torch.save(nn.Sequential(nn.Linear(2, 2)), buf)
    put("whole_model.zip.pth", buf.getvalue(), "torch.nn.modules.container.Sequential, which a state dict never needs")
    # calling a storage type, and an opcode outside the whitelist (a protocol 4 set)
    torch_zip(os.path.join(d, "storage_call.zip.pth"), dumps(Call(torch.FloatStorage, 4)))
    expect["storage_call.zip.pth"] = "calls torch.FloatStorage directly"
    torch_zip(os.path.join(d, "set_opcode.zip.pth"), pickle.dumps({1, 2}, protocol=4))
    expect["set_opcode.zip.pth"] = "not one a state dict needs; refusing"
    # truncated zips
    put("truncated_half.zip.pth", tiny_zip[:len(tiny_zip) // 2], "end-of-central-directory")
    put("truncated_tail.zip.pth", tiny_zip[:-7], "end-of-central-directory")
    # storage offsets and sizes out of range
    sd = collections.OrderedDict(w=Tensor(Storage("0", 16), 1000, [4, 4], [4, 1]))
    torch_zip(os.path.join(d, "offset_range.zip.pth"), dumps(sd), [("0", b"\0" * 64)])
    expect["offset_range.zip.pth"] = "lies outside its storage"
    sd = collections.OrderedDict(w=Tensor(Storage("0", 16), 0, [4, 5], [5, 1]))
    legacy_file(os.path.join(d, "offset_range.legacy.pth"), dumps(sd, legacy=True), [("0", 16, b"\0" * 64)])
    expect["offset_range.legacy.pth"] = "lies outside its storage"
    sd = collections.OrderedDict(w=Tensor(Storage("0", 100), 0, [4], [1]))
    torch_zip(os.path.join(d, "storage_short.zip.pth"), dumps(sd), [("0", b"\0" * 16)])
    expect["storage_short.zip.pth"] = "holds 16 bytes"
    torch_zip(os.path.join(d, "storage_missing.zip.pth"), dumps(sd))
    expect["storage_missing.zip.pth"] = "is missing"
    # legacy files cut short: in the data, and in the state-dict pickle
    put("legacy_cut_data.pth", tiny_legacy[:-10], "truncated?")
    put("legacy_cut_pickle.pth", tiny_legacy[:200], "the pickle ends early")
    # a zip without data.pkl, a damaged entry, a big-endian file
    write_zip(os.path.join(d, "no_data_pkl.zip.pth"), [("archive/version", b"3\n"), ("archive/data/0", b"\0" * 16)])
    expect["no_data_pkl.zip.pth"] = "without data.pkl"
    z = zipfile.ZipFile(io.BytesIO(tiny_zip))
    prefix = next(i.filename for i in z.infolist() if i.filename.endswith("/data.pkl"))[:-len("data.pkl")]
    damaged = bytearray(tiny_zip)
    damaged[entry_data_offset(tiny_zip, prefix + "data.pkl") + 40] ^= 0xFF
    put("crc.zip.pth", bytes(damaged), "CRC")
    write_zip(os.path.join(d, "big_endian.zip.pth"),
              [(i.filename, z.read(i)) for i in z.infolist()] + [(prefix + "byteorder", b"big")])
    expect["big_endian.zip.pth"] = "big-endian"
    # a TorchScript archive
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), buf)
    put("torchscript.pth", buf.getvalue(), "TorchScript")
    put("random.pth", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a PyTorch checkpoint")
    put("empty.pth", b"", "empty")
    # fits no architecture: a missing tensor, a wrong shape, float16
    buf = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, buf)
    put("missing_param.zip.pth", buf.getvalue(), "has no 'features.0.weight', which --arch alexnet needs")
    buf = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, buf)
    put("shape.zip.pth", buf.getvalue(), "has shape [64, 3, 5, 5], --arch alexnet expects [64, 3, 11, 11]")
    buf = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11, dtype=torch.float16)}, buf)
    put("float16.zip.pth", buf.getvalue(), "float16")
    with open(os.path.join(d, "expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
    return expect


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "testdata", "pth")
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 3
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    # The reference models come from separate converter runs (same seed -> same
    # weights is one of the checks); they run while this process writes the .pth files.
    # (Same thread count as this process: the seeded BatchNorm statistics come
    # from a forward pass whose float sums depend on it.)
    jobs = {name: subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "torch2viscnn.py"), "--torchvision",
                                    name, "--seed", str(seed), "-o", os.path.join(out, f"{name}.safetensors")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for name in ARCHS}
    for name in ARCHS:
        sd = seeded_state_dict(name, seed)
        torch.save(sd, os.path.join(out, f"{name}.zip.pth"))
        torch.save(sd, os.path.join(out, f"{name}.legacy.pth"), _use_new_zipfile_serialization=False)
        if name == "resnet18":   # pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE)
            torch.save(sd, os.path.join(out, "resnet18.p4.zip.pth"), pickle_protocol=4)
            torch.save(sd, os.path.join(out, "resnet18.p4.legacy.pth"), pickle_protocol=4,
                       _use_new_zipfile_serialization=False)
        if name == "alexnet":
            v = variant(sd)
            torch.save(v, os.path.join(out, "alexnet.variant.zip.pth"))
            torch.save(v, os.path.join(out, "alexnet.variant.legacy.pth"), _use_new_zipfile_serialization=False)
        del sd
        print(f"make_pth: {name}", flush=True)
    for name, job in jobs.items():
        _, stderr = job.communicate()
        if job.returncode:
            sys.exit(f"make_pth: torch2viscnn.py --torchvision {name} failed: {stderr.strip()[-300:]}")
    rewrite_zip64(os.path.join(out, "resnet18.zip.pth"), os.path.join(out, "resnet18.zip64.pth"))
    rewrite_deflate(os.path.join(out, "resnet18.zip.pth"), os.path.join(out, "resnet18.deflate.pth"))
    tiny = collections.OrderedDict(w=torch.arange(6, dtype=torch.float32).reshape(2, 3), b=torch.tensor([0.5, -1.0]))
    torch.save(tiny, os.path.join(out, "tiny.zip.pth"))
    torch.save(tiny, os.path.join(out, "tiny.legacy.pth"), _use_new_zipfile_serialization=False)
    rewrite_zip64(os.path.join(out, "tiny.zip.pth"), os.path.join(out, "tiny.zip64.pth"))
    rewrite_deflate(os.path.join(out, "tiny.zip.pth"), os.path.join(out, "tiny.deflate.pth"))
    tiny_zip = open(os.path.join(out, "tiny.zip.pth"), "rb").read()
    tiny_legacy = open(os.path.join(out, "tiny.legacy.pth"), "rb").read()
    bad_files(os.path.join(out, "bad"), tiny_zip, tiny_legacy, rng)
    x = np.random.default_rng(seed + 1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(os.path.join(out, "x.npy"), x)
    with open(os.path.join(out, "done"), "w") as f:
        f.write(f"seed {seed}\n")


if __name__ == "__main__":
    main()
