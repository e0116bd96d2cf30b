"""Give a batch-1 model file a dynamic batch axis, by graph surgery, so several faces go in one call.

The published face models are exported at batch 1: their inputs and outputs say 1, and a few nodes bake
the 1 in (Reshape targets such as [1, 1024, 1, 1]). The surgery names the leading axis of every input
and output of rank 2 or more `batch`, drops the intermediate shape annotations (they would pin it to 1
again), rewrites constant Reshape targets whose first entry is 1 to take the batch from their input
(-1 when the target has no other -1, else 0, "copy this axis"), and turns Resize to constant sizes
[1, C, H, W] into Resize by the equivalent scales. Anything else that bakes the batch in
(a constant concatenated to the features, an Expand to a fixed shape) is not guessed at: the rewritten
file is only used after batched outputs were shown to equal per-item ones (app.inference.rewrites), and
a model that fails stays at batch 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from app.inference.shape_inference import inferred_skeleton

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the surgery changes: cached batched files are then made again
BATCH_AXIS = "batch"
TOOL = f"batchaxis-f{FORMAT}"


def _name_leading_axis(value: onnx.ValueInfoProto) -> bool:
    dims = value.type.tensor_type.shape.dim
    if len(dims) < 2:
        return False
    leading = dims[0]
    if leading.HasField("dim_param"):
        return True  # already dynamic
    if leading.dim_value != 1:
        return False
    leading.Clear()
    leading.dim_param = BATCH_AXIS
    return True


def _constant_values(graph: onnx.GraphProto, names: set[str]) -> dict[str, np.ndarray]:
    """The values of the constants (initializers, Constant nodes) among `names`: only the few shape
    inputs the surgery reads are converted, not the weights."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer if init.name in names}
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in names:
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def _inputs_of(graph: onnx.GraphProto, op_type: str, index: int) -> set[str]:
    return {node.input[index] for node in graph.node if node.op_type == op_type and len(node.input) > index}


def _free_reshapes(graph: onnx.GraphProto) -> int:
    """Reshape targets that start with a literal 1 take the batch from their input instead."""
    constants = _constant_values(graph, _inputs_of(graph, "Reshape", 1))
    rewritten = 0
    for index, node in enumerate(graph.node):
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        target = constants[node.input[1]]
        if target.ndim != 1 or target.size < 2 or int(target[0]) != 1:
            continue
        freed = target.astype(np.int64).copy()
        freed[0] = 0 if (target[1:] == -1).any() else -1
        name = f"{node.input[1]}__batch{index}"
        graph.initializer.append(numpy_helper.from_array(freed, name))
        node.input[1] = name
        rewritten += 1
    return rewritten


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape where the batch-1 graph pins it down (onnx shape inference)."""
    inferred = inferred_skeleton(model)
    shapes = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _free_resizes(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]]) -> int:
    """Resize to constant `sizes` [1, C, H, W] becomes Resize by the same `scales` [1, 1, sy, sx], which
    holds for any batch (the output sides are floor(side × scale), the same numbers)."""
    constants = _constant_values(graph, _inputs_of(graph, "Resize", 3))
    rewritten = 0
    for index, node in enumerate(graph.node):
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in constants:
            continue
        sizes = constants[node.input[3]]
        source = shapes.get(node.input[0])
        if (
            sizes.ndim != 1
            or sizes.size < 1
            or int(sizes[0]) != 1
            or source is None
            or len(source) != sizes.size
        ):
            continue
        scales = (sizes.astype(np.float64) / np.asarray(source, dtype=np.float64)).astype(np.float32)
        name = f"{node.input[3]}__scales{index}"
        graph.initializer.append(numpy_helper.from_array(scales, name))
        kept = [node.input[0], node.input[1]]  # the image and roi; `sizes` goes, `scales` comes
        del node.input[:]
        node.input.extend([*kept, name])
        rewritten += 1
    return rewritten


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    unused = [index for index, init in enumerate(graph.initializer) if init.name not in used]
    for index in reversed(unused):  # in place: the kept weights are never copied
        del graph.initializer[index]


def make_batch_dynamic(source: Path, target: Path) -> str | None:
    """Write `source` with a dynamic batch axis to `target`; None when done, else why it cannot be."""
    model = onnx.load(str(source))
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    batched_inputs = [value.name for value in inputs if _name_leading_axis(value)]
    if not batched_inputs:
        return "no input has a leading axis of 1 to turn into a batch"
    batched_outputs = [value.name for value in graph.output if _name_leading_axis(value)]
    if len(batched_outputs) != len(graph.output):
        return "an output has no leading axis of 1 (it would not hold the batch)"
    shapes = _static_shapes(model)
    del graph.value_info[:]
    reshapes = _free_reshapes(graph) + _free_resizes(graph, shapes)
    _drop_unused_initializers(graph)  # the replaced targets
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    onnx.save(model, str(partial))
    partial.replace(target)
    log.info("%s: batch axis on %s; %d node(s) freed", source.name, ", ".join(batched_inputs), reshapes)
    return None
