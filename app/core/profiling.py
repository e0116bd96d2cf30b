"""Per-stage timing: how long detection, swapping, restoring, pasting, … take per frame.

A StageTimer adds wall time per stage name. With `synchronise` on, it waits for the GPU at each stage's
edges so the time lands on the stage that spent it (CUDA runs asynchronously); that costs a little
speed, so it is for profiling and the benchmark, off in normal runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class StageTimer:
    def __init__(self, synchronise: bool = False) -> None:
        self.synchronise = synchronise and torch.cuda.is_available()
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.synchronise:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.synchronise:
                torch.cuda.synchronize()
            self.totals[name] = self.totals.get(name, 0.0) + (time.perf_counter() - start) * 1000.0
            self.counts[name] = self.counts.get(name, 0) + 1

    def mean_ms(self) -> dict[str, float]:
        return {name: total / self.counts[name] for name, total in self.totals.items()}
