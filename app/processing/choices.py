"""The processing vocabulary the CLI's parser lists (face-parser regions, the watermark's default text),
with no dependencies: app.processing.settings (pydantic) and app.processing.watermark (torch) import it
from here, so `--help` loads neither."""

from __future__ import annotations

from typing import Literal, get_args

# CelebAMask-HQ classes a face parser labels (BiSeNet), in its output order; the regions users can keep.
ParserRegion = Literal[
    "background",
    "skin",
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "glasses",
    "left_ear",
    "right_ear",
    "earring",
    "nose",
    "mouth",
    "upper_lip",
    "lower_lip",
    "neck",
    "necklace",
    "cloth",
    "hair",
    "hat",
]
PARSER_CLASSES: tuple[str, ...] = get_args(ParserRegion)
FACE_REGIONS: tuple[ParserRegion, ...] = (
    "skin",
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "glasses",
    "nose",
    "mouth",
    "upper_lip",
    "lower_lip",
)

WATERMARK_TEXT = "AI-generated"  # the visible watermark's text when the user gives none
