"""Writing videos with PyAV: H.264 or HEVC in MP4, MOV or Matroska, with the source's timing, its audio,
and the synthetic-media label, renamed into place only after a clean finish.

- Encoder: NVENC when asked for and a real encoder session opens on this machine (app.media.capabilities
  tests by opening one; FFmpeg lists NVENC on machines that have none), else libx264 / libx265.
  `encoder_name` says which ran and `fallback_reason` why it is not the hardware one.
- Timing: `write(image, pts)` keeps the source's timestamps in the source's time base, so variable
  frame rates, odd rates (30000/1001) and gaps survive; without pts, frames are spaced 1/fps apart.
- Pixels: RGB is converted to yuv420p with BT.709 coefficients and tagged BT.709, limited range, which
  is what players assume for video; yuv420p needs even sides, so an odd side is padded by repeating the
  last row or column (logged).
- Label: the JSON goes in the container's "comment" and "description" tags. FFmpeg writes "comment" in
  MP4 (©cmt), MOV and Matroska (COMMENT); "description" only in MP4 and Matroska.
- Atomic: encoding goes to a `.partial` file beside the target; `close()` renames it. An exception in
  the with-block removes the partial, and a killed process leaves only the partial, never the final name.
  `fsync=True` also flushes the partial to disk before the rename (resumable exports count on it).
- Reproducible (`reproducible=True`, for resumable exports, app.media.segments): the same frames give
  the same bytes. x264 and x265 are deterministic only for a fixed thread layout (x264 threads; x265
  threads and thread-pool size), so those are pinned to `threads`; and x264's MB-tree is turned off:
  with MB-tree and B-frames, x264 (core 165) reads uninitialised memory on small frames (320x240 in
  our tests), so its output changed from one run to the next and with MALLOC_PERTURB_.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import numpy as np
import torch
from av.container import OutputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange, Colorspace
from av.video.stream import VideoStream

from app.media.atomic import AtomicFile
from app.media.audio import AudioTrack
from app.media.capabilities import Capability, probe_encoder
from app.media.durable import fsync_file, fsync_folder
from app.media.errors import MediaWriteError
from app.media.i420 import I420
from app.media.labels import VIDEO_LABEL_TAGS, SyntheticLabel

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
VideoCodec = Literal["h264", "hevc"]
ENCODERS: dict[str, tuple[str, str]] = {"h264": ("h264_nvenc", "libx264"), "hevc": ("hevc_nvenc", "libx265")}
_BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709 / AVCOL_SPC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


@functools.cache
def _probe(name: str) -> Capability:
    return probe_encoder(name)  # opening NVENC takes a while; the answer does not change in a process


def choose_encoder(codec: VideoCodec, hardware: bool) -> tuple[str, str | None]:
    """(encoder name, why not hardware); the reason is None when hardware runs or was not wanted."""
    if codec not in ENCODERS:
        raise MediaWriteError(f"Unsupported video codec '{codec}' (supported: {', '.join(ENCODERS)})")
    nvenc, software = ENCODERS[codec]
    if not hardware:
        return software, None
    capability = _probe(nvenc)
    if capability.available:
        return nvenc, None
    return software, f"{nvenc} {capability.reason}"


def check_settings(
    path: Path, width: int, height: int, fps: Fraction, time_base: Fraction | None, crf: int
) -> None:
    """MediaWriteError naming `path` for settings no encoder takes (shared with the segmented writer,
    which must refuse them before it creates its work folder)."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise MediaWriteError(
            f"Cannot write {path}: unsupported video suffix '{path.suffix}' "
            f"(supported: {', '.join(VIDEO_SUFFIXES)})"
        )
    if width <= 0 or height <= 0:
        raise MediaWriteError(f"Cannot write {path}: frame size {width}x{height} is empty")
    if fps <= 0 or (time_base is not None and time_base <= 0):
        raise MediaWriteError(f"Cannot write {path}: fps {fps} and time base {time_base} must be > 0")
    if not 0 <= crf <= 51:
        raise MediaWriteError(f"Cannot write {path}: crf must be 0..51, got {crf}")


def check_frame(path: Path, image: torch.Tensor | I420, width: int, height: int) -> None:
    """MediaWriteError naming `path` for a frame the encoder of a width x height video cannot take: uint8
    [H, W, 3] RGB, or I420 at the encoded (even) size. Cheap, so a caller that encodes on another thread
    can refuse a bad frame at once."""
    if isinstance(image, I420):
        encoded = (width + width % 2, height + height % 2)
        if (image.width, image.height) != encoded:
            raise MediaWriteError(
                f"Cannot write {path}: an I420 frame of {image.width}x{image.height}, "
                f"expected {encoded[0]}x{encoded[1]}"
            )
        return
    expected = (height, width, 3)
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or tuple(image.shape) != expected:
        got = type(image).__name__
        if isinstance(image, torch.Tensor):
            got = f"{list(image.shape)} {image.dtype}"
        raise MediaWriteError(f"Cannot write {path}: expected a uint8 {list(expected)} frame, got {got}")


