"""Masks (box, feather, padding, occluder, XSeg, face parser and its regions, mask preview) and Blend
(colour transfer, edge smoothing)."""

from __future__ import annotations

from typing import get_args

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.models.catalog import Catalog, Kind
from app.pipeline.settings import PipelineSettings
from app.processing.settings import (
    FACE_REGIONS,
    PARSER_CLASSES,
    BlendSettings,
    ColourSettings,
    MaskSettings,
    ParserRegion,
)
from app.ui.settings_tabs.base import SettingsTab, with_processing
from app.ui.settings_tabs.widgets import ModelPicker, Slider

PADDING_SIDES = ("Top", "Right", "Bottom", "Left")  # MaskSettings.padding's order
_REGIONS: tuple[ParserRegion, ...] = get_args(ParserRegion)


def region_text(region: str) -> str:
    return region.replace("_", " ").capitalize()


class RegionList(QListWidget):
    """The face parser's classes as a checkable list; `regions()` keeps PARSER_CLASSES order."""

    def __init__(self) -> None:
        super().__init__()
        for region in PARSER_CLASSES:
            item = QListWidgetItem(region_text(region))
            item.setData(Qt.ItemDataRole.UserRole, region)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.addItem(item)
        self.setMinimumHeight(120)

    def item_for(self, region: str) -> QListWidgetItem:
        return self.item(PARSER_CLASSES.index(region))

    def regions(self) -> tuple[ParserRegion, ...]:
        return tuple(
            region
            for row, region in enumerate(_REGIONS)
            if self.item(row).checkState() == Qt.CheckState.Checked
        )

    def set_regions(self, regions: tuple[str, ...]) -> None:
        for row, region in enumerate(PARSER_CLASSES):
            checked = Qt.CheckState.Checked if region in regions else Qt.CheckState.Unchecked
            self.item(row).setCheckState(checked)


