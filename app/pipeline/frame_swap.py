"""FrameSwapper: one frame and its chosen faces in, the composited frame out (plus the watermark).

The per-frame unit the image job, the export workers, live mode and the preview share; which faces to
swap comes from the FrameAnalyser, the pipeline's sequential stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from app.core.profiling import StageTimer
from app.faces.types import Face, VisionFrame, check_frame
from app.inference.runtime import InferenceRuntime
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.sources import SourceIdentity
from app.processing.compositor import FaceComposite, FaceCompositor, FaceTask
from app.processing.watermark import apply_watermark


@dataclass
class FrameResult:
    frame: VisionFrame
    faces: list[Face]
    composites: list[FaceComposite] = field(default_factory=list)


class FrameSwapper:
    """Composites the chosen faces of a frame into a copy of it: stateless per frame, so any number of
    workers can share one (each on its own CUDA stream)."""

    def __init__(
        self,
        compositor: FaceCompositor,
        source: SourceIdentity,
        watermark: str | None = None,
    ) -> None:
        self.compositor = compositor
        self.watermark = watermark
        self.latent = self.compositor.swapper.latent(source.embedding())

    def models(self) -> list[str]:
        return self.compositor.models()

    def render(
        self, frame: VisionFrame, faces: Sequence[Face], timer: StageTimer | None = None
    ) -> FrameResult:
        return self.render_many([frame], [faces], timer)[0]

    def render_many(
        self,
        frames: Sequence[VisionFrame],
        faces: Sequence[Sequence[Face]],
        timer: StageTimer | None = None,
    ) -> list[FrameResult]:
        """Several frames at once (an export batch): their faces go through the models together."""
        timer = timer or StageTimer()
        outs = [check_frame(frame).clone() for frame in frames]
        tasks = [
            FaceTask(frame, out, face, self.latent.to(frame.device))
            for frame, out, chosen in zip(frames, outs, faces, strict=True)
            for face in chosen
        ]
        composites = iter(self.compositor.composite_many(tasks, timer))
        results = [
            FrameResult(out, list(chosen), [next(composites) for _ in chosen])
            for out, chosen in zip(outs, faces, strict=True)
        ]
        if self.watermark:
            with timer.stage("watermark"):
                for out in outs:
                    apply_watermark(out, self.watermark)
        return results

    def swap(
        self, frame: VisionFrame, analyser: FrameAnalyser, timer: StageTimer | None = None
    ) -> FrameResult:
        """Analyse then render, on the calling thread (images, and tests)."""
        timer = timer or StageTimer()
        return self.render(frame, analyser.analyse(check_frame(frame), timer=timer), timer)


def frame_device(runtime: InferenceRuntime) -> torch.device:
    """Where frames should live: the GPU when a GPU provider is usable and not ruled out by the
    user's provider choice, else the CPU."""
    gpu = runtime.facts.gpu(runtime.settings.device_index)
    wants_gpu = runtime.settings.provider != "cpu"
    if wants_gpu and gpu is not None and torch.cuda.is_available() and len(runtime.usable) > 1:
        return torch.device("cuda", runtime.settings.device_index)
    return torch.device("cpu")
