"""Alignment: similarity transforms from five keypoints to a template, their inverses, and warps.

Transforms are 2x3 matrices mapping frame pixels to crop pixels (OpenCV's and kornia's convention),
estimated by least squares (Umeyama: scale, rotation, translation; no shear). The inverse takes a
processed crop back to the frame for paste-back.

The matrix algebra (2x2 SVDs, 3x3 inverses, a crop's corners) runs in NumPy on the host: torch pays
5-50 µs of dispatch per op on matrices this small, and with a handful of ops per face per stage that
was most of the export's time on the H200 (py-spy: the workers spent under 10 % in model calls). Only
the images and their sampling grids are torch tensors on the frame's device. Functions still take and
give torch tensors.
"""

from __future__ import annotations

import math

import numpy as np
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


def _template_points(name: str) -> tuple[float, tuple[tuple[float, float], ...]]:
    try:
        return _TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown alignment template '{name}' (known: {', '.join(TEMPLATES)})") from None


def template(name: str, size: int, device: torch.device | None = None) -> torch.Tensor:
    """The template's five points [5, 2] scaled to a square crop of `size` pixels."""
    reference, points = _template_points(name)
    return torch.tensor(points, dtype=torch.float32, device=device) * (size / reference)


Matrix = torch.Tensor | np.ndarray  # a 2x3 transform; hot paths keep theirs in NumPy, never dispatching


def _host(tensor: Matrix) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor.astype(np.float64, copy=False)
    if tensor.device.type == "cpu" and not tensor.requires_grad:  # the usual case: half the dispatch
        return tensor.numpy().astype(np.float64)
    return tensor.detach().to("cpu", torch.float64).numpy()


def _like(values: np.ndarray, model: torch.Tensor) -> torch.Tensor:
    """A float64 array back as a tensor of `model`'s float dtype and device."""
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    return torch.from_numpy(np.ascontiguousarray(values)).to(model.device, dtype)


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity [..., 2, 3] from points src [..., N, 2] onto dst [..., N, 2].

    In the plane a scaled rotation is [[a, -b], [b, a]], so the least-squares fit is linear in (a, b)
    and has a closed form; it is Umeyama's solution with reflections excluded, without the SVD (NumPy
    spent ~100 µs a face in the SVD and determinants' per-call overhead, most of the host's share of
    estimating a crop). One set of points, the usual case, is worked out in plain floats: a few
    NumPy calls on five points cost more than the arithmetic."""
    if src.ndim == 2 and dst.ndim == 2:
        return _similarity(src.tolist(), dst.tolist())
    src_mean, dst_mean = src.mean(axis=-2), dst.mean(axis=-2)
    x, y = src - src_mean[..., None, :], dst - dst_mean[..., None, :]
    spread = np.maximum((x * x).sum(axis=(-2, -1)), 1e-12)
    a = (x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1]).sum(axis=-1) / spread
    b = (x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]).sum(axis=-1) / spread
    a, b = np.broadcast_arrays(a, b)
    tx = dst_mean[..., 0] - (a * src_mean[..., 0] - b * src_mean[..., 1])
    ty = dst_mean[..., 1] - (b * src_mean[..., 0] + a * src_mean[..., 1])
    return np.stack([np.stack([a, -b, tx], axis=-1), np.stack([b, a, ty], axis=-1)], axis=-2)


def _similarity(src: list[list[float]], dst: list[list[float]]) -> np.ndarray:
    """_umeyama for one set of points, in Python floats."""
    count = len(src)
    sx, sy = sum(p[0] for p in src) / count, sum(p[1] for p in src) / count
    dx, dy = sum(p[0] for p in dst) / count, sum(p[1] for p in dst) / count
    spread = dot = cross = 0.0
    for (x0, x1), (y0, y1) in zip(src, dst, strict=True):
        x0, x1, y0, y1 = x0 - sx, x1 - sy, y0 - dx, y1 - dy
        spread += x0 * x0 + x1 * x1
        dot += x0 * y0 + x1 * y1
        cross += x0 * y1 - x1 * y0
    spread = max(spread, 1e-12)
    a, b = dot / spread, cross / spread
    return np.array([[a, -b, dx - (a * sx - b * sy)], [b, a, dy - (b * sx + a * sy)]])


def umeyama(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The similarity transform [2, 3] that best maps source points [N, 2] onto target points [N, 2]
    in the least-squares sense (Umeyama 1991), reflection excluded."""
    return _like(_umeyama(_host(source), _host(target)), source)


