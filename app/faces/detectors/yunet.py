"""YuNet (libfacedetection): one anchor per cell at strides 8, 16, 32, as OpenCV's FaceDetectorYN decodes it.

Outputs in catalog order: cls, obj, bbox, kps for each stride. The score is sqrt(cls × obj), both
clamped to 0..1; the box centre is (cell + offset) × stride and its size exp(log-size) × stride; keypoints
are (cell + offset) × stride.
"""

from __future__ import annotations

import functools

import torch

from app.faces.detectors.base import LetterboxedFamily, RawDetections

STRIDES = (8, 16, 32)


@functools.lru_cache(maxsize=16)  # one grid per canvas size and device, built once
def cells(height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
    """[rows × cols, 2] (column, row) of every cell, row by row."""
    ys, xs = torch.meshgrid(
        torch.arange(height // stride, device=device),
        torch.arange(width // stride, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2).float()


def decode(outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float) -> RawDetections:
    """One image's twelve outputs → boxes, scores and keypoints in canvas pixels."""
    count = len(STRIDES)
    found_boxes, found_scores, found_kps = [], [], []
    for index, stride in enumerate(STRIDES):
        cls, obj = outputs[index].reshape(-1), outputs[index + count].reshape(-1)
        bbox, kps = outputs[index + 2 * count].reshape(-1, 4), outputs[index + 3 * count].reshape(-1, 5, 2)
        grid = cells(canvas[0], canvas[1], stride, cls.device)
        if grid.shape[0] != cls.shape[0]:
            raise ValueError(f"YuNet stride {stride}: {cls.shape[0]} scores for {grid.shape[0]} cells")
        score = (cls.clamp(0, 1) * obj.clamp(0, 1)).sqrt()
        keep = score >= score_threshold
        cell, bbox = grid[keep], bbox[keep]
        centre = (cell + bbox[:, :2]) * stride
        half = torch.exp(bbox[:, 2:]) * stride / 2
        found_boxes.append(torch.cat([centre - half, centre + half], dim=1))
        found_kps.append((cell[:, None, :] + kps[keep]) * stride)
        found_scores.append(score[keep])
    return RawDetections.of(torch.cat(found_boxes), torch.cat(found_scores), torch.cat(found_kps))


class YuNet(LetterboxedFamily):
    NAME = "YuNet (cls, obj, bbox, kps × 3)"
    OUTPUTS = 12

    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        return decode(outputs, canvas, score_threshold)
