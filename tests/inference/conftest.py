"""Stand-in models on disk and runtimes over them, for the inference tests (CPU, real ORT sessions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.core.settings import InferenceSettings
from app.inference.runtime import InferenceRuntime
from app.models.catalog import load_catalog
from app.models.store import ModelStore
from tools.make_standins import ComputeSize, make_standins

# Models whose tensors cover the binding cases: two inputs, batch axes, dynamic sides, data-dependent
# output sizes, float64 inputs, names the catalog does not know, scratch outputs.
STANDIN_IDS = [
    "inswapper_128",
    "arcface_w600k_r50",
    "arcface_simswap",
    "scrfd_2.5g",
    "2d106det",
    "codeformer",
    "realesrgan_x2plus",
    "retinaface_r50",
    "hyperswap_1a_256",
    "occluder",
]


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compute stand-ins (a small conv trunk), so every output depends on the inputs' values."""
    directory = tmp_path_factory.mktemp("standins")
    make_standins(directory, load_catalog(), STANDIN_IDS, ComputeSize(width=8, depth=1))
    return directory


def store_for(directory: Path) -> ModelStore:
    catalog = load_catalog()
    extra = ModelStore(directory, catalog).standin_entries()
    return ModelStore(directory, catalog.merged(extra))


RuntimeFactory = Callable[..., InferenceRuntime]


@pytest.fixture
def make_runtime(standin_dir: Path, tmp_path: Path) -> Iterator[RuntimeFactory]:
    made: list[InferenceRuntime] = []

    def build(settings: InferenceSettings | None = None, **options: Any) -> InferenceRuntime:
        runtime = InferenceRuntime(store_for(standin_dir), settings, cache_root=tmp_path / "cache", **options)
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        runtime.close()


def plain_run(path: Path, feeds: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The reference: ORT's ordinary run on numpy arrays, no binding."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {k: v.cpu().numpy() for k, v in feeds.items()})
    return dict(zip(names, values, strict=True))
