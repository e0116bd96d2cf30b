"""The virtual camera sink: its error where no device is installed (as on this CI machine) and real
sending where one is."""

from __future__ import annotations

import sys

import pytest
import pyvirtualcam
import torch

from app.media.errors import MediaWriteError, VirtualCameraError
from app.media.virtual_camera import VirtualCamera, backends_available, install_hint


def _backend_present() -> bool:
    try:
        pyvirtualcam.Camera(320, 240, 30).close()
    except RuntimeError:
        return False
    return True


HAS_BACKEND = _backend_present()


@pytest.mark.skipif(HAS_BACKEND, reason="a virtual camera device is installed here")
def test_without_a_device_the_error_says_what_to_install() -> None:
    with pytest.raises(VirtualCameraError) as error:
        VirtualCamera.open(320, 240, 30)
    message = str(error.value)
    assert message.startswith("No virtual camera is available: ")
    assert install_hint() in message
    assert "pyvirtualcam said: " in message
    if sys.platform.startswith("linux"):
        assert "v4l2loopback" in message and "modprobe" in message
        assert "No v4l2 loopback device found" in message  # pyvirtualcam's own reason
    assert isinstance(error.value, MediaWriteError)  # caught with the other output errors


def test_install_hints_name_the_software_for_each_system() -> None:
    assert "v4l2loopback" in install_hint("linux")
    assert "OBS" in install_hint("win32") and "Unity Capture" in install_hint("win32")
    assert "OBS" in install_hint("darwin")


def test_an_unknown_backend_is_refused_by_name() -> None:
    with pytest.raises(VirtualCameraError, match="Unknown virtual camera backend 'nosuch'"):
        VirtualCamera.open(320, 240, 30, backend="nosuch")
    assert backends_available()  # pyvirtualcam has a backend for this system, device or not


def test_a_size_or_rate_that_cannot_be_is_refused() -> None:
    with pytest.raises(VirtualCameraError, match="positive size and rate"):
        VirtualCamera.open(0, 240, 30)


@pytest.mark.skipif(not HAS_BACKEND, reason="no virtual camera device installed here")
def test_frames_are_sent_from_any_device() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with VirtualCamera.open(320, 240, 30) as camera:
        frame = torch.zeros((240, 320, 3), dtype=torch.uint8, device=device)
        frame[..., 0] = 255
        camera.send(frame)
        camera.send(frame.cpu())
        assert camera.frames_sent == 2
        with pytest.raises(ValueError, match="takes uint8"):
            camera.send(torch.zeros((240, 320, 3), dtype=torch.float32))
    with pytest.raises(VirtualCameraError, match="is closed"):
        camera.send(frame)
