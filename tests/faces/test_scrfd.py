"""SCRFD: anchor decoding on crafted outputs, then the real detector on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.faces.detector import DetectionSettings, FaceDetector
from app.faces.detectors.scrfd import anchor_centres, decode
from app.faces.geometry import pair_iou, rotate_frame, unrotate_points
from app.faces.types import KPS_NAMES
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from tests.support.real_models import REAL_SCRFD_ID


def test_anchor_centres_are_row_major_with_two_per_cell() -> None:
    centres = anchor_centres(32, 48, 16, torch.device("cpu"))
    assert centres.shape == (2 * 3 * 2, 2)
    assert centres[:4].tolist() == [[0, 0], [0, 0], [16, 0], [16, 0]]
    assert centres[6].tolist() == [0, 16]


def test_decode_places_a_box_and_keypoints_around_their_anchor() -> None:
    canvas = (64, 64)
    counts = [(64 // s) ** 2 * 2 for s in (8, 16, 32)]
    scores = [torch.zeros(n, 1) for n in counts]
    distances = [torch.zeros(n, 4) for n in counts]
    keypoints = [torch.zeros(n, 10) for n in counts]
    index = (1 * 4 + 2) * 2 + 1  # stride 16: row 1, column 2, second anchor: centre (32, 16)
    scores[1][index] = 0.9
    distances[1][index] = torch.tensor([1.0, 0.5, 1.0, 1.5])  # in strides
    keypoints[1][index] = torch.tensor([-0.5, -0.25] * 5)
    found = decode(scores, distances, keypoints, canvas, 0.5)
    assert found.scores.tolist() == [pytest.approx(0.9)]
    assert found.boxes.tolist() == [[16.0, 8.0, 48.0, 40.0]]
    assert found.kps[0, 0].tolist() == [24.0, 12.0]


@pytest.fixture(scope="module")
def truth(test_assets: Path) -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = json.loads((test_assets / "truth_faces.json").read_text())
    return data


def detector(runtime: InferenceRuntime, **settings: object) -> FaceDetector:
    return FaceDetector(runtime, REAL_SCRFD_ID, DetectionSettings(**settings))  # type: ignore[arg-type]


def test_solvay_has_29_faces(scrfd_runtime: InferenceRuntime, test_assets: Path) -> None:
    faces = detector(scrfd_runtime).detect(read_image(test_assets / "solvay_conference_1927.jpg"))
    assert abs(len(faces) - 29) <= 1


@pytest.mark.parametrize("name", ["newton.png", "gauss.png"])
def test_portraits_match_their_ground_truth(
    name: str, scrfd_runtime: InferenceRuntime, test_assets: Path, truth: dict[str, list[dict[str, object]]]
) -> None:
    [face] = detector(scrfd_runtime).detect(read_image(test_assets / name))
    [expected] = truth[name]
    corners: dict[str, dict[str, float]] = expected["bbox"]  # type: ignore[assignment]
    box = (
        corners["upper_left"]["x"],
        corners["upper_left"]["y"],
        corners["lower_right"]["x"],
        corners["lower_right"]["y"],
    )
    assert pair_iou(face.box, box) >= 0.9
    points: dict[str, dict[str, float]] = expected["keypoints"]  # type: ignore[assignment]
    wanted = torch.tensor([[points[k]["x"], points[k]["y"]] for k in KPS_NAMES])
    assert (face.kps - wanted).norm(dim=1).max() <= 3.0


def test_astronaut_has_one_face_and_rotated_copies_are_found(
    scrfd_runtime: InferenceRuntime, test_assets: Path
) -> None:
    frame = read_image(test_assets / "astronaut.png")
    [upright] = detector(scrfd_runtime).detect(frame)
    robust = detector(scrfd_runtime, rotation="auto")
    assert detector(scrfd_runtime).detect(rotate_frame(frame, 2)) == []  # upside down: missed without it
    for turns in (1, 2):
        turned = rotate_frame(frame, turns)
        [face] = robust.detect(turned)
        assert face.rotation in (90, 180, 270) and abs(abs(face.roll) - 90 * turns) < 25
        # The upright face's box, turned the same way, is where the robust detector found it.
        corners = torch.tensor(upright.box).view(2, 2)
        moved = unrotate_points(corners, -turns % 4, int(turned.shape[0]), int(turned.shape[1]))
        expected = (*moved.min(dim=0).values.tolist(), *moved.max(dim=0).values.tolist())
        assert pair_iou(face.box, expected) >= 0.8
    assert upright.score > 0.5


def test_a_higher_nms_threshold_keeps_duplicate_boxes(
    scrfd_runtime: InferenceRuntime, test_assets: Path
) -> None:
    """At score 0.5 SCRFD's duplicates overlap their best box by more than 0.9 IoU, so the comparison
    is made at score 0.3, where looser duplicates appear."""
    frame = read_image(test_assets / "solvay_conference_1927.jpg")
    strict = detector(scrfd_runtime, score=0.3, nms=0.3).detect(frame)
    loose = detector(scrfd_runtime, score=0.3, nms=0.9).detect(frame)
    assert len(loose) > len(strict)


def test_limits_on_count_and_size(scrfd_runtime: InferenceRuntime, test_assets: Path) -> None:
    frame = read_image(test_assets / "solvay_conference_1927.jpg")
    everyone = detector(scrfd_runtime).detect(frame)
    best = detector(scrfd_runtime, max_faces=5).detect(frame)
    assert [f.score for f in best] == [f.score for f in everyone[:5]]
    cutoff = sorted(f.size for f in everyone)[len(everyone) // 2]
    large = detector(scrfd_runtime, min_size=cutoff).detect(frame)
    assert large and all(f.size >= cutoff for f in large) and len(large) < len(everyone)


def test_frames_of_a_model_without_a_batch_axis_run_one_by_one(
    scrfd_runtime: InferenceRuntime, test_assets: Path
) -> None:
    frames = [read_image(test_assets / name) for name in ("newton.png", "gauss.png")]
    together = detector(scrfd_runtime).detect_many(frames)
    alone = [detector(scrfd_runtime).detect(frame) for frame in frames]
    assert [[f.box for f in faces] for faces in together] == [[f.box for f in faces] for faces in alone]
