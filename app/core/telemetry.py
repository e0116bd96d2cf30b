"""Opt-in local telemetry: a JSON-lines diary of how the engine behaved on this machine.

When the user turns on `Settings.telemetry.enabled` (off by default), Doppel appends one event per line
to `telemetry.jsonl` in the user's data folder: stage latencies, provider fallbacks, tracker losses and
job summaries. It exists so a user can look at (or attach to a bug report, by hand) what happened on
their own hardware: "inswapper fell back from TensorRT to CUDA", "the tracker lost the face 40 times".

Nothing is ever sent anywhere: this module only writes a local file, and no other part of Doppel reads
it to upload. The file is bounded: past `max_bytes` it is renamed to `telemetry.jsonl.1` (replacing the
older one) and a new file starts, so at most twice the bound is kept on disk.

Each line is `{"time": <seconds since the epoch>, "kind": <str>, "fields": {...}}`. Writes take a lock
and each line is written and flushed whole, so threads never interleave lines (other processes writing
the same file are not coordinated; Doppel runs one engine per user session). A write error (full disk,
read-only folder) is logged once and turns telemetry off for the process: it must never stop a job.

A disabled Telemetry has the same API and does nothing, so callers never check `enabled`:

    telemetry = get_telemetry()
    telemetry.fallback("inswapper_128", "tensorrt", "cuda", "engine build failed")
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import platformdirs

from app import APP_NAME
from app.core.errors import SettingsError
from app.core.settings import Settings, TelemetrySettings, load_settings

log = logging.getLogger(__name__)

TELEMETRY_FILE = "telemetry.jsonl"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024


def telemetry_dir() -> Path:
    """The user's data folder (DOPPEL_DATA_DIR overrides it, as the other DOPPEL_*_DIR do)."""
    override = os.environ.get("DOPPEL_DATA_DIR")
    root = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return root / "telemetry"


def telemetry_path() -> Path:
    return telemetry_dir() / TELEMETRY_FILE


class Telemetry:
    """Appends events to a bounded local JSON-lines file; a no-op when disabled. Thread-safe."""

    def __init__(
        self, path: Path | None = None, enabled: bool = True, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.enabled = enabled
        self.path = (path or telemetry_path()) if enabled else path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._handle: IO[bytes] | None = None
        self._size = 0

    @classmethod
    def disabled(cls) -> Telemetry:
        return cls(enabled=False)

    @classmethod
    def from_settings(cls, settings: Settings | TelemetrySettings, path: Path | None = None) -> Telemetry:
        section = settings.telemetry if isinstance(settings, Settings) else settings
        if not section.enabled:
            return cls.disabled()
        return cls(path, enabled=True, max_bytes=int(section.max_file_mb * 1024 * 1024))

    @property
    def rotated_path(self) -> Path | None:
        """Where the previous file goes when the current one reaches the bound."""
        return self.path.with_name(self.path.name + ".1") if self.path else None

    # -- events ----------------------------------------------------------------------------------------

    def event(self, kind: str, **fields: object) -> None:
        """One line of any kind; values that JSON cannot hold (paths, enums) are written as strings."""
        self._emit(kind, fields)

    def _emit(self, kind: str, fields: Mapping[str, object]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), "kind": kind, "fields": dict(fields)}
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self.enabled:
                self._write(line)

    def latency(self, stage: str, ms: float, **fields: object) -> None:
        self.event("latency", stage=stage, ms=float(ms), **fields)

    def fallback(self, model: str, source: str, target: str | None, reason: str, **fields: object) -> None:
        """A provider fallback: `model` left `source` for `target` (None: nothing left) because `reason`."""
        self.event("fallback", model=model, source=source, target=target, reason=reason, **fields)

    def tracker_loss(self, frame: int, kind: str, **fields: object) -> None:
        """The tracker lost a face at `frame`; `kind` says how (e.g. "flow", "csrt", "redetect")."""
        self._emit("tracker_loss", {"frame": int(frame), "kind": kind, **fields})

    def job(self, summary: Mapping[str, object]) -> None:
        self._emit("job", summary)

    # -- file ------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, line: bytes) -> None:
        """Under the lock: open lazily (an enabled but idle Telemetry creates no file), rotate before a
        line would cross the bound, write the whole line and flush it."""
        assert self.path is not None
        try:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("ab")
                self._size = self._handle.tell()
            if self._size > 0 and self._size + len(line) > self.max_bytes:
                self._rotate()
            assert self._handle is not None
            self._handle.write(line)
            self._handle.flush()
            self._size += len(line)
        except OSError as exc:
            log.warning("telemetry turned off for this run: cannot write %s: %s", self.path, exc)
            self.enabled = False
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _rotate(self) -> None:
        assert self._handle is not None and self.path is not None and self.rotated_path is not None
        self._handle.close()
        self._handle = None
        self.path.replace(self.rotated_path)
        self._handle = self.path.open("ab")
        self._size = 0


_current: Telemetry | None = None
_current_lock = threading.Lock()


def configure_telemetry(settings: Settings, path: Path | None = None) -> Telemetry:
    """Make `settings` the process's telemetry (at start-up, and again when the user changes it)."""
    global _current
    telemetry = Telemetry.from_settings(settings, path)
    with _current_lock:
        previous, _current = _current, telemetry
    if previous is not None:
        previous.close()
    return telemetry


def get_telemetry() -> Telemetry:
    """The process's telemetry: as configured, else from the saved settings (disabled if they are
    unreadable: a broken settings file is reported where settings are loaded, not here)."""
    global _current
    with _current_lock:
        if _current is not None:
            return _current
        try:
            _current = Telemetry.from_settings(load_settings())
        except SettingsError as exc:
            log.debug("telemetry off: %s", exc)
            _current = Telemetry.disabled()
        return _current
