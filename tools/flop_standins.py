"""FLOP-matched STAND-INS for the benchmark: the real models' tensor specs, GFLOPs and parameter counts.

    python tools/flop_standins.py DIR [--ids ID ...]

`bench` must measure the program users run, so its models must cost what the real ones cost. Each
stand-in here is a convolution trunk over the model's image input sized so that its GFLOPs per call
(2 × the multiply-accumulates of its Conv and MatMul nodes, the usual count) and its parameter count
are within ±15 % of the published model's (TARGETS), with the catalog's exact input and output names,
shapes and dtypes, and (for inswapper) the 512 × 512 "emap" as the last initializer. The weights are
seeded random numbers: the files are generated on the machine that runs the benchmark, never
committed, and every report calls them stand-ins.

The trunk has two levels of 3 × 3 convolutions (a patchifying strided convolution before each): a
high-resolution level and a low-resolution one, at resolutions chosen per model like the real
network's (GFPGAN spends FLOPs at 256 × 256 and parameters at 32 × 32; ArcFace at 14 and 7). With
the depths fixed, two widths decide FLOPs and parameters; `plan_for` searches them.

So that the pipeline downstream does real work on every frame, outputs are plausible, not random:
- image outputs (swapper, restorer) are the input image plus 0.02 × tanh of the trunk's head;
- the YOLOv8-face detector reports one face, the box FACE_BOX (in the 640 canvas; where a 16:9
  frame's centre face lands) with five keypoints, plus 1e-4 × the trunk's pooled head;
- 2DFAN4 reports FACE_68, 68 iBUG points of that face in its heatmap space, plus 1e-4 × the head, and
  heatmaps from the trunk; ArcFace's embedding is a dense layer over the flattened last features.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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

from app.models.catalog import Catalog, ModelEntry, load_catalog  # noqa: E402
from app.models.store import StandinFile, StandinManifest  # noqa: E402
from tools.make_standins import (  # noqa: E402
    EMAP_NAME,
    IR_VERSION,
    ONNX_TYPES,
    OPSET,
    _Graph,
    _has_emap,
    emap_matrix,
    tensor_name,
    write_manifest,
)

BEHAVIOUR = "flops"  # the stand-in manifest's word for these files
TOLERANCE = 0.15
WIDTH_STEP = 16
MAX_WIDTH = 2048


@dataclass(frozen=True)
class FlopTarget:
    """A real model's cost per call, and the shape of its stand-in's trunk."""

    gflops: float  # 2 × multiply-accumulates of one batch-1 call
    params_m: float  # millions of parameters
    hi: tuple[int, int]  # (input side ÷ resolution, 3 × 3 convolutions) of the high-resolution level
    lo: tuple[int, int]  # the same for the low-resolution level


# The published figures (issue 15's table); levels follow where each real network does its work.
TARGETS: dict[str, FlopTarget] = {
    "yolov8n_face": FlopTarget(8.7, 2.4, hi=(8, 2), lo=(16, 6)),  # 640 → 80, 40
    "2dfan4": FlopTarget(50.0, 24.0, hi=(4, 4), lo=(8, 8)),  # 256 → 64, 32
    "arcface_w600k_r50": FlopTarget(12.6, 44.0, hi=(8, 8), lo=(16, 4)),  # 112 → 14, 7
    "inswapper_128": FlopTarget(349.0, 138.0, hi=(2, 2), lo=(4, 12)),  # 128 → 64, 32
    "gfpgan_1.4": FlopTarget(396.0, 84.0, hi=(2, 4), lo=(16, 8)),  # 512 → 256, 32
}

# One face as the detector sees a 16:9 frame letterboxed into 640 × 640 at the top left: centred in
# the frame, half the frame's height tall (the bench clip puts its face there).
CANVAS = 640
FACE_BOX = (320.0, 180.0, 150.0, 180.0)  # cx, cy, w, h in canvas pixels
FACE_SCORE = 0.92
# Five keypoints as fractions of the box (InsightFace's arcface_112_v2 template over 112).
FACE_FIVE = ((0.342, 0.462), (0.657, 0.460), (0.5, 0.640), (0.371, 0.825), (0.632, 0.823))


def face_68() -> np.ndarray:
    """68 iBUG points [68, 2] as fractions of the face box, consistent with FACE_FIVE: the landmark
    code's five points (eye means, nose tip 30, mouth corners 48 and 54) land on FACE_FIVE."""
    points: list[tuple[float, float]] = []
    for t in np.linspace(0.0, 1.0, 17):  # jaw 0-16: a U from temple to temple through the chin
        angle = np.pi * (1.0 - t)
        points.append((0.5 + 0.46 * np.cos(angle), 0.42 + 0.56 * np.sin(angle)))
    for start in (0.20, 0.56):  # brows 17-21, 22-26
        points += [(start + 0.06 * i, 0.36 - 0.02 * np.sin(np.pi * i / 4)) for i in range(5)]
    points += [(0.5, 0.46 + 0.06 * i) for i in range(4)]  # nose bridge 27-30, 30 is the tip
    points += [(0.42 + 0.04 * i, 0.68) for i in range(5)]  # nostrils 31-35
    for cx, cy in FACE_FIVE[:2]:  # eyes 36-41, 42-47: six points whose mean is the eye centre
        points += [(cx + 0.07 * np.cos(a), cy + 0.025 * np.sin(a)) for a in np.linspace(np.pi, -np.pi, 7)[:6]]
    (lx, ly), (rx, ry) = FACE_FIVE[3], FACE_FIVE[4]
    cx, cy, half = (lx + rx) / 2, (ly + ry) / 2, (rx - lx) / 2
    outer = [(cx - half * np.cos(a), cy - 0.06 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 13)[:12]]
    inner = [(cx - 0.7 * half * np.cos(a), cy - 0.03 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 9)[:8]]
    points += outer + inner  # outer lip 48-59 (48 and 54 the corners), inner lip 60-67
    return np.array(points, dtype=np.float64)


