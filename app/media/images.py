"""Still images in and out: every stage sees uint8 [H, W, 3] RGB torch tensors (VisionFrames).

Reading (`load_image`) turns what cameras, editors and the web produce into that one format and says
what it changed (`LoadedImage.notes`), so a user can be told why an output looks different: EXIF
orientation is applied; alpha is kept beside the frame so it can be written back; 16-bit images are
scaled to 8 bits; greyscale, palette and other colour modes become RGB; CMYK goes through its embedded
ICC profile when it has one. Files Doppel cannot use honestly (animated, truncated, absurdly large)
are refused with the file named, rather than half-read. `read_image` is the frame alone.

Writing lives in app.media.image_writer (`write_image`, re-exported here).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from app.media.errors import ImageReadError
from app.media.image_writer import IMAGE_SUFFIXES, write_image

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_SIDE",
    "ImageReadError",
    "LoadedImage",
    "load_image",
    "read_image",
    "write_image",
]

log = logging.getLogger(__name__)

MAX_SIDE = 16384  # per side; beyond this an image is a mistake or an attack, not a photo to swap faces in
EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_MODES = frozenset({"I", "F"})  # 32-bit integer and float samples


@dataclass(frozen=True)
class LoadedImage:
    frame: torch.Tensor  # uint8 [H, W, 3] RGB, upright
    alpha: torch.Tensor | None  # uint8 [H, W], upright, or None when the file has no transparency
    bit_depth: int  # of the file's samples: 8, or 16 for anything wider (the frame is always 8-bit)
    mode: str  # Pillow's mode of the file as stored, e.g. "RGBA", "I;16", "CMYK"
    notes: tuple[str, ...]  # what was converted on the way, in words

    @property
    def height(self) -> int:
        return int(self.frame.shape[0])

    @property
    def width(self) -> int:
        return int(self.frame.shape[1])


def read_image(path: Path) -> torch.Tensor:
    """The upright uint8 [H, W, 3] RGB frame of an image file (alpha, if any, is left out)."""
    return load_image(path).frame


def load_image(path: Path) -> LoadedImage:
    """Read one still image; ImageReadError names the file and the problem when it cannot be used
    ("Image <path> does not exist" or "Image <path> cannot be read: <why>")."""
    if not path.exists():
        raise ImageReadError(f"Image {path} does not exist")
    if not path.is_file():
        raise ImageReadError(f"Image {path} is not a file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"Image {path} cannot be read: the file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            _check_header(path, image)
            bit_depth = _bit_depth(image)  # from the tile descriptors, which load() clears
            mode = image.mode
            try:
                image.load()  # force the whole decode here: Pillow is lazy and truncation shows only now
            except OSError as exc:
                raise ImageReadError(
                    f"Image {path} cannot be read: it is truncated or damaged ({exc})"
                ) from exc
            return _convert(image, bit_depth, mode)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"Image {path} cannot be read: not an image Pillow can read ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"Image {path} cannot be read: too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's plugins report bad headers this way
        raise ImageReadError(f"Image {path} cannot be read: {exc}") from exc


def _check_header(path: Path, image: Image.Image) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise ImageReadError(
            f"Image {path} cannot be read: it has {frames} frames; animated images are not supported; "
            "use a video (multi-page files are refused the same way)"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"Image {path} cannot be read: it has zero size ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageReadError(
            f"Image {path} cannot be read: {width}x{height} is too large "
            f"(sides above {MAX_SIDE} pixels are not supported)"
        )


def _bit_depth(image: Image.Image) -> int:
    if image.mode.startswith("I;16") or image.mode in _WIDE_MODES:
        return 16
    # 16-bit RGB(A) PNGs and TIFFs open as 8-bit modes; only the raw mode ("RGB;16B") tells.
    tiles = image.tile if isinstance(image, ImageFile.ImageFile) else []
    return 16 if any(";16" in str(tile.args) for tile in tiles) else 8


def _convert(image: Image.Image, bit_depth: int, mode: str) -> LoadedImage:
    notes: list[str] = []
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    if orientation not in (None, 1):
        upright = ImageOps.exif_transpose(image)
        notes.append(f"EXIF orientation {orientation} applied")
    else:
        upright = image

    alpha: np.ndarray | None = None
    if mode in _ALPHA_MODES or upright.has_transparency_data:
        with_alpha = upright.convert("LA" if mode.startswith("I;16") or mode in _WIDE_MODES else "RGBA")
        alpha = np.array(with_alpha.getchannel("A"), dtype=np.uint8)
        if mode not in _ALPHA_MODES:
            notes.append(f"transparency of the {mode} image kept as an alpha channel")

    rgb = _to_rgb(upright, mode, bit_depth, notes)
    frame = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.uint8))
    alpha_tensor = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha))
    for note in notes:
        log.debug("%s: %s", image.filename if hasattr(image, "filename") else "image", note)
    return LoadedImage(frame, alpha_tensor, bit_depth, mode, tuple(notes))


def _to_rgb(image: Image.Image, mode: str, bit_depth: int, notes: list[str]) -> np.ndarray:
    if mode.startswith("I;16") or mode in _WIDE_MODES:
        grey = _wide_to_8bit(image, mode, notes)
        notes.append("greyscale expanded to RGB")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "CMYK":
        return _cmyk_to_rgb(image, notes)
    if bit_depth == 16:
        notes.append(f"16-bit {mode} scaled to 8 bits per channel")
    if mode in ("L", "LA", "La", "1"):
        notes.append("greyscale expanded to RGB")
    elif mode not in ("RGB", "RGBA", "RGBa", "RGBX"):
        notes.append(f"{mode} converted to RGB")
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _wide_to_8bit(image: Image.Image, mode: str, notes: list[str]) -> np.ndarray:
    samples = np.array(image)
    if mode == "F":
        finite = samples[np.isfinite(samples)]
        top = 1.0 if finite.size == 0 or float(finite.max()) <= 1.0 else 255.0
        notes.append(f"32-bit float samples scaled from 0..{top:g} to 8 bits")
        scaled: np.ndarray = np.clip(np.nan_to_num(samples) * (255.0 / top), 0, 255).round()
        return scaled.astype(np.uint8)
    wide = np.clip(samples.astype(np.int64), 0, 65535)
    notes.append(f"{'16' if mode.startswith('I;16') else '32'}-bit samples scaled to 8 bits (÷257)")
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _cmyk_to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            notes.append(f"CMYK converted to RGB naively: its ICC profile could not be used ({exc})")
        else:
            if converted is not None:
                notes.append("CMYK converted to sRGB through the embedded ICC profile")
                return np.array(converted, dtype=np.uint8)
    else:
        notes.append("CMYK converted to RGB naively (no ICC profile embedded; colours may be off)")
    return np.array(image.convert("RGB"), dtype=np.uint8)
