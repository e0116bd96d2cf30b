from __future__ import annotations

import logging
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
import torch

from app.core import resources
from app.core.resources import ResourceSampler

CUDA = torch.cuda.is_available()
MB = 1024 * 1024
GPU_FIELDS = ("gpu_util_mean_pct", "gpu_util_peak_pct", "gpu_mem_peak_mb")
TORCH_FIELDS = ("torch_max_allocated_mb", "torch_max_reserved_mb")


def test_host_rss_peak_sees_an_allocation() -> None:
    before = psutil.Process().memory_info().rss / MB
    with ResourceSampler(interval_s=0.02) as sampler:
        block = np.ones(200 * MB, dtype=np.uint8)  # ones: every page touched, so resident
        time.sleep(0.1)
        assert sampler.running
    del block
    report = sampler.report()
    assert report.host_rss_peak_mb is not None
    assert report.host_rss_peak_mb >= before + 180
    assert report.samples >= 2
    assert "host_rss_peak_mb" not in report.unavailable
    assert report.seconds >= 0.1


def test_host_rss_counts_a_child_process_started_during_the_block() -> None:
    """The whole-command bench runs `main.py swap` as a child: its memory is the figure."""
    hold = (
        "import numpy, sys, time; b = numpy.ones(300 * 2**20, numpy.uint8); "
        "print(1, flush=True); time.sleep(30)"
    )
    with ResourceSampler(interval_s=0.02) as sampler:
        before = sampler.report().host_rss_peak_mb or 0.0
        child = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "1"
            time.sleep(resources.CHILDREN_REFRESH_S + 0.2)  # listed again, then sampled
        finally:
            peak = sampler.report().host_rss_peak_mb
            child.kill()
            child.wait()
    assert peak is not None and peak >= before + 280


@pytest.mark.skipif(CUDA, reason="checks the no-GPU answer")
def test_gpu_metrics_are_none_with_a_reason_without_a_gpu() -> None:
    with ResourceSampler(interval_s=0.01) as sampler:
        time.sleep(0.03)
    report = sampler.report()
    for name in (*GPU_FIELDS, *TORCH_FIELDS):
        assert getattr(report, name) is None
        assert report.unavailable[name]
    assert "not available" in report.unavailable["torch_max_allocated_mb"]
    assert report.to_json()["unavailable"] == report.unavailable


def test_stop_joins_the_thread_and_is_idempotent() -> None:
    sampler = ResourceSampler(interval_s=10.0).start()  # a long interval: stop must not wait it out
    thread = sampler._thread
    assert thread is not None and thread.is_alive()
    started = time.perf_counter()
    first = sampler.stop()
    assert time.perf_counter() - started < 1.0
    assert not thread.is_alive() and not sampler.running
    assert sampler.stop() == first
    with pytest.raises(RuntimeError):
        sampler.start()


def test_an_exception_in_the_block_still_stops_the_thread() -> None:
    sampler = ResourceSampler(interval_s=0.01)
    with pytest.raises(ValueError), sampler:
        raise ValueError("the job failed")
    assert sampler._thread is not None and not sampler._thread.is_alive()
    assert sampler.report().host_rss_peak_mb is not None


def test_a_failing_probe_never_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = ResourceSampler(interval_s=0.01)

    def broken() -> float:
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(sampler, "_sample_host", broken)
    with sampler:
        time.sleep(0.03)
    report = sampler.report()
    assert report.host_rss_peak_mb is None
    assert "probe exploded" in report.unavailable["host_rss_peak_mb"]


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ResourceSampler(interval_s=0)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_gpu_metrics_on_cuda() -> None:
    with ResourceSampler(device_index=0, interval_s=0.02) as sampler:
        x = torch.ones(64 * MB, device="cuda")  # 256 MB of float32
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:
            x.mul_(1.0001)
        torch.cuda.synchronize()
    report = sampler.report()
    logging.getLogger(__name__).info("GPU sampler report: %s", report)
    assert report.torch_max_allocated_mb is not None and report.torch_max_allocated_mb >= 256
    assert report.torch_max_reserved_mb is not None
    assert report.torch_max_reserved_mb >= report.torch_max_allocated_mb
    if report.gpu_mem_peak_mb is None:  # NVML missing or a MIG slice: say why, never crash
        assert report.unavailable["gpu_mem_peak_mb"]
    else:
        assert report.gpu_mem_peak_mb >= 256
    if report.gpu_util_peak_pct is not None:
        assert report.gpu_util_peak_pct > 0
    else:
        assert report.unavailable["gpu_util_peak_pct"]


