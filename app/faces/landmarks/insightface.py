"""InsightFace's coordinate regressors on a 192 crop (box longer side × 1.5 fills it), outputs in −1..1.

2d106det: 106 (x, y) pairs. 1k3d68: 1103 (x, y, z) rows whose last 68 are the iBUG points. Neither
reports a confidence, so it is their agreement with the detector's five points.
"""

from __future__ import annotations

import torch

from app.faces.landmarks.base import BoxCropFamily, Landmarks, agreement, five_from_68, to_frame
from app.faces.types import Face

SIZE = 192
FIVE_OF_106 = [38, 88, 86, 52, 61]  # eye centres, nose tip, mouth corners


def _from_unit(values: torch.Tensor) -> torch.Tensor:
    return (values + 1) * (SIZE / 2)


class InsightFace106(BoxCropFamily):
    SIZE = SIZE

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(_from_unit(outputs[0].reshape(106, 2)), matrix)
        return Landmarks(points, agreement(points[FIVE_OF_106], face.kps))


class InsightFace3d68(BoxCropFamily):
    SIZE = SIZE

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(_from_unit(outputs[0].reshape(-1, 3)[-68:, :2]), matrix)
        return Landmarks(points, agreement(five_from_68(points), face.kps))
