from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.media import make_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s, 25 fps, 320x240 H.264 + AAC clip, written once per session (read-only for tests)."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")
