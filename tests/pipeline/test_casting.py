"""Who is pasted where: identities saved from photos paste exactly as the photos do (raw length kept),
mean or median, identity files checked against the swapper's recogniser, and in reference mode each
reference's own source on the faces that match it (real SCRFD on the Solvay photo)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.core.errors import DoppelError
from app.faces.identity import Combine, Identity, IdentityFileError
from app.faces.recogniser import Recogniser
from app.faces.selection import SelectionMode, SelectionSettings
from app.inference.runtime import InferenceRuntime
from app.media.images import read_image
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.frame_swap import FrameSwapper
from app.pipeline.settings import AnalysisSettings, PipelineSettings, Reference, SourceFace
from app.pipeline.sources import Cast, NoSourceError, SourceLoader, load_sources, require_complete
from app.processing.compositor import FaceCompositor
from tests.pipeline.test_engine import settings
from tests.support.real_models import REAL_SCRFD_ID

RECOGNISER = "arcface_w600k_r50"


def reference(embedding: torch.Tensor) -> Identity:
    return Identity.from_embeddings("face", RECOGNISER, embedding[None], ["solvay"], Combine.MEAN)


@pytest.fixture(scope="module")
def loader(runtime: InferenceRuntime) -> SourceLoader:
    analyser = FrameAnalyser(runtime, settings())
    return SourceLoader(analyser.detector, Recogniser(runtime, RECOGNISER), torch.device("cpu"))


@pytest.mark.parametrize("method", [Combine.MEAN, Combine.MEDIAN])
def test_a_saved_identity_pastes_exactly_as_its_photos(
    loader: SourceLoader, test_assets: Path, tmp_path: Path, method: Combine
) -> None:
    photos = (test_assets / "astronaut.png", test_assets / "newton.png", test_assets / "camera.png")
    from_photos = loader.load(SourceFace(files=photos, combine=method))
    saved = tmp_path / "person.identity.json"
    from_photos.to_identity("Person").save(saved)
    from_file = loader.load(SourceFace(files=(saved,)))  # the file's own method
    assert from_file.method is method
    assert torch.allclose(from_file.embedding(), from_photos.embedding(), atol=1e-5)
    assert from_photos.embedding().norm() > 1.5  # a raw vector, not a unit one: its length matters
    other = Combine.MEDIAN if method is Combine.MEAN else Combine.MEAN
    overridden = loader.load(SourceFace(files=(saved,), combine=other))
    assert not torch.allclose(overridden.embedding(), from_photos.embedding(), atol=1e-5)
    # photos and identity files combine: the file's three faces and the photo's one
    mixed = loader.load(SourceFace(files=(saved, test_assets / "astronaut.png")))
    assert mixed.embeddings.shape[0] == 4 and mixed.method is Combine.MEAN


def test_identity_files_of_another_recogniser_or_without_lengths_are_refused(
    loader: SourceLoader, tmp_path: Path
) -> None:
    rows = torch.randn(2, 512)
    other = tmp_path / "other.json"
    Identity.from_embeddings("Other", "arcface_simswap", rows, ["a", "b"], Combine.MEAN).save(other)
    with pytest.raises(IdentityFileError, match=r"other\.json: made with recogniser 'arcface_simswap'"):
        load_sources([other], loader.detector, loader.recogniser, torch.device("cpu"))
    matching_only = Identity.from_embeddings("M", RECOGNISER, rows, ["a", "b"], Combine.MEAN)
    stripped = matching_only.model_copy(
        update={"sources": [s.model_copy(update={"norm": None}) for s in matching_only.sources]}
    )
    path = tmp_path / "matching.json"
    stripped.save(path)
    with pytest.raises(IdentityFileError, match=r"matching\.json: .*directions only"):
        load_sources([path], loader.detector, loader.recogniser, torch.device("cpu"))
    with pytest.raises(NoSourceError):
        load_sources([], loader.detector, loader.recogniser, torch.device("cpu"))


def test_each_reference_gets_its_own_source_and_the_rest_the_default(
    runtime: InferenceRuntime, loader: SourceLoader, test_assets: Path
) -> None:
    solvay = read_image(test_assets / "solvay_conference_1927.jpg")
    many = PipelineSettings(analysis=AnalysisSettings(detector=REAL_SCRFD_ID))
    everyone = FrameAnalyser(runtime, many).analyse(solvay)
    assert len(everyone) == 29
    recogniser = Recogniser(runtime, RECOGNISER)
    first, second = recogniser.embeddings(solvay, [everyone[3], everyone[20]])
    ada = SourceFace(files=(test_assets / "astronaut.png",))
    isaac = SourceFace(files=(test_assets / "newton.png",))
    references = (Reference(target=reference(first), source=ada), Reference(target=reference(second)))
    cast_settings = many.model_copy(
        update={
            "analysis": many.analysis.model_copy(
                update={
                    "selection": SelectionSettings(SelectionMode.REFERENCE, similarity=0.999),
                    "references": references,
                }
            )
        }
    )
    chosen = FrameAnalyser(runtime, cast_settings).analyse(solvay)
    by_box = {face.box: face for face in chosen}
    assert by_box[everyone[3].box].reference == 0 and by_box[everyone[20].box].reference == 1
    compositor = FaceCompositor(runtime, cast_settings.processing)
    swapper = FrameSwapper(compositor, loader.cast(isaac, cast_settings))
    own = compositor.swapper.latent(loader.load(ada).embedding())
    default = compositor.swapper.latent(loader.load(isaac).embedding())
    assert not torch.allclose(own, default)
    assert torch.equal(swapper.latent_for(by_box[everyone[3].box]), own)  # its own source
    assert torch.equal(swapper.latent_for(by_box[everyone[20].box]), default)  # none of its own
    # without a default, the reference with no source of its own cannot be swapped
    alone = loader.cast(SourceFace(), cast_settings)
    with pytest.raises(NoSourceError, match=r"Reference face\(s\) \[2\]"):
        require_complete(alone, cast_settings)
    assert FrameSwapper(compositor, alone).latent_for(by_box[everyone[20].box]) is None
    result = FrameSwapper(compositor, alone).render(solvay, chosen)
    assert [face.reference for face in result.faces] == [0] * len(result.faces) and result.faces


def test_a_new_source_keeps_the_cached_faces_but_not_the_export_fingerprint(test_assets: Path) -> None:
    target = Identity.from_embeddings("t", RECOGNISER, torch.randn(1, 512), ["t"], Combine.MEAN)
    one, two = (
        PipelineSettings(
            analysis=AnalysisSettings(references=(Reference(target=target, source=SourceFace(files=(f,))),))
        )
        for f in (test_assets / "astronaut.png", test_assets / "newton.png")
    )
    assert one.analysis_key() == two.analysis_key()
    assert one.fingerprint() != two.fingerprint()
    with pytest.raises(NoSourceError, match="No source face"):
        require_complete(Cast(None), PipelineSettings())


def test_references_of_different_recognisers_are_refused(runtime: InferenceRuntime) -> None:
    one = Identity.from_embeddings("a", RECOGNISER, torch.randn(1, 512), ["a"], Combine.MEAN)
    other = Identity.from_embeddings("b", "arcface_simswap", torch.randn(1, 512), ["b"], Combine.MEAN)
    mixed = settings().model_copy(
        update={
            "analysis": settings().analysis.model_copy(
                update={
                    "selection": SelectionSettings(SelectionMode.REFERENCE),
                    "references": (Reference(target=one), Reference(target=other)),
                }
            )
        }
    )
    with pytest.raises(DoppelError, match="different recognisers"):
        FrameAnalyser(runtime, mixed)
