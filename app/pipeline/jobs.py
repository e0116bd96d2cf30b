"""Swap jobs: an image or a video in, a labelled output out, never a partial file posing as complete.

    check inputs and the output folder → load models → source identity → frames → FrameSwapper →
    content check → (watermark) → write with the synthetic-media label

Videos keep their frame timestamps, frame rate and audio; frames with no face pass through unchanged.
A cancelled or failed job leaves no file at the output path (encoders write to a `.partial` first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.faces.detector import DetectionSettings, FaceDetector
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionSettings
from app.inference.runtime import InferenceRuntime
from app.media.atomic import check_folder
from app.media.errors import MediaWriteError
from app.media.image_writer import IMAGE_SUFFIXES, write_image
from app.media.images import ImageReadError, load_image
from app.media.labels import SyntheticLabel
from app.media.video import DecodedFrame, open_video
from app.media.video_writer import VIDEO_SUFFIXES, VideoCodec, VideoWriter
from app.models.catalog import Kind
from app.pipeline.frame_swap import FrameSwapper, frame_device
from app.pipeline.sources import NoFaceError, load_sources
from app.processing.compositor import FaceCompositor
from app.processing.content import ContentAnalyser, ContentBlockedError
from app.processing.settings import ProcessingSettings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (frames done, frames expected)
CONTENT_CHECK_SECONDS = 1.0  # a video is checked about once a second of footage, and its first frame


class JobCancelledError(DoppelError):
    """The user stopped the job; nothing was written."""


@dataclass(frozen=True)
class SwapJob:
    sources: tuple[Path, ...]
    target: Path
    output: Path
    processing: ProcessingSettings = field(default_factory=ProcessingSettings)
    detector: str | None = None  # None: the catalog's default detector
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    watermark: str | None = None  # visible text, or None
    analysers: tuple[str, ...] = ()  # content analyser models; empty: no content check
    audio: bool = True
    codec: VideoCodec = "h264"
    crf: int = 18
    hardware_encoder: bool = True
    quality: int = 95  # JPEG / WebP


@dataclass
class JobReport:
    output: Path
    kind: Literal["image", "video"]
    frames: int = 0
    frames_with_faces: int = 0
    faces_swapped: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    encoder: str | None = None
    encoder_fallback: str | None = None
    models: tuple[str, ...] = ()
    stage_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


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
        raise MediaWriteError(
            f"Cannot write {job.output}: a {kind} target needs a {kind} output ({', '.join(allowed)})"
        )
    if job.output.resolve() == job.target.resolve():
        raise MediaWriteError(f"Cannot write {job.output}: it is the target itself; choose another name")
    check_folder(job.output)
    return kind


class _Job:
    """One run of a SwapJob: the models, the identity and the running totals."""

    def __init__(self, runtime: InferenceRuntime, job: SwapJob, timer: StageTimer) -> None:
        self.job = job
        self.timer = timer
        self.device = frame_device(runtime)
        detector = FaceDetector(
            runtime,
            job.detector or runtime.store.catalog.default_for(Kind.DETECTOR, "--detector"),
            job.detection,
        )
        compositor = FaceCompositor(runtime, job.processing)
        recogniser = Recogniser(runtime, compositor.swapper.recogniser_id)
        source = load_sources(job.sources, detector, recogniser, self.device)
        self.swapper = FrameSwapper(
            runtime, detector, compositor, source, job.selection, watermark=job.watermark
        )
        self.analyser = ContentAnalyser(runtime, job.analysers) if job.analysers else None
        models = [*self.swapper.models(), *job.analysers]
        self.label = SyntheticLabel(models=tuple(dict.fromkeys(models)), watermark=job.watermark is not None)

    def swap(self, frame: torch.Tensor, report: JobReport, check_content: bool) -> torch.Tensor:
        result = self.swapper.swap(frame.to(self.device), self.timer)
        report.frames += 1
        report.faces_swapped += len(result.faces)
        report.frames_with_faces += bool(result.faces)
        if check_content and self.analyser is not None:
            with self.timer.stage("content"):
                verdict = self.analyser.check(result.frame)
            if verdict.blocked:
                raise ContentBlockedError(
                    f"The content analyser blocked {self.job.output} (frame {report.frames - 1} of "
                    f"{self.job.target}: {verdict.required} of {len(verdict.votes)} analysers flagged it); "
                    "nothing was written"
                )
        return result.frame


def run_swap(
    runtime: InferenceRuntime,
    job: SwapJob,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    profile: bool = False,
) -> JobReport:
    kind = _check_paths(job)
    timer = StageTimer(synchronise=profile)
    started = time.perf_counter()
    state = _Job(runtime, job, timer)
    report = JobReport(job.output, kind, device=str(state.device), models=state.label.models)
    if kind == "image":
        _swap_image(state, report)
    else:
        _swap_video(state, report, progress, cancel)
    report.seconds = time.perf_counter() - started
    report.stage_ms = timer.mean_ms()
    return report


def _swap_image(state: _Job, report: JobReport) -> None:
    job = state.job
    loaded = load_image(job.target)
    report.notes.extend(loaded.notes)
    out = state.swap(loaded.frame, report, check_content=True)
    if report.faces_swapped == 0:
        raise NoFaceError(f"No face found in target {job.target}: nothing was written")
    with state.timer.stage("write"):
        notes = write_image(job.output, out.cpu(), loaded.alpha, state.label, job.quality)
    report.notes.extend(notes)


def _timed(frames: Iterator[DecodedFrame], timer: StageTimer, stage: str) -> Iterator[DecodedFrame]:
    """The frames, with the time spent producing each one charged to `stage`."""
    while True:
        with timer.stage(stage):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


def _swap_video(
    state: _Job, report: JobReport, progress: Progress | None, cancel: threading.Event | None
) -> None:
    job = state.job
    with open_video(job.target) as source:
        every = max(1, round(float(source.fps) * CONTENT_CHECK_SECONDS))
        writer = VideoWriter(
            job.output,
            source.width,
            source.height,
            source.fps,
            source.time_base,
            job.codec,
            job.crf,
            audio_from=job.target if job.audio and source.has_audio else None,
            label=state.label,
            hardware=job.hardware_encoder,
        )
        with writer:
            report.encoder, report.encoder_fallback = writer.encoder_name, writer.fallback_reason
            for decoded in _timed(source.frames(), state.timer, "decode"):
                if cancel is not None and cancel.is_set():
                    raise JobCancelledError(f"Cancelled: {job.output} was not written")
                out = state.swap(decoded.image, report, check_content=decoded.index % every == 0)
                with state.timer.stage("encode"):
                    writer.write(out.cpu(), decoded.pts)
                if progress is not None:
                    progress(report.frames, max(source.frame_count, report.frames))
            if report.frames == 0:
                raise DoppelError(f"Target {job.target} has no video frames that could be decoded")
            if report.faces_swapped == 0:
                raise NoFaceError(f"No face found in any frame of {job.target}: nothing was written")
        if source.ended_early:
            report.notes.append(
                f"{job.target} ended after {report.frames} of {source.frame_count} frames (truncated?)"
            )
