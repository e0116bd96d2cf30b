"""What this machine's PyAV (FFmpeg) can do in hardware: CUDA decode (NVDEC) and NVENC encode.

Each capability is tested by opening a real codec context, not read from a list of compiled-in names:
FFmpeg builds list h264_nvenc everywhere, but an H100 has no NVENC and a machine without a GPU has
neither, and users deserve to know before an export falls back to a software encoder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.video.codeccontext import VideoCodecContext

HARDWARE_ENCODERS = ("h264_nvenc", "hevc_nvenc")
SOFTWARE_ENCODERS = ("libx264", "libx265")


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool
    reason: str | None = None  # why not, when not


@dataclass(frozen=True)
class MediaCapabilities:
    pyav: str
    libavcodec: str
    hw_device_types: tuple[str, ...]  # compiled into this FFmpeg build
    cuda_decode: Capability
    encoders: tuple[Capability, ...]


NO_NVIDIA_GPU = "no NVIDIA GPU on this machine"


def _explain(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def nvidia_gpu_absent(dev: Path = Path("/dev")) -> bool:
    """True where it is certain that no NVIDIA GPU is present (Linux with neither /dev/nvidia0, … nor
    WSL2's /dev/dxg, through which WSL reaches the GPU), so NVENC and NVDEC can be reported as absent
    instead of by FFmpeg's errno ("Operation not permitted"); elsewhere False, and FFmpeg's own error
    stands."""
    if sys.platform != "linux":
        return False
    return not any(dev.glob("nvidia[0-9]*")) and not (dev / "dxg").exists()


def _cuda_decode() -> Capability:
    if "cuda" not in hwdevices_available():
        return Capability("cuda decode", False, "this FFmpeg build has no CUDA hardware device type")
    if nvidia_gpu_absent():
        return Capability("cuda decode", False, NO_NVIDIA_GPU)
    try:
        context = av.CodecContext.create("h264", "r", hwaccel=HWAccel("cuda", allow_software_fallback=False))
        context.open()
    except Exception as exc:  # noqa: BLE001  (FFmpeg reports device failures as assorted errors)
        return Capability("cuda decode", False, f"no CUDA device for decoding ({_explain(exc)})")
    return Capability("cuda decode", True)


def probe_encoder(name: str) -> Capability:
    """Whether encoder `name` is usable here, found by opening a real encoder session (256x256 yuv420p)."""
    if name not in av.codecs_available:
        return Capability(name, False, "not in this FFmpeg build")
    if name in SOFTWARE_ENCODERS:
        return Capability(name, True)  # software encoders open anywhere; opening them only prints banners
    if name in HARDWARE_ENCODERS and nvidia_gpu_absent():
        return Capability(name, False, NO_NVIDIA_GPU)
    try:
        context = cast(VideoCodecContext, av.CodecContext.create(name, "w"))
        context.width, context.height = 256, 256
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except Exception as exc:  # noqa: BLE001
        return Capability(name, False, f"cannot open ({_explain(exc)})")
    return Capability(name, True)


def media_capabilities() -> MediaCapabilities:
    version = av.library_versions.get("libavcodec", ())
    return MediaCapabilities(
        pyav=av.__version__,
        libavcodec=".".join(str(v) for v in version),
        hw_device_types=tuple(hwdevices_available()),
        cuda_decode=_cuda_decode(),
        encoders=tuple(probe_encoder(name) for name in (*HARDWARE_ENCODERS, *SOFTWARE_ENCODERS)),
    )
