"""Alignment: similarity transforms from five keypoints to a template, their inverses, and warps.

Transforms are 2x3 matrices mapping frame pixels to crop pixels (OpenCV's and kornia's convention),
estimated by least squares (Umeyama: scale, rotation, translation; no shear) in torch, so the same code
runs on the GPU and the CPU. The inverse takes a processed crop back to the frame for paste-back.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

# Five-point templates (eyes, nose, mouth corners) in pixels at their reference size.
_TEMPLATES: dict[str, tuple[int, tuple[tuple[float, float], ...]]] = {
    # InsightFace's older ArcFace crop at 112 (FaceFusion's SimSwap 256 and GhostFace exports).
    "arcface_112_v1": (
        112,
        ((39.7300, 51.1380), (72.2700, 51.1380), (56.0000, 68.4930), (42.4630, 87.0100), (69.5370, 87.0100)),
    ),
    # InsightFace's ArcFace crop at 112.
    "arcface_112_v2": (
        112,
        ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)),
    ),
    # The same points in a 128 crop, shifted right by 8 (InsightFace's norm_crop for inswapper).
    "arcface_128": (
        128,
        ((46.2946, 51.6963), (81.5318, 51.5014), (64.0252, 71.7366), (49.5493, 92.3655), (78.7299, 92.2041)),
    ),
    # FFHQ alignment at 512 (GFPGAN, CodeFormer).
    "ffhq_512": (
        512,
        (
            (192.98138, 239.94708),
            (318.90277, 240.1936),
            (256.63416, 314.01935),
            (201.26117, 371.41043),
            (313.08905, 371.15118),
        ),
    ),
}
TEMPLATES = tuple(_TEMPLATES)


def template(name: str, size: int, device: torch.device | None = None) -> torch.Tensor:
    """The template's five points [5, 2] scaled to a square crop of `size` pixels."""
    try:
        reference, points = _TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown alignment template '{name}' (known: {', '.join(TEMPLATES)})") from None
    return torch.tensor(points, dtype=torch.float32, device=device) * (size / reference)


