"""Fast / Balanced / Quality: named starting points over ProcessingSettings.

A preset only names models it can use: a restorer or mask model that is not installed is left out
and reported, rather than failing a quick job over an optional extra. Explicit user choices (command
line flags, GUI controls) are applied on top of the preset by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from app.processing.settings import (
    BlendSettings,
    ColourSettings,
    MaskSettings,
    ProcessingSettings,
    RestoreSettings,
    SwapSettings,
)


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    QUALITY = "quality"


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
