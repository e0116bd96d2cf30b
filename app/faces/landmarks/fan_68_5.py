"""FaceFusion's 5 → 68 regressor: no image, only the detector's five points, moved into the unit square of
the ffhq_512 template; its 68 points come back in that square. It is as sure as the detection was, so
its confidence is the face's detection score. It is what tiny faces get: too few pixels for the others."""

from __future__ import annotations

import torch

from app.faces.alignment import estimate, transform_points
from app.faces.landmarks.base import Landmarks, to_frame
from app.faces.types import Face, VisionFrame
from app.models.catalog import ModelEntry


class Fan68From5:
    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry

    def prepare(self, frame: VisionFrame, face: Face) -> tuple[torch.Tensor, torch.Tensor]:
        kps = face.kps.float().cpu()
        matrix = estimate(kps, "ffhq_512", 1)
        return transform_points(kps, matrix).unsqueeze(0).to(frame.device), matrix

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        return Landmarks(to_frame(outputs[0].reshape(68, 2), matrix), face.score)
