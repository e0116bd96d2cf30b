"""One track's motion step on a textured image: LK carries keypoints and landmarks, CSRT the box."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from app.faces.types import Face
from app.tracking.geometry import face_from_state, face_state
from app.tracking.track import Track, follow, rebuild_fallback
from tests.support.faces import face_at
from tests.tracking.test_lk import texture


def with_landmarks(face: Face) -> Face:
    grid = torch.stack(torch.meshgrid(torch.arange(3.0), torch.arange(4.0), indexing="ij"), dim=-1).reshape(
        -1, 2
    )
    return dataclasses.replace(face, landmarks=grid * 12 + torch.tensor([face.box[0] + 10, face.box[1] + 10]))


def test_lk_carries_keypoints_and_landmarks() -> None:
    image = texture(8, (240, 320))
    moved = np.roll(image, (2, 4), axis=(0, 1))  # right 4, down 2
    face = with_landmarks(face_at(160, 120, 80))
    track = Track(1, face, "detect")
    step = follow(track, image, moved, 1, (1.0, 1.0), lost_fraction=0.5, fb_threshold=1.0, kind="csrt")
    assert step.moved and not step.lk_lost and track.source == "lk"
    shift = torch.tensor([4.0, 2.0])
    assert torch.allclose(track.face.kps, face.kps + shift, atol=0.2)
    assert track.face.landmarks is not None and face.landmarks is not None
    assert torch.allclose(track.face.landmarks, face.landmarks + shift, atol=0.2)
    assert (
        abs(track.face.box[0] - (face.box[0] + 4)) < 0.3 and abs(track.face.box[3] - (face.box[3] + 2)) < 0.3
    )


def test_the_points_follow_csrt_and_a_replay_rebuilds_it() -> None:
    frames = [np.roll(texture(9, (240, 320)), (i, 2 * i), axis=(0, 1)) for i in range(4)]
    face = face_at(320, 240, 160)  # frame pixels; the grey images are half size
    track = Track(1, face, "detect")
    for index in range(1, 4):
        step = follow(track, frames[index - 1], frames[index], index, (0.5, 0.5), 0.5, 1e-9, "csrt")
        assert step.moved and step.lk_lost and step.csrt_started == (index == 1)
    assert track.source == "csrt" and track.csrt_start == 0
    offset = track.face.kps.mean(dim=0) - face.kps.mean(dim=0)
    assert torch.allclose(offset, torch.tensor([12.0, 6.0]), atol=3.0)  # 2 × (6, 3) grey pixels
    assert abs(track.face.width / face.width - 1.0) < 0.15  # CSRT's own scale estimate
    replayed = Track.from_state(track.state())
    rebuild_fallback(replayed, dict(enumerate(frames)), 3, "csrt")
    assert replayed.fallback is not None and track.fallback is not None
    following = np.roll(frames[3], (1, 2), axis=(0, 1))
    assert replayed.fallback.update(following) == track.fallback.update(following)


def test_a_face_survives_its_plain_data_form() -> None:
    face = dataclasses.replace(
        with_landmarks(face_at(100, 90, 60, roll=7)),
        landmark_confidence=0.8,
        landmark_model="2dfan4",
        embedding=torch.randn(512),
    )
    back = face_from_state(face_state(face))
    assert back.box == face.box and back.score == face.score and back.rotation == face.rotation
    assert torch.equal(back.kps, face.kps) and back.landmarks is not None and face.landmarks is not None
    assert (
        torch.equal(back.landmarks, face.landmarks)
        and back.embedding is not None
        and face.embedding is not None
    )
    assert torch.equal(back.embedding, face.embedding)
    assert (back.landmark_confidence, back.landmark_model) == (0.8, "2dfan4")
