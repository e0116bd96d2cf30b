"""What a swap job is (SwapJob, EngineOptions), what it reports (JobReport), and the models and identity
one run of it holds (JobState), shared by the image path (app.pipeline.jobs) and the video export engine
(app.pipeline.export)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from app.core.errors import DoppelError
from app.core.milestones import mark
from app.core.profiling import StageStats, StageTimer
from app.faces.identity import Combine
from app.faces.recogniser import Recogniser
from app.inference.runtime import InferenceRuntime
from app.media.choices import X264Preset
from app.media.frame_queue import MAX_CAPACITY, MIN_CAPACITY
from app.media.labels import SyntheticLabel
from app.media.video_writer import VideoCodec
from app.models.catalog import Catalog, Kind
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.frame_swap import FrameSwapper, frame_device
from app.pipeline.settings import PipelineSettings, SourceFace, models_needed
from app.pipeline.sources import SourceLoader, require_complete
from app.processing.compositor import FaceCompositor
from app.processing.content import ContentAnalyser, ContentBlockedError

CONTENT_CHECK_SECONDS = 1.0  # a video is checked about once a second of footage, and its first frame


@dataclass(frozen=True)
class EngineOptions:
    """How a video export runs (not what it looks like: that is PipelineSettings)."""

    workers: int = 0  # swap workers; 0: 2 on a GPU (overlap on separate CUDA streams), else the cores / 2
    queue: int = 32  # decoded frames buffered ahead (16..64)
    segment_frames: int = 240  # frames per checkpointed segment of a resumable export
    resume: bool = True  # pick up an interrupted export of the same job
    hardware_decode: bool = True  # NVDEC when the GPU and FFmpeg have it
    batch: int = 0  # frames per worker call; 0: 4 when the swapper takes a batch, else 1
    encoder_jobs: int = 0  # segments encoded at once, each on its own thread; 0: a core each, ≤ 4

    def __post_init__(self) -> None:
        problems = []
        if self.workers < 0:
            problems.append(f"workers must be ≥ 0 (0: automatic), got {self.workers}")
        if not MIN_CAPACITY <= self.queue <= MAX_CAPACITY:
            problems.append(f"queue must be {MIN_CAPACITY}..{MAX_CAPACITY} frames, got {self.queue}")
        if self.segment_frames < 1:
            problems.append(f"segment frames must be ≥ 1, got {self.segment_frames}")
        if self.batch < 0:
            problems.append(f"batch must be ≥ 0 (0: automatic), got {self.batch}")
        if self.encoder_jobs < 0:
            problems.append(f"encoder jobs must be ≥ 0 (0: automatic), got {self.encoder_jobs}")
        if problems:
            raise ValueError("; ".join(problems))

    def batch_size(self, swapper_takes_a_batch: bool) -> int:
        if self.batch > 0:
            return self.batch
        return 4 if swapper_takes_a_batch else 1

    def worker_count(self, device: torch.device) -> int:
        if self.workers > 0:
            return self.workers
        return 2 if device.type == "cuda" else max(1, (os.cpu_count() or 2) // 2)


class JobCancelledError(DoppelError):
    """The user stopped the job; nothing was written."""


@dataclass(frozen=True)
class Marker:
    """From `frame` on (until the next marker), a video is processed with `settings`."""

    frame: int
    settings: PipelineSettings


@dataclass(frozen=True)
class SwapJob:
    sources: tuple[Path, ...]  # photos and identity files of the person pasted (see SourceFace)
    target: Path
    output: Path
    settings: PipelineSettings = field(default_factory=PipelineSettings)  # before the first marker
    markers: tuple[Marker, ...] = ()  # settings overrides from a frame on (videos)
    combine: Combine | None = None  # how several sources combine; None: see SourceFace
    engine: EngineOptions = field(default_factory=EngineOptions)
    watermark: str | None = None  # visible text, or None
    analysers: tuple[str, ...] = ()  # content analyser models; empty: no content check
    audio: bool = True
    codec: VideoCodec = "h264"
    crf: int = 18
    # x264/x265 speed against size: veryfast keeps 1080p well above real time on 8 cores (NVENC: its own)
    x264_preset: X264Preset = "veryfast"
    hardware_encoder: bool = True
    quality: int = 95  # JPEG / WebP
    # A video with no face in any frame: False writes it through (nothing swapped, with a note), True
    # refuses it and writes nothing.
    require_faces: bool = False

    def __post_init__(self) -> None:
        frames = [marker.frame for marker in self.markers]
        if any(frame < 0 for frame in frames) or len(set(frames)) != len(frames):
            raise ValueError(f"markers must sit on distinct frames ≥ 0, got frames {frames}")

    @property
    def source(self) -> SourceFace:
        return SourceFace(files=self.sources, combine=self.combine)

    def schedule(self) -> list[Marker]:
        """The settings in force from each frame on, in frame order, starting at frame 0."""
        later = sorted((m for m in self.markers if m.frame > 0), key=lambda m: m.frame)
        first = next((m.settings for m in self.markers if m.frame == 0), self.settings)
        return [Marker(0, first), *later]


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
    stage_stats: dict[str, StageStats] = field(default_factory=dict)  # p50/p95/p99 per stage
    notes: list[str] = field(default_factory=list)
    resumed_from: int = 0  # the first frame this run produced (> 0: an earlier run's segments were kept)
    decoder: str | None = None
    workers: int = 1
    batch: int = 1  # frames per worker call
    tracking: dict[str, int] = field(default_factory=dict)  # tracker events (losses, takeovers)
    profile: list[Path] = field(default_factory=list)  # files written by --profile
    first_frame_at: float | None = None  # wall clock (time.time()) when the first frame was written
    # Seconds the export's stages spent blocked on each other (OrderedPool.waits): the analysis thread
    # on busy workers, each worker (mean) on the analysis thread, the ordering thread on the workers and
    # on the encoders (their back-pressure), and finish() on the encoders' last frames and the join.
    waits: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Stage:
    """What processes the frames from `start` on: a marker's (or the job's) analyser and swapper."""

    start: int
    analyser: FrameAnalyser
    swapper: FrameSwapper


def job_models(job: SwapJob, catalog: Catalog) -> list[str]:
    """Every model a job runs a session of, in every stage: its settings' models and their recognisers."""
    ids = [m for marker in job.schedule() for m in models_needed(marker.settings, catalog)]
    needs = [r for m in ids for r in catalog.get(m).requires if r in catalog]
    recognisers = [r for r in needs if catalog.get(r).kind is Kind.RECOGNISER]
    return list(dict.fromkeys([*ids, *recognisers, *job.analysers]))


