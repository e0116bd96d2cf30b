"""The timeline: a scrub slider with transport buttons, a frame/time readout and per-frame markers.

It only says what the user asked for (a frame, play or pause, a marker here) and shows what it is told;
playback timing and what a marker means belong to the app. So it owns no QTimer, and calls that merely
mirror the app's state (set_position, set_playing) emit nothing, which keeps the app from answering its
own echo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRect, Qt, Signal, Slot
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)

MARKER_COLOR = QColor(255, 152, 0)


def format_time(seconds: float) -> str:
    """00:04.00 under an hour, 1:02:03.50 above."""
    centis = round(seconds * 100)
    minutes, centis = divmod(centis, 6000)
    hours, minutes = divmod(minutes, 60)
    clock = f"{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"
    return f"{hours}:{clock}" if hours else clock


class _MarkerSlider(QSlider):
    """A horizontal slider that paints markers on its track and jumps to where the track is clicked
    (a video scrubber, not a page-stepper)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.markers: frozenset[int] = frozenset()

    def _geometry(self) -> tuple[QRect, QRect]:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        style = self.style()
        groove = style.subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, self
        )
        handle = style.subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, self
        )
        return groove, handle

    def x_of(self, value: int) -> float:
        """The x (widget pixels) where the handle's centre sits at `value`."""
        groove, handle = self._geometry()
        span = max(1, groove.width() - handle.width())
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span)
        return groove.x() + handle.width() / 2 + offset

    def value_at(self, x: float) -> int:
        groove, handle = self._geometry()
        span = max(1, groove.width() - handle.width())
        pos = round(x - groove.x() - handle.width() / 2)
        return QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), pos, span)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.isEnabled():
            _, handle = self._geometry()
            if not handle.contains(event.position().toPoint()):
                self.setValue(self.value_at(event.position().x()))  # then the press below grabs the handle
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        shown = [m for m in self.markers if self.minimum() <= m <= self.maximum()]
        if not shown or not self.isEnabled():
            return
        groove, _ = self._geometry()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(MARKER_COLOR)
        top, bottom = groove.top() - 3.0, groove.bottom() + 4.0
        for marker in shown:
            x = self.x_of(marker)
            # A downward notch above the track and a bar through it: visible under the handle's edges too.
            painter.drawPolygon([QPointF(x - 4, top - 4), QPointF(x + 4, top - 4), QPointF(x, top)])
            painter.drawRect(int(x) - 1, int(top), 2, int(bottom - top))
        painter.end()


class Timeline(QWidget):
    """Scrub slider + transport. Emits requests; the app decides what happens and mirrors it back."""

    position_requested = Signal(int)
    play_toggled = Signal(bool)
    marker_toggled = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frames = 0
        self._fps = 0.0
        self._mirroring = False  # True while set_position moves the slider: nothing is requested then

        self.slider = _MarkerSlider()
        self.slider.setTracking(True)  # a request at every drag step; the engine keeps only the latest
        self.slider.valueChanged.connect(self._on_value_changed)
        self.first_button = self._button(QStyle.StandardPixmap.SP_MediaSkipBackward, "First frame")
        self.back_button = self._button(QStyle.StandardPixmap.SP_MediaSeekBackward, "Previous frame")
        self.play_button = self._button(QStyle.StandardPixmap.SP_MediaPlay, "Play")
        self.play_button.setCheckable(True)
        self.forward_button = self._button(QStyle.StandardPixmap.SP_MediaSeekForward, "Next frame")
        self.last_button = self._button(QStyle.StandardPixmap.SP_MediaSkipForward, "Last frame")
        self.first_button.clicked.connect(lambda: self.jump(0))
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.last_button.clicked.connect(lambda: self.jump(self._frames - 1))
        # clicked, not toggled: it fires only for the user, never for set_playing's setChecked.
        self.play_button.clicked.connect(self.play_toggled)
        self.label = QLabel()
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in self._buttons():
            layout.addWidget(button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.set_length(0, 0.0)

    def _button(self, icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(self.style().standardIcon(icon))
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setAutoRaise(True)
        return button

    def _buttons(self) -> tuple[QToolButton, ...]:
        return (self.first_button, self.back_button, self.play_button, self.forward_button, self.last_button)

    # ---- state the app mirrors in -------------------------------------------------------------

    @property
    def length(self) -> int:
        return self._frames

    @property
    def position(self) -> int:
        return self.slider.value()

    @property
    def markers(self) -> frozenset[int]:
        return self.slider.markers

    def set_length(self, frames: int, fps: float) -> None:
        """A new clip: frames 0..frames-1 at `fps` (0 for a still). Zero frames leaves everything inert.
        The position is clamped into the new range without a request."""
        self._frames, self._fps = max(0, frames), max(0.0, fps)
        active = self._frames > 0
        self._mirroring = True
        try:
            self.slider.setRange(0, max(0, self._frames - 1))
        finally:
            self._mirroring = False
        self.slider.setPageStep(max(1, round(self._fps)))  # PageUp/PageDown: about a second
        for child in (self.slider, self.label, *self._buttons()):
            child.setEnabled(active)
        if not active:
            self.set_playing(False)
        self._fix_label_width()
        self._update_label()

    def set_position(self, index: int) -> None:
        """Show frame `index` (clamped) without emitting position_requested: the app reporting where it is."""
        self._mirroring = True
        try:
            self.slider.setValue(index)
        finally:
            self._mirroring = False

    def set_playing(self, playing: bool) -> None:
        """Mirror the app's play state on the button; emits nothing."""
        self.play_button.setChecked(playing)
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause" if playing else "Play")

    def set_markers(self, indices: Iterable[int]) -> None:
        """Paint markers at these frames (each holds a settings override from there on; the app owns that)."""
        self.slider.markers = frozenset(indices)
        self.slider.update()

    # ---- what the user asks for (buttons, and shortcuts the main window wires) ----------------

    def step(self, delta: int) -> None:
        """Move by `delta` frames, clamped to the clip; requests the frame if the position changed."""
        if self._frames:
            self.jump(self.position + delta)

    def jump(self, index: int) -> None:
        """Go to frame `index`, clamped to the clip; requests the frame if the position changed."""
        if self._frames:
            self.slider.setValue(min(self._frames - 1, max(0, index)))

    def toggle_play(self) -> None:
        """What the play button does (for a Space shortcut): flips its state and emits play_toggled."""
        if self._frames:
            self.play_button.click()

    def toggle_marker(self) -> None:
        """Ask for a marker at the current frame to be added or removed. Only emits: the app decides and
        calls set_markers back."""
        if self._frames:
            self.marker_toggled.emit(self.position)

    # ---- internals ----------------------------------------------------------------------------

    @Slot(int)
    def _on_value_changed(self, index: int) -> None:
        self._update_label()
        if not self._mirroring and self._frames:
            self.position_requested.emit(index)

    def _text(self, index: int) -> str:
        if not self._frames:
            return "no frames"
        text = f"frame {index} / {self._frames}"
        return f"{text} · {format_time(index / self._fps)}" if self._fps > 0 else text

    def _update_label(self) -> None:
        self.label.setText(self._text(self.position))

    def _fix_label_width(self) -> None:
        """Size the label for the widest text this clip can show, so the slider doesn't jitter."""
        widest = re.sub(r"\d", "8", self._text(max(0, self._frames - 1)))  # digits differ in width
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance(widest) + 4)
