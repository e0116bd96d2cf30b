"""The initializer reader (inswapper's emap): parsed from the ONNX file once, then kept in the cache
folder, where a damaged copy is ignored and a replaced model file is read again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from app.inference import initializers
from app.inference.errors import ModelFormatError


def _model(path: Path, emap: np.ndarray) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.zeros(3, np.float32), "other"), numpy_helper.from_array(emap, "emap")],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def _read(path: Path) -> np.ndarray:
    initializers._read.cache_clear()  # a new process, as far as the reader knows
    return initializers.last_initializer(path, "emap")


def test_the_matrix_is_parsed_once_then_read_from_the_cache(tmp_path: Path) -> None:
    emap = np.arange(16, dtype=np.float32).reshape(4, 4)
    model = _model(tmp_path / "swapper.onnx", emap)
    assert np.array_equal(_read(model), emap)
    cached = list((Path(os.environ["DOPPEL_CACHE_DIR"]) / initializers.FOLDER).glob("*.npy"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*.partial*"))
    size, stamp = model.stat().st_size, model.stat().st_mtime_ns
    model.write_bytes(b"not onnx any more".ljust(size, b"\0"))
    os.utime(model, ns=(stamp, stamp))
    # Replaced bytes with the same size and mtime still come from the cache (path, size and mtime are
    # the key, as for the in-process cache): no parse, which would now fail.
    assert np.array_equal(_read(model), emap)


def test_a_replaced_file_is_read_again_and_a_damaged_copy_ignored(tmp_path: Path) -> None:
    model = _model(tmp_path / "swapper.onnx", np.ones((4, 4), np.float32))
    _read(model)
    cached = next((Path(os.environ["DOPPEL_CACHE_DIR"]) / initializers.FOLDER).glob("*.npy"))
    cached.write_bytes(b"damaged")
    assert np.array_equal(_read(model), np.ones((4, 4), np.float32))  # parsed again, copy rewritten
    assert np.array_equal(np.load(cached), np.ones((4, 4), np.float32))
    newer = np.full((4, 4), 2.0, np.float32)
    _model(model, newer)
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    assert np.array_equal(_read(model), newer)


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00garbage")
    with pytest.raises(ModelFormatError, match=r"broken\.onnx"):
        _read(broken)
