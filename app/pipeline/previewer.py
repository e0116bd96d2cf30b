"""VideoPreviewer: what PreviewService runs for a video — the exact frame, its faces, swapped.

Scrubbing is random access, so tracking has no previous frame to follow: each frame is analysed on its
own (detection every frame, no stabilisation), and its faces are cached per frame and analysis settings,
so going back to a frame is a lookup. The models are built once per settings snapshot (sessions come
from the runtime's pool, so rebuilding after a slider moves is cheap) and the source identity once per
swapper recogniser.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from app.core.profiling import StageTimer
from app.faces.recogniser import Recogniser
from app.inference.runtime import InferenceRuntime
from app.media.video import VideoSource, open_video
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.cache import AnalysisCache
from app.pipeline.frame_swap import FrameResult, FrameSwapper, frame_device
from app.pipeline.preview import Checkpoint
from app.pipeline.settings import PipelineSettings
from app.pipeline.sources import SourceIdentity, load_sources
from app.processing.compositor import FaceCompositor
from app.tracking.face_tracker import TrackingSettings

log = logging.getLogger(__name__)


def scrubbing(settings: PipelineSettings) -> PipelineSettings:
    """The settings with tracking off: a scrubbed-to frame has no meaningful previous frame."""
    return settings.model_copy(update={"tracking": TrackingSettings(enabled=False)})


class VideoPreviewer:
    def __init__(
        self,
        runtime: InferenceRuntime,
        video: Path,
        sources: tuple[Path, ...],
        cache: AnalysisCache | None = None,
    ) -> None:
        self.runtime = runtime
        self.video: VideoSource = open_video(video)
        self.sources = sources
        self.cache = cache or AnalysisCache()
        self.device = frame_device(runtime)
        self.timer = StageTimer()
        self._built: tuple[str, FrameAnalyser, FrameSwapper] | None = None
        self._identities: dict[str, SourceIdentity] = {}

    def __call__(self, index: int, settings: PipelineSettings, checkpoint: Checkpoint) -> FrameResult:
        with self.timer.stage("decode"):
            frame = self._frame(index).to(self.device)
        checkpoint()
        analyser, swapper = self._models(settings)
        faces = analyser.analyse(frame, index=index, timer=self.timer)
        checkpoint()
        return swapper.render(frame, faces, self.timer)

    def close(self) -> None:
        self.video.close()

    def _frame(self, index: int) -> torch.Tensor:
        if index != self.video.position:
            self.video.seek(index)
        decoded = next(self.video.frames(), None)
        if decoded is None:
            raise IndexError(f"{self.video.path} has no frame {index} (it has {self.video.frame_count})")
        return decoded.image

    def _models(self, settings: PipelineSettings) -> tuple[FrameAnalyser, FrameSwapper]:
        settings = scrubbing(settings)
        key = settings.fingerprint()
        if self._built is not None and self._built[0] == key:
            return self._built[1], self._built[2]
        analyser = FrameAnalyser(self.runtime, settings, cache=self.cache, source_id=str(self.video.path))
        compositor = FaceCompositor(self.runtime, settings.processing)
        swapper = FrameSwapper(compositor, self._identity(analyser, compositor))
        self._built = (key, analyser, swapper)
        return analyser, swapper

    def _identity(self, analyser: FrameAnalyser, compositor: FaceCompositor) -> SourceIdentity:
        recogniser_id = compositor.swapper.recogniser_id
        if recogniser_id not in self._identities:
            recogniser = Recogniser(self.runtime, recogniser_id)
            self._identities[recogniser_id] = load_sources(
                self.sources, analyser.detector, recogniser, self.device
            )
        return self._identities[recogniser_id]
