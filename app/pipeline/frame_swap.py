"""FrameSwapper: one frame in, one frame out — detect, select, composite every chosen face, label.

This is the per-frame unit the image job, the video job and (issue 6) the real-time worker pool share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from app.core.profiling import StageTimer
from app.faces.detector import FaceDetector
from app.faces.identity import Identity
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings, select
from app.faces.types import Face, VisionFrame, check_frame
from app.inference.runtime import InferenceRuntime
from app.pipeline.sources import SourceIdentity
from app.processing.compositor import FaceComposite, FaceCompositor
from app.processing.watermark import apply_watermark


@dataclass
class FrameResult:
    frame: VisionFrame
    faces: list[Face]
    composites: list[FaceComposite] = field(default_factory=list)


class FrameSwapper:
    def __init__(
        self,
        runtime: InferenceRuntime,
        detector: FaceDetector,
        compositor: FaceCompositor,
        source: SourceIdentity,
        selection: SelectionSettings | None = None,
        references: Sequence[Identity] = (),
        watermark: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.detector = detector
        self.compositor = compositor
        self.selection = selection or SelectionSettings(SelectionMode.MANY)
        self.references = list(references)
        self.watermark = watermark
        self.latent = self.compositor.swapper.latent(source.embedding())
        needs_embeddings = self.selection.mode is SelectionMode.REFERENCE
        self.recogniser = Recogniser(runtime, references[0].recogniser) if needs_embeddings else None

    def models(self) -> list[str]:
        return [self.detector.entry.id, *self.compositor.models()]

    def swap(self, frame: VisionFrame, timer: StageTimer | None = None) -> FrameResult:
        check_frame(frame)
        timer = timer or StageTimer()
        with timer.stage("detect"):
            faces = self.detector.detect(frame)
        if self.recogniser is not None:
            with timer.stage("recognise"):
                faces = self.recogniser.embed(frame, faces)
        chosen = [s.face for s in select(faces, self.selection, self.references)]
        out = frame.clone()
        latent = self.latent.to(frame.device)
        composites = [self.compositor.composite(frame, out, face, latent, timer) for face in chosen]
        if self.watermark:
            with timer.stage("watermark"):
                apply_watermark(out, self.watermark)
        return FrameResult(out, chosen, composites)


def frame_device(runtime: InferenceRuntime) -> torch.device:
    """Where frames should live: the GPU when a GPU provider is usable and not ruled out by the
    user's provider choice, else the CPU."""
    gpu = runtime.facts.gpu(runtime.settings.device_index)
    wants_gpu = runtime.settings.provider != "cpu"
    if wants_gpu and gpu is not None and torch.cuda.is_available() and len(runtime.usable) > 1:
        return torch.device("cuda", runtime.settings.device_index)
    return torch.device("cpu")
