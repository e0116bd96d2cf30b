"""Head pose: known rotations of the model come back; a frontal face reads 0; the documented signs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.tracking.pose import MODEL_5, MODEL_68, camera_matrix, head_pose, rotation_from_angles
from tests.support.faces import face_at

SIZE = (640, 480)


def projected(model: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model seen by the test camera 60 cm away at the frame centre, in the given pose."""
    rvec, _ = cv2.Rodrigues(rotation_from_angles(yaw, pitch, roll))
    points, _ = cv2.projectPoints(model, rvec, np.array([0.0, 0.0, 600.0]), camera_matrix(*SIZE), None)
    return points.reshape(-1, 2)


@pytest.mark.parametrize(
    "angles",
    [(0, 0, 0), (25, 0, 0), (-25, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 12), (-30, 10, 5), (20, -12, -8)],
)
def test_a_turned_model_gives_its_angles_back(angles: tuple[float, float, float]) -> None:
    pose = head_pose(projected(MODEL_5, *angles), SIZE)
    assert pose is not None
    assert pose.as_tuple() == pytest.approx(angles, abs=0.5)


def test_68_landmarks_use_their_own_model() -> None:
    landmarks = np.zeros((68, 2))
    indices = list(MODEL_68)
    landmarks[indices] = projected(np.array([MODEL_68[i] for i in indices]), 20, -10, 4)
    landmarks[[37, 38, 40, 41]] = (landmarks[36] + landmarks[39]) / 2  # eye centres for the first guess
    landmarks[[43, 44, 46, 47]] = (landmarks[42] + landmarks[45]) / 2
    pose = head_pose(landmarks, SIZE)
    assert pose is not None and pose.as_tuple() == pytest.approx((20, -10, 4), abs=0.5)


def test_a_frontal_face_reads_zero_anywhere_and_the_nose_sets_the_signs() -> None:
    for cx, cy in ((320, 240), (120, 100), (560, 400)):
        pose = head_pose(face_at(cx, cy, 120).kps, SIZE)
        assert pose is not None
        assert abs(pose.yaw) < 3 and abs(pose.pitch) < 3 and abs(pose.roll) < 1
    kps = face_at(320, 240, 120).kps
    right, left, up = kps.clone(), kps.clone(), kps.clone()
    right[2, 0] += 8  # the nose moves to the image's right: the face turns right, yaw > 0
    left[2, 0] -= 8
    up[2, 1] -= 6  # the nose moves up towards the eyes: chin up, pitch > 0
    turned_right, turned_left, looking_up = (head_pose(k, SIZE) for k in (right, left, up))
    assert turned_right is not None and turned_right.yaw > 10
    assert turned_left is not None and turned_left.yaw < -10
    assert looking_up is not None and looking_up.pitch > 5 and abs(looking_up.yaw) < 3
    rolled = head_pose(face_at(320, 240, 120, roll=15).kps, SIZE)
    assert rolled is not None and rolled.roll == pytest.approx(15, abs=0.5)  # clockwise, like Face.roll


def test_other_point_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[5, 2\]"):
        head_pose(np.zeros((106, 2)), SIZE)
