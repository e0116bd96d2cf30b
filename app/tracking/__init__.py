"""Face tracking between detections: optical flow, a fallback box tracker, stabilisation, head pose.

The engine calls `FaceTracker.track(frame)` once per frame; everything else here is its parts, public
so they can be tested and reused on their own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.tracking.face_tracker import FaceTracker, TrackedFace, TrackEvents, TrackingSettings, TrackResult
    from app.tracking.one_euro import OneEuroFilter
    from app.tracking.pose import HeadPose, head_pose
    from app.tracking.stabiliser import FaceStabiliser, StabiliserLevel, TrackedStabiliser

# Each name and the module it comes from, imported on first use (PEP 562): a light part of the package
# (app.tracking.choices, which the CLI's parser reads) must not load OpenCV and torch through here.
_HOMES = {
    "FaceStabiliser": "stabiliser",
    "FaceTracker": "face_tracker",
    "HeadPose": "pose",
    "OneEuroFilter": "one_euro",
    "StabiliserLevel": "choices",
    "TrackEvents": "face_tracker",
    "TrackResult": "face_tracker",
    "TrackedFace": "face_tracker",
    "TrackedStabiliser": "stabiliser",
    "TrackingSettings": "face_tracker",
    "head_pose": "pose",
}

__all__ = [
    "FaceStabiliser",
    "FaceTracker",
    "HeadPose",
    "OneEuroFilter",
    "StabiliserLevel",
    "TrackEvents",
    "TrackResult",
    "TrackedFace",
    "TrackedStabiliser",
    "TrackingSettings",
    "head_pose",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
