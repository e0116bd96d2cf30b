"""YUV → RGB in torch, on any device, so that a GPU can take decoded frames as they come out of the
decoder: yuv420p/nv12 is 1.5 bytes a pixel to upload instead of rgb24's 3, and NVDEC frames never leave
the GPU at all.

The colour rules are swscale's as `VideoSource` uses it (app.media.video): the frame's matrix tag
(BT.601, BT.709, BT.2020), untagged frames 720 lines or taller read as BT.709 (what players assume for
HD), and full ("JPEG") range when the frame says so or its format is a yuvj one. Chroma is upsampled
by repetition and results are truncated, as swscale's unscaled yuv420p → rgb24 path does, so that the
GPU path and the CPU path differ by a level or two at most (tests/media/test_nvdec.py measures it).
NV12 is treated as the yuv420p it losslessly is: swscale itself interpolates NV12's chroma instead,
which would make NVDEC frames differ from software-decoded ones at sharp colour edges.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from av.video.frame import VideoFrame
from torch.utils.dlpack import from_dlpack

from app.core.graphed import Graphed

__all__ = ["GpuFrameConverter", "YuvColour", "colour_of", "nv12_to_rgb", "yuv_to_rgb"]

log = logging.getLogger(__name__)

Matrix = Literal["bt601", "bt709", "bt2020"]
KR_KB: dict[Matrix, tuple[float, float]] = {  # luma weights of red and blue per matrix
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}
# AVColorSpace values (libavutil/pixfmt.h) and what they mean here.
_AVCOL_BT709, _AVCOL_UNSPECIFIED, _AVCOL_BT470BG, _AVCOL_SMPTE170M = 1, 2, 5, 6
_AVCOL_BT2020_NCL, _AVCOL_BT2020_CL = 9, 10
_AVCOL_RANGE_JPEG = 2
# Software pixel formats converted here: 8-bit planar YUV and NV12. Others go through swscale.
_PLANAR = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})
SUPPORTED_FORMATS = _PLANAR | {"nv12"}


@dataclass(frozen=True)
class YuvColour:
    matrix: Matrix
    full_range: bool


def colour_of(frame: VideoFrame) -> YuvColour | None:
    """The matrix and range swscale would use for `frame` in VideoSource; None for tags handled only
    by swscale (FCC, SMPTE 240M, …)."""
    space = frame.colorspace
    matrix: Matrix
    if space == _AVCOL_BT709 or (space == _AVCOL_UNSPECIFIED and frame.height >= 720):
        matrix = "bt709"
    elif space in (_AVCOL_UNSPECIFIED, _AVCOL_BT470BG, _AVCOL_SMPTE170M):
        matrix = "bt601"
    elif space in (_AVCOL_BT2020_NCL, _AVCOL_BT2020_CL):
        matrix = "bt2020"
    else:
        return None
    full = frame.color_range == _AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
    return YuvColour(matrix, full)


def _upsample(plane: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour (repeat) chroma upsampling to [height, width]; also right for odd sizes,
    where the last chroma sample covers one pixel."""
    rows, cols = plane.shape
    if (rows, cols) == (height, width):
        return plane
    fy, fx = -(-height // rows), -(-width // cols)
    return plane.repeat_interleave(fy, dim=0).repeat_interleave(fx, dim=1)[:height, :width]


def yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, colour: YuvColour) -> torch.Tensor:
    """Planar Y, U, V (uint8, or uint16 holding MSB-aligned samples such as P010) → uint8 [H, W, 3] RGB
    on the planes' device. Chroma planes may be subsampled (4:2:0, 4:2:2) or full size (4:4:4)."""
    height, width = y.shape
    scale = 1.0 / 256 if y.dtype == torch.uint16 else 1.0  # 16-bit containers → 8-bit levels
    luma = y.float() * scale
    cb = _upsample(u, height, width).float() * scale - 128.0
    cr = _upsample(v, height, width).float() * scale - 128.0
    if not colour.full_range:
        luma = (luma - 16.0) * (255.0 / 219.0)
        cb = cb * (255.0 / 224.0)
        cr = cr * (255.0 / 224.0)
    kr, kb = KR_KB[colour.matrix]
    kg = 1.0 - kr - kb
    red = luma + (2.0 * (1.0 - kr)) * cr
    blue = luma + (2.0 * (1.0 - kb)) * cb
    green = luma - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    rgb = torch.stack((red, green, blue), dim=-1)
    return rgb.floor_().clamp_(0.0, 255.0).to(torch.uint8)


def nv12_to_rgb(y: torch.Tensor, uv: torch.Tensor, colour: YuvColour) -> torch.Tensor:
    """NV12 (or P010/P016): Y [H, W] and interleaved UV [H/2, W/2, 2] → uint8 [H, W, 3] RGB."""
    return yuv_to_rgb(y, uv[..., 0], uv[..., 1], colour)


