"""Generate STAND-IN ONNX models for every catalog entry, so every real code path runs without weights.

    python tools/make_standins.py DIR [--ids ID ...]

Each stand-in has exactly the catalog's tensor names, shapes and dtypes (a name the catalog does not know
is generated as input_N/output_N), and computes something cheap from its inputs: every output is the
mean of the first input, broadcast to the output's shape. Swappers also get two behavioural stand-ins:
`identity` returns its target crop unchanged, `flat` returns one flat colour. A manifest
(standins.json) lists each file with its own SHA-256; the real catalog hashes are never touched, so the
app shows these as "stand-in", never as the real model. Output is deterministic (same bytes every run).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

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


def _shape_of(graph: _Graph, spec: TensorSpec, inputs: list[tuple[str, TensorSpec]], mean: str) -> str:
    """An int64 shape tensor for `spec`: static dims as constants; a named dim taken from the input
    axis of that name (a batch of N in gives N out); "height*4"-style dims scaled from that axis; any
    other dynamic dim is 1 at run time."""
    pieces = []
    for dim in spec.shape:
        if isinstance(dim, int):
            pieces.append(graph.const([dim], TensorProto.INT64, "dim"))
            continue
        source = _input_axis(dim, inputs)
        if source is not None:
            pieces.append(graph.op("Shape", [source[0]], "dim", start=source[1], end=source[1] + 1))
            continue
        scaled = re.fullmatch(r"(\w+)\s*([*/])\s*(\d+)", dim)
        source = _input_axis(scaled.group(1), inputs) if scaled else None
        if scaled and source is not None:
            axis = graph.op("Shape", [source[0]], "dim", start=source[1], end=source[1] + 1)
            factor = _data_dependent(graph, mean, int(scaled.group(3)))
            pieces.append(graph.op("Mul" if scaled.group(2) == "*" else "Div", [axis, factor], "scaled"))
        else:
            pieces.append(_data_dependent(graph, mean, 1))
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


def build_model(entry: ModelEntry, behaviour: str = "spec") -> onnx.ModelProto:
    graph = _Graph()
    inputs = [(tensor_name(s, i, "input"), s) for i, s in enumerate(entry.inputs)]
    outputs = [(tensor_name(s, i, "output"), s) for i, s in enumerate(entry.outputs)]
    outputs += [
        (name, TensorSpec(name=name, shape=(1,), dtype="float32")) for name in entry.auxiliary_outputs
    ]
    mean = _mean_of_first_input(graph, inputs)
    for index, (out_name, spec) in enumerate(outputs):
        if index == 0 and behaviour == "identity":
            target = _target_input(entry, inputs)
            assert target is not None, f"{entry.id}: no input shaped like its output"
            graph.op("Cast", [target], "identity", output=out_name, to=ONNX_TYPES[spec.dtype])
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


def behaviours_for(entry: ModelEntry) -> list[str]:
    extra = []
    if entry.kind is Kind.SWAPPER and _target_input(
        entry, [(tensor_name(s, i, "input"), s) for i, s in enumerate(entry.inputs)]
    ):
        extra = ["identity", "flat"]
    return ["spec", *extra]


def standin_file_name(entry: ModelEntry, behaviour: str) -> str:
    if behaviour == "spec":
        return entry.file  # the catalog's own file name, so the store finds it like the real model
    stem = entry.file.removesuffix(".onnx")
    return f"{stem}.{behaviour}-standin.onnx"


def make_standins(directory: Path, catalog: Catalog, ids: list[str] | None = None) -> StandinManifest:
    directory.mkdir(parents=True, exist_ok=True)
    entries = [catalog.get(i) for i in ids] if ids else list(catalog)
    files: dict[str, StandinFile] = {}
    for entry in entries:
        for behaviour in behaviours_for(entry):
            data = build_model(entry, behaviour).SerializeToString(deterministic=True)
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
    args = parser.parse_args(argv)
    manifest = make_standins(args.directory, load_catalog(), args.ids)
    sys.stdout.write(f"{len(manifest.files)} stand-in files written to {args.directory}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