def _layers(target: FlopTarget, side: int, channels: int, widths: tuple[int, int], heads: int) -> list[Conv]:
    (hi_div, hi_depth), (lo_div, lo_depth) = target.hi, target.lo
    hi_res, lo_res = side // hi_div, side // lo_div
    w_hi, w_lo = widths
    layers = [Conv(channels, w_hi, hi_div, hi_res, patchify=True)]
    layers += [Conv(w_hi, w_hi, 3, hi_res) for _ in range(hi_depth)]
    layers += [Conv(w_hi, w_lo, lo_div // hi_div, lo_res, patchify=True)]
    layers += [Conv(w_lo, w_lo, 3, lo_res) for _ in range(lo_depth)]
    layers += [Conv(w_lo, heads, 1, lo_res)]
    return layers


@dataclass(frozen=True)
class Conv:
    """A bias-free convolution: 3 × 3 padded (stride 1), or patchifying (stride = kernel)."""

    c_in: int
    c_out: int
    kernel: int
    resolution: int  # output side
    patchify: bool = False

    @property
    def params(self) -> int:
        return self.c_in * self.c_out * self.kernel**2

    @property
    def macs(self) -> int:
        return self.params * self.resolution**2


@dataclass(frozen=True)
class Plan:
    """A stand-in's layers and its dense parts, with their cost."""

    entry_id: str
    widths: tuple[int, int]
    layers: tuple[Conv, ...]
    dense: tuple[tuple[int, int], ...]  # (rows, columns) of each MatMul weight, one row per call

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers) + sum(r * c for r, c in self.dense)

    @property
    def gflops(self) -> float:
        macs = sum(layer.macs for layer in self.layers) + sum(r * c for r, c in self.dense)
        return 2.0 * macs / 1e9


def _head_channels(entry: ModelEntry) -> int:
    if entry.id == "yolov8n_face":
        return int(entry.outputs[0].shape[1])  # type: ignore[arg-type]
    if entry.id == "2dfan4":
        return int(entry.outputs[1].shape[1])  # type: ignore[arg-type]  # the heatmaps
    if entry.id.startswith("arcface"):
        return 0  # the embedding is a dense layer over the flattened features
    return int(entry.outputs[0].shape[1])  # type: ignore[arg-type]  # an image's channels


def _dense(entry: ModelEntry, w_lo: int, lo_res: int) -> tuple[tuple[int, int], ...]:
    if entry.id.startswith("arcface"):
        return ((w_lo * lo_res * lo_res, int(entry.outputs[0].shape[1])),)  # type: ignore[arg-type]
    source = [s for s in entry.inputs if len(s.shape) == 2]
    return tuple((int(s.shape[1]), w_lo) for s in source)  # type: ignore[arg-type]  # identity injected


def _plan(entry: ModelEntry, target: FlopTarget, widths: tuple[int, int]) -> Plan:
    image = entry.inputs[0]
    channels, side = int(image.shape[1]), int(image.shape[2])  # type: ignore[arg-type]
    heads = _head_channels(entry)
    layers = _layers(target, side, channels, widths, heads)
    if heads == 0:
        layers = layers[:-1]
    return Plan(entry.id, widths, tuple(layers), _dense(entry, widths[1], side // target.lo[0]))


def plan_for(entry: ModelEntry, scale: float = 1.0) -> Plan:
    """The two widths whose plan is closest to the target (the larger relative error of GFLOPs and
    parameters, smallest). `scale` < 1 aims at that fraction of the real cost, for tests: the same
    graph, tiny, with no promise on the tolerance."""
    target = TARGETS[entry.id]
    gflops, params = target.gflops * scale, target.params_m * 1e6 * scale

    def error(plan: Plan) -> float:
        return max(abs(plan.gflops / gflops - 1), abs(plan.params / params - 1))

    def best_of(his: range, los: range) -> Plan:
        return min((_plan(entry, target, w) for w in itertools.product(his, los)), key=error)

    coarse = 4 * WIDTH_STEP  # a coarse grid, then the fine one around its best
    best = best_of(range(coarse, MAX_WIDTH + 1, coarse), range(coarse, MAX_WIDTH + 1, coarse))
    hi, lo = best.widths

    def near(width: int) -> range:
        return range(max(WIDTH_STEP, width - coarse), width + coarse + 1, WIDTH_STEP)

    best = best_of(near(hi), near(lo))
    if scale == 1.0 and error(best) > TOLERANCE:
        raise ValueError(f"{entry.id}: no trunk within ±{TOLERANCE:.0%} of {target}")
    return best


# -- the graph ---------------------------------------------------------------------------------------


def _weight(graph: _Graph, rng: np.random.Generator, shape: list[int], hint: str, hollow: bool) -> str:
    """He-initialised weights (activations keep their scale through the ReLUs, so fp16 stays in
    range); `hollow` writes the shape only, for counting without gigabytes of numbers."""
    name = graph.name(hint)
    if hollow:
        graph.initializers.append(TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape))
        return name
    fan_in = int(np.prod(shape[1:]))
    values = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    graph.initializers.append(numpy_helper.from_array(values, name))
    return name


def _conv(
    graph: _Graph, rng: np.random.Generator, x: str, conv: Conv, hollow: bool, relu: bool = True
) -> str:
    w = _weight(graph, rng, [conv.c_out, conv.c_in, conv.kernel, conv.kernel], "conv_w", hollow)
    if conv.patchify:
        out = graph.op("Conv", [x, w], "conv", strides=[conv.kernel, conv.kernel])
    else:
        pad = conv.kernel // 2
        out = graph.op("Conv", [x, w], "conv", pads=[pad] * 4)
    return graph.op("Relu", [out], "relu") if relu else out


def _per_item(graph: _Graph, head: str) -> str:
    """[N, C, h, w] → [N, C, 1]: the head's mean per channel, kept per batch item."""
    pooled = graph.op("ReduceMean", [head], "pooled", axes=[2, 3], keepdims=0)
    return graph.op("Unsqueeze", [pooled, graph.const([2], TensorProto.INT64, "axis")], "per_item")


def _nudged(graph: _Graph, constant: np.ndarray, term: str, out: str) -> None:
    """out = constant + 1e-4 × term: the constant is what the pipeline reads; the term keeps the whole
    trunk on the critical path."""
    small = graph.op("Mul", [term, graph.const([1e-4], TensorProto.FLOAT, "small")], "small_term")
    nonzero = max(
        1, int(np.flatnonzero(constant.reshape(-1, constant.shape[-1]).any(axis=0)).max(initial=0)) + 1
    )
    value = graph.array(np.ascontiguousarray(constant[..., :nonzero], dtype=np.float32), "template")
    if nonzero < constant.shape[-1]:  # store the columns that hold something, pad the zeros back
        pads = [0] * constant.ndim * 2
        pads[-1] = constant.shape[-1] - nonzero
        value = graph.op("Pad", [value, graph.const(pads, TensorProto.INT64, "pads")], "padded")
    graph.op("Add", [value, small], "nudged", output=out)


def detector_template(anchors: int) -> np.ndarray:
    """YOLOv8-face's [1, 20, anchors] output for FACE_BOX: anchor 0 is the face, the rest score 0."""
    head = np.zeros((1, 20, anchors), dtype=np.float32)
    cx, cy, w, h = FACE_BOX
    head[0, :4, 0] = FACE_BOX
    head[0, 4, 0] = FACE_SCORE
    for i, (u, v) in enumerate(FACE_FIVE):
        head[0, 5 + 3 * i : 8 + 3 * i, 0] = (cx + (u - 0.5) * w, cy + (v - 0.5) * h, 1.0)
    return head


def landmark_template(heatmap: int, fraction: float) -> np.ndarray:
    """2DFAN4's [1, 68, 3] output for the face of FACE_BOX: its crop has the box's longer side over
    `fraction` of the crop, centred; points in heatmap units, score 0.9 (certain)."""
    _, _, w, h = FACE_BOX
    longer = max(w, h)
    span = fraction * heatmap
    points = face_68()
    rows = np.empty((1, 68, 3), dtype=np.float32)
    rows[0, :, 0] = heatmap / 2 + (points[:, 0] - 0.5) * span * w / longer
    rows[0, :, 1] = heatmap / 2 + (points[:, 1] - 0.5) * span * h / longer
    rows[0, :, 2] = 0.9
    return rows


def build_flop_standin(entry: ModelEntry, hollow: bool = False, scale: float = 1.0) -> onnx.ModelProto:
    """The stand-in for `entry` (one of TARGETS); `hollow` leaves the weights out (for counting)."""
    plan = plan_for(entry, scale)
    graph = _Graph()
    rng = np.random.default_rng(zlib.crc32(f"flops:{entry.id}".encode()))
    inputs = [(tensor_name(s, i, "input"), s) for i, s in enumerate(entry.inputs)]
    outputs = [(tensor_name(s, i, "output"), s) for i, s in enumerate(entry.outputs)]
    image = inputs[0][0]
    trunk, head_conv = (
        (plan.layers, None) if entry.id.startswith("arcface") else (plan.layers[:-1], plan.layers[-1])
    )
    lo_start = 1 + TARGETS[entry.id].hi[1]
    x = image
    for index, layer in enumerate(trunk):
        x = _conv(graph, rng, x, layer, hollow)
        if index == lo_start:  # inject the identity vector where the swapper mixes it in
            for name, spec in inputs[1:]:
                w = _weight(graph, rng, [int(spec.shape[1]), layer.c_out], "mix_w", hollow)  # type: ignore[arg-type]
                mixed = graph.op("MatMul", [name, w], "mix")
                mixed = graph.op("Unsqueeze", [mixed, graph.const([2, 3], TensorProto.INT64, "axes")], "m4")
                x = graph.op("Add", [x, mixed], "inject")
    side = int(entry.inputs[0].shape[2])  # type: ignore[arg-type]
    if head_conv is None:  # ArcFace: a dense layer over the flattened last features
        rows, columns = plan.dense[0]
        flat = graph.op("Flatten", [x], "flat", axis=1)
        w = _weight(graph, rng, [rows, columns], "fc_w", hollow)
        graph.op("MatMul", [flat, w], "embed", output=outputs[0][0])
    else:
        head = _conv(graph, rng, x, head_conv, hollow, relu=False)
        if entry.id == "yolov8n_face":
            anchors = int(entry.outputs[0].shape[2])  # type: ignore[arg-type]
            _nudged(graph, detector_template(anchors), _per_item(graph, head), outputs[0][0])
        elif entry.id == "2dfan4":
            heatmap = int(entry.outputs[1].shape[2])  # type: ignore[arg-type]
            scale = heatmap / head_conv.resolution
            scales = graph.const([1.0, 1.0, scale, scale], TensorProto.FLOAT, "scales")
            graph.op("Resize", [head, "", scales], "up", output=outputs[1][0], mode="nearest")
            _nudged(graph, landmark_template(heatmap, 195 / 256), _per_item(graph, head), outputs[0][0])
        else:  # an image out: the image in, nudged by the trunk
            scale = side / head_conv.resolution
            scales = graph.const([1.0, 1.0, scale, scale], TensorProto.FLOAT, "scales")
            up = graph.op("Resize", [head, "", scales], "up", mode="nearest")
            small = graph.op(
                "Mul", [graph.op("Tanh", [up], "tanh"), graph.const([0.02], TensorProto.FLOAT, "k")], "k"
            )
            graph.op("Add", [image, small], "out", output=outputs[0][0])
    if _has_emap(entry):  # last, as InsightFace reads graph.initializer[-1]
        graph.initializers.append(numpy_helper.from_array(emap_matrix(entry), EMAP_NAME))

    def value_info(name: str, dims: tuple[int | str, ...], dtype: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, ONNX_TYPES[dtype], list(dims))

    onnx_graph = helper.make_graph(
        graph.nodes,
        f"flop_standin_{entry.id}",
        [value_info(n, s.shape, s.dtype) for n, s in inputs],
        [value_info(n, s.shape, s.dtype) for n, s in outputs],
        initializer=graph.initializers,
    )
    target = TARGETS[entry.id]
    model = helper.make_model(
        onnx_graph,
        producer_name="doppel-flop-standins",
        doc_string=(
            f"STAND-IN for {entry.id}: {plan.gflops:.1f} GFLOPs, {plan.params / 1e6:.1f} M parameters "
            f"(the real model: {target.gflops} GFLOPs, {target.params_m} M); random weights, not a real model"
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    return model


# -- counting ----------------------------------------------------------------------------------------


def count_cost(model: onnx.ModelProto) -> tuple[float, int]:
    """(GFLOPs, parameters) of a batch-1 call, read off the graph itself: 2 × the multiply-accumulates
    of every Conv and MatMul (output elements × the reduction each one sums), and every initializer's
    element count (the emap included, as the real file carries it)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    dims = {t.name: list(t.dims) for t in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight = dims[node.input[1]]
            macs += int(np.prod(shapes[node.output[0]])) * int(np.prod(weight[1:]))
        elif node.op_type == "MatMul":
            weight = dims[node.input[1]]
            macs += int(np.prod(shapes[node.output[0]])) * weight[0]
    params = sum(int(np.prod(d)) for d in dims.values())
    return 2.0 * macs / 1e9, params


def make_flop_standins(
    directory: Path, catalog: Catalog, ids: list[str], scale: float = 1.0
) -> StandinManifest:
    """Write the stand-ins for `ids` under their catalog file names, with a stand-in manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, StandinFile] = {}
    for model_id in ids:
        entry = catalog.get(model_id)
        data = build_flop_standin(entry, scale=scale).SerializeToString(deterministic=True)
        partial = directory / f"{entry.file}.partial"
        partial.write_bytes(data)
        partial.replace(directory / entry.file)
        files[entry.file] = StandinFile(
            model_id=entry.id, sha256=hashlib.sha256(data).hexdigest(), size=len(data), behaviour=BEHAVIOUR
        )
    return write_manifest(
        directory,
        files,
        "These ONNX files are FLOP-matched STAND-INS generated by tools/flop_standins.py for the benchmark.\n"
        "They cost what the real models cost but have random weights: they do not swap faces.\n",
    )


def describe(entry: ModelEntry, scale: float = 1.0) -> dict[str, object]:
    """What the report says about a stand-in: its cost beside the real model's."""
    plan, target = plan_for(entry, scale), TARGETS[entry.id]
    kind = "FLOP-matched stand-in" if scale == 1.0 else f"tiny stand-in (about {scale:g} of the real cost)"
    return {
        "kind": f"{kind}, random weights",
        "gflops": round(plan.gflops, 2),
        "params_m": round(plan.params / 1e6, 2),
        "size_mb": round(plan.params * 4 / 1e6, 1),
        "real_gflops": target.gflops,
        "real_params_m": target.params_m,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ids", nargs="*", default=list(TARGETS), help="catalog ids (default: all)")
    args = parser.parse_args(argv)
    catalog = load_catalog()
    make_flop_standins(args.directory, catalog, args.ids)
    for model_id in args.ids:
        sys.stdout.write(f"{model_id}: {describe(catalog.get(model_id))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
