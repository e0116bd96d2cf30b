"""MediaPreviewer: what PreviewService runs — the frame asked for, its faces, and those faces swapped.

Scrubbing is random access, so tracking has no previous frame to follow: each frame is analysed on its
own (detection every frame, no stabilisation), and its faces are cached per frame and analysis settings,
so going back to a frame is a lookup. The models are built once per settings snapshot (sessions come
from the runtime's pool, so rebuilding after a slider moves is cheap) and the source identity once per
swapper recogniser.

With a ModelWarmer, the first swapped frame does not wait for the finishing models (the restorer): while
they are not loaded, the frame is a draft rendered without them (`pending` names them), and the warmer
loads them once the draft is done, so the core models load first and the draft is not delayed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.core.profiling import StageTimer
from app.faces.recogniser import Recogniser
from app.faces.types import Face
from app.inference.runtime import InferenceRuntime
from app.media.images import load_image
from app.media.video import VideoSource, open_video
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.cache import AnalysisCache
from app.pipeline.frame_swap import FrameSwapper, frame_device
from app.pipeline.jobs import is_image
from app.pipeline.preview import Checkpoint
from app.pipeline.settings import (
    PipelineSettings,
    SourceFace,
    finishing_models,
    models_needed,
    without_finishing,
)
from app.pipeline.sources import Cast, SourceLoader
from app.pipeline.warmer import ModelWarmer
from app.processing.compositor import FaceCompositor
from app.tracking.face_tracker import TrackingSettings

log = logging.getLogger(__name__)


def scrubbing(settings: PipelineSettings) -> PipelineSettings:
    """The settings with tracking off: a scrubbed-to frame has no meaningful previous frame."""
    return settings.model_copy(update={"tracking": TrackingSettings(enabled=False)})


@dataclass(frozen=True)
class PreviewFrame:
    """What the viewer shows for one request: host tensors, ready to draw."""

    index: int
    before: torch.Tensor  # uint8 [H, W, 3], the frame as decoded
    after: torch.Tensor  # the frame swapped (the same as `before` while no source face is chosen)
    faces: list[Face]  # those selected to swap in this frame
    swapped: bool
    found: list[Face] = field(default_factory=list)  # every face found (what the target panel shows)
    pending: tuple[str, ...] = ()  # models left out of this draft while they load; () when complete


class MediaPreviewer:
    """The frame at an index of a video (or the one frame of an image), its faces, and — once source
    photos are chosen — those faces swapped. Used by PreviewService off the GUI thread."""

    def __init__(
        self,
        runtime: InferenceRuntime,
        media: Path,
        source: SourceFace | None = None,
        cache: AnalysisCache | None = None,
        warmer: ModelWarmer | None = None,
    ) -> None:
        """Without a `warmer`, every frame is complete (the models all load on the preview thread)."""
        self.runtime = runtime
        self.warmer = warmer
        self.media = media
        self.image = load_image(media).frame if is_image(media) else None
        self.video: VideoSource | None = None if self.image is not None else open_video(media)
        self.source = source or SourceFace()
        self.cache = cache or AnalysisCache()
        self.device = frame_device(runtime)
        self.timer = StageTimer()
        self._built: tuple[str, FrameAnalyser, dict[bool, FaceCompositor]] | None = None  # by draft
        self._loaders: dict[tuple[str, str], SourceLoader] = {}  # by (detector, recogniser)

    @property
    def frame_count(self) -> int:
        return 1 if self.video is None else self.video.frame_count

    def __call__(self, index: int, settings: PipelineSettings, checkpoint: Checkpoint) -> PreviewFrame:
        return self.preview(index, settings, self.source, checkpoint)

    def preview(
        self, index: int, settings: PipelineSettings, source: SourceFace, checkpoint: Checkpoint
    ) -> PreviewFrame:
        with self.timer.stage("decode"):
            frame = self._frame(index).to(self.device)
        checkpoint()
        analyser = self._analyser(settings)
        found, faces = analyser.analyse_all(frame, index=index, timer=self.timer)
        checkpoint()
        pending = self._pending(settings)
        compositor = self._compositor(settings, draft=bool(pending))
        cast = self._cast(analyser, compositor, source, settings)
        if cast.empty:
            host = frame.cpu()
            return PreviewFrame(index, host, host, faces, swapped=False, found=found)
        result = FrameSwapper(compositor, cast).render(frame, faces, self.timer)
        if pending and self.warmer is not None:
            self.warmer.request(pending)  # only now: the draft's own models went first
        after = result.frame.cpu()
        return PreviewFrame(index, frame.cpu(), after, faces, swapped=True, found=found, pending=pending)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()

    def _frame(self, index: int) -> torch.Tensor:
        if self.video is None:
            assert self.image is not None
            return self.image
        if index != self.video.position:
            self.video.seek(index)
        decoded = next(self.video.frames(), None)
        if decoded is None:
            raise IndexError(f"{self.video.path} has no frame {index} (it has {self.video.frame_count})")
        return decoded.image

    def _pending(self, settings: PipelineSettings) -> tuple[str, ...]:
        if self.warmer is None:
            return ()
        return self.warmer.pending(finishing_models(settings, self.runtime.store.catalog))

    def _built_for(self, settings: PipelineSettings) -> tuple[FrameAnalyser, dict[bool, FaceCompositor]]:
        wanted = settings
        settings = scrubbing(settings)
        key = settings.fingerprint()
        if self._built is None or self._built[0] != key:
            # The first preview of new settings loads their models: missing rewrites of them start in
            # builder processes now, side by side, instead of one model after another.
            self.runtime.prebuild_rewrites(models_needed(wanted, self.runtime.store.catalog))
            analyser = FrameAnalyser(self.runtime, settings, cache=self.cache, source_id=str(self.media))
            self._built = (key, analyser, {})
        return self._built[1], self._built[2]

    def _analyser(self, settings: PipelineSettings) -> FrameAnalyser:
        return self._built_for(settings)[0]

    def _compositor(self, settings: PipelineSettings, draft: bool) -> FaceCompositor:
        """The full compositor, or a draft's without the finishing models (built only once those are
        loaded: a restorer's set-up may already touch its file)."""
        compositors = self._built_for(settings)[1]
        if draft not in compositors:
            processing = (without_finishing(settings) if draft else settings).processing
            compositors[draft] = FaceCompositor(self.runtime, processing)
        return compositors[draft]

    def _cast(
        self,
        analyser: FrameAnalyser,
        compositor: FaceCompositor,
        source: SourceFace,
        settings: PipelineSettings,
    ) -> Cast:
        """Who goes where; each photo and identity file is embedded once per detector and recogniser."""
        key = (analyser.detector.entry.id, compositor.swapper.recogniser_id)
        if key not in self._loaders:
            recogniser = Recogniser(self.runtime, key[1])
            self._loaders[key] = SourceLoader(analyser.detector, recogniser, self.device)
        return self._loaders[key].cast(source, settings)
