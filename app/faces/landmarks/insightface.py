"""InsightFace's coordinate regressors on a 192 crop (box longer side × 1.5 fills it), outputs in −1..1.

2d106det: 106 (x, y) pairs. 1k3d68: 1103 (x, y, z) rows whose last 68 are the iBUG points. Neither
reports a confidence, so it is their agreement with the detector's five points.
"""

from __future__ import annotations

import torch

from app.faces.landmarks.base import (
    Landmarks,
    agreement,
    box_crop_matrix,
    five_from_68,
    image_crop,
    to_frame,
)
from app.faces.types import Face, VisionFrame
from app.models.catalog import ModelEntry

SIZE = 192
FIVE_OF_106 = [38, 88, 86, 52, 61]  # eye centres, nose tip, mouth corners


def _from_unit(values: torch.Tensor) -> torch.Tensor:
    return (values + 1) * (SIZE / 2)


class _InsightFaceCrop:
    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry

    def prepare(self, frame: VisionFrame, face: Face) -> tuple[torch.Tensor, torch.Tensor]:
        matrix = box_crop_matrix(face, SIZE, 1 / 1.5)
        return image_crop(self.entry, frame, matrix, SIZE), matrix


class InsightFace106(_InsightFaceCrop):
    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(_from_unit(outputs[0].reshape(106, 2)), matrix)
        return Landmarks(points, agreement(points[FIVE_OF_106], face.kps))


class InsightFace3d68(_InsightFaceCrop):
    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(_from_unit(outputs[0].reshape(-1, 3)[-68:, :2]), matrix)
        return Landmarks(points, agreement(five_from_68(points), face.kps))
