"""The face stabiliser on synthetic faces: jitter cut, motion followed, roll held with hysteresis."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from app.faces.types import Face
from app.tracking.stabiliser import FaceStabiliser, StabiliserLevel, TrackedStabiliser
from tests.support.faces import face_at

FPS = 30.0
SIZE = (640, 480)


def drifting(frames: int = 120) -> list[Face]:
    """A 120 px face drifting slowly (15 px/s right, 6 px/s down)."""
    return [face_at(300 + 0.5 * i, 240 + 0.2 * i, 120) for i in range(frames)]


def jittered(faces: list[Face], sigma: float, seed: int = 0) -> list[Face]:
    noise = torch.Generator().manual_seed(seed)
    return [dataclasses.replace(f, kps=f.kps + torch.randn(5, 2, generator=noise) * sigma) for f in faces]


def stabilised(level: StabiliserLevel, faces: list[Face]) -> list[Face]:
    stabiliser = FaceStabiliser(level)
    return [stabiliser.update(face, i / FPS, SIZE) for i, face in enumerate(faces)]


def jitter(faces: list[Face], clean: list[Face], skip: int = 15) -> float:
    """The spread over time of each coordinate's error against the clean trajectory (mean over points)."""
    error = torch.stack([f.kps - c.kps for f, c in zip(faces[skip:], clean[skip:], strict=True)])
    return float(error.std(dim=0).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_medium_cuts_landmark_jitter_by_more_than_half(seed: int) -> None:
    clean = drifting()
    noisy = jittered(clean, 1.5, seed)
    before = jitter(noisy, clean)
    assert jitter(stabilised(StabiliserLevel.MEDIUM, noisy), clean) < 0.5 * before
    assert jitter(stabilised(StabiliserLevel.HIGH, noisy), clean) < jitter(
        stabilised(StabiliserLevel.LOW, noisy), clean
    )


def test_off_leaves_faces_unchanged_but_still_reports_the_pose() -> None:
    noisy = jittered(drifting(10), 1.5)
    stabiliser = FaceStabiliser(StabiliserLevel.OFF)
    for i, face in enumerate(noisy):
        assert stabiliser.update(face, i / FPS, SIZE) is face
        assert stabiliser.pose is not None


def test_a_real_movement_is_followed_with_bounded_lag() -> None:
    # Still, then 300 px/s (2.5 face sizes a second) for 20 frames, then still again.
    path = [200 + 10 * min(max(i - 10, 0), 20) for i in range(60)]
    clean = [face_at(x, 240, 120) for x in path]
    for level in (StabiliserLevel.LOW, StabiliserLevel.MEDIUM, StabiliserLevel.HIGH):
        out = stabilised(level, clean)
        lag = [float((o.kps - c.kps).norm(dim=1).max()) for o, c in zip(out, clean, strict=True)]
        assert max(lag) < 15.0, (level, max(lag))  # an eighth of the face at most
        assert max(lag[36:]) < 0.5, (level, lag[36:])  # settled within 6 frames of stopping
        box_lag = max(abs(o.box[0] - c.box[0]) for o, c in zip(out, clean, strict=True))
        assert box_lag < 15.0


def test_dense_landmarks_are_smoothed_with_the_keypoints() -> None:
    clean = drifting(60)
    noise = torch.Generator().manual_seed(3)
    with_landmarks = [
        dataclasses.replace(f, landmarks=f.kps.repeat(4, 1) + torch.randn(20, 2, generator=noise) * 1.5)
        for f in clean
    ]
    out = stabilised(StabiliserLevel.MEDIUM, with_landmarks)
    error = torch.stack([o.landmarks - c.kps.repeat(4, 1) for o, c in zip(out[15:], clean[15:], strict=True)])  # type: ignore[operator]
    assert float(error.std(dim=0).mean()) < 0.75


def test_roll_wobble_is_held_a_turn_is_followed_and_then_held_again() -> None:
    stabiliser = FaceStabiliser(StabiliserLevel.MEDIUM)  # hold within 2°, settle within 0.5°
    rolls = [1.2 * (-1) ** i for i in range(30)]  # ±1.2° wobble
    rolls += [12.0] * 30  # a real turn
    rolls += [12.0 + 1.5 * (-1) ** i for i in range(30)]  # wobble around the new roll
    rolls += [12.0 + 0.5 * i for i in range(30)]  # a slow steady turn, 15°/s
    out = [stabiliser.update(face_at(320, 240, 120, roll=r), i / FPS).roll for i, r in enumerate(rolls)]
    held = out[0]
    assert all(abs(r - held) < 1e-3 for r in out[:30])  # the wobble is held still
    assert out[31] - out[30] < 3.0 and out[35] > 10.0  # the turn is followed promptly, without a snap
    settled = out[59]
    assert abs(settled - 12.0) < 0.5  # until it settles within the lower threshold
    assert all(abs(r - settled) < 1e-3 for r in out[45:90])  # and the new roll is held through the wobble
    steps = [b - a for a, b in itertools.pairwise(out[90:])]
    assert max(steps) < 1.5  # catching up after the hold does not snap
    assert all(0.45 < step < 0.6 for step in steps[10:])  # and then a steady turn is followed, not in stairs
    assert abs(out[-1] - rolls[-1]) < 1.5  # trailing by a tenth of a second


def test_a_roll_across_180_degrees_does_not_spin_round() -> None:
    stabiliser = FaceStabiliser(StabiliserLevel.MEDIUM)
    rolls = [178.0 + 1.0 * i for i in range(6)]  # 178° … 183° (= -177°)
    out = [stabiliser.update(face_at(320, 240, 120, roll=r), i / FPS).roll for i, r in enumerate(rolls)]
    assert all(abs(((r - 180.0) + 180.0) % 360.0 - 180.0) < 6.0 for r in out)


def test_the_pose_is_smoothed_and_needs_a_frame_size() -> None:
    blind = FaceStabiliser(StabiliserLevel.MEDIUM)
    blind.update(face_at(320, 240, 120), 0.0)
    assert blind.pose is None
    stabiliser = FaceStabiliser(StabiliserLevel.MEDIUM)
    for i, face in enumerate(jittered(drifting(30), 1.0)):
        stabiliser.update(face, i / FPS, SIZE)
    pose = stabiliser.pose
    assert pose is not None and abs(pose.yaw) < 5 and abs(pose.pitch) < 5


def test_state_round_trip_continues_exactly() -> None:
    faces = jittered(drifting(40), 1.5)
    one = FaceStabiliser(StabiliserLevel.HIGH)
    for i, face in enumerate(faces[:20]):
        one.update(face, i / FPS, SIZE)
    other = FaceStabiliser.from_state(one.state())
    for i, face in enumerate(faces[20:], 20):
        a, b = one.update(face, i / FPS, SIZE), other.update(face, i / FPS, SIZE)
        assert a.box == b.box and torch.equal(a.kps, b.kps) and one.pose == other.pose


def test_tracks_have_their_own_stabilisers() -> None:
    tracked = TrackedStabiliser(StabiliserLevel.MEDIUM)
    left, right = face_at(150, 240, 100), face_at(450, 240, 100)
    tracked.update([1, 2], [left, right], 0.0)
    moved = face_at(160, 240, 100)
    [(alone, _)] = tracked.update([1], [moved], 1 / FPS)  # track 2 ended: its filter goes
    solo = FaceStabiliser(StabiliserLevel.MEDIUM)
    solo.update(left, 0.0)
    assert torch.equal(alone.kps, solo.update(moved, 1 / FPS).kps)
    [(fresh, _)] = tracked.update([2], [right], 2 / FPS)  # a returning id starts afresh
    assert torch.equal(fresh.kps, right.kps)
    restored = TrackedStabiliser.from_state(tracked.state())
    assert restored.state().keys() == tracked.state().keys()
