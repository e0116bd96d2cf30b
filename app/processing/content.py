"""Content analyser: the catalog's NSFW models vote on a frame; a two-thirds majority blocks the output.

Peers run several classifiers and block on agreement (FaceFusion: two of three), because each one alone
misfires. With the catalog's two models both must agree; with one, it decides alone. Each family says
how it reads the whole frame:
- open_nsfw (Yahoo): the frame squashed to 224 x 224, BGR minus the ImageNet means, NHWC; output
  [sfw, nsfw] probabilities; flags above `OPEN_NSFW_THRESHOLD`.
- yolo_nsfw (FaceFusion's nsfw_1): letterboxed to 640, RGB / 255; output [1, 4 + classes, anchors];
  flags when any class score passes `YOLO_THRESHOLD` (FaceFusion's 0.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn import functional

from app.core.errors import CatalogError, DoppelError
from app.faces.geometry import letterbox
from app.faces.preprocess import fixed_side, normalise
from app.faces.types import VisionFrame
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, ModelEntry

OPEN_NSFW_THRESHOLD = 0.8
YOLO_THRESHOLD = 0.2


class ContentBlockedError(DoppelError):
    """The content analyser found the output unsuitable; nothing was written."""


class AnalyserFamily(Protocol):
    def prepare(self, entry: ModelEntry, frame: VisionFrame) -> torch.Tensor: ...

    def score(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> tuple[float, bool]: ...


class OpenNsfw:
    def prepare(self, entry: ModelEntry, frame: VisionFrame) -> torch.Tensor:
        side = entry.input_size or 224
        image = frame.permute(2, 0, 1).unsqueeze(0).float()
        squashed = functional.interpolate(image, size=(side, side), mode="bilinear", antialias=True)
        return normalise(entry, squashed).permute(0, 2, 3, 1).contiguous()

    def score(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> tuple[float, bool]:
        probability = float(outputs[0].reshape(-1)[1])
        return probability, probability > OPEN_NSFW_THRESHOLD


class YoloNsfw:
    def prepare(self, entry: ModelEntry, frame: VisionFrame) -> torch.Tensor:
        side = fixed_side(entry, 640)
        canvas, _ = letterbox(frame, (side, side))
        return normalise(entry, canvas.unsqueeze(0))

    def score(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> tuple[float, bool]:
        classes = outputs[0][0, 4:].float()
        best = float(classes.max()) if classes.numel() else 0.0
        return best, best > YOLO_THRESHOLD


FAMILIES: dict[str, AnalyserFamily] = {"open_nsfw": OpenNsfw(), "yolo_nsfw": YoloNsfw()}


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    votes: dict[str, tuple[float, bool]]  # model id → (score, flagged)
    required: int


class ContentAnalyser:
    def __init__(self, runtime: InferenceRuntime, model_ids: Sequence[str]) -> None:
        if not model_ids:
            raise CatalogError("The content analyser needs at least one analyser model")
        self.runtime = runtime
        self.entries = [runtime.store.catalog.get(m) for m in model_ids]
        for entry in self.entries:
            if entry.kind is not Kind.ANALYSER or entry.family not in FAMILIES:
                raise CatalogError(
                    f"{entry.id} is a {entry.kind} of family '{entry.family}', not a content analyser "
                    f"({', '.join(FAMILIES)})"
                )
        self.required = math.ceil(2 * len(self.entries) / 3)

    def check(self, frame: VisionFrame) -> Verdict:
        votes = {}
        for entry in self.entries:
            family = FAMILIES[entry.family]
            outputs = self.runtime.run_ordered(entry.id, family.prepare(entry, frame))
            votes[entry.id] = family.score(entry, outputs)
        flagged = sum(1 for _, hit in votes.values() if hit)
        return Verdict(flagged >= self.required, votes, self.required)


def default_analysers(runtime: InferenceRuntime) -> list[str]:
    """Every analyser the catalog knows whose file is present. Behavioural stand-in variants ("ID@…",
    test fixtures) are never picked by default."""
    entries = [
        e
        for e in runtime.store.catalog
        if e.kind is Kind.ANALYSER and e.family in FAMILIES and "@" not in e.id
    ]
    return [e.id for e in entries if runtime.store.status(e).usable]
