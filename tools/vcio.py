"""Small I/O helpers shared by the viscnn Python tools.

Only the standard library and numpy are used here (no torch), so the helpers
can also be imported by scripts that merely inspect model files.

safetensors layout (https://github.com/huggingface/safetensors):

    u64 little-endian N | N bytes of JSON header | raw tensor bytes

The header maps each tensor name to {"dtype", "shape", "data_offsets": [b, e]}
(offsets relative to the start of the data section) and may hold a
"__metadata__" object of string -> string.  The header is padded with spaces
to a multiple of 8 bytes so that the data section is 8-byte aligned.
"""

import json
import os
import struct
import tempfile

import numpy as np

# safetensors dtype name <-> little-endian numpy dtype.
_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}


def _atomic_writer(path):
    """Open a temporary file beside `path`; the caller os.replace()s it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path),
                               dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; use normal modes
    return os.fdopen(fd, "wb"), tmp


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors` (name -> array, stored as float32) to `path`.

    `metadata` is a dict of str -> str stored as "__metadata__".  Tensors are
    written in the dict's order.  The file is written to a temporary name and
    renamed into place, so readers never see a half-written file.
    """
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("safetensors metadata must map str to str "
                                f"(key {k!r})")
        header["__metadata__"] = dict(metadata)
    arrays = []
    offset = 0
    for name, value in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a valid tensor name")
        a = np.ascontiguousarray(np.asarray(value), dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)

    f, tmp = _atomic_writer(path)
    try:
        with f:
            f.write(struct.pack("<Q", len(hbytes)))
            f.write(hbytes)
            for a in arrays:
                if a.nbytes:
                    f.write(a.reshape(-1).view(np.uint8).data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_safetensors(path):
    """Read a safetensors file.  Returns (tensors, metadata).

    tensors: dict name -> numpy array (in header order), metadata: dict
    (empty when the file has none).  Raises ValueError on a malformed file.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (hlen,) = struct.unpack("<Q", raw)
        if hlen > size - 8:
            raise ValueError(f"{path}: header length {hlen} exceeds file size")
        try:
            header = json.loads(f.read(hlen).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: bad JSON header: {e}") from None
        if not isinstance(header, dict):
            raise ValueError(f"{path}: header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        base = 8 + hlen
        data_len = size - base
        tensors = {}
        for name, info in header.items():
            try:
                dtype = np.dtype(_DTYPES[info["dtype"]])
                shape = tuple(int(d) for d in info["shape"])
                b, e = (int(o) for o in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{path}: bad header entry for {name!r}") from None
            count = int(np.prod(shape, dtype=np.int64))
            if not 0 <= b <= e <= data_len or e - b != count * dtype.itemsize:
                raise ValueError(f"{path}: bad data_offsets for {name!r}")
            f.seek(base + b)
            a = np.fromfile(f, dtype=dtype, count=count) if count else \
                np.zeros(0, dtype=dtype)
            if a.size != count:
                raise ValueError(f"{path}: truncated data for {name!r}")
            tensors[name] = a.astype(dtype.newbyteorder("="), copy=False).reshape(shape)
    return tensors, metadata


def save_npy(path, array):
    """np.save to a temporary file, then rename into place."""
    f, tmp = _atomic_writer(path)
    try:
        with f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_npy(path):
    return np.load(path, allow_pickle=False)


def read_graph(path):
    """Read a viscnn model file.  Returns (graph dict, tensors)."""
    tensors, metadata = read_safetensors(path)
    if "viscnn.graph" not in metadata:
        raise ValueError(f"{path}: no 'viscnn.graph' in __metadata__")
    return json.loads(metadata["viscnn.graph"]), tensors
