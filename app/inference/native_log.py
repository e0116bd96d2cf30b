"""Catch what native code (ONNX Runtime's C++ logger) writes to the process's stderr.

ORT explains a provider that will not start (a missing cuDNN, an old driver) only on stderr, and then
carries on without it. To turn that into a reason we can show, the few calls that may fail this way run
with file descriptor 2 pointed at a temporary file. The redirection is process-wide, so it is held under
a lock and used only around short, rare calls (provider probes and session loads).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()


class CapturedText:
    def __init__(self) -> None:
        self.text = ""

    def lines(self) -> list[str]:
        return [line.strip() for line in self.text.splitlines() if line.strip()]

    def reason(self) -> str | None:
        """The most telling line: an error first, then a warning; ORT's log prefix removed."""
        lines = self.lines()
        for wanted in ("[E:", "error", "[W:"):
            for line in lines:
                if wanted in line or wanted in line.lower():
                    return line.split("] ", 1)[-1]
        return lines[-1] if lines else None


@contextmanager
def capture_native_stderr() -> Iterator[CapturedText]:
    captured = CapturedText()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
