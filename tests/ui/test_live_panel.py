"""The live panel: live mode on a video played as a camera feeds the performance dock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from skimage import data

from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.pipeline.job_state import JobState, SwapJob
from app.pipeline.live import PacedVideo
from app.ui.live_panel import LivePanel
from app.ui.performance import SAMPLE_INTERVAL_S, PerformanceDock
from tests.support.media import make_clip
from tests.support.processing import flat_swap_settings


def test_live_mode_feeds_stage_times_frame_rate_and_latency_to_the_performance_dock(
    qtbot, runtime: InferenceRuntime, tmp_path: Path
) -> None:
    face = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).save(face)
    clip = make_clip(tmp_path / "cam.mp4", seconds=4.0, fps=25, size=(320, 320), image=data.astronaut())
    job = SwapJob(sources=(face,), target=face, output=face, settings=flat_swap_settings())

    def make_state() -> Callable[[], JobState]:
        return lambda: JobState(runtime, job, StageTimer())

    panel = LivePanel(make_state, open_source=lambda device, fmt: PacedVideo(clip))
    dock = PerformanceDock(redraw_interval_s=0)
    qtbot.addWidget(panel)
    qtbot.addWidget(dock)
    samples: list[tuple[dict[str, float], float, float, float]] = []
    panel.sample.connect(lambda stages, fps, ms: samples.append((stages, fps, ms, time.monotonic())))
    panel.sample.connect(lambda stages, fps, ms: dock.add_sample(stages, fps=fps, latency_ms=ms))
    try:
        panel.start()
        qtbot.waitUntil(lambda: len(samples) >= 4, timeout=60_000)
        assert " fps · " in panel.stats.text() and "ms latency" in panel.stats.text()
    finally:
        panel.stop()
    assert not panel.running
    assert all(stages and fps > 0 and ms > 0 for stages, fps, ms, _ in samples)
    seen = {name for stages, *_ in samples for name in stages}
    assert {"swap", "sinks"} <= seen
    assert "latency" not in seen  # the timer keeps it, but it is the third value, not a stage
    times = [at for *_, at in samples]
    assert all(b - a >= SAMPLE_INTERVAL_S * 0.9 for a, b in itertools.pairwise(times))
    assert "swap" in dock.stages() and dock.points("swap") == sum("swap" in s for s, *_ in samples)
    count = len(samples)
    qtbot.wait(300)
    assert len(samples) == count  # stopped: no more samples
    assert not any(t.name.startswith("live-") and t.is_alive() for t in threading.enumerate())
