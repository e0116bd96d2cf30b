"""The stabiliser's levels, apart from app.tracking.stabiliser (torch, OpenCV): the CLI's parser lists
them as choices without loading the engine."""

from __future__ import annotations

from enum import StrEnum


class StabiliserLevel(StrEnum):
    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
