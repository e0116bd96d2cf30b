"""Masker: builds a face's mask in the swap crop's space from the box and any mask models, and keeps
each part so the GUI can show them.

Parts combine by multiplication (an intersection that stays soft): the box bounds the face, an
occluder or XSeg removes what covers it, the parser keeps the chosen regions. A swapper that reports
its own mask (HyperSwap) joins the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional

from app.core.errors import CatalogError
from app.faces.preprocess import fixed_side
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind
from app.processing.masks.box import box_mask
from app.processing.masks.models import FAMILIES
from app.processing.settings import MaskSettings


@dataclass
class FaceMask:
    combined: torch.Tensor  # [1, 1, S, S] in 0..1
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # name → [1, 1, S, S], for previews


def resize(image: torch.Tensor, side: int) -> torch.Tensor:
    if image.shape[-1] == side and image.shape[-2] == side:
        return image
    down = image.shape[-1] > side
    return functional.interpolate(
        image, size=(side, side), mode="bilinear", align_corners=False, antialias=down
    )


class Masker:
    def __init__(self, runtime: InferenceRuntime, settings: MaskSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.models = [m for m in (settings.occluder, settings.xseg, settings.parser) if m]
        for model_id in self.models:
            entry = runtime.store.catalog.get(model_id)
            if entry.kind is not Kind.MASK or entry.family not in FAMILIES:
                raise CatalogError(
                    f"{model_id} is a {entry.kind} of family '{entry.family}', not a mask model "
                    f"({', '.join(FAMILIES)})"
                )

    def model_mask(self, model_id: str, target: torch.Tensor) -> torch.Tensor:
        """Masks [N, 1, S, S] of target crops [N, 3, S, S]: one call when the model takes a batch."""
        entry = self.runtime.store.catalog.get(model_id)
        family = FAMILIES[entry.family]
        side = fixed_side(entry, 256)
        model_input = family.prepare(entry, resize(target, side))
        if model_input.shape[0] == 1 or self.runtime.takes_a_batch(model_id):
            output = self.runtime.run_ordered(model_id, model_input)[0]
        else:
            output = torch.cat([self.runtime.run_ordered(model_id, row[None])[0] for row in model_input])
        mask = family.normalize(entry, output, tuple(self.settings.regions))
        return resize(mask, int(target.shape[-1])).clamp(0.0, 1.0)

    def build(self, target: torch.Tensor, swapper_mask: torch.Tensor | None = None) -> FaceMask:
        """The mask for a target crop [1, 3, S, S] (0..255, before swapping)."""
        return self.build_many(target, swapper_mask)[0]

    def build_many(self, targets: torch.Tensor, swapper_masks: torch.Tensor | None = None) -> list[FaceMask]:
        """One mask per target crop of [N, 3, S, S]; each mask model sees all N crops at once."""
        count, side = int(targets.shape[0]), int(targets.shape[-1])
        parts: dict[str, torch.Tensor] = {}
        if self.settings.box:
            parts["box"] = box_mask(side, self.settings, targets.device).expand(count, -1, -1, -1)
        for model_id in self.models:
            parts[model_id] = self.model_mask(model_id, targets)
        if swapper_masks is not None:
            parts["swapper"] = swapper_masks.clamp(0.0, 1.0)
        combined = torch.ones((count, 1, side, side), device=targets.device)
        for part in parts.values():
            combined = combined * part
        return [
            FaceMask(combined[i : i + 1], {name: part[i : i + 1] for name, part in parts.items()})
            for i in range(count)
        ]


def overlay(
    crop: torch.Tensor, mask: torch.Tensor, colour: tuple[float, float, float] = (255.0, 0.0, 96.0)
) -> torch.Tensor:
    """A preview of a mask over a crop: masked-out pixels tinted, as uint8 [S, S, 3]."""
    tint = torch.tensor(colour, device=crop.device).view(1, 3, 1, 1)
    shown = crop + (1.0 - mask) * 0.5 * (tint - crop)
    return shown.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
