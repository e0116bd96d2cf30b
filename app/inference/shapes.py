"""Concrete shapes for a model's dynamic axes: what warmup feeds it and what TensorRT optimises for.

A dynamic axis is one the catalog names instead of numbering ("batch", "height", "?"). The first axis is
the batch; the two image axes (by the catalog's layout) are the sides; any other dynamic axis is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.settings import TensorRTSettings
from app.models.catalog import ModelEntry, TensorSpec

DEFAULT_SIDE = 256  # an image side for models whose catalog gives no input size (upscalers)


@dataclass(frozen=True)
class ShapeRange:
    minimum: tuple[int, ...]
    optimum: tuple[int, ...]
    maximum: tuple[int, ...]


def _side_axes(entry: ModelEntry, rank: int) -> tuple[int, ...]:
    if rank != 4:
        return ()
    return (1, 2) if entry.layout == "NHWC" else (2, 3)


def is_dynamic(spec: TensorSpec) -> bool:
    return any(not isinstance(d, int) for d in spec.shape)


def shape_range(entry: ModelEntry, spec: TensorSpec, trt: TensorRTSettings) -> ShapeRange:
    side = entry.input_size or DEFAULT_SIDE
    sides = _side_axes(entry, len(spec.shape))
    low, opt, high = [], [], []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int):
            low.append(dim)
            opt.append(dim)
            high.append(dim)
        elif axis == 0:
            low.append(1)
            opt.append(1)
            high.append(trt.max_batch)
        elif axis in sides:
            low.append(min(trt.min_side, side))
            opt.append(side)
            high.append(max(trt.max_side, side))
        else:
            low.append(1)
            opt.append(1)
            high.append(1)
    return ShapeRange(tuple(low), tuple(opt), tuple(high))


def warmup_shape(entry: ModelEntry, spec: TensorSpec) -> tuple[int, ...]:
    """The shape a model will mostly see: batch 1, its own input size."""
    return shape_range(entry, spec, TensorRTSettings()).optimum


def declares_a_batch(entry: ModelEntry) -> bool:
    """Whether the catalog says several crops or frames fit in one call: the first input's leading axis
    is symbolic, and so is every output's (an output fixed at 1 would not hold the batch)."""
    specs = (entry.inputs[0], *entry.outputs) if entry.inputs else ()
    return bool(specs) and all(isinstance(spec.shape[0], str) for spec in specs if spec.shape)
