"""RGB → I420 (yuv420p) in torch, so export workers on the GPU hand the encoder frames it can take as
they are: converting there moves swscale's RGB → YUV step (several ms a 1080p frame, on the one thread
that feeds the encoder) onto the GPU, and halves the bytes copied to the host.

The encoder's colour tags are BT.709, limited range (VideoWriter), so that is what is produced here:
Y = 16 + 219·Y', Cb/Cr = 128 + 224·(B'−Y' or R'−Y')/scale, chroma averaged over each 2×2 block,
rounded to the nearest level. Sides are padded to even by repeating the last row and column, as
VideoWriter does for RGB frames. swscale differs from this by a level or so (its chroma filter is not a
plain box); tests/media/test_i420.py measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from app.core.graphed import Graphed
from app.media.yuv import KR_KB

KR, KB = KR_KB["bt709"]
KG = 1.0 - KR - KB


@dataclass(frozen=True)
class I420:
    """A frame as yuv420p planes packed one after another: uint8 [H·3/2, W] (Y rows, then U, then V,
    each chroma plane W/2 wide laid out two rows per packed row), with even W and H."""

    data: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ValueError(f"I420 needs even sides, got {self.width}x{self.height}")
        expected = (self.height * 3 // 2, self.width)
        if self.data.dtype != torch.uint8 or tuple(self.data.shape) != expected:
            raise ValueError(
                f"I420 data: expected uint8 {list(expected)}, got {self.data.dtype} {list(self.data.shape)}"
            )

    def cpu(self) -> I420:
        return I420(self.data.cpu(), self.width, self.height)

    def download(self) -> tuple[I420, torch.cuda.Event | None]:
        """A host copy queued on the current stream, into pinned memory (torch caches those blocks), and
        the event that says it has landed: wait on it before reading. The caller's thread goes on at
        once instead of waiting for its stream to drain. A host frame is returned as it is."""
        if not self.data.is_cuda:
            return self, None
        host = torch.empty(tuple(self.data.shape), dtype=torch.uint8, pin_memory=True)
        host.copy_(self.data, non_blocking=True)
        landed = torch.cuda.Event()  # type: ignore[no-untyped-call]
        landed.record()
        return I420(host, self.width, self.height), landed


def rgb_to_i420(image: torch.Tensor) -> I420:
    """uint8 [H, W, 3] RGB (any device) → I420 on the same device, sides padded to even."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_i420: expected uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    height, width = int(image.shape[0]), int(image.shape[1])
    return I420(_packed(image), width + width % 2, height + height % 2)


def _packed_i420(image: torch.Tensor) -> torch.Tensor:
    height, width = int(image.shape[0]), int(image.shape[1])
    rgb = image.permute(2, 0, 1).unsqueeze(0).float()  # [1, 3, H, W]
    pad_w, pad_h = width % 2, height % 2
    if pad_w or pad_h:
        rgb = functional.pad(rgb, (0, pad_w, 0, pad_h), mode="replicate")
    red, green, blue = rgb[0, 0], rgb[0, 1], rgb[0, 2]
    luma = KR * red + KG * green + KB * blue  # 0..255
    y = 16.0 + luma * (219.0 / 255.0)
    cb = 128.0 + (blue - luma) * (224.0 / 255.0 / (2.0 * (1.0 - KB)))
    cr = 128.0 + (red - luma) * (224.0 / 255.0 / (2.0 * (1.0 - KR)))
    chroma = functional.avg_pool2d(torch.stack([cb, cr]).unsqueeze(0), 2)[0]  # [2, H/2, W/2]
    even_h, even_w = height + pad_h, width + pad_w
    planes = torch.cat(
        [
            y.reshape(-1),
            chroma[0].reshape(-1),
            chroma[1].reshape(-1),
        ]
    )
    return planes.round_().clamp_(0, 255).to(torch.uint8).reshape(even_h * 3 // 2, even_w)


# About twenty kernels a frame on the export's workers: replayed as one graph per frame size.
_packed = Graphed(_packed_i420, "rgb → i420")
