"""Restorer: sharpens the swapped face, then blends the result back by the user's amount.

Restorers are trained on FFHQ-aligned faces, a slightly wider crop than a swapper's. The restorer's
input is therefore the frame's FFHQ crop with the swapped face laid over it (both warped straight from
their sources, nothing pasted into the frame yet); its output is warped back into the swap crop's space
and blended there, so one paste-back at the end composites everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from app.core.errors import CatalogError
from app.faces.alignment import compose_host, estimate_host, invert_host, warp, warp_frame
from app.faces.preprocess import fixed_side
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind
from app.processing.restorers.base import FAMILIES, RestorerFamily
from app.processing.settings import RestoreSettings

TEMPLATE = "ffhq_512"


@dataclass(frozen=True)
class RestoreInput:
    frame: torch.Tensor  # uint8 [H, W, 3], the untouched frame the face is in
    kps: torch.Tensor  # the face's five points (CPU)
    swapped: torch.Tensor  # the swapped crop [1, 3, S, S]
    swap_matrix: torch.Tensor  # frame → swap crop
    cover: torch.Tensor  # [1, 1, S, S]: where the swapped face replaces the frame


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
        self.batched = runtime.takes_a_batch(self.entry.id)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.runtime.run_ordered(self.entry.id, *inputs)

    def restore_crop(self, crop: torch.Tensor) -> torch.Tensor:
        """FFHQ-aligned float crops [N, 3, side, side] (0..255) restored: one call when the model takes
        a batch, else one per crop."""
        if self.batched or crop.shape[0] == 1:
            inputs = self.family.prepare(self.entry, crop, self.settings.fidelity)
            return self.family.normalize(self.entry, self.forward(inputs))
        return torch.cat([self.restore_crop(row[None]) for row in crop])

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
        return self.restore_many([RestoreInput(frame, kps, swapped, swap_matrix, cover)])[0]

    def restore_many(self, faces: Sequence[RestoreInput]) -> list[torch.Tensor]:
        """Several faces (of one frame or several) restored with one model call where it takes a batch."""
        if self.settings.blend <= 0.0:
            return [face.swapped for face in faces]
        if len({tuple(face.swapped.shape) for face in faces}) > 1:  # crops of different sides
            return [self.restore_many([face])[0] for face in faces]
        side = self.side
        # Geometry in NumPy on the host: no torch dispatch for a few 2x3 matrices.
        to_crop = [estimate_host(face.kps, TEMPLATE, side) for face in faces]
        swap_to_restore = np.stack(
            [compose_host(m, invert_host(face.swap_matrix)) for m, face in zip(to_crop, faces, strict=True)]
        )
        backgrounds = torch.cat(
            [warp_frame(f.frame, m, (side, side)) for m, f in zip(to_crop, faces, strict=True)]
        )
        # Every face's swapped crop and cover in one sampling pass (the channels share each face's grid).
        layers = warp(
            torch.cat([torch.cat([face.swapped, face.cover], dim=1) for face in faces]),
            swap_to_restore,
            (side, side),
        )
        swapped, laid = layers[:, :3], layers[:, 3:]
        restored = self.restore_crop(backgrounds + laid * (swapped - backgrounds))
        # Back into the swap crops: the restored faces and where they are valid, in one pass again.
        swap_side = int(faces[0].swapped.shape[-1])
        back = warp(
            torch.cat([restored, torch.ones_like(restored[:, :1])], dim=1),
            invert_host(swap_to_restore),
            (swap_side, swap_side),
        )
        restored_back, valid = back[:, :3], back[:, 3:]
        before = torch.cat([face.swapped for face in faces])
        blended = before + self.settings.blend * valid * (restored_back - before)
        return [blended[i : i + 1] for i in range(len(faces))]
