"""Source faces: who gets pasted, from photos of a person and saved identity files.

Each photo gives its most prominent face (area x score), embedded by the recogniser the swapper needs;
an identity file gives the embeddings it keeps (made by that same recogniser, or it is refused). They
are combined like an Identity (the mean or median of unit vectors, renormalised), then scaled to the
sources' mean raw length, because some swappers (GhostFace, converters) read the raw vector, not its
direction alone.

A Cast is what one settings snapshot pastes: the job's own source for every selected face, and in
reference mode each reference's own source for the faces that matched it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from app.core.errors import DoppelError
from app.faces.detector import FaceDetector
from app.faces.identity import Combine, Identity, IdentityFileError, combine
from app.faces.recogniser import Recogniser
from app.faces.selection import prominence
from app.faces.types import Face
from app.media.images import read_image
from app.pipeline.settings import PipelineSettings, SourceFace

IDENTITY_SUFFIX = ".json"  # saved identities are JSON files (written as NAME.identity.json)


class NoFaceError(DoppelError):
    """An image that should show a face shows none the detector can find."""


class NoSourceError(DoppelError):
    """Faces are to be swapped but nobody was chosen to paste onto them."""


@dataclass(frozen=True)
class SourceIdentity:
    recogniser: str
    labels: tuple[str, ...]
    embeddings: torch.Tensor  # raw, [N, D]
    method: Combine = Combine.MEAN

    def embedding(self) -> torch.Tensor:
        """The combined raw embedding [D]."""
        direction = combine(self.embeddings, self.method)
        scaled: torch.Tensor = direction * self.embeddings.norm(dim=1).mean()
        return scaled

    def to_identity(self, name: str) -> Identity:
        """As an identity file keeps it (directions and lengths), to save and paste again later."""
        labels = list(self.labels)
        return Identity.from_embeddings(name, self.recogniser, self.embeddings, labels, self.method)


def is_identity_file(path: Path) -> bool:
    return path.suffix.lower() == IDENTITY_SUFFIX


def load_sources(
    paths: Sequence[Path],
    detector: FaceDetector,
    recogniser: Recogniser,
    device: torch.device,
    method: Combine | None = None,
) -> SourceIdentity:
    """One person from photos and identity files; `method` None: a lone identity file's own choice,
    else the mean."""
    rows: list[torch.Tensor] = []
    labels: list[str] = []
    identities: list[Identity] = []
    for path in paths:
        if is_identity_file(path):
            identity = _identity_file(path, recogniser.entry.id)
            identities.append(identity)
            rows.extend(identity.raw_embeddings(device))
            labels.extend(f"{path.name}: {source.label}" for source in identity.sources)
            continue
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
    if not rows:
        raise NoSourceError("No source face: add a photo of the face to paste, or load an identity")
    if method is None:
        method = identities[0].method if len(identities) == 1 and len(paths) == 1 else Combine.MEAN
    return SourceIdentity(recogniser.entry.id, tuple(labels), torch.stack(rows), method)


def _identity_file(path: Path, recogniser: str) -> Identity:
    identity = Identity.load(path)
    if identity.recogniser != recogniser:
        raise IdentityFileError(
            f"{path}: made with recogniser '{identity.recogniser}', but the swapper needs '{recogniser}'; "
            "make it again from photos with this swapper chosen"
        )
    try:
        identity.raw_embeddings()
    except ValueError as error:
        raise IdentityFileError(f"{path}: {error}") from None
    return identity


@dataclass(frozen=True)
class Cast:
    """Who is pasted where under one settings snapshot."""

    default: SourceIdentity | None  # for every selected face without a source of its own
    by_reference: tuple[SourceIdentity | None, ...] = ()  # reference i's own source, if any

    def source_for(self, face: Face) -> SourceIdentity | None:
        if face.reference is not None and face.reference < len(self.by_reference):
            own = self.by_reference[face.reference]
            if own is not None:
                return own
        return self.default

    @property
    def empty(self) -> bool:
        return self.default is None and not any(self.by_reference)


class SourceLoader:
    """Loads source faces for one detector and recogniser, each distinct one once."""

    def __init__(self, detector: FaceDetector, recogniser: Recogniser, device: torch.device) -> None:
        self.detector, self.recogniser, self.device = detector, recogniser, device
        self._loaded: dict[SourceFace, SourceIdentity] = {}

    def load(self, face: SourceFace) -> SourceIdentity:
        if face not in self._loaded:
            self._loaded[face] = load_sources(
                face.files, self.detector, self.recogniser, self.device, face.combine
            )
        return self._loaded[face]

    def cast(self, default: SourceFace, settings: PipelineSettings) -> Cast:
        references = settings.analysis.references
        return Cast(
            self.load(default) if default else None,
            tuple(self.load(r.source) if r.source else None for r in references),
        )


def require_complete(cast: Cast, settings: PipelineSettings) -> None:
    """A job must know whom to paste on every face its settings select."""
    references = settings.analysis.references
    if cast.default is not None:
        return
    if settings.analysis.selection.mode != "reference" or not references:
        raise NoSourceError("No source face: add a photo of the face to paste, or load an identity")
    missing = [i + 1 for i, own in enumerate(cast.by_reference) if own is None]
    if missing:
        raise NoSourceError(
            f"Reference face(s) {missing} have no source face of their own and the job has none: "
            "add a source photo, or assign one to each"
        )
