"""Head pose (yaw, pitch, roll in degrees) from 5 keypoints or 68 landmarks, with cv2.solvePnP.

Why: the stabiliser smooths yaw and pitch, and the engine can use them to skip or fade the swap on
profile views. A generic adult face model (millimetres, approximate proportions that project onto the
ArcFace 5-point template when seen head-on) and a pinhole camera derived from the frame size (focal
length = the longer side, principal point at the centre) are enough for that: an estimate, not a
measurement. Yaw is sound from 5 points (the nose against the eyes and mouth). Pitch from 5 points
leans on the eye-to-mouth distance, which expressions change: a broad smile lifts the mouth corners and
reads as the head tipped down (the astronaut test photo, smiling, reads about 40° down). 68 landmarks
(chin, nose bridge, eye corners) give a steadier pitch.

Sign conventions (image coordinates: x right, y down):
- yaw > 0: the face turns towards the image's right (its nose moves right of the eyes' midpoint).
- pitch > 0: the face tilts up (chin up; the nose moves up towards the eye line).
- roll > 0: clockwise on screen, the same as `Face.roll` / `roll_degrees`.
The rotation is taken apart as roll about the face's own facing axis, then pitch, then yaw about the
camera's vertical (`rotation_from_angles`), so yaw and pitch say where the face looks and roll is its
turn about that direction. The angles are relative to the camera's line of sight to the face, so a
face looking straight into the camera reads yaw ≈ 0 and pitch ≈ 0 wherever it is in the frame.

Keypoints follow InsightFace's order (left_eye, right_eye, nose, left_mouth, right_mouth — "left" is
the image's left); 68 landmarks follow iBUG 300-W's order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import torch

log = logging.getLogger(__name__)

# The model face: millimetres, x right, y down, z away from the camera; the nose tip at the origin.
MODEL_5 = np.array(
    [
        [-31.5, -36.0, 24.0],  # left eye (centre)
        [31.5, -36.0, 24.0],  # right eye
        [0.0, 0.0, 0.0],  # nose tip
        [-26.0, 37.0, 22.0],  # left mouth corner
        [26.0, 37.0, 22.0],  # right mouth corner
    ],
    dtype=np.float64,
)
# A subset of the iBUG 68 landmarks with the same proportions: index -> model point.
MODEL_68: dict[int, tuple[float, float, float]] = {
    8: (0.0, 70.0, 18.0),  # chin
    27: (0.0, -40.0, 18.0),  # top of the nose bridge
    30: (0.0, 0.0, 0.0),  # nose tip
    33: (0.0, 10.0, 14.0),  # nose base
    36: (-45.0, -36.0, 30.0),  # left eye, outer corner
    39: (-16.0, -36.0, 22.0),  # left eye, inner corner
    42: (16.0, -36.0, 22.0),  # right eye, inner corner
    45: (45.0, -36.0, 30.0),  # right eye, outer corner
    48: (-26.0, 37.0, 22.0),  # left mouth corner
    54: (26.0, 37.0, 22.0),  # right mouth corner
}
_INDEX_68 = list(MODEL_68)
_MODEL_68 = np.array([MODEL_68[i] for i in _INDEX_68], dtype=np.float64)
_EYE_SPAN_MM = 63.0  # the model's distance between the eye centres


@dataclass(frozen=True)
class HeadPose:
    yaw: float
    pitch: float
    roll: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)


def camera_matrix(width: int, height: int) -> npt.NDArray[np.float64]:
    """The pinhole camera assumed for a frame: focal length = the longer side, centred principal point."""
    focal = float(max(width, height))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def _model_for(points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The model points and the matching image points for 5 keypoints or 68 landmarks."""
    if points.shape == (5, 2):
        return MODEL_5, points
    if points.shape == (68, 2):
        return _MODEL_68, points[_INDEX_68]
    raise ValueError(f"head_pose: expected [5, 2] keypoints or [68, 2] landmarks, got {list(points.shape)}")


def _eye_centres(points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    if points.shape[0] == 5:
        return points[0], points[1]
    return points[36:42].mean(axis=0), points[42:48].mean(axis=0)


def _initial_guess(
    points: npt.NDArray[np.float64], camera: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A frontal pose at the distance the eye span implies: keeps the solver on the right branch."""
    left, right = _eye_centres(points)
    span = max(float(np.linalg.norm(right - left)), 1e-3)
    focal, cx, cy = camera[0, 0], camera[0, 2], camera[1, 2]
    depth = focal * _EYE_SPAN_MM / span
    nose = points[2] if points.shape[0] == 5 else points[30]
    tvec = np.array([(nose[0] - cx) * depth / focal, (nose[1] - cy) * depth / focal, depth])
    return np.zeros(3), tvec


def _towards(axis: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The smallest rotation taking the optical axis (0, 0, 1) onto the unit vector `axis`."""
    z = np.array([0.0, 0.0, 1.0])
    cross = np.cross(z, axis)
    sin, cos = float(np.linalg.norm(cross)), float(np.dot(z, axis))
    if sin < 1e-12:
        return np.eye(3)
    rvec = cross / sin * math.atan2(sin, cos)
    turn, _ = cv2.Rodrigues(rvec)
    return np.asarray(turn, dtype=np.float64)


def _turn_x(degrees: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _turn_y(degrees: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> npt.NDArray[np.float64]:
    """The model-to-camera rotation of a pose seen straight down the optical axis:
    R = Ry(-yaw) · Rx(-pitch) · Rz(roll) — roll about the face's own facing axis, then pitch about its
    left-right axis, then yaw about the camera's vertical."""
    c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    turn_z = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rotation: npt.NDArray[np.float64] = _turn_y(-yaw) @ _turn_x(-pitch) @ turn_z
    return rotation


def angles_from_rotation(rotation: npt.NDArray[np.float64], translation: npt.NDArray[np.float64]) -> HeadPose:
    """Yaw, pitch and roll (the inverse of rotation_from_angles) of a model-to-camera rotation, relative
    to the line of sight `translation` from the camera to the face."""
    sight = translation / max(float(np.linalg.norm(translation)), 1e-12)
    relative = _towards(sight).T @ rotation
    facing = relative @ np.array([0.0, 0.0, -1.0])  # from the face towards the camera
    yaw = math.degrees(math.atan2(facing[0], -facing[2]))
    pitch = math.degrees(math.atan2(-facing[1], math.hypot(facing[0], facing[2])))
    spin = (_turn_y(-yaw) @ _turn_x(-pitch)).T @ relative  # what is left: a turn about the facing axis
    roll = math.degrees(math.atan2(spin[1, 0], spin[0, 0]))
    return HeadPose(yaw, pitch, roll)


def head_pose(points: torch.Tensor | npt.ArrayLike, frame_size: tuple[int, int]) -> HeadPose | None:
    """The head pose of a face from its 5 keypoints or 68 landmarks in a frame of (width, height) pixels;
    None when the solver fails or puts the face behind the camera."""
    full = np.asarray(
        points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else points, dtype=np.float64
    )
    model, image = _model_for(full)
    if not np.isfinite(image).all():
        return None
    camera = camera_matrix(*frame_size)
    guess_r, guess_t = _initial_guess(full, camera)
    ok, rvec, tvec = cv2.solvePnP(
        model,
        image,
        camera,
        None,
        rvec=guess_r,
        tvec=guess_t,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    translation = np.asarray(tvec, dtype=np.float64).reshape(3)
    if not ok or translation[2] <= 0:
        log.debug("head pose: no solution for points %s", image.tolist())
        return None
    rotation, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))
    return angles_from_rotation(np.asarray(rotation, np.float64), translation)
