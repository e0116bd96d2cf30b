"""RetinaFace: prior boxes and variance decoding on crafted outputs, then the whole path on its stand-in."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from app.faces.detector import DetectionSettings, FaceDetector
from app.faces.detectors.base import normalised_canvas
from app.faces.detectors.retinaface import decode, priors
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tools.make_standins import make_standins


def test_priors_run_stride_by_stride_with_two_sizes_per_cell() -> None:
    anchors = priors(64, 64, torch.device("cpu"))
    assert anchors.shape == (8 * 8 * 2 + 4 * 4 * 2 + 2 * 2 * 2, 4)
    assert anchors[0].tolist() == pytest.approx([4 / 64, 4 / 64, 16 / 64, 16 / 64])
    assert anchors[1].tolist() == pytest.approx([4 / 64, 4 / 64, 32 / 64, 32 / 64])
    assert anchors[2].tolist() == pytest.approx([12 / 64, 4 / 64, 16 / 64, 16 / 64])
    assert anchors[128].tolist() == pytest.approx([8 / 64, 8 / 64, 64 / 64, 64 / 64])


def test_decode_applies_the_variances_around_the_prior() -> None:
    count = 168  # priors of a 64 x 64 canvas
    loc, conf, landms = torch.zeros(1, count, 4), torch.zeros(1, count, 2), torch.zeros(1, count, 10)
    conf[..., 0] = 1.0
    index = 128 + (1 * 4 + 2) * 2 + 1  # stride 16, row 1, column 2, size 128: centre (40, 24)
    conf[0, index] = torch.tensor([0.1, 0.9])
    loc[0, index] = torch.tensor([0.5, -0.5, math.log(0.25) / 0.2, math.log(0.25) / 0.2])
    landms[0, index] = torch.tensor([0.5, 0.5] * 5)
    found = decode(loc, conf, landms, (64, 64), 0.5)
    assert found.scores.tolist() == [pytest.approx(0.9)]
    # centre (40 + 0.5·0.1·128, 24 − 0.5·0.1·128) = (46.4, 17.6); size 128 · 0.25 = 32
    assert found.boxes[0].tolist() == pytest.approx([30.4, 1.6, 62.4, 33.6], abs=1e-4)
    assert found.kps[0, 3].tolist() == pytest.approx([46.4, 30.4], abs=1e-4)


def test_decode_rejects_outputs_that_do_not_fit_the_canvas() -> None:
    with pytest.raises(ValueError, match="priors"):
        decode(torch.zeros(10, 4), torch.zeros(10, 2), torch.zeros(10, 10), (64, 64), 0.5)


@pytest.fixture()
def standin_runtime(tmp_path: Path) -> InferenceRuntime:
    catalog = load_catalog()
    make_standins(tmp_path, catalog, ["retinaface_r50", "retinaface_10g"])
    return InferenceRuntime(ModelStore(tmp_path, catalog), cache_root=tmp_path / "cache")


def test_the_full_path_runs_on_the_standin(standin_runtime: InferenceRuntime) -> None:
    frame = torch.full((360, 480, 3), 160, dtype=torch.uint8)
    detector = FaceDetector(standin_runtime, "retinaface_r50")
    try:
        faces = detector.detect(frame)
        canvas, _ = normalised_canvas(detector.entry, frame, detector.input_size())
    finally:
        standin_runtime.close()
    # The stand-in answers the mean of its (BGR, mean-subtracted) input everywhere: every prior scores it.
    assert faces and all(face.score == pytest.approx(float(canvas.mean()), rel=1e-4) for face in faces)


def test_retinaface_10g_is_decoded_as_scrfd_from_bgr(standin_runtime: InferenceRuntime) -> None:
    frame = torch.zeros((320, 320, 3), dtype=torch.uint8)
    frame[..., 1:] = 255  # cyan: no red, so the model's first channel (blue) is high only if flipped
    detector = FaceDetector(standin_runtime, "retinaface_10g", DetectionSettings(score=0.0))
    try:
        canvas, _ = detector.family.prepare(frame, detector.input_size())
        faces = detector.detect(frame)
    finally:
        standin_runtime.close()
    assert float(canvas[0, 0, 0, 0]) == pytest.approx((255 - 127.5) / 128)
    assert faces and faces[0].score == pytest.approx(float(canvas.mean()), rel=1e-4)


class CountingDetector(FaceDetector):
    calls: list[tuple[int, ...]]

    def forward(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.calls.append(tuple(tensor.shape))
        return super().forward(tensor)


def test_several_frames_share_one_batched_call(standin_runtime: InferenceRuntime) -> None:
    frames = [torch.full((240, 320 + 80 * i, 3), 230 + 10 * i, dtype=torch.uint8) for i in range(3)]
    detector = CountingDetector(standin_runtime, "retinaface_r50", DetectionSettings(max_faces=2))
    detector.calls = []
    try:
        results = detector.detect_many(frames)
    finally:
        standin_runtime.close()
    assert detector.calls == [(3, 3, 640, 640)]
    assert [len(faces) for faces in results] == [2, 2, 2]
    # each frame keeps its own letterbox: the same canvas box maps back by each frame's own scale
    assert results[0][0].box != results[2][0].box
