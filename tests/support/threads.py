"""Run one piece of work on several threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_together(count: int, work: Callable[[int], T]) -> dict[int, T]:
    """work(0) … work(count - 1), each on its own thread, all started at once; results by index.
    The first failure in any thread is raised here, after every thread has finished."""
    start = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001  (re-raised below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
