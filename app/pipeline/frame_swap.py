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
from app.pipeline.sources import Cast
from app.processing.compositor import FaceComposite, FaceCompositor, FaceTask
from app.processing.watermark import apply_watermark


@dataclass
class FrameResult:
    frame: VisionFrame
    faces: list[Face]
    composites: list[FaceComposite] = field(default_factory=list)


class FrameSwapper:
    """Composites the chosen faces of a frame into a copy of it: stateless per frame, so any number of
    workers can share one (each on its own CUDA stream).

    Each face gets its cast's source: its reference's own, else the default. A face with neither is
    left as it is (a job checks its cast is complete first; a preview shows what it can)."""

    def __init__(
        self,
        compositor: FaceCompositor,
        cast: Cast,
        watermark: str | None = None,
    ) -> None:
        self.compositor = compositor
        self.watermark = watermark
        self.cast = cast
        self._latents: dict[int, torch.Tensor] = {}  # by id() of the SourceIdentity
        for source in (self.cast.default, *self.cast.by_reference):
            if source is not None and id(source) not in self._latents:
                self._latents[id(source)] = compositor.swapper.latent(source.embedding())

    def latent_for(self, face: Face) -> torch.Tensor | None:
        source = self.cast.source_for(face)
        return None if source is None else self._latents[id(source)]

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
        tasks: list[FaceTask] = []
        pasted: list[list[Face]] = []  # per frame, the faces that have a source
        for frame, out, chosen in zip(frames, outs, faces, strict=True):
            pasted.append([])
            for face in chosen:
                latent = self.latent_for(face)
                if latent is not None:
                    tasks.append(FaceTask(frame, out, face, latent.to(frame.device)))
                    pasted[-1].append(face)
        composites = iter(self.compositor.composite_many(tasks, timer))
        results = [
            FrameResult(out, chosen, [next(composites) for _ in chosen])
            for out, chosen in zip(outs, pasted, strict=True)
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
