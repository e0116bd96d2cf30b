"""Restorer: sharpens the swapped face, then blends the result back by the user's amount.

Restorers are trained on FFHQ-aligned faces, a slightly wider crop than a swapper's. The restorer's
input is therefore the frame's FFHQ crop with the swapped face laid over it (both warped straight from
their sources, nothing pasted into the frame yet); its output is warped back into the swap crop's space
and blended there, so one paste-back at the end composites everything.
"""

from __future__ import annotations

import torch

from app.core.errors import CatalogError
from app.faces.alignment import compose, estimate, invert, warp, warp_frame
from app.faces.preprocess import fixed_side
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind
from app.processing.restorers.base import FAMILIES, RestorerFamily
from app.processing.settings import RestoreSettings

TEMPLATE = "ffhq_512"


class Restorer:
    def __init__(self, runtime: InferenceRuntime, settings: RestoreSettings) -> None:
        if settings.restorer is None:
            raise ValueError("no restorer chosen")
        self.runtime = runtime
        self.settings = settings
        self.entry = runtime.store.catalog.get(settings.restorer)
        family = FAMILIES.get(self.entry.family)
        if self.entry.kind is not Kind.RESTORER or family is None:
            raise CatalogError(
                f"{self.entry.id} is a {self.entry.kind} of family '{self.entry.family}', not a face "
                f"restorer ({', '.join(FAMILIES)})"
            )
        self.family: RestorerFamily = family
        self.side = fixed_side(self.entry, 512)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.runtime.run_ordered(self.entry.id, *inputs)

    def restore_crop(self, crop: torch.Tensor) -> torch.Tensor:
        """An FFHQ-aligned float crop [1, 3, side, side] (0..255) restored."""
        inputs = self.family.prepare(self.entry, crop, self.settings.fidelity)
        return self.family.normalize(self.entry, self.forward(inputs))

    def restore(
        self,
        frame: torch.Tensor,
        kps: torch.Tensor,
        swapped: torch.Tensor,
        swap_matrix: torch.Tensor,
        cover: torch.Tensor,
    ) -> torch.Tensor:
        """The swapped crop [1, 3, S, S] with the restored face blended in. `swap_matrix` is the frame →
        swap crop transform; `cover` [1, 1, S, S] says where the swapped face replaces the frame."""
        if self.settings.blend <= 0.0:
            return swapped
        side, swap_side = self.side, int(swapped.shape[-1])
        matrix = estimate(kps.cpu(), TEMPLATE, side)
        swap_to_restore = compose(matrix, invert(swap_matrix.float().cpu()))  # geometry stays on the CPU
        background = warp_frame(frame, matrix, (side, side))
        face = warp(swapped, swap_to_restore, (side, side))
        laid = warp(cover, swap_to_restore, (side, side))
        restored = self.restore_crop(background + laid * (face - background))
        back = invert(swap_to_restore)
        restored_back = warp(restored, back, (swap_side, swap_side))
        valid = warp(torch.ones_like(restored[:, :1]), back, (swap_side, swap_side))
        amount = self.settings.blend * valid
        return swapped + amount * (restored_back - swapped)
