"""Writes that survive a power cut, for resumable exports (app.media.segments).

A rename is atomic but not durable by itself: after a crash the new name can point at a file whose
data never reached the disk. So a file is flushed (`fsync`) before it is renamed into place, and the
folder after, so the rename itself is on disk before anything that relies on it (a manifest entry) is
written. Windows cannot open a folder to flush it; NTFS journals the rename, which is the best it offers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def fsync_file(path: Path) -> None:
    """Flush `path`'s data and size to the disk."""
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush `folder`'s entries (renames, new and removed names) to the disk; a no-op on Windows."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old file or the new one, complete:
    write a temporary beside it, flush it, rename it over `path`, flush the folder."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
