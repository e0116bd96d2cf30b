"""Write-beside-then-rename, shared by the image and video writers.

Media is written to a hidden `.<stem>.<token>.partial<suffix>` file in the destination folder (same
filesystem, so the final `replace` is atomic) and renamed only after a clean finish: a reader never sees
half a file under the final name, and a killed process leaves only a `.partial` file behind. The
suffix is kept last so Pillow and FFmpeg still pick the format from the name; the token keeps two
writers of one destination from sharing a partial file.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from types import TracebackType

from app.media.errors import MediaWriteError

log = logging.getLogger(__name__)

PARTIAL_MARK = ".partial"


def check_folder(path: Path) -> Path:
    """The destination folder, or a MediaWriteError naming it when it is missing or not writable."""
    folder = path.parent
    if not folder.is_dir():
        raise MediaWriteError(f"Cannot write {path.name}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MediaWriteError(f"Cannot write {path.name}: output folder {folder} is not writable")
    return folder


class AtomicFile:
    """A partial file beside `path`; `commit()` renames it into place, `discard()` removes it.

    As a context manager, leaving the block without `commit()` (an exception included) discards it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        folder = check_folder(path)
        name = f".{path.stem}.{secrets.token_hex(4)}{PARTIAL_MARK}{path.suffix}"
        self.partial = folder / name
        try:
            self.partial.touch(exist_ok=False)  # claims the name and proves the folder takes files
        except OSError as exc:
            raise MediaWriteError(f"Cannot write {path.name} in output folder {folder}: {exc}") from exc
        self.done = False

    def commit(self) -> Path:
        try:
            self.partial.replace(self.path)
        except OSError as exc:
            self.discard()
            raise MediaWriteError(f"Cannot move the finished {self.path.name} into place: {exc}") from exc
        self.done = True
        return self.path

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.partial.unlink(missing_ok=True)
        except OSError as exc:  # reported, not raised: the original failure matters more
            log.warning("Could not remove the partial file %s: %s", self.partial, exc)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.discard()  # nothing after commit()
