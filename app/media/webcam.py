"""Live capture from a webcam through PyAV (FFmpeg's v4l2, dshow or avfoundation input).

Live preview must show the newest picture, never a backlog: the capture thread keeps one slot, a new
frame replaces an unread one (counted in `dropped`), and `read` returns the newest frame it has not
returned before. Each frame carries `captured_at` (time.perf_counter() when it came out of FFmpeg), so
latency can be measured end to end.

Cameras come and go (a loose cable, another program grabbing the device, a USB hub resetting). A read
error, a stall longer than `stall_timeout_s` or the end of the stream counts as a disconnect: it is
logged, the state goes to RECONNECTING (reported through `on_state` and `state`), and the device is
reopened with exponential backoff until it answers or `close()` is called. A disconnect never raises.
A device that cannot be opened at all raises MediaReadError naming it, from the constructor, after one
bounded attempt. Any other failure in the capture thread (a bug) ends it: the state becomes FAILED and
`read` raises that error rather than waiting forever.

Tests and tools may pass another FFmpeg input: `input_format="lavfi"` with a filter graph such as
"testsrc2=size=320x240:rate=30" as the device, or `input_format=None` with a video file, whose end is a
disconnect.
"""

from __future__ import annotations

import enum
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import av
import torch
from av.container import InputContainer

from app.media.errors import MediaReadError
from app.media.video import swscale_rgb

__all__ = ["PLATFORM_INPUT_FORMAT", "CapturedFrame", "WebcamSource", "WebcamState"]

log = logging.getLogger(__name__)

_FORMATS = {"linux": "v4l2", "win32": "dshow", "darwin": "avfoundation"}
PLATFORM_INPUT_FORMAT: str | None = next((f for p, f in _FORMATS.items() if sys.platform.startswith(p)), None)
_OPEN_ERRORS = (av.error.FFmpegError, OSError, ValueError)  # ValueError: an unknown input format


