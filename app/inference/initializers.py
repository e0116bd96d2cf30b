"""Reading constant tensors (initializers) out of model files, for models that keep data there.

inswapper keeps its identity projection ("emap", 512 x 512) as the graph's last initializer; the
reference implementation reads it from the ONNX file, and so do we. Parsing a 550 MB protobuf takes a
second or two, so each file's answer is kept for the life of the process (keyed by path, size and
modification time, so a replaced file is read again).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.inference.errors import ModelFormatError

log = logging.getLogger(__name__)


def last_initializer(path: Path, name: str | None = None) -> np.ndarray:
    """The initializer called `name` if the file has one, else the graph's last initializer."""
    stat = path.stat()
    return _read(str(path), stat.st_size, stat.st_mtime_ns, name).copy()


@lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int, name: str | None) -> np.ndarray:
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
