from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

# The real SCRFD and the swapper stand-ins, one runtime per test module (the export and live panels').
from tests.pipeline.conftest import runtime  # noqa: F401

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _no_qt_threads_or_timers_left(qapp: object) -> Iterator[None]:
    """Fail any Qt test that leaves a QThread running or a QTimer active behind it."""
    from PySide6.QtCore import QThread, QTimer

    yield
    gc.collect()
    # type(), not isinstance: some objects (torch.distributed.reduce_op) warn when asked their __class__
    running = [o for o in gc.get_objects() if issubclass(type(o), QThread) and o.isRunning()]
    active = [o for o in gc.get_objects() if issubclass(type(o), QTimer) and o.isActive()]
    assert not running, f"QThreads left running: {running}"
    assert not active, f"QTimers left active: {active}"
