"""YOLOv8-face: one output [1, 20, anchors]; per anchor a box centre and size, a score, and five
keypoints as (x, y, visibility), all already in canvas pixels."""

from __future__ import annotations

import torch

from app.faces.detectors.base import RawDetections, normalised_canvas
from app.faces.geometry import Letterbox
from app.faces.types import VisionFrame
from app.models.catalog import ModelEntry

ROWS = 4 + 1 + 15


def decode(output: torch.Tensor, score_threshold: float) -> RawDetections:
    rows = output.reshape(ROWS, -1).T  # [anchors, 20]
    keep = rows[:, 4] >= score_threshold
    rows = rows[keep]
    centre, half = rows[:, 0:2], rows[:, 2:4] / 2
    boxes = torch.cat([centre - half, centre + half], dim=1)
    kps = rows[:, 5:20].reshape(-1, 5, 3)[:, :, :2]
    return RawDetections(boxes, rows[:, 4], kps)


class YoloFace:
    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry

    def prepare(self, frame: VisionFrame, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
        return normalised_canvas(self.entry, frame, size)

    def normalize(self, outputs: list[torch.Tensor], box: Letterbox, score_threshold: float) -> RawDetections:
        found = decode(outputs[0], score_threshold)
        return RawDetections(box.to_frame(found.boxes), found.scores, box.to_frame(found.kps))
