"""Live mode: camera → analyse (tracking) → swap → preview and virtual camera, with latency measured.

The camera thread keeps only its newest frame (latest-frame-wins), so when swapping is slower than the
camera, frames are skipped rather than queued: what the user sees is always the most recent picture
the pipeline could manage, and latency stays bounded by one frame's processing time. Each delivered
frame's latency is measured from capture to the moment the sinks have it.

Two threads of ours: the analysis thread (tracking carries state, so one frame at a time, in order)
hands its newest analysed frame to the render thread through another latest-wins slot, so detection of
frame n+1 overlaps compositing of frame n. A failing stage stops the loop and `run()`/`stop()` raise it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from app.core.gil import pipeline_switch_interval
from app.core.profiling import StageTimer
from app.core.telemetry import get_telemetry
from app.faces.types import Face
from app.inference.streams import on_analysis_stream
from app.media.errors import MediaReadError
from app.media.video import open_video
from app.media.virtual_camera import VirtualCamera
from app.media.webcam import CapturedFrame
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.frame_swap import FrameSwapper
from app.pipeline.job_state import SwapJob
from app.pipeline.settings import PipelineSettings, SourceFace
from app.pipeline.workers import LatestSlot, PipelineError

log = logging.getLogger(__name__)


class LiveSource(Protocol):
    """A camera (WebcamSource) or a video played in real time (PacedVideo): `read()` waits for the
    newest frame not read before; None once closed, TimeoutError when none came within `timeout`."""

    def read(self, timeout: float | None = None) -> CapturedFrame | None: ...

    def close(self) -> None: ...


Sink = Callable[
    [torch.Tensor, CapturedFrame], None
]  # the swapped frame (on the compute device) and its origin


@dataclass
class LiveReport:
    frames: int = 0  # delivered to the sinks
    skipped: int = 0  # newer frames arrived before these were analysed or rendered
    seconds: float = 0.0
    latency_ms: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Analysed:
    frame: CapturedFrame
    image: torch.Tensor  # on the compute device
    faces: list[Face]
    ready: torch.cuda.Event | None  # the analysis thread's work on `image` is done


class LivePipeline:
    def __init__(
        self,
        analyser: FrameAnalyser,
        swapper: FrameSwapper,
        source: LiveSource,
        sinks: Sequence[Sink],
        device: torch.device,
        timer: StageTimer | None = None,
    ) -> None:
        self.analyser = analyser
        self.swapper = swapper
        self.source = source
        self.sinks = list(sinks)
        self.device = device
        self.timer = timer or StageTimer()
        self.report = LiveReport()
        self._analysed: LatestSlot[_Analysed] = LatestSlot()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._running = ExitStack()  # what start() entered and stop() leaves
        self._telemetry = get_telemetry()

    def start(self) -> None:
        self._started = time.perf_counter()
        self._running.enter_context(pipeline_switch_interval())
        self._threads = [
            threading.Thread(
                target=self._guard, args=(self._analyse_loop,), name="live-analyse", daemon=True
            ),
            threading.Thread(target=self._guard, args=(self._render_loop,), name="live-render", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> LiveReport:
        """Stop and join; raises the error that ended the loop, if one did."""
        self._stop.set()
        self._analysed.close()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s did not stop within %.0f s", thread.name, timeout)
        self._running.close()
        self.report.seconds = time.perf_counter() - self._started
        self.report.skipped += self._analysed.dropped
        if self._error is not None:
            raise PipelineError(f"live mode stopped: {self._error}") from self._error
        return self.report

    def run(self, frames: int | None = None, seconds: float | None = None) -> LiveReport:
        """Run on the calling thread's behalf until `frames` were delivered, `seconds` passed, the
        source closed, or a stage failed."""
        self.start()
        deadline = None if seconds is None else time.perf_counter() + seconds
        while not self._stop.is_set():
            if frames is not None and self.report.frames >= frames:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            if not any(thread.is_alive() for thread in self._threads):
                break
            time.sleep(0.005)
        return self.stop()

    @property
    def failed(self) -> bool:
        return self._error is not None

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:
            if self._error is None:
                self._error = exc
                log.error("live pipeline failed", exc_info=exc)
            self._stop.set()
            self._analysed.close()

    def _analyse_loop(self) -> None:
        # At high priority, as export's analysis: each frame's render waits for it (app.inference.streams).
        with on_analysis_stream(self.device):
            self._analyse_frames()

    def _analyse_frames(self) -> None:
        last_index = -1
        while not self._stop.is_set():
            try:
                frame = self.source.read(timeout=0.1)
            except TimeoutError:
                continue  # a camera reconnecting, or slower than our poll
            if frame is None:
                break  # the source was closed
            if last_index >= 0 and frame.sequence > last_index + 1:
                self.report.skipped += frame.sequence - last_index - 1  # the camera moved on without us
            last_index = frame.sequence
            with self.timer.stage("upload"):
                image = frame.image.to(self.device, non_blocking=True)
            faces = self.analyser.analyse(image, timer=self.timer)
            ready = None
            if image.is_cuda:
                ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
                ready.record()
            self._analysed.put(_Analysed(frame, image, faces, ready))
        self._analysed.close()

    def _render_loop(self) -> None:
        # Its own CUDA stream, so compositing frame n overlaps the analysis of frame n+1 on the GPU too.
        on_stream = (
            torch.cuda.stream(torch.cuda.Stream(self.device))  # type: ignore[no-untyped-call]
            if self.device.type == "cuda"
            else nullcontext()
        )
        with on_stream:
            self._render_frames()

    def _render_frames(self) -> None:
        while True:
            item = self._analysed.take(timeout=0.1)
            if item is None:
                if self._analysed.closed:
                    return
                continue
            if item.ready is not None:
                torch.cuda.current_stream().wait_event(item.ready)
                item.image.record_stream(torch.cuda.current_stream())
            result = self.swapper.render(item.image, item.faces, self.timer)
            with self.timer.stage("sinks"):
                for sink in self.sinks:
                    sink(result.frame, item.frame)
                if result.frame.is_cuda:
                    torch.cuda.current_stream(result.frame.device).synchronize()  # latency is to done pixels
            latency = (time.perf_counter() - item.frame.captured_at) * 1000.0
            self.timer.record("latency", latency)
            self._telemetry.latency("live", latency, frame=item.frame.sequence)
            self.report.latency_ms.append(latency)
            self.report.frames += 1


def live_job(source: SourceFace, settings: PipelineSettings) -> SwapJob:
    """A job for JobState that carries only faces and settings: live mode has no target or output."""
    camera = Path("camera")
    return SwapJob(source.files, camera, camera, settings=settings, combine=source.combine)


def virtual_camera_for(source: LiveSource, fps: float = 30.0) -> VirtualCamera:
    """A virtual camera at `source`'s frame size (its first frame is read for it). Opened before live
    mode runs, so a missing backend is reported at once, not after the models loaded."""
    try:
        first = source.read(timeout=10.0)
    except TimeoutError as exc:
        raise MediaReadError(
            f"No frame from the camera within 10 s, so no virtual camera was opened: {exc}"
        ) from None
    if first is None:
        raise MediaReadError("The camera closed before it delivered a frame")
    return VirtualCamera.open(int(first.image.shape[1]), int(first.image.shape[0]), fps)


class PacedVideo:
    """A video file played in real time, as a camera would deliver it: a thread decodes and offers each
    frame at its timestamp, keeping only the newest unread one (the benchmark's and the GUI's stand-in
    for a webcam, with the same latest-frame-wins behaviour). Playback starts at the first `read()`,
    so the models loading meanwhile do not eat the start of the clip."""

    def __init__(self, path: Path, loop: bool = False, speed: float = 1.0) -> None:
        self.path = path
        self.loop = loop
        self.speed = speed
        self._slot: LatestSlot[CapturedFrame] = LatestSlot()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._wanted = threading.Event()  # set by the first read(): the clock starts then
        self.captured = 0
        self._thread = threading.Thread(target=self._run, name=f"paced {path.name}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def read(self, timeout: float | None = None) -> CapturedFrame | None:
        self._wanted.set()
        if self._error is not None:
            raise self._error
        if self._slot.closed and self._error is None:
            return self._slot.take(0)
        frame = self._slot.take(timeout)
        if frame is None and self._error is not None:
            raise self._error  # the decoder failed while we waited: not a clean end
        if frame is None and not self._slot.closed:
            raise TimeoutError(f"No frame from {self.path} within {timeout} s")
        return frame

    def close(self) -> None:
        self._stop.set()
        self._wanted.set()  # a player still waiting for its first reader ends too
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._play_once()
                if not self.loop:
                    break
        except BaseException as exc:  # noqa: BLE001 - raised from read()
            self._error = exc
        finally:
            self._slot.close()

    def _play_once(self) -> None:
        with open_video(self.path) as video:
            self._wanted.wait()
            started, first = time.perf_counter(), None
            for decoded in video.frames():
                if self._stop.is_set():
                    return
                first = decoded.time_s if first is None else first
                due = started + (decoded.time_s - first) / self.speed
                delay = due - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
                self._slot.put(CapturedFrame(self.captured, decoded.image, time.perf_counter()))
                self.captured += 1
