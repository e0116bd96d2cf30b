"""YOLOv8-face: decoding crafted outputs, and the whole detector path on its stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.faces.detector import FaceDetector
from app.faces.detectors.yolo_face import decode
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tools.make_standins import make_standins


def test_decode_turns_centre_size_and_keypoint_rows_into_boxes() -> None:
    output = torch.zeros(1, 20, 3)
    output[0, :, 1] = torch.tensor([100, 50, 40, 20, 0.8, *[90, 45, 1.0] * 5])
    output[0, 4, 2] = 0.3  # below the threshold
    found = decode(output, 0.5)
    assert found.boxes.tolist() == [[80.0, 40.0, 120.0, 60.0]]
    assert found.scores.tolist() == [pytest.approx(0.8)]
    assert found.kps.shape == (1, 5, 2) and found.kps[0, 0].tolist() == [90.0, 45.0]


def test_the_full_path_runs_on_the_standin(tmp_path: Path) -> None:
    catalog = load_catalog()
    make_standins(tmp_path, catalog, ["yolov8n_face"])
    runtime = InferenceRuntime(ModelStore(tmp_path, catalog), cache_root=tmp_path / "cache")
    try:
        frame = torch.full(
            (360, 480, 3), 200, dtype=torch.uint8
        )  # the stand-in scores every anchor at 200/255
        faces = FaceDetector(runtime, "yolov8n_face").detect(frame)
    finally:
        runtime.close()
    assert len(faces) == 1  # 8400 identical boxes: NMS keeps one
    assert faces[0].score == pytest.approx(200 * 0.75 / 255, rel=1e-3)  # letterbox padding is black
