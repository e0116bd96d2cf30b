"""ONNX shape inference without the weights: what the rewrites need, at a fraction of the cost.

onnx's `infer_shapes` serialises the whole model to infer it and parses the result back, weights
included: for inswapper_128's 529 MB that was about 4 s a call, twice per cold start (the batch-axis
surgery and ORT's fp16 converter each ran it). Shapes only need the initializers' types and dims, and
the values of the small ones that decide shapes (Reshape targets, Resize sizes), so inference runs on a
skeleton where the large initializers are declared as graph inputs instead.
"""

from __future__ import annotations

import numpy as np
import onnx

SKELETON_ELEMENTS = 4096  # initializers larger than this enter shape inference as declared inputs


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its large weights: each becomes a graph input of the same type and shape."""
    graph = model.graph
    listed = {value.name for value in graph.input}  # older exports list initializers as inputs too
    small, declared = [], []
    for init in graph.initializer:
        if int(np.prod(init.dims, dtype=np.int64)) <= SKELETON_ELEMENTS:
            small.append(init)
        elif init.name not in listed:
            declared.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    light = onnx.helper.make_graph(
        list(graph.node),
        graph.name,
        [*graph.input, *declared],
        list(graph.output),
        small,
        value_info=list(graph.value_info),  # shapes the file already records are kept, as infer_shapes does
    )
    opsets = list(model.opset_import)
    return onnx.helper.make_model(light, opset_imports=opsets, ir_version=model.ir_version)


def inferred_skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The skeleton with every inferable value's type and shape (its `value_info`)."""
    return onnx.shape_inference.infer_shapes(skeleton(model))


def annotate(model: onnx.ModelProto) -> None:
    """Give `model` the value_info `onnx.shape_inference.infer_shapes` would, in place."""
    inferred = inferred_skeleton(model)
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)
