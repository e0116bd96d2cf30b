"""FacesPanel: the people to paste (source identities) and the faces found in the current frame.

Sources: each person is one or more photos and saved identity files, combined (mean or median) into
one identity by the engine. Add photos with the buttons or by dropping image files (onto the selected
person, or a new one); load and save identities as files. The selected person is pasted on every
selected face, except faces assigned a person of their own.

Targets: thumbnails of the faces selected in the frame being shown, cut from the frame the preview
delivered (no model runs here). Clicking one asks for the selected person to be pasted on it and on
faces like it (reference mode); each label says who it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.faces.identity import Combine, Identity, IdentityFileError
from app.faces.types import Face
from app.media.image_writer import IMAGE_SUFFIXES
from app.pipeline.settings import SourceFace
from app.pipeline.sources import IDENTITY_SUFFIX, is_identity_file
from app.ui.studio_settings import last_folder, remember_folder

THUMB = 96
SAVED_SUFFIX = ".identity" + IDENTITY_SUFFIX  # what "Save identity" writes: NAME.identity.json


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


@dataclass(frozen=True)
class Person:
    """One source identity as the panel shows it."""

    name: str
    face: SourceFace

    def describe(self) -> str:
        photos = sum(not is_identity_file(f) for f in self.face.files)
        files = len(self.face.files) - photos
        parts = [f"{photos} photo{'s' * (photos != 1)}"] if photos else []
        parts += [f"{files} identity file{'s' * (files != 1)}"] if files else []
        return f"{self.name}\n{', '.join(parts)} · {(self.face.combine or Combine.MEAN).value}"


class FacesPanel(QWidget):
    source_changed = Signal(object)  # SourceFace of the selected person (empty when there is none)
    target_clicked = Signal(int)  # index among the current frame's faces
    save_requested = Signal(object, str, object)  # SourceFace, name, Path: the window embeds and writes
    clear_requested = Signal()  # forget which face gets whom
    person_changed = Signal(object, object)  # SourceFace before, after: assigned faces follow
    message = Signal(str, str)  # text, level

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.people: list[Person] = []
        self.people_list = QListWidget()
        self.people_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.people_list.setIconSize(QSize(THUMB, THUMB))
        self.people_list.setWordWrap(True)
        self.people_list.setToolTip(
            "People to paste. Drop photos here (several photos of one person make a steadier identity); "
            "the selected person is pasted on every face without one of its own."
        )
        self.people_list.currentRowChanged.connect(self._on_selected)
        self.combine = QComboBox()
        self.combine.addItems(["mean", "median"])
        self.combine.setToolTip("How the photos combine: the median resists one odd photo")
        self.combine.currentTextChanged.connect(self._on_combine)
        buttons = QGridLayout()
        for row, column, text, slot in (
            (0, 0, "New person…", self.choose_new_person),
            (0, 1, "Add photos…", self.choose_photos),
            (1, 0, "Load identity…", self.choose_identity_files),
            (1, 1, "Save identity…", self.choose_save_path),
            (2, 0, "Remove", self.remove_selected),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button, row, column)
        buttons.addWidget(self.combine, 2, 1)
        self.targets_list = QListWidget()
        self.targets_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.targets_list.setIconSize(QSize(THUMB, THUMB))
        self.targets_list.setToolTip(
            "The faces found in the frame shown. Click one to paste the selected person on it "
            "(and on faces like it) only."
        )
        self.targets_list.itemClicked.connect(self._target_clicked)
        self.targets_label = QLabel("Faces in this frame: none yet")
        clear = QPushButton("Swap every face again")
        clear.setToolTip("Forget which face gets whom: every face gets the selected person")
        clear.clicked.connect(self.clear_requested.emit)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Source faces"))
        layout.addWidget(self.people_list)
        layout.addLayout(buttons)
        layout.addWidget(self.targets_label)
        layout.addWidget(self.targets_list)
        layout.addWidget(clear)

    # -- people ------------------------------------------------------------------------------------

    @property
    def selected(self) -> Person | None:
        row = self.people_list.currentRow()
        return self.people[row] if 0 <= row < len(self.people) else None

    @property
    def source(self) -> SourceFace:
        person = self.selected
        return person.face if person is not None else SourceFace()

    def name_of(self, face: SourceFace) -> str | None:
        return next((person.name for person in self.people if person.face == face), None)

    def add_photos(self, paths: Sequence[Path], new_person: bool = False) -> None:
        """Add image files to the selected person (a new one when asked, or when there is none)."""
        images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            return
        person = None if new_person else self.selected
        if person is None:
            self._add(Person(images[0].stem, SourceFace(files=tuple(dict.fromkeys(images)))))
            return
        files = tuple(dict.fromkeys([*person.face.files, *images]))
        self._update(replace(person, face=person.face.model_copy(update={"files": files})))

    def load_identities(self, paths: Sequence[Path]) -> None:
        """Each identity file becomes a person; a file that is not one is reported, the rest load."""
        for path in paths:
            try:
                identity = Identity.load(path)
            except IdentityFileError as exc:
                self.message.emit(str(exc), "error")
                continue
            self._add(Person(identity.name, SourceFace(files=(path,), combine=identity.method)))
            self.message.emit(f"Loaded identity '{identity.name}' from {path.name}", "info")

    def rename_selected(self, name: str) -> None:
        person = self.selected
        if person is not None and name.strip():
            self._update(replace(person, name=name.strip()))

    def remove_selected(self) -> None:
        row = self.people_list.currentRow()
        if 0 <= row < len(self.people):
            del self.people[row]
            self.people_list.takeItem(row)
            self._on_selected(self.people_list.currentRow())

    def save_selected(self, path: Path) -> None:
        """Ask the window to save the selected person as an identity file at `path`."""
        person = self.selected
        if person is None:
            self.message.emit("Choose a person to save first", "error")
            return
        if not path.name.endswith(IDENTITY_SUFFIX):
            path = path.with_name(path.name + SAVED_SUFFIX)
        self.save_requested.emit(person.face, person.name, path)

    def stored(self) -> dict[str, object]:
        """The people and the selected one, as the studio keeps them between launches."""
        people = [
            {"name": p.name, "files": [str(f) for f in p.face.files], "combine": p.face.combine}
            for p in self.people
        ]
        return {"people": people, "selected": self.people_list.currentRow()}

    def restore(self, stored: object) -> None:
        """The people of the last launch; files that are gone are left out (and said so)."""
        if not isinstance(stored, dict) or not isinstance(stored.get("people"), list):
            return
        for entry in stored["people"]:
            try:
                files = tuple(Path(f) for f in entry["files"])
                combine = Combine(entry["combine"]) if entry.get("combine") else None
                name = str(entry["name"])
            except (KeyError, TypeError, ValueError):
                continue
            kept = tuple(f for f in files if f.is_file())
            if len(kept) < len(files):
                gone = ", ".join(str(f) for f in files if f not in kept)
                self.message.emit(f"{name}: these source files are gone: {gone}", "warning")
            if kept:
                self._add(Person(name, SourceFace(files=kept, combine=combine)))
        selected = stored.get("selected")
        if isinstance(selected, int) and 0 <= selected < len(self.people):
            self.people_list.setCurrentRow(selected)

    # -- dialogs -----------------------------------------------------------------------------------

    def choose_new_person(self) -> None:
        self.add_photos(self._open_images("Photos of one person"), new_person=True)

    def choose_photos(self) -> None:
        self.add_photos(self._open_images("More photos of this person"))

    def choose_identity_files(self) -> None:
        kinds = f"Identities (*{IDENTITY_SUFFIX})"
        names, _ = QFileDialog.getOpenFileNames(self, "Load identities", last_folder("identities"), kinds)
        if names:
            remember_folder("identities", Path(names[0]))
        self.load_identities([Path(n) for n in names])

    def choose_save_path(self) -> None:
        person = self.selected
        if person is None:
            self.message.emit("Choose a person to save first", "error")
            return
        name, ok = QInputDialog.getText(self, "Save identity", "Name", text=person.name)
        if not ok:
            return
        self.rename_selected(name)
        suggested = str(Path(last_folder("identities")) / f"{self.source_name()}{SAVED_SUFFIX}")
        kinds = f"Identities (*{IDENTITY_SUFFIX})"
        path, _ = QFileDialog.getSaveFileName(self, "Save identity", suggested, kinds)
        if path:
            remember_folder("identities", Path(path))
            self.save_selected(Path(path))

    def source_name(self) -> str:
        person = self.selected
        return person.name if person is not None else "identity"

    def _open_images(self, title: str) -> list[Path]:
        suffixes = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        names, _ = QFileDialog.getOpenFileNames(self, title, last_folder("photos"), f"Images ({suffixes})")
        if names:
            remember_folder("photos", Path(names[0]))
        return [Path(n) for n in names]

    # -- targets -----------------------------------------------------------------------------------

    def set_targets(self, frame: np.ndarray, faces: Sequence[Face], labels: Sequence[str] = ()) -> None:
        """Every face found in the frame shown, with `labels[i]` saying what face i gets."""
        self.targets_list.clear()
        for number, face in enumerate(faces, start=1):
            text = labels[number - 1] if number - 1 < len(labels) else f"face {number}"
            self.targets_list.addItem(QListWidgetItem(_icon(_face_crop(frame, face)), text))
        left = sum(label.endswith("(left alone)") for label in labels)
        swapped = f", {len(faces) - left} swapped" if left else ""
        self.targets_label.setText(f"Faces in this frame: {len(faces)}{swapped}")

    def _target_clicked(self, item: QListWidgetItem) -> None:
        self.target_clicked.emit(self.targets_list.row(item))

    # -- internals ---------------------------------------------------------------------------------

    def _add(self, person: Person) -> None:
        self.people.append(person)
        self.people_list.addItem(self._item(person))
        self.people_list.setCurrentRow(len(self.people) - 1)  # emits source_changed

    def _update(self, person: Person) -> None:
        row = self.people_list.currentRow()
        old = self.people[row].face
        self.people[row] = person
        if old != person.face:
            self.person_changed.emit(old, person.face)
        item = self._item(person)
        self.people_list.item(row).setText(item.text())
        self.people_list.item(row).setIcon(item.icon())
        self.people_list.item(row).setToolTip(item.toolTip())
        self.source_changed.emit(person.face)

    def _item(self, person: Person) -> QListWidgetItem:
        photo = next((f for f in person.face.files if not is_identity_file(f)), None)
        icon = (
            QIcon(str(photo))
            if photo is not None
            else self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView)
        )
        item = QListWidgetItem(icon, person.describe())
        item.setToolTip("\n".join(str(f) for f in person.face.files))
        return item

    def _on_selected(self, row: int) -> None:
        person = self.selected
        self.combine.blockSignals(True)
        self.combine.setCurrentText(person.face.combine.value if person and person.face.combine else "mean")
        self.combine.blockSignals(False)
        self.source_changed.emit(self.source)

    def _on_combine(self, text: str) -> None:
        person = self.selected
        if person is not None:
            self._update(replace(person, face=person.face.model_copy(update={"combine": Combine(text)})))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        self.load_identities([p for p in paths if is_identity_file(p)])
        self.add_photos(paths)
        event.acceptProposedAction()