class MasksTab(SettingsTab):
    title = "Masks"
    preview_toggled = Signal(bool)

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        masks = [e for e in catalog if e.kind is Kind.MASK]

        def picker(family: str, tip: str) -> ModelPicker:
            return ModelPicker([e for e in masks if e.family == family], [("None", None)], tip)

        self.box = QCheckBox("Use the face box")
        self.feather = Slider(
            0, 100, "How softly the mask's edge fades out, in % of the face size.", divisor=2, scale=1.0
        )
        self.padding = [QDoubleSpinBox() for _ in PADDING_SIDES]
        padding_row = QWidget()
        grid = QGridLayout(padding_row)
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (side, spin) in enumerate(zip(PADDING_SIDES, self.padding, strict=True)):
            spin.setRange(0.0, 100.0)
            spin.setDecimals(1)
            spin.setSuffix(" %")
            spin.setToolTip(f"Shrink the box mask from the {side.lower()}, in % of the face crop.")
            grid.addWidget(spin, 0, column)
        self.occluder = picker(
            "occluder", "Keeps hands, hair, glasses and the like that pass in front of the face visible."
        )
        self.xseg = picker("xseg", "DeepFaceLab's XSeg face segmentation: keeps the swap on the face itself.")
        self.parser = picker("bisenet", "Labels the parts of the face; the swap keeps the checked regions.")
        self.regions = RegionList()
        self.regions.setToolTip("The face parts the parser keeps in the mask.")
        self.face_regions_button = QPushButton("Face regions")
        self.face_regions_button.setToolTip("Check the usual face parts: skin, brows, eyes, nose and mouth.")
        regions_box = QWidget()
        regions_layout = QVBoxLayout(regions_box)
        regions_layout.setContentsMargins(0, 0, 0, 0)
        regions_layout.addWidget(self.regions)
        regions_layout.addWidget(self.face_regions_button)
        self.show_mask = QCheckBox("Show the mask in the viewer")

        self.add_row("Box", self.box, "Mask the swap to the aligned face box (with the padding below).")
        self.add_row("Feather", self.feather, self.feather.toolTip())
        self.add_row("Box padding", padding_row, "Shrink the box mask: top, right, bottom, left.")
        self.add_row("Occluder", self.occluder, self.occluder.toolTip())
        self.add_row("XSeg", self.xseg, self.xseg.toolTip())
        self.add_row("Face parser", self.parser, self.parser.toolTip())
        self.add_row("Parser regions", regions_box, self.regions.toolTip())
        self.add_row(
            "Preview",
            self.show_mask,
            "Show the combined mask over the frame instead of the swap. "
            "It changes only the view, not the result.",
        )

        self.box.toggled.connect(self._box_toggled)
        self.parser.currentIndexChanged.connect(self._parser_chosen)
        self.regions.itemChanged.connect(self.emit_edited)
        self.face_regions_button.clicked.connect(self._face_regions)
        self.show_mask.toggled.connect(self.preview_toggled)
        self.feather.value_changed.connect(self.emit_edited)
        for signal in (s.valueChanged for s in self.padding):
            signal.connect(self.emit_edited)
        for model in (self.occluder, self.xseg):
            model.currentIndexChanged.connect(self.emit_edited)
        self._follow()

    def _follow(self) -> None:
        for spin in self.padding:
            spin.setEnabled(self.box.isChecked())
        parsing = self.parser.value() is not None
        self.regions.setEnabled(parsing)
        self.face_regions_button.setEnabled(parsing)

    def _box_toggled(self, _on: bool) -> None:
        self._follow()
        self.edited.emit()

    def _parser_chosen(self, _index: int) -> None:
        self._follow()
        self.edited.emit()

    def _face_regions(self) -> None:
        """One edit for the whole reset, not one per item."""
        self.regions.blockSignals(True)
        try:
            self.regions.set_regions(FACE_REGIONS)
        finally:
            self.regions.blockSignals(False)
        self.edited.emit()

    def load(self, settings: PipelineSettings) -> None:
        mask = settings.processing.mask
        self.box.setChecked(mask.box)
        self.feather.set_value(mask.feather)
        for spin, value in zip(self.padding, mask.padding, strict=True):
            spin.setValue(value)
        self.occluder.set_value(mask.occluder)
        self.xseg.set_value(mask.xseg)
        self.parser.set_value(mask.parser)
        self.regions.set_regions(mask.regions)
        self._follow()

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        top, right, bottom, left = (spin.value() for spin in self.padding)
        mask = MaskSettings(
            box=self.box.isChecked(),
            padding=(top, right, bottom, left),
            feather=self.feather.value(),
            occluder=self.occluder.value(),
            xseg=self.xseg.value(),
            parser=self.parser.value(),
            regions=self.regions.regions(),
        )
        return with_processing(settings, mask=mask)


class BlendTab(SettingsTab):
    title = "Blend"

    def __init__(self) -> None:
        super().__init__()
        self.colour = Slider(
            0, 100, "Match the swapped face's colours to the original face's lighting. 0 is off."
        )
        self.edge = Slider(
            0,
            200,
            "Smooth the mask's edge along the frame's own edges (hair, jaw), in % of the face "
            "size. 0 is off.",
            divisor=2,
            scale=1.0,
        )
        self.add_row("Colour transfer", self.colour, self.colour.toolTip())
        self.add_row("Edge smoothing", self.edge, self.edge.toolTip())
        self.colour.value_changed.connect(self.emit_edited)
        self.edge.value_changed.connect(self.emit_edited)

    def load(self, settings: PipelineSettings) -> None:
        self.colour.set_value(settings.processing.colour.strength)
        self.edge.set_value(settings.processing.blend.edge_smoothing)

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        return with_processing(
            settings,
            colour=ColourSettings(strength=self.colour.value()),
            blend=BlendSettings(edge_smoothing=self.edge.value()),
        )
