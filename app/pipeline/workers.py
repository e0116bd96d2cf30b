"""Threaded stages: an ordered worker pool for export, a latest-wins slot for live preview.

OrderedPool runs N worker threads over submitted items and hands results back in submission order,
however the workers finish. Memory is bounded: at most `capacity` items are in flight (queued, being
worked on, or finished but not yet taken), so a producer faster than the consumer blocks in submit()
(backpressure) instead of piling frames up.

Failure never hangs: the first exception in a worker (or one reported by a feeder thread through
`fail()`) stops the pool, wakes every blocked submit()/results() call, and is raised from both as a
PipelineError naming the stage and the item, with the original exception chained.

LatestSlot is the live counterpart: one slot, a newer item replaces an unread one (counted as dropped),
so preview and webcam paths never build a backlog.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar, cast

from app.core.errors import DoppelError

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")
Item = TypeVar("Item")

_POLL_S = 0.05  # how often blocked calls look at the stop flag
_END = object()  # sentinel: no more work


class PipelineError(DoppelError):
    """A stage failed; the message names the stage and the frame, the cause is chained."""


class PipelineStoppedError(DoppelError):
    """The pool was stopped (cancelled) while a caller was waiting on it."""


@dataclass(frozen=True)
class PoolWaits:
    """Seconds each side of the pool spent blocked on the other: where a pipeline's time goes when
    its stages do not keep up with each other (the slowest stage is the one the others wait for)."""

    producer_s: float  # submit() waiting for a free slot: the workers (or the consumer) are behind
    worker_idle_s: float  # per worker, waiting for an item: the producer is behind
    consumer_s: float  # results() waiting for the next item in order: the workers are behind


class OrderedPool(Generic[In, Out]):
    def __init__(
        self,
        work: Callable[[In], Out],
        workers: int,
        capacity: int,
        name: str = "worker",
        context: Callable[[int], AbstractContextManager[object]] | None = None,
        describe: Callable[[In], str] = lambda item: "an item",
    ) -> None:
        """`work` runs on worker threads; `context(i)` wraps worker i's whole life (a CUDA stream, a
        profiler range); `describe(item)` names an item in error messages ("frame 12")."""
        if workers < 1:
            raise ValueError(f"{name}: at least one worker is needed, got {workers}")
        if capacity < workers:
            raise ValueError(f"{name}: capacity {capacity} is below the worker count {workers}")
        self.name = name
        self._work = work
        self._describe = describe
        self._context = context or (lambda index: nullcontext())
        self._inbox: queue.Queue[tuple[int, In] | object] = queue.Queue()
        self._slots = threading.Semaphore(capacity)
        self._done: dict[int, Out] = {}
        self._ready = threading.Condition()
        self._submitted = 0
        self._taken = 0
        self._closed = False
        self._stop = threading.Event()
        self._error: PipelineError | None = None
        self.high_water = 0  # most items in flight at once, for the backpressure test
        self._producer_wait = 0.0
        self._consumer_wait = 0.0
        self._idle = [0.0] * workers  # each worker writes only its own
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- producer ------------------------------------------------------------------------------

    def submit(self, item: In) -> None:
        """Queue an item; blocks while `capacity` items are in flight."""
        if self._closed:
            raise RuntimeError(f"{self.name}: submit after close")
        blocked = time.perf_counter()
        while not self._slots.acquire(timeout=_POLL_S):
            self._raise_if_stopped()
        self._producer_wait += time.perf_counter() - blocked
        self._raise_if_stopped()
        with self._ready:
            seq = self._submitted
            self._submitted += 1
            self.high_water = max(self.high_water, self._submitted - self._taken)
        self._inbox.put((seq, item))

    def close(self) -> None:
        """No more items: the workers finish what is queued and end."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._inbox.put(_END)
        with self._ready:
            self._ready.notify_all()

    def fail(self, error: BaseException, where: str) -> None:
        """Stop the pool because something feeding it failed (`where` names the stage and frame)."""
        self._set_error(error, where)

    # -- consumer ------------------------------------------------------------------------------

    def results(self) -> Iterator[Out]:
        """Results in submission order, until the pool is closed and drained."""
        while True:
            with self._ready:
                blocked = time.perf_counter()
                while self._taken not in self._done:
                    self._raise_if_stopped()
                    if self._closed and self._taken >= self._submitted:
                        return
                    self._ready.wait(_POLL_S)
                self._consumer_wait += time.perf_counter() - blocked
                result = self._done.pop(self._taken)
                self._taken += 1
            self._slots.release()
            yield result

    # -- lifetime ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel: workers stop after their current item; blocked callers get PipelineStoppedError."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()

    def join(self, timeout: float = 10.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s did not stop within %.0f s", thread.name, timeout)

    def waits(self) -> PoolWaits:
        idle = self._idle
        return PoolWaits(self._producer_wait, sum(idle) / len(idle), self._consumer_wait)

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def __enter__(self) -> OrderedPool[In, Out]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self.stop()
        self.close()
        self.join()

    # -- internals -----------------------------------------------------------------------------

    def _run(self, index: int) -> None:
        try:
            with self._context(index):
                self._loop(index)
        except BaseException as exc:  # noqa: BLE001 - a worker's context failing must stop the pool
            self._set_error(exc, f"{self.name} {index} setup")

    def _loop(self, index: int) -> None:
        while not self._stop.is_set():
            blocked = time.perf_counter()
            try:
                entry = self._inbox.get(timeout=_POLL_S)
            except queue.Empty:
                entry = None
            self._idle[index] += time.perf_counter() - blocked
            if entry is None:
                continue
            if entry is _END:
                return
            seq, item = cast("tuple[int, In]", entry)
            try:
                result = self._work(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised to the consumer as PipelineError
                self._set_error(exc, f"{self.name} on {self._describe(item)}")
                return
            with self._ready:
                self._done[seq] = result
                self._ready.notify_all()

    def _set_error(self, error: BaseException, where: str) -> None:
        with self._ready:
            if self._error is None:
                detail = str(error) or type(error).__name__
                wrapped = PipelineError(f"{where} failed: {detail}")
                wrapped.__cause__ = error
                self._error = wrapped
                if isinstance(error, DoppelError):  # a cancel, a bad file: the user is told, no trace
                    log.info("%s stopped: %s", where, detail)
                else:
                    log.error("%s failed", where, exc_info=error)
            self._stop.set()
            self._ready.notify_all()

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise self._error
        if self._stop.is_set():
            raise PipelineStoppedError(f"{self.name} was stopped")


class LatestSlot(Generic[Item]):
    """A one-item mailbox where the newest item wins: put() never blocks, an unread item it replaces
    is counted in `dropped`. take() waits for an item, or returns None once closed."""

    def __init__(self) -> None:
        self._item: Item | None = None
        self._has_item = False
        self._closed = False
        self._changed = threading.Condition()
        self.dropped = 0
        self.delivered = 0

    def put(self, item: Item) -> Item | None:
        """Store `item`; returns the unread item it replaced (to cancel or recycle), if any."""
        with self._changed:
            replaced = self._item if self._has_item else None
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._changed.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> Item | None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self.delivered += 1
            return item

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
