"""`main.py warmup` and `main.py check-env`, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import ROOT, run

WARMUP_TOOL = ROOT / "tools" / "warmup.py"


def test_warmup_prints_provider_and_timings(standin_dir: Path) -> None:
    result = run("warmup", "--models-dir", str(standin_dir), "inswapper_128", "occluder", "--runs", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "model",
        "provider",
        "load",
        "ms",
        "first",
        "run",
        "ms",
        "steady",
        "ms",
        "memory",
    ]
    assert lines[1].startswith("inswapper_128 [stand-in]  CPU")
    assert lines[2].startswith("occluder [stand-in]")


def test_warmup_json_and_the_tool_script_agree(standin_dir: Path) -> None:
    result = run("--models-dir", str(standin_dir), "occluder", "--json", "--runs", "2", script=WARMUP_TOOL)
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)["models"]
    assert row["model_id"] == "occluder" and row["provider"] == "cpu" and row["standin"] is True
    assert row["runs"] == 2 and row["load_ms"] > 0 and row["first_run_ms"] > 0 and row["steady_ms"] > 0


def test_warmup_reports_a_fallback_in_words(standin_dir: Path) -> None:
    result = run(
        "warmup", "--models-dir", str(standin_dir), "occluder", "--provider", "tensorrt", "--runs", "1"
    )
    assert result.returncode == 0, result.stderr
    assert "CPU (asked TensorRT)" in result.stdout
    assert (
        "fallback: occluder: TensorRT failed while loading (this onnxruntime build has no TensorRT"
        in result.stdout
    )


def test_warmup_errors_are_clear(standin_dir: Path, tmp_path: Path) -> None:
    empty = run("warmup", "--models-dir", str(tmp_path))
    assert empty.returncode == 1
    assert "No default model is installed in" in empty.stderr and "models download --default" in empty.stderr
    broken = run(
        "warmup", "--models-dir", str(standin_dir), "occluder", env={"DOPPEL_INJECT_FAULTS": "cpu:load"}
    )
    assert broken.returncode == 1
    assert "occluder.onnx: 'occluder' could not be loaded on any provider" in broken.stderr
    bad_plan = run(
        "warmup", "--models-dir", str(standin_dir), "occluder", env={"DOPPEL_INJECT_FAULTS": "gpu:run"}
    )
    assert bad_plan.returncode == 1 and "DOPPEL_INJECT_FAULTS: 'gpu' is not a provider" in bad_plan.stderr
    unknown = run("warmup", "--models-dir", str(standin_dir), "no_such_model")
    assert unknown.returncode == 1 and "Unknown model id 'no_such_model'" in unknown.stderr


def test_check_env_says_plainly_there_is_no_gpu(standin_dir: Path) -> None:
    result = run("check-env", "--models-dir", str(standin_dir), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"][0] == "No NVIDIA GPU found: everything runs on the CPU; expect low speed."
    providers = {p["provider"]: p for p in report["onnxruntime"]["providers"]}
    assert providers["cpu"]["usable"] and not providers["cuda"]["usable"] and providers["cuda"]["reason"]
    assert report["gpu"]["present"] is False and report["torch_device"] == "cpu"
    assert report["models"]["counts"]["stand-in"] >= 10
    no_gpu = {"available": False, "reason": "no NVIDIA GPU on this machine"}  # not FFmpeg's errno
    assert report["media"]["cuda_decode"] == {"name": "cuda decode", **no_gpu}
    assert {"name": "h264_nvenc", **no_gpu} in report["media"]["encoders"]
    assert {"name": "libx264", "available": True, "reason": None} in report["media"]["encoders"]
    text = run("check-env", "--models-dir", str(standin_dir))
    assert (
        text.returncode == 0
        and "CUDA: not usable: this onnxruntime build has no CUDA provider" in text.stdout
    )
    assert "a CPU build, without CUDA" in text.stdout and "None" not in text.stdout


def test_check_env_shows_fallbacks_recorded_by_earlier_runs(standin_dir: Path) -> None:
    run("warmup", "--models-dir", str(standin_dir), "occluder", "--provider", "cuda", "--runs", "1")
    report = json.loads(run("check-env", "--models-dir", str(standin_dir), "--json", "--no-probe").stdout)
    assert report["fallbacks"]["total"] == 1
    assert report["fallbacks"]["recent"][0].startswith("occluder: CUDA failed while loading")
