"""Swapper (model, strength, passes, pixel boost) and Restorer (model, blend, CodeFormer fidelity)."""

from __future__ import annotations

from PySide6.QtWidgets import QSpinBox

from app.models.catalog import Catalog, Kind, ModelEntry
from app.pipeline.settings import PipelineSettings
from app.processing.settings import RestoreSettings, SwapSettings
from app.ui.settings_tabs.base import SettingsTab, with_processing
from app.ui.settings_tabs.detectors import default_name
from app.ui.settings_tabs.widgets import ChoiceCombo, ModelPicker, Slider

PIXEL_BOOSTS = (256, 384, 512)


def boost_allowed(entry: ModelEntry | None, boost: int | None) -> bool:
    """Whether a pixel boost tiles the model's side: 1 to 4 times it (the engine checks again)."""
    if boost is None or entry is None or not entry.input_size:
        return True
    side = entry.input_size
    return boost % side == 0 and 1 <= boost // side <= 4


class SwapperTab(SettingsTab):
    title = "Swapper"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.swapper = ModelPicker(
            [e for e in catalog if e.kind is Kind.SWAPPER],
            [(default_name(catalog, Kind.SWAPPER), None)],
            "The model that puts the source identity onto each target face.",
        )
        self.strength = Slider(
            0,
            100,
            "How much of the source identity replaces the target face. Below 100 % some of the "
            "original face shows through.",
        )
        self.passes = QSpinBox()
        self.passes.setRange(1, 4)
        self.pixel_boost = ChoiceCombo[int | None](
            "Run the model on a larger crop, split into tiles of its own size, for more detail (slower). "
            "It must be 1 to 4 times the model's side."
        )
        self.pixel_boost.add("None (the model's own size)", None)
        for boost in PIXEL_BOOSTS:
            self.pixel_boost.add(f"{boost} px", boost)

        self.add_row("Model", self.swapper, self.swapper.toolTip())
        self.add_row("Strength", self.strength, self.strength.toolTip())
        self.add_row(
            "Passes",
            self.passes,
            "Feed the swapped face through the model again for a stronger "
            "likeness. Each pass costs another model run.",
        )
        self.add_row("Pixel boost", self.pixel_boost, self.pixel_boost.toolTip())

        self.swapper.currentIndexChanged.connect(self._swapper_chosen)
        for signal in (
            self.strength.value_changed,
            self.passes.valueChanged,
            self.pixel_boost.currentIndexChanged,
        ):
            signal.connect(self.emit_edited)
        self._follow()

    def chosen_entry(self) -> ModelEntry | None:
        """The chosen swapper, or the catalog's default one when none is chosen."""
        entry = self.swapper.entry()
        if entry is None and self.swapper.value() is None:
            entry = next((e for e in self.catalog if e.kind is Kind.SWAPPER and e.default), None)
        return entry

    def _follow(self) -> None:
        entry = self.chosen_entry()
        side = f"{entry.input_size} px" if entry and entry.input_size else "its size"
        self.pixel_boost.set_enabled_values(
            lambda boost: boost_allowed(entry, boost), f"Not a multiple (1-4×) of this model's {side}"
        )

    def _swapper_chosen(self, _index: int) -> None:
        self._follow()
        self.edited.emit()

    def load(self, settings: PipelineSettings) -> None:
        swap = settings.processing.swap
        self.swapper.set_value(swap.swapper)
        self.strength.set_value(swap.strength)
        self.passes.setValue(swap.passes)
        self.pixel_boost.set_value(swap.pixel_boost, "{} px")
        self._follow()

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        fields = settings.processing.swap.model_dump()
        fields.update(
            swapper=self.swapper.value(),
            strength=self.strength.value(),
            passes=self.passes.value(),
            pixel_boost=self.pixel_boost.value(),
        )
        return with_processing(settings, swap=SwapSettings.model_validate(fields))


class RestorerTab(SettingsTab):
    title = "Restorer"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.restorer = ModelPicker(
            [e for e in catalog if e.kind is Kind.RESTORER],
            [("None (no restoration)", None)],
            "A model that sharpens and repairs the swapped face.",
        )
        self.blend = Slider(
            0, 100, "How much of the restored face replaces the swapped one. Lower keeps more of the swap."
        )
        self.fidelity = Slider(
            0,
            100,
            "CodeFormer only: higher keeps the face closer to the swap, lower lets the model "
            "invent more detail.",
        )
        self.add_row("Model", self.restorer, self.restorer.toolTip())
        self.add_row("Blend", self.blend, self.blend.toolTip())
        self.add_row("Fidelity", self.fidelity, self.fidelity.toolTip())
        self.restorer.currentIndexChanged.connect(self._restorer_chosen)
        self.blend.value_changed.connect(self.emit_edited)
        self.fidelity.value_changed.connect(self.emit_edited)
        self._follow()

    def _follow(self) -> None:
        entry = self.restorer.entry()
        self.blend.setEnabled(self.restorer.value() is not None)
        self.fidelity.setEnabled(entry is not None and entry.family == "codeformer")

    def _restorer_chosen(self, _index: int) -> None:
        self._follow()
        self.edited.emit()

    def load(self, settings: PipelineSettings) -> None:
        restore = settings.processing.restore
        self.restorer.set_value(restore.restorer)
        self.blend.set_value(restore.blend)
        self.fidelity.set_value(restore.fidelity)
        self._follow()

    def build(self, settings: PipelineSettings) -> PipelineSettings:
        restore = RestoreSettings(
            restorer=self.restorer.value(), blend=self.blend.value(), fidelity=self.fidelity.value()
        )
        return with_processing(settings, restore=restore)
