"""Start the desktop app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_NAME
from app.core.errors import DoppelError
from app.models.context import build_context
from app.ui.main_window import MainWindow


def _check_display() -> None:
    """Qt aborts the process without a display; say so in words instead (exit 1)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DoppelError(
            "No display found (DISPLAY and WAYLAND_DISPLAY are unset), so the desktop app cannot open. "
            "Use the commands instead (`python main.py --help`), or set QT_QPA_PLATFORM=offscreen."
        )


def run_gui(models_dir: Path | None = None, extra_catalogs: list[Path] | None = None) -> int:
    _check_display()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    try:
        ctx = build_context(models_dir, extra_catalogs)
    except DoppelError as exc:
        QMessageBox.critical(None, APP_NAME, str(exc))
        return 1
    window = MainWindow(ctx)
    window.show()
    return int(app.exec())
