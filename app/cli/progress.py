"""tqdm progress bars driven by the downloader's event stream (one bar per model)."""

from __future__ import annotations

import sys
import threading

from tqdm import tqdm

from app.models.events import NOTEWORTHY, STATUS_WORDS, DownloadEvent, EventKind


class DownloadBars:
    """An EventSink: call it with events from any thread; close when the batch is over."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def __call__(self, event: DownloadEvent) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.get(event.model_id)
            if bar is None:
                bar = tqdm(
                    total=event.total,
                    desc=event.model_id,
                    unit="B",
                    unit_scale=True,
                    position=len(self._bars),
                    leave=True,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
                self._bars[event.model_id] = bar
            if event.total and bar.total != event.total:
                bar.total = event.total
            if event.kind in (EventKind.STARTED, EventKind.PROGRESS, EventKind.DONE, EventKind.SKIPPED):
                bar.n = event.done
                bar.refresh()
            if event.kind in NOTEWORTHY:
                bar.write(f"{event.model_id}: {STATUS_WORDS[event.kind]}: {event.message}", file=sys.stderr)
            if event.kind in STATUS_WORDS:
                bar.set_postfix_str(STATUS_WORDS[event.kind])

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()

    def __enter__(self) -> DownloadBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
