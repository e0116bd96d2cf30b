"""The contract every landmarker family follows, the crops they share, and how much to trust their points.

prepare() turns a frame and a detected face into the model's input (one crop, batch axis 1) and the
frame → crop transform; normalize() turns that crop's outputs back into points in frame pixels and a
confidence in 0..1. Only the Landmarker (landmarker.py) runs the session in between.

Crops are square around the detector's box and turned so the eye line is level: landmark models are
trained on upright faces (InsightFace warns 2d106det gives garbage on rolled ones), and this keeps a face
found by rotation-robust detection usable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from app.faces.alignment import invert, invert_host, transform_points, warp_frame
from app.faces.preprocess import normalise
from app.faces.types import Face, Points, VisionFrame
from app.models.catalog import ModelEntry


@dataclass(frozen=True)
class Landmarks:
    points: Points  # [N, 2] in frame pixels
    confidence: float  # 0..1


class LandmarkerFamily(Protocol):
    def prepare(self, frame: VisionFrame, face: Face) -> tuple[torch.Tensor, torch.Tensor]: ...

    def normalize(self, outputs: list[torch.Tensor], matrix: torch.Tensor, face: Face) -> Landmarks: ...


class BoxCropFamily:
    """What the image landmarkers share: a square crop of SIZE pixels around the box, whose longer side
    covers BOX_FRACTION of it. A family adds only `normalize`."""

    SIZE = 256
    BOX_FRACTION = 1 / 1.5

    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry

    def prepare(self, frame: VisionFrame, face: Face) -> tuple[torch.Tensor, torch.Tensor]:
        matrix = box_crop_matrix(face, self.SIZE, self.BOX_FRACTION)
        return image_crop(self.entry, frame, matrix, self.SIZE), matrix


def box_crop_matrix(face: Face, size: int, box_fraction: float) -> torch.Tensor:
    """Frame → crop similarity [2, 3] on the CPU: the box centre to the crop centre, the box's longer
    side to `box_fraction` of the crop, and the face's roll undone."""
    x1, y1, x2, y2 = face.box
    scale = size * box_fraction / max(x2 - x1, y2 - y1, 1e-6)
    angle = math.radians(face.roll)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, size / 2
    return torch.tensor(
        [[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy]],
        dtype=torch.float32,
    )


def image_crop(entry: ModelEntry, frame: VisionFrame, matrix: torch.Tensor, size: int) -> torch.Tensor:
    """The crop [1, 3, size, size] the matrix selects, in the model's colours and normalisation."""
    return normalise(entry, warp_frame(frame, matrix, (size, size)))


def to_frame(points: torch.Tensor, matrix: torch.Tensor) -> Points:
    """Crop points [N, 2] back to frame pixels through the inverse of the frame → crop matrix."""
    return transform_points(points.float(), invert(matrix.to(points.device)))


def to_frame_host(points: np.ndarray, matrix: torch.Tensor) -> Points:
    """to_frame for NumPy crop points [N, 2]: the arithmetic on the host, one tensor made at the end
    (a landmark decode in torch CPU ops cost ~15 dispatches a face)."""
    inverse = invert_host(matrix)
    back = points.astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
    return torch.from_numpy(back.astype(np.float32))


def five_from_68(points: Points) -> Points:
    """The detector's five points (eye centres, nose tip, mouth corners) in a 68-point iBUG layout."""
    return torch.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


def agreement(five: Points, kps: Points) -> float:
    """How well a landmarker's own five points agree with the detector's: 1 − mean distance over the
    eye distance, floored at 0. The confidence of families whose models report none."""
    eyes = float((kps[1] - kps[0]).norm().clamp_min(1.0))
    error = float((five.to(kps.device) - kps).norm(dim=1).mean())
    return max(0.0, 1.0 - error / eyes)
