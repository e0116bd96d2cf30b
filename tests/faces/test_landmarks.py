"""Landmarker families: crops, decoding on crafted outputs, confidence, and real sessions on stand-ins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.faces.alignment import transform_points
from app.faces.landmarker import AutoLandmarker, Landmarker
from app.faces.landmarks.base import agreement, box_crop_matrix, five_from_68
from app.faces.landmarks.facemesh import FaceMesh478
from app.faces.landmarks.fan2d import Fan2d
from app.faces.landmarks.fan_68_5 import Fan68From5
from app.faces.landmarks.insightface import InsightFace3d68, InsightFace106
from app.faces.landmarks.liveportrait import LivePortrait203
from app.faces.landmarks.peppapig import PeppaPig98
from app.faces.preprocess import takes_a_batch
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tests.support.faces import face_at
from tools.make_standins import make_standins

CATALOG = load_catalog()


def test_the_crop_centres_the_box_and_levels_the_eyes() -> None:
    face = face_at(300, 200, 100, roll=30)
    matrix = box_crop_matrix(face, 192, 1 / 1.5)
    assert transform_points(torch.tensor([[300.0, 200.0]]), matrix)[0].tolist() == pytest.approx([96, 96])
    eyes = transform_points(face.kps[:2], matrix)
    assert float(eyes[0, 1] - eyes[1, 1]) == pytest.approx(0, abs=1e-3)  # level
    assert float((eyes[1] - eyes[0]).norm()) == pytest.approx(
        float((face.kps[1] - face.kps[0]).norm()) * 1.28
    )


# Crafted outputs that each family reads as "every point at the crop centre".
CENTRED = [
    (Fan2d, "2dfan4", [torch.tensor([32.0, 32.0, 0.45]).expand(1, 68, 3), torch.zeros(1, 68, 64, 64)], 0.5),
    (InsightFace106, "2d106det", [torch.zeros(1, 212)], None),
    (InsightFace3d68, "1k3d68", [torch.zeros(1, 3309)], None),
    (
        LivePortrait203,
        "landmark_203",
        [torch.zeros(1, 214), torch.zeros(1, 262), torch.full((1, 406), 0.5)],
        None,
    ),
    (
        FaceMesh478,
        "face_mesh_478",
        [torch.full((1, 1, 1, 1434), 128.0), torch.zeros(1, 1, 1, 1), torch.zeros(1, 1)],
        0.5,
    ),
    (PeppaPig98, "peppapig_98", [torch.tensor([0.5, 0.5, 0.8]).expand(1, 98, 3)], 0.8),
]


@pytest.mark.parametrize(("family", "model_id", "outputs", "confidence"), CENTRED)
def test_each_family_maps_its_crop_centre_back_to_the_box_centre(
    family: type, model_id: str, outputs: list[torch.Tensor], confidence: float | None
) -> None:
    face = face_at(300, 200, 100, roll=-20)
    frame = torch.zeros((480, 640, 3), dtype=torch.uint8)
    decoder = family(CATALOG.get(model_id))
    tensor, matrix = decoder.prepare(frame, face)
    assert tuple(tensor.shape) == tuple(
        d if isinstance(d, int) else 1 for d in CATALOG.get(model_id).inputs[0].shape
    )
    found = decoder.normalize(outputs, matrix, face)
    assert found.points.shape[1] == 2
    assert (found.points - torch.tensor([300.0, 200.0])).abs().max() < 1e-3
    if confidence is not None:
        assert found.confidence == pytest.approx(confidence, abs=1e-6)
    else:  # no confidence of its own: every point at the centre agrees poorly with the eyes and mouth
        assert found.confidence < 0.5


def test_agreement_is_one_for_the_detectors_own_points_and_falls_with_distance() -> None:
    kps = face_at(100, 100, 80).kps
    eyes = float((kps[1] - kps[0]).norm())
    assert agreement(kps, kps) == pytest.approx(1.0)
    assert agreement(kps + torch.tensor([eyes / 4, 0.0]), kps) == pytest.approx(0.75, abs=1e-4)
    assert agreement(kps + 5 * eyes, kps) == 0.0


def test_the_68_point_layout_gives_eye_centres_nose_and_mouth_corners() -> None:
    points = torch.zeros(68, 2)
    points[36:42] = torch.tensor([10.0, 20.0])
    points[42:48] = torch.tensor([30.0, 20.0])
    points[30], points[48], points[54] = (
        torch.tensor([20.0, 30.0]),
        torch.tensor([12.0, 40.0]),
        torch.tensor([28.0, 40.0]),
    )
    assert five_from_68(points).tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]


def test_fan_68_5_reads_points_in_the_unit_ffhq_square() -> None:
    face = face_at(250, 150, 60, roll=10)
    decoder = Fan68From5(CATALOG.get("fan_68_5"))
    points, matrix = decoder.prepare(torch.zeros((300, 400, 3), dtype=torch.uint8), face)
    assert points.shape == (1, 5, 2) and float(points.min()) > 0 and float(points.max()) < 1
    echoed = torch.cat([points, points.mean(dim=1, keepdim=True).expand(1, 63, 2)], dim=1)
    found = decoder.normalize([echoed], matrix, face)
    assert (found.points[:5] - face.kps).abs().max() < 1e-3  # the same five points come home
    assert found.confidence == pytest.approx(face.score)


LANDMARKERS = ["fan_68_5", "2dfan4", "2d106det"]


@pytest.fixture()
def runtime(tmp_path: Path) -> InferenceRuntime:
    make_standins(tmp_path, CATALOG, LANDMARKERS)
    return InferenceRuntime(ModelStore(tmp_path, CATALOG), cache_root=tmp_path / "cache")


def uniform(value: int) -> torch.Tensor:
    return torch.full((480, 640, 3), value, dtype=torch.uint8)


def test_2dfan4_on_its_standin_puts_points_where_the_crop_says(runtime: InferenceRuntime) -> None:
    face = face_at(320, 240, 120)
    try:
        (found,) = Landmarker(runtime, "2dfan4").landmarks(uniform(204), [face])
    finally:
        runtime.close()
    # The stand-in answers the crop's mean (204 / 255 = 0.8) everywhere: every point at (3.2, 3.2) in the
    # 256 crop, whose centre (128) is the box centre and whose 195 pixels span the box's 120.
    expected = 320 + (0.8 * 4 - 128) * 120 / 195
    assert found.points.shape == (68, 2)
    assert found.points[:, 0].tolist() == pytest.approx([expected] * 68, abs=1e-2)
    assert found.confidence == pytest.approx(0.8 / 0.9, abs=1e-4)


class CountingLandmarker(Landmarker):
    calls: list[tuple[int, ...]]

    def forward(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.calls.append(tuple(tensor.shape))
        return super().forward(tensor)


def test_faces_share_one_call_when_the_model_takes_a_batch(runtime: InferenceRuntime) -> None:
    faces = [face_at(100 + 150 * i, 200, 90) for i in range(3)]
    batched, single = CountingLandmarker(runtime, "2d106det"), CountingLandmarker(runtime, "2dfan4")
    batched.calls, single.calls = [], []
    try:
        found = batched.apply(uniform(100), faces)
        single.apply(uniform(100), faces)
    finally:
        runtime.close()
    assert batched.calls == [(3, 3, 192, 192)]
    assert single.calls == [(1, 3, 256, 256)] * 3
    assert all(face.landmarks is not None and face.landmarks.shape == (106, 2) for face in found)
    assert {face.landmark_model for face in found} == {"2d106det"}


def test_auto_routes_by_size_and_falls_back_when_unsure(runtime: InferenceRuntime) -> None:
    auto = AutoLandmarker(runtime, min_confidence=0.5)
    tiny, large = face_at(100, 100, 40), face_at(320, 240, 150, score=0.8)
    try:
        sure = auto.apply(uniform(230), [tiny, large])
        # dark: 2dfan4 scores 40/255/0.9 = 0.17, 2d106det's points land far off (agreement 0), so the
        # chain ends at fan_68_5, as sure as the detection (0.8)
        unsure = auto.apply(uniform(40), [large])
    finally:
        runtime.close()
    assert [face.landmark_model for face in sure] == ["fan_68_5", "2dfan4"]
    assert sure[1].landmark_confidence == pytest.approx(min(1.0, 230 / 255 / 0.9), abs=1e-4)
    assert unsure[0].landmark_model == "fan_68_5" and unsure[0].landmark_confidence == pytest.approx(0.8)


def test_auto_keeps_the_most_confident_answer_when_none_is_sure(tmp_path: Path) -> None:
    make_standins(tmp_path, CATALOG, ["2dfan4", "2d106det"])
    runtime = InferenceRuntime(ModelStore(tmp_path, CATALOG), cache_root=tmp_path / "cache")
    try:
        (face,) = AutoLandmarker(runtime).apply(uniform(40), [face_at(320, 240, 150)])
        (small,) = AutoLandmarker(runtime).apply(uniform(40), [face_at(320, 240, 30)])
    finally:
        runtime.close()
    assert face.landmark_model == "2dfan4" and face.landmark_confidence == pytest.approx(
        40 / 255 / 0.9, abs=1e-4
    )
    assert small.landmarks is None  # only fan_68_5 suits a 30 px face, and it is not installed


def test_a_batch_needs_every_output_to_follow_the_batch_axis() -> None:
    assert takes_a_batch(CATALOG.get("2d106det"))  # input N, output N
    assert not takes_a_batch(CATALOG.get("face_mesh_478"))  # input N, outputs fixed at 1
    assert not takes_a_batch(CATALOG.get("2dfan4"))  # input fixed at 1


POINTS = {
    "2dfan4": 68,
    "2d106det": 106,
    "1k3d68": 68,
    "landmark_203": 203,
    "face_mesh_478": 478,
    "peppapig_98": 98,
    "fan_68_5": 68,
}


@pytest.mark.parametrize(("model_id", "count"), POINTS.items())
def test_every_landmarker_runs_its_full_path_on_its_standin(
    model_id: str, count: int, tmp_path: Path
) -> None:
    make_standins(tmp_path, CATALOG, [model_id])
    runtime = InferenceRuntime(ModelStore(tmp_path, CATALOG), cache_root=tmp_path / "cache")
    faces = [face_at(200, 200, 120, roll=15), face_at(450, 260, 90)]
    try:
        found = Landmarker(runtime, model_id).apply(uniform(120), faces)
    finally:
        runtime.close()
    for face in found:
        assert face.landmarks is not None and face.landmarks.shape == (count, 2)
        assert torch.isfinite(face.landmarks).all()
        assert face.landmark_confidence is not None and 0.0 <= face.landmark_confidence <= 1.0
        assert face.landmark_model == model_id
