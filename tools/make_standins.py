"""Generate STAND-IN ONNX models for every catalog entry, so every real code path runs without weights.

    python tools/make_standins.py DIR [--ids ID ...]

Each stand-in has exactly the catalog's tensor names, shapes and dtypes (a name the catalog does not know
is generated as input_N/output_N), and computes something cheap from its inputs: every output is the
mean of the first input, broadcast to the output's shape. Swappers also get two behavioural stand-ins:
`identity` returns its target crop unchanged, `flat` returns one flat colour. A recogniser's main file is
a *projection*: its crop average-pooled to 14 x 14, centred, times a fixed seeded matrix
(projection_matrix), so the same face gives the same embedding and a different face another. With
--compute, each model's
main file is instead a *compute* stand-in: a convolution trunk over its image input whose outputs depend
on every input, so GPU timings and CUDA-graph probes exercise real kernels (--width/--depth scale it).
A manifest (standins.json) lists each file with its own SHA-256; the real catalog hashes are never
touched, so the app shows these as "stand-in", never as the real model. Output is deterministic.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.models.catalog import Catalog, Kind, ModelEntry, TensorSpec, load_catalog  # noqa: E402
from app.models.store import STANDIN_MANIFEST, StandinFile, StandinManifest  # noqa: E402

OPSET = 17
IR_VERSION = 8  # readable by every ONNX Runtime we support (1.22+)
FLAT_COLOUR = (64.0, 128.0, 192.0)  # in 0..255 pixel units, before the model's normalisation

ONNX_TYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}


def tensor_name(spec: TensorSpec, index: int, prefix: str) -> str:
    return spec.name if spec.name is not None else f"{prefix}_{index}"


class _Graph:
    """A tiny graph builder: nodes, constants and unique intermediate names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"standin_{hint}_{self._count}"

    def op(
        self, op_type: str, inputs: list[str], hint: str, output: str | None = None, **attrs: object
    ) -> str:
        out = output or self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(
        self, values: list[float] | list[int], dtype: int, hint: str, shape: list[int] | None = None
    ) -> str:
        name = self.name(hint)
        self.initializers.append(helper.make_tensor(name, dtype, shape or [len(values)], values))
        return name


def _data_dependent(graph: _Graph, mean: str, value: int) -> str:
    """The int64 tensor [value], computed from input data so shape inference cannot fold it: the
    output keeps the catalog's symbolic axis name instead of a constant."""
    one = graph.op("Cast", [graph.op("Equal", [mean, mean], "same")], "one", to=TensorProto.INT64)
    one = graph.op("Reshape", [one, graph.const([1], TensorProto.INT64, "vec")], "one_vec")
    return graph.op("Mul", [one, graph.const([value], TensorProto.INT64, "k")], "dd")


def _input_axis(dim: str, inputs: list[tuple[str, TensorSpec]]) -> tuple[str, int] | None:
    return next(((name, axis) for name, s in inputs for axis, d in enumerate(s.shape) if d == dim), None)


_OPS = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.Div: "Div", ast.FloorDiv: "Div"}


