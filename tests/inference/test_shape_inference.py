"""Shape inference on the weightless skeleton gives what onnx's full inference gives (the rewrites rely
on it: batch-axis surgery reads static shapes, ORT's fp16 converter reads value types)."""

from __future__ import annotations

from pathlib import Path

import onnx

from app.inference.shape_inference import annotate, skeleton


def _value_infos(model: onnx.ModelProto) -> list[bytes]:
    return [value.SerializeToString(deterministic=True) for value in model.graph.value_info]


def test_the_skeleton_infers_what_the_whole_model_does(test_assets: Path) -> None:
    """On the real SCRFD export (whose file already records intermediate shapes, as many do)."""
    model = onnx.load(str(test_assets / "scrfd.onnx"))
    expected = onnx.shape_inference.infer_shapes(model)
    light = skeleton(model)
    assert len(light.graph.initializer) < len(model.graph.initializer)  # the weights stayed out
    annotate(model)
    assert _value_infos(model) == _value_infos(expected)


def test_recorded_shapes_are_kept_when_an_input_turns_dynamic(test_assets: Path) -> None:
    """The batch-axis surgery names the batch before inferring: the shapes the file recorded at batch 1
    must still be there, as with onnx's own inference (without them its Resize rewrite finds nothing)."""
    model = onnx.load(str(test_assets / "scrfd.onnx"))
    leading = model.graph.input[0].type.tensor_type.shape.dim[0]
    leading.Clear()
    leading.dim_param = "batch"
    expected = onnx.shape_inference.infer_shapes(model)
    annotate(model)
    assert _value_infos(model) == _value_infos(expected)
