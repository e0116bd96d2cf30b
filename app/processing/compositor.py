"""FaceCompositor: one face, start to finish — crop, swap, restore, mask, recolour, paste back.

    crop (swapper's template, pixel-boost side) → swap → restore (optional) → mask → colour → paste

Crops are always cut from the untouched input frame and pasted into the output frame, so faces that
overlap never feed one swap's pixels into the next. Everything stays on the frame's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from app.core.profiling import StageTimer
from app.faces.alignment import crop_face
from app.faces.recogniser import Recogniser
from app.faces.types import Face, VisionFrame
from app.inference.runtime import InferenceRuntime
from app.processing.blend import paste_back
from app.processing.colour import reinhard
from app.processing.masks.masker import FaceMask, Masker
from app.processing.restorer import RestoreInput, Restorer
from app.processing.settings import ProcessingSettings
from app.processing.swapper import Swapper


@dataclass(frozen=True)
class FaceTask:
    """One face to swap: where it is (`frame`, untouched), where it goes (`out`), and as whom."""

    frame: VisionFrame
    out: VisionFrame
    face: Face
    latent: torch.Tensor  # the source latent [1, D]


@dataclass
class FaceComposite:
    """What one face went through, for previews and tests."""

    target: torch.Tensor  # the aligned crop before swapping, [1, 3, S, S] 0..255
    result: torch.Tensor  # the crop that was pasted
    mask: FaceMask
    matrix: torch.Tensor  # frame → crop


class FaceCompositor:
    def __init__(self, runtime: InferenceRuntime, settings: ProcessingSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.swapper = Swapper(runtime, settings.swap)
        self.restorer = Restorer(runtime, settings.restore) if settings.restore.restorer else None
        self.masker = Masker(runtime, settings.mask)
        self._recogniser: Recogniser | None = None

    def models(self) -> list[str]:
        """Every model this compositor runs, for labels and warm-up."""
        used = [self.swapper.entry.id, self.swapper.recogniser_id, *self.masker.models]
        return used + ([self.restorer.entry.id] if self.restorer else [])

    def target_latent(self, frame: VisionFrame, face: Face, source_latent: torch.Tensor) -> torch.Tensor:
        strength = self.settings.swap.strength
        if strength >= 1.0:
            return source_latent
        if self._recogniser is None:
            self._recogniser = Recogniser(self.runtime, self.swapper.recogniser_id)
        own = self.swapper.latent(self._recogniser.embeddings(frame, [face])[0])
        return self.swapper.blend_latents(source_latent.to(own.device), own, strength)

    def composite(
        self,
        frame: VisionFrame,
        out: VisionFrame,
        face: Face,
        source_latent: torch.Tensor,
        timer: StageTimer | None = None,
    ) -> FaceComposite:
        """Swap `face` of `frame` into `out` (a copy of the frame, or a frame other faces went into)."""
        return self.composite_many([FaceTask(frame, out, face, source_latent)], timer)[0]

    def composite_many(
        self, tasks: Sequence[FaceTask], timer: StageTimer | None = None
    ) -> list[FaceComposite]:
        """Several faces, of one frame or of several: the crops go through the swapper, the mask models
        and the restorer together (one call each where the model takes a batch), then each face is
        recoloured and pasted into its own output frame."""
        timer = timer or StageTimer()
        if not tasks:
            return []
        swapper = self.swapper
        with timer.stage("swap"):
            crops = [crop_face(t.frame, t.face.kps, swapper.template, swapper.crop_side) for t in tasks]
            targets = torch.cat([crop for crop, _ in crops])
            latents = torch.cat([self.target_latent(t.frame, t.face, t.latent) for t in tasks])
            swapped = swapper.swap(targets, latents)
        with timer.stage("mask"):
            masks = self.masker.build_many(targets, swapped.mask)
        results = [swapped.face[i : i + 1] for i in range(len(tasks))]
        if self.restorer is not None:
            with timer.stage("restore"):
                results = self.restorer.restore_many(
                    [
                        RestoreInput(
                            t.frame,
                            t.face.kps,
                            result,
                            matrix,
                            mask.parts.get("box", torch.ones_like(mask.combined)),
                        )
                        for t, result, (_, matrix), mask in zip(tasks, results, crops, masks, strict=True)
                    ]
                )
        composites = []
        for task, result, (target, matrix), mask in zip(tasks, results, crops, masks, strict=True):
            if self.settings.colour.strength > 0:
                with timer.stage("colour"):
                    result = reinhard(result, target, mask.combined, self.settings.colour.strength)
            with timer.stage("paste"):
                paste_back(task.out, result, mask.combined, matrix, self.settings.blend.edge_smoothing)
            composites.append(FaceComposite(target, result, mask, matrix))
        return composites
