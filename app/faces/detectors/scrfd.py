"""SCRFD (InsightFace): anchor-free distances on three strides, two anchors per cell, five keypoints.

Outputs in catalog order: scores for strides 8, 16, 32; then box distances; then keypoint distances.
A box is (cx - l, cy - t, cx + r, cy + b) times the stride around its anchor centre (x·s, y·s).
"""

from __future__ import annotations

import functools

import torch

from app.faces.detectors.base import LetterboxedFamily, RawDetections

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2


@functools.lru_cache(maxsize=16)  # one grid per canvas size and device, built once
def anchor_centres(height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
    """[cells × anchors, 2] (x, y) centres, row by row, each cell's anchors next to each other."""
    ys, xs = torch.meshgrid(
        torch.arange(height // stride, device=device),
        torch.arange(width // stride, device=device),
        indexing="ij",
    )
    centres = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float() * stride
    return centres.repeat_interleave(ANCHORS_PER_CELL, dim=0)


def decode(
    scores: list[torch.Tensor],
    distances: list[torch.Tensor],
    keypoints: list[torch.Tensor],
    canvas: tuple[int, int],
    score_threshold: float,
) -> RawDetections:
    """Boxes and keypoints in canvas pixels for every anchor scoring at least the threshold."""
    found_boxes, found_scores, found_kps = [], [], []
    for stride, score, distance, kps in zip(STRIDES, scores, distances, keypoints, strict=True):
        score, distance, kps = score.reshape(-1), distance.reshape(-1, 4), kps.reshape(-1, 5, 2)
        centres = anchor_centres(canvas[0], canvas[1], stride, score.device)
        if centres.shape[0] != score.shape[0]:
            raise ValueError(f"SCRFD stride {stride}: {score.shape[0]} scores for {centres.shape[0]} anchors")
        keep = score >= score_threshold
        centre = centres[keep]
        step = distance[keep] * stride
        found_boxes.append(torch.cat([centre - step[:, :2], centre + step[:, 2:]], dim=1))
        found_kps.append(centre[:, None, :] + kps[keep] * stride)
        found_scores.append(score[keep])
    return RawDetections.of(torch.cat(found_boxes), torch.cat(found_scores), torch.cat(found_kps))


class Scrfd(LetterboxedFamily):
    NAME = "SCRFD with keypoints"
    OUTPUTS = 9

    def decode(
        self, outputs: list[torch.Tensor], canvas: tuple[int, int], score_threshold: float
    ) -> RawDetections:
        return decode(outputs[0:3], outputs[3:6], outputs[6:9], canvas, score_threshold)
