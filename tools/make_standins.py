"""Generate STAND-IN ONNX models for every catalog entry, so every real code path runs without weights.

    python tools/make_standins.py DIR [--ids ID ...]

Each stand-in has exactly the catalog's tensor names, shapes and dtypes (a name the catalog does not know
is generated as input_N/output_N), and computes something cheap from its inputs: every output is the
mean of the first input, broadcast to the output's shape. A recogniser's main file is a *projection*:
its crop average-pooled to 14 x 14, centred, times a fixed seeded matrix (projection_matrix), so the
same face gives the same embedding and a different face another. With --compute, each model's main
file is instead a *compute* stand-in: a convolution trunk over its image input whose outputs depend on
every input, so GPU timings and CUDA-graph probes exercise real kernels (--width/--depth scale it).

Behavioural stand-ins (written beside the main file as `<stem>.<behaviour>-standin.onnx`; the store
offers each as an entry "<id>@<behaviour>"), all with exact, documented outputs:

* Swappers: `identity` returns its target crop unchanged, `flat` returns one flat colour (FLAT_COLOUR
  in the model's output units).
* Restorers: `identity` returns its image input unchanged (codeformer's fidelity `w` is ignored).
* Masks: `regions` ignores the input's values and returns a fixed layout on a REGIONS_CELLS x
  REGIONS_CELLS grid of cells, upsampled by nearest neighbour to the catalog's output size: pixel
  (row r, col c) of an H x W output takes cell (16r // H, 16c // W) (cells_to_pixels). In output
  coordinates (x right, y down, both in [0, 1)), occluded_square() is x, y in [0.5, 0.75):
  - occluder: logits OCCLUDER_VISIBLE (+10) everywhere, OCCLUDER_OCCLUDED (-10) in that square;
  - xseg (NCHW [1,1,H,W] and NHWC [1,H,W,1]): probability 1.0 (face) everywhere, 0.0 in that square
    (visible_cells());
  - bisenet: 19 CelebAMask-HQ logits, PARSER_LOGIT (10) for the cell's class and 0 for the others,
    classes per cell as parser_label_map() (row = y, col = x): background (0) in the outer ring
    (row or col 0 or 15), skin (1) elsewhere, except hair (17) rows 1-2 cols 1-14, l_brow (2) row 4
    cols 4-5, r_brow (3) row 4 cols 10-11, l_eye (4) row 5 cols 4-5, r_eye (5) row 5 cols 10-11,
    nose (10) rows 6-9 cols 7-8, u_lip (12) row 10 cols 6-9, mouth (11) rows 11-12 cols 6-9,
    l_lip (13) row 13 cols 6-9.
  regions_output(entry) is the whole expected output.
* NSFW analysers (recognised by their first output: [N, 2] probabilities or a YOLO head): `safe`
  and `unsafe` return constants (analyser_output(entry, behaviour)): open_nsfw's [sfw, nsfw]
  probabilities NSFW_SAFE [0.99, 0.01] / NSFW_UNSAFE [0.01, 0.99]; the YOLO head [1, 4 + classes,
  anchors] all zeros when safe, and when unsafe zeros except anchor 0: box YOLO_UNSAFE_BOX (cx 320,
  cy 320, w 100, h 100) and every class score YOLO_UNSAFE_SCORE (0.9).

Every stand-in of an inswapper-family model (each behaviour, compute too) ends its graph initializers
with "emap", the 512 x 512 float32 matrix InsightFace reads as graph.initializer[-1] (source latent =
normalise(normed_embedding @ emap)): a seeded random orthogonal matrix, emap_matrix(entry). ONNX Runtime
may warn that it is unused.

A manifest (standins.json) lists each file with its behaviour and its own SHA-256; the real catalog
hashes are never touched, so the app shows these as "stand-in", never as the real model. Output is
deterministic.
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

    def array(self, values: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(values, name))
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
    """The input that has the same shape as the first output (a swapper's target crop, a restorer's
    image)."""
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


EMAP_NAME = "emap"
EMAP_SIZE = 512  # the ArcFace embedding width
EMAP_FAMILY = "inswapper"  # instyleswapper takes its emap from inswapper_128_fp16, so carries none


def emap_matrix(entry: ModelEntry) -> np.ndarray:
    """The 512 x 512 float32 "emap" an inswapper stand-in stores as its last graph initializer: a random
    orthogonal matrix seeded by the entry's id (QR of a Gaussian matrix, signs fixed by R's diagonal)."""
    rng = np.random.default_rng(zlib.crc32(f"emap:{entry.id}".encode()))
    q, r = np.linalg.qr(rng.standard_normal((EMAP_SIZE, EMAP_SIZE)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _has_emap(entry: ModelEntry) -> bool:
    return entry.kind is Kind.SWAPPER and entry.family == EMAP_FAMILY


REGIONS_BEHAVIOUR = "regions"
REGIONS_CELLS = 16  # the layouts are REGIONS_CELLS x REGIONS_CELLS cells, upsampled to the output size
REGIONS_FAMILIES = ("occluder", "xseg", "bisenet")
OCCLUDED_SQUARE = (0.5, 0.5, 0.75, 0.75)  # x0, y0, x1, y1 in output coordinates, half-open
OCCLUDER_VISIBLE = 10.0  # occluder logits: positive = visible face
OCCLUDER_OCCLUDED = -10.0
PARSER_CLASSES = 19  # CelebAMask-HQ
PARSER_LOGIT = 10.0  # the cell's class; every other class is 0
PARSER_BACKGROUND, PARSER_SKIN, PARSER_L_BROW, PARSER_R_BROW, PARSER_L_EYE, PARSER_R_EYE = 0, 1, 2, 3, 4, 5
PARSER_NOSE, PARSER_MOUTH, PARSER_U_LIP, PARSER_L_LIP, PARSER_HAIR = 10, 11, 12, 13, 17


def occluded_square() -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the square every `regions` mask marks occluded / not face, x in [x0, x1) and
    y in [y0, y1) of the output, both normalised to [0, 1)."""
    return OCCLUDED_SQUARE


