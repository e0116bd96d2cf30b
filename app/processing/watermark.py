"""The optional visible watermark: a short text in a corner, sized to the frame, half transparent.

The text is drawn once per frame height with Pillow (its bundled font scales), kept as a coverage map
on the frame's device, and blended there: white text over a soft dark outline, readable on any
background. The machine-readable label goes into the file's metadata regardless (app.media.labels).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.processing.choices import WATERMARK_TEXT

DEFAULT_TEXT = WATERMARK_TEXT
OPACITY = 0.6


@lru_cache(maxsize=8)
def _coverage(text: str, frame_height: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Text and outline coverage (float 0..1, [h, w, 1]) for a frame of this height, on its device."""
    size = max(10, frame_height // 28)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    pad = max(2, size // 6)
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, fill=255, font=font)
    outline = canvas.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.GaussianBlur(pad / 2))
    glyphs = torch.from_numpy(np.asarray(canvas, np.float32) / 255.0)[..., None].to(device)
    halo = torch.from_numpy(np.asarray(outline, np.float32) / 255.0)[..., None].to(device)
    return glyphs, halo


def apply_watermark(frame: torch.Tensor, text: str = DEFAULT_TEXT) -> torch.Tensor:
    """Stamp `text` into the bottom-right corner of a uint8 [H, W, 3] frame, in place."""
    height, width = int(frame.shape[0]), int(frame.shape[1])
    glyphs, halo = _coverage(text, height, frame.device)
    margin = max(4, height // 60)
    h, w = min(glyphs.shape[0], height - margin), min(glyphs.shape[1], width - margin)
    if h <= 0 or w <= 0:
        return frame
    y0, x0 = height - margin - h, width - margin - w
    text_alpha = glyphs[:h, :w] * OPACITY
    shadow_alpha = halo[:h, :w] * OPACITY * 0.6
    region = frame[y0 : y0 + h, x0 : x0 + w].float()
    region = region * (1.0 - shadow_alpha)
    region = region + text_alpha * (255.0 - region)
    frame[y0 : y0 + h, x0 : x0 + w] = region.round().clamp(0, 255).to(torch.uint8)
    return frame
