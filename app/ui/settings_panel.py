"""The studio's settings tabs, bound to one PipelineSettings snapshot.

Widgets set settings (DESIGN): every user edit folds the controls into a new, validated snapshot and
emits it as `changed`; the controller turns it into requests (and keeps only the latest, so a slider
emits on every value). `set_settings` shows a snapshot without emitting anything. Provider and worker
count are not pipeline settings (InferenceSettings / EngineOptions) and come out as `execution_changed`.
The tabs live in app/ui/settings_tabs/, one module per group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError
from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QFrame, QInputDialog, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from app.core.errors import CatalogError, SettingsError
from app.faces.landmarker import AUTO_ROUTES
from app.models.catalog import Kind
from app.models.store import ModelStatus, ModelStore
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import PipelineSettings
from app.ui.settings_tabs.base import SettingsTab
from app.ui.settings_tabs.detectors import DetectorsTab
from app.ui.settings_tabs.execution import ExecutionTab
from app.ui.settings_tabs.masks import BlendTab, MasksTab
from app.ui.settings_tabs.presets import PresetsTab
from app.ui.settings_tabs.swap_restore import RestorerTab, SwapperTab
from app.ui.settings_tabs.tracking import TrackingTab
from app.ui.settings_tabs.vram import vram_estimate_mb
from app.ui.settings_tabs.widgets import ModelPicker

__all__ = ["NameAsker", "SettingsPanel", "ask_preset_name", "vram_estimate_mb"]

# Asks the user for a preset name: (parent, suggestion) -> the name, or None when cancelled.
NameAsker = Callable[[QWidget, str], str | None]

TAB_TIPS = {
    "Detectors": "Finding faces: detector model, thresholds, rotation, landmarks and which faces to swap.",
    "Tracking && Stabilisation": "Following faces between detections and smoothing their movement.",
    "Swapper": "The face swap model and how strongly it applies.",
    "Restorer": "An optional model that repairs and sharpens the swapped face.",
    "Masks": "Which part of the swapped face is pasted back, and how softly.",
    "Blend": "Matching the swapped face's colour and edges to the frame.",
    "Presets": "Built-in starting points and your own saved settings.",
    "Execution": "Where the models run, how many frames at once, and a memory estimate.",
}


def ask_preset_name(parent: QWidget, suggestion: str) -> str | None:
    name, ok = QInputDialog.getText(parent, "Save preset", "Preset name:", text=suggestion)
    return name.strip() if ok and name.strip() else None


def describe(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


class SettingsPanel(QTabWidget):
    changed = Signal(object)  # PipelineSettings
    mask_preview_toggled = Signal(bool)
    execution_changed = Signal(str, int)  # provider hint, swap workers (0: automatic)
    message = Signal(str)  # a note for the status bar (preset saved, invalid combination…)

    def __init__(
        self,
        store: ModelStore,
        settings: PipelineSettings,
        presets: UserPresets | None = None,
        ask_name: NameAsker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.catalog = store.catalog
        self.user_presets = presets if presets is not None else UserPresets()
        self._ask_name = ask_name or ask_preset_name
        self._current = settings
        self._notices: list[QLabel] = []

        self.detectors = DetectorsTab(self.catalog)
        self.tracking = TrackingTab()
        self.swapper = SwapperTab(self.catalog)
        self.restorer = RestorerTab(self.catalog)
        self.masks = MasksTab(self.catalog)
        self.blend = BlendTab()
        self.tabs: list[SettingsTab] = [
            self.detectors, self.tracking, self.swapper, self.restorer, self.masks, self.blend
        ]  # fmt: skip
        self.presets_tab = PresetsTab()
        self.execution_tab = ExecutionTab()
        for tab in self.tabs:
            self._add_page(tab, tab.title)
            tab.edited.connect(self._edited)
        self._add_page(self.presets_tab, self.presets_tab.title)
        self._add_page(self.execution_tab, self.execution_tab.title)

        self.masks.preview_toggled.connect(self.mask_preview_toggled)
        self.execution_tab.execution_changed.connect(self.execution_changed)
        self.presets_tab.preset_chosen.connect(self.apply_preset)
        self.presets_tab.save_requested.connect(self.save_user_preset)
        self.presets_tab.load_requested.connect(self.load_user_preset)
        self.presets_tab.delete_requested.connect(self.delete_user_preset)

        self.refresh_models()
        self.presets_tab.show_names(self.user_presets.names())
        self.set_settings(settings)

    def _add_page(self, widget: QWidget, title: str) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(widget)
        notice = QLabel()
        notice.setWordWrap(True)
        notice.setToolTip("Why the settings could not be applied, or what to look out for.")
        notice.hide()
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addWidget(notice)
        self._notices.append(notice)
        index = self.addTab(page, title)
        self.setTabToolTip(index, TAB_TIPS.get(title, ""))

    # ---- the snapshot ---------------------------------------------------------------------------

    def settings(self) -> PipelineSettings:
        """The snapshot the controls show. When they make an invalid combination, the panel says why and
        this is the last valid snapshot instead."""
        built = self._build()
        return built if built is not None else self._current

    def set_settings(self, settings: PipelineSettings) -> None:
        """Show `settings` on every control without emitting `changed`."""
        for tab in self.tabs:
            with QSignalBlocker(tab):
                tab.load(settings)
        self._current = settings
        shown = self._build()  # None: it said what is wrong
        if shown is not None and shown != settings:
            self.show_message(
                "Some values were rounded to what the controls can show; they apply at the next change."
            )
        self._show_estimate()

    def _build(self) -> PipelineSettings | None:
        snapshot = self._current
        try:
            for tab in self.tabs:
                snapshot = tab.build(snapshot)
            snapshot = PipelineSettings.model_validate(snapshot.model_dump())
        except ValueError as exc:  # pydantic's ValidationError is one
            self.show_message(f"These settings cannot be used: {describe(exc)}")
            return None
        self.show_message(self._warning(snapshot))
        return snapshot

    def _warning(self, settings: PipelineSettings) -> str:
        mask = settings.processing.mask
        if mask.parser is not None and not mask.regions:
            return "The face parser keeps no region: check at least one, or the swap is masked away."
        return ""

    def _edited(self) -> None:
        snapshot = self._build()
        if snapshot is None or snapshot == self._current:
            return
        self._current = snapshot
        self._show_estimate()
        self.changed.emit(snapshot)

    def _apply(self, settings: PipelineSettings) -> None:
        self.set_settings(settings)
        self.changed.emit(settings)

    def show_message(self, text: str) -> None:
        for notice in self._notices:
            notice.setText(text)
            notice.setVisible(bool(text))
        if text:
            self.message.emit(text)

    def message_text(self) -> str:
        return self._notices[0].text()

    # ---- models ----------------------------------------------------------------------------------

    def pickers(self) -> list[ModelPicker]:
        return [
            self.detectors.detector,
            self.detectors.landmarker,
            self.swapper.swapper,
            self.restorer.restorer,
            self.masks.occluder,
            self.masks.xseg,
            self.masks.parser,
        ]

    def installed(self, model_id: str) -> bool:
        return model_id in self.catalog and self.store.status(self.catalog.get(model_id)).usable

    def refresh_models(self, statuses: Iterable[ModelStatus] | None = None) -> None:
        """Mark the pickers' models installed or not: from `statuses` (e.g. after downloads), else the
        store (file hashes are cached, so only new files are hashed)."""
        if statuses is None:
            kinds = {Kind.DETECTOR, Kind.LANDMARKER, Kind.SWAPPER, Kind.RESTORER, Kind.MASK}
            statuses = [self.store.status(e) for e in self.catalog if e.kind in kinds]
        usable = {status.entry.id for status in statuses if status.usable}
        for picker in self.pickers():
            picker.mark(lambda model_id: model_id in usable)

    def model_bytes(self, settings: PipelineSettings | None = None) -> int:
        """The file sizes of the models a snapshot uses, with the models they require (recognisers)."""
        settings = settings or self._current
        analysis, processing = settings.analysis, settings.processing
        ids = [
            analysis.detector or self._default(Kind.DETECTOR),
            processing.swap.swapper or self._default(Kind.SWAPPER),
            processing.restore.restorer,
            processing.mask.occluder,
            processing.mask.xseg,
            processing.mask.parser,
        ]
        if analysis.landmarker == "auto":  # counted as each face-size route's first choice
            ids.extend(route.models[0] for route in AUTO_ROUTES)
        else:
            ids.append(analysis.landmarker)
        known = [model_id for model_id in ids if model_id is not None and model_id in self.catalog]
        return sum(entry.size for entry in self.catalog.with_requirements(known))

    def _default(self, kind: Kind) -> str | None:
        try:
            return self.catalog.default_for(kind, kind.value)
        except CatalogError:
            return None

    def _show_estimate(self) -> None:
        self.execution_tab.show_estimate(self.model_bytes())

    # ---- execution ---------------------------------------------------------------------------------

    def execution_options(self) -> tuple[str, int]:
        """The provider hint ("auto", "tensorrt", "cuda", "cpu") and swap workers (0: automatic)."""
        return self.execution_tab.execution()

    def set_execution(self, provider: str, workers: int) -> None:
        """Show a provider and worker count without emitting `execution_changed`."""
        self.execution_tab.set_execution(provider, workers)

    # ---- presets -----------------------------------------------------------------------------------

    def apply_preset(self, preset: Preset) -> list[str]:
        """Apply a built-in preset (keeping the chosen swapper), show its notes, emit `changed`."""
        swapper = self._current.processing.swap.swapper
        settings, notes = preset_pipeline(preset, self.installed, swapper)
        self.presets_tab.show_notes(notes or [f"{preset.value.capitalize()} preset applied."])
        self._apply(settings)
        self.message.emit("; ".join(notes) or f"{preset.value.capitalize()} preset applied.")
        return notes

    def save_user_preset(self, name: str | None = None) -> bool:
        """Save the current settings as a user preset; without a name, ask for one. False: not saved."""
        if name is None:
            name = self._ask_name(self, self.presets_tab.selected() or "")
            if not name:
                return False
        replacing = name in self.user_presets.names()
        try:
            self.user_presets.save(name, self.settings())
        except (SettingsError, OSError) as exc:
            self.show_message(f"Preset not saved: {exc}")
            return False
        self.presets_tab.show_names(self.user_presets.names(), select=name)
        self.message.emit(f"{'Replaced' if replacing else 'Saved'} preset '{name}'.")
        return True

    def load_user_preset(self, name: str) -> bool:
        """Apply a user preset and emit `changed`. False: it could not be read (the panel says why)."""
        try:
            settings = self.user_presets.load(name)
        except SettingsError as exc:
            self.show_message(str(exc))
            return False
        self.presets_tab.show_notes([f"Loaded preset '{name}'."])
        self._apply(settings)
        return True

    def delete_user_preset(self, name: str) -> bool:
        try:
            self.user_presets.delete(name)
        except (SettingsError, OSError) as exc:
            self.show_message(f"Preset not deleted: {exc}")
            return False
        self.presets_tab.show_names(self.user_presets.names())
        self.message.emit(f"Deleted preset '{name}'.")
        return True
