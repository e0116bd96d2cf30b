"""YuNet: per-cell decoding on crafted outputs (as OpenCV's FaceDetectorYN does it), then its stand-in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from app.faces.detector import FaceDetector
from app.faces.detectors.yunet import cells, decode
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tools.make_standins import make_standins


def crafted(canvas: int = 64) -> list[torch.Tensor]:
    counts = [(canvas // s) ** 2 for s in (8, 16, 32)]
    return (
        [torch.zeros(1, n, 1) for n in counts]
        + [torch.zeros(1, n, 1) for n in counts]
        + [torch.zeros(1, n, 4) for n in counts]
        + [torch.zeros(1, n, 10) for n in counts]
    )


def test_cells_are_column_row_pairs_row_by_row() -> None:
    grid = cells(32, 48, 16, torch.device("cpu"))
    assert grid.tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]


def test_decode_scores_boxes_and_keypoints_per_cell() -> None:
    outputs = crafted()
    index = 1 * 4 + 2  # stride 16, row 1, column 2
    outputs[1][0, index] = 0.81  # cls
    outputs[4][0, index] = 1.0  # obj
    outputs[7][0, index] = torch.tensor([0.5, 0.5, math.log(2.0), 0.0])
    outputs[10][0, index] = torch.tensor([0.25, -0.5] * 5)
    found = decode(outputs, (64, 64), 0.5)
    assert found.scores.tolist() == [pytest.approx(0.9)]  # sqrt(0.81 × 1.0)
    assert found.boxes[0].tolist() == pytest.approx([24.0, 16.0, 56.0, 32.0])  # centre (40, 24), 32 × 16
    assert found.kps[0, 4].tolist() == pytest.approx([36.0, 8.0])


def test_scores_are_clamped_before_they_multiply() -> None:
    outputs = crafted()
    outputs[0][0, 0], outputs[3][0, 0] = 1.5, -0.2  # would be a NaN square root, or a score above 1
    outputs[0][0, 1], outputs[3][0, 1] = 4.0, 0.64
    found = decode(outputs, (64, 64), 0.0)
    assert not np.isnan(found.scores).any()
    assert found.scores.max().item() == pytest.approx(0.8)


def test_the_full_path_runs_on_the_standin(tmp_path: Path) -> None:
    catalog = load_catalog()
    make_standins(tmp_path, catalog, ["yunet_n_640"])
    runtime = InferenceRuntime(ModelStore(tmp_path, catalog), cache_root=tmp_path / "cache")
    try:
        frame = torch.ones((360, 480, 3), dtype=torch.uint8)  # raw 0..255 input: the stand-in answers 0.75
        faces = FaceDetector(runtime, "yunet_n_640").detect(frame)
    finally:
        runtime.close()
    assert faces and all(face.score == pytest.approx(0.75, rel=1e-4) for face in faces)
    smallest = min(face.width for face in faces)  # stride 8 boxes: exp(0.75) · 8 canvas pixels
    assert smallest == pytest.approx(math.exp(0.75) * 8 * 480 / 640, rel=1e-3)
