"""FacesPanel: the source photos (whose face is pasted) and the faces found in the current frame.

Sources: add with the button or by dropping image files; several photos of one person are combined
into one identity by the engine. Targets: thumbnails of the faces selected in the frame being shown,
cut from the frame the preview delivered (no model runs here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.faces.types import Face
from app.media.image_writer import IMAGE_SUFFIXES

THUMB = 96


def _icon(pixels: np.ndarray) -> QIcon:
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return QIcon(QPixmap.fromImage(image).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))


def _face_crop(frame: np.ndarray, face: Face) -> np.ndarray:
    x1, y1, x2, y2 = face.box
    pad = 0.2 * max(x2 - x1, y2 - y1)
    height, width = frame.shape[:2]
    left, top = max(0, int(x1 - pad)), max(0, int(y1 - pad))
    right, bottom = min(width, int(x2 + pad)), min(height, int(y2 + pad))
    return np.ascontiguousarray(frame[top:bottom, left:right])


class FacesPanel(QWidget):
    sources_changed = Signal(tuple)  # tuple[Path, ...]
    target_clicked = Signal(int)  # index among the current frame's faces

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.sources_list = QListWidget()
        self.sources_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.sources_list.setIconSize(QSize(THUMB, THUMB))
        self.sources_list.setToolTip(
            "Photos of the face to paste. Drop image files here; several photos of "
            "one person are combined into one identity."
        )
        add = QPushButton("Add source photos…")
        add.clicked.connect(self.choose_sources)
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_selected)
        self.targets_list = QListWidget()
        self.targets_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.targets_list.setIconSize(QSize(THUMB, THUMB))
        self.targets_list.setToolTip("The faces found in the frame shown")
        self.targets_list.itemClicked.connect(self._target_clicked)
        self.targets_label = QLabel("Faces in this frame: none yet")
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Source faces"))
        layout.addWidget(self.sources_list)
        layout.addLayout(buttons)
        layout.addWidget(self.targets_label)
        layout.addWidget(self.targets_list)
        self._sources: list[Path] = []

    @property
    def sources(self) -> tuple[Path, ...]:
        return tuple(self._sources)

    def add_sources(self, paths: Sequence[Path]) -> None:
        images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p not in self._sources]
        if not images:
            return
        for path in images:
            item = QListWidgetItem(QIcon(str(path)), path.name)
            item.setToolTip(str(path))
            self.sources_list.addItem(item)
        self._sources.extend(images)
        self.sources_changed.emit(self.sources)

    def set_targets(self, frame: np.ndarray, faces: Sequence[Face]) -> None:
        self.targets_list.clear()
        for number, face in enumerate(faces, start=1):
            self.targets_list.addItem(QListWidgetItem(_icon(_face_crop(frame, face)), f"face {number}"))
        self.targets_label.setText(f"Faces in this frame: {len(faces)}")

    def _target_clicked(self, item: QListWidgetItem) -> None:
        self.target_clicked.emit(self.targets_list.row(item))

    def choose_sources(self) -> None:
        suffixes = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        names, _ = QFileDialog.getOpenFileNames(self, "Source photos", "", f"Images ({suffixes})")
        self.add_sources([Path(n) for n in names])

    def _remove_selected(self) -> None:
        rows = sorted((self.sources_list.row(i) for i in self.sources_list.selectedItems()), reverse=True)
        for row in rows:
            self.sources_list.takeItem(row)
            del self._sources[row]
        if rows:
            self.sources_changed.emit(self.sources)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.add_sources([Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()])
        event.acceptProposedAction()