def visible_cells() -> np.ndarray:
    """[REGIONS_CELLS, REGIONS_CELLS] bool (row = y, col = x): False inside occluded_square()."""
    cells = np.ones((REGIONS_CELLS, REGIONS_CELLS), dtype=bool)
    x0, y0, x1, y1 = (round(v * REGIONS_CELLS) for v in OCCLUDED_SQUARE)
    cells[y0:y1, x0:x1] = False
    return cells


def parser_label_map() -> np.ndarray:
    """[REGIONS_CELLS, REGIONS_CELLS] int64 CelebAMask-HQ class of each cell (row = y, col = x) of a
    bisenet `regions` stand-in."""
    labels = np.full((REGIONS_CELLS, REGIONS_CELLS), PARSER_SKIN, dtype=np.int64)
    labels[[0, -1], :] = PARSER_BACKGROUND
    labels[:, [0, -1]] = PARSER_BACKGROUND
    labels[1:3, 1:15] = PARSER_HAIR
    labels[4, 4:6], labels[4, 10:12] = PARSER_L_BROW, PARSER_R_BROW
    labels[5, 4:6], labels[5, 10:12] = PARSER_L_EYE, PARSER_R_EYE
    labels[6:10, 7:9] = PARSER_NOSE
    labels[10, 6:10] = PARSER_U_LIP
    labels[11:13, 6:10] = PARSER_MOUTH
    labels[13, 6:10] = PARSER_L_LIP
    return labels


