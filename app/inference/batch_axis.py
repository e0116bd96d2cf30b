"""Give a batch-1 model file a dynamic batch axis, by graph surgery, so several faces go in one call.

The published face models are exported at batch 1: their inputs and outputs say 1, and a few nodes bake
the 1 in (Reshape targets such as [1, 1024, 1, 1]). The surgery names the leading axis of every input
and output of rank 2 or more `batch`, drops the intermediate shape annotations (they would pin it to 1
again), and rewrites constant Reshape targets whose first entry is 1 to take the batch from their input
(-1 when the target has no other -1, else 0, "copy this axis"). Anything else that bakes the batch in
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


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def _free_reshapes(graph: onnx.GraphProto) -> int:
    """Reshape targets that start with a literal 1 take the batch from their input instead."""
    constants = _constant_values(graph)
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
    del graph.value_info[:]
    reshapes = _free_reshapes(graph)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    onnx.save(model, str(partial))
    partial.replace(target)
    log.info(
        "%s: batch axis on %s; %d reshape target(s) freed", source.name, ", ".join(batched_inputs), reshapes
    )
    return None
