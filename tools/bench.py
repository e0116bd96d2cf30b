"""The benchmark behind `python main.py bench`: the whole pipeline on generated clips, measured.

For each clip size (720p and 1080p by default) it generates a clip of a real face (the newton.png
painting from the scrfd sdist) gliding over a test card, then:

1. warms every model up on a short clip;
2. exports the clip once with per-stage timing, on one worker (the GPU is synchronised at each stage
   edge, so each stage's time is its own): per-stage p50/p95;
3. exports it again, unprofiled, as a user would: export fps, GPU utilisation, peak VRAM and host RAM,
   and a log of every model call (model, input shapes);
4. replays each distinct model call alone to learn its isolated cost: pipeline efficiency is the sum of
   the isolated costs of a frame's model calls over the end-to-end time per frame (1.0: the GPU never
   waits on anything but models; the rest is decode, encode, pre/post-processing and hand-offs);
5. plays the clip in real time through live mode (latest-frame-wins, as from a webcam): latency p50/p99
   from capture to swapped pixels, live fps and skipped frames.

Models: the real SCRFD detector from the scrfd sdist, and compute stand-ins for the rest (convolution
trunks with the real models' tensor specs, so the figures mean something) unless `real` is asked for
and the real models are installed. Stand-ins are named as such in the report.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import onnxruntime
import torch
from PIL import Image

from app import __version__
from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.core.resources import ResourceSampler
from app.core.settings import InferenceSettings
from app.inference.calls import CallLog
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Catalog, load_catalog
from app.models.store import ModelStore
from app.pipeline.job_state import EngineOptions, JobState, SwapJob
from app.pipeline.jobs import run_swap
from app.pipeline.live import LivePipeline, PacedVideo
from app.pipeline.presets import Preset, preset_pipeline
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from tools.fetch_test_assets import fetch
from tools.make_standins import ComputeSize, make_standins
from tools.real_models import REAL_SCRFD_ID, real_scrfd_store

log = logging.getLogger(__name__)

NAMED_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "480p": (854, 480), "240p": (320, 240)}
MODEL_IDS = ("inswapper_128_fp16", "arcface_w600k_r50", "gfpgan_1.4", "occluder")
ISOLATED_RUNS = 20


@dataclass
class BenchOptions:
    folder: Path  # work folder: assets, stand-ins (kept between runs), clips
    sizes: tuple[str, ...] = ("720p", "1080p")
    seconds: float = 3.0
    fps: int = 30
    preset: Preset = Preset.BALANCED
    provider: str | None = None
    workers: int = 0
    compute: ComputeSize = field(default_factory=lambda: ComputeSize(64, 6))
    real_store: ModelStore | None = None  # the user's installed models, when `--real`
    live: bool = True


def parse_size(text: str) -> tuple[int, int]:
    if text in NAMED_SIZES:
        return NAMED_SIZES[text]
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 64 or int(height) < 64:
        raise ValueError(f"size '{text}' is not one of {', '.join(NAMED_SIZES)} or WIDTHxHEIGHT (≥ 64)")
    return int(width), int(height)


# -- set-up ------------------------------------------------------------------------------------------


def bench_store(options: BenchOptions, say: Callable[[str], None]) -> tuple[ModelStore, dict[str, str]]:
    """The models: real SCRFD plus compute stand-ins (or the user's real models). Returns the store
    and, per model, what it is."""
    assets = fetch(options.folder / "assets", sample_photos=False)
    if options.real_store is not None:
        missing = [
            i for i in MODEL_IDS if not options.real_store.status(options.real_store.catalog.get(i)).usable
        ]
        if missing:
            raise DoppelError(f"--real: these models are not installed: {', '.join(missing)}")
        scrfd = real_scrfd_store(assets, options.real_store.root)
        catalog = options.real_store.catalog.merged([scrfd.catalog.get(REAL_SCRFD_ID)])
        return ModelStore(options.real_store.root, catalog), dict.fromkeys(MODEL_IDS, "real")
    size = options.compute
    models = options.folder / f"standins-w{size.width}-d{size.depth}"
    catalog = load_catalog()
    if not all((models / catalog.get(i).file).is_file() for i in MODEL_IDS):
        say(f"Building compute stand-ins (width {size.width}, depth {size.depth}) in {models} …")
        make_standins(models, catalog, list(MODEL_IDS), compute=size)
    scrfd = real_scrfd_store(assets, models)
    store = ModelStore(
        models, Catalog([scrfd.catalog.get(REAL_SCRFD_ID), *(catalog.get(i) for i in MODEL_IDS)])
    )
    kinds = {i: f"compute stand-in (width {size.width}, depth {size.depth})" for i in MODEL_IDS}
    return store, {REAL_SCRFD_ID: "real (scrfd==0.3.0 sdist)", **kinds}


def make_bench_clip(path: Path, size: tuple[int, int], seconds: float, fps: int, face: np.ndarray) -> Path:
    """A clip of `face` gliding and growing over a test card (H.264, yuv420p, a keyframe a second)."""
    if path.is_file():
        return path
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    card = np.stack([x * 255 // width, y * 255 // height, ((x // 40 + y // 40) % 2) * 160], axis=2).astype(
        np.uint8
    )
    frames = max(1, round(seconds * fps))
    partial = path.with_name(path.name + ".partial")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "g": str(fps)}
        for index in range(frames):
            t = index / max(1, frames - 1)
            side = int(min(width, height) * (0.45 + 0.15 * t))
            scaled = np.asarray(Image.fromarray(face).resize((side, side * face.shape[0] // face.shape[1])))
            top = (height - scaled.shape[0]) // 2 + int(0.05 * height * np.sin(2 * np.pi * t))
            left = int((width - side) * (0.2 + 0.6 * t))
            image = card.copy()
            bottom, right = min(height, top + scaled.shape[0]), min(width, left + side)
            image[max(0, top) : bottom, left:right] = scaled[max(0, -top) : bottom - top, : right - left]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return path


# -- measuring ---------------------------------------------------------------------------------------


def isolated_ms_per_frame(
    runtime: InferenceRuntime, log_: CallLog, frames: int, device: torch.device
) -> dict[str, float]:
    """Per model: the time its calls of one frame take when replayed alone (median of ISOLATED_RUNS)."""
    per_model: dict[str, float] = {}
    for signature, count in log_.snapshot().items():
        feeds = {
            name: torch.zeros(shape, dtype=getattr(torch, dtype), device=device)
            for name, shape, dtype in signature.inputs
        }
        for _ in range(3):
            runtime.run(signature.model_id, feeds)
        timings = []
        for _ in range(ISOLATED_RUNS):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            runtime.run(signature.model_id, feeds)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timings.append((time.perf_counter() - start) * 1000.0)
        cost = statistics.median(timings) * count / max(1, frames)
        per_model[signature.model_id] = per_model.get(signature.model_id, 0.0) + cost
    return per_model


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def live_latency(state: JobState, clip: Path, seconds: float) -> dict[str, Any]:
    """Live mode on the clip played in real time; the sink copies to the host as a preview would."""
    source = PacedVideo(clip)
    sink_frames: list[int] = []

    def preview(frame: torch.Tensor, captured: Any) -> None:
        frame.cpu()
        sink_frames.append(captured.sequence)

    pipeline = LivePipeline(state.analyser, state.swapper, source, [preview], state.device, state.timer)
    try:
        report = pipeline.run(seconds=seconds + 1.0)
    finally:
        source.close()
    return {
        "frames": report.frames,
        "fps": round(report.fps, 2),
        "skipped": report.skipped + source.dropped,
        "latency_p50_ms": _percentile(report.latency_ms, 50),
        "latency_p99_ms": _percentile(report.latency_ms, 99),
    }


def bench_size(
    runtime: InferenceRuntime,
    options: BenchOptions,
    size_name: str,
    face_path: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    size = parse_size(size_name)
    clips = options.folder / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    face = np.asarray(Image.open(face_path).convert("RGB"))
    tag = f"{size[0]}x{size[1]}-{options.seconds:g}s-{options.fps}"
    clip = make_bench_clip(clips / f"bench-{tag}.mp4", size, options.seconds, options.fps, face)
    warm = make_bench_clip(clips / f"warm-{size[0]}x{size[1]}.mp4", size, 0.3, options.fps, face)
    settings = _settings(runtime, options)
    engine = EngineOptions(workers=options.workers, resume=False)
    out = options.folder / "out"
    out.mkdir(exist_ok=True)

    def job(target: Path, name: str, options: EngineOptions = engine) -> SwapJob:
        return SwapJob(
            sources=(face_path,), target=target, output=out / name, settings=settings, engine=options
        )

    say(f"{size_name}: warming up …")
    run_swap(runtime, job(warm, "warm.mp4"))
    say(f"{size_name}: profiled export …")
    # One worker while profiling: the GPU is synchronised device-wide at stage edges, so with several
    # workers a stage would also be charged for the others' kernels.
    single = EngineOptions(workers=1, resume=False)
    profiled = run_swap(runtime, job(clip, "profiled.mp4", single), profile=True)
    say(f"{size_name}: export …")
    calls = CallLog()
    runtime.call_log = calls
    try:
        with ResourceSampler(runtime.settings.device_index) as sampler:
            report = run_swap(runtime, job(clip, "export.mp4"))
        resources = sampler.report()
    finally:
        runtime.call_log = None
    device = torch.device(report.device)
    e2e_ms = report.seconds * 1000.0 / max(1, report.frames)
    isolated = isolated_ms_per_frame(runtime, calls, report.frames, device)
    result: dict[str, Any] = {
        "size": f"{size[0]}x{size[1]}",
        "frames": report.frames,
        "faces_swapped": report.faces_swapped,
        "device": report.device,
        "workers": report.workers,
        "decoder": report.decoder,
        "encoder": report.encoder,
        "export_fps": round(report.fps, 2),
        "e2e_ms_per_frame": round(e2e_ms, 2),
        "stages_ms": {
            name: {
                "p50": round(s.p50_ms, 2),
                "p95": round(s.p95_ms, 2),
                "mean": round(s.mean_ms, 2),
                "count": s.count,
            }
            for name, s in profiled.stage_stats.items()
        },
        "isolated_model_ms_per_frame": {k: round(v, 3) for k, v in isolated.items()},
        "efficiency": round(sum(isolated.values()) / e2e_ms, 3) if e2e_ms else None,
        "resources": resources.to_json(),
        "tracking": report.tracking,
    }
    if options.live:
        say(f"{size_name}: live …")
        live_timer = StageTimer()
        state = JobState(runtime, job(clip, "live.mp4"), live_timer)
        result["live"] = live_latency(state, clip, options.seconds)
        result["live"]["stages_ms"] = {k: round(v, 2) for k, v in live_timer.mean_ms().items()}
    return result


def _settings(runtime: InferenceRuntime, options: BenchOptions) -> PipelineSettings:
    def installed(model_id: str) -> bool:
        catalog = runtime.store.catalog
        return model_id in catalog and runtime.store.status(catalog.get(model_id)).usable

    base, _ = preset_pipeline(options.preset, installed, "inswapper_128_fp16")
    analysis = AnalysisSettings(
        detector=REAL_SCRFD_ID,
        detection=base.analysis.detection,
        landmarker=None,  # no landmark model is in the benchmark's set
        selection=base.analysis.selection,
    )
    return base.model_copy(update={"analysis": analysis})


def machine() -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "doppel": __version__,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "providers": onnxruntime.get_available_providers(),
        "pyav": av.__version__,
    }


def run_bench(options: BenchOptions, say: Callable[[str], None]) -> dict[str, Any]:
    for name in options.sizes:
        parse_size(name)  # refuse a bad size before minutes of set-up
    store, kinds = bench_store(options, say)
    face = options.folder / "assets" / "newton.png"
    inference = InferenceSettings(**({"provider": options.provider} if options.provider else {}))
    runtime = InferenceRuntime(store, inference, cache_root=options.folder / "cache")
    try:
        results = {name: bench_size(runtime, options, name, face, say) for name in options.sizes}
    finally:
        runtime.close()
    return {
        "machine": machine(),
        "preset": options.preset.value,
        "clip": {"seconds": options.seconds, "fps": options.fps, "face": "newton.png (scrfd sdist)"},
        "models": kinds,
        "results": results,
    }
