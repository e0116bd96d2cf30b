"""PipelineSettings, presets and user presets: JSON round trips, clear errors, what each preset sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.errors import SettingsError
from app.models.catalog import Kind, load_catalog
from app.pipeline.presets import Preset, UserPresets, preset_pipeline
from app.pipeline.settings import PipelineSettings, models_needed, read_settings_file, write_settings_file
from app.tracking.stabiliser import StabiliserLevel


def test_presets_span_detection_tracking_stabilisation_and_processing() -> None:
    fast, _ = preset_pipeline(Preset.FAST, lambda model: True)
    quality, notes = preset_pipeline(Preset.QUALITY, lambda model: True)
    assert fast.analysis.detection.size < quality.analysis.detection.size
    assert fast.tracking.interval > quality.tracking.interval == 1
    assert fast.tracking.stabiliser is StabiliserLevel.LOW
    assert quality.processing.restore.restorer == "gfpgan_1.4" and quality.analysis.landmarker == "auto"
    assert fast.analysis.detection.max_faces > 0 and quality.analysis.detection.max_faces == 0
    assert notes == []


def test_a_preset_leaves_out_what_is_not_installed_and_says_so() -> None:
    quality, notes = preset_pipeline(Preset.QUALITY, lambda model: False)
    assert quality.processing.restore.restorer is None
    assert any("gfpgan_1.4 is not installed" in note for note in notes)


def test_settings_round_trip_through_json(tmp_path: Path) -> None:
    settings, _ = preset_pipeline(Preset.BALANCED, lambda model: True)
    path = tmp_path / "s.json"
    write_settings_file(path, settings)
    assert read_settings_file(path) == settings
    assert read_settings_file(path).fingerprint() == settings.fingerprint()


def test_the_analysis_key_follows_only_what_changes_the_faces() -> None:
    base = PipelineSettings()
    louder = base.model_copy(
        update={
            "processing": base.processing.model_copy(
                update={"colour": base.processing.colour.model_copy(update={"strength": 0.9})}
            )
        }
    )
    tracked = base.model_copy(update={"tracking": base.tracking.model_copy(update={"interval": 5})})
    assert louder.analysis_key() == base.analysis_key()  # colour does not move a face
    assert tracked.analysis_key() != base.analysis_key()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "is not valid JSON"),
        (json.dumps({"version": 7}), "settings version 7"),
        (json.dumps({"tracking": {"interval": 0}}), "tracking.interval"),
        (json.dumps({"colour": {}}), "colour"),
    ],
)
def test_bad_settings_files_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=message) as raised:
        read_settings_file(path)
    assert str(path) in str(raised.value)


def test_user_presets_save_list_load_delete(tmp_path: Path) -> None:
    presets = UserPresets(tmp_path / "presets")
    settings, _ = preset_pipeline(Preset.FAST, lambda model: True)
    presets.save("Stream night", settings)
    assert presets.names() == ["Stream night"]
    assert presets.load("Stream night") == settings
    presets.delete("Stream night")
    assert presets.names() == []
    with pytest.raises(SettingsError, match="No user preset 'gone'"):
        presets.load("gone")
    with pytest.raises(SettingsError, match="built-in preset"):
        presets.save("fast", settings)
    with pytest.raises(SettingsError, match="not allowed"):
        presets.save("../escape", settings)


def test_models_needed_names_what_the_settings_run() -> None:
    catalog = load_catalog()
    quality, _ = preset_pipeline(Preset.QUALITY, lambda model: True)
    needed = models_needed(quality, catalog)
    assert needed[:2] == [catalog.default_for(Kind.DETECTOR, "d"), catalog.default_for(Kind.SWAPPER, "s")]
    assert "gfpgan_1.4" in needed and "occluder" in needed
    fast, _ = preset_pipeline(Preset.FAST, lambda model: True, swapper="simswap_256")
    assert "simswap_256" in models_needed(fast, catalog) and "gfpgan_1.4" not in models_needed(fast, catalog)


def test_settings_saved_before_references_had_sources_still_load() -> None:
    import torch

    from app.faces.identity import Combine, Identity

    identity = Identity.from_embeddings("old", "arcface_w600k_r50", torch.randn(1, 512), ["a"], Combine.MEAN)
    saved = {"analysis": {"references": [identity.model_dump(mode="json")]}}
    loaded = PipelineSettings.model_validate(saved)
    assert loaded.analysis.references[0].target == identity and not loaded.analysis.references[0].source
