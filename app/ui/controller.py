"""StudioController: the one object between the window and the engine.

Widgets hand it settings (an immutable PipelineSettings snapshot), source photos and frame requests;
it turns them into preview requests for the engine's PreviewService, which renders on its own thread
(latest request wins: a scrub never queues up frames nobody will see). Results and errors come back
as Qt signals, delivered on the GUI thread; nothing here runs a model on the GUI thread or reads a
widget from another thread (DESIGN: a controller owns the workers, results come back by signal).

Playback is a QTimer on the GUI thread that asks for the next frame at the media's rate; when the
engine is slower than that, playback runs at the engine's pace: one request at a time, no backlog.

The first swapped frame does not wait for the restorer: it comes as a draft (PreviewFrame.pending)
while the engine's ModelWarmer loads it, and the warmer's word, queued to the GUI thread, asks for the
frame shown again, now complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.core.errors import DoppelError
from app.inference.runtime import InferenceRuntime
from app.pipeline.job_state import Marker
from app.pipeline.preview import Checkpoint, PreviewResult, PreviewService
from app.pipeline.previewer import MediaPreviewer, PreviewFrame
from app.pipeline.settings import PipelineSettings, SourceFace
from app.pipeline.warmer import ModelWarmer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Everything a preview request depends on, taken on the GUI thread when it is made."""

    settings: PipelineSettings
    source: SourceFace  # the person pasted on faces without a reference of their own


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    frames: int  # 1 for an image
    fps: float
    width: int
    height: int

    @property
    def is_video(self) -> bool:
        return self.frames > 1


