"""Every provider fallback, counted and kept: for the log, check-env, profiles and the GUI's status line.

Events are held in memory for this process and appended to a JSON-lines file in the cache folder, so a
later `check-env` can say "inswapper_128 fell back from TensorRT to CUDA yesterday: <reason>". The file is
trimmed to its newest entries so it never grows without bound.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from app.inference.providers import Provider

log = logging.getLogger(__name__)

Phase = Literal["load", "run"]
FALLBACK_FILE = "fallbacks.jsonl"
KEEP_ON_DISK = 500


@dataclass(frozen=True)
class FallbackEvent:
    model_id: str
    source: Provider
    target: Provider | None  # None: nothing left to fall back to
    phase: Phase
    reason: str
    at: float  # seconds since the epoch

    def sentence(self) -> str:
        where = "loading" if self.phase == "load" else "running"
        to = f"using {self.target.label}" if self.target else "no provider left"
        return f"{self.model_id}: {self.source.label} failed while {where} ({self.reason}); {to}"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["source"] = self.source.value
        data["target"] = self.target.value if self.target else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FallbackEvent:
        target = data.get("target")
        return cls(
            model_id=str(data["model_id"]),
            source=Provider(str(data["source"])),
            target=Provider(str(target)) if target else None,
            phase="run" if data.get("phase") == "run" else "load",
            reason=str(data.get("reason", "")),
            at=float(str(data.get("at", 0.0))),
        )


Listener = Callable[[FallbackEvent], None]


class FallbackLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._events: list[FallbackEvent] = []
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def record(
        self, model_id: str, source: Provider, target: Provider | None, phase: Phase, reason: str
    ) -> FallbackEvent:
        event = FallbackEvent(model_id, source, target, phase, reason, time.time())
        with self._lock:
            self._events.append(event)
            listeners = list(self._listeners)
            self._append_to_file(event)
        log.warning("%s", event.sentence())
        for listener in listeners:
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener not in self._listeners:  # a runtime rebuilt on the same log subscribes again
                self._listeners.append(listener)

    def events(self) -> list[FallbackEvent]:
        with self._lock:
            return list(self._events)

    def counts(self) -> Counter[tuple[str, Provider, Phase]]:
        return Counter((e.model_id, e.source, e.phase) for e in self.events())

    def history(self) -> list[FallbackEvent]:
        """Events from earlier runs too (the file), oldest first."""
        if self.path is None or not self.path.is_file():
            return self.events()
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                found.append(FallbackEvent.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash mid-write: skip it, keep the rest
        return found

    def _append_to_file(self, event: FallbackEvent) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
            lines = [*lines[-(KEEP_ON_DISK - 1) :], json.dumps(event.to_json())]
            self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:  # a read-only cache folder must not stop inference
            log.warning("cannot write %s: %s", self.path, exc)
