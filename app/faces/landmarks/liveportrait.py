"""LivePortrait's 203-point landmarker: a 224 crop (box longer side × 1.5), points in 0..1 of the crop in
its third output. No confidence of its own: agreement with the detector's five points."""

from __future__ import annotations

import torch

from app.faces.landmarks.base import (
    BoxCropFamily,
    Landmarks,
    agreement,
    to_frame,
)
from app.faces.types import Face

SIZE = 224
FIVE_OF_203 = [197, 198, 201, 48, 66]


class LivePortrait203(BoxCropFamily):
    SIZE = SIZE

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(outputs[2].reshape(203, 2) * SIZE, matrix)
        return Landmarks(points, agreement(points[FIVE_OF_203], face.kps))
