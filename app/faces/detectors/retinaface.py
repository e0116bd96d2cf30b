"""RetinaFace (biubug6/Pytorch_Retinaface export): anchor boxes ("priors") with variance-encoded offsets.

Outputs in catalog order, each [batch, N, ·]: box offsets (4), class probabilities (background, face:
already softmaxed), five keypoint offsets (10). Two priors per cell of sizes min_sizes at strides 8, 16, 32.
A prior is (cx, cy, w, h) as fractions of the canvas; a box centre is prior centre + offset × 0.1 × prior
size, its size prior size × exp(offset × 0.2).
"""

from __future__ import annotations

import functools
import math

import torch

from app.faces.detectors.base import LetterboxedFamily, RawDetections

STRIDES = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE, SIZE_VARIANCE = 0.1, 0.2


@functools.lru_cache(maxsize=16)  # one grid per canvas size and device, built once
def priors(height: int, width: int, device: torch.device) -> torch.Tensor:
    """[N, 4] (cx, cy, w, h) in canvas fractions, stride by stride, row by row, each cell's sizes in turn."""
    parts = []
    for stride, sizes in zip(STRIDES, MIN_SIZES, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = torch.meshgrid(
            torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij"
        )
        centres = torch.stack([(xs + 0.5) * stride / width, (ys + 0.5) * stride / height], dim=-1)
        centres = centres.reshape(-1, 1, 2).expand(-1, len(sizes), 2)
        extent = torch.tensor([[s / width, s / height] for s in sizes], device=device)
        parts.append(torch.cat([centres, extent.expand_as(centres)], dim=-1).reshape(-1, 4))
    return torch.cat(parts)


def decode(
    loc: torch.Tensor,
    conf: torch.Tensor,
    landms: torch.Tensor,
    canvas: tuple[int, int],
    score_threshold: float,
) -> RawDetections:
    """One image's outputs ([N, 4], [N, 2], [N, 10], a leading batch of 1 allowed) → canvas pixels."""
    loc, scores, landms = loc.reshape(-1, 4), conf.reshape(-1, 2)[:, 1], landms.reshape(-1, 5, 2)
    anchors = priors(canvas[0], canvas[1], loc.device)
    if anchors.shape[0] != loc.shape[0]:
        raise ValueError(f"RetinaFace: {loc.shape[0]} boxes for {anchors.shape[0]} priors at {canvas}")
    keep = scores >= score_threshold
    anchors, loc, landms = anchors[keep], loc[keep], landms[keep]
    centre = anchors[:, :2] + loc[:, :2] * CENTRE_VARIANCE * anchors[:, 2:]
    size = anchors[:, 2:] * torch.exp(loc[:, 2:] * SIZE_VARIANCE)
    scale = torch.tensor([canvas[1], canvas[0]], dtype=loc.dtype, device=loc.device)
    boxes = torch.cat([(centre - size / 2) * scale, (centre + size / 2) * scale], dim=1)
    kps = (anchors[:, None, :2] + landms * CENTRE_VARIANCE * anchors[:, None, 2:]) * scale
    return RawDetections.of(boxes, scores[keep], kps)


class RetinaFace(LetterboxedFamily):
    NAME = "RetinaFace (loc, conf, landms)"
    OUTPUTS = 3

    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        return decode(outputs[0], outputs[1], outputs[2], canvas, score_threshold)
