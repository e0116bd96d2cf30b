"""What a run costs besides time: GPU utilisation, GPU memory and host memory, sampled in the background.

The benchmark and profiles need "how busy was the GPU" and "how much memory did it take" next to the
stage timings. A ResourceSampler polls NVML (pynvml) and psutil from a daemon thread every `interval_s`
while the block it wraps runs:

    with ResourceSampler(device_index=0) as sampler:
        run_job()
    report = sampler.report()

Each metric is None with a reason in `report.unavailable` when it cannot be measured (no NVIDIA driver,
no GPU, a MIG slice that does not report utilisation, a CPU-only torch), so callers can print the
report as is. The sampler never raises into the caller: a failing probe is logged and that metric
stops, the rest go on.

Two caveats worth knowing when reading the numbers:
- NVML memory is the whole device's (every process), torch's peaks are this process's caching allocator
  only (ONNX Runtime's arena is not in them).
- NVML utilisation is the share of its own sample period (1/6 s to 1 s) in which any kernel ran, not how
  much of the GPU the kernels filled; 100% can still mean a starved GPU.
- Starting a sampler resets torch's peak memory statistics for that device.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import psutil  # type: ignore[import-untyped]
import torch

log = logging.getLogger(__name__)

MB = 1024.0 * 1024.0
_UTIL = ("gpu_util_mean_pct", "gpu_util_peak_pct")
_TORCH = ("torch_max_allocated_mb", "torch_max_reserved_mb")
CHILDREN_REFRESH_S = 0.5  # a child started later is counted from its first half second


@dataclass(frozen=True)
class ResourceReport:
    """Summary of one sampled block; a None metric has its reason in `unavailable`."""

    samples: int
    seconds: float
    gpu_util_mean_pct: float | None
    gpu_util_peak_pct: float | None
    gpu_mem_peak_mb: float | None  # NVML: the whole device, every process
    torch_max_allocated_mb: float | None  # this process's torch caching allocator
    torch_max_reserved_mb: float | None
    host_rss_peak_mb: float | None  # this process and its children
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _nvml() -> Any:
    """pynvml, imported late: a missing wheel is a reason for a None metric, not an import error."""
    import pynvml  # type: ignore[import-untyped]

    return pynvml


def _nvml_handle(nvml: Any, device_index: int) -> Any:
    """The NVML handle of torch's device `device_index`. torch counts devices after CUDA_VISIBLE_DEVICES,
    NVML counts every device, so match on the UUID when torch can tell it; else NVML's own index."""
    if torch.cuda.is_available() and device_index < torch.cuda.device_count():
        uuid = str(getattr(torch.cuda.get_device_properties(device_index), "uuid", "") or "")
        if uuid:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                nvml_uuid = nvml.nvmlDeviceGetUUID(handle)
                nvml_uuid = nvml_uuid.decode() if isinstance(nvml_uuid, bytes) else str(nvml_uuid)
                if nvml_uuid.removeprefix("GPU-").removeprefix("MIG-") == uuid.removeprefix("GPU-"):
                    return handle
    return nvml.nvmlDeviceGetHandleByIndex(device_index)


