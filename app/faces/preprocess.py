"""What every image model of face analysis does to its input: the catalog's colour order and normalisation."""

from __future__ import annotations

from functools import lru_cache

import torch

from app.inference.shapes import declares_a_batch
from app.models.catalog import ModelEntry


def normalise(entry: ModelEntry, images: torch.Tensor) -> torch.Tensor:
    """Float RGB images [B, 3, H, W] in 0..255 → the model's input: channels reordered as the catalog's
    colour says, then (x − mean) / std with its normalisation."""
    if entry.colour == "BGR":
        images = images.flip(1)
    norm = entry.normalisation
    if norm is not None:
        mean = _channels(tuple(norm.mean), images.device)
        std = _channels(tuple(norm.std), images.device)
        images = (images - mean) / std
    return images.contiguous()


@lru_cache(maxsize=64)
def _channels(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """Per-channel constants [1, 3, 1, 1] on `device`, made once: a fresh tensor each call would be a
    host-to-device copy that makes the host wait for the GPU at every model call."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


def fixed_side(entry: ModelEntry, fallback: int) -> int:
    """The square input side the catalog fixes for the first input, else its input_size, else fallback."""
    dims = entry.inputs[0].shape
    if len(dims) == 4 and isinstance(dims[2], int):
        return dims[2]
    return entry.input_size or fallback


def takes_a_batch(entry: ModelEntry) -> bool:
    """Whether the catalog declares a batch axis (the runtime's `takes_a_batch` also knows rewrites)."""
    return declares_a_batch(entry)
