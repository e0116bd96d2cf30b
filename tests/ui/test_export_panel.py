"""The export panel: a real export through the JobQueue feeds the performance dock as it runs."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from PIL import Image
from skimage import data

from app.inference.runtime import InferenceRuntime
from app.pipeline.job_queue import JobQueue, JobStatus
from app.pipeline.job_state import EngineOptions, SwapJob
from app.ui.export_panel import ExportChoice, ExportPanel
from app.ui.performance import SAMPLE_INTERVAL_S, PerformanceDock
from tests.support.media import make_clip
from tests.support.processing import flat_swap_settings


def test_an_export_feeds_stage_times_and_its_frame_rate_to_the_performance_dock(
    qtbot, runtime: InferenceRuntime, tmp_path: Path
) -> None:
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.2, fps=25, size=(320, 320), image=data.astronaut())

    choices: list[ExportChoice] = []

    def make_job(choice: ExportChoice) -> SwapJob:
        choices.append(choice)
        return SwapJob(
            sources=(face,), target=clip, output=choice.output, settings=flat_swap_settings(),
            engine=EngineOptions(workers=1), codec=choice.codec, crf=choice.crf,  # type: ignore[arg-type]
            x264_preset=choice.x264_preset,
        )  # fmt: skip

    queue = JobQueue(runtime, tmp_path / "queue.json")
    panel = ExportPanel(queue, make_job)
    dock = PerformanceDock(redraw_interval_s=0)
    qtbot.addWidget(panel)
    qtbot.addWidget(dock)
    samples: list[tuple[dict[str, float], float, float, bool]] = []

    def sampled(stages: dict[str, float], fps: float) -> None:
        running = queue.get(job_id).status is JobStatus.RUNNING
        samples.append((stages, fps, time.monotonic(), running))

    panel.sample.connect(sampled)
    panel.sample.connect(lambda stages, fps: dock.add_sample(stages, fps=fps))
    panel.output.setText(str(tmp_path / "out.mp4"))
    assert panel.preset.currentText() == "veryfast"  # the default: far above real time
    panel.preset.setCurrentText("ultrafast")
    try:
        job_id = panel.export()
        assert job_id is not None
        row = panel._rows[job_id]
        qtbot.waitUntil(
            lambda: panel.table.item(row, 2).text().startswith(("done", "failed")), timeout=120_000
        )
    finally:
        panel.shutdown()
    assert queue.get(job_id).status is JobStatus.DONE, queue.get(job_id).error
    assert choices == [ExportChoice(tmp_path / "out.mp4", "h264", 18, "ultrafast")]
    assert queue.get(job_id).job.x264_preset == "ultrafast"
    assert len(samples) >= 2
    assert any(running for *_, running in samples)  # sampled while the export ran, not only at its end
    assert all(stages and fps > 0 for stages, fps, _, _ in samples)
    seen = {name for stages, *_ in samples for name in stages}
    assert {"swap", "encode"} <= seen
    assert all(ms >= 0 for stages, *_ in samples for ms in stages.values())
    times = [at for *_, at, _ in samples]
    # at most ~10 a second: only the last (the job ended) may follow its predecessor sooner
    assert all(b - a >= SAMPLE_INTERVAL_S * 0.9 for a, b in itertools.pairwise(times[:-1]))
    assert {"swap", "encode"} <= set(dock.stages())
    assert queue.running_timer() is None
    assert not any(t.name == "job-queue" and t.is_alive() for t in threading.enumerate())
