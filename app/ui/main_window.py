"""The main window. For now it hosts the model manager; the studio views arrive with the GUI issue."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

from app import APP_NAME, __version__
from app.models.context import AppContext
from app.ui.model_manager import ModelManager


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.resize(1100, 720)
        self.model_manager = ModelManager(ctx)
        self.model_manager.message.connect(self.statusBar().showMessage)
        intro = QLabel(
            "Doppel needs its models before it can swap faces. Download the default set, or pick models "
            "below. Only use faces of people who have agreed to it, and follow the law where you live."
        )
        intro.setWordWrap(True)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(intro)
        layout.addWidget(self.model_manager)
        self.setCentralWidget(central)
        present = sum(s.usable for s in ctx.store.statuses())
        self.statusBar().showMessage(f"{present} of {len(ctx.catalog)} models present.")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.model_manager.shutdown()  # cancel downloads (parts kept) and join the worker thread
        super().closeEvent(event)