class ResourceSampler:
    """Background sampler of GPU utilisation/memory (NVML) and host RSS (psutil); a context manager."""

    def __init__(self, device_index: int = 0, interval_s: float = 0.05) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.device_index = device_index
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._handle: Any = None
        self._process: Any = None
        self._children: list[Any] = []
        self._children_listed_at = float("-inf")
        self._reset()

    def _reset(self) -> None:
        self._unavailable: dict[str, str] = {}
        self._samples = 0
        self._started = 0.0
        self._ended: float | None = None
        self._util: list[float] = []
        self._gpu_mem_peak: float | None = None
        self._rss_peak: float | None = None
        self._torch_peaks: tuple[float, float] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ResourceSampler:
        if self._thread is not None:
            raise RuntimeError("ResourceSampler already started; use a new one per block")
        self._reset()
        self._started = time.perf_counter()
        self._guarded(self._open_nvml, (*_UTIL, "gpu_mem_peak_mb"))
        self._guarded(self._open_torch, _TORCH)
        self._guarded(self._open_host, ("host_rss_peak_mb",))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> ResourceReport:
        """Stop the thread (it wakes at once: it waits on the stop event), take a last sample so a short
        block still counts its final state, and release NVML. Safe to call twice."""
        thread = self._thread
        if thread is not None and self._ended is None:
            self._stop.set()
            thread.join()
            self._sample_guarded()
            self._guarded(self._read_torch_peaks, _TORCH)
            self._ended = time.perf_counter()
            self._close_nvml()
        return self.report()

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- results ---------------------------------------------------------------------------------------

    def report(self) -> ResourceReport:
        """The numbers so far (final once stopped)."""
        with self._lock:
            util = list(self._util)
            torch_peaks = self._torch_peaks
            end = self._ended if self._ended is not None else time.perf_counter()
            values: dict[str, float | None] = {
                "gpu_util_mean_pct": sum(util) / len(util) if util else None,
                "gpu_util_peak_pct": max(util) if util else None,
                "gpu_mem_peak_mb": self._gpu_mem_peak,
                "torch_max_allocated_mb": torch_peaks[0] if torch_peaks else None,
                "torch_max_reserved_mb": torch_peaks[1] if torch_peaks else None,
                "host_rss_peak_mb": self._rss_peak,
            }
            unavailable = {name: self._unavailable[name] for name in values if name in self._unavailable}
            samples = self._samples
        for name, value in values.items():
            if value is None and name not in unavailable:
                unavailable[name] = "read when the sampler stops" if "torch" in name else "no sample taken"
        return ResourceReport(
            samples=samples,
            seconds=max(0.0, end - self._started) if self._started else 0.0,
            unavailable=unavailable,
            **values,
        )

    # -- probes ----------------------------------------------------------------------------------------

    def _guarded(self, probe: Callable[[], None], names: tuple[str, ...]) -> None:
        """Run a set-up or read-out step; an unexpected error (a driver in a bad state, say) makes its
        metrics unavailable instead of reaching the caller."""
        try:
            probe()
        except Exception as exc:  # logged with its traceback: the sampler must never take its caller down
            log.warning("resource sampler: %s failed: %s", probe.__name__, exc, exc_info=True)
            self._mark(names, f"{probe.__name__} failed: {exc}")

    def _open_nvml(self) -> None:
        try:
            nvml = _nvml()
        except ImportError:
            self._gpu_unavailable("nvidia-ml-py (pynvml) is not installed")
            return
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            self._gpu_unavailable(f"NVML cannot start (no NVIDIA driver?): {exc}")
            return
        self._nvml = nvml  # from here on, stop() shuts NVML down whatever happens next
        try:
            self._handle = _nvml_handle(nvml, self.device_index)
        except nvml.NVMLError as exc:
            self._gpu_unavailable(f"no NVML device {self.device_index}: {exc}")

    def _close_nvml(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvmlShutdown: %s", exc)
            self._nvml = self._handle = None

    def _mark(self, names: tuple[str, ...], reason: str) -> None:
        """Record why these metrics are None (the first reason wins: it is the root cause)."""
        with self._lock:
            for name in names:
                self._unavailable.setdefault(name, reason)

    def _gpu_unavailable(self, reason: str) -> None:
        self._mark((*_UTIL, "gpu_mem_peak_mb"), reason)

    def _torch_unavailable(self, reason: str) -> None:
        self._mark(_TORCH, reason)

    def _open_torch(self) -> None:
        if not torch.cuda.is_available():
            build = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
            self._torch_unavailable(f"torch.cuda is not available (torch {torch.__version__} {build})")
        elif self.device_index >= torch.cuda.device_count():
            self._torch_unavailable(f"torch sees no CUDA device {self.device_index}")
        else:
            torch.cuda.reset_peak_memory_stats(self.device_index)

    def _read_torch_peaks(self) -> None:
        if _TORCH[0] in self._unavailable:
            return
        try:
            allocated = torch.cuda.max_memory_allocated(self.device_index) / MB
            reserved = torch.cuda.max_memory_reserved(self.device_index) / MB
        except RuntimeError as exc:
            self._torch_unavailable(f"torch.cuda memory statistics failed: {exc}")
            return
        with self._lock:
            self._torch_peaks = (allocated, reserved)

    def _open_host(self) -> None:
        try:
            self._process = psutil.Process(os.getpid())
        except psutil.Error as exc:
            self._mark(("host_rss_peak_mb",), f"psutil cannot read this process: {exc}")

    def _run(self) -> None:
        while True:
            self._sample_guarded()
            if self._stop.wait(self.interval_s):
                return

    def _sample_guarded(self) -> None:
        """One sample; whatever goes wrong is logged, never raised: a probe must not stop the job."""
        try:
            self._sample()
        except Exception as exc:  # logged with its traceback: the sampler must never take its caller down
            log.warning("resource sampler stopped sampling: %s", exc, exc_info=True)
            self._mark((*_UTIL, "gpu_mem_peak_mb", "host_rss_peak_mb"), f"sampler failed: {exc}")
            self._handle = None
            self._process = None

    def _sample(self) -> None:
        util, gpu_mem = self._sample_gpu()
        rss = self._sample_host()
        with self._lock:
            self._samples += 1
            if util is not None:
                self._util.append(util)
            if gpu_mem is not None:
                self._gpu_mem_peak = max(self._gpu_mem_peak or 0.0, gpu_mem)
            if rss is not None:
                self._rss_peak = max(self._rss_peak or 0.0, rss)

    def _sample_gpu(self) -> tuple[float | None, float | None]:
        nvml, handle = self._nvml, self._handle
        if nvml is None or handle is None:
            return None, None
        util: float | None = None
        memory: float | None = None
        if _UTIL[0] not in self._unavailable:
            try:
                util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError as exc:  # e.g. a MIG slice: NVML_ERROR_NOT_SUPPORTED
                self._mark(_UTIL, f"NVML utilisation: {exc}")
        if "gpu_mem_peak_mb" not in self._unavailable:
            try:
                memory = float(nvml.nvmlDeviceGetMemoryInfo(handle).used) / MB
            except nvml.NVMLError as exc:
                self._mark(("gpu_mem_peak_mb",), f"NVML memory: {exc}")
        return util, memory

    def _sample_host(self) -> float | None:
        process = self._process
        if process is None:
            return None
        try:
            rss = int(process.memory_info().rss)
        except psutil.Error as exc:
            self._mark(("host_rss_peak_mb",), f"psutil: {exc}")
            self._process = None
            return None
        for child in self._children_of(process):
            try:
                rss += int(child.memory_info().rss)
            except psutil.Error:
                continue  # a child that ended between listing and reading
        return rss / MB

    def _children_of(self, process: Any) -> list[Any]:
        """The process's children, listed again at most every CHILDREN_REFRESH_S: listing walks all of
        /proc, which on the H200 bench held the GIL 0.6 ms per exported frame at a 50 ms interval."""
        now = time.perf_counter()
        if now - self._children_listed_at >= CHILDREN_REFRESH_S:
            try:
                self._children = process.children(recursive=True)
            except psutil.Error:
                self._children = []
            self._children_listed_at = now
        return self._children
