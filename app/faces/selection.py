"""Which of a frame's faces get swapped: one (the most prominent), many (all), or the ones that look like
a reference identity (cosine similarity of normalised embeddings at or above a threshold).

Reference mode needs the faces embedded by the recogniser the identities were made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import torch

from app.faces.identity import Identity
from app.faces.types import Face, unit

DEFAULT_SIMILARITY = 0.4  # cosine; FaceFusion's reference distance 0.6 is the same line


class SelectionMode(StrEnum):
    ONE = "one"
    MANY = "many"
    REFERENCE = "reference"


@dataclass(frozen=True)
class SelectionSettings:
    mode: SelectionMode = SelectionMode.MANY
    similarity: float = DEFAULT_SIMILARITY


@dataclass(frozen=True)
class Selected:
    face: Face
    identity: int | None = None  # index of the reference it matched (reference mode)
    similarity: float | None = None


def similarities(faces: Sequence[Face], identities: Sequence[Identity]) -> torch.Tensor:
    """Cosine similarity [faces, identities]."""
    missing = [i for i, face in enumerate(faces) if face.embedding is None]
    if missing:
        raise ValueError(f"reference selection needs embedded faces; face(s) {missing} have no embedding")
    if not faces or not identities:
        return torch.zeros((len(faces), len(identities)))
    rows = unit(torch.stack([face.embedding for face in faces if face.embedding is not None]).float().cpu())
    references = torch.stack([identity.embedding() for identity in identities])
    if rows.shape[1] != references.shape[1]:
        raise ValueError(f"embeddings are {rows.shape[1]}-d but the references are {references.shape[1]}-d")
    return rows @ references.T


def prominence(face: Face) -> float:
    return face.width * face.height * face.score


def select(
    faces: Sequence[Face], settings: SelectionSettings, identities: Sequence[Identity] = ()
) -> list[Selected]:
    if settings.mode is SelectionMode.MANY:
        return [Selected(face) for face in faces]
    if settings.mode is SelectionMode.ONE:
        return [Selected(max(faces, key=prominence))] if faces else []
    if not identities:
        raise ValueError("reference selection needs at least one reference identity")
    scores = similarities(faces, identities)
    chosen = []
    for face, row in zip(faces, scores, strict=True):
        best = int(row.argmax())
        if float(row[best]) >= settings.similarity:
            chosen.append(Selected(face, best, float(row[best])))
    return chosen
