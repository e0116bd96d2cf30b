"""Faces built by hand: a box and five keypoints where a real detector would put them."""

from __future__ import annotations

import math

import torch

from app.faces.alignment import template
from app.faces.types import Face


def face_at(cx: float, cy: float, size: float, roll: float = 0.0, score: float = 0.9) -> Face:
    """A face of `size` pixels centred at (cx, cy), its ArcFace keypoints turned so that the eye line
    rolls exactly `roll`° clockwise."""
    unit = template("arcface_112_v2", 1) - 0.5  # around the box centre, in box sides
    angle = math.radians(roll) - math.atan2(float(unit[1, 1] - unit[0, 1]), float(unit[1, 0] - unit[0, 0]))
    turn = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    kps = unit @ turn.T * size + torch.tensor([cx, cy])
    half = size / 2
    return Face(box=(cx - half, cy - half, cx + half, cy + half), score=score, kps=kps)
