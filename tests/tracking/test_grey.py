"""The grey image the trackers use: OpenCV's luma, shrunk on the frame's device."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.tracking.grey import grey_on_device, grey_size, to_grey


def test_small_frames_keep_their_size_and_match_opencv() -> None:
    frame = torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    grey = to_grey(frame)
    assert grey.dtype == np.uint8 and grey.shape == (48, 64)
    reference = cv2.cvtColor(frame.numpy(), cv2.COLOR_RGB2GRAY)
    assert np.abs(grey.astype(int) - reference).max() <= 1


def test_the_device_path_agrees_with_opencv() -> None:
    frame = torch.randint(
        0, 256, (360, 1280, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    )
    for size in ((1280, 360), (640, 180)):
        on_device = grey_on_device(frame, size).numpy()
        assert on_device.shape == (size[1], size[0])
        assert np.abs(on_device.astype(int) - to_grey(frame, size[0]).astype(int)).max() <= 1


def test_wide_frames_are_shrunk_by_area() -> None:
    frame = torch.zeros((1080, 1920, 3), dtype=torch.uint8)
    frame[:, 960:] = 255
    grey = to_grey(frame)
    assert grey.shape == (360, 640) and grey_size(1920, 1080) == (640, 360)
    assert grey[:, :319].max() == 0 and grey[:, 321:].min() == 255


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_frame_gives_the_same_host_image() -> None:
    frame = torch.randint(
        0, 256, (720, 1280, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    assert np.abs(to_grey(frame.cuda()).astype(int) - to_grey(frame).astype(int)).max() <= 1
