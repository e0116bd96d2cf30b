"""The contract every detector family follows, and the raw result it hands back.

prepare() turns a frame into the model's input tensor and remembers how (the letterbox); normalize()
turns the model's outputs, in catalog order, into boxes, scores and five keypoints in frame pixels.
Only the FaceDetector (detector.py) runs the session in between.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch

from app.core.errors import CatalogError
from app.faces.geometry import Letterbox, letterbox
from app.faces.preprocess import normalise
from app.faces.types import VisionFrame
from app.models.catalog import ModelEntry


@dataclass(frozen=True)
class RawDetections:
    boxes: torch.Tensor  # [K, 4] x1, y1, x2, y2 in frame pixels
    scores: torch.Tensor  # [K]
    kps: torch.Tensor  # [K, 5, 2] in frame pixels

    @classmethod
    def empty(cls, device: torch.device) -> RawDetections:
        return cls(
            torch.zeros((0, 4), device=device),
            torch.zeros(0, device=device),
            torch.zeros((0, 5, 2), device=device),
        )

    def select(self, index: torch.Tensor) -> RawDetections:
        return RawDetections(self.boxes[index], self.scores[index], self.kps[index])


class DetectorFamily(Protocol):
    def prepare(self, frame: VisionFrame, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]: ...

    def normalize(
        self, outputs: list[torch.Tensor], box: Letterbox, score_threshold: float
    ) -> RawDetections: ...


class LetterboxedFamily(ABC):
    """What every detector family shares: the catalog's output count checked once, the frame letterboxed
    and normalised, and the decoded canvas points mapped back to the frame. A family only says how many
    outputs it reads (`OUTPUTS`, 0 for any) and how to `decode` one image's outputs in canvas pixels."""

    NAME = "detector"
    OUTPUTS = 0

    def __init__(self, entry: ModelEntry) -> None:
        self.entry = entry
        if self.OUTPUTS and len(entry.outputs) != self.OUTPUTS:
            raise CatalogError(
                f"{entry.id}: {self.NAME} has {self.OUTPUTS} outputs, the catalog lists {len(entry.outputs)}"
            )

    def prepare(self, frame: VisionFrame, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
        return normalised_canvas(self.entry, frame, size)

    @abstractmethod
    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        """One image's outputs → boxes, scores and keypoints in canvas pixels, above the threshold."""

    def normalize(self, outputs: list[torch.Tensor], box: Letterbox, score_threshold: float) -> RawDetections:
        found = self.decode(outputs, box.size, score_threshold)
        return RawDetections(box.to_frame(found.boxes), found.scores, box.to_frame(found.kps))


def normalised_canvas(
    entry: ModelEntry, frame: VisionFrame, size: tuple[int, int]
) -> tuple[torch.Tensor, Letterbox]:
    """Letterbox, reorder colours as the catalog says, apply its normalisation: [1, 3, h, w] float32."""
    canvas, box = letterbox(frame, size)
    return normalise(entry, canvas.unsqueeze(0)), box