class VideoWriter:
    """Encode uint8 [H, W, 3] RGB frames into `path`; use as a context manager (or call `close()`)."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        codec: VideoCodec = "h264",
        crf: int = 18,
        audio_from: Path | None = None,
        label: SyntheticLabel | None = None,
        hardware: bool = True,
        preset: str | None = None,  # x264/x265 preset (None: "medium"); NVENC always runs its "p5"
        *,
        threads: int | None = None,  # encoder threads; None: the encoder's choice (by core count)
        reproducible: bool = False,  # software encoders: same frames, same bytes (see above)
        fsync: bool = False,  # flush the file to disk before it is renamed into place
    ) -> None:
        check_settings(path, width, height, fps, time_base, crf)
        self.path, self.width, self.height = path, width, height
        self.fps = Fraction(fps)
        self.time_base = Fraction(time_base) if time_base is not None else 1 / self.fps
        self.encoded_size = (width + width % 2, height + height % 2)
        if self.encoded_size != (width, height):
            log.info(
                "%s: %dx%d padded to %dx%d (yuv420p needs even sides)",
                path,
                width,
                height,
                *self.encoded_size,
            )
        if reproducible and not threads:
            raise MediaWriteError(f"Cannot write {path}: reproducible encoding needs a fixed thread count")
        self.encoder_name, self.fallback_reason = choose_encoder(codec, hardware)
        self.threads, self.reproducible, self._fsync = threads, reproducible, fsync
        self.frames_written = 0
        self._last_pts: int | None = None
        self._latest_s = 0.0
        self._closed = False
        self._target = AtomicFile(path)
        try:
            self._open(codec, crf, preset, audio_from, label)
        except BaseException:
            self._target.discard()
            raise

    # ---- setup -------------------------------------------------------------------------------------

    def _open(
        self,
        codec: VideoCodec,
        crf: int,
        preset: str | None,
        audio_from: Path | None,
        label: SyntheticLabel | None,
    ) -> None:
        try:
            self._start(crf, preset, audio_from, label)
            return
        except av.error.FFmpegError as exc:
            if not self.encoder_name.endswith("_nvenc"):
                raise MediaWriteError(f"Cannot write {self.path}: encoding could not start: {exc}") from exc
            software = ENCODERS[codec][1]
            log.warning("%s failed to start (%s); encoding with %s", self.encoder_name, exc, software)
            self.fallback_reason = f"{self.encoder_name} failed to start: {exc}"
            self.encoder_name = software
        try:
            self._start(crf, preset, audio_from, label)
        except av.error.FFmpegError as exc:
            raise MediaWriteError(f"Cannot write {self.path}: encoding could not start: {exc}") from exc

    def _start(
        self, crf: int, preset: str | None, audio_from: Path | None, label: SyntheticLabel | None
    ) -> None:
        self.audio: AudioTrack | None = None
        movflags = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".mov") else {}
        try:
            self._container: OutputContainer = av.open(
                str(self._target.partial), "w", container_options=movflags
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaWriteError(f"Cannot write {self.path}: {exc}") from exc
        try:
            if label is not None:
                for tag in VIDEO_LABEL_TAGS:
                    self._container.metadata[tag] = label.to_json()
            self._video = self._add_video_stream(crf, preset)
            if audio_from is not None:
                self.audio = AudioTrack(audio_from, self._container)
            self._container.start_encoding()  # opens the encoder now: failures surface here, not mid-export
        except BaseException:
            self._abandon()
            raise

    def _add_video_stream(self, crf: int, preset: str | None) -> VideoStream:
        name = self.encoder_name
        if name.endswith("_nvenc"):
            options = {"preset": "p5", "rc": "vbr", "cq": str(crf)}  # x264's names mean nothing to NVENC
        else:
            options = {"preset": preset or "medium", "crf": str(crf)}
            if name == "libx265":
                options["x265-params"] = "log-level=error"  # x265 prints to stderr itself otherwise
                if self.reproducible:
                    options["x265-params"] += f":pools={self.threads}"
            elif self.reproducible:
                options["x264-params"] = "mbtree=0"
        stream = self._container.add_stream(name, rate=self.fps, options=options)
        if not isinstance(stream, VideoStream):  # a name from ENCODERS is always a video encoder
            raise MediaWriteError(f"Cannot write {self.path}: {name} is not a video encoder")
        stream.width, stream.height = self.encoded_size
        stream.pix_fmt = "yuv420p"
        stream.time_base = self.time_base
        context = stream.codec_context
        context.time_base = self.time_base
        if self.threads:
            context.thread_count = self.threads
        context.colorspace = context.color_primaries = context.color_trc = _BT709
        context.color_range = _LIMITED_RANGE
        if name in ("hevc_nvenc", "libx265") and self.path.suffix.lower() in (".mp4", ".mov"):
            context.codec_tag = "hvc1"  # what Apple players need to play HEVC
        return stream

    # ---- writing -----------------------------------------------------------------------------------

    def write(self, image: torch.Tensor | I420, pts: int | None = None) -> None:
        """Encode one frame: uint8 [H, W, 3] RGB, or I420 at the encoded size (converted on the GPU by
        the caller, app.media.i420). `pts` (in `time_base`) keeps the source's timing; it must increase."""
        if self._closed:
            raise MediaWriteError(f"Cannot write to {self.path}: the writer is closed")
        if pts is None:
            step = max(1, round(1 / self.fps / self.time_base))
            pts = 0 if self._last_pts is None else self._last_pts + step
        elif self._last_pts is not None and pts <= self._last_pts:
            raise MediaWriteError(
                f"Cannot write {self.path}: frame timestamps must increase ({pts} after {self._last_pts})"
            )
        frame = self._frame(image)
        frame.pts = pts
        frame.time_base = self.time_base
        if self._last_pts is None and self.audio is not None:
            self.audio.start_s = float(pts * self.time_base)
        self._last_pts = pts
        try:
            self._mux(self._video.encode(frame))
        except av.error.FFmpegError as exc:
            raise MediaWriteError(
                f"Cannot write {self.path}: encoding frame {self.frames_written}: {exc}"
            ) from exc
        self.frames_written += 1

    def _frame(self, image: torch.Tensor | I420) -> VideoFrame:
        check_frame(self.path, image, self.width, self.height)
        if isinstance(image, I420):
            return _i420_frame(image.data.cpu(), image.width, image.height)
        return VideoFrame.from_ndarray(self._pixels(image), format="rgb24").reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )

    def _pixels(self, image: torch.Tensor) -> np.ndarray:
        pixels = image.detach().cpu().numpy()
        pad_w, pad_h = self.encoded_size[0] - self.width, self.encoded_size[1] - self.height
        if pad_w or pad_h:
            pixels = np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        return np.ascontiguousarray(pixels)

    def _mux(self, packets: list[Packet[VideoStream]]) -> None:
        for packet in packets:
            self._container.mux(packet)
            if packet.pts is not None and packet.time_base is not None:
                self._latest_s = max(self._latest_s, float(packet.pts * packet.time_base))
        if self.audio is not None and packets:
            self.audio.pump(self._latest_s)

    # ---- finishing ---------------------------------------------------------------------------------

    @property
    def end_s(self) -> float:
        """Where the video ends: the last frame's time plus one frame."""
        last = 0 if self._last_pts is None else self._last_pts
        return float(last * self.time_base + 1 / self.fps)

    def close(self) -> Path:
        """Flush the encoder, finish the audio, write the trailer, and move the file into place."""
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise MediaWriteError(f"Cannot write {self.path}: no frames were written")
        self._closed = True
        try:
            self._mux(self._video.encode(None))
            if self.audio is not None:
                self.audio.finish(self.end_s)
            self._container.close()
            if self._fsync:
                fsync_file(self._target.partial)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._abandon()
            self._target.discard()
            raise MediaWriteError(f"Cannot finish {self.path}: {exc}") from exc
        self._target.commit()
        if self._fsync:
            try:
                fsync_folder(self.path.parent)  # the rename too, before anyone relies on the name
            except OSError as exc:
                raise MediaWriteError(
                    f"Cannot flush {self.path.parent} after writing {self.path}: {exc}"
                ) from exc
        log.info("Wrote %s: %d frames with %s", self.path, self.frames_written, self.encoder_name)
        return self.path

    def abort(self) -> None:
        """Stop without a file: the partial output is removed (nothing to do after a clean close)."""
        if self._target.done:
            return
        self._closed = True
        self._abandon()
        self._target.discard()

    def _abandon(self) -> None:
        for closable in (self.audio, self._container):
            if closable is None:
                continue
            try:
                closable.close()
            except (av.error.FFmpegError, OSError, ValueError) as exc:  # the file is thrown away anyway
                log.debug("While abandoning %s: %s", self.path, exc)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is not None:
            self.abort()
        else:
            self.close()


