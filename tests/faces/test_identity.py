"""Identity files: a versioned round trip, and clear errors that name the file for everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.faces.identity import IDENTITY_VERSION, Combine, Identity, IdentityFileError


def make_identity(method: Combine = Combine.MEDIAN) -> Identity:
    rows = torch.tensor([[3.0, 4.0, 0.0], [0.0, 4.0, 3.0], [5.0, 0.0, 0.0]])
    return Identity.from_embeddings("Ada", "arcface_w600k_r50", rows, ["a.png", "b.png", "c.png"], method)


def test_an_identity_survives_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "identities" / "ada.json"
    original = make_identity()
    original.save(path)
    loaded = Identity.load(path)
    assert loaded == original
    assert torch.allclose(loaded.embedding(), original.embedding())
    assert [s.label for s in loaded.sources] == ["a.png", "b.png", "c.png"]
    assert json.loads(path.read_text())["version"] == IDENTITY_VERSION
    assert not list(path.parent.glob("*.part"))


def test_sources_are_kept_normalised_so_the_method_can_change_later() -> None:
    identity = make_identity(Combine.MEAN)
    assert torch.allclose(identity.source_embeddings().norm(dim=1), torch.ones(3))
    median = identity.model_copy(update={"method": Combine.MEDIAN}).embedding()
    assert torch.allclose(median, torch.tensor([0.6, 0.8, 0.0]) / torch.tensor([0.6, 0.8, 0.0]).norm())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a readable identity file"),
        (json.dumps({"format": "something else"}), "not a Doppel identity file"),
        (json.dumps({"format": "doppel.identity"}), "no version"),
        (
            json.dumps({"format": "doppel.identity", "version": IDENTITY_VERSION + 1}),
            "newer than this Doppel",
        ),
        (
            json.dumps(
                {
                    "format": "doppel.identity",
                    "version": 1,
                    "name": "x",
                    "recogniser": "arcface_w600k_r50",
                    "sources": [{"label": "a", "embedding": [1.0, 0.0]}, {"label": "b", "embedding": [1.0]}],
                }
            ),
            "one non-zero width",
        ),
        (
            '{"format": "doppel.identity", "version": 1, "name": "x", "recogniser": "r", '
            '"sources": [{"label": "a", "embedding": [NaN, 1.0]}]}',
            "NaN",
        ),
        (
            json.dumps(
                {"format": "doppel.identity", "version": 1, "name": "x", "recogniser": "r", "sources": []}
            ),
            "sources",
        ),
    ],
)
def test_bad_files_are_refused_by_name(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IdentityFileError, match=problem) as caught:
        Identity.load(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(IdentityFileError, match="no such identity file"):
        Identity.load(tmp_path / "nobody.json")