# NVML cannot run on the CPU-only CI machines; a scripted NVML covers the sampler's GPU logic there.
# Where CUDA is present the real NVML is measured instead (test_gpu_metrics_on_cuda).
_FAKE_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="real NVML is tested on this machine")


class FakeNvml:
    """Just enough of pynvml to drive the sampler's GPU path without a GPU."""

    class NVMLError(Exception):
        pass

    def __init__(self, utilisation: list[float], used_mb: float, util_supported: bool = True) -> None:
        self.utilisation = utilisation
        self.used = used_mb * MB
        self.util_supported = util_supported
        self.inits = 0

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's name
        self.inits += 1

    def nvmlShutdown(self) -> None:  # noqa: N802 - pynvml's name
        self.inits -= 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - pynvml's name
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:  # noqa: N802 - pynvml's name
        if index != 0:
            raise self.NVMLError("Invalid Argument")
        return object()

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> SimpleNamespace:  # noqa: N802 - pynvml's name
        if not self.util_supported:
            raise self.NVMLError("Not Supported")
        value = self.utilisation.pop(0) if len(self.utilisation) > 1 else self.utilisation[0]
        return SimpleNamespace(gpu=value)

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> SimpleNamespace:  # noqa: N802 - pynvml's name
        return SimpleNamespace(used=self.used)


@_FAKE_ONLY
def test_gpu_path_with_a_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([10.0, 90.0, 50.0], used_mb=1234.0)
    monkeypatch.setattr(resources, "_nvml", lambda: fake)
    with ResourceSampler(interval_s=0.01) as sampler:
        time.sleep(0.05)
    report = sampler.report()
    assert report.gpu_util_peak_pct == 90.0
    assert report.gpu_util_mean_pct is not None and 10.0 < report.gpu_util_mean_pct < 90.0
    assert report.gpu_mem_peak_mb == pytest.approx(1234.0)
    assert fake.inits == 0  # shut down again


@_FAKE_ONLY
def test_utilisation_not_supported_keeps_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([0.0], used_mb=100.0, util_supported=False)  # what a MIG slice answers
    monkeypatch.setattr(resources, "_nvml", lambda: fake)
    with ResourceSampler(interval_s=0.01) as sampler:
        time.sleep(0.03)
    report = sampler.report()
    assert report.gpu_util_mean_pct is None and "Not Supported" in report.unavailable["gpu_util_mean_pct"]
    assert report.gpu_mem_peak_mb == pytest.approx(100.0)


@_FAKE_ONLY
def test_missing_device_and_failing_set_up_never_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([0.0], used_mb=1.0)
    monkeypatch.setattr(resources, "_nvml", lambda: fake)
    sampler = ResourceSampler(device_index=3, interval_s=0.01)

    def broken() -> None:
        raise RuntimeError("driver in a bad state")

    monkeypatch.setattr(sampler, "_open_torch", broken)
    with sampler:
        pass
    report = sampler.report()
    assert "no NVML device 3" in report.unavailable["gpu_mem_peak_mb"]
    assert "driver in a bad state" in report.unavailable["torch_max_allocated_mb"]
    assert report.host_rss_peak_mb is not None
    assert fake.inits == 0