def estimate(kps: torch.Tensor, template_name: str, size: int) -> torch.Tensor:
    """Frame → crop transform [2, 3] for a face's five keypoints."""
    return _like(estimate_host(kps, template_name, size), kps.float())


def estimate_host(kps: torch.Tensor, template_name: str, size: int) -> np.ndarray:
    """estimate, as a float64 NumPy matrix."""
    reference, points = _template_points(template_name)
    target = np.asarray(points, dtype=np.float64) * (size / reference)
    return _umeyama(_host(kps), target)


def _invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of 2x3 affine transforms [..., 2, 3] in closed form: [A | t] → [A⁻¹ | -A⁻¹ t]."""
    if matrix.ndim == 2:  # one matrix: plain floats beat a dozen NumPy calls on scalars
        (a, b, c), (d, e, f) = matrix.tolist()
        det = a * e - b * d
        ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
        return np.array([[ia, ib, -(ia * c + ib * f)], [id_, ie, -(id_ * c + ie * f)]])
    a, b, c = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    d, e, f = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    det = a * e - b * d
    inverse = np.empty(matrix.shape, dtype=np.float64)
    inverse[..., 0, 0], inverse[..., 0, 1] = e / det, -b / det
    inverse[..., 1, 0], inverse[..., 1, 1] = -d / det, a / det
    inverse[..., 0, 2] = -(inverse[..., 0, 0] * c + inverse[..., 0, 1] * f)
    inverse[..., 1, 2] = -(inverse[..., 1, 0] * c + inverse[..., 1, 1] * f)
    return inverse


def invert(matrix: torch.Tensor) -> torch.Tensor:
    """The inverse of a 2x3 affine transform."""
    return _like(_invert(_host(matrix)), matrix)


def invert_host(matrix: Matrix) -> np.ndarray:
    """invert as a float64 NumPy matrix [2, 3] (or [..., 2, 3]), from either kind of matrix."""
    return _invert(_host(matrix))


def transform_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _pixels_to_unit(width: int, height: int) -> np.ndarray:
    """Pixel coordinates → grid_sample's [-1, 1] (align_corners=True: pixel centres 0 and side-1 are ±1)."""
    return np.array(
        [[2.0 / max(width - 1, 1), 0.0, -1.0], [0.0, 2.0 / max(height - 1, 1), -1.0], [0.0, 0.0, 1.0]]
    )


def _unit_to_pixels(width: int, height: int) -> np.ndarray:
    sx, sy = max(width - 1, 1) / 2.0, max(height - 1, 1) / 2.0
    return np.array([[sx, 0.0, sx], [0.0, sy, sy], [0.0, 0.0, 1.0]])