def cells_to_pixels(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upsample the last two (cell) axes of `cells` to height x width as the stand-in's nearest Resize
    does: pixel (r, c) takes cell (REGIONS_CELLS * r // height, REGIONS_CELLS * c // width)."""
    rows = np.arange(height) * REGIONS_CELLS // height
    cols = np.arange(width) * REGIONS_CELLS // width
    return cells[..., rows[:, None], cols[None, :]]


def _spatial_axes(entry: ModelEntry) -> tuple[int, int, int]:
    """(channel, height, width) axes of a mask's first output."""
    return (3, 1, 2) if entry.layout == "NHWC" else (1, 2, 3)


def _regions_cells(entry: ModelEntry) -> np.ndarray:
    """The `regions` layout at cell resolution, in the first output's layout (spatial axes 16 x 16)."""
    spec = entry.outputs[0]
    if entry.family == "bisenet":
        planes = np.where(np.arange(PARSER_CLASSES)[:, None, None] == parser_label_map(), PARSER_LOGIT, 0.0)
    elif entry.family == "occluder":
        planes = np.where(visible_cells(), OCCLUDER_VISIBLE, OCCLUDER_OCCLUDED)[None]
    elif entry.family == "xseg":
        planes = np.where(visible_cells(), 1.0, 0.0)[None]
    else:
        raise ValueError(f"{entry.id}: no regions layout for mask family {entry.family!r}")
    channel_axis = _spatial_axes(entry)[0]
    assert len(spec.shape) == 4 and spec.shape[channel_axis] == planes.shape[0], f"{entry.id}: {spec.shape}"
    cells = planes[None].astype(np.float32)  # [1, C, cells, cells]
    return cells.transpose(0, 2, 3, 1) if entry.layout == "NHWC" else cells


def regions_output(entry: ModelEntry) -> np.ndarray:
    """Exactly what the `regions` stand-in of a mask entry returns, in its (static) output shape."""
    spec = entry.outputs[0]
    _, h_axis, w_axis = _spatial_axes(entry)
    height, width = int(spec.shape[h_axis]), int(spec.shape[w_axis])
    cells = _regions_cells(entry)
    if entry.layout == "NHWC":
        full = cells_to_pixels(cells.transpose(0, 3, 1, 2), height, width).transpose(0, 2, 3, 1)
    else:
        full = cells_to_pixels(cells, height, width)
    return np.ascontiguousarray(full, dtype=np.dtype(spec.dtype))


def _regions_out(
    graph: _Graph,
    entry: ModelEntry,
    spec: TensorSpec,
    out: str,
    inputs: list[tuple[str, TensorSpec]],
    mean: str,
) -> None:
    cells = graph.array(_regions_cells(entry), "cells")
    full = graph.op(
        "Resize",
        [cells, "", "", _shape_of(graph, spec, inputs, mean)],
        "regions",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    graph.op("Cast", [full], "cast", output=out, to=ONNX_TYPES[spec.dtype])


ANALYSER_BEHAVIOURS = ("safe", "unsafe")
NSFW_SAFE = (0.99, 0.01)  # [sfw, nsfw] probabilities of a [1, 2] classifier
NSFW_UNSAFE = (0.01, 0.99)
YOLO_UNSAFE_BOX = (320.0, 320.0, 100.0, 100.0)  # cx, cy, w, h of anchor 0 in input pixels
YOLO_UNSAFE_SCORE = 0.9  # every class score of anchor 0; all other anchors are zeros


def _analyser_head(entry: ModelEntry) -> str | None:
    """ "classifier" ([N, 2] probabilities), "yolo" ([N, 4 + classes, anchors]) or None, from the first
    output's shape, so the behaviours follow the tensor layout whatever the family is called."""
    spec = entry.outputs[0]
    if entry.kind is not Kind.ANALYSER or not spec.is_static:
        return None
    if len(spec.shape) == 2 and spec.shape[1] == 2:
        return "classifier"
    if len(spec.shape) == 3 and int(spec.shape[1]) > 4:
        return "yolo"
    return None


def analyser_output(entry: ModelEntry, behaviour: str) -> np.ndarray:
    """Exactly what the `safe` / `unsafe` stand-in of an NSFW analyser returns: probabilities for a
    [1, 2] classifier, or a YOLO head [1, 4 + classes, anchors] (see the module docstring)."""
    spec = entry.outputs[0]
    shape = tuple(int(d) for d in spec.shape)
    unsafe = behaviour == "unsafe"
    head_kind = _analyser_head(entry)
    if head_kind == "classifier":
        values = np.array([NSFW_UNSAFE if unsafe else NSFW_SAFE] * shape[0], dtype=np.float64)
        return values.astype(np.dtype(spec.dtype))
    if head_kind == "yolo":
        head = np.zeros(shape, dtype=np.dtype(spec.dtype))
        if unsafe:
            head[:, :4, 0] = YOLO_UNSAFE_BOX
            head[:, 4:, 0] = YOLO_UNSAFE_SCORE
        return head
    raise ValueError(f"{entry.id}: no {behaviour} constant for an analyser output shaped {spec.shape}")


def _analyser_out(graph: _Graph, entry: ModelEntry, behaviour: str, spec: TensorSpec, out: str) -> None:
    """A constant output built from a small piece: a YOLO head is its anchor-0 column, zero-padded."""
    full = analyser_output(entry, behaviour)
    piece = full[..., :1] if full.ndim == 3 else full
    value = graph.array(np.ascontiguousarray(piece, dtype=np.float32), "constant")
    if piece.shape != full.shape:
        pads = [0] * full.ndim + [f - p for f, p in zip(full.shape, piece.shape, strict=True)]
        value = graph.op("Pad", [value, graph.const(pads, TensorProto.INT64, "pads")], "padded")
    graph.op("Cast", [value], "cast", output=out, to=ONNX_TYPES[spec.dtype])


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
        elif index == 0 and behaviour == REGIONS_BEHAVIOUR:
            _regions_out(graph, entry, spec, out_name, inputs, mean)
        elif index == 0 and behaviour in ANALYSER_BEHAVIOURS:
            _analyser_out(graph, entry, behaviour, spec, out_name)
        elif index == 0 and behaviour == "flat":
            colour = _flat_colour(entry)
            shaped = graph.const(colour, TensorProto.FLOAT, "colour", shape=[1, len(colour), 1, 1])
            full = graph.op("Expand", [shaped, _shape_of(graph, spec, inputs, mean)], "flat")
            graph.op("Cast", [full], "cast", output=out_name, to=ONNX_TYPES[spec.dtype])
        else:
            _broadcast(graph, mean, spec, out_name, inputs)

    if _has_emap(entry):  # last, as InsightFace reads graph.initializer[-1]
        graph.initializers.append(numpy_helper.from_array(emap_matrix(entry), EMAP_NAME))

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
    extra: list[str] = []
    if entry.kind is Kind.SWAPPER and _target_input(entry, _named_inputs(entry)):
        extra = ["identity", "flat"]
    elif entry.kind is Kind.RESTORER and _target_input(entry, _named_inputs(entry)):
        extra = ["identity"]
    elif entry.kind is Kind.MASK and entry.family in REGIONS_FAMILIES:
        extra = [REGIONS_BEHAVIOUR]
    elif _analyser_head(entry) is not None:  # the NSFW analysers
        extra = list(ANALYSER_BEHAVIOURS)
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
    return write_manifest(
        directory,
        files,
        "These ONNX files are STAND-INS generated by tools/make_standins.py for tests and benchmarks.\n"
        "They have the real models' tensor specs but none of their weights: they do not swap faces.\n",
    )


def write_manifest(directory: Path, files: dict[str, StandinFile], readme: str) -> StandinManifest:
    """The stand-in manifest the store reads (so these files show as stand-ins), and a README."""
    manifest = StandinManifest(files=files)
    (directory / STANDIN_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (directory / "README.txt").write_text(readme, encoding="utf-8")
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
