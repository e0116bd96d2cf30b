"""Segments encoded on threads of their own, several at once, for SegmentedVideoWriter (app.media.segments).

The ordering thread hands each frame to the encoder of its segment and moves on: it waits for x264 only
when the encoders have fallen behind (back-pressure), never for a frame's own encoding. Segments are
independent files, each with a fresh encoder, so `jobs` of them encode at once and x264 scales across
cores by segments, where its own threads would not; each encoder keeps its pinned thread count, so a
segment's bytes do not depend on what runs beside it (parallel and serial exports are byte-identical).

Bounds: at most `jobs` segments in flight (opened and not yet listed; `start()` blocks for a slot), and
at most `max_frames` frames and `max_bytes` bytes waiting in their queues (`put()` blocks). Memory stays
bounded however far the caller runs ahead.

Order: a segment's thread lists it (the `add` callback: WorkFolder.add) only once its file is closed,
flushed and renamed into place, and every earlier segment is listed; so the manifest names a whole
prefix of the export whenever the process dies. Segments finished out of order wait for their turn.

Errors: the first exception on an encoder thread is kept and raised by the caller's next call (the
MediaWriteError that VideoWriter or WorkFolder raised, as when the caller's own thread encoded); the
segments after the failed one are stopped and never listed, the ones before it still are. `stop()`
cancels the segment being filled, lets the ones already handed over finish (as a serial writer would
have kept them), and joins every thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from app.media.i420 import I420
from app.media.video_writer import VideoWriter

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 60.0  # a thread that outlives this is logged (an encoder stuck in FFmpeg), not waited for


@dataclass(frozen=True)
class SegmentEnd:
    """The last item of a segment's queue: what its manifest entry records."""

    frames: int
    first_pts: int
    last_pts: int
    state: bytes | None  # the caller's state after the segment's last frame


@dataclass(frozen=True)
class _Frame:
    image: torch.Tensor | I420  # on the host
    pts: int
    nbytes: int


Lister = Callable[[Path, SegmentEnd], None]


class SegmentEncoder:
    """One segment on a thread of its own, fed through a queue that its EncoderCrew bounds."""

    def __init__(self, crew: EncoderCrew, index: int, writer: VideoWriter) -> None:
        self.crew, self.index, self.writer = crew, index, writer
        self.queue: deque[_Frame | SegmentEnd] = deque()  # guarded by the crew's lock
        self.ended = self.cancelled = False  # guarded by the crew's lock
        self.ready = threading.Condition(crew.lock)  # something was queued, or the segment was cancelled
        self.thread = threading.Thread(target=self._run, name=f"encode-{index}", daemon=True)

    def _run(self) -> None:
        crew, writer = self.crew, self.writer
        try:
            while isinstance(item := crew.take(self), _Frame):
                try:
                    writer.write(item.image, item.pts)
                finally:
                    crew.release(item)  # x264 holds its own copy now
            if item is None:  # cancelled
                writer.abort()
                return
            writer.close()  # flushed to disk and renamed into place
            crew.list_in_turn(self, item)
        except BaseException as exc:  # noqa: BLE001 - kept, and raised by the caller's next call
            writer.abort()
            crew.fail(self.index, exc)
        finally:
            crew.leave(self)


