"""tqdm progress bars driven by the downloader's event stream (one bar per model)."""

from __future__ import annotations

import sys
import threading

from tqdm import tqdm

from app.models.events import NOTEWORTHY, STATUS_WORDS, DownloadEvent, EventKind

# Said while the batch runs; a failure's whole story (every URL tried) is the caller's one message at
# the end (models download prints it per model).
SAID_AS_IT_HAPPENS = NOTEWORTHY - {EventKind.FAILED}


class DownloadBars:
    """An EventSink: call it with events from any thread; close when the batch is over. On a terminal
    each model gets a bar; piped or redirected, each model gets a line when it ends (and one per retry
    or mirror change) instead of a redrawn bar."""

    def __init__(self, enabled: bool = True, terminal: bool | None = None) -> None:
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def __call__(self, event: DownloadEvent) -> None:
        if not self.enabled:
            return
        if not self.terminal:
            self._line(event)
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
            if event.kind in SAID_AS_IT_HAPPENS:
                bar.write(f"{event.model_id}: {STATUS_WORDS[event.kind]}: {event.message}", file=sys.stderr)
            if event.kind in STATUS_WORDS:
                bar.set_postfix_str(STATUS_WORDS[event.kind])

    def _line(self, event: DownloadEvent) -> None:
        if event.kind is EventKind.RETRY:  # a mirror change is in the failure's summary, if it fails
            text = f"{event.model_id}: {STATUS_WORDS[event.kind]}: {event.message}"
        elif event.kind in (EventKind.DONE, EventKind.SKIPPED):
            text = f"{event.model_id}: {STATUS_WORDS[event.kind]}"
        else:
            return
        with self._lock:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()

    def __enter__(self) -> DownloadBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
