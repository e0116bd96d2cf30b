"""FaceTracker on a real clip with the real SCRFD detector, with faults injected around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from app.faces.types import Face, VisionFrame
from app.tracking import FaceTracker, TrackingSettings, TrackResult
from app.tracking.geometry import iou
from app.tracking.serial import StateError
from tests.tracking.clips import Blackout, MemoDetector, two_faces


def kps_error(face: Face, truth: Face) -> float:
    """The largest keypoint distance in pixels."""
    return float((face.kps - truth.kps).norm(dim=1).max())


def run(
    tracker: FaceTracker, frames: list[VisionFrame], blackout: Blackout | None = None
) -> list[TrackResult]:
    results = []
    for index, frame in enumerate(frames):
        if blackout is not None:
            blackout.frame = index
        results.append(tracker.track(frame))
    return results


def test_a_detection_blackout_is_bridged_by_optical_flow(
    clip: list[VisionFrame], truth: list[Face], detect: MemoDetector
) -> None:
    blackout = Blackout(detect, dark=range(10, 20))
    tracker = FaceTracker(blackout, TrackingSettings(interval=1))
    results = run(tracker, clip, blackout)
    assert [len(r.faces) for r in results] == [1] * len(clip)
    assert {r.track_ids[0] for r in results} == {1}  # one identity throughout
    assert [r.sources[0] for r in results[10:20]] == ["lk"] * 10
    assert (
        results[0].sources == ["detect"] and results[9].sources == ["roi"] and results[20].sources == ["roi"]
    )
    errors = [kps_error(r.faces[0], t) for r, t in zip(results, truth, strict=True)]
    assert max(errors[10:20]) < 5.0, errors  # a face of ~140 × 190 px
    assert tracker.totals.new_tracks == 1 and tracker.totals.held == 0
    assert sum(r.events.full_frame for r in results[10:20]) == 10  # an empty region falls back to the frame


def test_lk_losing_its_points_hands_the_box_to_csrt(
    clip: list[VisionFrame], truth: list[Face], detect: MemoDetector
) -> None:
    # An impossible forward-backward limit: LK loses every point on every frame.
    tracker = FaceTracker(detect, TrackingSettings(interval=300, fb_threshold=1e-9))
    results = run(tracker, clip)
    assert [r.sources for r in results[1:]] == [["csrt"]] * (len(clip) - 1)
    assert results[1].events.csrt_takeovers == 1 and tracker.totals.csrt_takeovers == 1
    assert tracker.totals.lk_losses == len(clip) - 1 and tracker.totals.detector_calls == 1
    for result, face in zip(results, truth, strict=True):
        assert iou(result.faces[0].box, face.box) > 0.85
        assert kps_error(result.faces[0], face) < 8.0  # the points follow the box


def test_a_face_nothing_can_follow_is_held_then_dropped(
    clip: list[VisionFrame], detect: MemoDetector
) -> None:
    frames = [frame.clone() for frame in clip[:20]]
    noise = torch.Generator().manual_seed(7)
    for frame in frames[10:]:  # the face's surroundings turn to fresh noise every frame
        frame[0:340, 80:480] = torch.randint(0, 256, (340, 400, 3), generator=noise, dtype=torch.uint8)
    blackout = Blackout(detect, dark=range(10, 20))
    tracker = FaceTracker(blackout, TrackingSettings(interval=1, hold_frames=4))
    results = run(tracker, frames, blackout)
    assert [r.sources for r in results[10:15]] == [["held"]] * 4 + [[]]
    assert results[10].events.tracker_losses == 1
    last_seen = results[9].faces[0]
    assert all(
        r.faces[0].box == last_seen.box and torch.equal(r.faces[0].kps, last_seen.kps) for r in results[10:14]
    )
    assert results[13].track_ids == results[9].track_ids
    assert results[14].events.dropped == 1 and tracker.totals.dropped == 1
    assert all(r.faces == [] for r in results[14:])


def test_two_faces_keep_their_own_identities(test_assets: Path, detect: MemoDetector) -> None:
    frames = two_faces(test_assets / "astronaut.png")
    tracker = FaceTracker(detect, TrackingSettings(interval=3))
    results = run(tracker, frames)
    assert [len(r.faces) for r in results] == [2] * len(frames)
    assert {tuple(r.track_ids) for r in results} == {(1, 2)}
    first = {t.track_id: t.face.box[0] for t in results[0].tracks}
    last = {t.track_id: t.face.box[0] for t in results[-1].tracks}
    left, right = sorted(first, key=first.__getitem__)
    assert last[left] == pytest.approx(first[left] + 2 * (len(frames) - 1), abs=3)  # moving right
    assert last[right] == pytest.approx(first[right] - 2 * (len(frames) - 1), abs=3)  # moving left
    assert {"lk", "roi"} <= {source for r in results for source in r.sources}


def test_detection_every_few_frames_tracks_in_between(
    clip: list[VisionFrame], truth: list[Face], detect: MemoDetector
) -> None:
    tracker = FaceTracker(detect, TrackingSettings(interval=5, full_detect_every=0))
    results = run(tracker, clip)
    assert [r.detected for r in results[:6]] == [True, False, False, False, False, True]
    assert [r.sources[0] for r in results[:6]] == ["detect", "lk", "lk", "lk", "lk", "roi"]
    assert tracker.totals.detector_calls == 8  # one full frame, then only regions
    assert max(kps_error(r.faces[0], t) for r, t in zip(results, truth, strict=True)) < 5.0


@pytest.mark.parametrize(
    "settings",
    [
        TrackingSettings(interval=3, stabiliser="medium"),
        TrackingSettings(interval=300, fb_threshold=1e-9, stabiliser="high"),  # CSRT runs across the cut
    ],
    ids=["lk-and-regions", "csrt"],
)
def test_a_restored_state_continues_exactly(
    settings: TrackingSettings, clip: list[VisionFrame], detect: MemoDetector
) -> None:
    first = FaceTracker(detect, settings)
    run(first, clip[:20])
    saved = first.state()
    expected = run(first, clip[20:30])
    second = FaceTracker(detect, settings)
    run(second, clip[30:33])  # whatever it did before is replaced
    second.restore(saved)
    again = run(second, clip[20:30])
    for one, other in zip(expected, again, strict=True):
        assert (one.index, one.sources, one.track_ids, one.events) == (
            other.index,
            other.sources,
            other.track_ids,
            other.events,
        )
        for a, b in zip(one.tracks, other.tracks, strict=True):
            assert a.face.box == b.face.box and torch.equal(a.face.kps, b.face.kps)
            assert a.raw.box == b.raw.box and torch.equal(a.raw.kps, b.raw.kps)
            assert a.pose == b.pose
    assert first.totals == second.totals


def test_faces_come_stabilised_per_track_with_their_pose(
    clip: list[VisionFrame], detect: MemoDetector
) -> None:
    tracker = FaceTracker(detect, TrackingSettings(interval=2, stabiliser="medium"))
    results = run(tracker, clip[:8])
    assert torch.equal(results[0].faces[0].kps, results[0].tracks[0].raw.kps)  # a first sample passes
    last = results[-1].tracks[0]
    assert not torch.equal(last.face.kps, last.raw.kps)
    assert float((last.face.kps - last.raw.kps).norm(dim=1).max()) < 10.0  # smoothing, not wandering off
    assert last.pose is not None and abs(last.pose.yaw) < 10  # pitch from 5 points: see pose's docstring


def test_restore_refuses_foreign_bytes(detect: MemoDetector) -> None:
    with pytest.raises(StateError):
        FaceTracker(detect).restore(b"not a state")


def test_reset_starts_over_with_a_full_frame_detection(clip: list[VisionFrame], detect: MemoDetector) -> None:
    tracker = FaceTracker(detect, TrackingSettings(interval=4))
    run(tracker, clip[:6])
    tracker.reset()
    result = tracker.track(clip[30])
    assert (result.index, result.sources, result.track_ids) == (0, ["detect"], [1])


def test_tracking_off_detects_every_frame_and_keeps_identities(
    clip: list[VisionFrame], detect: MemoDetector
) -> None:
    tracker = FaceTracker(detect, TrackingSettings(enabled=False, interval=5))
    results = run(tracker, clip[:4])
    assert [(r.sources, r.track_ids, r.detected) for r in results] == [(["detect"], [1], True)] * 4


def test_a_given_grey_image_is_used_at_its_own_scale(
    clip: list[VisionFrame], truth: list[Face], detect: MemoDetector
) -> None:
    import cv2

    tracker = FaceTracker(detect, TrackingSettings(interval=6))
    for frame in clip[:6]:  # the caller's grey image, at half size
        grey = np.asarray(cv2.cvtColor(frame.numpy(), cv2.COLOR_RGB2GRAY)[::2, ::2], dtype=np.uint8).copy()
        result = tracker.track(frame, grey=grey)
    assert result.sources == ["lk"]
    assert kps_error(result.faces[0], truth[5]) < 5.0


def test_settings_are_validated_and_serialise_as_json() -> None:
    for bad in (
        {"roi_padding": 0.2},
        {"roi_padding": 0.5},
        {"hold_frames": 2},
        {"hold_frames": 6},
        {"interval": 0},
    ):
        with pytest.raises(ValidationError):
            TrackingSettings(**bad)
    settings = TrackingSettings(interval=3, stabiliser="low", fallback="kcf")
    assert TrackingSettings.model_validate_json(settings.model_dump_json()) == settings
    with pytest.raises(ValidationError):
        settings.interval = 2  # type: ignore[misc]
