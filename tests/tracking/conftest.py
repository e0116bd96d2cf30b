"""Fixtures for the tracking tests: the real SCRFD detector (memoised), a moving clip and its truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.faces.detector import FaceDetector
from app.faces.types import Face, VisionFrame
from app.inference.runtime import InferenceRuntime
from tests.support.real_models import REAL_SCRFD_ID, real_scrfd_store
from tests.tracking.clips import MemoDetector, panned_clip


@pytest.fixture(scope="session")
def tracking_runtime(
    test_assets: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InferenceRuntime]:
    folder = tmp_path_factory.mktemp("tracking-scrfd")
    runtime = InferenceRuntime(real_scrfd_store(test_assets, folder / "models"), cache_root=folder / "cache")
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def detect(tracking_runtime: InferenceRuntime) -> MemoDetector:
    """The real detector; the same frame or crop is only run once per session."""
    return MemoDetector(FaceDetector(tracking_runtime, REAL_SCRFD_ID).detect)


@pytest.fixture(scope="session")
def clip(test_assets: Path) -> list[VisionFrame]:
    return panned_clip(test_assets / "astronaut.png")


@pytest.fixture(scope="session")
def truth(clip: list[VisionFrame], detect: MemoDetector) -> list[Face]:
    """The real detector's face on every frame of the clip (there is exactly one)."""
    found = [detect(frame) for frame in clip]
    assert [len(faces) for faces in found] == [1] * len(clip)
    return [faces[0] for faces in found]
