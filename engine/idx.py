"""Read and write IDX files, the format MNIST and Fashion-MNIST are published in.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data. We only need unsigned bytes (type 0x08).
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from engine.stores import files

UBYTE = 0x08


class IdxError(ValueError):
    """The bytes are not a valid unsigned-byte IDX file."""


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse IDX bytes (already decompressed) into a uint8 array of the stated shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IdxError("not an IDX file (bad magic number)")
    if raw[2] != UBYTE:
        raise IdxError(f"unsupported IDX data type 0x{raw[2]:02x}; only unsigned bytes are used")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError("IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - header != count:
        raise IdxError(f"IDX body has {len(raw) - header} bytes, the header promises {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: Path) -> np.ndarray:
    """Read a .gz or plain IDX file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return parse_idx(f.read())


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file, atomically (temp file, then rename)."""
    def write(tmp: Path) -> None:
        with gzip.open(tmp, "wb", compresslevel=6) as f:
            f.write(encode_idx(array))
    files.write_with(Path(path), write)
