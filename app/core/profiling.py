"""Per-stage timing: how long detection, swapping, restoring, pasting, … take per frame.

A StageTimer keeps every sample (milliseconds, one per call of a stage, so one per frame for per-frame
stages) rather than running totals, because a mean hides the stutters a viewer notices: the profile
reports p50/p95/p99 next to the mean. Samples are kept per stage in lists; at ~10 stages and a few
hours of 60 fps video that is tens of MB at most, and jobs and benchmarks are far shorter.

With `synchronise` on, the timer waits for the GPU at each stage's edges so the time lands on the
stage that spent it (CUDA runs asynchronously); that costs a little speed, so it is for profiling and
the benchmark, off in normal runs. With `nvtx` on (and CUDA present) each stage is also an NVTX range,
so Nsight Systems shows the stage names on its timeline; otherwise that costs one attribute check.

One timer may be shared by several worker threads (appends take a lock), or each worker may keep its
own and the owner `merge`s them at the end, which avoids the lock traffic in the hot path.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

PROFILE_COLUMNS = ("stage", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "total_ms")


@dataclass(frozen=True)
class StageStats:
    """Summary of one stage's samples, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    total_ms: float

    @classmethod
    def of(cls, samples: list[float]) -> StageStats:
        """Percentiles use numpy's default (linear interpolation), so they match what analysts compute."""
        if not samples:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        values = np.asarray(samples, dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
        return cls(
            count=len(samples),
            mean_ms=float(values.mean()),
            p50_ms=float(p50),
            p95_ms=float(p95),
            p99_ms=float(p99),
            total_ms=float(values.sum()),
        )


class StageTimer:
    """Wall time per named stage, every sample kept; thread-safe."""

    def __init__(self, synchronise: bool = False, nvtx: bool = False) -> None:
        cuda = torch.cuda.is_available()
        self.synchronise = synchronise and cuda
        self.nvtx = nvtx and cuda
        self._samples: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as one sample of `name` (also when it raises: a failing stage still cost time)."""
        if self.nvtx:
            torch.cuda.nvtx.range_push(name)  # type: ignore[no-untyped-call]
        try:
            if self.synchronise:
                torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                yield
            finally:
                if self.synchronise:
                    torch.cuda.synchronize()
                self.record(name, (time.perf_counter() - start) * 1000.0)
        finally:
            if self.nvtx:  # popped even when the block or a synchronise raised: ranges stay balanced
                torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call]

    def record(self, name: str, ms: float) -> None:
        """Add one value that was not timed by `stage`, e.g. a frame's end-to-end latency."""
        with self._lock:
            self._samples.setdefault(name, []).append(float(ms))

    def merge(self, other: StageTimer) -> None:
        """Append another timer's samples (e.g. one per worker thread) to this one's."""
        if other is self:
            return
        incoming = other.samples()
        with self._lock:
            for name, values in incoming.items():
                self._samples.setdefault(name, []).extend(values)

    def samples(self) -> dict[str, list[float]]:
        """A copy of every stage's samples, in the order they were recorded."""
        with self._lock:
            return {name: list(values) for name, values in self._samples.items()}

    def samples_since(self, seen: dict[str, int]) -> dict[str, list[float]]:
        """Each stage's samples after the first `seen[stage]` (all of them after a reset), and `seen`
        moved on past them: a reader polling a long run copies only what is new."""
        with self._lock:
            fresh = {}
            for name, values in self._samples.items():
                start = seen.get(name, 0)
                fresh[name] = values[start if start <= len(values) else 0 :]
                seen[name] = len(values)
            return fresh

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()

    @property
    def totals(self) -> dict[str, float]:
        """Total milliseconds per stage (a snapshot)."""
        with self._lock:
            return {name: float(sum(values)) for name, values in self._samples.items()}

    @property
    def counts(self) -> dict[str, int]:
        """Samples per stage (a snapshot)."""
        with self._lock:
            return {name: len(values) for name, values in self._samples.items()}

    def mean_ms(self) -> dict[str, float]:
        with self._lock:
            return {name: sum(values) / len(values) for name, values in self._samples.items() if values}

    def summary(self) -> dict[str, StageStats]:
        return {name: StageStats.of(values) for name, values in self.samples().items()}


def write_profile(
    path_stem: Path, timer: StageTimer, extra: Mapping[str, object] | None = None
) -> tuple[Path, Path]:
    """Write `<stem>.profile.csv` (one row per stage) and `<stem>.profile.json` (the same, `extra`
    metadata such as device and model names, and every sample), each atomically so a reader never
    sees half a file. Returns (csv path, json path)."""
    path_stem = Path(path_stem)
    samples = timer.samples()
    stats = {name: StageStats.of(values) for name, values in samples.items()}

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(PROFILE_COLUMNS)
    for name, row in stats.items():
        writer.writerow(
            [
                name,
                row.count,
                f"{row.mean_ms:.4f}",
                f"{row.p50_ms:.4f}",
                f"{row.p95_ms:.4f}",
                f"{row.p99_ms:.4f}",
                f"{row.total_ms:.4f}",
            ]
        )
    document = {
        "stages": {name: asdict(row) for name, row in stats.items()},
        "extra": dict(extra or {}),
        "samples_ms": samples,
    }
    csv_path = path_stem.with_name(path_stem.name + ".profile.csv")
    json_path = path_stem.with_name(path_stem.name + ".profile.json")
    _write_atomic(csv_path, table.getvalue())
    _write_atomic(json_path, json.dumps(document, indent=2, default=str))
    log.info("profile written to %s and %s", csv_path, json_path)
    return csv_path, json_path


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A file of the user's, beside their export: the mode their umask gives (mkstemp's would be 0600).
    tmp = path.with_name(f".{path.name}-{secrets.token_hex(4)}.partial")
    try:
        with tmp.open("x", encoding="utf-8", newline="") as handle:
            handle.write(text)
        tmp.replace(path)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