class WebcamState(enum.StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"
    FAILED = "failed"  # the capture thread broke (not a disconnect); read() raises why


@dataclass(frozen=True)
class CapturedFrame:
    sequence: int  # 0, 1, 2 … across reconnects; a gap means frames were dropped
    image: torch.Tensor  # uint8 [H, W, 3] RGB, CPU, contiguous
    captured_at: float  # time.perf_counter() when FFmpeg handed the frame over


StateCallback = Callable[[WebcamState, str | None], None]


class WebcamSource:
    """Capture from `device` on a thread; read the newest frame with `read`. Use as a context manager.

    `device`: "/dev/video0" (v4l2), "video=Integrated Camera" (dshow), "0" (avfoundation). `size` and
    `fps` are asked of the device (FFmpeg's video_size and framerate); `options` adds input options.
    `on_state(state, reason)` is called from the capture thread (first with CONNECTED); keep it short,
    its errors are logged and ignored.
    """

    def __init__(
        self,
        device: str,
        *,
        input_format: str | None = PLATFORM_INPUT_FORMAT,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        options: dict[str, str] | None = None,
        on_state: StateCallback | None = None,
        open_timeout_s: float = 5.0,
        stall_timeout_s: float = 3.0,
        retry_delays: tuple[float, float] = (0.25, 4.0),
    ) -> None:
        self.device = device
        self.input_format = input_format
        self._options = dict(options or {})
        if size is not None:
            self._options["video_size"] = f"{size[0]}x{size[1]}"
        if fps is not None:
            self._options["framerate"] = f"{fps:g}"
        self._timeouts = (open_timeout_s, stall_timeout_s)
        self._first_delay, self._max_delay = retry_delays
        self._on_state = on_state
        self.captured = 0  # frames taken from the device
        self.dropped = 0  # replaced before anyone read them
        self.reconnects = 0  # successful reopenings
        self.failed_opens = 0  # reopening attempts that failed
        self._lock = threading.Condition()
        self._slot: CapturedFrame | None = None
        self._last_read = -1
        self._error: BaseException | None = None
        self._stop = threading.Event()
        try:
            container = self._open()
        except _OPEN_ERRORS as exc:
            raise MediaReadError(f"Webcam {self._name()} could not be opened: {exc}") from exc
        self._state = WebcamState.CONNECTED
        self._thread = threading.Thread(
            target=self._run, args=(container,), name=f"webcam {device}", daemon=True
        )
        self._thread.start()

    # ---- consumer side -----------------------------------------------------------------------------

    @property
    def state(self) -> WebcamState:
        return self._state

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def read(self, timeout: float | None = None) -> CapturedFrame | None:
        """The newest frame not returned before, waiting for one; None once closed. Raises
        TimeoutError when none came in `timeout` seconds (as while reconnecting), and the capture
        thread's error if it failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._error is None and not self._stop.is_set() and not self._fresh():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"No frame from webcam {self._name()} within {timeout} s")
                self._lock.wait(remaining)
            if self._error is not None:
                raise self._error
            if self._stop.is_set() or self._slot is None:
                return None
            frame = self._slot
            self._last_read = frame.sequence
            return frame

    def _fresh(self) -> bool:
        return self._slot is not None and self._slot.sequence > self._last_read

    def close(self) -> None:
        """Stop capturing and join the thread (it may finish one blocking read first)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(self._timeouts[1] + 2.0)
            if self._thread.is_alive():
                log.warning("Webcam %s: capture thread still alive after close", self._name())

    def __enter__(self) -> WebcamSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # ---- capture thread ----------------------------------------------------------------------------

    def _name(self) -> str:
        return f"'{self.device}' ({self.input_format or 'format probed'})"

    def _open(self) -> InputContainer:
        options: dict[str, Any] = {"options": self._options} if self._options else {}
        container: InputContainer = av.open(
            self.device, "r", format=self.input_format, timeout=self._timeouts, **options
        )
        if not container.streams.video:
            container.close()
            raise ValueError("it has no video stream")
        return container

    def _run(self, container: InputContainer | None) -> None:
        try:
            self._report(WebcamState.CONNECTED, None)
            self._capture_until_closed(container)
            self._set_state(WebcamState.CLOSED, None)
        except Exception as exc:  # a bug, not a disconnect: read() raises it
            log.exception("Webcam %s: capture failed", self._name())
            with self._lock:
                self._error = exc
                self._lock.notify_all()
            self._set_state(WebcamState.FAILED, str(exc))

    def _capture_until_closed(self, container: InputContainer | None) -> None:
        delay = self._first_delay
        while not self._stop.is_set():
            if container is None:
                if self._stop.wait(delay):
                    return
                try:
                    container = self._open()
                except _OPEN_ERRORS as exc:
                    self.failed_opens += 1
                    delay = min(delay * 2, self._max_delay)
                    log.debug("Webcam %s: still away (%s); next try in %.2f s", self._name(), exc, delay)
                    continue
                delay = self._first_delay
                self.reconnects += 1
                log.info("Webcam %s: reconnected", self._name())
                self._set_state(WebcamState.CONNECTED, None)
            try:
                reason = self._capture(container)
            finally:
                container.close()
                container = None
            if reason is not None:
                log.warning("Webcam %s disconnected (%s); reconnecting", self._name(), reason)
                self._set_state(WebcamState.RECONNECTING, reason)

    def _capture(self, container: InputContainer) -> str | None:
        """Frames into the slot until the device goes away (returns why) or close (returns None)."""
        try:
            for frame in container.decode(video=0):
                captured_at = time.perf_counter()
                if self._stop.is_set():
                    return None
                self._offer(CapturedFrame(self.captured, swscale_rgb(frame), captured_at))
        except (av.error.FFmpegError, OSError) as exc:
            return None if self._stop.is_set() else f"{type(exc).__name__}: {exc}"
        return None if self._stop.is_set() else "end of stream"

    def _offer(self, frame: CapturedFrame) -> None:
        with self._lock:
            if self._fresh():
                self.dropped += 1  # latest wins: the unread one goes
            self._slot = frame
            self.captured += 1
            self._lock.notify_all()

    def _set_state(self, state: WebcamState, reason: str | None) -> None:
        self._state = state
        self._report(state, reason)

    def _report(self, state: WebcamState, reason: str | None) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(state, reason)
        except Exception:  # a listener's bug must not stop the camera
            log.exception("Webcam %s: state callback failed", self._name())
