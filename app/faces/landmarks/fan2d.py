"""2DFAN4: 68 iBUG points from a 256 crop, as (x, y, score) rows in 64 × 64 heatmap space.

The crop follows FaceFusion's: the box's longer side covers 195 of 256 pixels. Confidence is the mean of
the per-point heatmap peaks, with 0.9 counted as certain (FaceFusion's mapping).
"""

from __future__ import annotations

import numpy as np
import torch

from app.faces.landmarks.base import BoxCropFamily, Landmarks, to_frame_host
from app.faces.types import Face

SIZE = 256
HEATMAP = 64
CERTAIN = 0.9


class Fan2d(BoxCropFamily):
    SIZE = SIZE
    BOX_FRACTION = 195 / SIZE

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks:
        rows = outputs[0].detach().to("cpu", torch.float32).numpy().reshape(68, 3)
        points = rows[:, :2] * np.float32(SIZE / HEATMAP)
        confidence = min(1.0, max(0.0, float(rows[:, 2].mean()) / CERTAIN))
        return Landmarks(to_frame_host(points, matrix), confidence)
