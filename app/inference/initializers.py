"""Reading constant tensors (initializers) out of model files, for models that keep data there.

inswapper keeps its identity projection ("emap", 512 x 512) as the graph's last initializer; the
reference implementation reads it from the ONNX file, and so do we. Parsing a 550 MB protobuf takes a
second or two (about 6 % of a warm start's host time on the H200 bench), so each file's answer is kept
for the life of the process and on disk in the cache folder (`initializers/`), keyed by the file's path,
size and modification time: a replaced file is read again, a cached copy that cannot be read is
ignored and written afresh, and a partial write is never taken for a copy (it is renamed into place).
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core.paths import cache_dir
from app.inference.errors import ModelFormatError

FOLDER = "initializers"

log = logging.getLogger(__name__)


def last_initializer(path: Path, name: str | None = None) -> np.ndarray:
    """The initializer called `name` if the file has one, else the graph's last initializer."""
    stat = path.stat()
    return _read(str(path), stat.st_size, stat.st_mtime_ns, name).copy()


@lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int, name: str | None) -> np.ndarray:
    key = hashlib.sha256(f"{Path(path).resolve()}|{size}|{mtime_ns}|{name}".encode()).hexdigest()[:32]
    cached = cache_dir() / FOLDER / f"{key}.npy"
    try:
        kept: np.ndarray = np.load(cached, allow_pickle=False)
        return kept
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cached initializer %s: %s", cached, exc)
    value = _parse(path, name)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial.npy")
        np.save(partial, value, allow_pickle=False)
        partial.replace(cached)
    except OSError as exc:  # a read-only cache only costs the next launch the parse
        log.warning("could not cache the initializer of %s: %s", path, exc)
    return value


def _parse(path: str, name: str | None) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise ModelFormatError(f"{path} is not a readable ONNX file: {exc}") from exc
    initializers = list(model.graph.initializer)
    if not initializers:
        raise ModelFormatError(f"{path} has no initializers; expected the model's stored matrix")
    chosen = next((i for i in initializers if name is not None and i.name == name), initializers[-1])
    log.info("read initializer '%s' %s from %s", chosen.name, list(chosen.dims), path)
    return np.asarray(numpy_helper.to_array(chosen), dtype=np.float32)
