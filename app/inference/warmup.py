"""Warmup: load models, run each once on example tensors, and time the steady state.

The first run of a session pays for lazy setup (cuDNN algorithm search, TensorRT engine build or load,
arena growth); warming up before the first real frame keeps that out of a live preview. The timings
are what `python main.py warmup` prints.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from app.inference.runtime import InferenceRuntime


@dataclass(frozen=True)
class WarmupRow:
    model_id: str
    standin: bool
    requested: str  # where the provider chain started
    provider: str  # where the model runs now
    fallbacks: tuple[str, ...]  # sentences for each fallback during this warmup
    load_ms: float
    first_run_ms: float
    steady_ms: float  # median of the timed runs after the first
    runs: int
    footprint_bytes: int
    cuda_graph: bool


def warm_up(
    runtime: InferenceRuntime,
    model_id: str,
    runs: int = 10,
    provider: str | None = None,
    precision: str | None = None,
) -> WarmupRow:
    requested = runtime.key_for(model_id, provider, precision).provider
    seen = len(runtime.fallbacks.events())
    with runtime.session(model_id, provider, precision) as session:
        first_ms = session.first_run_ms if session.first_run_ms is not None else session.warmup()
        feeds = session.example_inputs(seed=1)
        timings = []
        for _ in range(max(runs, 1)):
            started = time.perf_counter()
            session.run(feeds)
            session.finish()
            timings.append((time.perf_counter() - started) * 1000.0)
        news = [e for e in runtime.fallbacks.events()[seen:] if e.model_id == model_id]
        return WarmupRow(
            model_id=model_id,
            standin=session.model.standin,
            requested=requested.value,
            provider=session.provider.value,
            fallbacks=tuple(e.sentence() for e in news),
            load_ms=session.load_ms,
            first_run_ms=first_ms,
            steady_ms=statistics.median(timings),
            runs=len(timings),
            footprint_bytes=session.footprint_bytes,
            cuda_graph=session.uses_cuda_graph,
        )
