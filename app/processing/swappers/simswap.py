"""SimSwap 512 (VisoMaster's export, fed its own ArcFace) and SimSwap 256 (FaceFusion's, fed
ArcFace w600k through the crossface converter); both take the unit-length vector."""

from __future__ import annotations

import torch

from app.faces.types import unit
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, ModelEntry
from app.processing.swappers.base import SwapperBase


def converter_id(entry: ModelEntry, runtime: InferenceRuntime) -> str | None:
    """A required recogniser-kind model that is not itself an ArcFace: an embedding converter."""
    catalog = runtime.store.catalog
    for required in entry.requires:
        needed = catalog.get(required)
        if needed.kind is Kind.RECOGNISER and needed.family != "arcface":
            return needed.id
    return None


def convert(entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor) -> torch.Tensor:
    """The raw embedding through the entry's converter, if it has one."""
    converter = converter_id(entry, runtime)
    row = embedding.float().reshape(1, -1)
    if converter is None:
        return row
    return runtime.run_ordered(converter, row)[0].float().reshape(1, -1)


class SimSwap(SwapperBase):
    OUTPUT = "unit"

    def latent(self, entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor) -> torch.Tensor:
        return unit(convert(entry, runtime, embedding))
