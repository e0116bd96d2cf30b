from __future__ import annotations

import csv
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.profiling import PROFILE_COLUMNS, StageStats, StageTimer, write_profile

CUDA = torch.cuda.is_available()


def test_summary_matches_numpy_percentiles() -> None:
    values = np.random.default_rng(7).gamma(2.0, 3.0, size=1001)
    timer = StageTimer()
    for value in values:
        timer.record("swap", float(value))
    stats = timer.summary()["swap"]
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    assert stats.count == 1001
    assert stats.mean_ms == pytest.approx(values.mean())
    assert stats.total_ms == pytest.approx(values.sum())
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == pytest.approx((p50, p95, p99))


def test_known_small_sample() -> None:
    stats = StageStats.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.p50_ms == 3.0
    assert stats.p95_ms == pytest.approx(80.8)  # numpy's linear interpolation: 4 + 0.8 * 96
    assert StageStats.of([]).count == 0


def test_stage_times_the_block_and_keeps_the_old_api() -> None:
    timer = StageTimer()
    for _ in range(3):
        with timer.stage("detect"):
            time.sleep(0.005)
    with pytest.raises(ValueError), timer.stage("paste"):
        raise ValueError("a failing stage still cost time")
    assert timer.counts == {"detect": 3, "paste": 1}
    assert all(ms >= 4.5 for ms in timer.samples()["detect"])
    assert timer.totals["detect"] == pytest.approx(sum(timer.samples()["detect"]))
    assert timer.mean_ms()["detect"] == pytest.approx(timer.totals["detect"] / 3)


def test_shared_timer_is_thread_safe() -> None:
    timer = StageTimer()
    threads, rounds = 8, 500
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            with timer.stage("detect"), timer.stage(f"worker{index % 2}"):
                pass
            timer.record("latency", 1.0)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    counts = timer.counts
    assert counts["detect"] == threads * rounds
    assert counts["latency"] == threads * rounds
    assert counts["worker0"] + counts["worker1"] == threads * rounds
    assert timer.totals["latency"] == threads * rounds


def test_merge_appends_samples() -> None:
    first, second = StageTimer(), StageTimer()
    first.record("swap", 1.0)
    second.record("swap", 3.0)
    second.record("restore", 5.0)
    first.merge(second)
    first.merge(first)  # merging itself changes nothing
    assert first.samples() == {"swap": [1.0, 3.0], "restore": [5.0]}
    assert second.counts == {"swap": 1, "restore": 1}


def test_write_profile_writes_csv_and_json(tmp_path: Path) -> None:
    timer = StageTimer()
    for value in (1.0, 2.0, 3.0):
        timer.record("detect", value)
    timer.record("swap", 10.0)
    csv_path, json_path = write_profile(tmp_path / "out" / "clip", timer, {"device": "cpu", "frames": 3})

    assert csv_path.name == "clip.profile.csv" and json_path.name == "clip.profile.json"
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == PROFILE_COLUMNS
        rows = {row["stage"]: row for row in reader}
    assert set(rows) == {"detect", "swap"}
    assert int(rows["detect"]["count"]) == 3
    assert float(rows["detect"]["p50_ms"]) == pytest.approx(2.0)
    assert float(rows["swap"]["total_ms"]) == pytest.approx(10.0)

    document = json.loads(json_path.read_text())
    assert document["extra"] == {"device": "cpu", "frames": 3}
    assert document["samples_ms"]["detect"] == [1.0, 2.0, 3.0]
    assert document["stages"]["detect"]["mean_ms"] == pytest.approx(2.0)
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["clip.profile.csv", "clip.profile.json"]
    if os.name == "posix":  # the user's files, with the mode their umask gives (not a temp file's 0600)
        umask = os.umask(0o022)
        os.umask(umask)
        assert {p.stat().st_mode & 0o777 for p in (csv_path, json_path)} == {0o666 & ~umask}


def test_nvtx_is_a_no_op_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    if CUDA:
        pytest.skip("CUDA present: the NVTX path is tested below")

    def fail(*_: object) -> None:
        raise AssertionError("NVTX called without CUDA")

    monkeypatch.setattr(torch.cuda.nvtx, "range_push", fail)
    monkeypatch.setattr(torch.cuda.nvtx, "range_pop", fail)
    timer = StageTimer(synchronise=True, nvtx=True)
    assert not timer.nvtx and not timer.synchronise
    with timer.stage("detect"):
        pass
    assert timer.counts == {"detect": 1}


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_nvtx_ranges_are_balanced_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    push, pop = torch.cuda.nvtx.range_push, torch.cuda.nvtx.range_pop

    def spy_push(name: str) -> object:
        calls.append(f"push:{name}")
        return push(name)

    def spy_pop() -> object:
        calls.append("pop")
        return pop()

    monkeypatch.setattr(torch.cuda.nvtx, "range_push", spy_push)
    monkeypatch.setattr(torch.cuda.nvtx, "range_pop", spy_pop)
    timer = StageTimer(synchronise=True, nvtx=True)
    x = torch.ones(256, 256, device="cuda")
    with timer.stage("outer"), timer.stage("matmul"):
        (x @ x).sum().item()
    with pytest.raises(RuntimeError), timer.stage("boom"):
        raise RuntimeError("ranges still pop")
    assert calls == ["push:outer", "push:matmul", "pop", "pop", "push:boom", "pop"]
    assert timer.counts == {"matmul": 1, "outer": 1, "boom": 1}


def test_samples_since_returns_only_new_samples_and_starts_over_after_a_reset() -> None:
    timer = StageTimer()
    seen: dict[str, int] = {}
    timer.record("swap", 1.0)
    timer.record("swap", 2.0)
    assert timer.samples_since(seen) == {"swap": [1.0, 2.0]} and seen == {"swap": 2}
    timer.record("swap", 3.0)
    timer.record("encode", 4.0)
    assert timer.samples_since(seen) == {"swap": [3.0], "encode": [4.0]}
    assert timer.samples_since(seen) == {"swap": [], "encode": []}
    timer.reset()
    timer.record("swap", 5.0)
    assert timer.samples_since(seen) == {"swap": [5.0]} and seen["swap"] == 1
