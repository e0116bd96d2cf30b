"""LivePortrait's 203-point landmarker: a 224 crop (box longer side × 1.5), points in 0..1 of the crop in
its third output. No confidence of its own: agreement with the detector's five points."""

from __future__ import annotations

import torch

from app.faces.landmarks.base import Landmarks, agreement, box_crop_matrix, image_crop, to_frame
from app.faces.types import Face, VisionFrame
from app.models.catalog import ModelEntry

SIZE = 224
FIVE_OF_203 = [197, 198, 201, 48, 66]


class LivePortrait203:
    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry

    def prepare(self, frame: VisionFrame, face: Face) -> tuple[torch.Tensor, torch.Tensor]:
        matrix = box_crop_matrix(face, SIZE, 1 / 1.5)
        return image_crop(self.entry, frame, matrix, SIZE), matrix

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(outputs[2].reshape(203, 2) * SIZE, matrix)
        return Landmarks(points, agreement(points[FIVE_OF_203], face.kps))
