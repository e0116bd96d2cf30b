"""One tracked face between detections: LK moves its points; CSRT moves its box when LK loses them.

Why a module of its own: this is the per-face motion model, and it has to be replayable. A track's
CSRT tracker is opaque OpenCV state that cannot be saved, so the track remembers the frame index and
whole-pixel box it started CSRT from (`csrt_start`, `csrt_box`) and the face tracker keeps the grey
frames since then: `rebuild_fallback` replays them to get the very same CSRT state after a restore.
CSRT restarts from its own box every CSRT_REFRESH frames, which bounds that replay.

Coordinates: faces are in frame pixels; the grey images are the frame scaled by (sx, sy).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from app.faces.types import Face
from app.tracking.fallback import BoxTracker, FallbackKind
from app.tracking.geometry import (
    Box,
    box_motion,
    face_from_state,
    face_points,
    face_state,
    transform_face,
    transform_points,
    with_points,
)
from app.tracking.lk import fit_similarity, track_points

log = logging.getLogger(__name__)

Source = Literal["detect", "roi", "lk", "csrt", "held"]
CSRT_REFRESH = 30  # frames: CSRT restarts from its own box this often (bounds the replay on restore)
SCALE_RANGE = (0.7, 1.4)  # a frame-to-frame LK scale change outside this is a failure, not motion
Grey = npt.NDArray[np.uint8]


@dataclass
class Step:
    """What happened to one track in one motion step."""

    moved: bool = False
    lk_lost: bool = False  # LK lost more than the allowed fraction of points
    csrt_started: bool = False
    failed: bool = False  # neither LK nor CSRT could follow the face


@dataclass
class Track:
    id: int
    face: Face  # frame pixels, as tracked (not stabilised)
    source: Source
    missed: int = 0  # consecutive frames the face was held
    csrt_start: int | None = None  # the frame index CSRT was started on
    csrt_box: Box | None = None  # the whole-pixel grey box it was started with
    csrt_face: Face | None = None  # the face when it was started
    fallback: BoxTracker | None = field(default=None, repr=False)

    def found(self, face: Face, source: Source) -> None:
        """A detector found the face: it replaces the tracked one and ends any CSRT run."""
        self.face, self.source, self.missed = face, source, 0
        self.stop_fallback()

    def stop_fallback(self) -> None:
        self.csrt_start = self.csrt_box = self.csrt_face = self.fallback = None

    def state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "face": face_state(self.face),
            "source": self.source,
            "missed": self.missed,
            "csrt_start": self.csrt_start,
            "csrt_box": None if self.csrt_box is None else list(self.csrt_box),
            "csrt_face": None if self.csrt_face is None else face_state(self.csrt_face),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Track:
        box = state["csrt_box"]
        return cls(
            id=int(state["id"]),
            face=face_from_state(state["face"]),
            source=state["source"],
            missed=int(state["missed"]),
            csrt_start=None if state["csrt_start"] is None else int(state["csrt_start"]),
            csrt_box=None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            csrt_face=None if state["csrt_face"] is None else face_from_state(state["csrt_face"]),
        )


def _grey_box(box: Box, sx: float, sy: float) -> Box:
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def follow(
    track: Track,
    previous: Grey,
    current: Grey,
    index: int,
    scale: tuple[float, float],
    lost_fraction: float,
    fb_threshold: float,
    kind: FallbackKind,
) -> Step:
    """Move `track` from the grey frame `previous` (index - 1) to `current` (index): by LK when it keeps
    enough points, else by the box tracker (started here if it is not running)."""
    step = Step()
    if _follow_points(track, previous, current, scale, lost_fraction, fb_threshold):
        track.stop_fallback()
        track.source, step.moved = "lk", True
        return step
    step.lk_lost = True
    sx, sy = scale
    if track.fallback is None or track.csrt_box is None or track.csrt_face is None:
        tracker = BoxTracker(kind)
        started = tracker.init(previous, _grey_box(track.face.box, sx, sy))
        if started is None:
            track.stop_fallback()
            step.failed = True
            return step
        track.fallback, track.csrt_start, track.csrt_box, track.csrt_face = (
            tracker,
            index - 1,
            started,
            track.face,
        )
        step.csrt_started = True
    assert track.csrt_box is not None and track.csrt_face is not None  # set just above or before
    box = track.fallback.update(current)
    if box is None:
        track.stop_fallback()
        step.failed = True
        return step
    factor, rotation, shift = box_motion(track.csrt_box, box)
    track.face = transform_face(track.csrt_face, factor, rotation, shift / np.array([sx, sy]))
    track.source, step.moved = "csrt", True
    if track.csrt_start is not None and index - track.csrt_start >= CSRT_REFRESH:
        restarted = track.fallback.init(current, _grey_box(track.face.box, sx, sy))
        if restarted is None:
            track.stop_fallback()
        else:
            track.csrt_start, track.csrt_box, track.csrt_face = index, restarted, track.face
    return step


def _follow_points(
    track: Track,
    previous: Grey,
    current: Grey,
    scale: tuple[float, float],
    lost_fraction: float,
    fb_threshold: float,
) -> bool:
    """Move the track's points by LK; False (the track unchanged) when too many are lost."""
    factor = np.array(scale)
    points = face_points(track.face).double().numpy()
    flow = track_points(previous, current, points * factor, fb_threshold)
    kept = int(flow.ok.sum())
    if kept < 2 or flow.lost_fraction > lost_fraction:
        return False
    moved = flow.points.astype(np.float64) / factor
    fit = fit_similarity(points[flow.ok], moved[flow.ok])
    if fit is None or not SCALE_RANGE[0] <= fit[0] <= SCALE_RANGE[1]:
        return False
    similarity, rotation, shift = fit
    placed = transform_points(torch.from_numpy(points), similarity, rotation, shift).numpy()
    placed[flow.ok] = moved[flow.ok]  # tracked points where they went; lost ones follow the rest
    box = transform_face(track.face, similarity, rotation, shift).box
    track.face = with_points(track.face, torch.from_numpy(placed), box)
    return True


def rebuild_fallback(track: Track, greys: Mapping[int, Grey], last: int, kind: FallbackKind) -> None:
    """Recreate the track's CSRT state by replaying frames csrt_start..last (after a restore)."""
    if track.csrt_start is None or track.csrt_box is None:
        return
    tracker = BoxTracker(kind)
    started = tracker.init(greys[track.csrt_start], track.csrt_box)
    for index in range(track.csrt_start + 1, last + 1):
        if started is None or tracker.update(greys[index]) is None:
            log.warning("track %d: CSRT replay lost the box at frame %d", track.id, index)
            track.stop_fallback()
            return
    track.fallback = tracker
