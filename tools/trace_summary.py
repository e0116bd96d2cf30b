"""A torch profiler trace of a pipeline run, every thread and (on a GPU) every stream, and its summary.

The bench's figures say how fast the export is and where its stages wait on each other; the trace
says why: how much of the window each CUDA stream computed, how much of it the GPU did anything at
all, and, per host thread, how long it spent inside torch calls and how long it stood in
synchronisations. The whole trace is written as a gzipped Chrome trace (chrome://tracing, Perfetto)
for a look at the timeline itself.

torch's profiler follows only the thread that starts it unless told otherwise: `profile_all_threads`
(an experimental Kineto option) makes it record the pipeline's worker threads too.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from torch.profiler import ProfilerActivity, profile

T = TypeVar("T")
GPU_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
TOP_CALLS = 8  # per thread, the torch calls it spent longest in
THREAD_SAMPLE_S = 0.02  # how often the running threads' names are read (a pool lives for one job)


def record(run: Callable[[], T], path: Path, cuda: bool) -> tuple[T, list[dict[str, Any]], dict[int, str]]:
    """`run()` under the profiler (its threads too; CUDA activity when `cuda`): its result, the trace's
    events (also written gzipped to `path`) and the names of the threads that ran meanwhile."""
    from torch._C._profiler import _ExperimentalConfig

    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    config = _ExperimentalConfig(profile_all_threads=True, enable_cuda_sync_events=cuda)
    names: dict[int, str] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_watch_threads, args=(names, done), name="trace-names", daemon=True)
    watcher.start()
    profiler = profile(activities=activities, experimental_config=config, acc_events=True)
    profiler.start()
    try:
        result = run()
    finally:
        profiler.stop()
        done.set()
        watcher.join()
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(plain))
        events: list[dict[str, Any]] = json.loads(plain.read_text(encoding="utf-8"))["traceEvents"]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with plain.open("rb") as source, gzip.open(partial, "wb", compresslevel=6) as target:
            shutil.copyfileobj(source, target)
        partial.replace(path)
    return result, events, names


def _watch_threads(names: dict[int, str], done: threading.Event) -> None:
    """Thread names by kernel thread id (torch's events) and by 32-bit pthread id (CUPTI's)."""
    while True:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                names[thread.native_id] = thread.name
            if thread.ident is not None:
                names[thread.ident & 0xFFFFFFFF] = thread.name
        if done.wait(THREAD_SAMPLE_S):
            return


def summarise(events: Iterable[dict[str, Any]], frames: int, thread_names: dict[int, str]) -> dict[str, Any]:
    """Per frame: GPU busy (any stream), each stream's busy time and kernel count, and per host thread
    the time inside top-level torch calls and in CUDA synchronisations; plus the window's length."""
    frames = max(1, frames)
    host: dict[int, list[tuple[float, float, str]]] = {}
    runtime: dict[int, list[tuple[float, float, str]]] = {}
    gpu: list[tuple[float, float, Any]] = []
    for event in events:
        if event.get("ph") != "X" or "dur" not in event:
            continue
        start, length, category = float(event["ts"]), float(event["dur"]), event.get("cat")
        if category == "cpu_op":
            host.setdefault(int(event["tid"]), []).append((start, length, str(event["name"])))
        elif category == "cuda_runtime":
            runtime.setdefault(int(event["tid"]), []).append((start, length, str(event["name"])))
        elif category in GPU_CATEGORIES:
            gpu.append((start, length, event.get("args", {}).get("stream")))
    spans = [(s, s + d) for per in (*host.values(), *runtime.values()) for s, d, _ in per]
    spans += [(s, s + d) for s, d, _ in gpu]
    window_us = (max(e for _, e in spans) - min(s for s, _ in spans)) if spans else 0.0
    streams: dict[str, dict[str, float]] = {}
    for _, length, stream in gpu:
        busy = streams.setdefault(str(stream), {"busy_ms": 0.0, "kernels": 0.0})
        busy["busy_ms"] += length / 1000.0
        busy["kernels"] += 1
    # Torch's events name a thread by its kernel id, CUPTI's by its pthread id: both lead to its name.
    totals: dict[str, list[float]] = {}
    by_call: dict[str, dict[str, float]] = {}
    for tid, per in host.items():
        calls = _top_level(per)
        name = thread_names.get(tid, f"thread {tid}")
        entry = totals.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        entry[0] += sum(d for _, d, _ in calls)
        entry[1] += len(calls)
        spent = by_call.setdefault(name, {})
        for _, length, call in calls:
            spent[call] = spent.get(call, 0.0) + length
    for tid, per in runtime.items():
        synced = [d for _, d, name in per if _synchronises(name)]
        entry = totals.setdefault(thread_names.get(tid, f"thread {tid}"), [0.0, 0.0, 0.0, 0.0])
        entry[2] += sum(synced)
        entry[3] += len(synced)
    threads = {
        name: {
            "in_torch_calls_ms": round(calls_us / 1000.0 / frames, 3),
            "torch_calls": round(calls / frames, 1),
            "in_syncs_ms": round(syncs_us / 1000.0 / frames, 3),
            "syncs": round(syncs / frames, 2),
            "top_calls_ms": {
                call: round(us / 1000.0 / frames, 3)
                for call, us in sorted(by_call.get(name, {}).items(), key=lambda kv: -kv[1])[:TOP_CALLS]
            },
        }
        for name, (calls_us, calls, syncs_us, syncs) in sorted(totals.items(), key=lambda kv: -kv[1][0])
    }
    return {
        "window_s": round(window_us / 1e6, 3),
        "frames": frames,
        "gpu_busy_pct": round(100.0 * _union([(s, s + d) for s, d, _ in gpu]) / window_us, 1)
        if window_us and gpu
        else None,
        "streams_per_frame": {
            stream: {"busy_ms": round(v["busy_ms"] / frames, 3), "kernels": round(v["kernels"] / frames, 1)}
            for stream, v in sorted(streams.items(), key=lambda kv: -kv[1]["busy_ms"])
        },
        "threads_per_frame": threads,
    }


def _top_level(calls: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The calls that no other call of the thread contains (an op's own sub-ops are inside it)."""
    outer: list[tuple[float, float, str]] = []
    end = float("-inf")
    for start, length, name in sorted(calls, key=lambda call: (call[0], -call[1])):  # outer first on ties
        if start >= end:
            outer.append((start, length, name))
            end = start + length
    return outer


def _synchronises(name: str) -> bool:
    """CUDA runtime calls that make the host wait for the device."""
    return "Synchronize" in name or name in ("cudaMemcpy", "cudaMemcpy2D", "cudaMemset")


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total
