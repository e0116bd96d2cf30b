"""Start the desktop app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_NAME
from app.core.errors import DoppelError
from app.models.context import build_context
from app.ui.main_window import MainWindow
from app.ui.theme import apply_dark_theme


def _check_display() -> None:
    """Qt aborts the process without a display; say so in words instead (exit 1)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DoppelError(
            "No display found (DISPLAY and WAYLAND_DISPLAY are unset), so the desktop app cannot open. "
            "Use the commands instead (`python main.py --help`), or set QT_QPA_PLATFORM=offscreen."
        )


def run_gui(
    models_dir: Path | None = None,
    extra_catalogs: list[Path] | None = None,
    open_media: Path | None = None,
    screenshot: Path | None = None,
) -> int:
    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed to render the window
    _check_display()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    apply_dark_theme(app)
    try:
        ctx = build_context(models_dir, extra_catalogs)
    except DoppelError as exc:
        if screenshot is not None:
            raise
        QMessageBox.critical(None, APP_NAME, str(exc))
        return 1
    window = MainWindow(ctx)
    window.show()
    if open_media is not None and window.open_media(open_media) is None and screenshot is not None:
        window.close()
        raise DoppelError(f"Cannot open {open_media} for the screenshot")
    if screenshot is not None:
        return _screenshot(app, window, screenshot, wait=open_media is not None)
    return int(app.exec())


def _screenshot(app: QApplication, window: MainWindow, out: Path, wait: bool) -> int:
    """Wait for the first frame (up to a minute), render the window to `out`, close."""
    if wait:
        loop = QEventLoop()
        window.controller.frame_ready.connect(loop.quit)
        window.controller.failed.connect(loop.quit)
        QTimer.singleShot(60_000, loop.quit)
        loop.exec()
    app.processEvents()
    image = window.grab()
    window.close()
    app.processEvents()
    if not image.save(str(out)):
        raise DoppelError(f"Cannot write the screenshot {out}")
    return 0
