"""Reading still images into VisionFrames (uint8 [H, W, 3] RGB torch tensors).

EXIF orientation is applied, greyscale and palette images become RGB, and alpha is dropped (composited
on black) so every stage sees one format. Issue 5 extends this (16-bit, CMYK policy, writing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import DoppelError


class ImageReadError(DoppelError):
    """An image file is missing, unreadable or not an image; the message names it."""


def read_image(path: Path) -> torch.Tensor:
    if not path.is_file():
        raise ImageReadError(f"Image {path} does not exist")
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f"Image {path} cannot be read: {exc}") from exc
    return torch.from_numpy(np.array(rgb, dtype=np.uint8))
