"""Recogniser: ArcFace-family embeddings of a frame's faces, raw and normalised.

Each face is aligned to the catalog's template for the model (arcface_112_v2 for ArcFace) by its five
keypoints, coloured and normalised as the catalog says, and embedded; faces share one call when the
model takes a batch. The raw vector is what swappers such as GhostFace consume; Face.normed_embedding
(unit length) is what similarity uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from app.core.errors import CatalogError
from app.faces.alignment import crop_face
from app.faces.preprocess import fixed_side, normalise
from app.faces.types import Face, VisionFrame, check_frame
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind

FAMILIES = ("arcface",)


class Recogniser:
    def __init__(self, runtime: InferenceRuntime, model_id: str) -> None:
        self.runtime = runtime
        self.entry = runtime.store.catalog.get(model_id)
        if self.entry.kind is not Kind.RECOGNISER or self.entry.family not in FAMILIES:
            raise CatalogError(
                f"{model_id} is a {self.entry.kind} of family '{self.entry.family}', not a face recogniser "
                f"({', '.join(FAMILIES)})"
            )
        self.template = self.entry.alignment if self.entry.alignment != "none" else "arcface_112_v2"
        self.size = fixed_side(self.entry, 112)

    def prepare(self, frame: VisionFrame, face: Face) -> torch.Tensor:
        crop, _ = crop_face(frame, face.kps.cpu(), self.template, self.size)
        return normalise(self.entry, crop)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.runtime.run_ordered(self.entry.id, tensor)[0]

    def embeddings(self, frame: VisionFrame, faces: Sequence[Face]) -> torch.Tensor:
        """Raw embeddings [K, D], one row per face, on the frame's device."""
        check_frame(frame)
        if not faces:
            width = self.entry.outputs[0].shape[-1]
            return torch.zeros((0, width if isinstance(width, int) else 0), device=frame.device)
        crops = [self.prepare(frame, face) for face in faces]
        if len(crops) > 1 and self.runtime.takes_a_batch(self.entry.id):
            rows = self.forward(torch.cat(crops))
        else:
            rows = torch.cat([self.forward(crop) for crop in crops])
        return rows.reshape(len(faces), -1).float().to(frame.device)

    def embed(self, frame: VisionFrame, faces: Sequence[Face]) -> list[Face]:
        rows = self.embeddings(frame, faces)
        return [dataclasses.replace(face, embedding=row) for face, row in zip(faces, rows, strict=True)]
