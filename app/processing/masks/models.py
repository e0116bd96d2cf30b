"""Mask models, one small family each, run on the target face's crop resized to the model's side.

- occluder: logits, > 0 where the face is visible (hands, hair and glasses in front of it are < 0);
- xseg: the DeepFaceLab segmentation, a face probability in 0..1 (NCHW or NHWC exports);
- bisenet: a face parser's logits over 19 CelebAMask-HQ classes; the chosen regions are kept, softly
  (their summed softmax probability), so region edges are not stair-stepped.
Every family answers with a mask [1, 1, side, side] at the model's side; the masker resizes it.
"""

from __future__ import annotations

from typing import Protocol

import torch

from app.faces.preprocess import normalise
from app.models.catalog import ModelEntry
from app.processing.settings import PARSER_CLASSES


class MaskFamily(Protocol):
    def prepare(self, entry: ModelEntry, crop: torch.Tensor) -> torch.Tensor: ...

    def normalize(
        self, entry: ModelEntry, output: torch.Tensor, regions: tuple[str, ...]
    ) -> torch.Tensor: ...


def _nchw(entry: ModelEntry, output: torch.Tensor) -> torch.Tensor:
    return output.permute(0, 3, 1, 2) if entry.layout == "NHWC" else output


class _ImageMask:
    def prepare(self, entry: ModelEntry, crop: torch.Tensor) -> torch.Tensor:
        tensor = normalise(entry, crop)
        return tensor.permute(0, 2, 3, 1).contiguous() if entry.layout == "NHWC" else tensor


class Occluder(_ImageMask):
    def normalize(self, entry: ModelEntry, output: torch.Tensor, regions: tuple[str, ...]) -> torch.Tensor:
        return (_nchw(entry, output.float()) > 0).float()


class XSeg(_ImageMask):
    def normalize(self, entry: ModelEntry, output: torch.Tensor, regions: tuple[str, ...]) -> torch.Tensor:
        face = _nchw(entry, output.float()).clamp(0.0, 1.0)
        return torch.where(face < 0.1, 0.0, face)  # VisoMaster's floor: faint noise is background


class FaceParser(_ImageMask):
    def normalize(self, entry: ModelEntry, output: torch.Tensor, regions: tuple[str, ...]) -> torch.Tensor:
        keep = [PARSER_CLASSES.index(r) for r in regions]
        probabilities = _nchw(entry, output.float()).softmax(dim=1)
        return probabilities[:, keep].sum(dim=1, keepdim=True).clamp(0.0, 1.0)


FAMILIES: dict[str, MaskFamily] = {"occluder": Occluder(), "xseg": XSeg(), "bisenet": FaceParser()}
