"""ModelWarmer: loads the models a preview can do without for a moment, on a thread of its own.

The studio's first swapped frame waits for every model it runs, and the restorer is the heaviest of
them. So the preview shows a draft (the swap without the restorer) and asks this warmer to load the
rest through the runtime's pool; `on_ready` then tells the caller to ask for the frame again.

Requests go into a latest-wins slot (one item: switching restorers twice queues nothing up). Each model
is tried once: one that fails to load is left to the full render, which reports its error as before,
instead of being drafted around again and again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from app.inference.runtime import InferenceRuntime
from app.pipeline.workers import LatestSlot

log = logging.getLogger(__name__)

Ready = Callable[[tuple[str, ...]], None]  # the models just tried (loaded, or failed to)


class ModelWarmer:
    def __init__(self, runtime: InferenceRuntime, on_ready: Ready | None = None) -> None:
        """`on_ready(models)` is called on the warmer's thread once a request's models were tried."""
        self.runtime = runtime
        self._on_ready = on_ready
        self._slot: LatestSlot[tuple[str, ...]] = LatestSlot()
        self._lock = threading.Lock()
        self._tried: set[str] = set()
        self.failed: dict[str, str] = {}  # model id → why it did not load
        self.loads = 0  # loads attempted, for the tests: a failing model is tried once
        self._thread = threading.Thread(target=self._run, name="warmer", daemon=True)
        self._thread.start()

    def pending(self, model_ids: Iterable[str]) -> tuple[str, ...]:
        """Those of these models that are neither loaded nor tried yet: what a draft leaves out."""
        with self._lock:
            tried = set(self._tried)
        return tuple(m for m in model_ids if m not in tried and not self.runtime.is_loaded(m))

    def request(self, model_ids: Iterable[str]) -> None:
        """Load these models in the background (replacing a request not started yet)."""
        self._slot.put(tuple(model_ids))

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking requests and join the thread (a load under way is finished first: ORT cannot
        be interrupted mid-load)."""
        self._slot.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the model warmer did not stop within %.0f s", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            wanted = self._slot.take()
            if wanted is None:
                return
            todo = self.pending(wanted)  # a repeat of a request already served finds nothing to do
            for model_id in todo:
                if self._slot.closed:
                    return  # closing: start no further load
                self._warm(model_id)
            if todo and self._on_ready is not None:
                try:
                    self._on_ready(todo)
                except Exception:  # a receiver's bug must not end the warmer
                    log.exception("reporting the warmed models %s failed", ", ".join(todo))

    def _warm(self, model_id: str) -> None:
        self.loads += 1
        try:
            with self.runtime.session(model_id):  # loading a lease loads and warms the session
                pass
        except Exception as exc:  # noqa: BLE001 - the full render raises it again and reports it
            log.info("warming %s failed; the full preview will report it: %s", model_id, exc)
            self.failed[model_id] = str(exc)
        finally:
            with self._lock:
                self._tried.add(model_id)
