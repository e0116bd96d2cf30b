"""Box and frame geometry in torch: letterboxing, IoU, non-maximum suppression, quarter rotations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional


@dataclass(frozen=True)
class Letterbox:
    """A frame scaled by `scale` into the top-left of a `size` canvas (the rest is zero)."""

    scale: float
    size: tuple[int, int]  # canvas height, width

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Canvas coordinates back to frame coordinates (any [..., 2k] of x, y pairs)."""
        return (points / np.float32(self.scale)).astype(np.float32, copy=False)


def letterbox(frame: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
    """uint8 [H, W, 3] → float32 [3, h, w] canvas with the frame resized (aspect kept) at top-left."""
    canvases, box = letterbox_many(frame.unsqueeze(0), size)
    return canvases[0], box


def letterbox_many(frames: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, Letterbox]:
    """letterbox for a batch of frames of one size, uint8 [B, H, W, 3] → float32 [B, 3, h, w], in one
    pass: the same pixels as one frame at a time, for a fixed handful of torch calls per batch."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    canvas_h, canvas_w = size
    scale = min(canvas_h / height, canvas_w / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    chw = frames.permute(0, 3, 1, 2).float()
    resized = functional.interpolate(chw, size=(new_h, new_w), mode="bilinear", align_corners=False)
    # Into a zeroed canvas: the copy also turns the resize's channels-last layout into the plain one
    # the normalisation and the model read fastest.
    canvas = torch.zeros(
        (int(frames.shape[0]), 3, canvas_h, canvas_w), dtype=torch.float32, device=frames.device
    )
    canvas[:, :, :new_h, :new_w] = resized
    return canvas, Letterbox(new_h / height, (canvas_h, canvas_w))


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box in a [N, 4] against every box in b [M, 4] (x1, y1, x2, y2) → [N, M]."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = (bottom_right - top_left).clamp_min(0).prod(dim=2)
    return overlap / (area_a[:, None] + area_b[None, :] - overlap).clamp_min(1e-9)


def _host_iou(boxes: np.ndarray) -> np.ndarray:
    """box_iou of [K, 4] boxes with themselves, in NumPy (the same arithmetic, in float32)."""
    area = (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = (bottom_right - top_left).clip(min=0).prod(axis=2)
    iou: np.ndarray = overlap / np.maximum(area[:, None] + area[None, :] - overlap, np.float32(1e-9))
    return iou


def pair_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes."""
    return float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])


PRE_NMS_LIMIT = 2000  # candidates NMS looks at, best first: bounds its [K, K] IoU matrix at 16 MB


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """nms_host for torch boxes [K, 4] and scores [K]: the kept indices as a tensor on their device."""
    kept = nms_host(
        boxes.detach().to("cpu", torch.float32).numpy(),
        scores.detach().to("cpu", torch.float32).numpy(),
        threshold,
    )
    return torch.from_numpy(kept).to(boxes.device)


def nms_host(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best first. A box is dropped when its IoU with a
    kept, better box is above `threshold` (so a higher threshold keeps more, overlapping, boxes). Only
    the PRE_NMS_LIMIT best-scoring candidates are considered, as RetinaFace's own top-k does.

    In NumPy on the host: detections per frame are few after the score filter, so torch's per-op
    dispatch cost more than the work (py-spy on the H200: IoU and NMS held the GIL about 0.6 ms per
    frame as torch CPU ops), and a loop over device tensors would sync per step."""
    order = np.argsort(-scores, kind="stable")[:PRE_NMS_LIMIT]
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    overlapping = _host_iou(np.asarray(boxes, np.float32)[order]) > threshold
    suppressed = np.zeros(order.size, dtype=bool)
    keep = []
    for index in range(order.size):
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= overlapping[index]
    return order[keep].astype(np.int64)


def rotate_frame(frame: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    """The frame [H, W, C] rotated clockwise by 90° × quarter_turns."""
    return torch.rot90(frame, k=-quarter_turns % 4, dims=(0, 1)).contiguous()


def unrotate_points(points: torch.Tensor, quarter_turns: int, height: int, width: int) -> torch.Tensor:
    """Points [..., 2] found in a frame rotated clockwise by quarter_turns × 90° (whose original size
    was height × width), mapped back into the original frame."""
    host = unrotate_host(points.detach().cpu().numpy(), quarter_turns, height, width)
    return torch.from_numpy(host).to(points.device, points.dtype)


def unrotate_host(points: np.ndarray, quarter_turns: int, height: int, width: int) -> np.ndarray:
    """unrotate_points for NumPy points."""
    x, y = points[..., 0], points[..., 1]
    turns = quarter_turns % 4
    if turns == 0:
        return points.copy()
    if turns == 1:  # rotated frame is [W, H]: original (x, y) went to (H - 1 - y, x)
        back = (y, height - 1 - x)
    elif turns == 2:
        back = (width - 1 - x, height - 1 - y)
    else:
        back = (width - 1 - y, x)
    return np.stack(back, axis=-1)
