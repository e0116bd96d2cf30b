"""The status panel, the log handler that feeds it from any thread, and the dark theme."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from app.ui import status_panel
from app.ui.status_panel import QtLogHandler, StatusPanel
from app.ui.theme import apply_dark_theme, is_dark


@pytest.fixture
def panel(qtbot) -> StatusPanel:
    widget = StatusPanel(max_entries=20)
    qtbot.addWidget(widget)
    return widget


def test_entries_are_capped_and_latest_is_emitted(qtbot, panel: StatusPanel) -> None:
    seen: list[str] = []
    panel.latest.connect(seen.append)
    for i in range(25):
        panel.add(f"message {i}", "warning" if i % 2 else "info")
    assert len(panel.entries()) == 20 == panel.list.count()
    assert panel.entries()[0].text == "message 5"
    assert panel.list.item(19).text().endswith("message 24")
    assert seen[-1] == "message 24"
    assert len(seen) == 25
    panel.clear()
    assert panel.entries() == [] and panel.list.count() == 0


def test_repeats_are_counted_not_repeated(panel: StatusPanel) -> None:
    for _ in range(3):
        panel.add("GPU busy", "warning")
    panel.add("GPU busy", "error")  # another level is another message
    assert [(e.text, e.level, e.count) for e in panel.entries()] == [
        ("GPU busy", "warning", 3),
        ("GPU busy", "error", 1),
    ]
    assert panel.list.item(0).text().endswith("GPU busy (×3)")


def test_unknown_level_is_refused(panel: StatusPanel) -> None:
    with pytest.raises(ValueError, match="not one of info, warning, error"):
        panel.add("x", "debug")


def test_warning_from_a_worker_thread_reaches_the_panel(qtbot, panel: StatusPanel) -> None:
    handler = status_panel.install(panel)
    logger = logging.getLogger("app.inference.test_worker")
    try:

        def work() -> None:
            logger.info("not shown")
            logger.warning("TensorRT engine build failed for %s", "inswapper")
            logger.error("export stopped")

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: len(panel.entries()) == 2, timeout=5000)
        assert [(e.level, e.text) for e in panel.entries()] == [
            ("warning", "TensorRT engine build failed for inswapper"),
            ("error", "export stopped"),
        ]
    finally:
        status_panel.uninstall(handler)
    assert handler not in logging.getLogger("app").handlers
    logger.warning("after uninstall")
    qtbot.wait(20)
    assert len(panel.entries()) == 2


def test_skipped_loggers_are_not_shown(qtbot, panel: StatusPanel) -> None:
    status_panel.install(panel, skip=("app.inference.fallbacks",))
    try:
        logging.getLogger("app.inference.fallbacks").warning("shown elsewhere in plain words")
        logging.getLogger("app.media").warning("decoder slow")
        qtbot.waitUntil(lambda: len(panel.entries()) == 1, timeout=5000)
        assert panel.entries()[0].text == "decoder slow"
    finally:
        status_panel.uninstall()
    assert not any(isinstance(h, QtLogHandler) for h in logging.getLogger("app").handlers)


@pytest.fixture
def restored_theme(qapp: QApplication) -> Iterator[QApplication]:
    palette, style = QPalette(qapp.palette()), qapp.style().name()
    options = {k: pg.getConfigOption(k) for k in ("background", "foreground")}
    yield qapp
    qapp.setPalette(palette)
    qapp.setStyle(style)
    pg.setConfigOptions(**options)


def test_dark_theme(restored_theme: QApplication) -> None:
    app = restored_theme
    apply_dark_theme(app)
    assert app.style().name().lower() == "fusion"
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 64
    assert is_dark(app)
    assert pg.mkColor(pg.getConfigOption("background")).lightness() < 64
