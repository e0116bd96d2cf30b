"""The job queue: runs in order, records failures and moves on, survives a restart, cancels cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from app.core.errors import DoppelError
from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.pipeline.job_queue import JobQueue, JobStatus, ModelsChoice, QueuedJob
from app.pipeline.job_state import EngineOptions, SwapJob
from app.pipeline.jobs import run_swap
from tests.support.media import make_clip
from tests.support.processing import flat_swap_settings

SETTINGS = flat_swap_settings()


@pytest.fixture
def face(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def image_job(face: Path, output: Path, target: Path | None = None) -> SwapJob:
    return SwapJob(sources=(face,), target=target or face, output=output, settings=SETTINGS)


def test_jobs_run_in_order_and_a_failure_does_not_stop_the_queue(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    queue = JobQueue(runtime, tmp_path / "queue.json")
    first = queue.add(image_job(face, tmp_path / "a.png"))
    broken = queue.add(image_job(face, tmp_path / "b.png", target=tmp_path / "missing.png"))
    last = queue.add(image_job(face, tmp_path / "c.png"))
    queue.move(last, 0)
    finished = queue.run_all()
    assert [j.id for j in finished] == [last, first, broken]
    by_id = {j.id: j for j in queue.jobs()}
    assert by_id[first].status is JobStatus.DONE and by_id[last].status is JobStatus.DONE
    assert by_id[broken].status is JobStatus.FAILED and "missing.png" in (by_id[broken].error or "")
    assert (tmp_path / "a.png").is_file() and (tmp_path / "c.png").is_file()
    assert by_id[first].result["faces_swapped"] == 1


def test_a_job_keeps_its_models_and_a_catalog_gone_since_fails_it_by_name(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    path = tmp_path / "queue.json"
    gone = tmp_path / "gone.catalog.json"
    queued = JobQueue(runtime, path).add(image_job(face, tmp_path / "a.png"), ModelsChoice(None, (gone,)))
    after = JobQueue(runtime, path).add(image_job(face, tmp_path / "b.png"))
    reopened = JobQueue(runtime, path)  # another process: the choice was saved with the job
    assert reopened.get(queued).models == ModelsChoice(None, (gone,)) and reopened.get(after).models is None
    reopened.run_all()
    failed = reopened.get(queued)
    assert failed.status is JobStatus.FAILED and str(gone) in (failed.error or "")
    assert reopened.get(after).status is JobStatus.DONE and not (tmp_path / "a.png").exists()


def test_the_queue_survives_a_restart_and_requeues_what_was_running(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    path = tmp_path / "queue.json"
    queue = JobQueue(runtime, path)
    kept = queue.add(image_job(face, tmp_path / "a.png"))
    interrupted = queue.add(image_job(face, tmp_path / "b.png"))
    queue._update(
        queue.get(interrupted).__class__(**{**queue.get(interrupted).__dict__, "status": JobStatus.RUNNING})
    )
    reopened = JobQueue(runtime, path)  # the app started again
    assert [(j.id, j.status) for j in reopened.jobs()] == [
        (kept, JobStatus.QUEUED),
        (interrupted, JobStatus.QUEUED),
    ]
    assert reopened.get(kept).job == queue.get(kept).job  # settings and paths round-trip through JSON
    reopened.run_all()
    assert all(j.status is JobStatus.DONE for j in reopened.jobs())


def test_a_corrupt_queue_file_is_reported_by_name(runtime: InferenceRuntime, tmp_path: Path) -> None:
    path = tmp_path / "queue.json"
    path.write_text("[{", encoding="utf-8")
    with pytest.raises(DoppelError, match=r"queue\.json"):
        JobQueue(runtime, path)


def test_cancelling_the_running_export_stops_it_and_the_next_job_runs(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    clip = make_clip(
        tmp_path / "long.mp4", seconds=8.0, fps=25, size=(320, 320), image=data.astronaut(), audio=False
    )
    changes: list[tuple[str, JobStatus, int]] = []
    queue = JobQueue(
        runtime, tmp_path / "queue.json", on_change=lambda j: changes.append((j.id, j.status, j.done))
    )
    video = queue.add(
        SwapJob(sources=(face,), target=clip, output=tmp_path / "v.mp4", settings=SETTINGS,
                engine=EngineOptions(workers=1, segment_frames=10), audio=False)
    )  # fmt: skip
    after = queue.add(image_job(face, tmp_path / "after.png"))
    queue.start()
    try:
        deadline = time.monotonic() + 60
        while not any(i == video and done > 5 for i, _, done in changes) and time.monotonic() < deadline:
            time.sleep(0.05)
        queue.cancel(video)
        while queue.get(after).status is not JobStatus.DONE and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        queue.stop()
    assert queue.get(video).status is JobStatus.CANCELLED
    assert queue.get(after).status is JobStatus.DONE
    assert not (tmp_path / "v.mp4").exists()
    assert (tmp_path / "v.mp4.parts").is_dir()  # kept: retrying resumes
    assert not any(t.name == "job-queue" and t.is_alive() for t in threading.enumerate())


def test_jobs_added_by_another_process_survive_this_ones_saves(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    path = tmp_path / "queue.json"
    app = JobQueue(runtime, path)  # the desktop app holds the queue
    cli = JobQueue(runtime, path)  # `swap --enqueue` from a terminal
    from_cli = cli.add(image_job(face, tmp_path / "cli.png"))
    from_app = app.add(image_job(face, tmp_path / "app.png"))
    app.remove(from_app)
    assert [j.id for j in JobQueue(runtime, path).jobs()] == [from_cli]


def test_closing_the_app_mid_export_queues_the_job_again(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    clip = make_clip(
        tmp_path / "long.mp4", seconds=8.0, fps=25, size=(320, 320), image=data.astronaut(), audio=False
    )
    started = threading.Event()
    queue = JobQueue(runtime, tmp_path / "queue.json", on_change=lambda j: j.done > 3 and started.set())
    video = queue.add(
        SwapJob(sources=(face,), target=clip, output=tmp_path / "v.mp4", settings=SETTINGS,
                engine=EngineOptions(workers=1, segment_frames=10), audio=False)
    )  # fmt: skip
    queue.start()
    try:
        assert started.wait(60)
    finally:
        queue.stop()
    assert queue.get(video).status is JobStatus.QUEUED  # interrupted by the app closing, not cancelled
    assert JobQueue(runtime, tmp_path / "queue.json").get(video).status is JobStatus.QUEUED


def test_run_swap_records_into_the_timer_it_is_given(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    timer = StageTimer()
    timer.record("earlier", 1.0)  # the caller's timer is used as it is, not replaced
    report = run_swap(runtime, image_job(face, tmp_path / "a.png"), timer=timer)
    counts = timer.counts
    assert counts["earlier"] == 1 and counts["swap"] == 1 and counts["write"] == 1
    assert report.stage_ms == timer.mean_ms()


def test_the_running_jobs_timer_can_be_read_while_it_runs(
    runtime: InferenceRuntime, face: Path, tmp_path: Path
) -> None:
    clip = make_clip(
        tmp_path / "clip.mp4", seconds=0.8, fps=25, size=(320, 320), image=data.astronaut(), audio=False
    )
    seen: list[tuple[int, dict[str, float], bool]] = []

    def on_change(entry: QueuedJob) -> None:  # on the queue's thread, as the job reports progress
        if entry.status is JobStatus.RUNNING and entry.done > 0:
            timer = queue.running_timer(entry.id)
            assert timer is not None and queue.running_timer() is timer
            seen.append((entry.done, timer.mean_ms(), queue.running_timer("another") is None))

    queue = JobQueue(runtime, tmp_path / "queue.json", on_change=on_change)
    video = queue.add(
        SwapJob(sources=(face,), target=clip, output=tmp_path / "v.mp4", settings=SETTINGS,
                engine=EngineOptions(workers=1), audio=False)
    )  # fmt: skip
    assert queue.running_timer() is None  # nothing runs yet
    assert queue.run_next() is not None
    assert queue.get(video).status is JobStatus.DONE, queue.get(video).error
    assert [done for done, _, _ in seen] == list(range(1, 21))
    assert all(other for *_, other in seen)
    assert {"swap", "encode"} <= set(seen[-1][1]) and all(ms > 0 for ms in seen[-1][1].values())
    assert queue.running_timer() is None  # the job ended: its timer is let go
