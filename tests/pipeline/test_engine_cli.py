"""`live`, `presets` and `bench` as a user runs them: real subprocesses, real media, real models."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from app.media.errors import VirtualCameraError
from app.media.virtual_camera import VirtualCamera
from tests.support.cli import run
from tests.support.media import make_clip
from tests.support.processing import cli_models
from tests.support.real_models import REAL_SCRFD_ID

STANDINS = ("inswapper_128_fp16", "arcface_w600k_r50")


@pytest.fixture(scope="module")
def setup(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engine-cli")
    catalog = cli_models(test_assets, root / "models", STANDINS)
    face = root / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(root / "clip.mp4", seconds=2.0, fps=25, size=(320, 320), image=data.astronaut())
    return {"models": root / "models", "catalog": catalog, "face": face, "clip": clip}


def models_args(setup: dict[str, Path]) -> tuple[str, ...]:
    return (
        "--models-dir", str(setup["models"]), "--catalog", str(setup["catalog"]),
        "--detector", REAL_SCRFD_ID, "--swapper", "inswapper_128_fp16@flat",
    )  # fmt: skip


def test_live_mode_on_a_video_played_in_real_time(setup: dict[str, Path]) -> None:
    result = run(
        "live", "-s", str(setup["face"]), "--video", str(setup["clip"]), "--seconds", "3", "--json",
        *models_args(setup),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] >= 3
    assert 0 < report["latency_p50_ms"] <= report["latency_p99_ms"]


def test_live_mode_on_a_camera_source(setup: dict[str, Path]) -> None:
    """FFmpeg's test source stands in for a webcam: the same capture path, no device needed."""
    result = run(
        "live", "-s", str(setup["face"]), "--camera-format", "lavfi",
        "--camera", "testsrc2=size=320x240:rate=15", "--frames", "5", "--seconds", "20", "--json",
        *models_args(setup),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] >= 5


def test_live_with_a_missing_camera_is_a_clear_error(setup: dict[str, Path]) -> None:
    result = run(
        "live", "-s", str(setup["face"]), "--camera", "/dev/video-none", "--camera-format", "v4l2",
        "--seconds", "2", *models_args(setup),
    )  # fmt: skip
    assert result.returncode == 1
    assert "/dev/video-none" in result.stderr


def test_presets_show_save_list_and_use(setup: dict[str, Path], tmp_path: Path) -> None:
    shown = run("presets", "show", "quality")
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    settings["tracking"]["interval"] = 4
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(settings), encoding="utf-8")
    assert run("presets", "save", "Night stream", str(mine)).returncode == 0
    listed = json.loads(run("presets", "list", "--json").stdout)
    assert {"fast", "balanced", "quality", "Night stream"} <= {p["name"] for p in listed}
    assert json.loads(run("presets", "show", "Night stream").stdout)["tracking"]["interval"] == 4
    swapped = run(
        "swap", "-s", str(setup["face"]), "-t", str(setup["face"]), "-o", str(tmp_path / "o.png"),
        "--user-preset", "Night stream", "--restorer", "none", "--mask", "box", "--landmarker", "none",
        *models_args(setup),
    )  # fmt: skip
    assert swapped.returncode == 0, swapped.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"tracking": {"interval": 0}}', encoding="utf-8")
    refused = run("presets", "save", "broken", str(bad))
    assert refused.returncode == 1 and "bad.json" in refused.stderr and "tracking.interval" in refused.stderr


def test_bench_writes_its_report(test_assets: Path, tmp_path: Path) -> None:
    work = tmp_path / "bench"
    shutil.copytree(test_assets, work / "assets")  # the benchmark's face picture, already fetched
    out = tmp_path / "bench.json"
    result = run(
        "bench", "--size", "426x240", "--seconds", "0.5", "--fps", "10", "--standin-scale", "0.002",
        "--work-dir", str(work), "--out", str(out), "--trace", str(tmp_path / "trace.json.gz"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    results = report["results"]
    for launch in ("cold", "warm"):  # the whole command in a fresh process, twice
        command = results["command"][launch]
        assert command["frames"] == 5
        assert 0 < command["first_frame_s"] < command["seconds"]
        assert command["milestones_s"]["first frame written"] == command["first_frame_s"]
    export = results["export"]
    assert export["frames"] == export["faces_swapped"] == 5  # the stand-in detector finds the face
    assert export["steady_fps"] > 0 and export["limit_ms_per_frame"] > 0
    assert set(export["isolated_model_ms_per_frame"]) >= {
        "yolov8n_face",
        "2dfan4",
        "inswapper_128",
        "gfpgan_1.4",
    }
    assert {"detect", "landmarks", "swap", "restore", "paste", "encode"} <= set(export["stages_ms"])
    assert all(v["p50"] <= v["p95"] for v in export["stages_ms"].values())
    assert set(export["waits_ms_per_frame"]) == {
        "analysis_on_workers",
        "worker_on_analysis",
        "ordering_on_workers",
        "ordering_on_encoders",
        "finish_on_encoders",
    }
    assert export["waits_ms_per_frame"]["finish_on_encoders"] > 0  # the last frames and the join
    traced = export["trace"]  # every thread of the pipeline is in the trace, by name
    assert traced["threads_per_frame"]["analyse"]["torch_calls"] > 0
    assert traced["threads_per_frame"]["swap-0"]["torch_calls"] > 0
    with gzip.open(traced["file"], "rt", encoding="utf-8") as trace:
        assert any(e.get("cat") == "cpu_op" for e in json.load(trace)["traceEvents"])
    assert "thread (traced run)" in result.stdout
    assert results["live"]["at_clip_rate"]["latency_p50_ms"] > 0
    assert results["image_swap_s"] > 0
    encoders = results["encoder_alone"]  # the clip through the export's writer, no models
    assert encoders["fps"] > 0 and encoders["frames"] == 5 and encoders["preset"] == "veryfast"
    assert encoders["threads_each"] >= 1 and "encoders alone fps" in result.stdout
    assert "None" not in result.stdout  # figures a CPU cannot measure (GPU busy) read n/a
    assert all("stand-in" in about["kind"] for about in report["models"].values())
    figures = {t["figure"]: t for t in report["targets"]}
    assert figures["steady export fps"]["measured"] == export["steady_fps"]
    assert "steady export fps" in result.stdout and "MISSED" in result.stdout
    assert "start-up step (s after launch)" in result.stdout and "blocked (steady run)" in result.stdout
    assert run("bench", "--size", "huge").returncode == 2


def _virtual_camera_available() -> bool:
    try:
        VirtualCamera.open(64, 64, 30.0).close()
    except VirtualCameraError:
        return False
    return True


@pytest.mark.skipif(_virtual_camera_available(), reason="a virtual camera is installed here")
def test_live_to_a_missing_virtual_camera_says_what_to_install(setup: dict[str, Path]) -> None:
    result = run(
        "live", "-s", str(setup["face"]), "--video", str(setup["clip"]), "--virtual-camera",
        "--seconds", "2", *models_args(setup),
    )  # fmt: skip
    assert result.returncode == 1
    assert "No virtual camera is available" in result.stderr
