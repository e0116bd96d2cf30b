"""ExportPanel: the output file, codec, quality and encoder speed; the export queue with progress and ETA.

Exports run in the engine's JobQueue (its own thread, persisted, resumable); the panel only adds jobs
and shows what the queue reports, through a queued Qt signal, so the GUI thread never waits on one.
While a video exports, `sample` carries its per-stage times and frame rate for the performance dock
(read from the running job's StageTimer as progress arrives, at most ~10 times a second).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.media.choices import X264_PRESETS, X264Preset
from app.media.video_writer import VIDEO_SUFFIXES
from app.pipeline.job_queue import JobQueue, JobStatus, QueuedJob
from app.pipeline.job_state import SwapJob
from app.ui.performance import DockFeed
from app.ui.studio_settings import last_folder, remember_folder

COLUMNS = ("target", "output", "status", "progress", "time left")
DEFAULT_PRESET: X264Preset = "veryfast"  # 1080p well above real time on 8 cores, as the CLI's default


@dataclass(frozen=True)
class ExportChoice:
    """What the panel's form says about the output; the studio adds its media, faces and settings."""

    output: Path
    codec: str
    crf: int
    x264_preset: X264Preset = DEFAULT_PRESET


def eta_text(done: int, total: int, elapsed_s: float) -> str:
    """ "1:05 left" from the frames done so far and the time they took; "" until there is a rate."""
    if done <= 0 or total <= done or elapsed_s <= 0:
        return ""
    seconds = round(elapsed_s / done * (total - done))
    return f"{seconds // 60}:{seconds % 60:02d} left"


class _Relay(QObject):
    changed = Signal(object)  # QueuedJob, from the queue's thread; queued to the GUI thread


class ExportPanel(QWidget):
    message = Signal(str)
    sample = Signal(dict, float)  # mean ms per stage and frames per second of the running export, lately

    def __init__(self, queue: JobQueue, make_job: Callable[[ExportChoice], SwapJob]) -> None:
        """`make_job(choice)` turns the studio's current media, faces and settings into a
        job (DoppelError when something is missing, e.g. no source face)."""
        super().__init__()
        self.queue = queue
        self.make_job = make_job
        self._relay = _Relay()
        self._relay.changed.connect(self._on_changed)
        queue.on_change = self._relay.changed.emit
        self._started: dict[str, float] = {}
        self._rows: dict[str, int] = {}
        self._feed_job: str | None = None  # the running job the feed samples
        self._feed_timer: StageTimer | None = None
        self._feed: DockFeed | None = None  # from the job's first progress on
        self.output = QLineEdit()
        self.output.setPlaceholderText("output.mp4")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_output)
        self.codec = QComboBox()
        self.codec.addItems(["h264", "hevc"])
        self.codec.setToolTip("H.264 plays everywhere; HEVC is smaller at the same quality")
        self.quality = QSpinBox()
        self.quality.setRange(0, 51)
        self.quality.setValue(18)
        self.quality.setToolTip("CRF: lower is better quality and a bigger file (18 looks like the source)")
        self.preset = QComboBox()
        self.preset.addItems(list(X264_PRESETS))
        self.preset.setCurrentText(DEFAULT_PRESET)
        self.preset.setToolTip(
            "Encoder speed (x264/x265 preset): slower presets make smaller files at the same quality "
            "and cost CPU time; veryfast keeps 1080p far above real time"
        )
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(lambda: self._on_selected(queue.cancel))
        retry = QPushButton("Retry")
        retry.clicked.connect(lambda: self._on_selected(queue.retry))
        path_row = QHBoxLayout()
        path_row.addWidget(self.output, 1)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Output", path_row)
        form.addRow("Codec", self.codec)
        form.addRow("Quality (CRF)", self.quality)
        form.addRow("Encoder speed", self.preset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(retry)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        for job in queue.jobs():
            self._on_changed(job)

    def export(self) -> str | None:
        """Queue the studio's current media with these output settings; the queue runs it."""
        text = self.output.text().strip()
        if not text:
            self.message.emit("Choose an output file first")
            return None
        try:
            job = self.make_job(self.choice(Path(text)))
        except DoppelError as exc:
            self.message.emit(str(exc))
            return None
        job_id = self.queue.add(job)
        self.queue.start()
        self.message.emit(f"Queued the export to {job.output.name}")
        return job_id

    def choice(self, output: Path) -> ExportChoice:
        preset = next(p for p in X264_PRESETS if p == self.preset.currentText())
        return ExportChoice(output, self.codec.currentText(), self.quality.value(), preset)

    def _choose_output(self) -> None:
        suffixes = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
        suggested = self.output.text() or last_folder("export")
        name, _ = QFileDialog.getSaveFileName(self, "Export to", suggested, f"Video ({suffixes})")
        if name:
            remember_folder("export", Path(name))
            self.output.setText(name)

    def _on_selected(self, action: Callable[[str], None]) -> None:
        selected = {index.row() for index in self.table.selectedIndexes()}
        ids = {job_id for job_id, row in self._rows.items() if row in selected}
        for job_id in ids:
            try:
                action(job_id)
            except DoppelError as exc:
                self.message.emit(str(exc))

    def _on_changed(self, job: QueuedJob) -> None:
        row = self._rows.get(job.id)
        if row is None:
            row = self._rows[job.id] = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(job.job.target.name))
            self.table.setItem(row, 1, QTableWidgetItem(str(job.job.output)))
            new_bar = QProgressBar()
            new_bar.setRange(0, 100)
            self.table.setCellWidget(row, 3, new_bar)
        status = job.status.value + (f": {job.error}" if job.error else "")
        self.table.setItem(row, 2, QTableWidgetItem(status))
        bar = self.table.cellWidget(row, 3)
        if isinstance(bar, QProgressBar):
            if job.status is JobStatus.DONE:
                bar.setValue(100)
            elif job.total:
                bar.setValue(round(100 * job.done / job.total))
        if job.status is JobStatus.RUNNING:
            started = self._started.setdefault(job.id, time.monotonic())
            eta = eta_text(job.done, job.total, time.monotonic() - started)
        else:
            eta = ""
        self.table.setItem(row, 4, QTableWidgetItem(eta))
        if job.status in (JobStatus.DONE, JobStatus.FAILED):
            words = "finished" if job.status is JobStatus.DONE else f"failed: {job.error}"
            self.message.emit(f"Export to {job.job.output.name} {words}")
        self._sample(job)

    def _sample(self, job: QueuedJob) -> None:
        """Feed `sample` from the running job's timer. The job's first notification (it started) only
        takes the timer: its frame count may still be a previous run's (a resumed video); the rate
        counts from its first progress."""
        now = time.monotonic()
        if job.status is JobStatus.RUNNING:
            if job.id != self._feed_job:
                self._feed_job, self._feed = job.id, None
                self._feed_timer = self.queue.running_timer(job.id)  # None if it already ended
            elif self._feed is None:
                if self._feed_timer is not None:
                    self._feed = DockFeed(self._feed_timer, job.done, now)
            elif self._feed.due(now):
                self.sample.emit(*self._feed.take(job.done, now))
        elif job.id == self._feed_job:
            last = self._feed.finish(job.done, now) if self._feed and job.status is JobStatus.DONE else None
            if last is not None:
                self.sample.emit(*last)
            self._feed_job, self._feed_timer, self._feed = None, None, None

    def shutdown(self) -> None:
        """Stop the queue's thread (an export in progress is queued again for next time)."""
        self.queue.stop()
