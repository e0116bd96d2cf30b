"""What `python main.py detect IMAGE` does once its arguments are parsed (app.cli.detect_cmd)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from app.cli.output import say, say_json, table
from app.core.errors import DoppelError
from app.faces.detector import DetectionSettings, FaceDetector
from app.faces.landmarker import AutoLandmarker, Landmarker
from app.faces.recogniser import Recogniser
from app.faces.types import KPS_NAMES, Face
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from app.models.catalog import Kind
from app.models.context import AppContext


def _face_json(face: Face) -> dict[str, Any]:
    return {
        "box": [round(v, 2) for v in face.box],
        "score": round(face.score, 4),
        "keypoints": {
            name: [round(v, 2) for v in point]
            for name, point in zip(KPS_NAMES, face.kps.tolist(), strict=True)
        },
        "roll": round(face.roll, 1),
        "rotation": face.rotation,
        **_landmarks_json(face),
        **_embedding_json(face),
    }


def _landmarks_json(face: Face) -> dict[str, Any]:
    if face.landmarks is None:
        return {}
    return {
        "landmarks": {
            "model": face.landmark_model,
            "confidence": round(face.landmark_confidence or 0.0, 4),
            "points": [[round(v, 2) for v in point] for point in face.landmarks.tolist()],
        }
    }


def _embedding_json(face: Face) -> dict[str, Any]:
    normed = face.normed_embedding
    if face.embedding is None or normed is None:
        return {}
    return {
        "embedding": {
            "norm": round(float(face.embedding.norm()), 4),
            "normalised": [round(v, 6) for v in normed.tolist()],
        }
    }


def _draw(path: Path, frame: torch.Tensor, faces: list[Face]) -> None:
    """Draw on the frame as read (EXIF orientation applied), so boxes land where they were found."""
    canvas = Image.fromarray(frame.cpu().numpy())
    pen = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    for face in faces:
        pen.rectangle(face.box, outline=(0, 255, 0), width=width)
        for x, y in face.kps.tolist():
            pen.ellipse((x - width, y - width, x + width, y + width), fill=(255, 0, 0))
        dot = max(1, width // 2)
        for x, y in [] if face.landmarks is None else face.landmarks.tolist():
            pen.ellipse((x - dot, y - dot, x + dot, y + dot), fill=(255, 255, 0))
    try:
        canvas.save(path)
    except (OSError, ValueError) as exc:
        raise DoppelError(f"Cannot write {path}: {exc}") from exc


def _add_landmarks(
    runtime: InferenceRuntime, frame: torch.Tensor, faces: list[Face], choice: str | None, confidence: float
) -> list[Face]:
    if not choice:
        return faces
    if choice == "auto":
        auto = AutoLandmarker(runtime, min_confidence=confidence)
        if not auto.installed():
            raise DoppelError(
                "--landmarks auto: no landmarker is installed (python main.py models download ID)"
            )
        return auto.apply(frame, faces)
    return Landmarker(runtime, choice).apply(frame, faces)


def detect_faces(args: argparse.Namespace, ctx: AppContext) -> int:
    frame = read_image(args.image)
    model_id = args.detector or ctx.catalog.default_for(Kind.DETECTOR, "--detector")
    settings = DetectionSettings(
        score=args.score,
        nms=args.nms,
        max_faces=args.max_faces,
        min_size=args.min_size,
        size=args.size,
        rotation=args.rotation,
    )
    runtime = InferenceRuntime(ctx.store, ctx.settings.inference)
    try:
        faces = FaceDetector(runtime, model_id, settings).detect(frame)
        faces = _add_landmarks(runtime, frame, faces, args.landmarks, args.landmark_confidence)
        if args.recogniser:
            faces = Recogniser(runtime, args.recogniser).embed(frame, faces)
    finally:
        runtime.close()
    if args.draw:
        _draw(args.draw, frame, faces)
    if args.json:
        say_json({"image": str(args.image), "detector": model_id, "faces": [_face_json(f) for f in faces]})
        return 0
    say(f"{len(faces)} face(s) in {args.image} ({model_id})")
    rows = [
        [
            str(i + 1),
            f"{f.score:.2f}",
            " ".join(f"{v:.0f}" for v in f.box),
            f"{f.roll:.0f}",
            _landmark_cell(f),
        ]
        for i, f in enumerate(faces)
    ]
    if rows:
        table(rows, header=["#", "score", "box (x1 y1 x2 y2)", "roll", "landmarks"])
    return 0


def _landmark_cell(face: Face) -> str:
    if face.landmarks is None:
        return "-"
    return f"{face.landmarks.shape[0]} by {face.landmark_model} ({face.landmark_confidence or 0:.2f})"
