"""FrameAnalyser: which faces of a frame get swapped — detect or track, landmarks, stabilise, select.

This is the pipeline's one sequential stage: tracking and stabilisation carry state from one frame to the
next, so frames go through it in order, on one thread, while swapping and compositing (FrameSwapper)
fan out over the worker pool. Its state (tracks, filters, the last grey frame) can be saved and
restored, so a resumed export analyses exactly as an uninterrupted one.

Random access (scrubbing) has no meaningful "previous frame": `analyse(..., index)` with a cache
answers revisits from the cache, and `reset()` after a seek starts the tracks afresh.
"""

from __future__ import annotations

import dataclasses
import logging

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.core.telemetry import get_telemetry
from app.faces.detector import FaceDetector
from app.faces.identity import Identity
from app.faces.landmarker import AutoLandmarker, Landmarker
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, select
from app.faces.types import Face, VisionFrame
from app.inference.runtime import InferenceRuntime
from app.pipeline.cache import AnalysisCache, CacheKey
from app.pipeline.settings import PipelineSettings
from app.tracking.face_tracker import FaceTracker, TrackEvents, TrackResult

log = logging.getLogger(__name__)


class FrameAnalyser:
    def __init__(
        self,
        runtime: InferenceRuntime,
        settings: PipelineSettings,
        cache: AnalysisCache | None = None,
        source_id: str = "",
    ) -> None:
        analysis = settings.analysis
        self.settings = settings
        self.key = settings.analysis_key()
        self.detector = FaceDetector(runtime, analysis.detector_id(runtime.store.catalog), analysis.detection)
        self.landmarker: Landmarker | AutoLandmarker | None = None
        if analysis.landmarker == "auto":
            self.landmarker = AutoLandmarker(runtime)
        elif analysis.landmarker:
            self.landmarker = Landmarker(runtime, analysis.landmarker)
        self.references: list[Identity] = analysis.targets()
        self.selection = analysis.selection
        needs_embeddings = self.selection.mode is SelectionMode.REFERENCE
        if needs_embeddings and not self.references:
            raise DoppelError(
                "Reference mode needs a reference face: click a face in the studio, or load an identity"
            )
        recognisers = sorted({reference.recogniser for reference in self.references})
        if needs_embeddings and len(recognisers) > 1:
            raise DoppelError(
                f"The reference faces were embedded by different recognisers ({', '.join(recognisers)}), "
                "which do not compare: clear the assignments and click the faces again"
            )
        self.recogniser = Recogniser(runtime, recognisers[0]) if needs_embeddings else None
        self.tracker = FaceTracker(self._find, settings.tracking) if settings.tracking.enabled else None
        self.cache = cache
        self.source_id = source_id
        self._timer = StageTimer()
        self.last: TrackResult | None = None  # the tracker's account of the latest frame

    def models(self) -> list[str]:
        used = [self.detector.entry.id]
        if isinstance(self.landmarker, Landmarker):
            used.append(self.landmarker.entry.id)
        return used

    def _find(self, frame: VisionFrame) -> list[Face]:
        """Detection plus landmarks: what the tracker calls on its detection frames."""
        with self._timer.stage("detect"):
            faces = self.detector.detect(frame)
        if self.landmarker is not None and faces:
            with self._timer.stage("landmarks"):
                faces = self.landmarker.apply(frame, faces)
        return faces

    def analyse(
        self,
        frame: VisionFrame,
        index: int | None = None,
        timer: StageTimer | None = None,
        t: float | None = None,
    ) -> list[Face]:
        """The faces to swap in `frame` (at `t` seconds, which the stabiliser's filters use). With an
        `index` and a cache, a revisited frame is a lookup."""
        return self.analyse_all(frame, index, timer, t)[1]

    def analyse_all(
        self,
        frame: VisionFrame,
        index: int | None = None,
        timer: StageTimer | None = None,
        t: float | None = None,
    ) -> tuple[list[Face], list[Face]]:
        """Every face found in `frame` (embedded in reference mode), and those chosen to swap (in
        reference mode tagged with the reference each matched). The cache keeps what was found;
        choosing is a small matrix product, done again on a hit."""
        key = (
            CacheKey(self.source_id, index, self.key)
            if index is not None and self.cache is not None
            else None
        )
        found = self.cache.get(key) if key is not None and self.cache is not None else None
        if found is None:
            found = self._found(frame, index, timer, t)
            if key is not None and self.cache is not None:
                self.cache.put(key, found)
        return found, self._chosen(found)

    @property
    def batches_frames(self) -> bool:
        """Whether frames may be analysed several at a time: only without tracking, where no frame's
        faces depend on the one before."""
        return self.tracker is None

    def analyse_many(
        self, frames: list[VisionFrame], timer: StageTimer | None = None, times: list[float] | None = None
    ) -> list[list[Face]]:
        """The faces to swap in each frame (at `times`), their detections and landmarks each in one
        batched pass where the models take a batch. Without tracking only; with it, one by one."""
        if not self.batches_frames or len(frames) == 1:
            at = times or [None] * len(frames)  # type: ignore[list-item]
            return [self.analyse(frame, timer=timer, t=t) for frame, t in zip(frames, at, strict=True)]
        self._timer = timer or StageTimer()
        with self._timer.stage("detect"):
            found = self.detector.detect_many(frames)
        if self.landmarker is not None and any(found):
            with self._timer.stage("landmarks"):
                found = self.landmarker.apply_many(frames, found)
        if self.recogniser is not None:
            with self._timer.stage("recognise"):
                found = [
                    self.recogniser.embed(f, faces) if faces else faces
                    for f, faces in zip(frames, found, strict=True)
                ]
        return [self._chosen(faces) for faces in found]

    def _chosen(self, found: list[Face]) -> list[Face]:
        return [
            s.face if s.identity is None else dataclasses.replace(s.face, reference=s.identity)
            for s in select(found, self.selection, self.references)
        ]

    def _found(
        self, frame: VisionFrame, index: int | None, timer: StageTimer | None, t: float | None
    ) -> list[Face]:
        self._timer = timer or StageTimer()
        if self.tracker is not None:
            with self._timer.stage("track"):
                self.last = self.tracker.track(frame, t=t)
            faces = self.last.faces
            _report_losses(self.last, index)
        else:
            faces = self._find(frame)
        if self.recogniser is not None and faces:
            with self._timer.stage("recognise"):
                faces = self.recogniser.embed(frame, faces)
        return faces

    # -- state, for seeks and resumed exports ------------------------------------------------------

    def reset(self) -> None:
        if self.tracker is not None:
            self.tracker.reset()

    def state(self) -> bytes:
        return self.tracker.state() if self.tracker is not None else b""

    def restore(self, state: bytes | None) -> None:
        if self.tracker is not None and state:
            self.tracker.restore(state)
            self.tracker.totals = TrackEvents()  # count this run's events only


def _report_losses(result: TrackResult, index: int | None) -> None:
    """Tracker losses to the opt-in local telemetry (a no-op when it is off)."""
    events = result.events
    if not (events.tracker_losses or events.lk_losses or events.dropped):
        return
    telemetry = get_telemetry()
    frame = result.index if index is None else index
    for kind, count in (
        ("lk", events.lk_losses),
        ("tracker", events.tracker_losses),
        ("dropped", events.dropped),
    ):
        if count:
            telemetry.tracker_loss(frame, kind, count=count)
