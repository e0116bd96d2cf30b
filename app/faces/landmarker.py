"""Landmarker: any catalog landmarker on a frame's faces; AutoLandmarker: the right one for each face.

Several faces go through one session call when the model's input takes a batch; otherwise one call each.
The automatic mode picks a chain of models by face size (the shorter side of the box) and walks it
until one is confident enough; if none is, the most confident answer stands. Only installed models are
candidates, so a user who has downloaded one landmarker gets that one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from app.core.errors import CatalogError
from app.faces.landmarks.base import LandmarkerFamily, Landmarks
from app.faces.landmarks.facemesh import FaceMesh478
from app.faces.landmarks.fan2d import Fan2d
from app.faces.landmarks.fan_68_5 import Fan68From5
from app.faces.landmarks.insightface import InsightFace3d68, InsightFace106
from app.faces.landmarks.liveportrait import LivePortrait203
from app.faces.landmarks.peppapig import PeppaPig98
from app.faces.types import Face, VisionFrame, check_frame
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind

log = logging.getLogger(__name__)

FAMILIES: dict[str, type] = {
    "2dfan4": Fan2d,
    "insightface_106": InsightFace106,
    "insightface_3d68": InsightFace3d68,
    "liveportrait_203": LivePortrait203,
    "facemesh_478": FaceMesh478,
    "peppapig_98": PeppaPig98,
    "fan_68_5": Fan68From5,
}


class Landmarker:
    def __init__(self, runtime: InferenceRuntime, model_id: str) -> None:
        self.runtime = runtime
        self.entry = runtime.store.catalog.get(model_id)
        if self.entry.kind is not Kind.LANDMARKER:
            raise CatalogError(f"{model_id} is a {self.entry.kind}, not a landmarker")
        try:
            self.family: LandmarkerFamily = FAMILIES[self.entry.family](self.entry)
        except KeyError:
            known = ", ".join(sorted(FAMILIES))
            raise CatalogError(
                f"{model_id}: landmarker family '{self.entry.family}' is not supported ({known})"
            ) from None

    def forward(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """The outputs, on the CPU: points are a few hundred numbers, decoded there without syncs."""
        return [output.cpu() for output in self.runtime.run_ordered(self.entry.id, tensor)]

    def landmarks(self, frame: VisionFrame, faces: Sequence[Face]) -> list[Landmarks]:
        check_frame(frame)
        return self._landmarks([(frame, face) for face in faces])

    def _landmarks(self, pairs: Sequence[tuple[VisionFrame, Face]]) -> list[Landmarks]:
        """Each (frame, face): faces of one frame or of several go through the model together, in
        calls of at most the runtime's batch limit, where the model takes a batch."""
        if not pairs:
            return []
        prepared = [self.family.prepare(frame, face) for frame, face in pairs]
        per_face: list[list[torch.Tensor]] = []
        if len(pairs) > 1 and self.runtime.takes_a_batch(self.entry.id):
            step = self.runtime.batch_limit
            for first in range(0, len(prepared), step):
                part = prepared[first : first + step]
                outputs = self.forward(torch.cat([tensor for tensor, _ in part]))
                per_face += [[output[i : i + 1] for output in outputs] for i in range(len(part))]
        else:
            per_face = [self.forward(tensor) for tensor, _ in prepared]
        return [
            self.family.normalize(outputs, matrix, face)
            for outputs, (_, matrix), (_, face) in zip(per_face, prepared, pairs, strict=True)
        ]

    def apply(self, frame: VisionFrame, faces: Sequence[Face]) -> list[Face]:
        return self.apply_many([frame], [faces])[0]

    def apply_many(self, frames: Sequence[VisionFrame], faces: Sequence[Sequence[Face]]) -> list[list[Face]]:
        """The faces of several frames, with landmarks, all through the model together."""
        for frame in frames:
            check_frame(frame)
        pairs = [(frame, face) for frame, found in zip(frames, faces, strict=True) for face in found]
        marked = iter(self._landmarks(pairs))
        return [[with_landmarks(face, next(marked), self.entry.id) for face in found] for found in faces]


def with_landmarks(face: Face, found: Landmarks, model_id: str) -> Face:
    return dataclasses.replace(
        face, landmarks=found.points, landmark_confidence=found.confidence, landmark_model=model_id
    )


@dataclass(frozen=True)
class LandmarkRoute:
    min_face: float  # pixels, the shorter side of the box
    models: tuple[str, ...]  # tried in order until one is confident


AUTO_ROUTES = (
    LandmarkRoute(0, ("fan_68_5",)),  # below 64 px the five detector points are all the evidence there is
    LandmarkRoute(64, ("2dfan4", "2d106det", "1k3d68", "peppapig_98", "fan_68_5")),
    LandmarkRoute(192, ("face_mesh_478", "landmark_203", "2dfan4", "2d106det", "1k3d68", "fan_68_5")),
)


class AutoLandmarker:
    def __init__(
        self,
        runtime: InferenceRuntime,
        min_confidence: float = 0.5,
        routes: Sequence[LandmarkRoute] = AUTO_ROUTES,
    ) -> None:
        self.runtime = runtime
        self.min_confidence = min_confidence
        self.routes = sorted(routes, key=lambda route: route.min_face)
        self._landmarkers: dict[str, Landmarker] = {}

    def installed(self) -> set[str]:
        store = self.runtime.store
        return {
            entry.id
            for entry in store.catalog
            if entry.kind is Kind.LANDMARKER and store.status(entry).usable
        }

    def chain_for(self, face: Face, installed: set[str]) -> list[str]:
        route = next(r for r in reversed(self.routes) if face.size >= r.min_face)
        return [model for model in route.models if model in installed]

    def _landmarker(self, model_id: str) -> Landmarker:
        if model_id not in self._landmarkers:
            self._landmarkers[model_id] = Landmarker(self.runtime, model_id)
        return self._landmarkers[model_id]

    def apply_many(self, frames: Sequence[VisionFrame], faces: Sequence[Sequence[Face]]) -> list[list[Face]]:
        """Frame by frame: each face's chain of models is decided by what the last one answered."""
        return [self.apply(frame, found) for frame, found in zip(frames, faces, strict=True)]

    def apply(self, frame: VisionFrame, faces: Sequence[Face]) -> list[Face]:
        """Each face with the first confident landmarks of its chain (else the most confident); faces
        whose chain has no installed model come back unchanged."""
        installed = self.installed()
        chains = [self.chain_for(face, installed) for face in faces]
        best: list[tuple[Landmarks, str] | None] = [None] * len(faces)
        pending = [i for i, chain in enumerate(chains) if chain]
        if len(pending) < len(faces):
            log.info("no installed landmarker suits %d face(s)", len(faces) - len(pending))
        step = 0
        while pending:
            by_model: dict[str, list[int]] = {}
            for index in pending:
                by_model.setdefault(chains[index][step], []).append(index)
            still = []
            for model_id, indices in by_model.items():
                found = self._landmarker(model_id).landmarks(frame, [faces[i] for i in indices])
                for index, answer in zip(indices, found, strict=True):
                    current = best[index]
                    if current is None or answer.confidence > current[0].confidence:
                        best[index] = (answer, model_id)
                    if answer.confidence < self.min_confidence and step + 1 < len(chains[index]):
                        still.append(index)
            pending, step = still, step + 1
        return [
            face if answer is None else with_landmarks(face, answer[0], answer[1])
            for face, answer in zip(faces, best, strict=True)
        ]
