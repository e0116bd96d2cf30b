"""FaceTracker: faces with stable identities in every frame, for a fraction of the detector's cost.

Why: running the detector on every frame of a video is the slowest part of analysis, and its keypoints
jitter. The tracker detects every `interval` frames — inside a padded region around each tracked face
first (a small crop: cheaper and steadier), the whole frame only when a region comes back empty, when
nothing is tracked, or every `full_detect_every` frames to pick up newcomers. In between, LK optical
flow moves each face's points; when LK loses more than `lost_fraction` of them, CSRT moves the box and
the points follow it. When the detector finds nothing (a blackout: blur, a hand, a cut that fails it)
tracks keep going on flow alone; only when that fails too is the last good face held for `hold_frames`
frames, then dropped. Each face carries a track id, so the optional stabiliser works per face.

Called once per frame, in frame order, from one thread. Flow runs on a small grey host copy of the frame
(see grey). `state()` / `restore()` carry everything (tracks, the grey frames CSRT needs to be replayed,
the stabilisers) so a resumed export reproduces an uninterrupted one exactly; `reset()` is for seeks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from app.faces.types import Face, VisionFrame, check_frame
from app.tracking import serial
from app.tracking.fallback import FallbackKind
from app.tracking.geometry import iou, padded_region, shift_face
from app.tracking.grey import MAX_WIDTH, to_grey
from app.tracking.pose import HeadPose
from app.tracking.stabiliser import StabiliserLevel, TrackedStabiliser
from app.tracking.track import Source, Track, follow, rebuild_fallback

log = logging.getLogger(__name__)

Detect = Callable[[VisionFrame], list[Face]]
DEFAULT_FPS = 30.0  # frame times when the caller gives none
MATCH_IOU = 0.2  # a detection is the tracked face when their boxes overlap at least this much
SAME_IOU = 0.5  # two faces overlapping this much are one face
STATE_VERSION = 1


class TrackingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True  # off: full-frame detection on every frame (identities are still matched)
    interval: int = Field(default=1, ge=1, le=300)  # detect on every Nth frame; 1: every frame
    lost_fraction: float = Field(default=0.5, ge=0.0, le=1.0)  # LK losing more than this -> CSRT
    roi_padding: float = Field(default=0.3, ge=0.25, le=0.40)  # each side, in box sides
    hold_frames: int = Field(default=4, ge=3, le=5)  # frames a lost face is held before it is dropped
    full_detect_every: int = Field(default=30, ge=0)  # frames; 0: only when a region finds nothing
    fallback: FallbackKind = "csrt"
    fb_threshold: float = Field(default=1.0, gt=0.0)  # LK forward-backward error limit, grey pixels
    max_grey_width: int = Field(default=MAX_WIDTH, ge=160, le=4096)
    stabiliser: StabiliserLevel = StabiliserLevel.OFF


@dataclass(frozen=True)
class TrackEvents:
    """What the tracker did in one frame (or, summed, since the last reset): for telemetry."""

    detector_calls: int = 0
    full_frame: int = 0  # whole-frame detections
    roi_hits: int = 0  # tracked faces found again in their region
    roi_misses: int = 0
    lk_losses: int = 0  # tracks where LK lost more than lost_fraction of the points
    csrt_takeovers: int = 0  # CSRT runs started
    tracker_losses: int = 0  # tracks neither LK nor CSRT could follow
    held: int = 0  # faces reported from memory
    dropped: int = 0  # tracks ended after being held too long
    new_tracks: int = 0

    def __add__(self, other: TrackEvents) -> TrackEvents:
        return TrackEvents(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(TrackEvents))
        )


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    face: Face  # stabilised when a stabiliser level is set, else the same as `raw`
    source: Source
    raw: Face  # as tracked
    pose: HeadPose | None  # yaw/pitch (smoothed when stabilising) and the face's roll


@dataclass(frozen=True)
class TrackResult:
    index: int  # frames since the last reset
    detected: bool  # a detection frame
    tracks: list[TrackedFace]  # in track-id order (oldest first)
    events: TrackEvents

    @property
    def faces(self) -> list[Face]:
        return [t.face for t in self.tracks]

    @property
    def sources(self) -> list[Source]:
        return [t.source for t in self.tracks]

    @property
    def track_ids(self) -> list[int]:
        return [t.track_id for t in self.tracks]


class FaceTracker:
    def __init__(self, detect: Detect, settings: TrackingSettings | None = None) -> None:
        self.detect = detect
        self.settings = settings or TrackingSettings()
        self.stabiliser = TrackedStabiliser(self.settings.stabiliser)
        self._tracks: list[Track] = []
        self._greys: dict[int, npt.NDArray[np.uint8]] = {}
        self._index = 0
        self._next_id = 1
        self._frame_size: tuple[int, int] | None = None  # (width, height) of the frames tracked
        self.totals = TrackEvents()

    def reset(self) -> None:
        """Forget every track and frame (after a seek or a change of source)."""
        self._tracks, self._greys, self._index, self._next_id = [], {}, 0, 1
        self._frame_size = None
        self.stabiliser.reset()
        self.totals = TrackEvents()

    def track(
        self, frame: VisionFrame, grey: npt.NDArray[np.uint8] | None = None, t: float | None = None
    ) -> TrackResult:
        """The faces of the next frame. `grey`: the caller's grey uint8 [h, w] host copy of the frame,
        at any scale (made here otherwise); `t`: its time in seconds (index / 30 otherwise)."""
        check_frame(frame)
        size = (int(frame.shape[1]), int(frame.shape[0]))
        if self._frame_size is not None and size != self._frame_size:
            log.info("frame size changed %s -> %s: tracking restarts", self._frame_size, size)
            self.reset()
        self._frame_size = size
        grey = to_grey(frame, self.settings.max_grey_width) if grey is None else _checked_grey(grey)
        index, self._index = self._index, self._index + 1
        events = _Counts()
        previous = self._greys.get(index - 1)
        if previous is not None and previous.shape != grey.shape:
            previous = None
        updated: set[int] = set()
        detected = not self.settings.enabled or index % self.settings.interval == 0
        if self.settings.enabled and previous is not None:
            scale = (grey.shape[1] / size[0], grey.shape[0] / size[1])
            updated |= self._follow_all(previous, grey, index, scale, events)
        if detected:
            updated |= self._detect(frame, index, events)
        self._age(updated, events)
        self._greys[index] = grey
        self._prune_greys(index)
        result = self._result(index, detected, events.frozen(), size, index / DEFAULT_FPS if t is None else t)
        self.totals = self.totals + result.events
        return result

    def _follow_all(
        self,
        previous: npt.NDArray[np.uint8],
        current: npt.NDArray[np.uint8],
        index: int,
        scale: tuple[float, float],
        events: _Counts,
    ) -> set[int]:
        moved = set()
        settings = self.settings
        for track in self._tracks:
            if track.source == "held":
                continue
            step = follow(
                track,
                previous,
                current,
                index,
                scale,
                settings.lost_fraction,
                settings.fb_threshold,
                settings.fallback,
            )
            events.lk_losses += step.lk_lost
            events.csrt_takeovers += step.csrt_started
            events.tracker_losses += step.failed
            if step.moved:
                moved.add(track.id)
        return moved

    def _detect(self, frame: VisionFrame, index: int, events: _Counts) -> set[int]:
        """Find tracked faces again (regions first), start tracks for new ones; the ids found."""
        if not self.settings.enabled:
            events.detector_calls += 1
            events.full_frame += 1
            return self._match_full(self.detect(frame), set(), events, end_unmatched=True)
        found: set[int] = set()
        claimed: list[Face] = []
        for track in self._tracks:
            face = self._detect_in_region(frame, track, claimed, events)
            if face is None:
                events.roi_misses += 1
                continue
            events.roi_hits += 1
            track.found(face, "roi")
            claimed.append(face)
            found.add(track.id)
        every = self.settings.full_detect_every
        if not self._tracks or len(found) < len(self._tracks) or (every and index % every == 0):
            faces = [f for f in self.detect(frame) if all(iou(f.box, c.box) <= SAME_IOU for c in claimed)]
            events.detector_calls += 1
            events.full_frame += 1
            found |= self._match_full(faces, found, events)
        return found

    def _detect_in_region(
        self, frame: VisionFrame, track: Track, claimed: list[Face], events: _Counts
    ) -> Face | None:
        height, width = int(frame.shape[0]), int(frame.shape[1])
        region = padded_region(track.face.box, self.settings.roi_padding, width, height)
        if region is None:
            return None
        x1, y1, x2, y2 = region
        faces = self.detect(frame[y1:y2, x1:x2].contiguous())
        events.detector_calls += 1
        candidates = [shift_face(f, float(x1), float(y1)) for f in faces]
        candidates = [f for f in candidates if all(iou(f.box, c.box) <= SAME_IOU for c in claimed)]
        if not candidates:
            return None
        best = max(candidates, key=lambda f: iou(f.box, track.face.box))
        return best if iou(best.box, track.face.box) >= MATCH_IOU else None

    def _match_full(
        self, faces: list[Face], found: set[int], events: _Counts, end_unmatched: bool = False
    ) -> set[int]:
        """Give whole-frame detections to the tracks not found yet (best overlap first); the rest start
        new tracks. With `end_unmatched` (tracking off), tracks left without a detection end at once."""
        open_tracks = [t for t in self._tracks if t.id not in found]
        pairs = sorted(
            ((iou(t.face.box, f.box), -t.id, -i) for t in open_tracks for i, f in enumerate(faces)),
            reverse=True,
        )
        matched: set[int] = set()
        used: set[int] = set()
        for overlap, negative_id, negative_i in pairs:
            if overlap < MATCH_IOU:
                break
            track_id, i = -negative_id, -negative_i
            if track_id in matched or i in used:
                continue
            next(t for t in self._tracks if t.id == track_id).found(faces[i], "detect")
            matched.add(track_id)
            used.add(i)
        if end_unmatched:
            self._tracks = [t for t in self._tracks if t.id in matched]
        for i, face in enumerate(faces):
            if i not in used:
                self._tracks.append(Track(self._next_id, face, "detect"))
                matched.add(self._next_id)
                self._next_id += 1
                events.new_tracks += 1
        return matched

    def _age(self, updated: set[int], events: _Counts) -> None:
        """Hold the faces nothing found or followed this frame; drop those held too long, and duplicates."""
        kept: list[Track] = []
        for track in self._tracks:
            if track.id not in updated:
                track.source, track.missed = "held", track.missed + 1
                track.stop_fallback()
                if track.missed > self.settings.hold_frames:
                    events.dropped += 1
                    log.debug("track %d dropped after %d frames held", track.id, track.missed - 1)
                    continue
                events.held += 1
            kept.append(track)
        rank: dict[Source, int] = {"roi": 0, "detect": 0, "lk": 1, "csrt": 2, "held": 3}
        unique: list[Track] = []
        for track in sorted(kept, key=lambda t: (rank[t.source], t.id)):
            if all(iou(track.face.box, u.face.box) <= SAME_IOU for u in unique):
                unique.append(track)
            else:
                events.dropped += 1
                events.held -= track.source == "held"
        self._tracks = sorted(unique, key=lambda t: t.id)

    def _prune_greys(self, index: int) -> None:
        starts = [t.csrt_start for t in self._tracks if t.csrt_start is not None]
        first = min([index, *starts])
        self._greys = {i: g for i, g in self._greys.items() if i >= first}

    def _result(
        self, index: int, detected: bool, events: TrackEvents, size: tuple[int, int], t: float
    ) -> TrackResult:
        ids = [track.id for track in self._tracks]
        raw = [track.face for track in self._tracks]
        stabilised = self.stabiliser.update(ids, raw, t, size)
        tracks = [
            TrackedFace(track.id, face, track.source, track.face, pose)
            for track, (face, pose) in zip(self._tracks, stabilised, strict=True)
        ]
        return TrackResult(index, detected, tracks, events)

    def state(self) -> bytes:
        """Everything needed to continue exactly where this tracker is, as bytes."""
        return serial.pack(
            {
                "version": STATE_VERSION,
                "settings": self.settings.model_dump(mode="json"),
                "index": self._index,
                "next_id": self._next_id,
                "frame_size": None if self._frame_size is None else list(self._frame_size),
                "greys": [[i, g] for i, g in sorted(self._greys.items())],
                "tracks": [track.state() for track in self._tracks],
                "totals": dataclasses.asdict(self.totals),
                "stabiliser": self.stabiliser.state(),
            }
        )

    def restore(self, data: bytes) -> None:
        """Continue from a `state()`; the tracker keeps its own detector and settings."""
        state = serial.unpack(data)
        if state.get("version") != STATE_VERSION:
            raise serial.StateError(f"state: version {state.get('version')} is not {STATE_VERSION}")
        if state["settings"] != self.settings.model_dump(mode="json"):
            log.warning("restoring a tracker state saved with other settings")
        self._index, self._next_id = int(state["index"]), int(state["next_id"])
        size = state["frame_size"]
        self._frame_size = None if size is None else (int(size[0]), int(size[1]))
        self._greys = {int(i): np.ascontiguousarray(g, dtype=np.uint8) for i, g in state["greys"]}
        self._tracks = [Track.from_state(s) for s in state["tracks"]]
        for track in self._tracks:
            rebuild_fallback(track, self._greys, self._index - 1, self.settings.fallback)
        self.totals = TrackEvents(**state["totals"])
        self.stabiliser = TrackedStabiliser.from_state(state["stabiliser"])
        if self.stabiliser.level != self.settings.stabiliser:
            self.stabiliser = TrackedStabiliser(self.settings.stabiliser)


@dataclass
class _Counts:
    """TrackEvents while a frame is being worked on."""

    detector_calls: int = 0
    full_frame: int = 0
    roi_hits: int = 0
    roi_misses: int = 0
    lk_losses: int = 0
    csrt_takeovers: int = 0
    tracker_losses: int = 0
    held: int = 0
    dropped: int = 0
    new_tracks: int = 0

    def frozen(self) -> TrackEvents:
        return TrackEvents(**dataclasses.asdict(self))


def _checked_grey(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if not isinstance(grey, np.ndarray) or grey.dtype != np.uint8 or grey.ndim != 2:
        what = f"{grey.dtype} {list(grey.shape)}" if isinstance(grey, np.ndarray) else type(grey).__name__
        raise ValueError(f"FaceTracker.track: grey must be a uint8 [h, w] numpy image, got {what}")
    return np.ascontiguousarray(grey)
