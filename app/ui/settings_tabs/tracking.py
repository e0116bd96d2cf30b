"""Tracking & Stabilisation: follow faces between detections, and smooth their points."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QSpinBox

from app.pipeline.settings import PipelineSettings
from app.tracking.face_tracker import TrackingSettings
from app.tracking.stabiliser import StabiliserLevel
from app.ui.settings_tabs.base import SettingsTab
from app.ui.settings_tabs.widgets import ChoiceCombo, Slider

STABILISER_TIP = (
    "Smooths the face points over time so the swap does not shimmer; stronger levels lag more behind fast "
    "moves. Each level also sets how far the head must roll before the smoothing lets go; that roll "
    "threshold comes with the level and has no control of its own."
)


class TrackingTab(SettingsTab):
    title = "Tracking && Stabilisation"

    def __init__(self) -> None:
        super().__init__()
        self.enabled = QCheckBox("Track faces between detections")
        self.interval = QSpinBox()
        self.interval.setRange(1, 300)
        self.interval.setSuffix(" frames")
        self.hold = QSpinBox()
        self.hold.setRange(3, 5)
        self.hold.setSuffix(" frames")
        self.roi_padding = Slider(
            25, 40, "How far around a tracked face to look for it again, in face sizes on each side."
        )
        self.lost = Slider(
            0,
            100,
            "When optical flow loses more than this share of a face's points, the fallback tracker "
            "takes over.",
        )
        self.stabiliser = ChoiceCombo[StabiliserLevel](STABILISER_TIP)
        for level in StabiliserLevel:
            self.stabiliser.add(level.value.capitalize(), level)

        self.add_row(
            "Tracking",
            self.enabled,
            "On: faces are followed between detections (faster, steadier). "
            "Off: the detector runs on the whole of every frame.",
        )
        self.add_row(
            "Detect every",
            self.interval,
            "Run the detector on every Nth frame and track in between. 1 detects on every frame.",
        )
        self.add_row(
            "Hold lost faces",
            self.hold,
            "Frames a lost face keeps its last place before it is dropped, so a brief miss does not flicker.",
        )
        self.add_row("Search padding", self.roi_padding, self.roi_padding.toolTip())
        self.add_row("Flow loss limit", self.lost, self.lost.toolTip())
        self.add_row("Stabiliser", self.stabiliser, STABILISER_TIP)

        self.enabled.toggled.connect(self._toggled)
        for signal in (
            self.interval.valueChanged,
            self.hold.valueChanged,
            self.roi_padding.value_changed,
            self.lost.value_changed,
            self.stabiliser.currentIndexChanged,
        ):
            signal.connect(self.emit_edited)

    def _follow(self) -> None:
        on = self.enabled.isChecked()
        for widget in (self.interval, self.hold, self.roi_padding, self.lost):
            widget.setEnabled(on)

    def _toggled(self, _on: bool) -> None:
        self._follow()
        self.edited.emit()

    def load(self, settings: PipelineSettings) -> None:
        tracking = settings.tracking
        self.enabled.setChecked(tracking.enabled)
        self.interval.setValue(tracking.interval)
        self.hold.setValue(tracking.hold_frames)
        self.roi_padding.set_value(tracking.roi_padding)
        self.lost.set_value(tracking.lost_fraction)
        self.stabiliser.set_value(tracking.stabiliser)
        self._follow()

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        fields = settings.tracking.model_dump()
        fields.update(
            enabled=self.enabled.isChecked(),
            interval=self.interval.value(),
            hold_frames=self.hold.value(),
            roi_padding=self.roi_padding.value(),
            lost_fraction=self.lost.value(),
            stabiliser=self.stabiliser.value(),
        )
        return settings.model_copy(update={"tracking": TrackingSettings.model_validate(fields)})
