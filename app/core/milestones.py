"""When this process reached each step of its start-up, as wall-clock times (time.time()).

A launcher (the benchmark's whole-command runs) subtracts its own launch time to see where a start
goes: arguments parsed, the engine imported, each model loaded, graphs captured, the first frame out.
Only the first time a name is marked counts; marking is a dict write under a lock, cheap enough to
leave on in every run.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_marks: dict[str, float] = {}


def mark(name: str, at: float | None = None) -> None:
    """`name` reached now (or at the wall-clock time `at`), unless it was reached before."""
    with _lock:
        _marks.setdefault(name, time.time() if at is None else at)


def snapshot() -> dict[str, float]:
    """Every milestone so far, in the order they were reached."""
    with _lock:
        return dict(sorted(_marks.items(), key=lambda item: item[1]))
