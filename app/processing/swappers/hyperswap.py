"""HyperSwap 1a/1b/1c (FaceFusion): unit ArcFace latent, output in [-1, 1], and a second output, a soft
mask of where it put the face, which the compositor multiplies into its own mask."""

from __future__ import annotations

import torch

from app.models.catalog import ModelEntry
from app.processing.swappers.base import SwapOutput, SwapperBase


class HyperSwap(SwapperBase):
    OUTPUT = "signed"

    def normalize(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> SwapOutput:
        face = super().normalize(entry, outputs).face
        mask = outputs[1].float().clamp(0.0, 1.0) if len(outputs) > 1 else None
        return SwapOutput(face, mask)
