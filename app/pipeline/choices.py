"""The built-in preset names, apart from the presets themselves (app.pipeline.presets), which load the
engine: the CLI's parser lists them as choices without paying for torch."""

from __future__ import annotations

from enum import StrEnum


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    QUALITY = "quality"
