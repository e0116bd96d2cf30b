"""inswapper_128 (InsightFace) and InStyleSwapper: the source latent is the unit ArcFace embedding
times the model's "emap" matrix, renormalised, as InsightFace's reference implementation does.

inswapper keeps emap as its last graph initializer; InStyleSwapper has none of its own and borrows
inswapper's (its catalog entry requires inswapper_128_fp16), as VisoMaster-Fusion does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import torch

from app.faces.types import unit
from app.inference.errors import ModelFormatError
from app.inference.initializers import last_initializer
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, ModelEntry
from app.processing.swappers.base import SwapperBase

EMAP_NAME = "emap"


def emap(runtime: InferenceRuntime, model_id: str, width: int, device: torch.device) -> torch.Tensor:
    path = runtime.model_file(model_id).path
    stat = path.stat()
    return _emap_on(path, stat.st_size, stat.st_mtime_ns, width, device)


@lru_cache(maxsize=8)
def _emap_on(path: Path, size: int, mtime_ns: int, width: int, device: torch.device) -> torch.Tensor:
    """The emap on `device`, read and uploaded once per file version: a strength below 1 needs it for
    every face of every frame."""
    matrix = torch.from_numpy(last_initializer(path, EMAP_NAME))
    if tuple(matrix.shape) != (width, width):
        raise ModelFormatError(
            f"{path}: the last initializer should be the {width}x{width} emap matrix, "
            f"found {list(matrix.shape)}"
        )
    return matrix.to(device)


class Inswapper(SwapperBase):
    OUTPUT = "unit"
    EMAP_FROM_SELF: ClassVar[bool] = True

    def emap_model(self, entry: ModelEntry, runtime: InferenceRuntime) -> str:
        if self.EMAP_FROM_SELF:
            return entry.id
        catalog = runtime.store.catalog
        donors = [i for i in entry.requires if catalog.get(i).kind is Kind.SWAPPER]
        if not donors:
            raise ModelFormatError(f"{entry.id}: its catalog entry names no inswapper to take the emap from")
        return donors[0]

    def latent(self, entry: ModelEntry, runtime: InferenceRuntime, embedding: torch.Tensor) -> torch.Tensor:
        normed = unit(embedding.float()).reshape(1, -1)
        matrix = emap(runtime, self.emap_model(entry, runtime), normed.shape[1], normed.device)
        return unit(normed @ matrix)


class InStyleSwapper(Inswapper):
    EMAP_FROM_SELF = False
