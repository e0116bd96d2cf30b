from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_server import FileServer

# Thread pools sized for the whole machine: OpenMP (torch), OpenBLAS and MKL (numpy), ONNX Runtime's CPU
# sessions (app.inference.options.cpu_threads). Inherited by the CLI subprocesses the tests start.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "DOPPEL_CPU_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist workers side by side, each worker gets its share of the cores. Pools that
    each take every core (and spin while they wait) make two workers on two cores slower than one:
    a 512x512 QR took ten times as long, an export twice. Set before the workers start (so before
    numpy or torch is imported there); a value already in the environment is kept."""
    workers = int(
        os.environ.get("PYTEST_XDIST_WORKER_COUNT") or getattr(config.option, "numprocesses", 0) or 0
    )
    if workers > 1:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, share)


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's settings, cache or models."""
    monkeypatch.setenv("DOPPEL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DOPPEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DOPPEL_MODELS_DIR", raising=False)


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def test_assets() -> Path:
    """The real test assets (SCRFD model, photos with ground truth), fetched once and cached.

    DOPPEL_TEST_ASSETS points at a prepared folder; otherwise they are cached in .cache/test-assets.
    A fetch failure fails the test: CI must always have them.
    """
    import os

    from tools.fetch_test_assets import fetch

    return fetch(Path(os.environ.get("DOPPEL_TEST_ASSETS", REPO_ROOT / ".cache" / "test-assets")))