class EncoderCrew:
    """The segments in flight, their queues' bounds, the listing turn and the first error."""

    def __init__(self, jobs: int, max_frames: int, max_bytes: int, next_index: int, add: Lister) -> None:
        if jobs < 1 or max_frames < 1:
            raise ValueError(f"EncoderCrew: jobs and max_frames must be ≥ 1, got {jobs} and {max_frames}")
        self.jobs, self.max_frames, self.max_bytes = jobs, max_frames, max_bytes
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)  # slots, queue room, listing turns, errors
        self._add = add
        self._in_flight: dict[int, SegmentEncoder] = {}
        self._threads: list[threading.Thread] = []
        self._queued_frames = self._queued_bytes = 0
        self._next_listed = next_index  # the segment whose turn it is to be listed
        self._failed_at: int | None = None  # no segment after this one is listed
        self.error: BaseException | None = None

    # ---- the caller's side (the ordering thread) ---------------------------------------------------

    def start(self, index: int, open_writer: Callable[[], VideoWriter]) -> SegmentEncoder:
        """Segment `index` on a thread of its own, once fewer than `jobs` are in flight (blocks until
        then). The writer is opened here, on the caller's thread, so segments open in order."""
        with self.lock:
            self._changed.wait_for(lambda: len(self._in_flight) < self.jobs or self.error is not None)
            self._raise()
        writer = open_writer()
        encoder = SegmentEncoder(self, index, writer)
        with self.lock:
            self._in_flight[index] = encoder
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            self._threads.append(encoder.thread)
        try:
            encoder.thread.start()
        except BaseException:  # no thread to be had: nothing may wait for this segment
            with self.lock:
                del self._in_flight[index]
                self._threads.remove(encoder.thread)
            writer.abort()
            raise
        return encoder

    def put(self, encoder: SegmentEncoder, image: torch.Tensor | I420, pts: int) -> None:
        """Queue a frame (on the host) for `encoder`; blocks while the queues are full."""
        data = image.data if isinstance(image, I420) else image
        nbytes = data.numel() * data.element_size()
        with self.lock:
            self._changed.wait_for(lambda: self._has_room(nbytes) or self.error is not None)
            self._raise()
            self._queued_frames += 1
            self._queued_bytes += nbytes
            encoder.queue.append(_Frame(image, pts, nbytes))
            encoder.ready.notify()

    def end(self, encoder: SegmentEncoder, end: SegmentEnd) -> None:
        """No more frames for `encoder`: it closes its file and lists it in turn."""
        with self.lock:
            self._raise()
            encoder.ended = True
            encoder.queue.append(end)
            encoder.ready.notify()

    def check(self) -> None:
        """Raise the first error of any encoder thread."""
        with self.lock:
            self._raise()

    def drain(self) -> None:
        """Wait until every segment is listed (or has failed), join the threads, raise the first error."""
        with self.lock:
            self._changed.wait_for(lambda: not self._in_flight)
        self._join()
        self.check()

    def stop(self) -> None:
        """Cancel the segment being filled (it is incomplete), let the segments already handed over
        finish and be listed, and join every thread. Errors are not raised (see `error`)."""
        with self.lock:
            for encoder in self._in_flight.values():
                if not encoder.ended:
                    self._cancel(encoder)
            self._changed.wait_for(lambda: not self._in_flight)
        self._join()

    # ---- the encoders' side ------------------------------------------------------------------------

    def take(self, encoder: SegmentEncoder) -> _Frame | SegmentEnd | None:
        """The next item of `encoder`'s queue, waiting for one; None once it is cancelled."""
        with self.lock:
            encoder.ready.wait_for(lambda: bool(encoder.queue) or encoder.cancelled)
            return None if encoder.cancelled else encoder.queue.popleft()

    def release(self, frame: _Frame) -> None:
        with self.lock:
            self._queued_frames -= 1
            self._queued_bytes -= frame.nbytes
            self._changed.notify_all()

    def list_in_turn(self, encoder: SegmentEncoder, end: SegmentEnd) -> None:
        """List the closed segment once every earlier one is listed; not at all after a failure before it
        (its file is then removed: a resume would remove it anyway)."""
        with self.lock:
            self._changed.wait_for(lambda: self._next_listed == encoder.index or self._failed_before(encoder))
            listed = not self._failed_before(encoder)
        if not listed:
            encoder.writer.path.unlink(missing_ok=True)
            return
        self._add(encoder.writer.path, end)  # only the segment whose turn it is gets here: one at a time
        with self.lock:
            self._next_listed += 1
            self._changed.notify_all()

    def fail(self, index: int, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
                log.debug("encoder of segment %d failed: %s", index, error)
            self._failed_at = index if self._failed_at is None else min(self._failed_at, index)
            for later in self._in_flight.values():
                if later.index > index:
                    self._cancel(later)
            self._changed.notify_all()

    def leave(self, encoder: SegmentEncoder) -> None:
        with self.lock:
            self._in_flight.pop(encoder.index, None)
            self._changed.notify_all()

    # ---- helpers (with the lock held) --------------------------------------------------------------

    def _has_room(self, nbytes: int) -> bool:
        if self._queued_frames == 0:
            return True  # one frame always fits, however large
        return self._queued_frames < self.max_frames and self._queued_bytes + nbytes <= self.max_bytes

    def _failed_before(self, encoder: SegmentEncoder) -> bool:
        return self._failed_at is not None and self._failed_at < encoder.index

    def _cancel(self, encoder: SegmentEncoder) -> None:
        encoder.cancelled = True
        for item in encoder.queue:
            if isinstance(item, _Frame):
                self._queued_frames -= 1
                self._queued_bytes -= item.nbytes
        encoder.queue.clear()
        encoder.ready.notify()
        self._changed.notify_all()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _join(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error("encoder thread %s did not stop within %.0f s", thread.name, JOIN_TIMEOUT_S)
