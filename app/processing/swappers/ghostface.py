"""GhostFace v1-v3: the source latent is the Ghost ArcFace embedding as it is (no unit length), and the
output is in [-1, 1]."""

from __future__ import annotations

import torch

from app.inference.runtime import InferenceRuntime
from app.models.catalog import ModelEntry
from app.processing.swappers.base import SwapperBase
from app.processing.swappers.simswap import convert


class GhostFace(SwapperBase):
    UNIT_LATENT = False
    OUTPUT = "signed"

    def latent(self, entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor) -> torch.Tensor:
        return convert(entry, runtime, embedding)
