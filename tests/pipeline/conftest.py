"""Shared by the pipeline tests: a runtime over the real SCRFD and the swapper stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.inference.runtime import InferenceRuntime
from tests.support.processing import standin_runtime

SWAP_STANDINS = ("inswapper_128_fp16", "arcface_w600k_r50")


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    runtime = standin_runtime(test_assets, tmp_path_factory.mktemp("pipeline"), SWAP_STANDINS)
    yield runtime
    runtime.close()
