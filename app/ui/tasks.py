"""Run blocking engine work off the GUI thread; results come back as signals (DESIGN: no inference,
no downloads, no hashing on the GUI thread)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.errors import DoppelError


class _Worker(QObject):
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__()
        self._work = work

    @Slot()
    def run(self) -> None:
        try:
            result = self._work()
        except DoppelError as exc:  # user-facing: shown in words; anything else is a bug and propagates
            self.failed.emit(str(exc))
            return
        self.done.emit(result)


class BackgroundTask(QObject):
    """One callable on its own QThread. `finished` fires after done/failed, once the thread stopped."""

    done = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, work: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("doppel-task")
        self._worker = _Worker(work)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)

    def start(self) -> None:
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ends (used on close); True if it did."""
        self._thread.quit()
        return bool(self._thread.wait(timeout_ms))

    def _stop(self) -> None:
        self._thread.quit()
        self._thread.wait()
        self.finished.emit()

    @Slot(object)
    def _on_done(self, result: object) -> None:
        self.done.emit(result)
        self._stop()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)
        self._stop()
