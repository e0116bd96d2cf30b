"""MediaPreviewer: what PreviewService runs — the frame asked for, its faces, and those faces swapped.

Scrubbing is random access, so tracking has no previous frame to follow: each frame is analysed on its
own (detection every frame, no stabilisation), and its faces are cached per frame and analysis settings,
so going back to a frame is a lookup. The models are built once per settings snapshot (sessions come
from the runtime's pool, so rebuilding after a slider moves is cheap) and the source identity once per
swapper recogniser.
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
from app.pipeline.settings import PipelineSettings, SourceFace
from app.pipeline.sources import Cast, SourceLoader
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


class MediaPreviewer:
    """The frame at an index of a video (or the one frame of an image), its faces, and — once source
    photos are chosen — those faces swapped. Used by PreviewService off the GUI thread."""

    def __init__(
        self,
        runtime: InferenceRuntime,
        media: Path,
        source: SourceFace | None = None,
        cache: AnalysisCache | None = None,
    ) -> None:
        self.runtime = runtime
        self.media = media
        self.image = load_image(media).frame if is_image(media) else None
        self.video: VideoSource | None = None if self.image is not None else open_video(media)
        self.source = source or SourceFace()
        self.cache = cache or AnalysisCache()
        self.device = frame_device(runtime)
        self.timer = StageTimer()
        self._built: tuple[str, FrameAnalyser, FaceCompositor] | None = None
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
        analyser, compositor = self._models(settings)
        found, faces = analyser.analyse_all(frame, index=index, timer=self.timer)
        checkpoint()
        cast = self._cast(analyser, compositor, source, settings)
        if cast.empty:
            host = frame.cpu()
            return PreviewFrame(index, host, host, faces, swapped=False, found=found)
        result = FrameSwapper(compositor, cast).render(frame, faces, self.timer)
        return PreviewFrame(index, frame.cpu(), result.frame.cpu(), faces, swapped=True, found=found)

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

    def _models(self, settings: PipelineSettings) -> tuple[FrameAnalyser, FaceCompositor]:
        settings = scrubbing(settings)
        key = settings.fingerprint()
        if self._built is not None and self._built[0] == key:
            return self._built[1], self._built[2]
        analyser = FrameAnalyser(self.runtime, settings, cache=self.cache, source_id=str(self.media))
        compositor = FaceCompositor(self.runtime, settings.processing)
        self._built = (key, analyser, compositor)
        return analyser, compositor

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
