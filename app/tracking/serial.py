"""Tracker state as bytes: a JSON tree of plain values with numpy arrays stored beside it, exactly.

Why not pickle: a saved export checkpoint is a file, and unpickling a file runs code. JSON writes floats
with repr, which reads back bit-for-bit, and arrays go through numpy's own .npy format, so a restored
tracker continues exactly as the uninterrupted one would.

Layout: MAGIC, the JSON header's length (8 bytes, little-endian), the JSON header, then an .npz archive
(compressed) holding the arrays the header names as {"__array__": key}.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import zipfile
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"DOPPEL-TRACK\x00\x01"
_ARRAY = "__array__"


class StateError(ValueError):
    """The bytes are not a tracker state this version can read."""


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, dict):
        if _ARRAY in value:
            raise StateError(f"state: the key {_ARRAY!r} is reserved")
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise StateError(f"state: cannot store a {type(value).__name__}")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def pack(tree: Any) -> bytes:
    """Bytes of a tree of dicts, lists, plain scalars and numpy arrays (tuples come back as lists)."""
    arrays: dict[str, np.ndarray] = {}
    header = json.dumps(_encode(tree, arrays), separators=(",", ":")).encode()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return MAGIC + struct.pack("<Q", len(header)) + header + buffer.getvalue()


def unpack(data: bytes) -> Any:
    """The tree `pack` stored."""
    if not data.startswith(MAGIC):
        raise StateError("state: not a Doppel tracker state (wrong header)")
    start = len(MAGIC) + 8
    if len(data) < start:
        raise StateError("state: truncated")
    (length,) = struct.unpack("<Q", data[len(MAGIC) : start])
    try:
        header = json.loads(data[start : start + length])
        with np.load(io.BytesIO(data[start + length :]), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise StateError(f"state: cannot be read ({error})") from error
    return _decode(header, arrays)
