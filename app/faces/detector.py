"""FaceDetector: any catalog detector, with score, NMS, size and count limits and rotation-robust mode.

Several frames go through one session call when the model's input takes a batch (its first axis is
symbolic in the catalog); otherwise they run one after another through the same session.

Rotation-robust mode first detects upright. A face whose eye line is rolled past the threshold (automatic:
50°, or a chosen angle such as 40°), or an empty result, sends the detector round the other three quarter
turns; what each finds upright is mapped back into the frame, and the best of overlapping finds is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from app.core.errors import CatalogError
from app.faces.detectors.base import DetectorFamily, RawDetections
from app.faces.detectors.retinaface import RetinaFace
from app.faces.detectors.scrfd import Scrfd
from app.faces.detectors.yolo_face import YoloFace
from app.faces.detectors.yunet import YuNet
from app.faces.geometry import Letterbox, nms_host, rotate_frame, unrotate_host
from app.faces.types import Face, VisionFrame, check_frame
from app.inference.runtime import InferenceRuntime
from app.models.catalog import Kind, ModelEntry

AUTO_ROLL_LIMIT = 50.0  # degrees: beyond this a face is looked for again in a quarter-turned frame
FAMILIES: dict[str, type] = {"scrfd": Scrfd, "retinaface": RetinaFace, "yolov8face": YoloFace, "yunet": YuNet}


@dataclass(frozen=True)
class DetectionSettings:
    score: float = 0.5
    nms: float = 0.4
    max_faces: int = 0  # 0: no limit
    min_size: float = 0.0  # pixels, the shorter side of the box
    size: int = 640  # input side for models that accept any size (160..640)
    rotation: Literal["off", "auto"] | float = "off"  # a float is the roll limit in degrees

    def roll_limit(self) -> float | None:
        if self.rotation == "off":
            return None
        return AUTO_ROLL_LIMIT if self.rotation == "auto" else float(self.rotation)


def family_for(entry: ModelEntry) -> DetectorFamily:
    try:
        family: DetectorFamily = FAMILIES[entry.family](entry)
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise CatalogError(
            f"{entry.id}: detector family '{entry.family}' is not supported ({known})"
        ) from None
    return family


def _eye_roll(kps: np.ndarray) -> np.ndarray:
    """Roll in degrees of each face [K, 5, 2] from its eye line."""
    delta = kps[:, 1] - kps[:, 0]
    roll: np.ndarray = np.degrees(np.arctan2(delta[:, 1], delta[:, 0]))
    return roll


class FaceDetector:
    def __init__(
        self, runtime: InferenceRuntime, model_id: str, settings: DetectionSettings | None = None
    ) -> None:
        self.runtime = runtime
        self.entry = runtime.store.catalog.get(model_id)
        if self.entry.kind is not Kind.DETECTOR:
            raise CatalogError(f"{model_id} is a {self.entry.kind}, not a face detector")
        self.family = family_for(self.entry)
        self.settings = settings or DetectionSettings()

    def input_size(self) -> tuple[int, int]:
        """The model's own input size when fixed, else the chosen detection size."""
        dims = self.entry.inputs[0].shape
        if len(dims) == 4 and isinstance(dims[2], int) and isinstance(dims[3], int):
            return dims[2], dims[3]
        return self.settings.size, self.settings.size

    def forward(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """The outputs, on the CPU, one copy per call: decoding, score filtering and NMS on the device
        would sync on every masked select and every NMS step (py-spy on the H200: detection was half of
        the analysis thread's time), and face geometry lives on the CPU anyway."""
        return [output.cpu() for output in self.runtime.run_ordered(self.entry.id, tensor)]

    def _raw(self, frames: list[VisionFrame]) -> list[RawDetections]:
        """Score-filtered, suppressed detections of each frame, in frame pixels."""
        per_frame: list[list[torch.Tensor]] = []
        boxes: list[Letterbox] = []
        if len(frames) > 1 and self.runtime.takes_a_batch(self.entry.id):
            step = self.runtime.batch_limit
            for first in range(0, len(frames), step):
                tensor, part = self.family.prepare_many(frames[first : first + step], self.input_size())
                outputs = self.forward(tensor)
                per_frame += [[output[i : i + 1] for output in outputs] for i in range(len(part))]
                boxes += part
        else:
            for frame in frames:
                tensor, box = self.family.prepare(frame, self.input_size())
                per_frame.append(self.forward(tensor))
                boxes.append(box)
        found = []
        for outputs, box in zip(per_frame, boxes, strict=True):
            raw = self.family.normalize(outputs, box, self.settings.score)
            found.append(raw.select(nms_host(raw.boxes, raw.scores, self.settings.nms)))
        return found

    def _turned(self, frame: VisionFrame, turns: list[int]) -> list[tuple[RawDetections, np.ndarray]]:
        """Detections in the frame turned clockwise by each of `turns` × 90°, mapped back into the frame;
        with each one's roll as seen in the turned frame (near 0 when the turn made the face upright)."""
        height, width = int(frame.shape[0]), int(frame.shape[1])
        results = []
        for turn, found in zip(turns, self._raw([rotate_frame(frame, t) for t in turns]), strict=True):
            roll = _eye_roll(found.kps)
            if turn:
                corners = unrotate_host(found.boxes.reshape(-1, 2, 2), turn, height, width)
                boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
                found = RawDetections(boxes, found.scores, unrotate_host(found.kps, turn, height, width))
            results.append((found, roll))
        return results

    def detect(self, frame: VisionFrame) -> list[Face]:
        return self.detect_many([frame])[0]

    def detect_many(self, frames: list[VisionFrame]) -> list[list[Face]]:
        """The faces of each frame, best first."""
        for index, frame in enumerate(frames):
            check_frame(frame, f"frame {index}")
        upright = self._raw(frames)
        return [self._finish(frame, found) for frame, found in zip(frames, upright, strict=True)]

    def _finish(self, frame: VisionFrame, found: RawDetections) -> list[Face]:
        limit = self.settings.roll_limit()
        turns = np.zeros(found.scores.shape, dtype=np.int64)
        if limit is None:
            return self._faces(found, turns)
        upright = np.abs(_eye_roll(found.kps)) <= limit
        if bool(upright.all()) and found.scores.size > 0:
            return self._faces(found, turns)
        parts, turn_parts = [found.select(upright)], [turns[upright]]
        quarters = [1, 3, 2]
        for quarter, (more, roll) in zip(quarters, self._turned(frame, quarters), strict=True):
            keep = np.abs(roll) <= limit
            parts.append(more.select(keep))
            turn_parts.append(np.full(int(keep.sum()), quarter, dtype=np.int64))
        found = RawDetections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.kps for p in parts]),
        )
        turns = np.concatenate(turn_parts)
        best = nms_host(found.boxes, found.scores, self.settings.nms)
        return self._faces(found.select(best), turns[best])

    def _faces(self, found: RawDetections, turns: np.ndarray) -> list[Face]:
        # Plain floats and one small CPU tensor a face: face geometry lives on the CPU, no syncs later.
        order = np.argsort(-found.scores, kind="stable")
        boxes, scores, rotations = found.boxes.tolist(), found.scores.tolist(), turns.tolist()
        faces = []
        for index in order.tolist():
            x1, y1, x2, y2 = boxes[index]
            if min(x2 - x1, y2 - y1) < self.settings.min_size:
                continue
            kps = torch.from_numpy(np.array(found.kps[index], dtype=np.float32))
            box = (x1, y1, x2, y2)
            faces.append(Face(box=box, score=scores[index], kps=kps, rotation=rotations[index] * 90))
            if self.settings.max_faces and len(faces) >= self.settings.max_faces:
                break
        return faces
