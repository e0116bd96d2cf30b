"""The model manager: every catalog model with its state, size and licence; one-click downloads with a
progress bar per file, cancel and verify. Downloads and hashing run on a BackgroundTask; the
downloader's events arrive here as a queued Qt signal."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.models.catalog import ModelEntry
from app.models.context import AppContext
from app.models.download import Downloader, DownloadOptions, DownloadResult
from app.models.events import NOTEWORTHY, STATUS_WORDS, DownloadEvent, EventKind
from app.models.store import ModelState, ModelStatus
from app.ui.tasks import BackgroundTask

COLUMNS = ["Model", "Kind", "Size", "Licence", "State", "Progress"]
STATE_COL, PROGRESS_COL = 4, 5


class _EventBridge(QObject):
    """Carries DownloadEvents from download threads to the GUI thread."""

    arrived = Signal(object)


class ModelManager(QWidget):
    busy_changed = Signal(bool)
    message = Signal(str)
    problem = Signal(str)  # a download that did not finish: shown as an error

    def __init__(
        self,
        ctx: AppContext,
        parent: QWidget | None = None,
        needed: Callable[[], list[str]] | None = None,
    ) -> None:
        """`needed()` names the models the studio's current settings run (for the button that
        downloads just those)."""
        super().__init__(parent)
        self.ctx = ctx
        self.needed = needed
        self._rows = {entry.id: row for row, entry in enumerate(ctx.catalog)}
        self._task: BackgroundTask | None = None
        self._downloader: Downloader | None = None
        self._bridge = _EventBridge()
        self._bridge.arrived.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._build()
        self.refresh()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        location = self.ctx.models_dir
        self.location_label = QLabel(f"Models folder: {location.path}  ({location.origin})")
        self.table = QTableWidget(len(self._rows), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for entry in self.ctx.catalog:
            self._fill_static(self._rows[entry.id], entry)

        self.download_selected_button = QPushButton("Download selected")
        self.download_default_button = QPushButton("Download default set (★)")
        self.download_all_button = QPushButton("Download all")
        self.download_needed_button = QPushButton("Download what the settings need")
        self.download_needed_button.setToolTip("The detector, swapper, restorer and masks now chosen")
        self.download_needed_button.setVisible(self.needed is not None)
        self.download_needed_button.clicked.connect(self.download_needed)
        self.retry_button = QPushButton("Retry failed")
        self.retry_button.setToolTip("Download again the models of the last batch that did not finish")
        self.retry_button.setEnabled(False)
        self.retry_button.clicked.connect(self.retry_failed)
        self._failed: list[ModelEntry] = []
        self.cancel_button = QPushButton("Cancel")
        self.verify_button = QPushButton("Verify files")
        self.trust_box = QCheckBox("Trust unverified hashes")
        self.trust_box.setToolTip("Install models whose SHA-256 only one public source states")
        self.cancel_button.setEnabled(False)
        self.download_selected_button.clicked.connect(lambda: self.download(self.selected_entries()))
        self.download_default_button.clicked.connect(
            lambda: self.download(
                self.ctx.catalog.with_requirements(e.id for e in self.ctx.catalog.defaults())
            )
        )
        self.download_all_button.clicked.connect(lambda: self.download(list(self.ctx.catalog)))
        self.cancel_button.clicked.connect(self.cancel)
        self.verify_button.clicked.connect(self.verify)

        buttons = QHBoxLayout()
        for widget in (
            self.download_needed_button,
            self.download_selected_button,
            self.download_default_button,
            self.download_all_button,
            self.retry_button,
            self.cancel_button,
            self.verify_button,
            self.trust_box,
        ):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.location_label)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def _fill_static(self, row: int, entry: ModelEntry) -> None:
        size = ("~" if not entry.size_exact else "") + f"{entry.size / 1e6:.1f} MB"
        licence = "non-commercial" if entry.non_commercial else entry.license.name
        name = (
            ("★ " if entry.default else "") + entry.name + ("" if entry.verified else "  (unverified hash)")
        )
        for col, text in enumerate([name, entry.kind.value, size, licence]):
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            item.setToolTip(entry.notes or entry.name)
            self.table.setItem(row, col, item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(0)
        bar.setTextVisible(True)
        self.table.setCellWidget(row, PROGRESS_COL, bar)

    # ---- state --------------------------------------------------------------------------------

    def progress_bar(self, model_id: str) -> QProgressBar:
        widget = self.table.cellWidget(self._rows[model_id], PROGRESS_COL)
        assert isinstance(widget, QProgressBar)
        return widget

    def state_text(self, model_id: str) -> str:
        item = self.table.item(self._rows[model_id], STATE_COL)
        return item.text() if item else ""

    def refresh(self, statuses: Iterable[ModelStatus] | None = None) -> None:
        for status in statuses if statuses is not None else self.ctx.store.statuses():
            self._show_state(status)

    def _show_state(self, status: ModelStatus) -> None:
        row = self._rows[status.entry.id]
        self.table.setItem(row, STATE_COL, QTableWidgetItem(status.state.value))
        bar = self.progress_bar(status.entry.id)
        if status.state in (ModelState.PRESENT, ModelState.STANDIN):
            bar.setValue(1000)
        elif status.state is ModelState.PARTIAL:
            bar.setValue(int(1000 * min(status.bytes_on_disk / status.entry.size, 1.0)))
        else:
            bar.setValue(0)

    def selected_entries(self) -> list[ModelEntry]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        items = [self.table.item(row, 0) for row in rows]
        ids = [str(item.data(Qt.ItemDataRole.UserRole)) for item in items if item is not None]
        return self.ctx.catalog.with_requirements(ids)

    def is_busy(self) -> bool:
        return self._task is not None

    # ---- actions ------------------------------------------------------------------------------

    def download(self, entries: list[ModelEntry]) -> None:
        if self.is_busy() or not entries:
            return
        prefs = self.ctx.settings.download
        options = DownloadOptions(
            parallel=prefs.parallel,
            retries=prefs.retries,
            timeout_s=prefs.timeout_s,
            trust_unverified=self.trust_box.isChecked(),
        )
        downloader = Downloader(self.ctx.store, options, on_event=self._bridge.arrived.emit)
        self._downloader = downloader
        self.message.emit(f"Downloading {len(entries)} model(s)…")
        self._start(BackgroundTask(lambda: downloader.download_all(entries)), self._downloads_done)

    def download_needed(self) -> None:
        """The models the current settings run, with their requirements, that are not here yet."""
        if self.needed is None:
            return
        catalog, store = self.ctx.catalog, self.ctx.store
        wanted = [e for e in catalog.with_requirements(self.needed()) if not store.status(e).usable]
        if not wanted:
            self.message.emit("Every model the current settings need is already here.")
            return
        self.download(wanted)

    def retry_failed(self) -> None:
        """The last batch's models that did not finish, once more (their partial files resume)."""
        self.download(list(self._failed))

    def cancel(self) -> None:
        if self._downloader is not None:
            self._downloader.cancel()
            self.message.emit("Cancelling; partial files are kept and resume next time.")

    def verify(self) -> None:
        if self.is_busy():
            return
        store = self.ctx.store
        on_disk = [e for e in self.ctx.catalog if store.path_for(e).is_file()]
        self.message.emit(f"Verifying {len(on_disk)} file(s)…")
        self._start(BackgroundTask(lambda: [store.status(e, rehash=True) for e in on_disk]), self._verified)

    def shutdown(self) -> None:
        """Stop any work and join its thread (on close, and by tests)."""
        self.cancel()
        if self._task is not None:
            self._task.wait()
            self._task = None

    def _start(self, task: BackgroundTask, on_done: object) -> None:
        self._task = task
        task.done.connect(on_done)
        task.failed.connect(self._task_failed)
        task.finished.connect(self._task_finished)
        self._set_busy(True)
        task.start()

    def _set_busy(self, busy: bool) -> None:
        for button in (
            self.download_selected_button,
            self.download_default_button,
            self.download_all_button,
            self.verify_button,
        ):
            button.setEnabled(not busy)
        self.retry_button.setEnabled(not busy and bool(self._failed))
        self.cancel_button.setEnabled(busy and self._downloader is not None)
        self.busy_changed.emit(busy)

    # ---- results (GUI thread) ------------------------------------------------------------------

    @Slot(object)
    def _on_event(self, event: DownloadEvent) -> None:
        if event.model_id not in self._rows:
            return
        row = self._rows[event.model_id]
        if event.total and event.kind in (EventKind.STARTED, EventKind.PROGRESS):
            self.progress_bar(event.model_id).setValue(int(1000 * min(event.done / event.total, 1.0)))
        if event.kind in STATUS_WORDS and not event.terminal:  # terminal states come from the store
            self.table.setItem(row, STATE_COL, QTableWidgetItem(STATUS_WORDS[event.kind]))
        if event.kind in NOTEWORTHY:
            self.message.emit(f"{event.model_id}: {event.message}")

    def _downloads_done(self, results: list[DownloadResult]) -> None:
        failed = [r for r in results if not r.ok]
        for result in failed:
            self.problem.emit(f"{result.model_id}: {result.status}: {result.error}")
        self._failed = [self.ctx.catalog.get(r.model_id) for r in failed]  # _set_busy(False) follows
        self.refresh(self.ctx.store.status(self.ctx.catalog.get(r.model_id)) for r in results)
        ok = len(results) - len(failed)
        if failed:
            self.problem.emit(
                f"{ok} of {len(results)} models ready; {len(failed)} did not finish (Models → Retry failed)."
            )
        else:
            self.message.emit(f"{ok} model(s) ready.")
        self._downloader = None

    def _verified(self, statuses: list[ModelStatus]) -> None:
        self.refresh(statuses)
        corrupt = [s.entry.id for s in statuses if s.state is ModelState.CORRUPT]
        summary = f"{len(statuses)} file(s) verified"
        self.message.emit(summary + (f"; corrupt: {', '.join(corrupt)}" if corrupt else "; all good."))

    def _task_failed(self, message: str) -> None:
        """A batch refused as a whole (e.g. no disk space): say why and show the states on disk again."""
        self.message.emit(message)
        self.refresh()

    def _task_finished(self) -> None:
        self._task = None
        self._downloader = None
        self._set_busy(False)
