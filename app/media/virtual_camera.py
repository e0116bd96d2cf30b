"""Live output as a virtual camera (pyvirtualcam), so video calls and streaming tools can pick up the
swapped picture like any webcam.

pyvirtualcam drives a camera device someone else installed: OBS Studio's Virtual Camera (Windows,
macOS), Unity Capture (Windows) or a v4l2loopback device (Linux). Without one nothing can be sent, and
VirtualCameraError says what to install for this system, with pyvirtualcam's own reason appended.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

import numpy as np
import pyvirtualcam
import torch

from app.media.errors import VirtualCameraError

__all__ = ["VirtualCamera", "backends_available", "install_hint"]

log = logging.getLogger(__name__)


def backends_available() -> list[str]:
    """The backends pyvirtualcam has for this system (whether a device is installed or not)."""
    return list(pyvirtualcam.camera.BACKENDS)


def install_hint(platform: str = sys.platform) -> str:
    """What to install on `platform` (a sys.platform value) for a virtual camera to exist."""
    if platform.startswith("linux"):
        return (
            "install v4l2loopback and load it, e.g. `sudo apt install v4l2loopback-dkms` then "
            "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Doppel`"
        )
    if platform == "win32":
        return (
            "install OBS Studio 26 or newer and start its Virtual Camera once (or install Unity Capture "
            "and use backend 'unitycapture')"
        )
    if platform == "darwin":
        return "install OBS Studio (30 or newer on macOS 13+) and start its Virtual Camera once"
    return f"pyvirtualcam has no virtual camera backend for {platform}"


class VirtualCamera:
    """A virtual camera accepting uint8 [H, W, 3] RGB frames of one size, from any device.

    Open with `VirtualCamera.open(width, height, fps)`; `backend` picks one of `backends_available()`
    (None tries each). Use as a context manager.
    """

    def __init__(self, camera: pyvirtualcam.Camera) -> None:
        self._camera: pyvirtualcam.Camera | None = camera
        self.width, self.height, self.fps = int(camera.width), int(camera.height), float(camera.fps)
        self.backend = str(camera.backend)
        self.device = str(camera.device)
        self.frames_sent = 0

    @classmethod
    def open(cls, width: int, height: int, fps: float, backend: str | None = None) -> VirtualCamera:
        if width <= 0 or height <= 0 or fps <= 0:
            raise VirtualCameraError(
                f"A virtual camera needs a positive size and rate, got {width}x{height} @ {fps}"
            )
        known = backends_available()
        if backend is not None and backend not in known:
            choices = ", ".join(known) or "none on this system"
            raise VirtualCameraError(f"Unknown virtual camera backend '{backend}' (available: {choices})")
        try:
            camera = pyvirtualcam.Camera(
                width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, backend=backend
            )
        except RuntimeError as exc:  # pyvirtualcam's "no device" for every backend tried, one line each
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " / ".join(lines) or "no backend"
            raise VirtualCameraError(
                f"No virtual camera is available: {install_hint()}. pyvirtualcam said: {reason}"
            ) from exc
        log.info(
            "Virtual camera %s (%s) open at %dx%d @ %g fps", camera.device, camera.backend, width, height, fps
        )
        return cls(camera)

    def send(self, frame: torch.Tensor) -> None:
        """Send one frame (uint8 [H, W, 3] RGB, on any device; copied to the host here)."""
        if self._camera is None:
            raise VirtualCameraError(f"Virtual camera {self.device} is closed")
        expected = (self.height, self.width, 3)
        if frame.dtype != torch.uint8 or tuple(frame.shape) != expected:
            raise ValueError(
                f"Virtual camera {self.device} takes uint8 {expected} RGB frames, "
                f"got {frame.dtype} {tuple(frame.shape)}"
            )
        host = np.ascontiguousarray(frame.detach().cpu().numpy())
        try:
            self._camera.send(host)
        except RuntimeError as exc:
            raise VirtualCameraError(f"Virtual camera {self.device} refused a frame: {exc}") from exc
        self.frames_sent += 1

    def sleep_until_next_frame(self) -> None:
        """Pace a sender that has frames faster than `fps` (pyvirtualcam keeps the schedule)."""
        if self._camera is not None:
            self._camera.sleep_until_next_frame()

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    def __enter__(self) -> VirtualCamera:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
