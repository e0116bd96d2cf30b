"""The contract every detector family follows, and the raw result it hands back.

prepare() turns a frame into the model's input tensor and remembers how (the letterbox); normalize()
turns the model's outputs, in catalog order, into boxes, scores and five keypoints in frame pixels.
Only the FaceDetector (detector.py) runs the session in between.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from app.core.errors import CatalogError
from app.faces.geometry import Letterbox, letterbox, letterbox_many
from app.faces.preprocess import normalise
from app.faces.types import VisionFrame
from app.models.catalog import ModelEntry


@dataclass(frozen=True)
class RawDetections:
    """On the host, in NumPy: after the score filter a frame has a handful of candidates, and torch CPU
    ops on them cost more in dispatch (and GIL hand-offs beside the pipeline's other threads) than the
    arithmetic (py-spy on the H200: detection post-processing was ~30 torch calls a frame)."""

    boxes: np.ndarray  # [K, 4] float32 x1, y1, x2, y2 in frame pixels
    scores: np.ndarray  # [K]
    kps: np.ndarray  # [K, 5, 2] in frame pixels

    @classmethod
    def of(cls, boxes: torch.Tensor, scores: torch.Tensor, kps: torch.Tensor) -> RawDetections:
        """From a family's torch decoding (on the CPU, where FaceDetector.forward put the outputs)."""
        return cls(*(t.detach().to("cpu", torch.float32).numpy() for t in (boxes, scores, kps)))

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def select(self, index: np.ndarray) -> RawDetections:
        return RawDetections(self.boxes[index], self.scores[index], self.kps[index])


class DetectorFamily(Protocol):
    def prepare(self, frame: VisionFrame, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]: ...

    def prepare_many(
        self, frames: list[VisionFrame], size: tuple[int, int]
    ) -> tuple[torch.Tensor, list[Letterbox]]: ...

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

    def prepare_many(
        self, frames: list[VisionFrame], size: tuple[int, int]
    ) -> tuple[torch.Tensor, list[Letterbox]]:
        """Several frames as one batch [B, 3, h, w]: frames of one size are letterboxed together."""
        if len({tuple(frame.shape) for frame in frames}) == 1:
            canvases, box = letterbox_many(torch.stack(frames), size)
            return normalise(self.entry, canvases), [box] * len(frames)
        prepared = [self.prepare(frame, size) for frame in frames]
        return torch.cat([tensor for tensor, _ in prepared]), [box for _, box in prepared]

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
