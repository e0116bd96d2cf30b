"""The box mask: the crop minus its padding, with edges feathered in proportion to the face.

The crop is aligned to the face, so a feather that is a fixed share of the crop side is a fixed share of
the face in the frame: a distant face gets a few pixels of feather, a close-up dozens. The ramp is
computed, not blurred: linear from the padded edge inwards over the feather width, smoothed with a
smoothstep, and exactly 0 at and beyond the edge, so pixels outside it are never touched.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from app.processing.settings import MaskSettings


def _ramp(size: int, start: float, end: float, feather: float) -> torch.Tensor:
    # Pixel i sits at i; the first and last pixels inside the padding sit exactly on the edge (0).
    pixels = torch.arange(size, dtype=torch.float32)
    if feather <= 0:
        return ((pixels >= start) & (pixels <= end - 1)).float()
    inside = torch.minimum(pixels - start, end - 1 - pixels) / feather
    ramp = inside.clamp(0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible kink where the feather ends


@lru_cache(maxsize=32)
def _box(
    size: int, padding: tuple[float, float, float, float], feather: float, device: torch.device
) -> torch.Tensor:
    top, right, bottom, left = (p / 100.0 * size for p in padding)
    width = feather / 100.0 * size
    rows = _ramp(size, top, size - bottom, width)
    cols = _ramp(size, left, size - right, width)
    return (rows[:, None] * cols[None, :]).view(1, 1, size, size).to(device)


def box_mask(size: int, settings: MaskSettings, device: torch.device) -> torch.Tensor:
    """[1, 1, size, size]; the feather is `settings.feather` % of the crop side (the face's size).
    Kept per device, so a GPU frame does not upload the same mask again for every face."""
    return _box(size, tuple(settings.padding), float(settings.feather), device)


def feather_width(mask_row: torch.Tensor) -> int:
    """How many pixels of a mask row are strictly between 0 and 1 on its rising edge: the measured
    feather, for previews and tests."""
    row = mask_row.flatten()
    peak = int(torch.argmax(row).item())
    rising = row[: peak + 1]
    return int(((rising > 0) & (rising < 1)).sum().item())
