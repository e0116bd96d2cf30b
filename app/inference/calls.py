"""CallLog: which models ran, with which input shapes, how often — for the benchmark's efficiency figure.

The benchmark replays each distinct call alone (same model, same shapes) to learn its isolated cost;
the sum over a run's calls, divided by the run's end-to-end time, says how much of the pipeline's time
went into the models rather than into waiting, copying and pre/post-processing. Off by default: the
runtime only records while a CallLog is attached.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CallSignature:
    model_id: str
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape, dtype) in feed order


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[CallSignature] = Counter()

    def record(self, model_id: str, feeds: Mapping[str, torch.Tensor]) -> None:
        signature = CallSignature(
            model_id,
            tuple((name, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in feeds.items()),
        )
        with self._lock:
            self.counts[signature] += 1

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()

    def snapshot(self) -> dict[CallSignature, int]:
        with self._lock:
            return dict(self.counts)
