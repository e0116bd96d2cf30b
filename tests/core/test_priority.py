"""Native threads made lower-priority through a niced opener thread (Linux), the caller untouched."""

from __future__ import annotations

import sys
import threading

import pytest

from app.core.priority import built_lower_priority, thread_nice

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values that threads inherit")


def _started_thread_nice() -> int:
    """Start a thread here and read its nice value (what a library's threads would get)."""
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(thread_nice()))
    worker.start()
    worker.join()
    return seen[0]


@linux_only
def test_threads_started_inside_inherit_the_lower_priority_and_the_caller_keeps_its_own() -> None:
    base = thread_nice()
    assert built_lower_priority(_started_thread_nice) == min(19, base + 10)
    assert built_lower_priority(_started_thread_nice, lower_by=3) == min(19, base + 3)
    assert thread_nice() == base
    assert _started_thread_nice() == base  # threads the caller starts afterwards are not affected


def test_without_lowering_it_runs_on_the_callers_thread() -> None:
    assert built_lower_priority(threading.get_native_id, lower_by=0) == threading.get_native_id()


@linux_only
def test_it_runs_elsewhere_and_hands_back_the_value_and_the_error() -> None:
    assert built_lower_priority(threading.get_native_id) != threading.get_native_id()

    def fails() -> None:
        raise OSError(f"cannot open /nowhere (nice {thread_nice()})")

    with pytest.raises(OSError, match="cannot open /nowhere"):
        built_lower_priority(fails)
