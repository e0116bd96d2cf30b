"""Paste-back: the processed crop goes back into the frame through the inverse of its alignment.

Only the frame region under the crop is touched: the crop and its mask are warped (bilinear, kornia)
into that region, the mask's edge is optionally refined by a guided filter steered by the frame itself
(so the seam follows the jaw line and hair, not the crop's geometry), and the region is blended
`frame * (1 - m) + crop * m`. Where the mask is 0 the frame's bytes come back unchanged.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

from app.faces.alignment import Matrix, place_in_frame

# Mask values this close to 0 or 1 are snapped, so float noise from filtering never nudges a pixel that
# should be untouched (or fully replaced) by one code value.
SNAP = 1.0 / 512.0
GUIDED_EPS = 1e-3  # regularisation on a 0..1 guide: edges weaker than ~3% contrast are smoothed over


def smoothing_radius(matrix: Matrix, crop_side: int, edge_smoothing: float) -> int:
    """Guided-filter radius in frame pixels: `edge_smoothing` % of a tenth of the face's size there."""
    if edge_smoothing <= 0:
        return 0
    (a, b, _), (d, e, _) = matrix.tolist()  # plain floats: torch's det on a 2x2 costs more than it does
    scale = math.sqrt(abs(a * e - b * d))  # crop px per frame px
    face_px = crop_side / max(scale, 1e-6)
    return round(face_px * 0.1 * edge_smoothing / 100.0)


def refine_edge(mask: torch.Tensor, guide: torch.Tensor, radius: int) -> torch.Tensor:
    """Guided filter (He et al.) of a mask [1, 1, h, w] steered by a guide image [1, 3, h, w] in 0..255:
    flat regions of the mask stay flat, its edge snaps to the guide's edges."""
    if radius < 1:
        return mask
    grey = guide.mean(dim=1, keepdim=True) / 255.0
    kernel = 2 * radius + 1
    subsample = max(1, radius // 4)  # the fast guided filter: same result at a fraction of the cost
    if min(mask.shape[-2:]) < kernel * 2:
        return mask
    # kornia is imported on first use: importing it whole costs a start-up ~0.4 s that a pipeline
    # without edge smoothing never repays.
    from kornia.filters import guided_blur

    refined: torch.Tensor = guided_blur(grey, mask, kernel, GUIDED_EPS, subsample=subsample)
    # The filter's two box passes reach 2r; keep its changes within r of the mask's own support, so
    # the seam moves to a nearby edge but the mask never grows into unrelated parts of the frame.
    support = functional.max_pool2d((mask > 0).float(), kernel, stride=1, padding=radius)
    return (refined * support).clamp(0.0, 1.0)


def snap(mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask < SNAP, 0.0, torch.where(mask > 1.0 - SNAP, 1.0, mask))


def paste_back(
    frame: torch.Tensor,
    crop: torch.Tensor,
    mask: torch.Tensor,
    matrix: Matrix,
    edge_smoothing: float = 0.0,
) -> torch.Tensor:
    """Blend a float RGB crop [1, 3, S, S] (0..255) into a uint8 [H, W, 3] frame, in place, under its
    mask [1, 1, S, S]; `matrix` is the frame → crop transform the crop was cut with. Returns the frame."""
    side = int(crop.shape[-1])
    # The crop and its mask in one sampling pass: their channels share the grid.
    placed = place_in_frame(torch.cat([crop.float(), mask.float()], dim=1), matrix, _size(frame))
    if placed is None:
        return frame
    (x0, y0, x1, y1), warped = placed
    region = frame[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float()
    pasted, alpha = warped[:, :3], warped[:, 3:]
    alpha = snap(refine_edge(alpha, region, smoothing_radius(matrix, side, edge_smoothing)))
    blended = torch.lerp(region, pasted, alpha).round_().clamp_(0, 255)
    frame[y0:y1, x0:x1].copy_(blended[0].permute(1, 2, 0))  # whole numbers: the uint8 cast is exact
    return frame


def _size(frame: torch.Tensor) -> tuple[int, int]:
    return int(frame.shape[0]), int(frame.shape[1])
