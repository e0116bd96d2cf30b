"""MediaPipe's face mesh with irises: 478 (x, y, z) points in pixels of a 256 crop (box longer side × 1.5),
and a face-presence logit whose sigmoid is the confidence (as MediaPipe's own graph reads it)."""

from __future__ import annotations

import torch

from app.faces.landmarks.base import BoxCropFamily, Landmarks, to_frame
from app.faces.types import Face

SIZE = 256
FIVE_OF_478 = [468, 473, 4, 61, 291]  # iris centres, nose tip, mouth corners


class FaceMesh478(BoxCropFamily):
    SIZE = SIZE

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        points = to_frame(outputs[0].reshape(478, 3)[:, :2], matrix)
        return Landmarks(points, float(torch.sigmoid(outputs[1].reshape(-1)[0])))
