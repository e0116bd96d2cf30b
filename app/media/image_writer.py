"""Writing still images: the format from the suffix, alpha where the format holds it, the synthetic-media
label embedded, and the file renamed into place only when complete (app.media.atomic).

Where the label goes, per format (read back by app.media.labels.read_label):
- PNG: an iTXt chunk "doppel:synthetic-media" with the JSON, and the XMP packet under the keyword the
  XMP specification gives PNG ("XML:com.adobe.xmp").
- JPEG, WebP, TIFF: EXIF ImageDescription = the JSON, Software = "Doppel <version>", and the XMP packet
  (Pillow's `xmp=` for JPEG and WebP, the XMP tag 700 for TIFF).
- BMP has nowhere to put it, so a labelled BMP is refused rather than written unlabelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from app.media.atomic import AtomicFile
from app.media.errors import MediaWriteError
from app.media.labels import (
    EXIF_IMAGE_DESCRIPTION,
    EXIF_SOFTWARE,
    PNG_LABEL_KEY,
    PNG_XMP_KEY,
    SyntheticLabel,
    xmp_packet,
)

log = logging.getLogger(__name__)

TIFF_XMP_TAG = 700


@dataclass(frozen=True)
class ImageFormat:
    pillow: str  # Pillow's format name
    alpha: bool  # can hold an alpha channel
    label: bool  # has room for the synthetic-media label


FORMATS = {
    ".png": ImageFormat("PNG", alpha=True, label=True),
    ".jpg": ImageFormat("JPEG", alpha=False, label=True),
    ".jpeg": ImageFormat("JPEG", alpha=False, label=True),
    ".webp": ImageFormat("WEBP", alpha=True, label=True),
    ".tif": ImageFormat("TIFF", alpha=True, label=True),
    ".tiff": ImageFormat("TIFF", alpha=True, label=True),
    ".bmp": ImageFormat("BMP", alpha=False, label=False),
}
IMAGE_SUFFIXES = tuple(FORMATS)


def write_image(
    path: Path,
    frame: torch.Tensor,
    alpha: torch.Tensor | None = None,
    label: SyntheticLabel | None = None,
    quality: int = 95,
) -> tuple[str, ...]:
    """Write a uint8 [H, W, 3] RGB frame (and optional uint8 [H, W] alpha) to `path`.

    Returns notes on what could not be kept (alpha in a format without it). `quality` (1..100) applies
    to JPEG and WebP. Raises MediaWriteError naming the file or folder; no partial file is left behind.
    """
    image_format = _format_for(path)
    if label is not None and not image_format.label:
        raise MediaWriteError(
            f"Cannot write {path}: {path.suffix} files cannot hold the synthetic-media label; "
            "choose PNG, JPEG, WebP or TIFF"
        )
    if not 1 <= quality <= 100:
        raise MediaWriteError(f"Cannot write {path}: quality must be 1..100, got {quality}")
    pixels = _pixels(path, frame, alpha)
    notes: list[str] = []
    if alpha is not None and not image_format.alpha:
        notes.append(f"alpha dropped: {image_format.pillow} has no alpha channel")
        log.warning("%s: %s", path, notes[-1])
        pixels = pixels[:, :, :3]
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options = _save_options(image_format, label, quality)

    with AtomicFile(path) as target:
        try:
            image.save(target.partial, format=image_format.pillow, **options)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # Pillow's encoders fail in all of these
            raise MediaWriteError(f"Cannot write {path}: {exc}") from exc
        target.commit()
    return tuple(notes)


def _format_for(path: Path) -> ImageFormat:
    image_format = FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise MediaWriteError(
            f"Cannot write {path}: unsupported image suffix '{path.suffix}' "
            f"(supported: {', '.join(IMAGE_SUFFIXES)})"
        )
    return image_format


def _pixels(path: Path, frame: torch.Tensor, alpha: torch.Tensor | None) -> np.ndarray:
    """The frame (and alpha) as one HxWx3 or HxWx4 uint8 array, after checking what came in."""
    if (
        not isinstance(frame, torch.Tensor)
        or frame.dtype != torch.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
    ):
        shape = list(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
        dtype = frame.dtype if isinstance(frame, torch.Tensor) else "?"
        raise MediaWriteError(f"Cannot write {path}: expected a uint8 [H, W, 3] frame, got {shape} {dtype}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if height == 0 or width == 0:
        raise MediaWriteError(f"Cannot write {path}: the frame is empty ({width}x{height})")
    rgb = frame.detach().cpu().numpy()
    if alpha is None:
        return rgb
    if alpha.dtype != torch.uint8 or tuple(alpha.shape) != (height, width):
        raise MediaWriteError(
            f"Cannot write {path}: expected a uint8 [{height}, {width}] alpha, "
            f"got {list(alpha.shape)} {alpha.dtype}"
        )
    return np.dstack([rgb, alpha.detach().cpu().numpy()])


def _save_options(image_format: ImageFormat, label: SyntheticLabel | None, quality: int) -> dict[str, Any]:
    options: dict[str, Any] = {}
    name = image_format.pillow
    if name in ("JPEG", "WEBP"):
        options["quality"] = quality
    if name == "TIFF":
        options["compression"] = "tiff_adobe_deflate"  # lossless and widely read; raw TIFFs are huge
    if name == "PNG":
        options["optimize"] = False  # the default zlib level; "optimize" triples the time for ~5%
    if label is None:
        return options
    xmp = xmp_packet(label)
    if name == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(PNG_LABEL_KEY, label.to_json())
        info.add_itxt(PNG_XMP_KEY, xmp.decode())
        options["pnginfo"] = info
        return options
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = label.to_json()
    exif[EXIF_SOFTWARE] = label.software
    if name == "TIFF":
        exif[TIFF_XMP_TAG] = xmp  # TIFF carries XMP as a tag; Pillow has no xmp= for it
    else:
        options["xmp"] = xmp
    options["exif"] = exif
    return options
