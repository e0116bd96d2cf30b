"""The contract every swapper family meets, and what most of them share.

A swapper takes an aligned target crop and a source latent (the identity to paste, in the space the
model was trained on) and returns the crop with the face replaced. Families differ in how the latent is
made from a recogniser's embedding (emap projection, a converter model, unit length or raw) and in the
range of their output; tensor names, sizes, colour order and input normalisation come from the catalog.

    latent(embedding)  →  prepare(crop)  →  the Swapper's forward (the only session call)  →  normalize
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import torch

from app.faces.preprocess import normalise
from app.faces.types import unit
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, ModelEntry


@dataclass(frozen=True)
class SwapOutput:
    face: torch.Tensor  # float RGB [B, 3, S, S] in 0..255
    mask: torch.Tensor | None = None  # [B, 1, S, S] in 0..1, for models that also say where the face is


class SwapperFamily(Protocol):
    UNIT_LATENT: ClassVar[bool]  # latents are unit vectors (blends are renormalised)

    def recogniser_id(self, entry: ModelEntry, runtime: InferenceRuntime) -> str: ...

    def latent(
        self, entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor
    ) -> torch.Tensor: ...

    def prepare(self, entry: ModelEntry, crops: torch.Tensor) -> torch.Tensor: ...

    def normalize(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> SwapOutput: ...


class SwapperBase:
    """A model whose input is the catalog-normalised crop and whose output is an image in [0, 1]
    ("unit") or [-1, 1] ("signed"); its latent is the recogniser's embedding scaled to unit length."""

    UNIT_LATENT: ClassVar[bool] = True
    OUTPUT: ClassVar[Literal["unit", "signed"]] = "unit"

    def recogniser_id(self, entry: ModelEntry, runtime: InferenceRuntime) -> str:
        """The first required model that is a recogniser, looking through converters (a converter's own
        `requires` names the recogniser it reads)."""
        catalog = runtime.store.catalog
        for required in entry.requires:
            needed = catalog.get(required)
            if needed.kind is Kind.RECOGNISER and needed.family == "arcface":
                return needed.id
            if needed.kind is Kind.RECOGNISER and needed.requires:
                return self.recogniser_id(needed, runtime)
        raise LookupError(f"{entry.id} names no face recogniser in its catalog entry's 'requires'")

    def latent(self, entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor) -> torch.Tensor:
        return unit(embedding.float()).reshape(1, -1)

    def prepare(self, entry: ModelEntry, crops: torch.Tensor) -> torch.Tensor:
        return normalise(entry, crops)

    def normalize(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> SwapOutput:
        face = outputs[0].float()
        if entry.colour == "BGR":
            face = face.flip(1)
        face = face * 255.0 if self.OUTPUT == "unit" else (face + 1.0) * 127.5
        return SwapOutput(face.clamp(0.0, 255.0))
