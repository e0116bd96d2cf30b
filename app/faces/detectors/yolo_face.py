"""YOLOv8-face: one output [1, 20, anchors]; per anchor a box centre and size, a score, and five
keypoints as (x, y, visibility), all already in canvas pixels."""

from __future__ import annotations

import torch

from app.faces.detectors.base import LetterboxedFamily, RawDetections

ROWS = 4 + 1 + 15


def decode(output: torch.Tensor, score_threshold: float) -> RawDetections:
    rows = output.reshape(ROWS, -1).T  # [anchors, 20]
    keep = rows[:, 4] >= score_threshold
    rows = rows[keep]
    centre, half = rows[:, 0:2], rows[:, 2:4] / 2
    boxes = torch.cat([centre - half, centre + half], dim=1)
    kps = rows[:, 5:20].reshape(-1, 5, 3)[:, :, :2]
    return RawDetections(boxes, rows[:, 4], kps)


class YoloFace(LetterboxedFamily):
    NAME = "YOLOv8-face"
    OUTPUTS = 1

    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        return decode(outputs[0], score_threshold)
