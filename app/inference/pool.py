"""SessionPool: loaded sessions kept for reuse, least recently used first out.

Keyed by model, provider, precision and device. Bounded by a count and by byte budgets (GPU memory for
sessions on the GPU, host memory for CPU sessions). A session in use is never closed under its user: the
pool leases sessions, and one evicted while leased is closed when its last lease ends. Loading happens
outside the pool's lock, once per key however many threads ask at the same moment.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from app.inference.providers import Precision, Provider
from app.inference.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionKey:
    model_id: str
    provider: Provider
    precision: Precision
    device_index: int

    def moved_to(self, provider: Provider) -> SessionKey:
        return SessionKey(self.model_id, provider, self.precision, self.device_index)


@dataclass(frozen=True)
class PoolLimits:
    max_sessions: int = 8
    vram_budget_bytes: int | None = None
    host_budget_bytes: int | None = None


class _Slot:
    def __init__(self, key: SessionKey, session: Session) -> None:
        self.key = key  # where the pool files it: always the session's current provider
        self.session = session
        self.leases = 0
        self.evicted = False


Loader = Callable[[SessionKey], Session]


class SessionPool:
    def __init__(self, loader: Loader, limits: PoolLimits) -> None:
        self._loader = loader
        self.limits = limits
        self._slots: OrderedDict[SessionKey, _Slot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[SessionKey, threading.Lock] = {}
        self.evictions = 0

    @contextmanager
    def lease(self, key: SessionKey) -> Iterator[Session]:
        slot = self._checkout(key)
        try:
            yield slot.session
        finally:
            self._checkin(slot)

    def session_keys(self) -> list[SessionKey]:
        """Least recently used first."""
        with self._lock:
            return list(self._slots)

    def sessions(self) -> list[Session]:
        with self._lock:
            return [slot.session for slot in self._slots.values()]

    def bytes_in_use(self, on_gpu: bool) -> int:
        with self._lock:
            return self._bytes(on_gpu)

    def clear(self) -> None:
        with self._lock:
            doomed = list(self._slots.values())
            self._slots.clear()
        for slot in doomed:
            self._retire(slot)
        _release_memory()

    def discard(self, model_id: str) -> None:
        """Close this model's sessions (those leased now close when handed back); the next lease loads
        it afresh."""
        with self._lock:
            doomed = [slot for key, slot in self._slots.items() if key.model_id == model_id]
            for slot in doomed:
                del self._slots[slot.key]
        for slot in doomed:
            self._retire(slot)
        if doomed:
            _release_memory()

    # -- internals -------------------------------------------------------------------------------

    def _checkout(self, key: SessionKey) -> _Slot:
        with self._lock:
            slot = self._find(key)
            if slot is not None:
                slot.leases += 1
                return slot
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per key; others wait for it, then find it
            with self._lock:
                slot = self._find(key)
                if slot is not None:
                    slot.leases += 1
                    return slot
            session = self._loader(key)  # slow: outside the pool's lock
            with self._lock:
                self._loading.pop(key, None)
                slot = _Slot(key, session)
                slot.leases = 1
                doomed = [*self._file(slot), *self._over_limits(keep=slot)]
        for victim in doomed:
            self._retire(victim)
        if doomed:
            _release_memory()
        return slot

    def _find(self, key: SessionKey) -> _Slot | None:
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
        return slot

    def _file(self, slot: _Slot) -> list[_Slot]:
        """File the slot under its session's current provider (it moves after a fallback); returns a
        different slot it displaced from that key, which the caller retires."""
        if self._slots.get(slot.key) is slot:
            del self._slots[slot.key]
        slot.key = slot.key.moved_to(slot.session.provider)
        displaced = self._slots.pop(slot.key, None)
        self._slots[slot.key] = slot
        return [displaced] if displaced is not None and displaced is not slot else []

    def _checkin(self, slot: _Slot) -> None:
        with self._lock:
            slot.leases -= 1
            close_now = slot.evicted and slot.leases == 0
            moved = not slot.evicted and slot.key.provider is not slot.session.provider
            doomed = [*(self._file(slot) if moved else []), *self._over_limits(keep=None)]
        if close_now:
            slot.session.close()
        for victim in doomed:
            self._retire(victim)
        if close_now or doomed:
            _release_memory()

    def _bytes(self, on_gpu: bool) -> int:
        return sum(
            s.session.footprint_bytes for s in self._slots.values() if s.session.provider.on_gpu == on_gpu
        )

    def _over_limits(self, keep: _Slot | None) -> list[_Slot]:
        """Remove least recently used slots (never `keep`) until count and budgets hold. Called under
        the lock; the caller closes what is returned, outside it."""
        doomed: list[_Slot] = []

        def too_many() -> bool:
            gpu, host = self.limits.vram_budget_bytes, self.limits.host_budget_bytes
            return (
                len(self._slots) > self.limits.max_sessions
                or (gpu is not None and self._bytes(True) > gpu)
                or (host is not None and self._bytes(False) > host)
            )

        for key in list(self._slots):
            if not too_many():
                break
            slot = self._slots[key]
            if slot is keep:
                continue
            del self._slots[key]
            doomed.append(slot)
            self.evictions += 1
            log.info("pool: evicting %s on %s", key.model_id, slot.session.provider.label)
        if too_many():
            log.warning(
                "pool: over its limits with %d sessions (the newest alone exceeds a budget)", len(self._slots)
            )
        return doomed

    def _retire(self, slot: _Slot) -> None:
        with self._lock:
            slot.evicted = True
            in_use = slot.leases > 0
        if not in_use:
            slot.session.close()


def _release_memory() -> None:
    """Closed sessions free ORT's arenas when collected; torch's cached output buffers go back too."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
