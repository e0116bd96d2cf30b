"""The GPU tests share one GPU across pytest-xdist's workers (one a core: 16 on the lent machine).
A test that reads the device's free memory (`gpu_alone`) would see the other workers' allocations, so
every GPU test holds a lock on one file: shared by default, exclusive for a `gpu_alone` test, which
therefore runs while no other GPU test does."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import fcntl
except ImportError:  # Windows: no flock; the GPU tests run side by side unguarded
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = Path(tempfile.gettempdir()) / "doppel-gpu-tests.lock"


@pytest.fixture(autouse=True)
def _gpu_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    mode = fcntl.LOCK_EX if request.node.get_closest_marker("gpu_alone") else fcntl.LOCK_SH
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, mode)  # waits for the other workers' GPU tests (exclusive) or an alone one
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
