"""The restorer contract. Every catalog restorer takes an FFHQ-aligned face normalised to [-1, 1] and
returns one in [-1, 1]; CodeFormer also takes its fidelity weight w (float64 [1])."""

from __future__ import annotations

from typing import Protocol

import torch

from app.faces.preprocess import normalise
from app.models.catalog import ModelEntry


class RestorerFamily(Protocol):
    def prepare(self, entry: ModelEntry, crop: torch.Tensor, fidelity: float) -> list[torch.Tensor]: ...

    def normalize(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> torch.Tensor: ...


class SignedImageRestorer:
    """GFPGAN, GPEN, RestoreFormer++: one image in, one image out, both in [-1, 1]."""

    def prepare(self, entry: ModelEntry, crop: torch.Tensor, fidelity: float) -> list[torch.Tensor]:
        return [normalise(entry, crop)]

    def normalize(self, entry: ModelEntry, outputs: list[torch.Tensor]) -> torch.Tensor:
        face = outputs[0].float().clamp(-1.0, 1.0)
        if entry.colour == "BGR":
            face = face.flip(1)
        return (face + 1.0) * 127.5


class CodeFormer(SignedImageRestorer):
    """w = 1 keeps the input's identity; lower trusts the codebook (cleaner, less like the input)."""

    def prepare(self, entry: ModelEntry, crop: torch.Tensor, fidelity: float) -> list[torch.Tensor]:
        weight = torch.tensor([fidelity], dtype=torch.float64, device=crop.device)
        return [normalise(entry, crop), weight]


FAMILIES: dict[str, RestorerFamily] = {
    "gfpgan": SignedImageRestorer(),
    "gpen": SignedImageRestorer(),
    "restoreformer": SignedImageRestorer(),
    "codeformer": CodeFormer(),
}
