"""YOLOv8-face: one output [1, 20, anchors]; per anchor a box centre and size, a score, and five
keypoints as (x, y, visibility), all already in canvas pixels."""

from __future__ import annotations

import numpy as np
import torch

from app.faces.detectors.base import LetterboxedFamily, RawDetections

ROWS = 4 + 1 + 15


def decode(output: torch.Tensor, score_threshold: float) -> RawDetections:
    """In NumPy on the host (where FaceDetector.forward put the output): a dozen torch CPU ops on a few
    rows cost more in dispatch than the work."""
    rows = output.detach().to("cpu", torch.float32).numpy().reshape(ROWS, -1).T  # [anchors, 20]
    rows = rows[rows[:, 4] >= score_threshold]
    centre, half = rows[:, 0:2], rows[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = np.ascontiguousarray(rows[:, 5:20].reshape(-1, 5, 3)[:, :, :2])
    return RawDetections(boxes, np.ascontiguousarray(rows[:, 4]), kps)


class YoloFace(LetterboxedFamily):
    NAME = "YOLOv8-face"
    OUTPUTS = 1

    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        return decode(outputs[0], score_threshold)
