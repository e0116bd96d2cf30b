"""Prefetch: a decode thread keeps up to `capacity` frames ready ahead of the consumer.

The buffer is bounded and the thread waits for room before decoding the next frame, so a slow
consumer holds memory to `capacity` frames (plus the one being decoded) and no more (`high_water`
records the most ever waiting). `seek` is frame-accurate and cancels what is queued: every frame is
tagged with the generation it was decoded for, a seek starts a new one, and frames of an old generation
are dropped, never handed out. End of stream is a sentinel (`get` returns None, again and again until
a seek); a decode error is a sentinel too, re-raised from `get` as it was raised (a MediaReadError
naming the file), so a failure never looks like a hang. `close` stops and joins the thread, also while
it waits for room in a full buffer.

CUDA: frames are made on the device in the decode thread, on a stream of its own: a CPU image is
copied into pinned memory and uploaded non-blocking (a source with a CUDA device converts on that
stream itself), then an event is recorded. `get` makes the caller's current stream wait on that event
and records the image as used by that stream (so the caching allocator does not reuse its memory while
the consumer's kernels may still read it). A consumer that moves the image to another stream later
must order that stream itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import torch

from app.media.video import DecodedFrame, VideoSource, resolve_device

__all__ = ["MAX_CAPACITY", "MIN_CAPACITY", "FrameQueue", "QueuedFrame"]

log = logging.getLogger(__name__)

MIN_CAPACITY, MAX_CAPACITY = 16, 64
_JOIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class QueuedFrame:
    index: int
    pts: int | None
    time_s: float
    image: torch.Tensor  # uint8 [H, W, 3] RGB on the queue's device
    decoded_at: float  # time.perf_counter() when the decode thread had it, for latency


@dataclass(frozen=True)
class _AfterPts:
    pts: int


@dataclass(frozen=True)
class _Item:
    generation: int
    frame: QueuedFrame | None = None  # None with error None: end of stream
    error: BaseException | None = None
    ready: torch.cuda.Event | None = None


class FrameQueue:
    """Frames of `source` from `start` up to `stop` (exclusive), decoded ahead on a thread.

    The queue owns `source` while it runs (nothing else may read or seek it) but does not close it.
    """

    def __init__(
        self,
        source: VideoSource,
        capacity: int = 32,
        device: torch.device | str = "cpu",
        start: int = 0,
        stop: int | None = None,
        after_pts: int | None = None,
    ) -> None:
        """`after_pts`: start right after the frame with this timestamp instead of at `start` (exact
        on variable-frame-rate video, where an index is only an estimate)."""
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise ValueError(f"FrameQueue capacity must be {MIN_CAPACITY}–{MAX_CAPACITY}, got {capacity}")
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"FrameQueue range [{start}, {stop}) is not a range of frames")
        self.source = source
        self.capacity = capacity
        self.device = resolve_device(device)
        self.stop = stop
        self.high_water = 0  # most frames ever waiting in the buffer (≤ capacity)
        self.frames_decoded = 0  # by the thread, stale ones included
        self.frames_delivered = 0
        self._cuda_stream = self._make_stream()
        self._lock = threading.Condition()
        self._buffer: deque[_Item] = deque()
        self._generation = 0
        self._seek_to: int | _AfterPts | None = start if start != source.position else None
        if after_pts is not None:
            self._seek_to = _AfterPts(after_pts)
        self._frames: Iterator[DecodedFrame] = source.frames()  # the decode thread's alone
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"decode {source.path.name}", daemon=True)
        self._thread.start()

    def _make_stream(self) -> torch.cuda.Stream | None:
        uses_cuda = self.device.type == "cuda" or self.source.device.type == "cuda"
        if not uses_cuda:
            return None
        cuda = self.device if self.device.type == "cuda" else self.source.device
        return torch.cuda.Stream(device=cuda)  # type: ignore[no-untyped-call]

    # ---- consumer side -----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> QueuedFrame | None:
        """The next frame; None at the end of the range (and after close). Raises the decode thread's
        error, and TimeoutError when no frame came within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._buffer and not self._closing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"No frame of {self.source.path} within {timeout} s")
                self._lock.wait(remaining)
            if not self._buffer:
                return None  # closed
            item = self._buffer[0]
            if item.error is not None:
                raise item.error  # kept, so every later get says the same until a seek
            if item.frame is None:
                return None  # end of stream, kept likewise
            self._buffer.popleft()
            self.frames_delivered += 1
            self._lock.notify_all()
        if item.ready is not None:
            consumer = torch.cuda.current_stream(self.device)
            consumer.wait_event(item.ready)
            item.frame.image.record_stream(consumer)
        return item.frame

    def __iter__(self) -> Iterator[QueuedFrame]:
        while (frame := self.get()) is not None:
            yield frame

    def seek(self, index: int) -> None:
        """Drop everything queued; the next `get` returns frame `index` exactly."""
        if index < 0:
            raise ValueError(f"seek: frame index must be ≥ 0, got {index}")
        with self._lock:
            self._generation += 1
            self._buffer.clear()
            self._seek_to = index
            self._lock.notify_all()

    def close(self) -> None:
        """Stop the decode thread and wait for it (it finishes at most the frame it is decoding)."""
        with self._lock:
            self._closing = True
            self._buffer.clear()
            self._lock.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("Decode thread of %s still alive after %.0f s", self.source.path, _JOIN_TIMEOUT_S)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> FrameQueue:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # ---- decode thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        stream = self._cuda_stream
        on_stream = contextlib.nullcontext() if stream is None else torch.cuda.stream(stream)
        try:
            with on_stream:
                self._produce()
        except BaseException as exc:  # handed to the consumer, who re-raises it
            log.exception("Decode thread for %s failed outside decoding", self.source.path)
            with self._lock:
                self._buffer.append(_Item(self._generation, error=exc))
                self._lock.notify_all()

    def _produce(self) -> None:
        idle = False  # at the end of the range or after an error: only a seek or close wakes us
        while True:
            with self._lock:
                while (
                    not self._closing
                    and self._seek_to is None
                    and (idle or len(self._buffer) >= self.capacity)
                ):
                    self._lock.wait()
                if self._closing:
                    return
                target, self._seek_to = self._seek_to, None
                generation = self._generation
            item = self._decode_one(target, generation)
            idle = item.frame is None
            with self._lock:
                if generation != self._generation or self._closing:
                    continue  # a seek (or close) came while decoding: this one is stale
                self._buffer.append(item)
                self.high_water = max(self.high_water, len(self._buffer))
                self._lock.notify_all()

    def _decode_one(self, target: int | _AfterPts | None, generation: int) -> _Item:
        """One frame (after seeking, when `target` is set) as an item; errors become items too."""
        try:
            if isinstance(target, _AfterPts):
                self.source.seek_after_pts(target.pts)
                self._frames = self.source.frames()
            elif target is not None:
                self.source.seek(target)
                self._frames = self.source.frames()
            if self.stop is not None and self.source.position >= self.stop:
                return _Item(generation)
            decoded = next(self._frames, None)
            if decoded is None:
                return _Item(generation)
            decoded_at = time.perf_counter()
            self.frames_decoded += 1
            image, ready = self._to_device(decoded.image)
            frame = QueuedFrame(decoded.index, decoded.pts, decoded.time_s, image, decoded_at)
            return _Item(generation, frame, ready=ready)
        except Exception as exc:  # noqa: BLE001  (handed to the consumer, who re-raises it)
            log.error("Decoding %s failed: %s", self.source.path, exc)
            return _Item(generation, error=exc)

    def _to_device(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """On the queue's device; for CUDA with the event the consumer's stream must wait on."""
        if image.device != self.device:
            if image.device.type == "cpu" and self.device.type == "cuda":
                image = image.pin_memory().to(self.device, non_blocking=True)
            else:
                image = image.to(self.device)
        if self.device.type != "cuda":
            return image, None
        ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
        ready.record()  # on the decode thread's current stream, which is self._cuda_stream
        return image, ready
