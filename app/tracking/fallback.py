"""A box tracker for when optical flow loses a face's points: OpenCV's CSRT (default) or KCF.

Why: LK follows texture around individual points and gives up on blur, fast motion or a hand over the
face; a discriminative correlation-filter tracker follows the face's whole box through those, and the
face tracker moves the points with the box until LK or the detector takes over again. CSRT (Lukežič et
al. 2017) is the accurate choice and adapts the box's scale; KCF is faster and keeps the scale.

Boxes are (x1, y1, x2, y2) floats in the image's pixels; images are grey uint8 [H, W] or BGR uint8
[H, W, 3] numpy arrays. OpenCV trackers work on whole-pixel boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, Protocol, cast

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
FallbackKind = Literal["csrt", "kcf"]
MIN_SIDE = 8  # pixels: smaller boxes are not worth a correlation filter
PATCH = 32  # pixels: the side of the patches compared to verify a tracked box
MIN_SIMILARITY = 0.3  # normalised cross-correlation below which a tracked box is taken as lost


def _rect(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The whole-pixel (x, y, w, h) of a box clipped to the image, or None when too little is left."""
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(width, round(box[2])), min(height, round(box[3]))
    if x2 - x1 < MIN_SIDE or y2 - y1 < MIN_SIDE:
        return None
    return int(x1), int(y1), int(x2 - x1), int(y2 - y1)


class _Tracker(Protocol):
    """What is used of cv2.Tracker (the contrib trackers are missing from OpenCV's type stubs)."""

    def init(self, image: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> None: ...

    def update(self, image: npt.NDArray[np.uint8]) -> tuple[bool, Sequence[int]]: ...


_FACTORIES = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}


def _create(kind: FallbackKind) -> _Tracker:
    if kind not in _FACTORIES:
        raise ValueError(f"box tracker: unknown kind {kind!r} (csrt, kcf)")
    return cast(_Tracker, getattr(cv2, _FACTORIES[kind])())


def _patch(image: npt.NDArray[np.uint8], box: Box) -> npt.NDArray[np.float32] | None:
    """The box's pixels, grey, shrunk to PATCH × PATCH, zero-mean and unit-norm; None when flat or
    outside the image."""
    height, width = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = image[y1:y2, x1:x2]
    if crop.ndim == 3:
        crop = np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    patch = cv2.resize(crop, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    patch -= patch.mean()
    norm = float(np.linalg.norm(patch))
    if norm < 1e-3 * PATCH * PATCH:
        return None
    return patch / norm


def _check_image(image: npt.NDArray[np.uint8]) -> None:
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"box tracker: expected a grey or BGR uint8 image, got {image.dtype} {image.shape}")


class BoxTracker:
    """One OpenCV tracker following one box: `init(image, box)`, then `update(image)` per frame.

    Correlation trackers rarely admit defeat: CSRT happily "follows" a box into noise. So each box it
    reports is checked against the box it started from (normalised cross-correlation of 32 × 32 grey
    patches): below `min_similarity`, or on a flat patch, the box counts as lost.
    """

    def __init__(self, kind: FallbackKind = "csrt", min_similarity: float = MIN_SIMILARITY) -> None:
        self.kind: FallbackKind = kind
        self.min_similarity = min_similarity
        self.similarity: float | None = None  # of the last box reported
        self._tracker: _Tracker | None = None
        self._template: npt.NDArray[np.float32] | None = None

    @property
    def active(self) -> bool:
        return self._tracker is not None

    def init(self, image: npt.NDArray[np.uint8], box: Box) -> Box | None:
        """Start following `box` in `image`. Returns the whole-pixel box actually followed (what later
        boxes are relative to), or None (and inactive) when the box is too small or off the image."""
        _check_image(image)
        rect = _rect(box, image.shape[1], image.shape[0])
        if rect is None:
            log.debug("%s: box %s too small or outside the image to track", self.kind, box)
            self._tracker = None
            return None
        x, y, w, h = rect
        started = float(x), float(y), float(x + w), float(y + h)
        self._template = _patch(image, started)
        if self._template is None:
            log.debug("%s: box %s is flat, nothing to track", self.kind, box)
            self._tracker = None
            return None
        self._tracker = _create(self.kind)
        self._tracker.init(self._input(image), rect)
        return started

    def update(self, image: npt.NDArray[np.uint8]) -> Box | None:
        """Where the box went in `image`; None (and inactive) when the tracker lost it."""
        _check_image(image)
        if self._tracker is None:
            return None
        found, (x, y, w, h) = self._tracker.update(self._input(image))
        box = float(x), float(y), float(x + w), float(y + h)
        patch = _patch(image, box) if found and w >= MIN_SIDE and h >= MIN_SIDE else None
        self.similarity = (
            None if patch is None or self._template is None else float((patch * self._template).sum())
        )
        if self.similarity is None or self.similarity < self.min_similarity:
            log.debug("%s lost its box (similarity %s)", self.kind, self.similarity)
            self.reset()
            return None
        return box

    def reset(self) -> None:
        self._tracker = None
        self._template = None

    def _input(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """What the OpenCV tracker is given: KCF's colour-names features need three channels."""
        if self.kind == "kcf" and image.ndim == 2:
            return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        return np.ascontiguousarray(image)