def _dim_expression(
    graph: _Graph, node: ast.expr, inputs: list[tuple[str, TensorSpec]], mean: str
) -> str | None:
    """An int64 [1] tensor computing a dim written as arithmetic over input axis names (for example
    "height*width*21/512", the prior count of a RetinaFace input); None when it names no input axis."""
    if isinstance(node, ast.Name):
        source = _input_axis(node.id, inputs)
        if source is None:
            return None
        return graph.op("Shape", [source[0]], "dim", start=source[1], end=source[1] + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return _data_dependent(graph, mean, node.value)  # not folded, so the output keeps its dim name
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _dim_expression(graph, node.left, inputs, mean)
        right = _dim_expression(graph, node.right, inputs, mean)
        if left is None or right is None:
            return None
        return graph.op(_OPS[type(node.op)], [left, right], "expr")
    return None


def _shape_of(graph: _Graph, spec: TensorSpec, inputs: list[tuple[str, TensorSpec]], mean: str) -> str:
    """An int64 shape tensor for `spec`: static dims as constants; a named dim taken from the input
    axis of that name (a batch of N in gives N out); a dim written as arithmetic over input axes
    ("height*4") computed from them; any other dynamic dim is 1 at run time."""
    pieces = []
    for dim in spec.shape:
        if isinstance(dim, int):
            pieces.append(graph.const([dim], TensorProto.INT64, "dim"))
            continue
        try:
            expression = _dim_expression(graph, ast.parse(dim, mode="eval").body, inputs, mean)
        except SyntaxError:
            expression = None
        pieces.append(expression if expression is not None else _data_dependent(graph, mean, 1))
    return graph.op("Concat", pieces, "shape", axis=0)


def _mean_of_first_input(graph: _Graph, inputs: list[tuple[str, TensorSpec]]) -> str:
    first = graph.op("Cast", [inputs[0][0]], "as_float", to=TensorProto.FLOAT)
    return graph.op("ReduceMean", [first], "mean", keepdims=0)


def _broadcast(
    graph: _Graph, scalar: str, spec: TensorSpec, out: str, inputs: list[tuple[str, TensorSpec]]
) -> None:
    shape = _shape_of(graph, spec, inputs, scalar)
    expanded = graph.op("Expand", [scalar, shape], "expanded")
    graph.op("Cast", [expanded], "cast", output=out, to=ONNX_TYPES[spec.dtype])


def _target_input(entry: ModelEntry, inputs: list[tuple[str, TensorSpec]]) -> str | None:
    """The swapper input that has the same shape as its first output (the target crop)."""
    wanted = entry.outputs[0].shape
    return next((name for name, spec in inputs if spec.shape == wanted), None)


@dataclass(frozen=True)
class ComputeSize:
    """The trunk of a compute stand-in: `depth` 3x3 convolutions of `width` channels."""

    width: int = 16
    depth: int = 2


def _weights(graph: _Graph, rng: np.random.Generator, shape: list[int], hint: str) -> str:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    values = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(1.0 / max(fan_in, 1)))
    name = graph.name(hint)
    graph.initializers.append(numpy_helper.from_array(values, name))
    return name


def _image_input(entry: ModelEntry, inputs: list[tuple[str, TensorSpec]]) -> tuple[str, TensorSpec] | None:
    if entry.layout == "NHWC":
        return None
    return next(
        (
            (n, s)
            for n, s in inputs
            if len(s.shape) == 4 and s.dtype == "float32" and isinstance(s.shape[1], int)
        ),
        None,
    )


def _compute_outputs(
    graph: _Graph,
    entry: ModelEntry,
    inputs: list[tuple[str, TensorSpec]],
    outputs: list[tuple[str, TensorSpec]],
    size: ComputeSize,
) -> set[str]:
    """Conv trunk over the image input; other float inputs are projected and added to its features
    (as a swapper injects its identity). Image-shaped outputs come from a 1x1 conv head, vector outputs
    from pooling and a dense layer. Returns the outputs it made; the rest keep the cheap path."""
    image = _image_input(entry, inputs)
    if image is None:
        return set()
    rng = np.random.default_rng(zlib.crc32(entry.id.encode()))
    name, spec = image
    channels = int(spec.shape[1])  # type: ignore[arg-type]
    features = name
    for layer in range(size.depth):
        w = _weights(graph, rng, [size.width, channels if layer == 0 else size.width, 3, 3], "conv_w")
        conv = graph.op("Conv", [features, w], "conv", pads=[1, 1, 1, 1])
        features = graph.op("Relu", [conv], "relu")
    for other, other_spec in inputs:
        if other == name or other_spec.dtype != "float32" or len(other_spec.shape) != 2:
            continue
        if not isinstance(other_spec.shape[1], int):
            continue
        w = _weights(graph, rng, [int(other_spec.shape[1]), size.width], "mix_w")
        mixed = graph.op("MatMul", [other, w], "mix")
        shaped = graph.op(
            "Reshape", [mixed, graph.const([1, size.width, 1, 1], TensorProto.INT64, "s")], "m4"
        )
        features = graph.op("Add", [features, shaped], "inject")
    made = set()
    for out_name, out_spec in outputs:
        dims = out_spec.shape
        if len(dims) == 4 and dims[2:] == spec.shape[2:] and isinstance(dims[1], int):
            w = _weights(graph, rng, [int(dims[1]), size.width, 1, 1], "head_w")
            head = graph.op("Tanh", [graph.op("Conv", [features, w], "head")], "tanh")
            graph.op("Cast", [head], "cast", output=out_name, to=ONNX_TYPES[out_spec.dtype])
            made.add(out_name)
        elif len(dims) == 2 and all(isinstance(d, int) for d in dims):
            pooled = graph.op("Flatten", [graph.op("GlobalAveragePool", [features], "gap")], "flat")
            w = _weights(graph, rng, [size.width, int(dims[1])], "fc_w")  # type: ignore[arg-type]
            dense = graph.op("MatMul", [pooled, w], "fc")
            graph.op("Cast", [dense], "cast", output=out_name, to=ONNX_TYPES[out_spec.dtype])
            made.add(out_name)
    return made


