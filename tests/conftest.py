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
