"""Start the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_NAME
from app.core.errors import DoppelError
from app.models.context import build_context
from app.ui.main_window import MainWindow


def run_gui(models_dir: Path | None = None, extra_catalogs: list[Path] | None = None) -> int:
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
