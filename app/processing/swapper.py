"""Swapper: runs any swapper family on aligned target crops, with pixel boost, passes and strength.

The catalog's family picks the module (FAMILIES); its alignment names the template the target crop is
cut with; the input side is fixed by the catalog. Inputs are fed by position (the target is the image
input, the source the vector), so exports that swap the order or leave names out still bind.
"""

from __future__ import annotations

import torch

from app.core.errors import CatalogError
from app.faces.alignment import TEMPLATES
from app.faces.preprocess import fixed_side
from app.faces.types import unit
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind
from app.processing.pixel_boost import boost_factor, from_tiles, to_tiles
from app.processing.settings import ProcessingSettingsError, SwapSettings
from app.processing.swappers.base import SwapOutput, SwapperFamily
from app.processing.swappers.ghostface import GhostFace
from app.processing.swappers.hyperswap import HyperSwap
from app.processing.swappers.inswapper import InStyleSwapper, Inswapper
from app.processing.swappers.simswap import SimSwap

FAMILIES: dict[str, SwapperFamily] = {
    "inswapper": Inswapper(),
    "instyleswapper": InStyleSwapper(),
    "simswap": SimSwap(),
    "ghostface": GhostFace(),
    "hyperswap": HyperSwap(),
}


class Swapper:
    def __init__(self, runtime: InferenceRuntime, settings: SwapSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        model_id = settings.swapper or runtime.store.catalog.default_for(Kind.SWAPPER, "--swapper")
        self.entry = entry = runtime.store.catalog.get(model_id)
        family = FAMILIES.get(entry.family)
        if entry.kind is not Kind.SWAPPER or family is None:
            raise CatalogError(
                f"{model_id} is a {entry.kind} of family '{entry.family}', not a face swapper "
                f"({', '.join(FAMILIES)})"
            )
        if entry.alignment not in TEMPLATES:
            raise CatalogError(f"{model_id}: alignment '{entry.alignment}' is not a known template")
        self.family = family
        self.template = entry.alignment
        self.model_side = fixed_side(entry, 128)
        # A boost below the model's own side (a preset's 256 on a 512 model) means no boost.
        self.crop_side = max(settings.pixel_boost or self.model_side, self.model_side)
        try:
            self.factor = boost_factor(self.model_side, self.crop_side)
        except ValueError as exc:
            raise ProcessingSettingsError(f"{model_id}: {exc}") from None
        self.target_index = next(i for i, s in enumerate(entry.inputs) if len(s.shape) == 4)
        self.batched = runtime.takes_a_batch(model_id)
        self.recogniser_id = family.recogniser_id(entry, runtime)

    # -- identity --------------------------------------------------------------------------------

    def latent(self, embedding: torch.Tensor) -> torch.Tensor:
        """The model's source latent [1, D] for a raw embedding by `recogniser_id`."""
        return self.family.latent(self.entry, self.runtime, embedding)

    def blend_latents(self, source: torch.Tensor, target: torch.Tensor, strength: float) -> torch.Tensor:
        """Strength 1 is the source; lower moves toward the target face's own latent."""
        mixed = target + strength * (source - target)
        return unit(mixed) if self.family.UNIT_LATENT else mixed

    # -- swapping --------------------------------------------------------------------------------

    def forward(self, target: torch.Tensor, latent: torch.Tensor) -> list[torch.Tensor]:
        inputs = [latent.float()] * len(self.entry.inputs)
        inputs[self.target_index] = target
        return self.runtime.run_ordered(self.entry.id, *inputs)

    def _run_tiles(self, tiles: torch.Tensor, latents: torch.Tensor) -> SwapOutput:
        """Tiles [T, 3, m, m] with one latent row each [T, D]: one call when the model takes a batch,
        else one call per tile."""
        model_input = self.family.prepare(self.entry, tiles)
        if self.batched or model_input.shape[0] == 1:
            return self.family.normalize(self.entry, self.forward(model_input, latents))
        parts = [
            self.family.normalize(self.entry, self.forward(t[None], latents[i : i + 1]))
            for i, t in enumerate(model_input)
        ]
        faces = torch.cat([p.face for p in parts])
        masks = [p.mask for p in parts]
        mask = torch.cat([m for m in masks if m is not None]) if all(m is not None for m in masks) else None
        return SwapOutput(faces, mask)

    def swap(self, crop: torch.Tensor, latent: torch.Tensor) -> SwapOutput:
        """Float RGB crops [N, 3, crop_side, crop_side] (0..255, cut with `template`) with the faces
        swapped, by latents [N, D] (or one [1, D] for all); pixel boost tiles them, passes re-run on the
        result. A model that takes a batch swaps all N crops (and all their tiles) in one call."""
        if tuple(crop.shape[-2:]) != (self.crop_side, self.crop_side):
            raise ValueError(f"crop is {list(crop.shape)}, this swapper cuts {self.crop_side} px crops")
        latents = latent.to(crop.device).expand(crop.shape[0], -1)
        tile_latents = latents.repeat_interleave(self.factor * self.factor, dim=0)
        result = SwapOutput(crop)
        for _ in range(self.settings.passes):
            tiles = to_tiles(result.face, self.factor)
            out = self._run_tiles(tiles, tile_latents)
            mask = from_tiles(out.mask, self.factor) if out.mask is not None else None
            result = SwapOutput(from_tiles(out.face, self.factor), mask)
        return result
