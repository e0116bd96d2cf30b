"""Reading videos with PyAV: frames come out as upright uint8 [H, W, 3] RGB tensors (CPU unless a CUDA
device is asked for) with their timestamps, so the writer (app.media.video_writer, `VideoWriter`
re-exported here) can keep the source's timing and frame rate.

Rotation: phones store the picture as the sensor saw it and say in the container how to turn it for
display (a display matrix; older files a "rotate" tag). PyAV 18 exposes the matrix only on decoded
frames (`VideoFrame.rotation`), not on the stream, so opening a video decodes its first frame to learn
it; that frame is kept and handed out first.

Damage: a file that FFmpeg cannot open is refused when opened (an MP4 cut before its index). A decoder
error part-way raises MediaReadError naming the frame it failed near (frame threads report errors a few
packets late). A stream that simply ends before its header's frame count (a truncated download with the
index up front) is not an error: iteration stops, `frames_decoded` says how many frames came out, and
`ended_early` is true (and logged), so a caller can warn or refuse as it sees fit.

Hardware decoding (`hardware=True`): NVDEC through PyAV's CUDA hwaccel when this FFmpeg build has it
and a CUDA device opens, else software decoding with the reason logged and kept in
`hardware_fallback_reason`; `decoder` says which one runs ("nvdec" or "software"). NVDEC is seen
working only once a frame comes out of it: FFmpeg quietly decodes streams it declines (profiles,
formats) in software. With a CUDA `device`, frames are converted to RGB on the GPU (app.media.yuv):
NVDEC frames never leave it, software frames are uploaded as YUV (half of RGB's bytes). That GPU work
goes on the caller's current CUDA stream. NVDEC without a CUDA `device` downloads frames to the host,
where swscale converts them as it does software frames.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import av
import numpy as np
import torch
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from app.media.capabilities import NO_NVIDIA_GPU, nvidia_gpu_absent
from app.media.errors import MediaReadError
from app.media.video_writer import VIDEO_SUFFIXES, VideoWriter
from app.media.yuv import GpuFrameConverter

__all__ = ["VIDEO_SUFFIXES", "DecodedFrame", "VideoSource", "VideoWriter", "open_video"]

log = logging.getLogger(__name__)

_UNSPECIFIED_COLORSPACE = 2  # AVCOL_SPC_UNSPECIFIED
_BT709 = 1  # AVCOL_SPC_BT709, which is also swscale's SWS_CS_ITU709


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # 0-based position in the stream (after a seek: derived from the timestamp)
    pts: int | None  # in the stream's time_base; pass it to VideoWriter.write to keep the timing
    time_s: float
    image: torch.Tensor  # uint8 [H, W, 3] RGB, contiguous, rotated upright, on the source's device


def open_video(path: Path, hardware: bool = False, device: torch.device | str = "cpu") -> VideoSource:
    """Open a video for reading (use as a context manager). MediaReadError names the file.
    `hardware` asks for NVDEC (falling back to software); `device` is where frames are handed out."""
    return VideoSource(path, hardware=hardware, device=device)


class VideoSource:
    def __init__(self, path: Path, hardware: bool = False, device: torch.device | str = "cpu") -> None:
        self.path = path
        self.device = resolve_device(device)
        self.decoder = "software"  # or "nvdec", once a frame came out of it
        self.hardware_fallback_reason: str | None = None
        if not path.exists():
            raise MediaReadError(f"Video {path} does not exist")
        if not path.is_file():
            raise MediaReadError(f"Video {path} is not a file")
        self._container: InputContainer = self._open(hardware)
        self._gpu = GpuFrameConverter(self.device) if self.device.type == "cuda" else None
        try:
            self._stream = self._video_stream()
            context = self._stream.codec_context
            if hardware and not context.is_hwaccel and self.hardware_fallback_reason is None:
                self._fall_back(f"FFmpeg did not set up CUDA decoding for {context.name}")
            if not context.is_hwaccel:
                context.thread_type = "AUTO"  # frame and slice threads
                context.thread_count = 0  # one per core
            self._raw: Iterator[VideoFrame] = self._decode()
            self._pending: deque[VideoFrame] = deque()
            self._next_index = 0
            self.frames_decoded = 0  # handed out by frames(); compare with frame_count after a full pass
            self._exhausted = False
            first = next(self._raw, None)
            if first is None:
                raise MediaReadError(f"{path} has a video stream but not one frame of it could be decoded")
            self._pending.append(first)
            self.rotation = _rotation(first, self._stream)
            if context.is_hwaccel:
                if first.format.name == "cuda" or context.pix_fmt == "cuda":
                    self.decoder = "nvdec"
                else:
                    self._fall_back(
                        f"NVDEC declined this {context.name} stream ({first.format.name}, "
                        f"{first.width}x{first.height}); FFmpeg decodes it in software"
                    )
        except BaseException:
            self._container.close()
            raise

    def _open(self, hardware: bool) -> InputContainer:
        if not hardware:
            return self._open_plain()
        on_gpu = self.device.type == "cuda"
        cuda_index = self.device.index if on_gpu and self.device.index else 0
        problem = _nvdec_problem(cuda_index)
        if problem is None:
            try:
                return self._open_nvdec(cuda_index) if on_gpu else self._open_nvdec_to_host(cuda_index)
            except av.error.FFmpegError as exc:
                problem = f"opening it for CUDA decoding failed ({type(exc).__name__}: {exc})"
        container = self._open_plain()  # an unreadable file is refused here, not logged as a fallback
        self._fall_back(problem)
        return container

    def _open_nvdec(self, cuda_index: int) -> InputContainer:
        """NVDEC with frames kept on the GPU (read through DLPack), in torch's own CUDA context.

        FFmpeg's usual way, retaining the primary context (primary_ctx=1), fails once torch has
        activated that context with other scheduling flags ("Primary context already active with
        incompatible flags", ENOTSUP); so torch's context is made current on this thread (any runtime
        call that needs one does it) and FFmpeg adopts it (current_ctx=1). One context means the
        decoder's frame pointers are valid for torch."""
        options: dict[str, object] = {"primary_ctx": "0", "current_ctx": "1"}
        with torch.cuda.device(self.device):
            torch.cuda.current_stream(self.device).query()  # makes torch's context current here
            hwaccel = HWAccel(
                "cuda",
                device=str(cuda_index),
                allow_software_fallback=True,
                is_hw_owned=True,
                options=options,
            )
            return av.open(str(self.path), "r", hwaccel=hwaccel)

    def _open_nvdec_to_host(self, cuda_index: int) -> InputContainer:
        """NVDEC in a CUDA context of FFmpeg's own; PyAV downloads each frame (NV12) to the host."""
        hwaccel = HWAccel("cuda", device=str(cuda_index), allow_software_fallback=True)
        return av.open(str(self.path), "r", hwaccel=hwaccel)

    def _open_plain(self) -> InputContainer:
        try:
            return av.open(str(self.path), "r")
        except av.error.FFmpegError as exc:
            raise MediaReadError(f"{self.path} is not a video PyAV can read: {exc}") from exc

    def _fall_back(self, reason: str) -> None:
        self.decoder = "software"
        self.hardware_fallback_reason = reason
        log.warning("%s: hardware decoding unavailable, decoding in software: %s", self.path, reason)

    def _video_stream(self) -> VideoStream:
        for stream in self._container.streams.video:
            if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is not the video
                return stream
        kinds = ", ".join(s.type for s in self._container.streams) or "no streams at all"
        raise MediaReadError(f"{self.path} has no video stream ({kinds})")

    # ---- facts -------------------------------------------------------------------------------------

    @property
    def width(self) -> int:
        """Width of the frames handed out, that is after rotation."""
        size = (self._stream.codec_context.width, self._stream.codec_context.height)
        return size[1] if self.rotation in (90, 270) else size[0]

    @property
    def height(self) -> int:
        size = (self._stream.codec_context.width, self._stream.codec_context.height)
        return size[0] if self.rotation in (90, 270) else size[1]

    @property
    def fps(self) -> Fraction:
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        return Fraction(rate) if rate else Fraction(25)

    @property
    def time_base(self) -> Fraction:
        return self._stream.time_base or Fraction(1, round(self.fps * 1000))

    @property
    def codec(self) -> str:
        return self._stream.codec_context.name

    @property
    def has_audio(self) -> bool:
        return len(self._container.streams.audio) > 0

    @property
    def duration_s(self) -> float:
        """From the stream, else its tag (Matroska), else the container, else frames ÷ fps."""
        stream = self._stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        tags = {k.lower(): v for k, v in stream.metadata.items()}
        if seconds := _clock_to_seconds(tags.get("duration", "")):
            return seconds
        if self._container.duration:
            return self._container.duration / av.time_base
        return float(stream.frames / self.fps) if stream.frames else 0.0

    @property
    def frame_count_estimated(self) -> bool:
        """True when the container does not state the count (Matroska) and it is duration × fps."""
        return not self._stream.frames

    @property
    def frame_count(self) -> int:
        if self._stream.frames:
            return int(self._stream.frames)
        return round(self.duration_s * self.fps)

    @property
    def position(self) -> int:
        """Index of the frame `frames()` hands out next."""
        return self._next_index

    @property
    def ended_early(self) -> bool:
        """The stream ran out before the frame count its header promised (a truncated file)."""
        slack = 1 if self.frame_count_estimated else 0
        return self._exhausted and self._next_index < self.frame_count - slack

    # ---- frames ------------------------------------------------------------------------------------

    def frames(self) -> Iterator[DecodedFrame]:
        """Frames from the current position on (the start, or where a seek or earlier loop left off)."""
        while True:
            frame = self._pending.popleft() if self._pending else next(self._raw, None)
            if frame is None:
                self._finish()
                return
            decoded = self._to_decoded(frame, self._next_index)
            self._next_index += 1
            self.frames_decoded += 1
            yield decoded

    def seek(self, frame_index: int) -> None:
        """Position so that `frames()` starts at `frame_index` (the keyframe before it is decoded and the
        frames up to it dropped). Index and time are related through fps, so with variable frame rate
        the position is approximate."""
        if frame_index < 0:
            raise ValueError(f"seek: frame index must be ≥ 0, got {frame_index}")
        start = self._stream.start_time or 0
        target = start + round(Fraction(frame_index) / self.fps / self.time_base)
        half_frame = Fraction(1) / self.fps / 2 / self.time_base
        try:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise MediaReadError(f"{self.path}: cannot seek to frame {frame_index}: {exc}") from exc
        self._pending.clear()
        self._raw = self._decode()
        self._exhausted = False
        for frame in self._raw:
            if frame.pts is None or frame.pts >= target - half_frame:
                self._pending.append(frame)
                break
        self._next_index = frame_index

    def seek_after_pts(self, pts: int) -> None:
        """Position so that `frames()` starts at the first frame whose timestamp is after `pts` (in
        `time_base`): exact on variable-frame-rate video too, where seeking by index is not. Resumed
        exports use it to continue right after the last frame they kept. Frame indices from here on
        are estimated from the timestamp."""
        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise MediaReadError(f"{self.path}: cannot seek to timestamp {pts}: {exc}") from exc
        self._pending.clear()
        self._raw = self._decode()
        self._exhausted = False
        for frame in self._raw:
            if frame.pts is not None and frame.pts > pts:
                self._pending.append(frame)
                break
        start = self._stream.start_time or 0
        self._next_index = round((pts - start) * self.time_base * self.fps) + 1

    def _decode(self) -> Iterator[VideoFrame]:
        packet = None
        try:
            for packet in self._container.demux(self._stream):
                yield from self._stream.decode(packet)
        except av.error.FFmpegError as exc:
            at, total = self._frame_of(packet), self.frame_count
            raise MediaReadError(f"{self.path}: decoding failed near frame {at} (of {total}): {exc}") from exc

    def _frame_of(self, packet: Packet[VideoStream] | None) -> int:
        """Roughly where decoding failed. Frame threads report a bad packet's error a few packets late
        (up to one per thread), so this is the packet being sent then, from its timestamp."""
        if packet is not None and packet.pts is not None:
            start = self._stream.start_time or 0
            return round((packet.pts - start) * self.time_base * self.fps)
        return self._next_index + len(self._pending)

    def _finish(self) -> None:
        if self._exhausted:
            return
        self._exhausted = True
        if self.ended_early:
            log.warning(
                "%s ended after %d of %d frames (truncated?)", self.path, self._next_index, self.frame_count
            )

    def _to_decoded(self, frame: VideoFrame, index: int) -> DecodedFrame:
        rgb = self._gpu.convert(frame) if self._gpu is not None else None
        if rgb is None:
            rgb = swscale_rgb(frame).to(self.device)
        if self.rotation:
            rgb = torch.rot90(rgb, k=-(self.rotation // 90), dims=(0, 1))  # clockwise
        time_s = float(frame.pts * self.time_base) if frame.pts is not None else float(index / self.fps)
        return DecodedFrame(index, frame.pts, time_s, rgb.contiguous())

    # ---- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._gpu is not None:
            self._gpu.release()  # conversions still reading NVDEC frames finish first
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def swscale_rgb(frame: VideoFrame) -> torch.Tensor:
    """RGB on the CPU through swscale, with the colour rules players follow."""
    if frame.format.name == "nv12":  # NVDEC's frames: swscale interpolates NV12 chroma, not yuv420p's
        frame = frame.reformat(format="yuv420p")
    options: dict[str, Any] = {"format": "rgb24"}
    if frame.colorspace == _UNSPECIFIED_COLORSPACE and frame.height >= 720:
        options["src_colorspace"] = _BT709  # what players assume for untagged HD
    if frame.color_range:
        options["src_color_range"] = frame.color_range  # full-range yuv420p exists (phones, x264)
    return torch.from_numpy(np.ascontiguousarray(frame.to_ndarray(**options)))


def resolve_device(device: torch.device | str) -> torch.device:
    """A CUDA device with its index (the current one when none is given), checked to exist."""
    resolved = torch.device(device)
    if resolved.type != "cuda":
        return resolved
    if not torch.cuda.is_available():
        raise ValueError(f"Frames cannot go to {resolved}: CUDA is not available")
    index = cast("int | None", resolved.index)  # typed as int, but None for plain "cuda"
    return torch.device("cuda", torch.cuda.current_device() if index is None else index)


@functools.cache
def _nvdec_problem(cuda_index: int) -> str | None:
    """Why NVDEC cannot be used on this CUDA device, or None; found once by creating a CUDA device."""
    if "cuda" not in hwdevices_available():
        return "this FFmpeg build has no CUDA hardware device type"
    if nvidia_gpu_absent():
        return NO_NVIDIA_GPU
    try:
        hwaccel = HWAccel("cuda", device=str(cuda_index), allow_software_fallback=False)
        av.CodecContext.create("h264", "r", hwaccel=hwaccel)
    except av.error.FFmpegError as exc:
        return f"no CUDA device {cuda_index} for decoding ({type(exc).__name__}: {exc})"
    return None


def _rotation(frame: VideoFrame, stream: VideoStream) -> int:
    """Clockwise degrees (0, 90, 180, 270) the stored picture is turned for display.

    PyAV's `VideoFrame.rotation` is the display matrix's counter-clockwise angle; the legacy "rotate"
    tag (still found in Matroska files) is clockwise already.
    """
    degrees = -float(frame.rotation)
    if not degrees:
        tags = {k.lower(): v for k, v in stream.metadata.items()}
        try:
            degrees = float(tags.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    quarter = round(degrees / 90) % 4
    if abs(degrees - round(degrees / 90) * 90) > 1:
        log.warning("Rotation of %.1f° is not a quarter turn; using %d°", degrees, quarter * 90)
    return quarter * 90


def _clock_to_seconds(text: str) -> float:
    """ "00:01:02.500000000" → 62.5; 0.0 when it is not such a clock."""
    try:
        hours, minutes, seconds = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0
