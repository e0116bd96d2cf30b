"""The contract of a settings tab: show a snapshot (`load`), and fold its controls into one (`build`).

A tab emits `edited` whenever the user moves one of its controls; the panel blocks the tab's signals
while it loads a snapshot, so loading never reads as an edit. `build` constructs the tab's part through
the settings models, so a value they refuse raises their ValidationError/ValueError for the panel to show.
"""

from __future__ import annotations

from abc import abstractmethod

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QVBoxLayout, QWidget

from app.pipeline.settings import PipelineSettings


class SettingsTab(QWidget):
    edited = Signal()
    title = ""

    def __init__(self) -> None:
        super().__init__()
        outer = QVBoxLayout(self)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(self.form)
        outer.addStretch(1)

    def add_row(self, label: str, field: QWidget, tip: str) -> None:
        field.setToolTip(field.toolTip() or tip)
        self.form.addRow(label, field)
        label_widget = self.form.labelForField(field)
        if label_widget is not None:
            label_widget.setToolTip(tip)

    def emit_edited(self, *_args: object) -> None:
        self.edited.emit()

    # The contract every tab implements. Qt's metaclass rules out abc.ABC on a QWidget, but mypy still
    # honours @abstractmethod: a tab that leaves one out cannot be instantiated (a type error).

    @abstractmethod
    def load(self, settings: PipelineSettings) -> None:
        """Show `settings` in this tab's controls."""

    @abstractmethod
    def build(self, settings: PipelineSettings) -> PipelineSettings:
        """`settings` with this tab's part replaced by what its controls show."""


def with_processing(settings: PipelineSettings, **parts: object) -> PipelineSettings:
    """`settings` with some of its processing sections (swap, restore, mask, colour, blend) replaced."""
    processing = settings.processing.model_copy(update=parts)
    return settings.model_copy(update={"processing": processing})
