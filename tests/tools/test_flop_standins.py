"""The benchmark's FLOP-matched stand-ins cost what the real models cost (counted off the graph), keep
the catalog's tensor specs, and give the pipeline a face to work on: the detector finds one at the
frame's centre and 2DFAN4's points land on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from app.faces.detector import FaceDetector
from app.faces.landmarker import Landmarker
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Catalog, load_catalog
from app.models.store import ModelState, ModelStore
from tools.flop_standins import (
    FACE_BOX,
    TARGETS,
    TOLERANCE,
    build_flop_standin,
    count_cost,
    landmark_template,
    make_flop_standins,
    plan_for,
)
from tools.make_standins import EMAP_NAME

CATALOG = load_catalog()


def _dims(value: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    return tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)


@pytest.mark.parametrize("model_id", list(TARGETS))
def test_cost_within_tolerance_and_tensor_specs_exact(model_id: str) -> None:
    entry = CATALOG.get(model_id)
    model = build_flop_standin(entry, hollow=True)
    gflops, params = count_cost(model)
    target = TARGETS[model_id]
    assert abs(gflops / target.gflops - 1) <= TOLERANCE, (gflops, target)
    assert abs(params / (target.params_m * 1e6) - 1) <= TOLERANCE, (params, target)
    plan = plan_for(entry)
    assert gflops == pytest.approx(plan.gflops, rel=1e-6)  # the plan the report quotes is what was built
    assert params == pytest.approx(plan.params, rel=0.01)  # the emap and templates are the difference
    assert [(i.name, _dims(i)) for i in model.graph.input] == [(s.name, s.shape) for s in entry.inputs]
    assert [(o.name, _dims(o)) for o in model.graph.output] == [(s.name, s.shape) for s in entry.outputs]
    if entry.family == "inswapper":
        assert model.graph.initializer[-1].name == EMAP_NAME


@pytest.fixture(scope="module")
def analysis_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    folder = tmp_path_factory.mktemp("flops")
    ids = ["yolov8n_face", "2dfan4"]
    make_flop_standins(folder / "models", CATALOG, ids)
    store = ModelStore(folder / "models", Catalog([CATALOG.get(i) for i in ids]))
    assert all(store.status(store.catalog.get(i)).state is ModelState.STANDIN for i in ids)
    runtime = InferenceRuntime(store, cache_root=folder / "cache")
    yield runtime
    runtime.close()


def test_detector_and_landmarks_find_the_centre_face(analysis_runtime: InferenceRuntime) -> None:
    frame = torch.zeros((1080, 1920, 3), dtype=torch.uint8)
    faces = FaceDetector(analysis_runtime, "yolov8n_face").detect(frame)
    assert len(faces) == 1
    x1, y1, x2, y2 = (float(v) for v in faces[0].box)
    scale = 1080 / 360  # the 16:9 frame fills 640 x 360 of the canvas
    cx, cy, _, h = FACE_BOX
    assert (x1 + x2) / 2 == pytest.approx(cx * scale, abs=1.0)
    assert (y1 + y2) / 2 == pytest.approx(cy * scale, abs=1.0)
    assert (y2 - y1) == pytest.approx(h * scale, abs=1.0)

    face = Landmarker(analysis_runtime, "2dfan4").apply(frame, faces)[0]
    assert face.landmarks is not None
    points = face.landmarks.numpy()
    assert points.shape == (68, 2)
    assert face.landmark_confidence == pytest.approx(1.0)
    inside = (points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2 + 0.1 * h)
    assert inside.all()
    template = landmark_template(64, 195 / 256)[0]
    # The same shape in the frame as in the template: one scale on both axes.
    x_scale, y_scale = (np.ptp(points[:, i]) / np.ptp(template[:, i]) for i in (0, 1))
    assert x_scale == pytest.approx(y_scale, rel=0.05)


def test_written_files_are_named_stand_ins(tmp_path: Path) -> None:
    manifest = make_flop_standins(tmp_path, CATALOG, ["yolov8n_face"])
    info = manifest.files[CATALOG.get("yolov8n_face").file]
    assert info.behaviour == "flops"
    assert "STAND-IN" in onnx.load(tmp_path / CATALOG.get("yolov8n_face").file).doc_string
    assert not list(tmp_path.glob("*.partial"))