class StudioController(QObject):
    frame_ready = Signal(object)  # PreviewResult[PreviewFrame] of the latest request, on the GUI thread
    failed = Signal(str)  # a request failed, in words
    media_opened = Signal(object)  # MediaInfo
    playing_changed = Signal(bool)
    _arrived = Signal(object)  # from the preview thread; queued to the GUI thread
    _warmed = Signal(object)  # tuple[str, ...]: from the warmer's thread, the models it tried

    def __init__(self, runtime: InferenceRuntime, settings: PipelineSettings | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.settings = settings or PipelineSettings()
        self.source = SourceFace()
        self.markers: dict[int, PipelineSettings] = {}  # frame → the settings from that frame on
        self.media: MediaInfo | None = None
        self.index = 0
        self.last: PreviewFrame | None = None
        self._previewer: MediaPreviewer | None = None
        self._warmer: ModelWarmer | None = None
        self._service: PreviewService[Snapshot, PreviewFrame] | None = None
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._latest = 0  # the generation of the newest request
        self._waiting = False  # the newest request is not rendered yet
        self._arrived.connect(self._on_arrived)
        self._warmed.connect(self._on_warmed, Qt.ConnectionType.QueuedConnection)
        self.failed.connect(self._on_failed)

    # -- media ---------------------------------------------------------------------------------------

    def open_media(self, path: Path) -> MediaInfo:
        """Open an image or a video (DoppelError names the file when it cannot be used)."""
        self._close_media()
        warmer = ModelWarmer(self.runtime, self._warmed.emit)  # per runtime: it remembers what it tried
        try:
            previewer = MediaPreviewer(self.runtime, path, warmer=warmer)
        except BaseException:
            warmer.close()
            raise
        self._warmer, self._previewer = warmer, previewer
        if previewer.video is not None:
            video = previewer.video
            info = MediaInfo(path, video.frame_count, float(video.fps), video.width, video.height)
        else:
            assert previewer.image is not None
            height, width = int(previewer.image.shape[0]), int(previewer.image.shape[1])
            info = MediaInfo(path, 1, 0.0, width, height)
        self.media = info
        self.markers = {}
        self._service = PreviewService(self._process, self._deliver, self._report)
        self.index = 0
        self.media_opened.emit(info)
        self.request(0)
        return info

    def use_runtime(self, runtime: InferenceRuntime) -> None:
        """Preview with another runtime (another provider) from now on: the media is opened again
        (frames may move between the GPU and the CPU), at the same frame, markers kept."""
        self.runtime = runtime
        if self.media is None:
            return
        path, index, markers = self.media.path, self.index, self.markers
        self.pause()
        self.open_media(path)
        self.markers = markers
        self.request(index)

    # -- what the user changes -------------------------------------------------------------------------

    def set_settings(self, settings: PipelineSettings) -> None:
        """Change the settings that apply at the current frame: the marker in force there, or the
        settings before the first marker."""
        marker = self.marker_at(self.index)
        if marker is None:
            self.settings = settings
        else:
            self.markers[marker] = settings
        self.refresh()

    # -- markers: a settings override from a frame on ---------------------------------------------------

    def marker_at(self, index: int) -> int | None:
        """The marker in force at `index` (the last one at or before it), if any."""
        before = [marker for marker in self.markers if marker <= index]
        return max(before) if before else None

    def settings_for(self, index: int) -> PipelineSettings:
        marker = self.marker_at(index)
        return self.settings if marker is None else self.markers[marker]

    def toggle_marker(self, index: int) -> list[int]:
        """Place a marker at `index` holding the settings in force there, or remove the one there."""
        if index in self.markers:
            del self.markers[index]
        else:
            self.markers[index] = self.settings_for(index)
        self.refresh()
        return sorted(self.markers)

    def set_source(self, source: SourceFace) -> None:
        self.source = source
        self.refresh()

    def update_everywhere(self, change: Callable[[PipelineSettings], PipelineSettings]) -> None:
        """Apply `change` to the settings before the first marker and to every marker's: for what
        holds for the whole video, such as which face gets which source."""
        self.settings = change(self.settings)
        self.markers = {frame: change(settings) for frame, settings in self.markers.items()}
        self.refresh()

    def schedule(self) -> tuple[Marker, ...]:
        """The markers as an export carries them."""
        return tuple(Marker(frame, settings) for frame, settings in sorted(self.markers.items()))

    def request(self, index: int) -> None:
        """Ask for frame `index` under the current settings; only the latest request is rendered."""
        if self._service is None or self.media is None:
            return
        self.index = max(0, min(index, self.media.frames - 1))
        snapshot = Snapshot(self.settings_for(self.index), self.source)
        self._latest = self._service.request(self.index, snapshot)
        self._waiting = True

    def refresh(self) -> None:
        self.request(self.index)

    # -- playback ------------------------------------------------------------------------------------

    def play(self) -> None:
        if self.media is None or not self.media.is_video:
            return
        self._clock.start(max(1, round(1000 / (self.media.fps or 25.0))))
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._clock.isActive():
            self._clock.stop()
            self.playing_changed.emit(False)

    @property
    def playing(self) -> bool:
        return self._clock.isActive()

    def _tick(self) -> None:
        if self.media is None or self.index >= self.media.frames - 1:
            self.pause()
            return
        if self._waiting:
            return  # the engine is behind the media's rate: show what it manages, skip the rest
        self.request(self.index + 1)

    def stage_ms(self) -> dict[str, float]:
        """Mean ms per stage of the previews so far (for the performance dock)."""
        return self._previewer.timer.mean_ms() if self._previewer is not None else {}

    # -- lifetime ------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop playback, the preview thread and the model warmer (both joined), close the media."""
        self.pause()
        self._close_media()

    def _close_media(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
        if self._warmer is not None:  # after the service: no preview asks it for more now
            self._warmer.close()
            self._warmer = None
        if self._previewer is not None:
            self._previewer.close()
            self._previewer = None
        self.media, self.last = None, None

    # -- the preview thread's side ---------------------------------------------------------------------

    def _process(self, index: int, snapshot: Snapshot, checkpoint: Checkpoint) -> PreviewFrame:
        previewer = self._previewer
        if previewer is None:
            raise DoppelError("no media is open")
        return previewer.preview(index, snapshot.settings, snapshot.source, checkpoint)

    def _deliver(self, result: PreviewResult[PreviewFrame]) -> None:
        self._arrived.emit(result)  # queued to the GUI thread: the controller lives there

    def _report(self, index: int, error: BaseException) -> None:
        words = str(error) if isinstance(error, DoppelError) else f"{type(error).__name__}: {error}"
        self.failed.emit(f"Frame {index} could not be shown: {words}")

    def _on_failed(self, message: str) -> None:
        self._waiting = False

    def _on_warmed(self, models: tuple[str, ...]) -> None:
        """The models a draft left out are loaded (or failed to): the frame shown, complete (or its
        error, reported as any failed preview)."""
        log.debug("warmed %s: refreshing frame %d", ", ".join(models), self.index)
        self.refresh()

    def _on_arrived(self, result: PreviewResult[PreviewFrame]) -> None:
        if result.generation != self._latest:
            return  # went stale on its way: a newer request is being rendered
        self._waiting = False
        self.last = result.result
        self.frame_ready.emit(result)
