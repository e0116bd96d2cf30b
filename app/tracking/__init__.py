"""Face tracking between detections: optical flow, a fallback box tracker, stabilisation, head pose.

The engine calls `FaceTracker.track(frame)` once per frame; everything else here is its parts, public
so they can be tested and reused on their own.
"""

from app.tracking.face_tracker import FaceTracker, TrackedFace, TrackEvents, TrackingSettings, TrackResult
from app.tracking.one_euro import OneEuroFilter
from app.tracking.pose import HeadPose, head_pose
from app.tracking.stabiliser import FaceStabiliser, StabiliserLevel, TrackedStabiliser

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
