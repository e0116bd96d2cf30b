"""Pyramidal Lucas–Kanade optical flow for a few points, with a forward–backward consistency check.

Why: between detections the tracker moves a face's keypoints (and landmarks) by the image motion around
them; that costs well under a millisecond for a few dozen points, against tens for a detector run. A
point is trusted only when flowing it forward and then back lands within `fb_threshold` pixels of where
it started (Kalal et al. 2010), which catches points on flat or occluded texture that LK's own status
flag lets through.

Images are grey uint8 numpy arrays on the host; points are float [N, 2] (x, y) in those images' pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

WINDOW = 21  # pixels: the LK window side
LEVELS = 3  # pyramid levels above the base: follows motion of ~2**LEVELS * WINDOW / 2 pixels
CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


@dataclass(frozen=True)
class Flow:
    points: npt.NDArray[np.float32]  # [N, 2] where each point went (meaningless where not ok)
    ok: npt.NDArray[np.bool_]  # [N] the point passed LK's status, the bounds and the FB check
    fb_error: npt.NDArray[np.float32]  # [N] forward-backward distance in pixels (inf where LK failed)

    @property
    def lost_fraction(self) -> float:
        return 1.0 - float(self.ok.mean()) if self.ok.size else 1.0


def _check_grey(image: npt.NDArray[np.uint8], what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(
            f"optical flow: {what} must be a grey uint8 [H, W] image, got {image.dtype} {image.shape}"
        )


def track_points(
    previous: npt.NDArray[np.uint8],
    current: npt.NDArray[np.uint8],
    points: npt.ArrayLike,
    fb_threshold: float = 1.0,
    window: int = WINDOW,
    levels: int = LEVELS,
) -> Flow:
    """Where `points` of `previous` went in `current`, and which of them can be trusted."""
    _check_grey(previous, "previous")
    _check_grey(current, "current")
    if previous.shape != current.shape:
        raise ValueError(f"optical flow: frame sizes differ, {previous.shape} vs {current.shape}")
    start = np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)
    count = start.shape[0]
    if count == 0:
        empty = np.zeros((0, 2), np.float32)
        return Flow(empty, np.zeros(0, bool), np.zeros(0, np.float32))
    size = (window, window)
    # nextPts is only an output here (no OPTFLOW_USE_INITIAL_FLOW): a buffer keeps the stubs happy.
    forward = cv2.calcOpticalFlowPyrLK(
        previous, current, start, start.copy(), winSize=size, maxLevel=levels, criteria=CRITERIA
    )
    ahead, status = np.asarray(forward[0], np.float32), np.asarray(forward[1])
    backward = cv2.calcOpticalFlowPyrLK(
        current, previous, ahead, ahead.copy(), winSize=size, maxLevel=levels, criteria=CRITERIA
    )
    back, status_back = np.asarray(backward[0], np.float32), np.asarray(backward[1])
    moved = ahead.reshape(count, 2)
    error = np.linalg.norm(back.reshape(count, 2) - start.reshape(count, 2), axis=1).astype(np.float32)
    height, width = current.shape
    inside = (
        (moved[:, 0] >= 0) & (moved[:, 0] <= width - 1) & (moved[:, 1] >= 0) & (moved[:, 1] <= height - 1)
    )
    flowed = (status.reshape(count) == 1) & (status_back.reshape(count) == 1) & np.isfinite(error)
    error = np.where(flowed, error, np.float32(np.inf)).astype(np.float32)
    ok = flowed & inside & (error <= fb_threshold)
    return Flow(moved.astype(np.float32), ok, error)


def fit_similarity(
    source: npt.NDArray[np.float64], target: npt.NDArray[np.float64]
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The least-squares similarity (scale s, rotation R, translation t) with target ≈ s·R·source + t
    (Umeyama 1991), from at least two point pairs; None when the points are degenerate."""
    if source.shape[0] < 2:
        return None
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    variance = float((centred_s**2).sum()) / source.shape[0]
    if variance < 1e-9:
        return None
    u, singular, vt = np.linalg.svd(centred_t.T @ centred_s / source.shape[0])
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum()) / variance
    translation = mean_t - scale * rotation @ mean_s
    return scale, rotation, translation
