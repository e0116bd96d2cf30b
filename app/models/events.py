"""The one stream of download events: the CLI draws tqdm bars from it, the GUI listens to the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    QUEUED = "queued"
    STARTED = "started"  # a transfer from `url` begins (done > 0: resumed from the .part file)
    PROGRESS = "progress"
    RETRY = "retry"  # a transient failure; `message` says why and when the next try is
    FALLBACK = "fallback"  # giving up on `url`, moving to the next mirror
    VERIFYING = "verifying"
    DONE = "done"  # verified and moved into place
    SKIPPED = "skipped"  # already present with the right hash
    FAILED = "failed"
    CANCELLED = "cancelled"


# What a person is told about a model at each event (progress events change no words).
STATUS_WORDS = {
    EventKind.QUEUED: "queued",
    EventKind.STARTED: "downloading",
    EventKind.RETRY: "retrying",
    EventKind.FALLBACK: "trying mirror",
    EventKind.VERIFYING: "verifying",
    EventKind.DONE: "present",
    EventKind.SKIPPED: "present",
    EventKind.FAILED: "failed",
    EventKind.CANCELLED: "cancelled",
}
# Events whose message a person should read (why it failed, why it retries).
NOTEWORTHY = frozenset({EventKind.RETRY, EventKind.FALLBACK, EventKind.FAILED, EventKind.CANCELLED})

TERMINAL = frozenset({EventKind.DONE, EventKind.SKIPPED, EventKind.FAILED, EventKind.CANCELLED})


@dataclass(frozen=True)
class DownloadEvent:
    model_id: str
    kind: EventKind
    done: int = 0
    total: int | None = None
    url: str | None = None
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL


# Called from download worker threads: listeners must be thread-safe (the GUI re-emits as a Qt signal).
EventSink = Callable[[DownloadEvent], None]


def ignore_events(_event: DownloadEvent) -> None:
    """The default sink."""
