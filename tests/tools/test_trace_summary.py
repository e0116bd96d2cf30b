"""The bench's trace: every thread recorded, and a summary that counts what the timeline shows."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import pytest
import torch

from tools.trace_summary import record, summarise

MS = 1000.0  # the trace counts microseconds


def _op(tid: int, ts: float, dur: float, name: str = "aten::add") -> dict[str, object]:
    return {"ph": "X", "cat": "cpu_op", "name": name, "tid": tid, "ts": ts * MS, "dur": dur * MS}


def _gpu(ts: float, dur: float, stream: int) -> dict[str, object]:
    return {"ph": "X", "cat": "kernel", "tid": 0, "ts": ts * MS, "dur": dur * MS, "args": {"stream": stream}}


def _runtime(name: str, tid: int, ts: float, dur: float) -> dict[str, object]:
    return {"ph": "X", "cat": "cuda_runtime", "name": name, "tid": tid, "ts": ts * MS, "dur": dur * MS}


def test_the_summary_counts_outer_calls_union_busy_time_and_syncs_per_thread() -> None:
    events = [
        _op(1, 0, 100, "aten::linear"),
        _op(1, 10, 50, "aten::matmul"),  # inside linear: not a call of its own
        _op(1, 200, 100),
        _op(2, 0, 40),
        _runtime("cudaStreamSynchronize", 77, 50, 300),
        _runtime("cudaLaunchKernel", 77, 400, 5),
        _gpu(0, 400, stream=7),
        _gpu(200, 400, stream=8),  # overlaps stream 7 by 200 ms
        {"ph": "M", "name": "thread_name", "tid": 1, "args": {"name": "ignored"}},
    ]
    summary = summarise(events, frames=2, thread_names={1: "swap-0", 2: "analyse", 77: "swap-0"})
    assert summary["window_s"] == pytest.approx(0.6)
    assert summary["gpu_busy_pct"] == pytest.approx(100.0)  # 0–600 ms covered by one stream or the other
    assert summary["streams_per_frame"]["7"] == {"busy_ms": 200.0, "kernels": 0.5}
    worker = summary["threads_per_frame"]["swap-0"]  # kernel id 1 and pthread id 77 are one thread
    assert worker["torch_calls"] == 1.0 and worker["in_torch_calls_ms"] == pytest.approx(100.0)
    assert worker["syncs"] == 0.5 and worker["in_syncs_ms"] == pytest.approx(150.0)
    assert summary["threads_per_frame"]["analyse"]["torch_calls"] == 0.5
    assert worker["top_calls_ms"] == {"aten::add": 50.0, "aten::linear": 50.0}


def test_a_gap_on_the_gpu_shows_in_its_busy_share() -> None:
    events = [_gpu(0, 100, 7), _gpu(300, 100, 7), _op(1, 0, 400)]
    assert summarise(events, 1, {})["gpu_busy_pct"] == pytest.approx(50.0)
    assert summarise([_op(1, 0, 10)], 1, {})["gpu_busy_pct"] is None  # no GPU: nothing to say


def test_a_recording_holds_threads_that_were_running_before_it_began(tmp_path: Path) -> None:
    stop = threading.Event()

    def busy() -> None:
        x = torch.ones(64, 64)
        while not stop.wait(0.01):  # a few calls at a time: a small trace
            x = (x @ x).clamp(0, 1)

    def main_work() -> int:
        y = torch.ones(8)
        for _ in range(20):
            y = y * 2
        time.sleep(0.2)  # the other thread's turn
        return 5

    worker = threading.Thread(target=busy, name="already-running")
    worker.start()
    try:
        result, events, names = record(main_work, tmp_path / "t.json.gz", cuda=False)
    finally:
        stop.set()
        worker.join()
    assert result == 5
    threads = summarise(events, 5, names)["threads_per_frame"]
    assert threads["already-running"]["torch_calls"] > 0 and threads["MainThread"]["torch_calls"] >= 4
    with gzip.open(tmp_path / "t.json.gz", "rt", encoding="utf-8") as written:
        assert len(json.load(written)["traceEvents"]) == len(events)
    assert not (tmp_path / "t.json.gz.partial").exists()


def test_a_call_that_starts_with_its_first_sub_call_counts_once_whole() -> None:
    events = [_op(3, 0, 50, "aten::copy_"), _op(3, 0, 100, "aten::to")]  # the same start: outer first
    thread = summarise(events, 1, {3: "worker"})["threads_per_frame"]["worker"]
    assert thread["torch_calls"] == 1.0 and thread["top_calls_ms"] == {"aten::to": 100.0}
