"""Live capture through real FFmpeg inputs: lavfi's test source stands in for a camera, and a video
file for a camera that goes away (its end, or the file vanishing) and comes back."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from app.media.errors import MediaReadError
from app.media.webcam import CapturedFrame, WebcamSource, WebcamState
from tests.support.media import make_clip

PACED = "testsrc2=size=320x240:rate=30,realtime"  # a camera: 30 frames a second
UNPACED = "testsrc2=size=320x240:rate=30"  # as fast as FFmpeg can make them


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_ffmpeg_has_the_inputs_used_here() -> None:
    assert "lavfi" in av.formats_available
    assert any("v4l2" in name.split(",") for name in av.formats_available)


def test_lavfi_source_delivers_timestamped_rgb_frames() -> None:
    states: list[WebcamState] = []
    with WebcamSource(PACED, input_format="lavfi", on_state=lambda s, _: states.append(s)) as camera:
        frames = [camera.read(timeout=5) for _ in range(5)]
        assert camera.state is WebcamState.CONNECTED and camera.running
    assert all(isinstance(f, CapturedFrame) for f in frames)
    first = frames[0]
    assert first is not None and tuple(first.image.shape) == (240, 320, 3)
    assert first.image.is_contiguous() and str(first.image.dtype) == "torch.uint8"
    sequences = [f.sequence for f in frames if f is not None]
    stamps = [f.captured_at for f in frames if f is not None]
    assert sequences == sorted(set(sequences)) and stamps == sorted(stamps)
    assert time.perf_counter() - stamps[-1] < 1.0
    assert not camera.running and camera.state is WebcamState.CLOSED
    assert states[0] is WebcamState.CONNECTED and states[-1] is WebcamState.CLOSED
    assert camera.read(timeout=1) is None  # closed


def test_latest_frame_wins_and_unread_frames_are_dropped() -> None:
    with WebcamSource(UNPACED, input_format="lavfi") as camera:
        first = camera.read(timeout=5)
        time.sleep(0.2)  # a slow consumer: the camera goes on without it
        second = camera.read(timeout=5)
        waited = time.perf_counter()
        third = camera.read(timeout=5)  # a new frame, not the one already read
    assert first is not None and second is not None and third is not None
    assert second.sequence - first.sequence > 1 and camera.dropped > 0
    assert third.sequence > second.sequence and third.captured_at >= second.captured_at
    assert waited - second.captured_at < 0.2  # the newest frame, not an old one from a backlog
    assert camera.captured >= camera.dropped + 3  # every frame was either read or dropped (or is the last)


def test_a_camera_that_goes_away_and_comes_back_keeps_delivering(tmp_path: Path) -> None:
    """The file's end is the camera unplugged; the file moved away keeps it unplugged (reopening
    fails, with backoff); moved back, it is plugged in again."""
    device = make_clip(tmp_path / "camera.mp4", seconds=0.4, audio=False)
    away = tmp_path / "unplugged.mp4"
    states: list[WebcamState] = []

    def on_state(state: WebcamState, reason: str | None) -> None:
        states.append(state)
        if state is WebcamState.RECONNECTING and states.count(WebcamState.RECONNECTING) == 1:
            assert reason == "end of stream"
            device.rename(away)  # before the capture thread tries to reopen

    with WebcamSource(str(device), input_format=None, on_state=on_state, retry_delays=(0.02, 0.1)) as camera:
        before = camera.read(timeout=5)
        wait_until(lambda: camera.failed_opens >= 3)
        assert camera.state is WebcamState.RECONNECTING and camera.running
        with contextlib.suppress(TimeoutError):
            before = camera.read(timeout=0.05)  # the last frame before it went away, if still unread
        with pytest.raises(TimeoutError, match=r"camera\.mp4"):  # and nothing since
            camera.read(timeout=0.05)
        away.rename(device)
        wait_until(lambda: camera.reconnects >= 1)
        after = camera.read(timeout=5)
    assert before is not None and after is not None and after.sequence > before.sequence
    assert states[:3] == [WebcamState.CONNECTED, WebcamState.RECONNECTING, WebcamState.CONNECTED]
    assert states[-1] is WebcamState.CLOSED


@pytest.mark.parametrize(
    ("device", "input_format"),
    [("/dev/video-doppel-missing", "v4l2"), ("nosuchfilter=1", "lavfi"), ("/dev/video0", "nosuchformat")],
)
def test_a_device_that_never_opens_is_named_in_the_error(device: str, input_format: str) -> None:
    began = time.perf_counter()
    with pytest.raises(MediaReadError, match="could not be opened") as error:
        WebcamSource(device, input_format=input_format, open_timeout_s=2.0)
    assert f"'{device}'" in str(error.value) and input_format in str(error.value)
    assert time.perf_counter() - began < 3.0


def test_a_failure_in_the_capture_thread_is_raised_from_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a disconnect but a bug (here: conversion breaking on the third frame): the thread ends,
    the state says FAILED, and read() raises the error instead of waiting for frames forever."""
    from app.media import webcam

    converted = 0
    real = webcam.swscale_rgb

    def breaks_on_the_third(frame: av.VideoFrame) -> object:
        nonlocal converted
        converted += 1
        if converted == 3:
            raise RuntimeError("conversion broke")
        return real(frame)

    monkeypatch.setattr(webcam, "swscale_rgb", breaks_on_the_third)
    states: list[WebcamState] = []
    with WebcamSource(PACED, input_format="lavfi", on_state=lambda s, _: states.append(s)) as camera:
        wait_until(lambda: not camera.running)
        assert camera.state is WebcamState.FAILED and states[-1] is WebcamState.FAILED
        with pytest.raises(RuntimeError, match="conversion broke"):
            camera.read(timeout=5)


def test_a_state_listener_that_raises_does_not_stop_the_camera() -> None:
    def broken(state: WebcamState, reason: str | None) -> None:
        raise ValueError("listener bug")

    with WebcamSource(PACED, input_format="lavfi", on_state=broken) as camera:
        frames = [camera.read(timeout=5) for _ in range(3)]
        assert all(frame is not None for frame in frames) and camera.state is WebcamState.CONNECTED
