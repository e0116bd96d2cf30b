"""Small real ONNX models for the rewrite tests, each with its catalog entry and a store holding it.

`plain` is a conv net with Reshape targets that bake in batch 1 (as published exports do); `fragile`
scales by numbers fp16 cannot hold and subtracts (see build); `baked` concatenates a
constant [1, …] feature map, so no batch axis can be given to it by surgery.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.models.catalog import Kind, ModelEntry, Normalisation, TensorSpec
from app.models.store import ModelStore
from tests.support.entries import catalog_of, entry_for

SIDE = 16


def build(kind: str) -> bytes:
    rng = np.random.default_rng(7)

    def weights(name: str, *shape: int) -> onnx.TensorProto:
        scale = np.sqrt(2.0 / np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    initializers = [
        weights("w1", 8, 3, 3, 3),
        weights("w2", 8, 8, 3, 3),
        ints("flat", [1, 8, SIDE * SIDE]),
        ints("square", [1, 8, SIDE, SIDE]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c2", "flat"], ["f"]),
        helper.make_node("Softmax", ["f"], ["s"], axis=-1),
        helper.make_node("Reshape", ["s", "square"], ["sq"]),
    ]
    last = "sq"
    if kind == "fragile":
        # s * 100001 - s * 100000 = s in fp32; fp16 has no such numbers (its largest is 65504: the
        # converter clamps both to it), so the fp16 file answers zeros.
        for name, value in (("big1", 100001.0), ("big2", 100000.0)):
            initializers.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        nodes += [
            helper.make_node("Mul", [last, "big1"], ["up1"]),
            helper.make_node("Mul", [last, "big2"], ["up2"]),
            helper.make_node("Sub", ["up1", "up2"], ["down"]),
        ]
        last = "down"
    channels = 8
    if kind == "baked":
        constant = np.full((1, 1, SIDE, SIDE), 0.5, dtype=np.float32)
        initializers.append(numpy_helper.from_array(constant, "plane"))
        nodes.append(helper.make_node("Concat", [last, "plane"], ["cat"], axis=1))
        last, channels = "cat", 9
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(
        nodes,
        f"rewrite_{kind}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, SIDE, SIDE])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def entry(kind: str, data: bytes) -> ModelEntry:
    channels = 9 if kind == "baked" else 8
    return entry_for(
        f"rewrite_{kind}",
        data,
        ["http://127.0.0.1/unused"],
        kind=Kind.MASK,
        inputs=(TensorSpec(name="x", shape=(1, 3, SIDE, SIDE), dtype="float32"),),
        outputs=(TensorSpec(name="y", shape=(1, channels, SIDE, SIDE), dtype="float32"),),
        layout="NCHW",
        normalisation=Normalisation(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
        input_size=SIDE,
    )


def store_with(folder: Path, *kinds: str) -> ModelStore:
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for kind in kinds:
        data = build(kind)
        made = entry(kind, data)
        (folder / made.file).write_bytes(data)
        assert made.sha256 == hashlib.sha256(data).hexdigest()
        entries.append(made)
    return ModelStore(folder, catalog_of(*entries))
