"""The catalog's model kinds, in a module with no dependencies: the CLI's parser lists them as choices
without loading the catalog's pydantic models."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    DETECTOR = "detector"
    LANDMARKER = "landmarker"
    RECOGNISER = "recogniser"
    SWAPPER = "swapper"
    RESTORER = "restorer"
    MASK = "mask"
    UPSCALER = "upscaler"
    ANALYSER = "analyser"
