"""Shorter GIL hand-offs while the frame pipeline's threads run.

CPython makes a thread that wants the GIL wait up to the switch interval (5 ms by default) while
another thread runs Python code. The pipeline's threads (decode, analysis, swap workers, encoders) each
hold it briefly and then wait in CUDA, ONNX Runtime or FFmpeg, so at 5 ms a thread coming back from a
GPU wait often idles a whole interval behind one that is busy: on the H200 bench, 1 ms took steady
export from 72 to 82 fps (0.2 ms measured the same as 1 ms).

The interval is the process's, so nested and concurrent users (an export while live mode runs) share
one: the first in sets it, the last out restores what was there before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PIPELINE_SWITCH_INTERVAL_S = 0.001

_lock = threading.Lock()
_users = 0
_saved: float | None = None


@contextmanager
def pipeline_switch_interval(seconds: float = PIPELINE_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Within the block the interpreter switches threads at most `seconds` apart (never longer than
    it already did)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(seconds, _saved))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                sys.setswitchinterval(_saved)
                _saved = None
