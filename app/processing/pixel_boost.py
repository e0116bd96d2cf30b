"""Pixel boost: a model trained at side m run on a crop of side k*m by space-to-depth tiling.

The k*m crop is split into k*k interleaved sub-images (pixel (y*k+i, x*k+j) goes to tile (i, j) at
(y, x)); each is a full, slightly shifted m-pixel view of the face, so the model sees what it was
trained on, and re-interleaving its k*k answers gives a k*m result with k times the detail. An identity
model therefore reproduces the crop exactly.
"""

from __future__ import annotations

import torch


def boost_factor(model_side: int, crop_side: int) -> int:
    if crop_side % model_side or not 1 <= crop_side // model_side <= 4:
        raise ValueError(f"pixel boost {crop_side} is not 1 to 4 times the model's side {model_side}")
    return crop_side // model_side


def to_tiles(crop: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, k*m, k*m] → [N*k*k, C, m, m]: each crop's k*k tiles, crop after crop."""
    count, channels, height, width = crop.shape
    side_y, side_x = height // factor, width // factor
    tiles = crop.reshape(count, channels, side_y, factor, side_x, factor).permute(0, 3, 5, 1, 2, 4)
    return tiles.reshape(count * factor * factor, channels, side_y, side_x)


def from_tiles(tiles: torch.Tensor, factor: int) -> torch.Tensor:
    """[N*k*k, C, m, m] → [N, C, k*m, k*m]; the inverse of to_tiles."""
    total, channels, side_y, side_x = tiles.shape
    count = total // (factor * factor)
    grid = tiles.reshape(count, factor, factor, channels, side_y, side_x).permute(0, 3, 4, 1, 5, 2)
    return grid.reshape(count, channels, side_y * factor, side_x * factor)