def _i420_frame(packed: torch.Tensor, width: int, height: int) -> VideoFrame:
    """Packed yuv420p planes (app.media.i420, on the host) as a frame. When FFmpeg's rows are unpadded
    (1920 and 1280 wide among others) each plane is one memmove, which ctypes makes with the GIL
    released: the export's other threads need it (on the H200 export, from_ndarray's row-by-row copy
    held it 2.7 ms a 1080p frame, NumPy's plane by plane copy 0.85 ms). Not torch's copy: it fans
    out over torch's intra-op threads, from every encoder thread at once."""
    frame = VideoFrame(width, height, "yuv420p")
    chroma = (width // 2) * (height // 2)
    sizes = (width * height, chroma, chroma)
    if any(plane.buffer_size != size for plane, size in zip(frame.planes, sizes, strict=True)):
        return VideoFrame.from_ndarray(packed.numpy(), format="yuv420p")  # padded rows: row by row
    packed = packed.contiguous()
    if packed.numel() != sum(sizes):
        raise ValueError(f"I420 planes of {packed.numel()} bytes for a {width}x{height} frame")
    source = packed.data_ptr()
    for plane, size in zip(frame.planes, sizes, strict=True):
        ctypes.memmove(plane.buffer_ptr, source, size)
        source += size
    return frame