def _planar_to_rgb(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, matrix: Matrix, full: bool
) -> torch.Tensor:
    return yuv_to_rgb(y, u, v, YuvColour(matrix, full))


def _nv12_to_rgb(y: torch.Tensor, uv: torch.Tensor, *, matrix: Matrix, full: bool) -> torch.Tensor:
    return nv12_to_rgb(y, uv, YuvColour(matrix, full))


def host_planes(frame: VideoFrame) -> list[np.ndarray]:
    """A software frame's planes as uint8 arrays without their row padding (views, no copy)."""
    planes = []
    for index, plane in enumerate(frame.planes):
        row_bytes = plane.width * (2 if frame.format.name == "nv12" and index == 1 else 1)
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        planes.append(rows[: plane.height, :row_bytes])
    return planes


class GpuFrameConverter:
    """Decoded frames → uint8 RGB tensors on one CUDA device, the work enqueued on the caller's current
    stream (so the caller decides which stream; FrameQueue uses its own and hands an event over).

    Software frames: the planes go through one pinned host buffer and one non-blocking upload (the
    caching host allocator keeps the buffer until the copy is done). NVDEC frames (hw-owned CUDA
    frames) are read in place through DLPack. FFmpeg writes them on the legacy default stream, so the
    current stream waits on that first; and since a frame's memory returns to FFmpeg's pool as soon as
    the last tensor viewing it dies, those views are kept until the conversion's event has passed.
    """

    def __init__(self, device: torch.device) -> None:
        if device.type != "cuda":
            raise ValueError(f"GpuFrameConverter needs a CUDA device, got {device}")
        self.device = device
        self._in_use: deque[tuple[torch.cuda.Event, tuple[torch.Tensor, ...]]] = deque()
        # The conversion is about thirty elementwise kernels a frame: replayed as one graph per size.
        self._planar = Graphed(_planar_to_rgb, "yuv → rgb")
        self._nv12 = Graphed(_nv12_to_rgb, "nv12 → rgb")

    def convert(self, frame: VideoFrame) -> torch.Tensor | None:
        """RGB on the device, or None when this frame's format or colour tags are swscale's to handle."""
        colour = colour_of(frame)
        if colour is None:
            return None
        if frame.format.name == "cuda":
            return self._from_nvdec(frame, colour)
        if frame.format.name not in SUPPORTED_FORMATS:
            return None
        return self._upload(frame, colour)

    def _upload(self, frame: VideoFrame, colour: YuvColour) -> torch.Tensor:
        planes = host_planes(frame)
        sizes = [p.size for p in planes]
        pinned = torch.empty(sum(sizes), dtype=torch.uint8, pin_memory=True)
        offset = 0
        for plane, size in zip(planes, sizes, strict=True):
            pinned[offset : offset + size].view(plane.shape).copy_(torch.from_numpy(plane))
            offset += size
        flat = pinned.to(self.device, non_blocking=True)
        views, offset = [], 0
        for plane, size in zip(planes, sizes, strict=True):
            views.append(flat[offset : offset + size].view(plane.shape))
            offset += size
        tags = {"matrix": colour.matrix, "full": colour.full_range}
        if frame.format.name == "nv12":
            y, uv = views
            return self._nv12(y, uv.view(uv.shape[0], -1, 2), **tags)
        return self._planar(views[0], views[1], views[2], **tags)

    def _from_nvdec(self, frame: VideoFrame, colour: YuvColour) -> torch.Tensor | None:
        try:
            # PyAV refuses a stream argument for CUDA frames, so the capsule is taken without one
            # (torch.from_dlpack would pass the current stream) and ordering is done below.
            y, uv = (from_dlpack(plane.__dlpack__()) for plane in frame.planes)
        except (NotImplementedError, ValueError) as exc:
            log.debug("NVDEC frame not readable through DLPack (%s); swscale converts it", exc)
            return None
        stream = torch.cuda.current_stream(self.device)
        stream.wait_stream(torch.cuda.default_stream(self.device))
        rgb = self._nv12(y, uv, matrix=colour.matrix, full=colour.full_range)
        self._hold(stream, (y, uv))
        return rgb

    def _hold(self, stream: torch.cuda.Stream, tensors: tuple[torch.Tensor, ...]) -> None:
        done = torch.cuda.Event()  # type: ignore[no-untyped-call]
        done.record(stream)
        self._in_use.append((done, tensors))
        while self._in_use:
            oldest = self._in_use[0][0]
            if len(self._in_use) <= 8 and not oldest.query():  # type: ignore[no-untyped-call]
                break
            oldest.synchronize()
            self._in_use.popleft()

    def release(self) -> None:
        """Wait for pending conversions and let FFmpeg have its frames back (before closing a decoder)."""
        while self._in_use:
            event, _ = self._in_use.popleft()
            event.synchronize()
