"""The small grey image the trackers work on, made on the frame's own device.

Why: optical flow and CSRT run on the CPU (OpenCV), but a frame may be a CUDA tensor. Converting to grey
and shrinking on the device first means only a small uint8 image (≤ 640 px wide by default: ~230 KB for
16:9) crosses to the host per frame, instead of a full-size RGB frame. Tracking at that size loses
little: points are moved in the small image and scaled back into frame pixels. A frame already on the
CPU goes through OpenCV instead (cvtColor, then an area resize), which is many times faster there than
torch's element-wise ops. The two paths agree to within one grey level; a run stays on one of them.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as functional

from app.faces.types import VisionFrame, check_frame

log = logging.getLogger(__name__)

MAX_WIDTH = 640
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as OpenCV's RGB2GRAY


def grey_size(width: int, height: int, max_width: int = MAX_WIDTH) -> tuple[int, int]:
    """The (width, height) of the grey image for a frame: the frame's own when narrow enough."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def to_grey(frame: VisionFrame, max_width: int = MAX_WIDTH) -> npt.NDArray[np.uint8]:
    """A grey uint8 [h, w] host image of an RGB uint8 [H, W, 3] frame, shrunk (area average) to at most
    `max_width` pixels wide; the only device-to-host copy is of that small image."""
    check_frame(frame)
    height, width = int(frame.shape[0]), int(frame.shape[1])
    out_w, out_h = grey_size(width, height, max_width)
    if frame.device.type == "cpu":
        grey_host = cv2.cvtColor(np.ascontiguousarray(frame.numpy()), cv2.COLOR_RGB2GRAY)
        if (out_w, out_h) != (width, height):
            grey_host = cv2.resize(grey_host, (out_w, out_h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(grey_host, dtype=np.uint8)
    return np.ascontiguousarray(grey_on_device(frame, (out_w, out_h)).cpu().numpy())


def grey_on_device(frame: VisionFrame, size: tuple[int, int]) -> torch.Tensor:
    """The grey uint8 [h, w] of an RGB frame at `size` (width, height), computed where the frame is."""
    # Element-wise rather than a matmul, which may run in TF32 on the GPU and round differently.
    channels = frame.to(torch.float32).unbind(dim=2)
    grey = channels[0] * _LUMA[0] + channels[1] * _LUMA[1] + channels[2] * _LUMA[2]  # [H, W]
    if size != (int(frame.shape[1]), int(frame.shape[0])):
        grey = functional.interpolate(grey[None, None], size=(size[1], size[0]), mode="area")[0, 0]
    return grey.round_().clamp_(0, 255).to(torch.uint8)
