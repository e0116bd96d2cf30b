from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.inference.runtime import InferenceRuntime
from tests.support.real_models import real_scrfd_store


@pytest.fixture(scope="module")
def scrfd_runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    folder = tmp_path_factory.mktemp("real-scrfd")
    runtime = InferenceRuntime(real_scrfd_store(test_assets, folder / "models"), cache_root=folder / "cache")
    yield runtime
    runtime.close()
