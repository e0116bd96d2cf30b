"""Presets: the built-in Fast / Balanced / Quality starting points and the user's saved presets.

A view only: it asks for actions through signals and the panel carries them out (it owns the snapshot).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.pipeline.presets import Preset

PRESET_TIPS = {
    Preset.FAST: "Small detector input, landmarks off, detect every 3rd frame: for live use and slow GPUs.",
    Preset.BALANCED: "A 256 px pixel boost, soft masks and colour matching: a good default.",
    Preset.QUALITY: "512 px pixel boost, face restoration, occlusion mask, landmarks on every frame: "
    "for final exports. Models that are not installed are left out and listed below.",
}


class PresetsTab(QWidget):
    preset_chosen = Signal(object)  # Preset
    save_requested = Signal()
    load_requested = Signal(str)
    delete_requested = Signal(str)
    title = "Presets"

    def __init__(self) -> None:
        super().__init__()
        self.buttons: dict[Preset, QPushButton] = {}
        built_in = QGroupBox("Built-in")
        row = QHBoxLayout(built_in)
        for preset in Preset:
            button = QPushButton(preset.value.capitalize())
            button.setToolTip(PRESET_TIPS[preset] + " Your swapper choice is kept.")
            button.clicked.connect(lambda _checked=False, p=preset: self.preset_chosen.emit(p))
            self.buttons[preset] = button
            row.addWidget(button)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setToolTip("What the last preset left out, and why.")

        mine = QGroupBox("My presets")
        self.user_list = QListWidget()
        self.user_list.setToolTip("Presets you saved. Double-click one to load it.")
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Save every setting on these tabs as a preset of your own.")
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Apply the selected preset.")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected preset file.")
        actions = QHBoxLayout()
        for button in (self.save_button, self.load_button, self.delete_button):
            actions.addWidget(button)
        actions.addStretch(1)
        mine_layout = QVBoxLayout(mine)
        mine_layout.addWidget(self.user_list)
        mine_layout.addLayout(actions)

        layout = QVBoxLayout(self)
        layout.addWidget(built_in)
        layout.addWidget(self.notes)
        layout.addWidget(mine, 1)

        self.save_button.clicked.connect(self.save_requested)
        self.load_button.clicked.connect(self._load_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        self.user_list.itemDoubleClicked.connect(self._load_selected)
        self.user_list.currentRowChanged.connect(self._follow)
        self._follow()

    def selected(self) -> str | None:
        item = self.user_list.currentItem()
        return item.text() if item is not None else None

    def show_names(self, names: list[str], select: str | None = None) -> None:
        self.user_list.clear()
        self.user_list.addItems(names)
        if select in names:
            self.user_list.setCurrentRow(names.index(select))
        self._follow()

    def show_notes(self, notes: list[str]) -> None:
        self.notes.setText("\n".join(notes))

    def _follow(self, *_args: object) -> None:
        chosen = self.selected() is not None
        self.load_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)

    def _load_selected(self, *_args: object) -> None:
        name = self.selected()
        if name is not None:
            self.load_requested.emit(name)

    def _delete_selected(self) -> None:
        name = self.selected()
        if name is not None:
            self.delete_requested.emit(name)
