"""Tiny real media for tests: H.264 + AAC clips written with PyAV, and small image helpers.

Clips pan and zoom across an image (or a generated pattern) so that consecutive frames differ, with a
sine tone as sound; at 320x240 a 3 s clip takes a fraction of a second to encode (x264 "ultrafast").
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 44_100


def pattern(height: int = 480, width: int = 640) -> np.ndarray:
    """A colourful uint8 [H, W, 3] test card: gradients, a grid, and a red block in the top-left
    corner, so rotations and flips are easy to tell apart."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x // 32 + y // 32) % 2) * 200],
        axis=2,
    ).astype(np.uint8)
    image[: height // 6, : width // 6] = (255, 0, 0)
    return image


def _view(image: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    """The part of `image` seen at time fraction t (0..1): a window that shrinks (zoom) and slides (pan)."""
    width, height = size
    src_h, src_w = image.shape[:2]
    scale = 1.0 - 0.3 * t
    win_w, win_h = max(2, int(src_w * scale)), max(2, int(src_h * scale))
    left = int((src_w - win_w) * t)
    top = int((src_h - win_h) * t)
    ys = top + (np.arange(height) * win_h // height)
    xs = left + (np.arange(width) * win_w // width)
    return np.ascontiguousarray(image[ys][:, xs])


def make_clip(
    path: Path,
    seconds: float = 3.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    image: np.ndarray | None = None,
    rotation: int | None = None,
    audio_codec: str = "aac",
) -> Path:
    """Write a real clip (libx264 yuv420p + a 440 Hz tone) and return its path.

    `size` is (width, height) as stored. `rotation` is the clockwise display rotation written as the
    container's display matrix (what phones do); PyAV's `set_display_rotation` takes counter-clockwise
    degrees, hence the minus.
    """
    source = pattern() if image is None else image
    frame_count = round(seconds * fps)
    with av.open(str(path), "w") as container:
        video = container.add_stream(
            "libx264", rate=Fraction(fps), options={"preset": "ultrafast", "crf": "23"}
        )
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if rotation:
            video.set_display_rotation(-rotation)
        sound = container.add_stream(audio_codec, rate=SAMPLE_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(frame_count):
            frame = av.VideoFrame.from_ndarray(
                _view(source, index / max(1, frame_count - 1), size), format="rgb24"
            )
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, seconds)
    return path


def _write_tone(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    samples = round(seconds * SAMPLE_RATE)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
    chunk = 1024
    for start in range(0, samples, chunk):
        frame = av.AudioFrame.from_ndarray(tone[None, start : start + chunk], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def cut(path: Path, destination: Path, fraction: float = 0.5) -> Path:
    """A copy of `path` with only its first `fraction` of bytes: a truncated download."""
    data = path.read_bytes()
    destination.write_bytes(data[: int(len(data) * fraction)])
    return destination
