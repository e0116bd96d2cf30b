"""Native worker threads that yield the cores to the frame pipeline's own threads.

x264 runs a thread per core for each segment it encodes. In bursts they take every core, and the
pipeline's threads (decode, analysis, swap workers, ordering), which each need a core for a moment
between GPU waits, queue behind them. On Linux a thread starts with the nice value of the thread that
creates it, so a library's threads can be made lower-priority by creating them on a short-lived thread
whose own nice value was raised: `built_lower_priority(open_encoder)`. They still get every core nobody
else wants, so an encoder that sets the pace keeps its speed.

Only native threads that never take the GIL should be made this way. A Python thread at low priority
that holds the GIL would make every other thread wait while it is preempted. The opener thread itself
holds it only while it opens.

Elsewhere (Windows, macOS: no per-thread nice value that new threads inherit) `build` just runs on the
caller's thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

LOWER_BY = 10  # nice steps added; CFS then gives a busy pipeline thread about 9x a niced thread's share


def thread_nice(native_id: int | None = None) -> int:
    """This (or that) thread's nice value; 0 where threads have none of their own."""
    if sys.platform != "linux":
        return 0
    return os.getpriority(os.PRIO_PROCESS, native_id or threading.get_native_id())


def built_lower_priority(build: Callable[[], T], lower_by: int = LOWER_BY) -> T:
    """`build()` on a thread of its own whose nice value is `lower_by` higher than the caller's, so the
    threads it starts inherit that; returns what it returns and raises what it raises. The caller
    waits for it. With `lower_by` 0, or off Linux, `build()` runs on the caller's thread."""
    if lower_by <= 0 or sys.platform != "linux":
        return build()
    nicer = min(19, thread_nice() + lower_by)

    def run() -> T:
        with contextlib.suppress(OSError):  # not allowed here (a sandbox): they keep the caller's priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nicer)
        return build()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lower-priority-opener") as opener:
        return opener.submit(run).result()  # raises what `build` raised
