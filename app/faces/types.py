"""The boundary types of face analysis: frames, faces, and the checks that say expected vs actual.

A VisionFrame is a torch uint8 tensor [H, W, 3] in RGB, on whatever device the pipeline runs on; every
coordinate is in that frame's pixels (x right, y down). A Face's geometry (box, keypoints, landmarks: a few
hundred numbers) lives on the CPU, so deciding what to crop never waits on the GPU; pixels and embeddings
stay on the compute device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

VisionFrame = torch.Tensor  # uint8 [H, W, 3], RGB
Points = torch.Tensor  # float32 [N, 2], (x, y) in frame pixels
Embedding = torch.Tensor  # float32 [D]

KPS_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")  # InsightFace order


class ShapeError(ValueError):
    """A tensor crossing a stage boundary has the wrong shape or type."""


def check_frame(frame: torch.Tensor, what: str = "frame") -> VisionFrame:
    if frame.dtype != torch.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ShapeError(f"{what}: expected uint8 [H, W, 3] RGB, got {frame.dtype} {list(frame.shape)}")
    return frame


def unit(vectors: torch.Tensor) -> torch.Tensor:
    """Vectors [..., D] scaled to unit length along the last axis."""
    normed: torch.Tensor = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return normed


def roll_degrees(kps: Points) -> float:
    """The face's in-plane rotation from its eye line: 0 upright, positive clockwise on screen."""
    (x0, y0), (x1, y1) = kps[:2].tolist()  # one host copy: torch ops on two points cost more
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    kps: Points  # [5, 2] in KPS_NAMES order
    rotation: int = 0  # the frame rotation (0/90/180/270) it was detected at
    landmarks: Points | None = None  # dense landmarks, [N, 2]
    landmark_confidence: float | None = None
    landmark_model: str | None = None  # the catalog id that placed the landmarks
    embedding: Embedding | None = None
    reference: int | None = None  # reference mode: which reference identity it matched

    def __post_init__(self) -> None:
        if tuple(self.kps.shape) != (5, 2):
            raise ShapeError(f"Face.kps: expected [5, 2], got {list(self.kps.shape)}")
        if self.landmarks is not None and (self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2):
            raise ShapeError(f"Face.landmarks: expected [N, 2], got {list(self.landmarks.shape)}")

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels: what minimum-size filters and landmark routing use."""
        return min(self.width, self.height)

    @property
    def roll(self) -> float:
        return roll_degrees(self.kps)

    @property
    def normed_embedding(self) -> Embedding | None:
        if self.embedding is None:
            return None
        return unit(self.embedding)
