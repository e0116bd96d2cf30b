from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_server import FileServer


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
