"""Facts about the GPU and the NVIDIA libraries, as the engine needs them (cache keys, budgets, reports).

Everything here answers without raising: on a machine without a GPU the answers say so.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import subprocess
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    sm: str  # "sm_90": the compute capability, part of every TensorRT and CUDA-graph cache key
    vram_total_bytes: int


@dataclass(frozen=True)
class DeviceFacts:
    gpus: tuple[GpuInfo, ...]
    torch_version: str
    torch_cuda: str | None  # the CUDA version torch was built for; None for a CPU build
    cudnn: str | None
    driver: str | None
    tensorrt: str | None

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def gpu(self, index: int = 0) -> GpuInfo | None:
        return next((g for g in self.gpus if g.index == index), None)


def _gpus() -> tuple[GpuInfo, ...]:
    if not torch.cuda.is_available():
        return ()
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append(GpuInfo(index, props.name, f"sm_{props.major}{props.minor}", int(props.total_memory)))
    return tuple(found)


def _cudnn_version() -> str | None:
    if not torch.backends.cudnn.is_available():  # type: ignore[no-untyped-call]
        return None
    raw = torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
    if not raw:
        return None
    major, rest = divmod(int(raw), 10000) if raw >= 10000 else divmod(int(raw), 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _driver_version() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = done.stdout.strip().splitlines()
    return first[0].strip() if done.returncode == 0 and first else None


_NVINFER_NAMES = ("libnvinfer.so.10", "libnvinfer.so", "nvinfer_10.dll", "nvinfer.dll")


def tensorrt_version() -> str | None:
    """The TensorRT runtime version ORT would load, or None when TensorRT is not installed."""
    try:
        import tensorrt  # type: ignore[import-not-found]

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for name in _NVINFER_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        raw = int(lib.getInferLibVersion())  # major*10000 + minor*100 + patch since TensorRT 10
        return f"{raw // 10000}.{raw // 100 % 100}.{raw % 100}"
    return None


@functools.cache
def device_facts() -> DeviceFacts:
    """Collected once per process (nvidia-smi and library probes are slow)."""
    return DeviceFacts(
        gpus=_gpus(),
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        cudnn=_cudnn_version(),
        driver=_driver_version(),
        tensorrt=tensorrt_version(),
    )


def free_vram_bytes(index: int = 0) -> int | None:
    """Free memory on the GPU as the driver sees it (ONNX Runtime's allocations included)."""
    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(index)
    return int(free)
