"""PeppaPig's 98-point (WFLW) landmarker: a 256 crop of a square 1.4 × the box, rows of (x, y, score) with
x, y in 0..1 of the crop; confidence is the mean score."""

from __future__ import annotations

import torch

from app.faces.landmarks.base import BoxCropFamily, Landmarks, to_frame
from app.faces.types import Face

SIZE = 256
FIVE_OF_98 = [96, 97, 54, 76, 82]


class PeppaPig98(BoxCropFamily):
    SIZE = SIZE
    BOX_FRACTION = 1 / 1.4

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        rows = outputs[0].reshape(98, 3)
        confidence = min(1.0, max(0.0, float(rows[:, 2].mean())))
        return Landmarks(to_frame(rows[:, :2] * SIZE, matrix), confidence)
