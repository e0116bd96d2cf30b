"""Small controls the settings tabs share: a labelled slider over exact values, a combo box of Python
values, and a model picker that lists catalog entries and marks the ones not installed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from app.models.catalog import ModelEntry

T = TypeVar("T")
NOT_INSTALLED = "(not installed)"


class Slider(QWidget):
    """A horizontal slider with its value shown beside it. Positions are integers and the value is
    `position / divisor` (a correctly rounded division), so 40 with divisor 100 reads back as exactly 0.4;
    the label shows `value * scale` with `suffix` (40 %)."""

    value_changed = Signal(float)

    def __init__(
        self,
        minimum: int,
        maximum: int,
        tip: str,
        divisor: int = 100,
        scale: float = 100.0,
        suffix: str = "%",
    ) -> None:
        super().__init__()
        self.divisor = divisor
        self.scale = scale
        self.suffix = suffix
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(minimum, maximum)
        self.slider.setMinimumWidth(120)
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(48)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        self.setToolTip(tip)
        self.slider.setToolTip(tip)
        self.slider.valueChanged.connect(self._moved)
        self._show()

    def value(self) -> float:
        return self.slider.value() / self.divisor

    def set_value(self, value: float) -> None:
        self.slider.setValue(round(value * self.divisor))
        self._show()

    def _moved(self, _position: int) -> None:
        self._show()
        self.value_changed.emit(self.value())

    def _show(self) -> None:
        self.value_label.setText(f"{round(self.value() * self.scale, 2):g}{self.suffix}")


class ChoiceCombo(QComboBox, Generic[T]):
    """A combo box whose items carry Python values (None included); `set_value` of a value it does not
    list adds it, so a snapshot from elsewhere (another catalog, a newer preset) still round-trips."""

    def __init__(self, tip: str = "") -> None:
        super().__init__()
        self._values: list[T] = []
        self.setToolTip(tip)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

    def add(self, text: str, value: T, tip: str = "") -> None:
        self.addItem(text)
        self._values.append(value)
        if tip:
            self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def clear_values(self) -> None:
        self.clear()
        self._values.clear()

    def value(self) -> T:
        return self._values[self.currentIndex()]

    def values(self) -> list[T]:
        return list(self._values)

    def index_of(self, value: T) -> int:
        return self._values.index(value) if value in self._values else -1

    def set_value(self, value: T, unknown: str = "{} (unknown)") -> None:
        index = self.index_of(value)
        if index < 0:
            self.add(unknown.format(value), value)
            index = self.count() - 1
        self.setCurrentIndex(index)

    def set_enabled_values(self, allowed: Callable[[T], bool], why: str) -> None:
        """Grey out the items `allowed` refuses (they stay selectable from code: a loaded snapshot)."""
        model = self.model()
        if not isinstance(model, QStandardItemModel):
            return
        for row, value in enumerate(self._values):
            item = model.item(row)
            if item is not None:
                item.setEnabled(allowed(value))
                item.setToolTip("" if allowed(value) else why)


def model_text(entry: ModelEntry, installed: bool) -> str:
    text = f"{entry.name} ({entry.id})"
    return text if installed else f"{text} {NOT_INSTALLED}"


def model_tip(entry: ModelEntry) -> str:
    size = ("~" if not entry.size_exact else "") + f"{entry.size / 1e6:.0f} MB"
    licence = "non-commercial use only" if entry.non_commercial else f"licence: {entry.license.name}"
    return f"{entry.name}: {size}, {licence}." + (f" {entry.notes}" if entry.notes else "")


class ModelPicker(ChoiceCombo[str | None]):
    """Catalog models of one kind after a few fixed choices (None, "auto"…). A model that is not
    installed is marked but stays selectable: the engine says what is missing when it runs."""

    def __init__(self, entries: Iterable[ModelEntry], fixed: list[tuple[str, str | None]], tip: str) -> None:
        super().__init__(tip)
        self.entries = {entry.id: entry for entry in entries}
        for text, value in fixed:
            self.add(text, value)
        self._fixed = len(fixed)
        for entry in self.entries.values():
            self.add(model_text(entry, False), entry.id, model_tip(entry))

    def entry(self) -> ModelEntry | None:
        value = self.value()
        return self.entries.get(value) if value is not None else None

    def mark(self, installed: Callable[[str], bool]) -> None:
        for row, value in enumerate(self.values()):
            if value in self.entries:
                self.setItemText(row, model_text(self.entries[value], installed(value)))

    def set_value(self, value: str | None, unknown: str = "{} (not in the catalog)") -> None:
        super().set_value(value, unknown)


def labelled(text: str, tip: str) -> QLabel:
    label = QLabel(text)
    label.setToolTip(tip)
    return label
