"""Fast / Balanced / Quality: named starting points over the whole pipeline, and the user's own presets.

A built-in preset spans detection (input size, score, max faces), landmarks, tracking interval,
stabilisation, and the processing chain (swapper resolution, restorer, masks, colour, blend). It only
names models it can use: a restorer, mask or landmark model that is not installed is left out and
reported, rather than failing a quick job over an optional extra. Explicit user choices (command line
flags, GUI controls) are applied on top of the preset by the caller.

User presets are PipelineSettings saved as JSON, one file per preset, in the settings folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from app.core.errors import SettingsError
from app.core.paths import config_dir
from app.faces.detector import DetectionSettings
from app.pipeline.choices import Preset as Preset  # re-exported from its light home
from app.pipeline.settings import (
    AnalysisSettings,
    PipelineSettings,
    read_settings_file,
    write_settings_file,
)
from app.processing.settings import (
    BlendSettings,
    ColourSettings,
    MaskSettings,
    ProcessingSettings,
    RestoreSettings,
    SwapSettings,
)
from app.tracking.face_tracker import TrackingSettings
from app.tracking.stabiliser import StabiliserLevel


def preset_settings(
    preset: Preset, installed: Callable[[str], bool], swapper: str | None = None
) -> tuple[ProcessingSettings, list[str]]:
    """The preset's settings, and notes on what it left out because it is not installed."""
    notes: list[str] = []

    def optional(model_id: str) -> str | None:
        if installed(model_id):
            return model_id
        notes.append(f"{preset.value} preset: {model_id} is not installed, so it is not used")
        return None

    if preset is Preset.FAST:
        return ProcessingSettings(swap=SwapSettings(swapper=swapper)), notes
    if preset is Preset.BALANCED:
        return (
            ProcessingSettings(
                swap=SwapSettings(swapper=swapper, pixel_boost=256),
                mask=MaskSettings(feather=10.0),
                colour=ColourSettings(strength=0.5),
                blend=BlendSettings(edge_smoothing=25.0),
            ),
            notes,
        )
    return (
        ProcessingSettings(
            swap=SwapSettings(swapper=swapper, pixel_boost=512),
            restore=RestoreSettings(restorer=optional("gfpgan_1.4"), blend=0.8),
            mask=MaskSettings(feather=12.0, occluder=optional("occluder")),
            colour=ColourSettings(strength=0.7),
            blend=BlendSettings(edge_smoothing=50.0),
        ),
        notes,
    )


def preset_pipeline(
    preset: Preset, installed: Callable[[str], bool], swapper: str | None = None
) -> tuple[PipelineSettings, list[str]]:
    """The whole pipeline's settings for a preset, and notes on what it left out."""
    processing, notes = preset_settings(preset, installed, swapper)
    if preset is Preset.FAST:
        detection = DetectionSettings(score=0.6, size=320, max_faces=4)
        landmarker, interval, stabiliser = None, 3, StabiliserLevel.LOW
    elif preset is Preset.BALANCED:
        detection = DetectionSettings(score=0.5, size=640, max_faces=8)
        landmarker = "2dfan4" if installed("2dfan4") else None
        interval, stabiliser = 2, StabiliserLevel.MEDIUM
    else:
        detection = DetectionSettings(score=0.4, size=640, rotation="auto")
        landmarker, interval, stabiliser = "auto", 1, StabiliserLevel.MEDIUM
    settings = PipelineSettings(
        analysis=AnalysisSettings(detection=detection, landmarker=landmarker),
        tracking=TrackingSettings(interval=interval, stabiliser=stabiliser),
        processing=processing,
    )
    return settings, notes


_PRESET_NAME = re.compile(r"^[\w][\w .-]{0,63}$")


class UserPresets:
    """The user's presets: `<folder>/<name>.json`, each a PipelineSettings document."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or config_dir() / "presets"

    def path(self, name: str) -> Path:
        if not _PRESET_NAME.match(name) or name.strip() != name:
            raise SettingsError(
                f"Preset name '{name}' is not allowed: use up to 64 letters, digits, spaces, '.', '-', '_'"
            )
        if name.lower() in {p.value for p in Preset}:
            raise SettingsError(f"'{name}' is a built-in preset; choose another name")
        return self.folder / f"{name}.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def save(self, name: str, settings: PipelineSettings) -> Path:
        path = self.path(name)
        write_settings_file(path, settings)
        return path

    def load(self, name: str) -> PipelineSettings:
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none saved yet"
            raise SettingsError(f"No user preset '{name}' ({path} does not exist; presets: {known})")
        return read_settings_file(path)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)
