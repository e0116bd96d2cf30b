"""Test media and detector wrappers for tracking: a panned clip made in memory, fault injection."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container
from pathlib import Path

import torch
import torch.nn.functional as functional

from app.faces.types import Face, VisionFrame
from app.media.images import read_image

Detect = Callable[[VisionFrame], list[Face]]


def panned_clip(image: Path, frames: int = 40, size: tuple[int, int] = (640, 480)) -> list[VisionFrame]:
    """A camera pan over the photo scaled up to 800 × 800: the 640 × 480 view moves 3 px right and 1 px
    down per frame, so the face moves 3 px left and 1 px up per frame in the view."""
    photo = read_image(image)
    big = functional.interpolate(photo.permute(2, 0, 1)[None].float(), size=(800, 800), mode="bilinear")
    canvas = big[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    width, height = size
    return [canvas[i : i + height, 3 * i : 3 * i + width].contiguous() for i in range(frames)]


def two_faces(image: Path, frames: int = 10) -> list[VisionFrame]:
    """Two half-size copies of the photo on a grey 640 × 480 canvas, the left one moving 2 px right and
    the right one 2 px left per frame."""
    photo = read_image(image)
    small = functional.interpolate(photo.permute(2, 0, 1)[None].float(), size=(256, 256), mode="area")
    copy = small[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    clip = []
    for i in range(frames):
        canvas = torch.full((480, 640, 3), 96, dtype=torch.uint8)
        canvas[100:356, 20 + 2 * i : 276 + 2 * i] = copy
        canvas[140:396, 360 - 2 * i : 616 - 2 * i] = copy
        clip.append(canvas)
    return clip


class MemoDetector:
    """A detector that runs the real one once per distinct image (frame or crop) and remembers."""

    def __init__(self, detect: Detect) -> None:
        self._detect = detect
        self._seen: dict[tuple[tuple[int, ...], str], list[Face]] = {}
        self.runs = 0

    def __call__(self, frame: VisionFrame) -> list[Face]:
        key = (tuple(frame.shape), hashlib.sha1(frame.cpu().numpy().tobytes()).hexdigest())
        if key not in self._seen:
            self.runs += 1
            self._seen[key] = self._detect(frame)
        return list(self._seen[key])


class Blackout:
    """Fault injection: the wrapped detector finds nothing while `frame` (set by the test before each
    tracker call) is in `dark`."""

    def __init__(self, detect: Detect, dark: Container[int]) -> None:
        self.detect = detect
        self.dark = dark
        self.frame = 0
        self.calls = 0

    def __call__(self, frame: VisionFrame) -> list[Face]:
        self.calls += 1
        return [] if self.frame in self.dark else self.detect(frame)
