"""Colour transfer: Reinhard et al. (2001) in CIELAB, from the target face's statistics inside the mask.

Each LAB channel of the swapped face is shifted and scaled so its masked mean and standard deviation
match the original face's; `strength` blends between the untouched swap (0) and the full transfer (1).
Statistics are mask-weighted, so background in the crop corners does not pull the skin tone.
kornia does the colour-space conversions on whatever device the crops are on.
"""

from __future__ import annotations

import torch


def masked_stats(lab: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and standard deviation per channel: lab [1, 3, H, W], weight [1, 1, H, W]."""
    total = weight.sum().clamp_min(1e-6)
    mean = (lab * weight).sum(dim=(2, 3), keepdim=True) / total
    variance = ((lab - mean) ** 2 * weight).sum(dim=(2, 3), keepdim=True) / total
    return mean, variance.sqrt()


def to_lab(image: torch.Tensor) -> torch.Tensor:
    """Float RGB 0..255 [B, 3, H, W] → LAB (L 0..100, a/b about -128..127)."""
    from kornia.color import rgb_to_lab  # on first use: see blend.refine_edge

    lab: torch.Tensor = rgb_to_lab((image / 255.0).clamp(0.0, 1.0))
    return lab


def reinhard(
    swapped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, strength: float
) -> torch.Tensor:
    """The swapped crop (float RGB 0..255 [1, 3, S, S]) recoloured toward the target crop's statistics
    under the mask [1, 1, S, S]."""
    if strength <= 0.0:
        return swapped
    weight = mask.float()
    source_lab, target_lab = to_lab(swapped), to_lab(target)
    source_mean, source_std = masked_stats(source_lab, weight)
    target_mean, target_std = masked_stats(target_lab, weight)
    from kornia.color import lab_to_rgb

    moved = (source_lab - source_mean) * (target_std / source_std.clamp_min(1e-3)) + target_mean
    rgb: torch.Tensor = lab_to_rgb(moved, clip=True) * 255.0
    if strength >= 1.0:
        return rgb
    return swapped + strength * (rgb - swapped)
