"""Swapping and compositing on the GPU: the same answers as the CPU, and no trip through host memory
on the face path (crop → swap → restore → masks → colour → paste).

Skipped where ONNX Runtime has no usable CUDA provider (CI); run on the lent GPU machine with
`python -m pytest tests/gpu -v -s`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from app.core.settings import InferenceSettings
from app.faces.detector import FaceDetector
from app.inference.discovery import discover
from app.inference.providers import Provider
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from app.pipeline.jobs import EngineOptions, SwapJob, run_swap
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.processing.compositor import FaceCompositor
from app.processing.settings import (
    BlendSettings,
    ColourSettings,
    MaskSettings,
    ProcessingSettings,
    RestoreSettings,
    SwapSettings,
)
from tests.support.media import make_clip
from tests.support.processing import standin_store
from tests.support.real_models import REAL_SCRFD_ID

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not discover()[Provider.CUDA].usable,
    reason="needs an NVIDIA GPU and onnxruntime-gpu with a usable CUDA provider",
)

STANDINS = ("inswapper_128_fp16", "arcface_w600k_r50", "gfpgan_1.4", "occluder", "faceparser_resnet34")
FULL = ProcessingSettings(
    swap=SwapSettings(swapper="inswapper_128_fp16@identity", pixel_boost=256),
    restore=RestoreSettings(restorer="gfpgan_1.4@identity", blend=0.8),
    mask=MaskSettings(occluder="occluder@regions", parser="faceparser_resnet34@regions"),
    colour=ColourSettings(strength=0.5),
    blend=BlendSettings(edge_smoothing=50.0),
)


@pytest.fixture(scope="module")
def astronaut(test_assets: Path) -> torch.Tensor:
    return read_image(test_assets / "astronaut.png")  # skimage's photo; the GPU machine has no skimage


@pytest.fixture(scope="module")
def runtimes(
    test_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, InferenceRuntime]]:
    folder = tmp_path_factory.mktemp("gpu-swap")
    store = standin_store(test_assets, folder / "models", STANDINS)
    made = {
        p: InferenceRuntime(store, InferenceSettings(provider=p, allow_tf32=False), cache_root=folder / p)  # type: ignore[arg-type]
        for p in ("cpu", "cuda")
    }
    yield made
    for runtime in made.values():
        runtime.close()


def _composite(
    runtime: InferenceRuntime, image: torch.Tensor, device: str, settings: ProcessingSettings
) -> torch.Tensor:
    frame = image.to(device)
    face = FaceDetector(runtime, REAL_SCRFD_ID).detect(frame)[0]
    compositor = FaceCompositor(runtime, settings)
    out = frame.clone()
    compositor.composite(frame, out, face, compositor.swapper.latent(torch.ones(512, device=device)))
    return out.cpu()


def test_the_full_face_path_on_cuda_matches_the_cpu(
    runtimes: dict[str, InferenceRuntime], astronaut: torch.Tensor
) -> None:
    on_gpu = _composite(runtimes["cuda"], astronaut, "cuda", FULL)
    on_cpu = _composite(runtimes["cpu"], astronaut, "cpu", FULL)
    difference = (on_gpu.float() - on_cpu.float()).abs()
    print(f"GPU vs CPU: max {difference.max().item():.0f}, mean {difference.mean().item():.4f} code values")
    assert difference.mean() < 0.05 and difference.max() <= 3


def _copies(trace: profile) -> dict[str, int]:
    counts = {"HtoD": 0, "DtoH": 0}
    for event in trace.events():
        for kind in counts:
            if "Memcpy" in event.name and kind in event.name:
                counts[kind] += 1
    return counts


def test_the_face_path_never_copies_to_the_host(
    runtimes: dict[str, InferenceRuntime], astronaut: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every device-to-host copy while a face is composited must be ONNX Runtime's own (inside a model
    run, replayed alone below); our crop, mask, colour and paste code adds none."""
    runtime = runtimes["cuda"]
    frame = astronaut.cuda()
    face = FaceDetector(runtime, REAL_SCRFD_ID).detect(frame)[0]
    compositor = FaceCompositor(runtime, FULL)
    latent = compositor.swapper.latent(torch.ones(512, device="cuda"))
    compositor.composite(frame, frame.clone(), face, latent)  # warm: sessions loaded, caches filled
    calls: list[tuple[str, list[torch.Tensor]]] = []
    run_ordered = runtime.run_ordered

    def recording(model_id: str, *tensors: torch.Tensor) -> list[torch.Tensor]:
        calls.append((model_id, [t.clone() for t in tensors]))
        return run_ordered(model_id, *tensors)

    monkeypatch.setattr(runtime, "run_ordered", recording)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as trace:
        compositor.composite(frame, frame.clone(), face, latent)
        torch.cuda.synchronize()
    monkeypatch.undo()
    whole = _copies(trace)
    per_model: dict[str, int] = {}
    for model_id, tensors in calls:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as alone:
            runtime.run_ordered(model_id, *tensors)
            torch.cuda.synchronize()
        per_model[model_id] = per_model.get(model_id, 0) + _copies(alone)["DtoH"]
    print(
        f"memcpy for one face (swap+restore+occluder+parser+colour+guided paste): {whole}; "
        f"device-to-host inside model runs: {per_model}"
    )
    assert whole["DtoH"] == sum(per_model.values())


def test_a_video_job_runs_on_cuda(
    runtimes: dict[str, InferenceRuntime], astronaut: torch.Tensor, test_assets: Path, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0, fps=25, size=(640, 640), image=astronaut.numpy())
    job = SwapJob(
        sources=(test_assets / "astronaut.png",),
        target=clip,
        output=tmp_path / "out.mp4",
        settings=PipelineSettings(analysis=AnalysisSettings(detector=REAL_SCRFD_ID), processing=FULL),
        engine=EngineOptions(workers=2, segment_frames=16),
    )
    report = run_swap(runtimes["cuda"], job, profile=True)
    print(
        f"video on {report.device}: {report.frames} frames, {report.fps:.1f} fps, decoder {report.decoder}, "
        f"encoder {report.encoder} ({report.encoder_fallback}); stage ms {report.stage_ms}"
    )
    assert report.device.startswith("cuda") and report.frames == 50
    assert report.decoder == "nvdec" and report.workers == 2
    assert (tmp_path / "out.mp4").is_file()
    assert not (tmp_path / "out.mp4.parts").exists()
    assert [p.name for p in report.profile] == ["out.mp4.profile.csv", "out.mp4.profile.json"]
