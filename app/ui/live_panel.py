"""LivePanel: swap a webcam live, show it in the viewer, optionally send it to a virtual camera.

The engine's LivePipeline runs on its own threads (camera, analysis, render); each finished frame is
copied to the host there and handed to the GUI thread through a queued signal, which only draws the
newest one. Models load on a background thread too, so pressing Start never freezes the window.
As frames are shown, `sample` carries the pipeline's per-stage times, frame rate and latency for the
performance dock (from its StageTimer, at most ~10 times a second).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import DoppelError
from app.media.virtual_camera import VirtualCamera
from app.media.webcam import PLATFORM_INPUT_FORMAT, CapturedFrame, WebcamSource
from app.pipeline.job_state import JobState
from app.pipeline.live import LivePipeline, LiveSource, virtual_camera_for
from app.pipeline.workers import LatestSlot
from app.ui.performance import DockFeed
from app.ui.tasks import BackgroundTask

log = logging.getLogger(__name__)


def camera_devices() -> list[str]:
    """Cameras to offer: /dev/video* on Linux; elsewhere the first few device numbers."""
    if not sys.platform.startswith("linux"):
        return ["0", "1", "2"]
    return sorted(str(path) for path in Path("/dev").glob("video*")) or ["/dev/video0"]


class _Frames(QObject):
    arrived = Signal()  # a frame waits in the panel's slot; from the render thread


class LivePanel(QWidget):
    frame = Signal(object, float)  # the newest swapped frame (numpy uint8 [H, W, 3]) and its latency
    message = Signal(str)
    running_changed = Signal(bool)
    sample = Signal(dict, float, float)  # mean ms per stage, frames per second, mean latency ms, lately

    def __init__(
        self,
        make_state: Callable[[], Callable[[], JobState]],
        open_source: Callable[[str, str], LiveSource] | None = None,
    ) -> None:
        """`make_state()` takes a snapshot of the studio's faces and settings on the GUI thread and
        returns the function that loads the models (run on a worker thread); `open_source(device,
        format)` opens a camera (a WebcamSource by default)."""
        super().__init__()
        self.make_state = make_state
        self.open_source = open_source or (lambda device, fmt: WebcamSource(device, input_format=fmt or None))
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItems(camera_devices())
        self.device.setToolTip("The camera: /dev/videoN on Linux, a device number or 'video=NAME' on Windows")
        self.format = QComboBox()
        self.format.setEditable(True)
        self.format.addItems([PLATFORM_INPUT_FORMAT or "", "lavfi"])
        self.format.setToolTip("FFmpeg's capture input (v4l2, dshow, avfoundation)")
        self.virtual = QCheckBox("Send to a virtual camera")
        self.virtual.setToolTip("OBS, Zoom or Discord then see the swapped picture as a camera")
        self.start_button = QPushButton("Start live")
        self.start_button.clicked.connect(self.toggle)
        self.stats = QLabel("Not running")
        form = QFormLayout()
        form.addRow("Camera", self.device)
        form.addRow("Input", self.format)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.virtual)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.stats)
        layout.addStretch(1)
        self._frames = _Frames()
        self._frames.arrived.connect(self._on_frame)
        self._newest: LatestSlot[tuple[np.ndarray, float]] = LatestSlot()
        self._pipeline: LivePipeline | None = None
        self._source: LiveSource | None = None
        self._camera: VirtualCamera | None = None
        self._loading: BackgroundTask | None = None
        self._shown = 0
        self._feed: DockFeed | None = None
        self._delivered = 0  # frames the viewer sink received; written on the render thread only
        self._fps = 0.0  # as of the latest sample

    @property
    def running(self) -> bool:
        return self._pipeline is not None or self._loading is not None

    def toggle(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        """Load the models off the GUI thread, then open the camera and run."""
        try:
            load = self.make_state()
        except DoppelError as exc:
            self._failed(str(exc))
            return
        self.start_button.setEnabled(False)
        self.stats.setText("Loading models…")
        device, fmt = self.device.currentText().strip(), self.format.currentText().strip()
        virtual = self.virtual.isChecked()
        task = BackgroundTask(lambda: self._open(load, device, fmt, virtual), self)
        task.done.connect(self._run)
        task.failed.connect(self._failed)
        task.finished.connect(self._loaded)
        self._loading = task
        task.start()

    def _open(
        self, load: Callable[[], JobState], device: str, fmt: str, virtual: bool
    ) -> tuple[JobState, LiveSource, VirtualCamera | None]:
        """On the worker thread: the models, the camera, and the virtual camera when asked for (it
        waits for the camera's first frame to learn its size)."""
        state = load()
        source = self.open_source(device, fmt)
        try:
            return state, source, virtual_camera_for(source) if virtual else None
        except BaseException:
            source.close()
            raise

    def _run(self, opened: tuple[JobState, LiveSource, VirtualCamera | None]) -> None:
        state, self._source, self._camera = opened
        source = self._source
        sinks = [self._to_viewer] + ([self._to_virtual_camera] if self._camera else [])
        self._pipeline = LivePipeline(state.analyser, state.swapper, source, sinks, state.device, state.timer)
        self._delivered, self._fps = 0, 0.0
        self._feed = DockFeed(self._pipeline.timer, 0, time.monotonic())
        self._pipeline.start()
        self.start_button.setText("Stop live")
        self.running_changed.emit(True)
        self.message.emit(f"Live from {self.device.currentText()}")

    def _loaded(self) -> None:
        self._loading = None
        self.start_button.setEnabled(True)

    def _failed(self, words: str) -> None:
        self.stats.setText("Not running")
        self.message.emit(f"Live mode could not start: {words}")

    def _to_viewer(self, frame: torch.Tensor, captured: CapturedFrame) -> None:
        """On the render thread: a host copy for the viewer. Only the newest waits; the GUI is told
        once per frame it will find, so a slow GUI skips frames instead of queueing them."""
        latency = (time.perf_counter() - captured.captured_at) * 1000.0
        self._delivered += 1
        waiting = self._newest.put((np.ascontiguousarray(frame.cpu().numpy()), latency))
        if waiting is None:
            self._frames.arrived.emit()

    def _to_virtual_camera(self, frame: torch.Tensor, captured: CapturedFrame) -> None:
        if self._camera is not None:
            self._camera.send(frame)

    def _on_frame(self) -> None:
        newest = self._newest.take(0)
        if newest is None:
            return
        frame, latency = newest
        self._shown += 1
        if self._pipeline is not None:
            report = self._pipeline.report
            self._sample(latency)
            self.stats.setText(
                f"{report.frames} frames · {self._fps:.1f} fps · {latency:.0f} ms latency · "
                f"{report.skipped} skipped"
            )
            if self._pipeline.failed:
                self.stop()
        self.frame.emit(frame, latency)

    def _sample(self, latency: float) -> None:
        """`sample`, when one is due: the stages and the rate of frames delivered since the previous
        one; the latency is the mean of the frames delivered meanwhile (the timer keeps it as "latency",
        not a stage), or the shown frame's while none was timed yet."""
        now = time.monotonic()
        if self._feed is None or not self._feed.due(now):
            return
        stages, self._fps = self._feed.take(self._delivered, now)
        mean_latency = stages.pop("latency", latency)
        self.sample.emit(stages, self._fps, mean_latency)

    def stop(self) -> None:
        """Stop and join live mode's threads, close the camera and the virtual camera."""
        pipeline, self._pipeline = self._pipeline, None
        self._feed = None
        report = None
        try:
            if pipeline is not None:
                report = pipeline.stop()
        except DoppelError as exc:
            self.message.emit(str(exc))
        finally:
            if self._source is not None:
                self._source.close()
                self._source = None
            if self._camera is not None:
                self._camera.close()
                self._camera = None
        if self._loading is not None:
            self._loading.wait()
            self._loading = None
        self.start_button.setText("Start live")
        self.start_button.setEnabled(True)
        if report is not None:
            self.stats.setText(f"Stopped after {report.frames} frames ({report.fps:.1f} fps)")
        self.running_changed.emit(False)
