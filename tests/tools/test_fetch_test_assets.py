"""The real assets from the package registry: the SCRFD detector and photos with ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
from PIL import Image

from tools.fetch_test_assets import fetch


def test_assets_are_real_and_complete(test_assets: Path) -> None:
    session = ort.InferenceSession(str(test_assets / "scrfd.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input.1" and inp.shape == [1, 3, 640, 640]
    names = {o.name: o.shape for o in session.get_outputs()}
    assert names["score_8"] == [1, 12800, 1] and names["kps_32"] == [1, 800, 10]

    truth = json.loads((test_assets / "truth_faces.json").read_text())
    assert set(truth) == {"newton.png", "gauss.png"}
    assert truth["newton.png"][0]["bbox"]["upper_left"] == {"x": 334, "y": 89}
    with Image.open(test_assets / "solvay_conference_1927.jpg") as solvay:
        assert solvay.size == (3000, 2171)
    with Image.open(test_assets / "astronaut.png") as astronaut:
        assert astronaut.size == (512, 512)


def test_second_fetch_uses_the_cache(test_assets: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in test_assets.iterdir()}
    fetch(test_assets)
    assert {p.name: p.stat().st_mtime_ns for p in test_assets.iterdir()} == before