def umeyama(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The similarity transform [2, 3] that best maps source points [N, 2] onto target points [N, 2]
    in the least-squares sense (Umeyama 1991), reflection excluded."""
    src, dst = source.double(), target.double()
    src_mean, dst_mean = src.mean(dim=0), dst.mean(dim=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / src.shape[0]
    u, singular, vh = torch.linalg.svd(covariance)
    sign = torch.ones(2, dtype=torch.float64, device=src.device)
    if torch.det(u) * torch.det(vh) < 0:
        sign[1] = -1.0
    rotation = u @ torch.diag(sign) @ vh
    variance = src_c.pow(2).sum() / src.shape[0]
    scale = (singular * sign).sum() / variance
    translation = dst_mean - scale * rotation @ src_mean
    matrix = torch.cat([scale * rotation, translation[:, None]], dim=1)
    return matrix.to(source.dtype)


def estimate(kps: torch.Tensor, template_name: str, size: int) -> torch.Tensor:
    """Frame → crop transform [2, 3] for a face's five keypoints."""
    return umeyama(kps.float(), template(template_name, size, kps.device))


def invert(matrix: torch.Tensor) -> torch.Tensor:
    """The inverse of a 2x3 affine transform."""
    full = torch.cat([matrix, torch.tensor([[0.0, 0.0, 1.0]], dtype=matrix.dtype, device=matrix.device)])
    inverse: torch.Tensor = torch.linalg.inv(full)[:2]
    return inverse


def transform_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _pixels_to_unit(width: int, height: int) -> torch.Tensor:
    """Pixel coordinates → grid_sample's [-1, 1] (align_corners=True: pixel centres 0 and side-1 are ±1)."""
    return torch.tensor(
        [[2.0 / max(width - 1, 1), 0.0, -1.0], [0.0, 2.0 / max(height - 1, 1), -1.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )


def warp(image: torch.Tensor, matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Warp a float image [B, C, H, W] by a 2x3 (or [B, 2, 3]) transform into `size` (height, width):
    bilinear, zeros outside, the same sampling as kornia's warp_affine (align_corners=True).

    The matrix algebra (inverse, normalisation) runs on the CPU, where face geometry lives, and only the
    final 2x3 sampling matrices go to the image's device: inverting on the GPU would make the driver
    report back to the host (a device-to-host copy and a stall) on every warp."""
    batch = image.shape[0]
    matrices = (matrix if matrix.ndim == 3 else matrix[None]).detach().to("cpu", torch.float64)
    if matrices.shape[0] != batch:
        matrices = matrices.expand(batch, 2, 3)
    bottom = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64).expand(matrices.shape[0], 1, 3)
    output_to_input = torch.linalg.inv(torch.cat([matrices, bottom], dim=1))
    height, width = size
    source = _pixels_to_unit(int(image.shape[-1]), int(image.shape[-2]))
    theta = source @ output_to_input @ torch.linalg.inv(_pixels_to_unit(width, height))
    theta_device = theta[:, :2].to(image.dtype).to(image.device, non_blocking=True)
    grid = functional.affine_grid(
        theta_device, [batch, int(image.shape[1]), height, width], align_corners=True
    )
    return functional.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_frame(frame: torch.Tensor, matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The crop a frame → crop matrix selects from a uint8 [H, W, 3] frame: float [1, 3, h, w] in 0..255,
    zero outside the frame. Only the frame region under the crop (plus a 2-pixel rim for bilinear
    sampling) is converted to float, so the cost follows the crop, not a 4K frame."""
    height, width = size
    matrix = matrix.float().cpu()  # bounds are worked out on the CPU: no device sync per crop
    bounds = crop_bounds(matrix, size, (int(frame.shape[0]), int(frame.shape[1])))
    if bounds is None:
        return torch.zeros((1, int(frame.shape[2]), height, width), dtype=torch.float32, device=frame.device)
    x0, y0, x1, y1 = bounds
    region = frame[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float()
    shifted = matrix.clone()
    shifted[:, 2] += shifted[:, :2] @ torch.tensor([float(x0), float(y0)])
    return warp(region, shifted, size)


def crop_face(
    frame: torch.Tensor, kps: torch.Tensor, template_name: str, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 [H, W, 3] frame's face aligned into a float [1, 3, size, size] crop (0..255), and the
    frame → crop transform."""
    matrix = estimate(kps, template_name, size)
    return warp_frame(frame, matrix, (size, size)), matrix


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The 2x3 transform applying `inner` first, then `outer`."""
    linear = outer[:, :2] @ inner[:, :2]
    return torch.cat([linear, (outer[:, :2] @ inner[:, 2:] + outer[:, 2:])], dim=1)


def crop_bounds(
    matrix: torch.Tensor, size: tuple[int, int], frame_size: tuple[int, int], margin: int = 2
) -> tuple[int, int, int, int] | None:
    """The frame region (x0, y0, x1, y1) a crop of `size` (h, w) under a frame → crop matrix covers,
    clamped to the frame (h, w) and widened by `margin` pixels for bilinear sampling; None if it misses."""
    height, width = size
    corners = torch.tensor([[0.0, 0.0], [width - 1.0, 0.0], [0.0, height - 1.0], [width - 1.0, height - 1.0]])
    back = transform_points(corners, invert(matrix.float().cpu()))
    (left, top), (right, bottom) = back.min(dim=0).values.tolist(), back.max(dim=0).values.tolist()
    x0, y0 = max(math.floor(left) - margin, 0), max(math.floor(top) - margin, 0)
    x1 = min(math.ceil(right) + margin + 1, frame_size[1])
    y1 = min(math.ceil(bottom) + margin + 1, frame_size[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1
