"""Source faces: the identity to paste, from one or more photos of the same person.

Each photo gives its most prominent face (area x score), embedded by the recogniser the swapper needs.
Several photos are combined like an Identity (mean of unit vectors, renormalised), then scaled to the
photos' mean raw norm, because some swappers (GhostFace, converters) read the raw vector, not its
direction alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from app.core.errors import DoppelError
from app.faces.detector import FaceDetector
from app.faces.identity import Combine, combine
from app.faces.recogniser import Recogniser
from app.faces.selection import prominence
from app.media.images import read_image


class NoFaceError(DoppelError):
    """An image that should show a face shows none the detector can find."""


@dataclass(frozen=True)
class SourceIdentity:
    recogniser: str
    labels: tuple[str, ...]
    embeddings: torch.Tensor  # raw, [N, D]

    def embedding(self, method: Combine = Combine.MEAN) -> torch.Tensor:
        """The combined raw embedding [D]."""
        direction = combine(self.embeddings, method)
        scaled: torch.Tensor = direction * self.embeddings.norm(dim=1).mean()
        return scaled


def load_sources(
    paths: Sequence[Path], detector: FaceDetector, recogniser: Recogniser, device: torch.device
) -> SourceIdentity:
    rows, labels = [], []
    for path in paths:
        frame = read_image(path).to(device)
        faces = detector.detect(frame)
        if not faces:
            raise NoFaceError(
                f"No face found in source image {path} (detector {detector.entry.id}): use a clear, "
                "front-facing photo, or lower the detection score"
            )
        face = max(faces, key=prominence)
        rows.append(recogniser.embeddings(frame, [face])[0])
        labels.append(path.name)
    return SourceIdentity(recogniser.entry.id, tuple(labels), torch.stack(rows))