def _sampling_matrices(
    matrices: np.ndarray, image_size: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """grid_sample's thetas [B, 2, 3]: output unit coordinates → input unit coordinates."""
    output_to_input = _invert(matrices)
    full = np.zeros((matrices.shape[0], 3, 3))
    full[:, :2], full[:, 2, 2] = output_to_input, 1.0
    height, width = size
    theta = _pixels_to_unit(image_size[1], image_size[0]) @ full @ _unit_to_pixels(width, height)
    return np.ascontiguousarray(theta[:, :2])


def warp(image: torch.Tensor, matrix: Matrix, size: tuple[int, int]) -> torch.Tensor:
    """Warp a float image [B, C, H, W] by a 2x3 (or [B, 2, 3]) transform into `size` (height, width):
    bilinear, zeros outside, the same sampling as kornia's warp_affine (align_corners=True).

    The matrix algebra runs on the host (see the module's docstring); only the final 2x3 sampling
    matrices go to the image's device (inverting there would also stall on a device-to-host copy)."""
    batch = image.shape[0]
    matrices = _host(matrix if matrix.ndim == 3 else matrix[None])
    if matrices.shape[0] != batch:
        matrices = np.broadcast_to(matrices, (batch, 2, 3))
    return _sample(
        image, _sampling_matrices(matrices, (int(image.shape[-2]), int(image.shape[-1])), size), size
    )


def _sample(image: torch.Tensor, theta: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear sampling of `image` [B, C, H, W] by host thetas [B, 2, 3] into `size` (height, width)."""
    theta_device = torch.from_numpy(theta).to(image.device, image.dtype, non_blocking=True)
    height, width = size
    grid = functional.affine_grid(
        theta_device, [int(image.shape[0]), int(image.shape[1]), height, width], align_corners=True
    )
    return functional.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_frame(frame: torch.Tensor, matrix: Matrix, size: tuple[int, int]) -> torch.Tensor:
    """The crop a frame → crop matrix selects from a uint8 [H, W, 3] frame: float [1, 3, h, w] in 0..255,
    zero outside the frame. Only the frame region under the crop (plus a 2-pixel rim for bilinear
    sampling) is converted to float, so the cost follows the crop, not a 4K frame."""
    height, width = size
    host = _host(matrix)  # bounds are worked out on the host: no device sync per crop
    bounds = _crop_bounds(host, size, (int(frame.shape[0]), int(frame.shape[1])))
    if bounds is None:
        return torch.zeros((1, int(frame.shape[2]), height, width), dtype=torch.float32, device=frame.device)
    x0, y0, x1, y1 = bounds
    region = frame[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float()
    shifted = host.copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([float(x0), float(y0)])
    return _sample(region, _sampling_matrices(shifted[None], (y1 - y0, x1 - x0), size), size)


def place_in_frame(
    image: torch.Tensor, matrix: Matrix, frame_size: tuple[int, int]
) -> tuple[tuple[int, int, int, int], torch.Tensor] | None:
    """A crop-space image [B, C, S, S] warped back into the frame region (x0, y0, x1, y1) it covers,
    through the inverse of its frame → crop `matrix`: the region's bounds and the warped image
    [B, C, y1 - y0, x1 - x0]; None when the crop lies outside the frame (frame_size is h, w)."""
    side = (int(image.shape[-2]), int(image.shape[-1]))
    host = _host(matrix)
    bounds = _crop_bounds(host, side, frame_size)
    if bounds is None:
        return None
    x0, y0, x1, y1 = bounds
    crop_to_region = _invert(host)
    crop_to_region[:, 2] -= (float(x0), float(y0))
    region = (y1 - y0, x1 - x0)
    theta = _sampling_matrices(crop_to_region[None], side, region)
    return bounds, _sample(image, theta, region)


def crop_face(
    frame: torch.Tensor, kps: torch.Tensor, template_name: str, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 [H, W, 3] frame's face aligned into a float [1, 3, size, size] crop (0..255), and the
    frame → crop transform."""
    matrix = estimate_host(kps, template_name, size)
    return warp_frame(frame, matrix, (size, size)), torch.from_numpy(matrix.astype(np.float32))


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The 2x3 transform applying `inner` first, then `outer`."""
    return _like(compose_host(_host(outer), _host(inner)), outer)


def compose_host(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """compose for NumPy matrices."""
    return np.concatenate([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]], axis=1)


def _crop_bounds(
    matrix: np.ndarray, size: tuple[int, int], frame_size: tuple[int, int], margin: int = 2
) -> tuple[int, int, int, int] | None:
    height, width = size
    (a, b, c), (d, e, f) = _invert(matrix).tolist()  # plain floats: four corners are no work for NumPy
    corners = [(0.0, 0.0), (width - 1.0, 0.0), (0.0, height - 1.0), (width - 1.0, height - 1.0)]
    xs = [a * x + b * y + c for x, y in corners]
    ys = [d * x + e * y + f for x, y in corners]
    left, right, top, bottom = min(xs), max(xs), min(ys), max(ys)
    x0, y0 = max(math.floor(left) - margin, 0), max(math.floor(top) - margin, 0)
    x1 = min(math.ceil(right) + margin + 1, frame_size[1])
    y1 = min(math.ceil(bottom) + margin + 1, frame_size[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1
