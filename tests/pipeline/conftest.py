"""Shared by the pipeline tests: a runtime over the real SCRFD and the swapper stand-ins, and a face
photo with a 2 s clip of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from app.inference.runtime import InferenceRuntime
from tests.support.media import make_clip
from tests.support.processing import standin_runtime

SWAP_STANDINS = ("inswapper_128_fp16", "arcface_w600k_r50")


@pytest.fixture(scope="module")
def runtime(test_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceRuntime]:
    runtime = standin_runtime(test_assets, tmp_path_factory.mktemp("pipeline"), SWAP_STANDINS)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engine-media")
    face = root / "astronaut.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(root / "clip.mp4", seconds=2.0, fps=25, size=(320, 320), image=data.astronaut())
    return {"face": face, "clip": clip, "root": root}
