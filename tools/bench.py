"""The benchmark behind `python main.py bench`: the pipeline users run, on models that cost what theirs do.

The pipeline is the one the real-time targets are set for: YOLOv8-face detection on every frame (no
tracking), 2DFAN4 landmarks, ArcFace for the source, inswapper_128, GFPGAN 1.4 and the box mask, on a
1080p 30 fps clip of one face. Its models are FLOP-matched stand-ins (tools/flop_standins.py: the real
models' tensor specs, GFLOPs and parameter counts, random weights), built once on the machine that runs
the benchmark, or with `real` the user's installed models. The report names each stand-in as such.

It measures, in this order (the whole commands first, while this process has not touched the GPU):

1. the whole command as a user types it (`main.py swap --settings …` in a fresh process), cold (empty
   caches: fp16 conversions, graph probes, engine caches) and again warm: its wall time, the time from
   launch to the first swapped frame written, and the process's peak VRAM and host RAM;
2. in this process, on warm sessions: one export profiled stage by stage (the GPU synchronised at each
   stage edge, one worker), then one as a user runs it: steady fps (first to last frame), GPU busy %,
   and every model call it made (model, input shapes);
3. the limit: each of those calls replayed alone (median of ISOLATED_RUNS), summed per frame: the time
   a frame would take if the GPU only ever ran models; the measured time per frame as a ratio of it;
4. live mode on the clip played in real time at the clip's rate (latest frame wins, as from a webcam):
   latency p50/p99 from capture to swapped pixels and skipped frames; then faster and faster until it
   can no longer keep up: the highest rate live sustains;
5. one image swapped (the clip's first frame as a PNG), warm;
6. the encoders alone: the clip's frames, decoded beforehand, through the export's segmented writer with
   its default settings (preset, segment length, jobs, threads): the most frames a second an export can
   write on this machine's cores, whatever the GPU does. A steady export near it is paced by x264;

then sets each figure beside its target (TARGETS).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from app.faces.detector import DetectionSettings
from app.inference.calls import CallLog
from app.inference.runtime import InferenceRuntime
from app.media.i420 import I420
from app.media.segments import SegmentedVideoWriter
from app.models.catalog import Catalog, load_catalog
from app.models.store import ModelStore
from app.pipeline.job_state import EngineOptions, JobState, SwapJob
from app.pipeline.jobs import run_swap
from app.pipeline.live import LivePipeline, PacedVideo
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.processing.settings import MaskSettings, ProcessingSettings, RestoreSettings, SwapSettings
from app.tracking.face_tracker import TrackingSettings
from tools import trace_summary
from tools.fetch_test_assets import fetch
from tools.flop_standins import TARGETS as FLOP_TARGETS
from tools.flop_standins import describe, make_flop_standins

log = logging.getLogger(__name__)

NAMED_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "480p": (854, 480), "240p": (320, 240)}
PIPELINE = {
    "detector": "yolov8n_face",
    "landmarker": "2dfan4",
    "recogniser": "arcface_w600k_r50",
    "swapper": "inswapper_128",
    "restorer": "gfpgan_1.4",
}
MODEL_IDS = tuple(PIPELINE.values())
ISOLATED_RUNS = 20
LIVE_SECONDS = 3.0
LIVE_RATES = (30, 60, 90, 120, 150, 180, 240)  # tried in turn for the highest sustained rate
SUSTAINED = 0.97  # a rate is sustained when live delivers this share of its frames
REPO = Path(__file__).resolve().parents[1]


@dataclass
class BenchOptions:
    folder: Path  # work folder: assets, stand-ins (kept between runs), clips, caches
    size: str = "1080p"
    seconds: float = 10.0
    fps: int = 30
    provider: str | None = None
    workers: int = 0
    real_store: ModelStore | None = None  # the user's installed models, when `--real`
    live: bool = True
    whole_command: bool = True
    cuda_graphs: bool = True  # in this process's runs (the whole command follows the user's settings)
    standin_scale: float = 1.0  # < 1: tiny stand-ins of the same graphs (tests), not the real cost
    trace: Path | None = None  # one more export under torch's profiler, its trace written here


def parse_size(text: str) -> tuple[int, int]:
    if text in NAMED_SIZES:
        return NAMED_SIZES[text]
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 64 or int(height) < 64:
        raise ValueError(f"size '{text}' is not one of {', '.join(NAMED_SIZES)} or WIDTHxHEIGHT (≥ 64)")
    return int(width), int(height)


def bench_settings() -> PipelineSettings:
    return PipelineSettings(
        analysis=AnalysisSettings(
            detector=PIPELINE["detector"],
            detection=DetectionSettings(score=0.5, size=640, max_faces=8),
            landmarker=PIPELINE["landmarker"],
        ),
        tracking=TrackingSettings(enabled=False),  # detection on every frame
        processing=ProcessingSettings(
            swap=SwapSettings(swapper=PIPELINE["swapper"]),
            restore=RestoreSettings(restorer=PIPELINE["restorer"]),
            mask=MaskSettings(box=True),
        ),
    )


# -- set-up ------------------------------------------------------------------------------------------


def bench_store(options: BenchOptions, say: Callable[[str], None]) -> tuple[ModelStore, dict[str, Any]]:
    """The models (FLOP-matched stand-ins, or the user's real ones) and, per model, what it is."""
    if options.real_store is not None:
        store = options.real_store
        missing = [i for i in MODEL_IDS if not store.status(store.catalog.get(i)).usable]
        if missing:
            raise DoppelError(f"--real: these models are not installed: {', '.join(missing)}")
        return store, {i: {"kind": "real"} for i in MODEL_IDS}
    catalog = load_catalog()
    scale = options.standin_scale
    models = options.folder / ("flop-standins" if scale == 1.0 else f"standins-x{scale:g}")
    probe = ModelStore(models, Catalog([catalog.get(i) for i in MODEL_IDS]))
    if not all(probe.status(probe.catalog.get(i)).usable for i in MODEL_IDS):
        say(f"Building FLOP-matched stand-ins in {models} (once per machine) …")
        make_flop_standins(models, catalog, list(MODEL_IDS), scale)
        probe = ModelStore(models, probe.catalog)
    assert all(i in FLOP_TARGETS for i in MODEL_IDS)
    return probe, {i: describe(catalog.get(i), scale) for i in MODEL_IDS}


def make_bench_clip(path: Path, size: tuple[int, int], frames: int, fps: int, face: np.ndarray) -> Path:
    """`face` at the frame's centre, half its height, swaying a little over a test card (H.264,
    yuv420p, a keyframe a second). The stand-in detector reports a face there (FACE_BOX)."""
    if path.is_file():
        return path
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    card = np.stack([x * 255 // width, y * 255 // height, ((x // 40 + y // 40) % 2) * 160], axis=2)
    card = card.astype(np.uint8)
    side = height // 2
    scaled = np.asarray(Image.fromarray(face).resize((side, side)))
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "g": str(fps)}
        for index in range(frames):
            sway = int(0.02 * width * np.sin(2 * np.pi * index / max(1, fps * 2)))
            top, left = (height - side) // 2, (width - side) // 2 + sway
            image = card.copy()
            image[top : top + side, left : left + side] = scaled
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return path


@dataclass(frozen=True)
class Inputs:
    store: ModelStore
    face: Path
    clip: Path
    warm_clip: Path
    still: Path
    settings_file: Path
    out: Path


def _inputs(options: BenchOptions, store: ModelStore, say: Callable[[str], None]) -> Inputs:
    assets = fetch(options.folder / "assets", sample_photos=False)
    face_path = assets / "newton.png"
    size = parse_size(options.size)
    face = np.asarray(Image.open(face_path).convert("RGB"))
    frames = max(1, round(options.seconds * options.fps))
    clips = options.folder / "clips"
    say(f"Clip: {size[0]}x{size[1]}, {frames} frames at {options.fps} fps")
    clip = make_bench_clip(
        clips / f"bench-{size[0]}x{size[1]}-{frames}-{options.fps}.mp4", size, frames, options.fps, face
    )
    warm = make_bench_clip(clips / f"warm-{size[0]}x{size[1]}.mp4", size, 10, options.fps, face)
    still = clips / f"still-{size[0]}x{size[1]}.png"
    if not still.is_file():
        with av.open(str(clip)) as container:
            first = next(container.decode(video=0)).to_ndarray(format="rgb24")
        Image.fromarray(first).save(still)
    out = options.folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    settings_file = options.folder / "bench-settings.json"
    settings_file.write_text(bench_settings().model_dump_json(indent=2), encoding="utf-8")
    return Inputs(store, face_path, clip, warm, still, settings_file, out)


# -- 1. the whole command ----------------------------------------------------------------------------


def swap_command(inputs: Inputs, options: BenchOptions, output: Path) -> list[str]:
    command = [
        sys.executable, str(REPO / "main.py"), "swap", "--json",
        "--models-dir", str(inputs.store.root),
        "--source", str(inputs.face), "--target", str(inputs.clip), "--output", str(output),
        "--settings", str(inputs.settings_file), "--no-resume",
    ]  # fmt: skip
    if options.provider:
        command += ["--providers", options.provider]
    if options.workers:
        command += ["--workers", str(options.workers)]
    return command


def whole_command(inputs: Inputs, options: BenchOptions, cache: Path, label: str) -> dict[str, Any]:
    """`main.py swap` in a fresh process with `cache` as its cache folder: wall time, launch to the
    first swapped frame, peak VRAM (the device's, above what it used before) and host RAM."""
    output = inputs.out / f"command-{label}.mp4"
    environment = {**os.environ, "DOPPEL_CACHE_DIR": str(cache)}
    with ResourceSampler() as before:
        pass
    baseline_vram = before.report().gpu_mem_peak_mb or 0.0
    baseline_rss = before.report().host_rss_peak_mb or 0.0
    with ResourceSampler() as sampler:
        launched = time.time()
        started = time.perf_counter()
        done = subprocess.run(
            swap_command(inputs, options, output), env=environment, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise DoppelError(
            f"bench: `main.py swap` ({label}) failed with exit {done.returncode}:\n{done.stderr[-2000:]}"
        )
    report = json.loads(done.stdout)
    resources = sampler.report()
    first = report.get("first_frame_at")
    return {
        "seconds": round(seconds, 2),
        "first_frame_s": round(first - launched, 2) if first else None,
        "frames": report["frames"],
        "processing_fps": report["fps"],
        "peak_vram_mb": _minus(resources.gpu_mem_peak_mb, baseline_vram),
        "peak_host_rss_mb": _minus(resources.host_rss_peak_mb, baseline_rss),
        "encoder": report.get("encoder"),
        # Seconds from launch to each step of the start-up (app.core.milestones).
        "milestones_s": {name: round(at - launched, 2) for name, at in report.get("milestones", {}).items()},
    }


def _minus(value: float | None, baseline: float) -> float | None:
    return None if value is None else round(value - baseline, 1)


# -- 2, 3. export and its limit ------------------------------------------------------------------------


def isolated_ms_per_frame(
    runtime: InferenceRuntime, log_: CallLog, frames: int, device: torch.device
) -> dict[str, float]:
    """Per model: the time its calls of one frame take when replayed alone (median of ISOLATED_RUNS),
    at the batch sizes and precision the export used."""
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


def export_figures(
    runtime: InferenceRuntime, inputs: Inputs, options: BenchOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    settings = bench_settings()

    def job(target: Path, name: str, workers: int = options.workers) -> SwapJob:
        return SwapJob(
            sources=(inputs.face,),
            target=target,
            output=inputs.out / name,
            settings=settings,
            engine=EngineOptions(workers=workers, resume=False),
        )

    say("Export: warming up …")
    run_swap(runtime, job(inputs.warm_clip, "warm.mp4"))
    say("Export: profiled, stage by stage …")
    # One worker while profiling: the GPU is synchronised device-wide at stage edges, so with several
    # workers a stage would also be charged for the others' kernels.
    profiled = run_swap(runtime, job(inputs.clip, "profiled.mp4", workers=1), profile=True)
    say("Export: as a user runs it …")
    calls = CallLog()
    runtime.call_log = calls
    try:
        before = _allocator_counts(runtime)
        with ResourceSampler(runtime.settings.device_index) as sampler:
            report = run_swap(runtime, job(inputs.clip, "export.mp4"))
            finished = time.time()
        resources = sampler.report()
        after = _allocator_counts(runtime)
    finally:
        runtime.call_log = None
    first = report.first_frame_at or finished
    steady_ms = (finished - first) * 1000.0 / max(1, report.frames - 1)
    say("Limit: each model call alone …")
    isolated = isolated_ms_per_frame(runtime, calls, report.frames, torch.device(report.device))
    limit = sum(isolated.values())
    traced = None
    if options.trace is not None:
        say(f"Export under the profiler, every thread and stream → {options.trace} …")
        cuda = torch.device(report.device).type == "cuda"
        run = lambda: run_swap(runtime, job(inputs.clip, "traced.mp4"))  # noqa: E731
        traced_report, events, names = trace_summary.record(run, options.trace, cuda)
        traced = {"file": str(options.trace), **trace_summary.summarise(events, traced_report.frames, names)}
    return {
        "frames": report.frames,
        "faces_swapped": report.faces_swapped,
        "device": report.device,
        "workers": report.workers,
        "batch": report.batch,
        "decoder": report.decoder,
        "encoder": report.encoder,
        "job_fps": round(report.fps, 2),
        "steady_fps": round(1000.0 / steady_ms, 2) if steady_ms > 0 else None,
        "measured_ms_per_frame": round(steady_ms, 2),
        "limit_ms_per_frame": round(limit, 2),
        "ratio_to_limit": round(steady_ms / limit, 2) if limit else None,
        "isolated_model_ms_per_frame": {k: round(v, 3) for k, v in isolated.items()},
        "calls": {f"{s.model_id} {list(s.inputs[0][1])}": n for s, n in calls.snapshot().items()},
        # Where the steady run's stages waited on each other, per frame: the stage nobody waits for
        # while others wait on it is the one that sets the pace.
        "waits_ms_per_frame": {
            name: round(seconds * 1000.0 / max(1, report.frames), 3) for name, seconds in report.waits.items()
        },
        "stages_ms": {
            name: {"p50": round(s.p50_ms, 2), "p95": round(s.p95_ms, 2), "count": s.count}
            for name, s in profiled.stage_stats.items()
        },
        "resources": resources.to_json(),
        # torch's allocator going to the device mid-run (cudaMalloc, cudaFree: both synchronise it);
        # ONNX Runtime's own arenas are not counted here.
        "allocator_steady_run": {k: after[k] - before.get(k, 0) for k in after} if after else None,
        **({"trace": traced} if traced is not None else {}),
    }


ALLOCATOR_COUNTS = ("num_device_alloc", "num_device_free", "num_alloc_retries", "num_sync_all_streams")


def _allocator_counts(runtime: InferenceRuntime) -> dict[str, int]:
    """torch's caching allocator: how often it went to the device for memory, retried after freeing
    its cache, or synchronised every stream; {} without CUDA."""
    if not torch.cuda.is_available():
        return {}
    stats = torch.cuda.memory_stats(runtime.settings.device_index)
    return {name: int(stats.get(name, 0)) for name in ALLOCATOR_COUNTS}


# -- 4. live -------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def live_run(
    runtime: InferenceRuntime, inputs: Inputs, rate: float, clip_fps: int, seconds: float
) -> dict[str, Any]:
    """Live mode on the clip played at `rate` frames per second (looping); the sink copies to the host
    as a preview would."""
    job = SwapJob(
        sources=(inputs.face,), target=inputs.clip, output=inputs.out / "live.mp4", settings=bench_settings()
    )
    timer = StageTimer()
    state = JobState(runtime, job, timer)
    source = PacedVideo(inputs.clip, loop=True, speed=rate / clip_fps)

    def preview(frame: torch.Tensor, captured: Any) -> None:
        frame.cpu()

    pipeline = LivePipeline(state.analyser, state.swapper, source, [preview], state.device, timer)
    try:
        report = pipeline.run(seconds=seconds)
    finally:
        source.close()
    offered = report.frames + report.skipped + source.dropped
    return {
        "rate": rate,
        "frames": report.frames,
        "fps": round(report.fps, 2),
        "skipped": report.skipped + source.dropped,
        "delivered_share": round(report.frames / offered, 3) if offered else None,
        "latency_p50_ms": _percentile(report.latency_ms, 50),
        "latency_p99_ms": _percentile(report.latency_ms, 99),
    }


def live_figures(
    runtime: InferenceRuntime, inputs: Inputs, options: BenchOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    seconds = max(1.0, min(LIVE_SECONDS, options.seconds))
    say(f"Live at {options.fps} fps …")
    live_run(runtime, inputs, options.fps, options.fps, 1.0)  # the live path's own warm-up
    at_rate = live_run(runtime, inputs, options.fps, options.fps, seconds)
    sustained, tries = None, []
    for rate in LIVE_RATES:
        say(f"Live at {rate} fps …")
        attempt = live_run(runtime, inputs, rate, options.fps, seconds)
        tries.append(attempt)
        if (attempt["delivered_share"] or 0) < SUSTAINED:
            break
        sustained = rate
    return {"at_clip_rate": at_rate, "highest_sustained_fps": sustained, "rates_tried": tries}


# -- 5. one image -------------------------------------------------------------------------------------


def image_seconds(runtime: InferenceRuntime, inputs: Inputs) -> float:
    job = SwapJob(
        sources=(inputs.face,),
        target=inputs.still,
        output=inputs.out / "still.png",
        settings=bench_settings(),
    )
    run_swap(runtime, job)  # warm
    started = time.perf_counter()
    run_swap(runtime, job)
    return round(time.perf_counter() - started, 3)


# -- the report ---------------------------------------------------------------------------------------


def execution(runtime: InferenceRuntime) -> dict[str, Any]:
    """Per model: where and how it ran (provider, precision, CUDA graph, batch axis)."""
    described: dict[str, Any] = {}
    for model_id in MODEL_IDS:
        try:
            described[model_id] = runtime.describe(model_id)
        except DoppelError as exc:
            described[model_id] = {"error": str(exc)}
    return described


@dataclass(frozen=True)
class Target:
    figure: str
    goal: str
    met: Callable[[float], bool]
    path: tuple[str, ...]


TARGETS = (
    Target("steady export fps", "≥ 150", lambda v: v >= 150, ("export", "steady_fps")),
    Target("whole command, warm (s)", "≤ 6", lambda v: v <= 6, ("command", "warm", "seconds")),
    Target("live skipped at 30 fps", "0", lambda v: v == 0, ("live", "at_clip_rate", "skipped")),
    Target("live p50 latency (ms)", "≤ 15", lambda v: v <= 15, ("live", "at_clip_rate", "latency_p50_ms")),
    Target("live p99 latency (ms)", "≤ 25", lambda v: v <= 25, ("live", "at_clip_rate", "latency_p99_ms")),
    Target("highest sustained live fps", "≥ 90", lambda v: v >= 90, ("live", "highest_sustained_fps")),
    Target(
        "GPU busy during export (%)", "≥ 85", lambda v: v >= 85, ("export", "resources", "gpu_util_mean_pct")
    ),
    Target("measured / limit", "≤ 1.25", lambda v: v <= 1.25, ("export", "ratio_to_limit")),
    Target("first swapped frame, warm (s)", "≤ 3", lambda v: v <= 3, ("command", "warm", "first_frame_s")),
    Target("first swapped frame, cold (s)", "≤ 15", lambda v: v <= 15, ("command", "cold", "first_frame_s")),
    Target(
        "peak VRAM, whole command (MB)", "≤ 4096", lambda v: v <= 4096, ("command", "warm", "peak_vram_mb")
    ),
)


def _lookup(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value = _lookup(results, target.path)
        rows.append({
            "figure": target.figure,
            "target": target.goal,
            "measured": value,
            "met": None if value is None else bool(target.met(float(value))),
        })  # fmt: skip
    return rows


# -- 6. the encoders alone ------------------------------------------------------------------------------


ENCODER_FRAMES_MB = 2048  # the encoders-alone run holds its decoded frames in memory, at most this much


def encoder_figures(inputs: Inputs) -> dict[str, Any]:
    """The clip's frames (decoded to I420 beforehand) through the segmented writer with an export's
    default settings, timed from the first frame handed over until the joined file is in place."""
    defaults = SwapJob(sources=(inputs.face,), target=inputs.clip, output=inputs.out / "encoder-alone.mp4")
    with av.open(str(inputs.clip)) as container:
        stream = container.streams.video[0]
        width, height, fps = stream.codec_context.width, stream.codec_context.height, stream.average_rate
        most = max(1, ENCODER_FRAMES_MB * 2**20 // (width * height * 3 // 2))  # decoded frames held at once
        frames = [
            I420(torch.from_numpy(frame.to_ndarray(format="yuv420p")), width, height)
            for _, frame in zip(range(most), container.decode(stream), strict=False)
        ]
    started = time.perf_counter()
    writer = SegmentedVideoWriter(
        defaults.output, width, height, Fraction(fps), codec=defaults.codec, crf=defaults.crf,
        hardware=defaults.hardware_encoder, preset=defaults.x264_preset,
        fingerprint=f"encoder alone {time.time_ns()}", segment_frames=defaults.engine.segment_frames,
        jobs=defaults.engine.encoder_jobs or None,
    )  # fmt: skip
    with writer:
        for frame in frames:
            writer.write(frame)
    seconds = time.perf_counter() - started
    return {
        "fps": round(len(frames) / seconds, 2),
        "frames": len(frames),
        "encoder": writer.encoder_name,
        "preset": defaults.x264_preset,
        "segment_frames": defaults.engine.segment_frames,
        "jobs": writer.jobs,
        "threads_each": writer.threads,
    }


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
    parse_size(options.size)  # refuse a bad size before minutes of set-up
    started = time.perf_counter()
    store, models = bench_store(options, say)
    inputs = _inputs(options, store, say)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def measure(name: str, part: Callable[[], Any]) -> None:
        # A part that fails is reported as such and the others still run: a partial report beats none.
        try:
            results[name] = part()
        except DoppelError as exc:
            errors[name] = str(exc)
            say(f"{name}: failed: {str(exc)[:300]}")

    if options.whole_command:
        cache = options.folder / "command-cache"
        shutil.rmtree(cache, ignore_errors=True)

        def commands() -> dict[str, Any]:
            say("Whole command, cold (empty caches) …")
            cold = whole_command(inputs, options, cache, "cold")
            say("Whole command, warm (second launch) …")
            return {"cold": cold, "warm": whole_command(inputs, options, cache, "warm")}

        measure("command", commands)
    inference = InferenceSettings(
        **({"provider": options.provider} if options.provider else {}),
        **({} if options.cuda_graphs else {"cuda_graphs": "off"}),
    )
    runtime = InferenceRuntime(store, inference, cache_root=options.folder / "command-cache")
    try:
        measure("export", lambda: export_figures(runtime, inputs, options, say))
        if options.live:
            measure("live", lambda: live_figures(runtime, inputs, options, say))
        say("One image …")
        measure("image_swap_s", lambda: image_seconds(runtime, inputs))
        say("The encoders alone …")
        measure("encoder_alone", lambda: encoder_figures(inputs))
        results["execution"] = execution(runtime)
    finally:
        runtime.close()
    if errors:
        results["errors"] = errors
    return {
        "machine": machine(),
        "command": " ".join(["python main.py bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else None,
        "clip": {"size": options.size, "seconds": options.seconds, "fps": options.fps, "face": "newton.png"},
        "pipeline": PIPELINE,
        "in_process_cuda_graphs": options.cuda_graphs,
        "models": models,
        "results": results,
        "targets": targets(results),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