PROJECTION_POOL = 8  # 112 → 14 x 14 cells per channel


def projection_matrix(entry: ModelEntry) -> np.ndarray:
    """The fixed [cells, D] matrix of a recogniser's projection stand-in (seeded by its id)."""
    channels, side = int(entry.inputs[0].shape[1]), int(entry.inputs[0].shape[2])  # type: ignore[arg-type]
    cells = channels * (side // PROJECTION_POOL) ** 2
    width = int(entry.outputs[0].shape[-1])  # type: ignore[arg-type]
    rng = np.random.default_rng(zlib.crc32(f"projection:{entry.id}".encode()))
    return (rng.standard_normal((cells, width)) / np.sqrt(cells)).astype(np.float32)


def _projection_output(graph: _Graph, entry: ModelEntry, image: str, out: str, dtype: str) -> None:
    pool = PROJECTION_POOL
    pooled = graph.op("AveragePool", [image], "pool", kernel_shape=[pool, pool], strides=[pool, pool])
    flat = graph.op("Flatten", [pooled], "flat", axis=1)
    centred = graph.op("Sub", [flat, graph.op("ReduceMean", [flat], "avg", axes=[1], keepdims=1)], "centred")
    matrix = graph.name("projection")
    graph.initializers.append(numpy_helper.from_array(projection_matrix(entry), matrix))
    graph.op(
        "Cast", [graph.op("MatMul", [centred, matrix], "embed")], "cast", output=out, to=ONNX_TYPES[dtype]
    )


def build_model(
    entry: ModelEntry, behaviour: str = "spec", size: ComputeSize | None = None
) -> onnx.ModelProto:
    graph = _Graph()
    inputs = [(tensor_name(s, i, "input"), s) for i, s in enumerate(entry.inputs)]
    outputs = [(tensor_name(s, i, "output"), s) for i, s in enumerate(entry.outputs)]
    outputs += [
        (name, TensorSpec(name=name, shape=(1,), dtype="float32")) for name in entry.auxiliary_outputs
    ]
    mean = _mean_of_first_input(graph, inputs)
    computed = (
        _compute_outputs(graph, entry, inputs, outputs, size or ComputeSize())
        if behaviour == "compute"
        else set()
    )
    for index, (out_name, spec) in enumerate(outputs):
        if out_name in computed:
            continue
        if index == 0 and behaviour == "identity":
            target = _target_input(entry, inputs)
            assert target is not None, f"{entry.id}: no input shaped like its output"
            graph.op("Cast", [target], "identity", output=out_name, to=ONNX_TYPES[spec.dtype])
        elif index == 0 and behaviour == "projection":
            _projection_output(graph, entry, inputs[0][0], out_name, spec.dtype)
        elif index == 0 and behaviour == "flat":
            colour = _flat_colour(entry)
            shaped = graph.const(colour, TensorProto.FLOAT, "colour", shape=[1, len(colour), 1, 1])
            full = graph.op("Expand", [shaped, _shape_of(graph, spec, inputs, mean)], "flat")
            graph.op("Cast", [full], "cast", output=out_name, to=ONNX_TYPES[spec.dtype])
        else:
            _broadcast(graph, mean, spec, out_name, inputs)

    def value_info(name: str, spec: TensorSpec) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, ONNX_TYPES[spec.dtype], list(spec.shape))

    onnx_graph = helper.make_graph(
        graph.nodes,
        f"standin_{entry.id}_{behaviour}",
        [value_info(n, s) for n, s in inputs],
        [value_info(n, s) for n, s in outputs],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        onnx_graph,
        producer_name="doppel-make-standins",
        doc_string=f"STAND-IN for {entry.id} ({behaviour}); not a real model",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _flat_colour(entry: ModelEntry) -> list[float]:
    """FLAT_COLOUR in the model's own output units (its normalisation applied)."""
    norm = entry.normalisation
    if norm is None or len(norm.mean) != 3:
        return [c / 255.0 for c in FLAT_COLOUR]
    return [(c - m) / s for c, m, s in zip(FLAT_COLOUR, norm.mean, norm.std, strict=True)]


def behaviours_for(entry: ModelEntry, compute: bool = False) -> list[str]:
    if entry.kind is Kind.RECOGNISER and _image_input(entry, _named_inputs(entry)) and not compute:
        return ["projection"]
    extra = []
    if entry.kind is Kind.SWAPPER and _target_input(entry, _named_inputs(entry)):
        extra = ["identity", "flat"]
    return ["compute" if compute else "spec", *extra]


def _named_inputs(entry: ModelEntry) -> list[tuple[str, TensorSpec]]:
    return [(tensor_name(s, i, "input"), s) for i, s in enumerate(entry.inputs)]


MAIN_BEHAVIOURS = ("spec", "compute", "projection")  # written under the catalog's own file name


def standin_file_name(entry: ModelEntry, behaviour: str) -> str:
    if behaviour in MAIN_BEHAVIOURS:
        return entry.file  # the catalog's own file name, so the store finds it like the real model
    stem = entry.file.removesuffix(".onnx")
    return f"{stem}.{behaviour}-standin.onnx"


def make_standins(
    directory: Path, catalog: Catalog, ids: list[str] | None = None, compute: ComputeSize | None = None
) -> StandinManifest:
    """Write stand-ins for `ids` (default: all); `compute` makes the main files compute stand-ins."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = [catalog.get(i) for i in ids] if ids else list(catalog)
    files: dict[str, StandinFile] = {}
    for entry in entries:
        for behaviour in behaviours_for(entry, compute is not None):
            data = build_model(entry, behaviour, compute).SerializeToString(deterministic=True)
            name = standin_file_name(entry, behaviour)
            (directory / name).write_bytes(data)
            files[name] = StandinFile(
                model_id=entry.id,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                behaviour=behaviour,
            )
    manifest = StandinManifest(files=files)
    (directory / STANDIN_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (directory / "README.txt").write_text(
        "These ONNX files are STAND-INS generated by tools/make_standins.py for tests and benchmarks.\n"
        "They have the real models' tensor specs but none of their weights: they do not swap faces.\n",
        encoding="utf-8",
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ids", nargs="*", help="only these catalog ids (default: all)")
    parser.add_argument("--compute", action="store_true", help="convolution-trunk stand-ins (GPU timing)")
    parser.add_argument("--width", type=int, default=ComputeSize.width, help="compute trunk channels")
    parser.add_argument("--depth", type=int, default=ComputeSize.depth, help="compute trunk 3x3 convolutions")
    args = parser.parse_args(argv)
    compute = ComputeSize(args.width, args.depth) if args.compute else None
    manifest = make_standins(args.directory, load_catalog(), args.ids, compute)
    sys.stdout.write(f"{len(manifest.files)} stand-in files written to {args.directory}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
