"""Swap jobs: an image or a video in, a labelled output out, never a partial file posing as complete.

    check inputs and the output folder → load models → source identity → frames → FrameAnalyser →
    FrameSwapper → content check → (watermark) → write with the synthetic-media label

Images run here on the calling thread; videos go through the export engine (app.pipeline.export:
prefetch queue, worker pool, resumable segments). Videos keep their frame timestamps, frame rate and
audio; frames with no face pass through unchanged. A cancelled or failed job leaves no file at the
output path; a video job keeps its finished segments, so running it again resumes.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Literal

from app.core.errors import DoppelError
from app.core.profiling import StageTimer, write_profile
from app.core.telemetry import get_telemetry
from app.inference.runtime import InferenceRuntime
from app.media.atomic import check_folder
from app.media.errors import MediaWriteError
from app.media.image_writer import IMAGE_SUFFIXES, write_image
from app.media.images import ImageReadError, load_image
from app.media.video_writer import VIDEO_SUFFIXES
from app.pipeline.export import Progress, export_video
from app.pipeline.job_state import (
    EngineOptions,
    JobCancelledError,
    JobReport,
    JobState,
    SwapJob,
)
from app.pipeline.sources import NoFaceError

__all__ = ["EngineOptions", "JobCancelledError", "JobReport", "Progress", "SwapJob", "run_swap"]

log = logging.getLogger(__name__)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _check_paths(job: SwapJob) -> Literal["image", "video"]:
    for source in job.sources:
        if not source.is_file():
            raise ImageReadError(f"Source image {source} does not exist")
    if not job.target.is_file():
        raise DoppelError(f"Target {job.target} does not exist")
    kind: Literal["image", "video"] = "image" if is_image(job.target) else "video"
    allowed = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    if job.output.suffix.lower() not in allowed:
        what = "an image" if kind == "image" else "a video"
        raise MediaWriteError(
            f"Cannot write {job.output}: {what} target needs {what} output ({', '.join(allowed)})"
        )
    if job.output.resolve() == job.target.resolve():
        raise MediaWriteError(f"Cannot write {job.output}: it is the target itself; choose another name")
    check_folder(job.output)
    return kind


def run_swap(
    runtime: InferenceRuntime,
    job: SwapJob,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    profile: bool = False,
    timer: StageTimer | None = None,
) -> JobReport:
    """Run `job` to its output. `timer` collects the per-stage times (the caller may read it while the
    job runs, e.g. the GUI's performance dock); without one the job keeps its own, which synchronises
    with the GPU at each stage's edges when `profile` is on."""
    kind = _check_paths(job)
    if timer is None:
        timer = StageTimer(synchronise=profile, nvtx=profile)
    started = time.perf_counter()
    state = JobState(runtime, job, timer)
    report = JobReport(job.output, kind, device=str(state.device), models=state.label.models)
    if kind == "image":
        _swap_image(state, report)
    else:
        export_video(state, report, progress, cancel)
    report.seconds = time.perf_counter() - started
    report.stage_ms = timer.mean_ms()
    report.stage_stats = timer.summary()
    if profile:
        report.profile = _write_profile(job.output, timer, report)
    get_telemetry().job(_summary(report))
    return report


def _swap_image(state: JobState, report: JobReport) -> None:
    job = state.job
    loaded = load_image(job.target)
    report.notes.extend(loaded.notes)
    result = state.swapper.swap(loaded.frame.to(state.device), state.analyser, state.timer)
    report.frames = 1
    report.faces_swapped = len(result.faces)
    report.frames_with_faces = int(bool(result.faces))
    state.check_content(result.frame, 0, state.timer)
    out = result.frame
    if report.faces_swapped == 0:
        raise NoFaceError(f"No face found in target {job.target}: nothing was written")
    with state.timer.stage("write"):
        notes = write_image(job.output, out.cpu(), loaded.alpha, state.label, job.quality)
    report.first_frame_at = time.time()
    report.notes.extend(notes)


def _summary(report: JobReport) -> dict[str, object]:
    return {
        "kind": report.kind,
        "frames": report.frames,
        "seconds": round(report.seconds, 3),
        "fps": round(report.fps, 2),
        "device": report.device,
        "workers": report.workers,
        "batch": report.batch,
        "decoder": report.decoder,
        "encoder": report.encoder,
        "resumed_from": report.resumed_from,
        "tracking": report.tracking,
        "stage_ms": {name: round(ms, 3) for name, ms in report.stage_ms.items()},
    }


def _write_profile(output: Path, timer: StageTimer, report: JobReport) -> list[Path]:
    """`<output>.profile.csv` and `.json` beside the output: per-stage timings of this run."""
    extra = {**_summary(report), "output": str(report.output), "models": list(report.models)}
    return list(write_profile(output, timer, extra))
