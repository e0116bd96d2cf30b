"""The studio window: viewer and timeline in the middle, faces on the left, settings on the right,
status, performance and the model manager in docks.

Widgets only set things on the StudioController and show what it signals back; every model run and
every decode happens on the engine's threads.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME, __version__
from app.core.errors import DoppelError
from app.core.settings import save_settings
from app.inference.fallbacks import FallbackEvent
from app.inference.runtime import InferenceRuntime
from app.media.image_writer import IMAGE_SUFFIXES
from app.media.video import VIDEO_SUFFIXES
from app.models.context import AppContext
from app.models.store import ModelState
from app.pipeline.job_queue import JobQueue
from app.pipeline.job_state import JobState, SwapJob
from app.pipeline.preview import PreviewResult
from app.pipeline.previewer import PreviewFrame
from app.pipeline.settings import PipelineSettings, models_needed
from app.ui.casting import Casting
from app.ui.controller import MediaInfo, StudioController
from app.ui.export_panel import ExportChoice, ExportPanel
from app.ui.faces_panel import FacesPanel
from app.ui.live_panel import LivePanel
from app.ui.messages import draft_note, fallback_note, provider_messages
from app.ui.model_manager import ModelManager
from app.ui.performance import PerformanceDock
from app.ui.settings_panel import SettingsPanel
from app.ui.status_panel import StatusPanel
from app.ui.studio_jobs import export_job, live_loader, without_missing_sources
from app.ui.studio_settings import last_folder, remember_folder, store_json, stored_json, studio_settings
from app.ui.timeline import Timeline
from app.ui.viewer import FrameViewer

log = logging.getLogger(__name__)

CONSENT = (
    "Only swap faces of people who have agreed to it, and follow the law where you live. Everything "
    "Doppel writes is labelled as synthetic media."
)


def _vram_mb() -> tuple[float | None, float | None]:
    """torch's reserved memory and the GPU's total, in MB (None, None without CUDA); cheap, no sync."""
    if not torch.cuda.is_available():
        return None, None
    total = torch.cuda.get_device_properties(0).total_memory / 2**20
    return torch.cuda.memory_reserved(0) / 2**20, total


def _dock(title: str, widget: QWidget, name: str) -> QDockWidget:
    dock = QDockWidget(title)
    dock.setObjectName(name)  # so saveState/restoreState can find it
    dock.setWidget(widget)
    return dock


class _FallbackRelay(QObject):
    """Provider fallbacks happen on engine threads; this carries them to the GUI thread."""

    happened = Signal(object)  # FallbackEvent


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, runtime: InferenceRuntime | None = None) -> None:
        super().__init__()
        self.setWindowTitle(f"{APP_NAME} {__version__}")
        self.resize(1400, 860)
        self.ctx = ctx
        self.runtime = runtime or InferenceRuntime(ctx.store, ctx.settings.inference)
        self.controller = StudioController(self.runtime)
        self.viewer = FrameViewer()
        self.timeline = Timeline()
        self.faces = FacesPanel()
        self.casting = Casting(self.controller, self.faces, lambda: self.runtime, self)
        self.settings_panel = SettingsPanel(ctx.store, self.controller.settings)
        self.status = StatusPanel()
        self.performance = PerformanceDock()
        self.model_manager = ModelManager(
            ctx, needed=lambda: models_needed(self.controller.settings, ctx.catalog)
        )
        self.workers = 0  # export workers (0: automatic), from the Execution tab
        self._fallbacks = _FallbackRelay()
        self._fallbacks.happened.connect(self._on_fallback)
        self.runtime.fallbacks.subscribe(self._relay_fallback)
        self.export = ExportPanel(JobQueue(self.runtime), self._make_job)
        self.live = LivePanel(self._make_live_state)
        self._shown_marker: int | None = None
        self._draft_note: str | None = None  # the status bar's words while the preview is a draft
        self._build_layout()
        self._connect()
        self._build_menus()
        self._restore_layout()
        for message in provider_messages(
            self.runtime.usable, self.runtime.settings.provider, self._gpu_name()
        ):
            self.status.add(message)
        statuses = ctx.store.statuses()
        present = sum(status.usable for status in statuses)
        self.status.add(f"{present} of {len(ctx.catalog)} models present.")
        if not any(status.state is ModelState.PRESENT for status in statuses):
            # No real model yet (stand-ins are not): the first thing to do is in front.
            self.models_dock.raise_()
            self.status.add(
                "No real models yet: press Download default set (★) in Models (about 1 GB).", "warning"
            )

    # -- layout ----------------------------------------------------------------------------------------

    def _build_layout(self) -> None:
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        self.notice = self._first_run_notice()
        layout.addWidget(self.notice)
        layout.addWidget(self.viewer, stretch=1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(centre)
        faces = _dock("Faces", self.faces, "faces")
        settings = _dock("Settings", self.settings_panel, "settings")
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, faces)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, settings)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.status)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.performance)
        self.tabifyDockWidget(self.status, self.performance)
        self.models_dock = models = _dock("Models", self.model_manager, "models")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, models)
        self.tabifyDockWidget(self.performance, models)
        export = _dock("Export", self.export, "export")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, export)
        self.tabifyDockWidget(models, export)
        live = _dock("Live", self.live, "live")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, live)
        self.tabifyDockWidget(export, live)
        self.status.raise_()
        self.resizeDocks([faces, settings], [280, 420], Qt.Orientation.Horizontal)
        self.resizeDocks([self.status], [170], Qt.Orientation.Vertical)  # the picture gets the height
        self.statusBar().showMessage(CONSENT)

    def _first_run_notice(self) -> QWidget:
        """Shown until the user acknowledges it once: lawful, consensual use."""
        notice = QWidget()
        row = QHBoxLayout(notice)
        text = QLabel(f"<b>Before you start:</b> {CONSENT}")
        text.setWordWrap(True)
        understood = QPushButton("I understand")
        understood.clicked.connect(self._acknowledge)
        row.addWidget(text, 1)
        row.addWidget(understood)
        notice.setVisible(studio_settings().value("consent_acknowledged") != "true")
        return notice

    def _acknowledge(self) -> None:
        stored = studio_settings()
        stored.setValue("consent_acknowledged", "true")
        stored.sync()
        self.notice.hide()

    def _connect(self) -> None:
        controller = self.controller
        controller.frame_ready.connect(self._show)
        controller.failed.connect(lambda text: self.status.add(text, "error"))
        controller.media_opened.connect(self._on_media)
        controller.playing_changed.connect(self.timeline.set_playing)
        self.timeline.position_requested.connect(controller.request)
        self.timeline.play_toggled.connect(lambda on: controller.play() if on else controller.pause())
        self.settings_panel.changed.connect(controller.set_settings)
        self.timeline.marker_toggled.connect(self._toggle_marker)
        self.casting.message.connect(self.status.add)
        self.casting.settings_changed.connect(self.settings_panel.set_settings)
        self.status.latest.connect(self.statusBar().showMessage)
        self.model_manager.message.connect(self.status.add)
        self.model_manager.problem.connect(lambda text: self.status.add(text, "error"))
        self.model_manager.busy_changed.connect(
            lambda busy: None if busy else self.settings_panel.refresh_models()  # new "(not installed)" marks
        )
        self.export.message.connect(self.status.add)
        self.live.message.connect(self.status.add)
        self.live.frame.connect(self._show_live)
        self.export.sample.connect(lambda stages, fps: self.performance.add_sample(stages, fps=fps))
        self.live.sample.connect(
            lambda stages, fps, ms: self.performance.add_sample(stages, fps=fps, latency_ms=ms)
        )
        self.live.running_changed.connect(self._on_live)
        self.settings_panel.message.connect(self.status.add)
        self.settings_panel.execution_changed.connect(self._execution)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open media…", QKeySequence.StandardKey.Open, self.choose_media)
        self._action(file_menu, "&New source person…", "Ctrl+Shift+O", self.faces.choose_new_person)
        self._action(file_menu, "Add photos to the person…", "Ctrl+Shift+A", self.faces.choose_photos)
        self._action(file_menu, "&Load identity…", "Ctrl+L", self.faces.choose_identity_files)
        self._action(file_menu, "Save &identity…", "Ctrl+Shift+S", self.faces.choose_save_path)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view = self.menuBar().addMenu("&View")
        self._action(view, "Fit", "Ctrl+0", self.viewer.fit)
        self._action(view, "Zoom in", QKeySequence.StandardKey.ZoomIn, self.viewer.zoom_in)
        self._action(view, "Zoom out", QKeySequence.StandardKey.ZoomOut, self.viewer.zoom_out)
        self._action(view, "Show after", "1", lambda: self.viewer.set_compare("after"))
        self._action(view, "Show before", "2", lambda: self.viewer.set_compare("before"))
        self._action(view, "Before | after", "3", lambda: self.viewer.set_compare("split"))
        play = self.menuBar().addMenu("&Playback")
        self._action(play, "Play / pause", "Space", self._toggle_play)
        self._action(play, "Next frame", "Right", lambda: self.timeline.step(1))
        self._action(play, "Previous frame", "Left", lambda: self.timeline.step(-1))
        self._action(play, "First frame", "Home", lambda: self.timeline.jump(0))
        self._action(play, "Last frame", "End", lambda: self.timeline.jump(10**9))
        self._action(play, "Toggle marker (settings from here on)", "M", self.timeline.toggle_marker)

    def _action(
        self, menu: QMenu, text: str, shortcut: QKeySequence.StandardKey | str, slot: Callable[[], object]
    ) -> QAction:
        action = QAction(text, self)
        action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- media -----------------------------------------------------------------------------------------

    def choose_media(self) -> None:
        suffixes = " ".join(f"*{s}" for s in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))
        kinds = f"Media ({suffixes})"
        name, _ = QFileDialog.getOpenFileName(self, "Open an image or a video", last_folder("media"), kinds)
        if name:
            remember_folder("media", Path(name))
            self.open_media(Path(name))

    def open_media(self, path: Path) -> MediaInfo | None:
        try:
            return self.controller.open_media(path)
        except DoppelError as exc:
            self.status.add(str(exc), "error")
            QMessageBox.warning(self, APP_NAME, str(exc))
            return None

    def _on_media(self, info: MediaInfo) -> None:
        self.timeline.set_length(info.frames, info.fps)
        kind = f"{info.frames} frames at {info.fps:g} fps" if info.is_video else "image"
        self.status.add(f"Opened {info.path.name}: {info.width}x{info.height}, {kind}")

    def _show(self, result: PreviewResult[PreviewFrame]) -> None:
        shown = result.result
        after, before = shown.after.numpy(), shown.before.numpy()
        boxes = None if shown.swapped else [face.box for face in shown.faces]
        self.viewer.show_frame(after, before, boxes)
        self._say_draft(shown.pending)
        self.timeline.set_position(shown.index)
        marker = self.controller.marker_at(shown.index)
        if marker != self._shown_marker:  # crossed a marker: show the settings in force here
            self._shown_marker = marker
            self.settings_panel.set_settings(self.controller.settings_for(shown.index))
        settings = self.controller.settings_for(shown.index)
        self.faces.set_targets(before, shown.found, self.casting.labels(shown.found, shown.faces, settings))
        self.performance.add_sample(self.controller.stage_ms(), latency_ms=result.latency_ms)
        self.performance.set_vram(*_vram_mb())

    def _say_draft(self, pending: tuple[str, ...]) -> None:
        """While a draft is shown, the status bar names the models still loading; the complete frame
        clears those words (not a message that came since: that one is newer news)."""
        bar = self.statusBar()
        if pending:
            names = {entry.id: entry.name for entry in self.ctx.catalog}
            self._draft_note = draft_note(pending, names)
            if bar.currentMessage() != self._draft_note:
                bar.showMessage(self._draft_note)
        elif self._draft_note is not None:
            if bar.currentMessage() == self._draft_note:
                bar.clearMessage()
            self._draft_note = None

    def _make_job(self, choice: ExportChoice) -> SwapJob:
        return export_job(self.controller, choice, self.workers)

    def _relay_fallback(self, event: FallbackEvent) -> None:
        """On an engine thread: hand the event to the GUI thread. Never raises (a listener that did
        would break the fallback itself), also once the window is gone."""
        try:
            self._fallbacks.happened.emit(event)
        except RuntimeError:  # the relay was deleted with the window
            log.debug("fallback after the window closed: %s", event.sentence())

    def _on_fallback(self, event: FallbackEvent) -> None:
        names = {entry.id: entry.name for entry in self.ctx.catalog}
        note = fallback_note(event, names)
        self.status.add(note.text, note.level)
        self.performance.add_event(note.text)

    def _execution(self, provider: str, workers: int) -> None:
        """Workers apply to the next export; a new provider is saved and applies at once."""
        self.workers = workers
        inference = self.ctx.settings.inference
        if provider == inference.provider:
            return
        settings = self.ctx.settings.model_copy(
            update={"inference": inference.model_copy(update={"provider": provider})}
        )
        try:
            save_settings(settings)
        except OSError as exc:
            self.status.add(f"The provider choice could not be saved: {exc}", "error")
        self.ctx = dataclasses.replace(self.ctx, settings=settings)
        self.use_provider()

    def use_provider(self) -> None:
        """A runtime for the saved provider choice, for the preview, the next exports and the next
        live session; an export or live session already running finishes on the one it started with."""
        old = self.runtime
        self.runtime = InferenceRuntime(self.ctx.store, self.ctx.settings.inference, fallbacks=old.fallbacks)
        try:
            self.controller.use_runtime(self.runtime)
        except DoppelError as exc:
            self.status.add(f"The media could not be opened again: {exc}", "error")
        self.timeline.set_markers(sorted(self.controller.markers))
        self.export.queue.runtime = self.runtime  # read by the queue as each job starts
        exporting = self.export.queue.running_timer() is not None
        if not self.live.running and not exporting:
            old.close()  # else its sessions go with it once the running work lets go
        for message in provider_messages(
            self.runtime.usable, self.runtime.settings.provider, self._gpu_name()
        ):
            self.status.add(message)
        self.status.add(f"Models now run with provider '{self.runtime.settings.provider}'")

    def _make_live_state(self) -> Callable[[], JobState]:
        return live_loader(self.controller, self.runtime)

    def _show_live(self, frame: object, latency_ms: float) -> None:
        self.viewer.show_frame(frame)  # type: ignore[arg-type]  # the dock is fed by live.sample

    def _on_live(self, running: bool) -> None:
        if running:
            self.controller.pause()  # the viewer shows the camera now

    def assign_target(self, number: int) -> None:
        """Reference mode: the selected person goes onto this face of the frame (and faces like it)."""
        self.casting.assign(number)

    def _toggle_marker(self, index: int) -> None:
        self.timeline.set_markers(self.controller.toggle_marker(index))

    def _toggle_play(self) -> None:
        if self.controller.playing:
            self.controller.pause()
        else:
            self.controller.play()

    @staticmethod
    def _gpu_name() -> str | None:
        try:
            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except RuntimeError:
            return None

    # -- settings that persist ---------------------------------------------------------------------------

    def _restore_layout(self) -> None:
        stored = studio_settings()
        geometry, state = stored.value("geometry"), stored.value("state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        text = stored.value("pipeline")
        if isinstance(text, str):
            try:
                settings = PipelineSettings.model_validate_json(text)
            except ValueError:
                log.warning("the saved studio settings could not be read; using the defaults")
            else:
                settings, gone = without_missing_sources(settings)
                if gone:
                    names = ", ".join(str(f) for f in gone)
                    self.status.add(
                        f"Faces assigned these files, which are gone, get the selected person: {names}",
                        "warning",
                    )
                self.settings_panel.set_settings(settings)
                self.controller.settings = settings
        self.faces.restore(stored_json("faces"))

    def closeEvent(self, event: QCloseEvent) -> None:
        stored = studio_settings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState())
        stored.setValue("pipeline", self.controller.settings.model_dump_json())
        store_json("faces", self.faces.stored())
        self.controller.shutdown()  # stop playback and join the preview thread
        self.export.shutdown()  # an export in progress is queued again for next time
        self.live.stop()  # join live mode's threads, close the cameras
        self.casting.wait()
        self.model_manager.shutdown()  # cancel downloads (parts kept) and join the worker thread
        super().closeEvent(event)
