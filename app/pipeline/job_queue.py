"""JobQueue: exports run one after another, in the background, and survive a restart.

The queue is saved as JSON (in the settings folder) after every change, so closing the app, a crash or
a power cut loses nothing: on the next start, a job that was running is queued again, and since video
exports keep their finished segments, it resumes where it stopped. One job runs at a time (each
already keeps the GPU busy with its own worker pool); a failed job records its error and the queue
moves on; cancelling the running job stops it at the next frame. The running job's StageTimer can be
read while it runs (`running_timer`), so the GUI can show per-stage times during an export.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from app.core.errors import DoppelError, SettingsError
from app.core.paths import config_dir
from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.models.context import build_context
from app.pipeline.job_state import JobCancelledError, SwapJob
from app.pipeline.jobs import run_swap

log = logging.getLogger(__name__)

QUEUE_FILE = "queue.json"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ModelsChoice:
    """The models a job was queued with when they are not the queue's own: the models folder and the
    extra catalog files named then (absolute paths), so it runs the same from any process or folder."""

    models_dir: Path | None = None
    catalogs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class QueuedJob:
    id: str
    job: SwapJob
    models: ModelsChoice | None = None  # None: the models of the queue that runs it
    status: JobStatus = JobStatus.QUEUED
    error: str | None = None
    done: int = 0  # frames, for progress
    total: int = 0
    result: dict[str, object] = field(default_factory=dict)  # frames, fps, … of a finished job


_FILE = TypeAdapter(list[QueuedJob])
Listener = Callable[[QueuedJob], None]


class JobQueue:
    def __init__(
        self,
        runtime: InferenceRuntime,
        path: Path | None = None,
        on_change: Listener | None = None,
    ) -> None:
        self.runtime = runtime
        self.path = path or config_dir() / QUEUE_FILE
        self.on_change = on_change
        self._lock = threading.RLock()
        self._jobs: list[QueuedJob] = self._load()
        self._removed: set[str] = set()  # so a save does not bring them back from the file
        self._cancel: threading.Event | None = None
        self._running_id: str | None = None
        self._timer: StageTimer | None = None  # the running job's
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- editing -------------------------------------------------------------------------------------

    def add(self, job: SwapJob, models: ModelsChoice | None = None) -> str:
        """Queue `job`; `models`: the models folder and catalogs it needs, if not this queue's own."""
        entry = QueuedJob(uuid.uuid4().hex[:8], job, models)
        with self._lock:
            self._jobs.append(entry)
            self._save()
        self._notify(entry)
        self._wake.set()
        return entry.id

    def jobs(self) -> list[QueuedJob]:
        with self._lock:
            return list(self._jobs)

    def get(self, job_id: str) -> QueuedJob:
        with self._lock:
            for entry in self._jobs:
                if entry.id == job_id:
                    return entry
        raise DoppelError(f"No job {job_id} in the queue ({self.path})")

    # Each edit reads and writes under the lock, so it cannot interleave with the queue thread starting
    # or finishing the same job.

    def remove(self, job_id: str) -> None:
        """Remove a job that is not running (cancel it first)."""
        with self._lock:
            if self.get(job_id).status is JobStatus.RUNNING:
                raise DoppelError(f"Job {job_id} is running: cancel it before removing it")
            self._jobs = [j for j in self._jobs if j.id != job_id]
            self._removed.add(job_id)
            self._save()

    def move(self, job_id: str, position: int) -> None:
        """Put a job at `position` (0 = next to run among the queued)."""
        with self._lock:
            entry = self.get(job_id)
            rest = [j for j in self._jobs if j.id != job_id]
            rest.insert(max(0, min(position, len(rest))), entry)
            self._jobs = rest
            self._save()

    def retry(self, job_id: str) -> None:
        """Queue a failed or cancelled job again (a video resumes from its kept segments)."""
        with self._lock:
            entry = self.get(job_id)
            if entry.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                self._update(replace(entry, status=JobStatus.QUEUED, error=None))
        self._wake.set()

    def clear_finished(self) -> None:
        with self._lock:
            finished = {j.id for j in self._jobs if j.status not in (JobStatus.QUEUED, JobStatus.RUNNING)}
            self._jobs = [j for j in self._jobs if j.id not in finished]
            self._removed |= finished
            self._save()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            entry = self.get(job_id)
            if entry.status is JobStatus.QUEUED:
                self._update(replace(entry, status=JobStatus.CANCELLED))
            elif entry.status is JobStatus.RUNNING and self._cancel is not None:
                self._cancel.set()

    # -- running -------------------------------------------------------------------------------------

    def run_next(self) -> QueuedJob | None:
        """Run the first queued job on the calling thread; None when nothing is queued."""
        with self._lock:
            entry = next((j for j in self._jobs if j.status is JobStatus.QUEUED), None)
            if entry is None:
                return None
            self._cancel = threading.Event()
            self._running_id = entry.id
            self._timer = timer = StageTimer()
            entry = self._update(replace(entry, status=JobStatus.RUNNING, error=None))

        def progress(done: int, total: int) -> None:
            with self._lock:
                current = self.get(entry.id)
                self._jobs[self._jobs.index(current)] = replace(current, done=done, total=total)
            self._notify(replace(current, done=done, total=total))

        runtime = self.runtime
        try:
            if entry.models is not None:  # its own models: a runtime of their own, for this job only
                runtime = self._runtime_for(entry.models)
            report = run_swap(runtime, entry.job, progress=progress, cancel=self._cancel, timer=timer)
        except JobCancelledError as exc:
            if self._stop.is_set():  # the app is closing, not the user cancelling: run it next time
                return self._update(replace(self.get(entry.id), status=JobStatus.QUEUED, error=None))
            return self._update(replace(self.get(entry.id), status=JobStatus.CANCELLED, error=str(exc)))
        except DoppelError as exc:
            return self._update(replace(self.get(entry.id), status=JobStatus.FAILED, error=str(exc)))
        except Exception as exc:  # a bug in one job must not take the queue down (logged with its trace)
            log.exception("job %s failed", entry.id)
            error = f"{type(exc).__name__}: {exc}"
            return self._update(replace(self.get(entry.id), status=JobStatus.FAILED, error=error))
        finally:
            if runtime is not self.runtime:
                runtime.close()
            with self._lock:
                self._cancel, self._running_id, self._timer = None, None, None
        result: dict[str, object] = {
            "frames": report.frames,
            "faces_swapped": report.faces_swapped,
            "seconds": round(report.seconds, 2),
            "fps": round(report.fps, 2),
            "resumed_from": report.resumed_from,
            "notes": list(report.notes),  # what the job left alone or changed, for the list and the studio
        }
        return self._update(replace(self.get(entry.id), status=JobStatus.DONE, result=result))

    def running_timer(self, job_id: str | None = None) -> StageTimer | None:
        """The running job's StageTimer (thread-safe; read its means while the job runs); None when no
        job runs, or when `job_id` is given and is not the running job."""
        with self._lock:
            if job_id is not None and job_id != self._running_id:
                return None
            return self._timer

    def run_all(self) -> list[QueuedJob]:
        """Run every queued job, in order, on the calling thread (the CLI's `queue run`)."""
        finished = []
        while (entry := self.run_next()) is not None:
            finished.append(entry)
        return finished

    def start(self) -> None:
        """Run jobs on a background thread as they are queued (the GUI)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="job-queue", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread; a running job is interrupted and queued again for next time
        (one that was already finishing keeps its result)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            cancel = self._cancel
        if cancel is not None:
            cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the job queue's thread did not stop within %.0f s", timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_next()
            except Exception:  # a bug here must not silently end the queue thread
                log.exception("the job queue failed; it carries on")
                ran = None
            if ran is None:
                self._wake.wait(0.5)
                self._wake.clear()

    # -- state ---------------------------------------------------------------------------------------

    def _runtime_for(self, models: ModelsChoice) -> InferenceRuntime:
        """The job's models folder and catalogs (a missing one fails the job, naming it), with this
        queue's inference settings."""
        context = build_context(models.models_dir, list(models.catalogs))
        return InferenceRuntime(context.store, self.runtime.settings)

    def _update(self, entry: QueuedJob) -> QueuedJob:
        with self._lock:
            index = next(i for i, j in enumerate(self._jobs) if j.id == entry.id)
            self._jobs[index] = entry
            self._save()
        self._notify(entry)
        return entry

    def _notify(self, entry: QueuedJob) -> None:
        if self.on_change is not None:
            self.on_change(entry)

    def _save(self) -> None:
        """Write the queue, keeping jobs another process (`swap --enqueue`) added to the file since."""
        known = {j.id for j in self._jobs} | self._removed
        if self.path.is_file():
            try:
                added = [j for j in _FILE.validate_json(self.path.read_bytes()) if j.id not in known]
            except (OSError, ValidationError):
                added = []  # unreadable now: ours replaces it (it was reported when loaded)
            self._jobs.extend(added)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_bytes(_FILE.dump_json(self._jobs, indent=2))
        temporary.replace(self.path)

    def _load(self) -> list[QueuedJob]:
        if not self.path.is_file():
            return []
        try:
            jobs = _FILE.validate_json(self.path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise SettingsError(f"The job queue {self.path} cannot be read: {exc}") from exc
        # A job that was running when the app stopped runs again (a video resumes from its segments).
        return [replace(j, status=JobStatus.QUEUED) if j.status is JobStatus.RUNNING else j for j in jobs]