class JobState:
    """One run of a SwapJob: the models, the cast, and the label its output carries.

    Markers split a video into stages. Stages whose analysis settings agree share one analyser, so
    tracks and stabilisation carry across a marker that only changes the look; a marker that changes
    what is detected starts fresh tracks."""

    def __init__(self, runtime: InferenceRuntime, job: SwapJob, timer: StageTimer) -> None:
        self.runtime = runtime
        self.job = job
        self.timer = timer
        self.device = frame_device(runtime)
        mark("job set-up started")
        runtime.preload(job_models(job, runtime.store.catalog))
        analysers: dict[str, FrameAnalyser] = {}
        swappers: dict[str, FrameSwapper] = {}
        loaders: dict[tuple[str, str], SourceLoader] = {}
        self.stages: list[Stage] = []
        for marker in job.schedule():
            settings = marker.settings
            key = settings.analysis_key()
            if key not in analysers:
                analysers[key] = FrameAnalyser(runtime, settings, source_id=str(job.target))
            analyser = analysers[key]
            look = settings.fingerprint()
            if look not in swappers:
                compositor = FaceCompositor(runtime, settings.processing)
                recogniser_id = compositor.swapper.recogniser_id
                loader_key = (analyser.detector.entry.id, recogniser_id)
                if loader_key not in loaders:
                    recogniser = Recogniser(runtime, recogniser_id)
                    loaders[loader_key] = SourceLoader(analyser.detector, recogniser, self.device)
                cast = loaders[loader_key].cast(job.source, settings)
                require_complete(cast, settings)
                swappers[look] = FrameSwapper(compositor, cast, watermark=job.watermark)
            self.stages.append(Stage(marker.frame, analyser, swappers[look]))
        self.analyser, self.swapper = self.stages[0].analyser, self.stages[0].swapper
        self.content = ContentAnalyser(runtime, job.analysers) if job.analysers else None
        models = [
            *(m for a in analysers.values() for m in a.models()),
            *(m for s in swappers.values() for m in s.models()),
            *job.analysers,
        ]
        self.label = SyntheticLabel(models=tuple(dict.fromkeys(models)), watermark=job.watermark is not None)

    def stage_at(self, index: int) -> Stage:
        """The stage frame `index` belongs to."""
        return next(stage for stage in reversed(self.stages) if stage.start <= index)

    def analysers(self) -> list[FrameAnalyser]:
        return list({id(stage.analyser): stage.analyser for stage in self.stages}.values())

    def check_content(self, frame: torch.Tensor, index: int, timer: StageTimer) -> None:
        if self.content is None:
            return
        with timer.stage("content"):
            verdict = self.content.check(frame)
        if verdict.blocked:
            raise ContentBlockedError(
                f"The content analyser blocked {self.job.output} (frame {index} of {self.job.target}: "
                f"{verdict.required} of {len(verdict.votes)} analysers flagged it); nothing was written"
            )
