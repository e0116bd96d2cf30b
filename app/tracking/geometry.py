"""Box and face geometry shared by the tracker: overlap, padding, moving a face, and a face as plain data.

Why a module of its own: the tracker, the stabiliser and the state code all move or compare faces, and
each of those operations must treat the box, the 5 keypoints and the dense landmarks alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from app.faces.types import Face

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def padded_region(box: Box, padding: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The whole-pixel region (x1, y1, x2, y2) of `box` grown by `padding` × its side on every side and
    clipped to a width × height frame; None when nothing of it is inside the frame."""
    pad_x, pad_y = (box[2] - box[0]) * padding, (box[3] - box[1]) * padding
    x1, y1 = max(0, int(np.floor(box[0] - pad_x))), max(0, int(np.floor(box[1] - pad_y)))
    x2, y2 = min(width, int(np.ceil(box[2] + pad_x))), min(height, int(np.ceil(box[3] + pad_y)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return x1, y1, x2, y2


def shift_face(face: Face, dx: float, dy: float) -> Face:
    """The face moved by (dx, dy) pixels: how a face found in a crop is put back into the frame."""
    offset = torch.tensor([dx, dy], dtype=face.kps.dtype)
    landmarks = None if face.landmarks is None else face.landmarks + offset.to(face.landmarks.dtype)
    box = (face.box[0] + dx, face.box[1] + dy, face.box[2] + dx, face.box[3] + dy)
    return dataclasses.replace(face, box=box, kps=face.kps + offset, landmarks=landmarks)


def transform_points(
    points: torch.Tensor,
    scale: float,
    rotation: npt.NDArray[np.float64],
    translation: npt.NDArray[np.float64],
) -> torch.Tensor:
    """Points [N, 2] mapped by p -> scale · rotation · p + translation (computed in float64)."""
    moved = scale * points.double().numpy() @ rotation.T + translation
    return torch.from_numpy(moved).to(points.dtype)


def transform_face(
    face: Face, scale: float, rotation: npt.NDArray[np.float64], translation: npt.NDArray[np.float64]
) -> Face:
    """The face under a similarity: its points move exactly; its box keeps its axes, moves with its centre
    and scales with `scale`."""
    centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2])
    cx, cy = scale * rotation @ centre + translation
    half_w, half_h = face.width * scale / 2, face.height * scale / 2
    landmarks = (
        None if face.landmarks is None else transform_points(face.landmarks, scale, rotation, translation)
    )
    return dataclasses.replace(
        face,
        box=(float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h)),
        kps=transform_points(face.kps, scale, rotation, translation),
        landmarks=landmarks,
    )


def box_motion(before: Box, after: Box) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The scale-and-translation that takes box `before` onto box `after` (centre to centre, the
    geometric mean of the side ratios as the scale), as a similarity with no rotation."""
    scale = float(
        np.sqrt(
            ((after[2] - after[0]) * (after[3] - after[1]))
            / ((before[2] - before[0]) * (before[3] - before[1]))
        )
    )
    centre_before = np.array([(before[0] + before[2]) / 2, (before[1] + before[3]) / 2])
    centre_after = np.array([(after[0] + after[2]) / 2, (after[1] + after[3]) / 2])
    return scale, np.eye(2), centre_after - scale * centre_before


def face_points(face: Face) -> torch.Tensor:
    """The 5 keypoints followed by the landmarks, if any: the points the tracker moves."""
    if face.landmarks is None:
        return face.kps
    return torch.cat([face.kps, face.landmarks.to(face.kps.dtype)])


def with_points(face: Face, points: torch.Tensor, box: Box) -> Face:
    """The face with the points of `face_points` replaced (and a new box)."""
    landmarks = None if face.landmarks is None else points[5:].to(face.landmarks.dtype).clone()
    return dataclasses.replace(face, box=box, kps=points[:5].to(face.kps.dtype).clone(), landmarks=landmarks)


def face_state(face: Face) -> dict[str, Any]:
    """A face as plain data (floats, strings, numpy arrays), for the tracker's saved state."""
    embedding = face.embedding
    return {
        "box": list(face.box),
        "score": face.score,
        "kps": face.kps.detach().cpu().numpy().copy(),
        "rotation": face.rotation,
        "landmarks": None if face.landmarks is None else face.landmarks.detach().cpu().numpy().copy(),
        "landmark_confidence": face.landmark_confidence,
        "landmark_model": face.landmark_model,
        "embedding": None if embedding is None else embedding.detach().cpu().numpy().copy(),
        "embedding_device": None if embedding is None else str(embedding.device),
    }


def face_from_state(state: dict[str, Any]) -> Face:
    embedding = None
    if state["embedding"] is not None:
        device = torch.device(state["embedding_device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")
        embedding = torch.from_numpy(np.array(state["embedding"])).to(device)
    landmarks = state["landmarks"]
    box = state["box"]
    return Face(
        box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        score=float(state["score"]),
        kps=torch.from_numpy(np.array(state["kps"])),
        rotation=int(state["rotation"]),
        landmarks=None if landmarks is None else torch.from_numpy(np.array(landmarks)),
        landmark_confidence=state["landmark_confidence"],
        landmark_model=state["landmark_model"],
        embedding=embedding,
    )
