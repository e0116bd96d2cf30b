"""The status panel: a read-only log of user-level messages (info, warning, error) with their time.

`latest` carries the newest message so the main window can mirror it in its status bar. A message equal to
the one before it is counted ("… (×3)") instead of repeated, so a warning raised per frame cannot flood it.

`QtLogHandler` forwards WARNING and worse from the `app` logger to the panel. Records may come from any
thread: the handler only emits a signal of an object that lives on the GUI thread, and the queued
connection delivers it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.ui.messages import LEVELS, Level
from app.ui.theme import is_dark, level_colour

MAX_ENTRIES = 500
_ICONS = {
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
}


@dataclass(frozen=True)
class Entry:
    at: float  # seconds since the epoch, of the latest repeat
    level: Level
    text: str
    count: int = 1


def _level(value: str) -> Level:
    for level in LEVELS:
        if value == level:
            return level
    raise ValueError(f"message level '{value}' is not one of {', '.join(LEVELS)}")


class StatusPanel(QDockWidget):
    latest = Signal(str)

    def __init__(self, parent: QWidget | None = None, max_entries: int = MAX_ENTRIES) -> None:
        super().__init__("Messages", parent)
        self.setObjectName("status_panel")
        self.max_entries = max_entries
        self._entries: list[Entry] = []
        self._icons: dict[str, QIcon] = {}

        self.list = QListWidget()
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.setWidget(body)

    # ---- API ----------------------------------------------------------------------------------

    def add(self, text: str, level: str = "info") -> None:
        """Add a message ("info", "warning" or "error"); the oldest go beyond max_entries."""
        checked = _level(level)
        now = time.time()
        last = self._entries[-1] if self._entries else None
        if last is not None and last.text == text and last.level == checked:
            entry = Entry(now, checked, text, last.count + 1)
            self._entries[-1] = entry
            self._show(self.list.item(self.list.count() - 1), entry)
        else:
            entry = Entry(now, checked, text)
            self._entries.append(entry)
            item = QListWidgetItem()
            self._show(item, entry)
            at_bottom = self._at_bottom()
            self.list.addItem(item)
            excess = len(self._entries) - self.max_entries
            if excess > 0:
                del self._entries[:excess]
                for _ in range(excess):
                    self.list.takeItem(0)
            if at_bottom:
                self.list.scrollToBottom()
        self.latest.emit(text)

    def clear(self) -> None:
        self._entries.clear()
        self.list.clear()

    def entries(self) -> list[Entry]:
        """The messages shown, oldest first."""
        return list(self._entries)

    # ---- internals ----------------------------------------------------------------------------

    @Slot(str, str)
    def _add_from_log(self, text: str, level: str) -> None:
        self.add(text, level)

    def _at_bottom(self) -> bool:
        bar = self.list.verticalScrollBar()
        return bool(bar.value() >= bar.maximum() - 2)

    def _icon(self, level: str) -> QIcon:
        if level not in self._icons:
            self._icons[level] = self.style().standardIcon(_ICONS[level])
        return self._icons[level]

    def _show(self, item: QListWidgetItem, entry: Entry) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.at))
        repeat = f" (×{entry.count})" if entry.count > 1 else ""
        item.setText(f"{stamp}  {entry.text}{repeat}")
        item.setToolTip(entry.text)
        item.setIcon(self._icon(entry.level))
        item.setData(Qt.ItemDataRole.UserRole, entry.level)
        if entry.level != "info":
            app = QApplication.instance()
            dark = is_dark(app) if isinstance(app, QApplication) else False
            item.setForeground(level_colour(entry.level, dark))


# ---- logging → panel ----------------------------------------------------------------------------


class _LogBridge(QObject):
    """Lives on the GUI thread; its signal is the only thing the handler touches from other threads."""

    record = Signal(str, str)


class QtLogHandler(logging.Handler):
    """Forwards log records (WARNING and worse by default) to a StatusPanel, from any thread."""

    def __init__(self, panel: StatusPanel, level: int = logging.WARNING, skip: Collection[str] = ()) -> None:
        super().__init__(level)
        self.skip = tuple(skip)  # logger names (and their children) whose records are not shown
        self._bridge = _LogBridge()
        self._bridge.record.connect(panel._add_from_log, Qt.ConnectionType.QueuedConnection)

    def emit(self, record: logging.LogRecord) -> None:
        if any(record.name == name or record.name.startswith(name + ".") for name in self.skip):
            return
        if record.levelno >= logging.ERROR:
            level = "error"
        else:
            level = "warning" if record.levelno >= logging.WARNING else "info"
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a bad format string in a log call
            self.handleError(record)
            return
        try:
            self._bridge.record.emit(text, level)
        except RuntimeError:  # the bridge is gone (panel closed while a worker logged): drop it
            return


_installed: list[tuple[logging.Logger, QtLogHandler]] = []


def install(
    panel: StatusPanel,
    logger: str = "app",
    level: int = logging.WARNING,
    skip: Collection[str] = (),
) -> QtLogHandler:
    """Attach a QtLogHandler for `panel` to `logger`; call on the GUI thread. Removed again by
    `uninstall`, and by itself when the panel is destroyed."""
    handler = QtLogHandler(panel, level, skip)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    _installed.append((target, handler))
    panel.destroyed.connect(lambda *_: uninstall(handler))
    return handler


def uninstall(handler: QtLogHandler | None = None) -> None:
    """Detach `handler`, or every handler `install` attached when None."""
    for target, installed in list(_installed):
        if handler is None or installed is handler:
            target.removeHandler(installed)
            _installed.remove((target, installed))
            installed.close()
