"""Letterbox inverse, IoU, NMS and quarter-turn mapping on crafted inputs."""

from __future__ import annotations

import numpy as np
import torch

from app.faces.geometry import box_iou, letterbox, letterbox_many, nms, rotate_frame, unrotate_points


def test_letterbox_keeps_aspect_and_maps_back() -> None:
    frame = torch.zeros((300, 600, 3), dtype=torch.uint8)
    frame[100:110, 200:220] = 255
    canvas, box = letterbox(frame, (640, 640))
    assert canvas.shape == (3, 640, 640) and box.scale == 640 / 600
    assert canvas[:, 320:, :].abs().sum() == 0  # padding below the resized frame
    bright = torch.nonzero(canvas[0] > 128)
    top_left = np.array([bright[:, 1].min(), bright[:, 0].min()], dtype=np.float32)
    assert np.allclose(box.to_frame(top_left), [200.0, 100.0], atol=1.0)


def test_a_batch_is_letterboxed_as_its_frames_are_one_by_one() -> None:
    frames = torch.randint(0, 256, (3, 270, 480, 3), dtype=torch.uint8)
    batch, box = letterbox_many(frames, (640, 640))
    assert batch.shape == (3, 3, 640, 640) and box.scale == 640 / 480
    for frame, canvas in zip(frames, batch, strict=True):
        alone, same = letterbox(frame, (640, 640))
        assert same == box and torch.equal(alone, canvas)


def test_iou_and_nms_on_crafted_boxes() -> None:
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [50, 50, 60, 60]], dtype=torch.float32
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    iou = box_iou(boxes, boxes)
    assert torch.isclose(iou[0, 1], torch.tensor(90 / 110)) and torch.isclose(iou[0, 2], torch.tensor(0.5))
    assert nms(boxes, scores, 0.3).tolist() == [0, 3]
    assert nms(boxes, scores, 0.6).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.95).tolist() == [0, 1, 2, 3]  # a higher threshold keeps more


def test_points_found_in_turned_frames_map_back() -> None:
    frame = torch.zeros((5, 7, 1))
    frame[1, 4, 0] = 1  # x=4, y=1
    for turns in range(4):
        ys, xs = torch.nonzero(rotate_frame(frame, turns)[..., 0], as_tuple=True)
        found = torch.tensor([[float(xs[0]), float(ys[0])]])
        assert unrotate_points(found, turns, 5, 7).tolist() == [[4.0, 1.0]]


def test_nms_matches_greedy_suppression_by_torch_iou_on_many_boxes() -> None:
    generator = torch.Generator().manual_seed(3)
    corners = torch.rand((300, 2), generator=generator) * 500
    boxes = torch.cat([corners, corners + 20 + torch.rand((300, 2), generator=generator) * 80], dim=1)
    scores = torch.rand(300, generator=generator)
    order = scores.argsort(descending=True)
    iou = box_iou(boxes, boxes)
    expected: list[int] = []
    for index in order.tolist():  # greedy by definition: keep unless a kept better box overlaps it
        if all(float(iou[index, kept]) <= 0.4 for kept in expected):
            expected.append(index)
    kept = nms(boxes, scores, 0.4)
    assert kept.dtype == torch.long and kept.tolist() == expected
    assert 20 < len(expected) < 300  # the boxes overlap enough for suppression to matter
