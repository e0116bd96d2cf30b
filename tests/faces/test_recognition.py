"""Recogniser, identities and selection: the real SCRFD finds the faces, a projection stand-in embeds them.

The stand-in's embedding is a fixed projection of the aligned crop (tools/make_standins.py), so the same
face seen again (scaled, brightened) embeds almost the same and a different face does not: enough to
prove alignment, batching, matching and combining, though not ArcFace's accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.nn import functional

from app.faces.alignment import crop_face
from app.faces.detector import FaceDetector
from app.faces.geometry import box_iou
from app.faces.identity import Combine, Identity, combine
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings, select
from app.faces.types import Face, unit
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from tests.support.faces import face_at
from tests.support.real_models import REAL_SCRFD_ID, real_scrfd_store
from tools.make_standins import PROJECTION_POOL, projection_matrix

RECOGNISERS = ("arcface_w600k_r50", "arcface_w600k_r50_ff")
SAME_FACE = 0.95  # the stand-in: the same face rescaled ≥ 0.98, the closest other face ≤ 0.9


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    folder = tmp_path_factory.mktemp("recognition")
    store = real_scrfd_store(test_assets, folder / "models", RECOGNISERS)
    runtime = InferenceRuntime(store, cache_root=folder / "cache")
    yield runtime
    runtime.close()


def variant(frame: torch.Tensor, scale: float, gain: float, lift: float) -> torch.Tensor:
    chw = frame.permute(2, 0, 1)[None].float()
    resized = functional.interpolate(chw, scale_factor=scale, mode="bilinear", antialias=True)[0]
    return (resized * gain + lift).clamp(0, 255).round().byte().permute(1, 2, 0).contiguous()


@pytest.fixture(scope="module")
def solvay(runtime: InferenceRuntime, test_assets: Path) -> tuple[torch.Tensor, list[Face]]:
    frame = read_image(test_assets / "solvay_conference_1927.jpg")
    faces = FaceDetector(runtime, REAL_SCRFD_ID).detect(frame)
    return frame, Recogniser(runtime, "arcface_w600k_r50").embed(frame, faces)


def test_the_embedding_is_the_projection_of_the_aligned_crop(
    runtime: InferenceRuntime, solvay: tuple[torch.Tensor, list[Face]]
) -> None:
    frame, faces = solvay
    recogniser = Recogniser(runtime, "arcface_w600k_r50")
    crop, _ = crop_face(frame, faces[0].kps, "arcface_112_v2", 112)
    pooled = functional.avg_pool2d((crop - 127.5) / 127.5, PROJECTION_POOL).flatten(1)
    expected = (pooled - pooled.mean(dim=1, keepdim=True)) @ torch.from_numpy(
        projection_matrix(recogniser.entry)
    )
    assert faces[0].embedding is not None and faces[0].embedding.shape == (512,)
    assert torch.allclose(faces[0].embedding, expected[0], atol=1e-4)
    assert faces[0].normed_embedding is not None
    assert float(faces[0].normed_embedding.norm()) == pytest.approx(1.0)


class CountingRecogniser(Recogniser):
    calls: list[tuple[int, ...]]

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(tensor.shape))
        return super().forward(tensor)


def test_faces_share_one_call_when_the_model_takes_a_batch(
    runtime: InferenceRuntime, solvay: tuple[torch.Tensor, list[Face]]
) -> None:
    frame, faces = solvay
    batched = CountingRecogniser(runtime, "arcface_w600k_r50_ff")
    batched.calls = []
    together = batched.embeddings(frame, faces[:5])
    alone = torch.cat([batched.embeddings(frame, [face]) for face in faces[:5]])
    assert batched.calls[0] == (5, 3, 112, 112)
    assert torch.allclose(together, alone, atol=1e-5)


def matched(ours: list[Face], theirs: list[Face], scale: float) -> torch.Tensor:
    """For each of our faces, the index of the same face (by box) in a frame scaled by `scale`."""
    boxes = torch.tensor([face.box for face in ours]) * scale
    return box_iou(boxes, torch.tensor([face.box for face in theirs])).argmax(dim=1)


def identity_of(name: str, faces: list[Face], labels: list[str], method: Combine = Combine.MEAN) -> Identity:
    rows = torch.stack([face.embedding for face in faces if face.embedding is not None])
    return Identity.from_embeddings(name, "arcface_w600k_r50", rows, labels, method)


def test_reference_mode_finds_the_same_person_and_nobody_else(
    runtime: InferenceRuntime, solvay: tuple[torch.Tensor, list[Face]]
) -> None:
    frame, faces = solvay
    other = variant(frame, 0.75, 0.9, 20.0)
    seen = Recogniser(runtime, "arcface_w600k_r50").embed(
        other, FaceDetector(runtime, REAL_SCRFD_ID).detect(other)
    )
    expected = matched(faces, seen, 0.75)
    settings = SelectionSettings(SelectionMode.REFERENCE, SAME_FACE)
    for index, face in enumerate(faces):
        chosen = select(seen, settings, [identity_of(f"person {index}", [face], ["solvay"])])
        assert [c.face for c in chosen] == [seen[int(expected[index])]], f"reference face {index}"
        assert (
            chosen[0].identity == 0 and chosen[0].similarity is not None and chosen[0].similarity >= SAME_FACE
        )


def test_one_picks_the_most_prominent_face_and_many_keeps_all() -> None:
    big_but_unsure, clear, small = (
        face_at(100, 100, 100, score=0.5),
        face_at(300, 100, 80),
        face_at(500, 100, 30),
    )
    faces = [big_but_unsure, clear, small]
    (one,) = select(faces, SelectionSettings(SelectionMode.ONE))
    assert one.face is clear  # 80² × 0.9 outweighs 100² × 0.5
    assert [s.face for s in select(faces, SelectionSettings(SelectionMode.MANY))] == faces
    assert select([], SelectionSettings(SelectionMode.ONE)) == []
    with pytest.raises(ValueError, match="at least one reference"):
        select(faces, SelectionSettings(SelectionMode.REFERENCE))
    with pytest.raises(ValueError, match="no embedding"):
        reference = Identity.from_embeddings(
            "x", "arcface_w600k_r50", torch.ones(1, 512), ["x.png"], Combine.MEAN
        )
        select(faces, SelectionSettings(SelectionMode.REFERENCE), [reference])


def test_several_source_images_make_one_identity(
    runtime: InferenceRuntime, solvay: tuple[torch.Tensor, list[Face]]
) -> None:
    frame, faces = solvay
    detector, recogniser = FaceDetector(runtime, REAL_SCRFD_ID), Recogniser(runtime, "arcface_w600k_r50")
    darker = variant(frame, 0.8, 0.8, 0.0)
    darker_faces = recogniser.embed(darker, detector.detect(darker))
    target = 3
    sources = [faces[target], darker_faces[int(matched(faces, darker_faces, 0.8)[target])]]
    outlier = faces[(target + 1) % len(faces)]  # somebody else, wrongly added as a third source
    labels = ["solvay.jpg", "solvay-dark.jpg", "wrong.jpg"]
    by_mean = identity_of("mean", [*sources, outlier], labels, Combine.MEAN)
    by_median = identity_of("median", [*sources, outlier], labels, Combine.MEDIAN)

    rows = unit(torch.stack([f.embedding for f in (*sources, outlier) if f.embedding is not None]))
    assert torch.allclose(by_mean.embedding(), unit(rows.mean(dim=0)), atol=1e-6)
    assert torch.allclose(by_median.embedding(), unit(rows.median(dim=0).values), atol=1e-6)

    third = variant(frame, 1.2, 1.1, -10.0)
    seen = recogniser.embed(third, detector.detect(third))
    person = seen[int(matched(faces, seen, 1.2)[target])]
    clean = identity_of("two sources", sources, labels[:2])
    chosen = select(seen, SelectionSettings(SelectionMode.REFERENCE, SAME_FACE), [clean])
    assert [c.face for c in chosen] == [person]
    # one wrong source drags the mean further from the person than the median
    sims = {
        method.name: float(unit(person.embedding) @ identity.embedding())  # type: ignore[arg-type]
        for method, identity in ((Combine.MEAN, by_mean), (Combine.MEDIAN, by_median))
    }
    assert sims["MEDIAN"] > sims["MEAN"]


def test_combine_rejects_nothing_to_combine() -> None:
    with pytest.raises(ValueError, match="K ≥ 1"):
        combine(torch.zeros((0, 512)))
