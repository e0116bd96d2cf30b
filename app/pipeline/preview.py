"""PreviewService: the frame the user is looking at, rendered off the GUI thread; stale work is dropped.

Scrubbing fires a request per mouse move. Requests go into a latest-wins slot, so a request nobody has
started is replaced, never queued; a request being worked on is cancelled at the next stage boundary
(decode → analyse → render) once a newer one arrives, and a result already stale when it is done is not
delivered (one can still go stale on its way: receivers compare `generation` with their latest). Each
request carries its own immutable settings snapshot, taken on the GUI thread.

The service knows nothing of Qt: `deliver` is called on the worker thread, and the UI's controller
turns it into a signal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.core.errors import DoppelError
from app.pipeline.workers import LatestSlot

log = logging.getLogger(__name__)

Settings = TypeVar("Settings")
Result = TypeVar("Result")


class StaleRequestError(DoppelError):
    """A newer request arrived while this one was being worked on."""


@dataclass(frozen=True)
class PreviewRequest(Generic[Settings]):
    generation: int
    index: int
    settings: Settings
    requested_at: float


@dataclass(frozen=True)
class PreviewResult(Generic[Result]):
    generation: int
    index: int
    result: Result
    latency_ms: float  # request → delivery


Checkpoint = Callable[[], None]  # raises StaleRequestError when the request went stale
Process = Callable[[int, Settings, Checkpoint], Result]


class PreviewService(Generic[Settings, Result]):
    def __init__(
        self,
        process: Callable[[int, Settings, Checkpoint], Result],
        deliver: Callable[[PreviewResult[Result]], None],
        on_error: Callable[[int, BaseException], None] | None = None,
    ) -> None:
        """`process(index, settings, checkpoint)` renders a frame, calling `checkpoint()` between its
        stages; `deliver` receives current results only; `on_error(index, error)` hears failures
        (the service keeps running: the next request may well succeed)."""
        self._process = process
        self._deliver = deliver
        self._on_error = on_error
        self._slot: LatestSlot[PreviewRequest[Settings]] = LatestSlot()
        self._latest = 0
        self._lock = threading.Lock()
        self.cancelled = 0  # started, then abandoned for a newer request
        self.completed = 0
        self._thread = threading.Thread(target=self._run, name="preview", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Requests replaced before they were started."""
        return self._slot.dropped

    def request(self, index: int, settings: Settings) -> int:
        """Ask for frame `index` under `settings`; returns the request's generation number."""
        with self._lock:
            self._latest += 1
            generation = self._latest
        self._slot.put(PreviewRequest(generation, index, settings, time.perf_counter()))
        return generation

    def close(self, timeout: float = 10.0) -> None:
        self._slot.close()
        with self._lock:
            self._latest += 1  # whatever is running is now stale
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the preview worker did not stop within %.0f s", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _is_stale(self, generation: int) -> bool:
        with self._lock:
            return generation != self._latest

    def _run(self) -> None:
        while True:
            request = self._slot.take()
            if request is None:
                return

            def checkpoint(generation: int = request.generation) -> None:
                if self._is_stale(generation):
                    raise StaleRequestError(f"preview request {generation} was superseded")

            try:
                checkpoint()
                result = self._process(request.index, request.settings, checkpoint)
                checkpoint()
            except StaleRequestError:
                self.cancelled += 1
                continue
            except Exception as exc:  # noqa: BLE001 - reported, and the service carries on
                log.warning("preview of frame %d failed: %s", request.index, exc)
                if self._on_error is not None and not self._is_stale(request.generation):
                    try:
                        self._on_error(request.index, exc)
                    except Exception:  # as for deliver
                        log.exception("reporting the failed preview of frame %d failed", request.index)
                continue
            latency = (time.perf_counter() - request.requested_at) * 1000.0
            self.completed += 1
            try:
                self._deliver(PreviewResult(request.generation, request.index, result, latency))
            except Exception:  # a receiver's bug (a deleted widget) must not end the preview thread
                log.exception("delivering the preview of frame %d failed", request.index)
