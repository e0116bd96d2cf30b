"""Per-face stabilisation: One-Euro smoothing of the points and box, a held roll, a smoothed head pose.

Why: detector and landmarker output jitters by a pixel or two from frame to frame even on a still face,
and a swapped face pasted back along those points shimmers. One-Euro filters (see one_euro) smooth the
still face hard and the moving face lightly. Their speed term is measured in face sizes per second, so a
level behaves the same on a 60 px face as on a 600 px one.

Roll gets a hold with hysteresis on top: the eye line of a real face wobbles by a degree or so, and a
rotating paste-back shows that more than any translation. The raw roll is lightly smoothed on its own
(a low-pass at `roll_cutoff` Hz, quicker than the points' filter so a real turn is not cut short). While
that roll stays within `roll_upper` degrees of the held roll, the held roll stays put; once it strays
further, the held roll follows it (an exponential chase with a 50 ms time constant, so a turn does not
snap) until it settles: the roll moves less than `roll_lower` degrees per 200 ms and the held roll is
within `roll_lower` of it. It is then held there again. The held roll is applied by turning the smoothed
points about their keypoints' centroid, so the returned face's `roll` is the held roll.

Yaw and pitch come from pose.head_pose on the raw points (68 landmarks when present, else the 5
keypoints) and are One-Euro smoothed; `FaceStabiliser.pose` holds the latest (yaw, pitch, and the roll of
the returned face). Times are seconds; state is plain data (`state()` / `from_state()`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.faces.types import Face, roll_degrees
from app.tracking.choices import StabiliserLevel as StabiliserLevel  # re-exported from its light home
from app.tracking.one_euro import OneEuroFilter
from app.tracking.pose import HeadPose, head_pose

log = logging.getLogger(__name__)

ROLL_FOLLOW_TAU = 0.05  # seconds: the time constant of the held roll's chase while it follows
ROLL_SETTLE = 0.2  # seconds: the roll has settled when it moves less than roll_lower in this time


@dataclass(frozen=True)
class StabiliserParams:
    min_cutoff: float  # Hz: the points' cutoff at rest
    beta: float  # Hz per (face size per second): how much motion opens the cutoff
    d_cutoff: float  # Hz: the speed estimate's own low-pass
    roll_cutoff: float  # Hz: the low-pass on the raw roll that the hold watches
    roll_upper: float  # degrees: a roll change beyond this starts following
    roll_lower: float  # degrees: following stops once the roll settles within this
    angle_min_cutoff: float  # Hz: yaw and pitch at rest
    angle_beta: float  # Hz per degree per second


PARAMS: dict[StabiliserLevel, StabiliserParams] = {
    # At 30 fps, for 1.5 px of jitter on a 120 px face drifting slowly, the points' jitter left is about
    # 47 / 42 / 38 %; a face crossing 2.5 face sizes a second trails by about 8 / 10 / 13 px.
    StabiliserLevel.LOW: StabiliserParams(1.5, 3.0, 1.0, 5.0, 1.0, 0.3, 1.5, 0.02),
    StabiliserLevel.MEDIUM: StabiliserParams(1.0, 2.0, 1.0, 4.0, 2.0, 0.5, 1.0, 0.01),
    StabiliserLevel.HIGH: StabiliserParams(0.5, 1.5, 1.0, 3.0, 3.0, 0.75, 0.5, 0.005),
}


def wrap_degrees(angle: float) -> float:
    """The angle in [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def turn_about(points: torch.Tensor, centre: torch.Tensor, degrees: float) -> torch.Tensor:
    """Points [N, 2] turned clockwise on screen (y down) by `degrees` about `centre`."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    turn = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    moved = (points.double() - centre.double()) @ turn.T + centre.double()
    return moved.to(points.dtype)


class FaceStabiliser:
    """Stabilises one face track. `update(face, t, frame_size)` per frame, in time order."""

    def __init__(self, level: StabiliserLevel | str = StabiliserLevel.MEDIUM) -> None:
        self.level = StabiliserLevel(level)
        params = PARAMS.get(self.level)
        self.params = params
        cutoff, d_cutoff = (params.min_cutoff, params.d_cutoff) if params else (1.0, 1.0)
        self._kps = OneEuroFilter(cutoff, 0.0, d_cutoff)
        self._landmarks = OneEuroFilter(cutoff, 0.0, d_cutoff)
        self._box = OneEuroFilter(cutoff, 0.0, d_cutoff)
        angle_cutoff, angle_beta = (params.angle_min_cutoff, params.angle_beta) if params else (1.0, 0.0)
        self._angles = OneEuroFilter(angle_cutoff, angle_beta, d_cutoff)
        self._roll = OneEuroFilter(params.roll_cutoff if params else 1.0, 0.0, d_cutoff)
        self._roll_seen: float | None = None  # the smoothed raw roll of the last update
        self._held_roll: float | None = None
        self._following = False
        self._t: float | None = None
        self.pose: HeadPose | None = None

    def reset(self) -> None:
        for one in (self._kps, self._landmarks, self._box, self._angles, self._roll):
            one.reset()
        self._held_roll, self._roll_seen, self._following, self._t, self.pose = None, None, False, None, None

    def update(self, face: Face, t: float, frame_size: tuple[int, int] | None = None) -> Face:
        """The stabilised face at time t (seconds). With a frame size (width, height), `pose` is updated
        too (None without one, or when the solver fails)."""
        raw_pose = self._raw_pose(face, frame_size)
        params = self.params
        if params is None:
            self.pose = raw_pose
            self._t = t
            return face
        dt = None if self._t is None else t - self._t
        self._t = t
        beta = params.beta / max(face.size, 1.0)  # speed in face sizes per second
        self._kps.beta = self._landmarks.beta = self._box.beta = beta
        kps = torch.from_numpy(self._kps(face.kps.double().numpy(), t)).to(face.kps.dtype)
        box = tuple(float(v) for v in self._box(np.asarray(face.box, dtype=np.float64), t))
        landmarks = None
        if face.landmarks is not None:
            smoothed = self._landmarks(face.landmarks.double().numpy(), t)
            landmarks = torch.from_numpy(smoothed).to(face.landmarks.dtype)
        held = self._hold_roll(face.roll, t, dt, params)
        turn = wrap_degrees(held - roll_degrees(kps))
        if turn != 0.0:
            centre = kps.double().mean(dim=0)
            kps = turn_about(kps, centre, turn)
            landmarks = None if landmarks is None else turn_about(landmarks, centre, turn)
        self.pose = self._smoothed_pose(raw_pose, held, t)
        return dataclasses.replace(face, box=(box[0], box[1], box[2], box[3]), kps=kps, landmarks=landmarks)

    def _raw_pose(self, face: Face, frame_size: tuple[int, int] | None) -> HeadPose | None:
        if frame_size is None:
            return None
        dense = face.landmarks is not None and tuple(face.landmarks.shape) == (68, 2)
        return head_pose(face.landmarks if dense and face.landmarks is not None else face.kps, frame_size)

    def _smoothed_pose(self, raw: HeadPose | None, roll: float, t: float) -> HeadPose | None:
        if raw is None:
            return None
        yaw, pitch = self._angles(np.array([raw.yaw, raw.pitch]), t).tolist()
        return HeadPose(yaw, pitch, roll)

    def _hold_roll(self, raw: float, t: float, dt: float | None, params: StabiliserParams) -> float:
        """The held roll after seeing the face's raw roll (the hysteresis in the module docstring)."""
        last = self._roll_seen
        unwrapped = raw if last is None else last + wrap_degrees(raw - last)  # no jump at ±180°
        roll = float(self._roll(np.array([unwrapped]), t)[0])
        self._roll_seen = roll
        if self._held_roll is None or last is None or dt is None or dt <= 0:
            self._held_roll, self._following = wrap_degrees(roll), False
            return self._held_roll
        held = self._held_roll
        if not self._following and abs(wrap_degrees(roll - held)) > params.roll_upper:
            self._following = True
        if self._following:
            held = wrap_degrees(held + (1.0 - math.exp(-dt / ROLL_FOLLOW_TAU)) * wrap_degrees(roll - held))
            settled = abs(roll - last) * ROLL_SETTLE / dt < params.roll_lower
            if settled and abs(wrap_degrees(roll - held)) < params.roll_lower:
                self._following = False
        self._held_roll = held
        return held

    def state(self) -> dict[str, Any]:
        return {
            "level": str(self.level),
            "kps": self._kps.state(),
            "landmarks": self._landmarks.state(),
            "box": self._box.state(),
            "angles": self._angles.state(),
            "roll": self._roll.state(),
            "roll_seen": self._roll_seen,
            "held_roll": self._held_roll,
            "following": self._following,
            "t": self._t,
            "pose": None if self.pose is None else list(self.pose.as_tuple()),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FaceStabiliser:
        restored = cls(state["level"])
        restored._kps = OneEuroFilter.from_state(state["kps"])
        restored._landmarks = OneEuroFilter.from_state(state["landmarks"])
        restored._box = OneEuroFilter.from_state(state["box"])
        restored._angles = OneEuroFilter.from_state(state["angles"])
        restored._roll = OneEuroFilter.from_state(state["roll"])
        restored._roll_seen = None if state["roll_seen"] is None else float(state["roll_seen"])
        restored._held_roll = None if state["held_roll"] is None else float(state["held_roll"])
        restored._following = bool(state["following"])
        restored._t = None if state["t"] is None else float(state["t"])
        pose = state["pose"]
        restored.pose = None if pose is None else HeadPose(*(float(v) for v in pose))
        return restored


class TrackedStabiliser:
    """One FaceStabiliser per track id: faces keep their own filters, and a track that ends takes its
    stabiliser with it."""

    def __init__(self, level: StabiliserLevel | str = StabiliserLevel.MEDIUM) -> None:
        self.level = StabiliserLevel(level)
        self._tracks: dict[int, FaceStabiliser] = {}

    def update(
        self,
        track_ids: Sequence[int],
        faces: Sequence[Face],
        t: float,
        frame_size: tuple[int, int] | None = None,
    ) -> list[tuple[Face, HeadPose | None]]:
        """The stabilised face and smoothed pose of each (track id, face), in the order given."""
        if len(track_ids) != len(faces):
            raise ValueError(f"TrackedStabiliser: {len(track_ids)} track ids for {len(faces)} faces")
        for gone in set(self._tracks) - set(track_ids):
            del self._tracks[gone]
        results = []
        for track_id, face in zip(track_ids, faces, strict=True):
            stabiliser = self._tracks.setdefault(track_id, FaceStabiliser(self.level))
            results.append((stabiliser.update(face, t, frame_size), stabiliser.pose))
        return results

    def reset(self) -> None:
        self._tracks.clear()

    def state(self) -> dict[str, Any]:
        return {"level": str(self.level), "tracks": [[k, v.state()] for k, v in sorted(self._tracks.items())]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrackedStabiliser:
        restored = cls(state["level"])
        restored._tracks = {int(k): FaceStabiliser.from_state(v) for k, v in state["tracks"]}
        return restored
