"""Opt-in telemetry from the engine: jobs, provider fallbacks and tracker losses land in the local file
when the user turned it on, and nothing is written when it is off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from app.core.settings import Settings, TelemetrySettings
from app.core.telemetry import configure_telemetry
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.job_state import SwapJob
from app.pipeline.jobs import run_swap
from app.tracking.face_tracker import TrackingSettings
from tests.support.processing import flat_swap_settings


@pytest.fixture
def telemetry_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "telemetry.jsonl"
    configure_telemetry(Settings(telemetry=TelemetrySettings(enabled=True)), path)
    yield path
    configure_telemetry(Settings())  # off again for the tests after this one


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


SETTINGS = flat_swap_settings()


def test_a_job_and_a_fallback_are_recorded(
    runtime: InferenceRuntime, telemetry_file: Path, tmp_path: Path
) -> None:
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    run_swap(runtime, SwapJob(sources=(face,), target=face, output=tmp_path / "out.png", settings=SETTINGS))
    runtime.fallbacks.record(
        "inswapper_128_fp16", Provider.CUDA, Provider.CPU, "run", "injected for the test"
    )
    kinds = [e["kind"] for e in events(telemetry_file)]
    assert "job" in kinds and "fallback" in kinds
    fallback = next(e for e in events(telemetry_file) if e["kind"] == "fallback")
    assert fallback["fields"] == {
        "model": "inswapper_128_fp16", "source": Provider.CUDA.label, "target": Provider.CPU.label,
        "reason": "injected for the test", "phase": "run",
    }  # fmt: skip


def test_tracker_losses_are_recorded(runtime: InferenceRuntime, telemetry_file: Path) -> None:
    face = torch.from_numpy(data.astronaut().copy())
    analyser = FrameAnalyser(
        runtime, SETTINGS.model_copy(update={"tracking": TrackingSettings(hold_frames=3)})
    )
    for _ in range(3):
        assert analyser.analyse(face)
    noise = torch.Generator().manual_seed(0)
    for _ in range(8):  # the face is gone: tracking fails, the face is held, then dropped
        analyser.analyse(torch.randint(0, 255, face.shape, dtype=torch.uint8, generator=noise))
    losses = [e for e in events(telemetry_file) if e["kind"] == "tracker_loss"]
    assert losses and any(e["fields"]["kind"] == "dropped" for e in losses)  # type: ignore[index]


def test_nothing_is_written_when_telemetry_is_off(runtime: InferenceRuntime, tmp_path: Path) -> None:
    path = tmp_path / "off.jsonl"
    configure_telemetry(Settings(), path)
    runtime.fallbacks.record("inswapper_128_fp16", Provider.CUDA, Provider.CPU, "run", "while off")
    assert not path.exists()
