"""SCRFD (InsightFace): anchor-free distances on three strides, two anchors per cell, five keypoints.

Outputs in catalog order: scores for strides 8, 16, 32; then box distances; then keypoint distances.
A box is (cx - l, cy - t, cx + r, cy + b) times the stride around its anchor centre (x·s, y·s).
"""

from __future__ import annotations

import torch

from app.core.errors import CatalogError
from app.faces.detectors.base import RawDetections, normalised_canvas
from app.faces.geometry import Letterbox
from app.faces.types import VisionFrame
from app.models.catalog import ModelEntry

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2


def anchor_centres(height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
    """[cells × anchors, 2] (x, y) centres, row by row, each cell's anchors next to each other."""
    ys, xs = torch.meshgrid(
        torch.arange(height // stride, device=device),
        torch.arange(width // stride, device=device),
        indexing="ij",
    )
    centres = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float() * stride
    return centres.repeat_interleave(ANCHORS_PER_CELL, dim=0)


def decode(
    scores: list[torch.Tensor],
    distances: list[torch.Tensor],
    keypoints: list[torch.Tensor],
    canvas: tuple[int, int],
    score_threshold: float,
) -> RawDetections:
    """Boxes and keypoints in canvas pixels for every anchor scoring at least the threshold."""
    found_boxes, found_scores, found_kps = [], [], []
    for stride, score, distance, kps in zip(STRIDES, scores, distances, keypoints, strict=True):
        score, distance, kps = score.reshape(-1), distance.reshape(-1, 4), kps.reshape(-1, 5, 2)
        centres = anchor_centres(canvas[0], canvas[1], stride, score.device)
        if centres.shape[0] != score.shape[0]:
            raise ValueError(f"SCRFD stride {stride}: {score.shape[0]} scores for {centres.shape[0]} anchors")
        keep = score >= score_threshold
        centre = centres[keep]
        step = distance[keep] * stride
        found_boxes.append(torch.cat([centre - step[:, :2], centre + step[:, 2:]], dim=1))
        found_kps.append(centre[:, None, :] + kps[keep] * stride)
        found_scores.append(score[keep])
    return RawDetections(torch.cat(found_boxes), torch.cat(found_scores), torch.cat(found_kps))


class Scrfd:
    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry
        if len(entry.outputs) != 9:
            raise CatalogError(
                f"{entry.id}: SCRFD with keypoints has 9 outputs, the catalog lists {len(entry.outputs)}"
            )

    def prepare(self, frame: VisionFrame, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
        return normalised_canvas(self.entry, frame, size)

    def normalize(self, outputs: list[torch.Tensor], box: Letterbox, score_threshold: float) -> RawDetections:
        found = decode(outputs[0:3], outputs[3:6], outputs[6:9], box.size, score_threshold)
        return RawDetections(box.to_frame(found.boxes), found.scores, box.to_frame(found.kps))
