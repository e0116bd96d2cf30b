"""Identities: who a user means, as one embedding combined from one or more source faces, on disk as a
small versioned JSON file.

Each source face's normalised embedding is kept, so the combination (mean or median, re-normalised) can
be changed later without the source images, with its raw length (`norm`): some swappers (GhostFace, the
converters) read the raw vector, so a saved identity can be pasted exactly as its photos would be. A
file names the recogniser that made it: embeddings of different recognisers do not compare.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import torch
from pydantic import BaseModel, Field, ValidationError, field_validator

from app.core.errors import DoppelError
from app.faces.choices import Combine as Combine  # re-exported from its light home
from app.faces.types import unit

IDENTITY_FORMAT = "doppel.identity"
IDENTITY_VERSION = 1


class IdentityFileError(DoppelError):
    """An identity file is missing, unreadable, from a newer Doppel, or holds bad embeddings."""


def combine(embeddings: torch.Tensor, method: Combine = Combine.MEAN) -> torch.Tensor:
    """One unit embedding [D] from several [K, D]: each normalised, then their mean or element-wise
    median (which one odd source cannot drag away), normalised again."""
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"combine: expected [K, D] embeddings with K ≥ 1, got {list(embeddings.shape)}")
    normed = unit(embeddings.float())
    middle = normed.mean(dim=0) if method is Combine.MEAN else normed.median(dim=0).values
    return unit(middle)


class IdentitySource(BaseModel):
    label: str  # where the face came from, e.g. the image's file name
    embedding: list[float]  # unit length
    norm: float | None = Field(default=None, gt=0)  # the raw embedding's length; None: matching only


class Identity(BaseModel):
    format: str = IDENTITY_FORMAT
    version: int = IDENTITY_VERSION
    name: str
    recogniser: str
    method: Combine = Combine.MEAN
    sources: list[IdentitySource] = Field(min_length=1)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @field_validator("sources")
    @classmethod
    def _same_finite_width(cls, sources: list[IdentitySource]) -> list[IdentitySource]:
        widths = {len(source.embedding) for source in sources}
        if len(widths) != 1 or 0 in widths:
            raise ValueError(f"source embeddings must share one non-zero width, got widths {sorted(widths)}")
        if not all(math.isfinite(v) for source in sources for v in source.embedding):
            raise ValueError("source embeddings hold NaN or infinite values")
        return sources

    @classmethod
    def from_embeddings(
        cls, name: str, recogniser: str, embeddings: torch.Tensor, labels: list[str], method: Combine
    ) -> Identity:
        """From raw embeddings [K, D]: their directions and lengths are kept."""
        raw = embeddings.float().cpu()
        rows, norms = unit(raw).tolist(), raw.norm(dim=1).tolist()
        sources = [
            IdentitySource(label=label, embedding=row, norm=norm)
            for label, row, norm in zip(labels, rows, norms, strict=True)
        ]
        return cls(name=name, recogniser=recogniser, method=method, sources=sources)

    def source_embeddings(self, device: torch.device | None = None) -> torch.Tensor:
        return torch.tensor([source.embedding for source in self.sources], dtype=torch.float32, device=device)

    def raw_embeddings(self, device: torch.device | None = None) -> torch.Tensor:
        """The sources' raw embeddings [K, D] (direction x length), as a swapper reads them."""
        norms = [source.norm for source in self.sources]
        if any(norm is None for norm in norms):
            raise ValueError(
                f"identity '{self.name}' keeps directions only (made for matching faces); "
                "make it again from photos to paste it"
            )
        return self.source_embeddings(device) * torch.tensor(norms, device=device)[:, None]

    def embedding(self, device: torch.device | None = None) -> torch.Tensor:
        """The combined unit embedding [D]."""
        return combine(self.source_embeddings(device), self.method)

    def save(self, path: Path) -> None:
        """Written beside and renamed into place, so a crash never leaves half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> Identity:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IdentityFileError(f"{path}: no such identity file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise IdentityFileError(f"{path}: not a readable identity file ({error})") from None
        if not isinstance(data, dict) or data.get("format") != IDENTITY_FORMAT:
            raise IdentityFileError(f"{path}: not a Doppel identity file (format is not '{IDENTITY_FORMAT}')")
        version = data.get("version")
        if not isinstance(version, int):
            raise IdentityFileError(f"{path}: identity file has no version number")
        if version > IDENTITY_VERSION:
            raise IdentityFileError(
                f"{path}: identity file version {version} is newer than this Doppel reads "
                f"({IDENTITY_VERSION}); update Doppel"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise IdentityFileError(f"{path}: {problems}") from None
