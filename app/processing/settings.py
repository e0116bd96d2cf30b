"""What the user chooses for swapping and compositing: typed, validated, immutable snapshots.

A worker takes one snapshot per request, so a slider moved mid-frame never tears a frame in two.
Percentages are 0..100 as the GUI shows them; strengths and blends are 0..1.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import DoppelError

# These live in a light module now (the CLI's parser lists them); importable here as before.
from app.processing.choices import FACE_REGIONS as FACE_REGIONS
from app.processing.choices import PARSER_CLASSES as PARSER_CLASSES
from app.processing.choices import ParserRegion as ParserRegion


class ProcessingSettingsError(DoppelError):
    """Settings that are valid on their own but not for the chosen model (a pixel boost it cannot tile)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SwapSettings(_Frozen):
    swapper: str | None = None  # None: the catalog's default swapper
    # 1 swaps the identity fully; below 1 the source latent moves toward the target's own (FaceFusion's
    # face swapper weight), so some of the original face shows through.
    strength: float = Field(default=1.0, ge=0.0, le=1.0)
    # Extra passes feed the swapped face back in (VisoMaster's strength above 100%): a stronger likeness.
    passes: int = Field(default=1, ge=1, le=4)
    # Pixel boost: run a 128/256-px model on a crop of this side by space-to-depth tiling (a multiple of
    # the model's side, at most 4x). None: the model's own side.
    pixel_boost: int | None = Field(default=None, ge=128, le=1024)


class RestoreSettings(_Frozen):
    restorer: str | None = None  # None: no restoration
    blend: float = Field(default=0.8, ge=0.0, le=1.0)  # how much of the restored face replaces the swap
    fidelity: float = Field(default=0.9, ge=0.0, le=1.0)  # CodeFormer's w: 1 keeps the input's identity


class MaskSettings(_Frozen):
    box: bool = True
    # Box padding in % of the crop side: top, right, bottom, left.
    padding: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    # Feather width in % of the face's size, so a 4K close-up and a distant face look alike.
    feather: float = Field(default=8.0, ge=0.0, le=50.0)
    occluder: str | None = None  # an occluder model id: hands, hair, glasses in front of the face stay
    xseg: str | None = None  # an XSeg model id: the DeepFaceLab face segmentation
    parser: str | None = None  # a face-parser model id; keeps `regions` only
    regions: tuple[ParserRegion, ...] = FACE_REGIONS


class ColourSettings(_Frozen):
    # Reinhard transfer of the target face's LAB statistics onto the swapped face; 0 is off.
    strength: float = Field(default=0.0, ge=0.0, le=1.0)


class BlendSettings(_Frozen):
    # Guided filter on the mask edge, driven by the frame, radius in % of the face size; 0 is off.
    edge_smoothing: float = Field(default=0.0, ge=0.0, le=100.0)


class ProcessingSettings(_Frozen):
    swap: SwapSettings = Field(default_factory=SwapSettings)
    restore: RestoreSettings = Field(default_factory=RestoreSettings)
    mask: MaskSettings = Field(default_factory=MaskSettings)
    colour: ColourSettings = Field(default_factory=ColourSettings)
    blend: BlendSettings = Field(default_factory=BlendSettings)
