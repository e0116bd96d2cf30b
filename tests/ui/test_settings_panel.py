"""The settings panel, a real (offscreen) widget over a real model store in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QListWidget,
    QScrollBar,
    QTabBar,
)

from app.faces.detector import DetectionSettings
from app.models.catalog import Kind, load_catalog
from app.models.store import ModelStore
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import AnalysisSettings, PipelineSettings
from app.processing.settings import FACE_REGIONS, PARSER_CLASSES
from app.ui.settings_panel import SettingsPanel, vram_estimate_mb
from app.ui.settings_tabs.widgets import NOT_INSTALLED
from tests.support.entries import blob, catalog_of, entry_for


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def make_panel(qtbot, tmp_path: Path, catalog, settings: PipelineSettings | None = None, **kwargs):
    store = ModelStore(tmp_path / "models", catalog)
    panel = SettingsPanel(store, settings or PipelineSettings(), UserPresets(tmp_path / "presets"), **kwargs)
    qtbot.addWidget(panel)
    return panel


def nothing_installed(_model_id: str) -> bool:
    return False


@pytest.mark.parametrize("preset", list(Preset))
def test_each_preset_round_trips_through_the_controls(qtbot, tmp_path: Path, catalog, preset: Preset) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    # installed=True for all: every optional model the preset can name is set (restorer, occluder…)
    settings, _ = preset_pipeline(preset, lambda _id: True, swapper="simswap_256")
    panel.set_settings(settings)
    assert panel.settings() == settings
    assert panel.message_text() == ""


def test_unusual_values_round_trip(qtbot, tmp_path: Path, catalog) -> None:
    settings = PipelineSettings(
        analysis=AnalysisSettings(
            detector="yunet_n_640",
            detection=DetectionSettings(score=0.35, nms=0.55, max_faces=3, size=416, rotation=35.5),
            landmarker="2dfan4",
        ),
    )
    mask = settings.processing.mask.model_copy(
        update={"padding": (1.5, 0.0, 10.0, 2.5), "parser": "bisenet_resnet_18", "regions": ("skin", "hair")}
    )
    settings = settings.model_copy(
        update={"processing": settings.processing.model_copy(update={"mask": mask})}
    )
    panel = make_panel(qtbot, tmp_path, catalog, settings)
    assert panel.settings() == settings


def test_default_nms_slider_shows_40(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    assert panel.detectors.nms.slider.value() == 40
    assert panel.detectors.nms.value_label.text() == "40%"


def test_moving_nms_to_60_emits_one_change(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    panel.detectors.nms.slider.setValue(60)
    assert len(seen) == 1
    assert seen[0].analysis.detection.nms == 0.6
    assert panel.detectors.nms.value_label.text() == "60%"
    assert panel.settings() == seen[0]


def test_set_settings_emits_nothing(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    seen: list[object] = []
    panel.changed.connect(seen.append)
    panel.execution_changed.connect(lambda *args: seen.append(args))
    for preset in Preset:
        panel.set_settings(preset_pipeline(preset, lambda _id: True)[0])
    panel.set_execution("cuda", 3)
    assert seen == []
    assert panel.execution_options() == ("cuda", 3)


def test_pickers_list_models_of_their_kind_marking_missing_ones(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    swappers = [e.id for e in catalog if e.kind is Kind.SWAPPER]
    assert panel.swapper.swapper.values() == [None, *swappers]
    assert all(NOT_INSTALLED in panel.swapper.swapper.itemText(i) for i in range(1, len(swappers) + 1))
    assert panel.masks.parser.values() == [None, "faceparser_resnet34", "bisenet_resnet_18"]
    assert panel.detectors.landmarker.values()[:2] == [None, "auto"]
    # not installed, still selectable
    panel.swapper.swapper.setCurrentIndex(2)
    assert panel.settings().processing.swap.swapper == swappers[1]


def test_an_installed_model_is_not_marked(qtbot, tmp_path: Path) -> None:
    data = blob(4096, seed=3)
    entries = [entry_for("tiny_det", data, ["https://example.org/a"], default=True)]
    entries.append(entry_for("other_det", blob(4096, seed=4), ["https://example.org/b"]))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny_det.onnx").write_bytes(data)
    panel = make_panel(qtbot, tmp_path, catalog_of(*entries))
    picker = panel.detectors.detector
    assert NOT_INSTALLED not in picker.itemText(picker.index_of("tiny_det"))
    assert NOT_INSTALLED in picker.itemText(picker.index_of("other_det"))
    assert picker.itemText(0) == "Catalog default (tiny_det)"


def test_quality_with_nothing_installed_shows_its_notes(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    qtbot.mouseClick(panel.presets_tab.buttons[Preset.QUALITY], Qt.MouseButton.LeftButton)
    expected, notes = preset_pipeline(Preset.QUALITY, nothing_installed)
    assert notes and "gfpgan_1.4 is not installed" in panel.presets_tab.notes.text()
    assert [s.processing.restore.restorer for s in seen] == [None]
    assert seen == [expected] and panel.settings() == expected
    assert panel.restorer.restorer.value() is None


def test_user_preset_saves_and_loads(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog, ask_name=lambda _parent, _suggested: "my look")
    panel.detectors.score.slider.setValue(72)
    panel.blend.colour.slider.setValue(35)
    saved = panel.settings()
    assert panel.save_user_preset()  # the injected dialog names it
    assert UserPresets(tmp_path / "presets").load("my look") == saved
    assert [
        panel.presets_tab.user_list.item(i).text() for i in range(panel.presets_tab.user_list.count())
    ] == ["my look"]

    panel.set_settings(PipelineSettings())
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    qtbot.mouseClick(panel.presets_tab.load_button, Qt.MouseButton.LeftButton)
    assert seen == [saved] and panel.settings() == saved

    assert not panel.save_user_preset("fast")  # a built-in name: refused in words
    assert "built-in" in panel.message_text()
    assert panel.delete_user_preset("my look")
    assert panel.presets_tab.user_list.count() == 0


def test_parser_regions_checklist_maps_to_mask_regions(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    regions = panel.masks.regions
    checked = [
        PARSER_CLASSES[i]
        for i in range(regions.count())
        if regions.item(i).checkState() == Qt.CheckState.Checked
    ]
    assert tuple(checked) == FACE_REGIONS
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    regions.item_for("hair").setCheckState(Qt.CheckState.Checked)
    regions.item_for("nose").setCheckState(Qt.CheckState.Unchecked)
    assert len(seen) == 2
    expected = tuple(r for r in PARSER_CLASSES if (r in FACE_REGIONS and r != "nose") or r == "hair")
    assert seen[-1].processing.mask.regions == expected
    qtbot.mouseClick(panel.masks.face_regions_button, Qt.MouseButton.LeftButton)  # disabled: no parser
    assert len(seen) == 2
    panel.masks.parser.set_value("faceparser_resnet34")
    qtbot.mouseClick(panel.masks.face_regions_button, Qt.MouseButton.LeftButton)
    assert len(seen) == 4 and seen[-1].processing.mask.regions == FACE_REGIONS


def test_mask_preview_toggle_is_not_a_settings_change(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    changes: list[object] = []
    panel.changed.connect(changes.append)
    with qtbot.waitSignal(panel.mask_preview_toggled) as blocker:
        panel.masks.show_mask.setChecked(True)
    assert blocker.args == [True] and changes == []


def test_vram_estimate_grows_with_resolution(qtbot, tmp_path: Path, catalog) -> None:
    sizes = [vram_estimate_mb(w, h, 32, 2, 500_000_000) for w, h in ((1280, 720), (1920, 1080), (3840, 2160))]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    assert vram_estimate_mb(1920, 1080, 32, 2, 10**9) > vram_estimate_mb(1920, 1080, 32, 2, 0)
    with pytest.raises(ValueError, match="positive"):
        vram_estimate_mb(0, 1080, 32, 2, 0)

    panel = make_panel(qtbot, tmp_path, catalog)
    shown = [panel.execution_tab.estimate_mb(name) for name in ("720p", "1080p", "4K")]
    assert shown == sorted(shown) and len(set(shown)) == 3
    assert all(label.text().startswith("≈") for label in panel.execution_tab.estimates.values())
    before = panel.execution_tab.estimate_mb("1080p")
    panel.restorer.restorer.set_value("gfpgan_1.4")  # a user edit adds a model
    assert panel.execution_tab.estimate_mb("1080p") > before


def test_execution_changed_fires_with_the_provider(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    with qtbot.waitSignal(panel.execution_changed) as blocker:
        panel.execution_tab.provider.set_value("tensorrt")
    assert blocker.args == ["tensorrt", 0]
    with qtbot.waitSignal(panel.execution_changed) as blocker:
        panel.execution_tab.workers.setValue(4)
    assert blocker.args == ["tensorrt", 4]


def test_an_invalid_combination_is_shown_not_raised(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    panel.swapper.pixel_boost.set_value(2048, "{} px")  # beyond the model's limit (1024)
    assert seen == []
    assert "pixel_boost" in panel.message_text()
    assert panel.settings() == PipelineSettings()
    panel.swapper.pixel_boost.set_value(None)
    assert panel.message_text() == "" and seen == []


def test_every_control_explains_itself(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QListWidget)
    controls = {w for kind in kinds for w in panel.findChildren(kind)}
    machinery = {w for w in controls if isinstance(w, QScrollBar) or isinstance(w.parent(), QTabBar)}
    silent = [f"{type(w).__name__} {w.objectName()}" for w in controls - machinery if not w.toolTip()]
    assert len(controls - machinery) > 30 and silent == []


def test_one_change_per_edit_on_every_tab(qtbot, tmp_path: Path, catalog) -> None:
    panel = make_panel(qtbot, tmp_path, catalog)
    seen: list[PipelineSettings] = []
    panel.changed.connect(seen.append)
    edits = [
        lambda: panel.detectors.rotation.set_value("manual"),
        lambda: panel.detectors.roll_limit.setValue(30.0),
        lambda: panel.detectors.detector.set_value("yunet_n_640"),
        lambda: panel.tracking.enabled.setChecked(False),
        lambda: panel.tracking.stabiliser.setCurrentIndex(3),
        lambda: panel.swapper.swapper.set_value("simswap_256"),
        lambda: panel.swapper.passes.setValue(2),
        lambda: panel.restorer.restorer.set_value("codeformer"),
        lambda: panel.restorer.fidelity.slider.setValue(50),
        lambda: panel.masks.box.setChecked(False),
        lambda: panel.masks.padding[2].setValue(5.0),
        lambda: panel.masks.feather.slider.setValue(25),
        lambda: panel.blend.edge.slider.setValue(40),
    ]
    for count, edit in enumerate(edits, start=1):
        edit()
        assert len(seen) == count
    final = seen[-1]
    assert final.analysis.detection.rotation == 30.0 and final.analysis.detector == "yunet_n_640"
    assert not final.tracking.enabled and final.tracking.stabiliser.value == "high"
    assert final.processing.swap.passes == 2 and final.processing.restore.fidelity == 0.5
    assert final.processing.mask.padding == (0.0, 0.0, 5.0, 0.0) and final.processing.mask.feather == 12.5
    assert final.processing.blend.edge_smoothing == 20.0
    assert panel.restorer.fidelity.isEnabled()
