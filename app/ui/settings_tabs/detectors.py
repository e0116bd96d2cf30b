"""Detectors: which model finds faces and how (score, NMS, count, rotation, input size), which
landmarker refines them, and which of the found faces get swapped."""

from __future__ import annotations

import dataclasses
from typing import Literal

from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSpinBox, QWidget

from app.faces.detector import AUTO_ROLL_LIMIT
from app.faces.selection import SelectionMode
from app.models.catalog import Catalog, Kind, ModelEntry
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.ui.settings_tabs.base import SettingsTab
from app.ui.settings_tabs.widgets import ChoiceCombo, ModelPicker, Slider

Rotation = Literal["off", "auto", "manual"]
MANUAL_ROLL_DEFAULT = 40.0


def default_name(catalog: Catalog, kind: Kind) -> str:
    found = next((e.id for e in catalog if e.kind is kind and e.default), None)
    return f"Catalog default ({found})" if found else "Catalog default"


def takes_any_size(entry: ModelEntry | None) -> bool:
    """Whether a detector's input side is free (dynamic axes), so the detector size applies to it."""
    if entry is None:
        return True
    dims = entry.inputs[0].shape
    return not (len(dims) == 4 and isinstance(dims[2], int) and isinstance(dims[3], int))


class DetectorsTab(SettingsTab):
    title = "Detectors"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        of_kind = [e for e in catalog if e.kind is Kind.DETECTOR]
        self.detector = ModelPicker(
            of_kind,
            [(default_name(catalog, Kind.DETECTOR), None)],
            "The model that finds faces in each frame.",
        )
        self.score = Slider(
            1,
            99,
            "Faces the detector is less sure of than this are ignored. Lower finds "
            "more faces (and more false ones).",
        )
        self.nms = Slider(
            1,
            99,
            "How much two boxes may overlap before the weaker one is dropped as the "
            "same face. Lower merges more; higher keeps faces that overlap.",
        )
        self.max_faces = QSpinBox()
        self.max_faces.setRange(0, 64)
        self.max_faces.setSpecialValueText("All")
        self.rotation = ChoiceCombo[Rotation]("Look for tilted or upside-down faces.")
        self.rotation.add("Off", "off", "Only upright faces: fastest.")
        self.rotation.add(
            f"Auto ({AUTO_ROLL_LIMIT:g}°)",
            "auto",
            f"Search the turned frame when a face is tilted past {AUTO_ROLL_LIMIT:g}°.",
        )
        self.rotation.add("Manual", "manual", "Search the turned frame past the angle you set.")
        self.roll_limit = QDoubleSpinBox()
        self.roll_limit.setRange(1.0, 180.0)
        self.roll_limit.setDecimals(1)
        self.roll_limit.setSuffix("°")
        self.roll_limit.setValue(MANUAL_ROLL_DEFAULT)
        self.roll_limit.setToolTip("Faces tilted more than this are looked for again in a turned frame.")
        rotation_row = QWidget()
        rotation_layout = QHBoxLayout(rotation_row)
        rotation_layout.setContentsMargins(0, 0, 0, 0)
        rotation_layout.addWidget(self.rotation)
        rotation_layout.addWidget(self.roll_limit, 1)
        self.input_size = QSpinBox()
        self.input_size.setRange(160, 640)
        self.input_size.setSingleStep(32)
        self.input_size.setSuffix(" px")
        self.landmarker = ModelPicker(
            [e for e in catalog if e.kind is Kind.LANDMARKER],
            [("None (the detector's five points)", None), ("Auto (chosen by face size)", "auto")],
            "Finds detailed face points for a tighter fit. None uses the detector's five points; Auto "
            "picks an installed model by how big the face is.",
        )
        self.selection = ChoiceCombo[SelectionMode]("Which of the faces found get swapped.")
        self.selection.add("One (the most prominent)", SelectionMode.ONE, "The largest, surest face only.")
        self.selection.add("Many (every face)", SelectionMode.MANY, "Every face found.")
        self.selection.add(
            "Reference (faces like the chosen ones)",
            SelectionMode.REFERENCE,
            "Only faces that look like the reference faces you picked.",
        )

        self.add_row("Model", self.detector, self.detector.toolTip())
        self.add_row("Score", self.score, self.score.toolTip())
        self.add_row("NMS overlap", self.nms, self.nms.toolTip())
        self.add_row(
            "Max faces", self.max_faces, "At most this many faces per frame, surest first. All: no limit."
        )
        self.add_row("Rotation", rotation_row, "Look for tilted or upside-down faces (slower).")
        self.add_row(
            "Detector size",
            self.input_size,
            "The side the frame is scaled to for detection, for models "
            "that accept any size. Smaller is faster; larger finds small faces.",
        )
        self.add_row("Landmarker", self.landmarker, self.landmarker.toolTip())
        self.add_row("Selection", self.selection, self.selection.toolTip())

        self.detector.currentIndexChanged.connect(self._detector_chosen)
        self.rotation.currentIndexChanged.connect(self._rotation_chosen)
        for signal in (
            self.score.value_changed,
            self.nms.value_changed,
            self.max_faces.valueChanged,
            self.roll_limit.valueChanged,
            self.input_size.valueChanged,
            self.landmarker.currentIndexChanged,
            self.selection.currentIndexChanged,
        ):
            signal.connect(self.emit_edited)
        self._follow()

    def _follow(self) -> None:
        self.roll_limit.setEnabled(self.rotation.value() == "manual")
        default = None
        if self.detector.value() is None:
            default = next((e for e in self.catalog if e.kind is Kind.DETECTOR and e.default), None)
        self.input_size.setEnabled(takes_any_size(self.detector.entry() or default))

    def _detector_chosen(self, _index: int) -> None:
        self._follow()
        self.edited.emit()

    def _rotation_chosen(self, _index: int) -> None:
        self._follow()
        self.edited.emit()

    def load(self, settings: PipelineSettings) -> None:
        analysis = settings.analysis
        detection = analysis.detection
        self.detector.set_value(analysis.detector)
        self.score.set_value(detection.score)
        self.nms.set_value(detection.nms)
        self.max_faces.setValue(detection.max_faces)
        if isinstance(detection.rotation, str):
            self.rotation.set_value(detection.rotation)
        else:
            self.rotation.set_value("manual")
            self.roll_limit.setValue(float(detection.rotation))
        self.input_size.setValue(detection.size)
        self.landmarker.set_value(analysis.landmarker)
        self.selection.set_value(analysis.selection.mode)
        self._follow()

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        analysis = settings.analysis
        mode = self.rotation.value()
        rotation: Literal["off", "auto"] | float = self.roll_limit.value()
        if mode != "manual":
            rotation = mode
        detection = dataclasses.replace(
            analysis.detection,
            score=self.score.value(),
            nms=self.nms.value(),
            max_faces=self.max_faces.value(),
            size=self.input_size.value(),
            rotation=rotation,
        )
        selection = dataclasses.replace(analysis.selection, mode=self.selection.value())
        new = AnalysisSettings(
            detector=self.detector.value(),
            detection=detection,
            landmarker=self.landmarker.value(),
            selection=selection,
        )
        return settings.model_copy(update={"analysis": new})
