"""The export engine and its parts on real models and files: ordered output from several workers, the
per-frame cache, errors that end the pipeline (never a hang), and live mode's latency accounting."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from skimage import data

from app.core.profiling import StageTimer
from app.faces.detector import DetectionSettings
from app.inference.errors import InferenceError
from app.inference.faults import FaultPlan
from app.inference.runtime import InferenceRuntime
from app.media.errors import MediaReadError
from app.media.video import open_video
from app.media.webcam import CapturedFrame
from app.pipeline.analysis import FrameAnalyser
from app.pipeline.cache import AnalysisCache
from app.pipeline.job_state import EngineOptions, JobCancelledError, JobState, SwapJob
from app.pipeline.jobs import run_swap
from app.pipeline.live import LivePipeline, PacedVideo
from app.pipeline.preview import PreviewResult, PreviewService
from app.pipeline.previewer import MediaPreviewer, PreviewFrame
from app.pipeline.settings import AnalysisSettings, PipelineSettings, SourceFace
from app.processing.settings import ProcessingSettings, SwapSettings
from app.tracking.face_tracker import TrackingSettings
from tests.support.media import make_clip
from tests.support.processing import standin_runtime
from tests.support.real_models import REAL_SCRFD_ID


def settings(swapper: str = "inswapper_128_fp16@flat", interval: int = 1) -> PipelineSettings:
    return PipelineSettings(
        analysis=AnalysisSettings(detector=REAL_SCRFD_ID, detection=DetectionSettings()),
        tracking=TrackingSettings(interval=interval),
        processing=ProcessingSettings(swap=SwapSettings(swapper=swapper)),
    )


def frames_of(path: Path) -> list[torch.Tensor]:
    with open_video(path) as video:
        return [frame.image for frame in video.frames()]


def job(
    media: dict[str, Path], output: Path, workers: int, target: Path | None = None, **engine: object
) -> SwapJob:
    return SwapJob(
        sources=(media["face"],),
        target=media["clip"] if target is None else target,
        output=output,
        settings=settings(),
        engine=EngineOptions(workers=workers, queue=16, segment_frames=10, **engine),  # type: ignore[arg-type]
        audio=False,
    )


def test_several_workers_give_the_frames_one_worker_gives(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    # 20 frames in two segments: enough for four workers to finish out of order and be put back in it
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.8, fps=25, size=(320, 320), image=data.astronaut())
    one = run_swap(runtime, job(media, tmp_path / "one.mp4", workers=1, target=clip))
    four = run_swap(runtime, job(media, tmp_path / "four.mp4", workers=4, target=clip))
    assert one.frames == four.frames == 20 and four.workers == 4
    assert four.faces_swapped > 16
    first, second = frames_of(tmp_path / "one.mp4"), frames_of(tmp_path / "four.mp4")
    assert len(first) == len(second) == 20
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_revisiting_a_frame_hits_the_cache_until_the_settings_change(
    runtime: InferenceRuntime, media: dict[str, Path]
) -> None:
    cache = AnalysisCache()
    frame = frames_of(media["clip"])[5]
    no_tracking = settings().model_copy(update={"tracking": TrackingSettings(enabled=False)})
    analyser = FrameAnalyser(runtime, no_tracking, cache=cache, source_id="clip")
    first = analyser.analyse(frame, index=5)
    assert (cache.hits, cache.misses) == (0, 1)
    again = analyser.analyse(frame, index=5)
    assert (cache.hits, cache.misses) == (1, 1)
    assert [f.box for f in again] == [f.box for f in first]
    stricter = no_tracking.model_copy(
        update={
            "analysis": no_tracking.analysis.model_copy(update={"detection": DetectionSettings(score=0.9)})
        }
    )
    FrameAnalyser(runtime, stricter, cache=cache, source_id="clip").analyse(frame, index=5)
    assert cache.misses == 2  # new settings: the old entry no longer answers


def test_a_decode_error_mid_export_ends_it_with_the_file_named(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    data_ = media["clip"].read_bytes()
    broken = tmp_path / "broken.mp4"
    cut = len(data_) // 2
    broken.write_bytes(data_[:cut] + bytes(200_000) + data_[cut + 200_000 :])
    output = tmp_path / "out.mp4"
    broken_job = SwapJob(
        sources=(media["face"],), target=broken, output=output, settings=settings(),
        engine=EngineOptions(workers=2, queue=16, segment_frames=10), audio=False,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(MediaReadError, match=r"broken\.mp4"):
        run_swap(runtime, broken_job)
    assert time.monotonic() - started < 60
    assert not output.exists()


def test_cancelling_stops_every_thread_and_writes_nothing(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    cancel = threading.Event()
    output = tmp_path / "cancelled.mp4"
    before = threading.active_count()

    def progress(done: int, total: int) -> None:
        if done >= 12:
            cancel.set()

    with pytest.raises(JobCancelledError):
        run_swap(runtime, job(media, output, workers=3), progress=progress, cancel=cancel)
    assert not output.exists()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before  # decode, analysis and worker threads all ended


def test_live_mode_measures_latency_and_skips_rather_than_queues(
    runtime: InferenceRuntime, media: dict[str, Path]
) -> None:
    live_job = SwapJob(
        sources=(media["face"],), target=media["clip"], output=media["clip"], settings=settings()
    )
    timer = StageTimer()
    state = JobState(runtime, live_job, timer)
    # 50 frames at 100 fps, looped: the camera runs for all 3 s (played once it closed after 0.5 s,
    # which on a loaded machine left time for fewer than three frames)
    source = PacedVideo(media["clip"], loop=True, speed=4.0)
    seen: list[int] = []

    def slow_preview(frame: torch.Tensor, captured: CapturedFrame) -> None:
        seen.append(captured.sequence)
        time.sleep(0.1)  # a sink at 10 fps, on any machine: the camera outpaces the pipeline

    pipeline = LivePipeline(state.analyser, state.swapper, source, [slow_preview], state.device, timer)
    try:
        report = pipeline.run(seconds=3.0)
    finally:
        source.close()
    assert report.frames == len(seen) >= 3
    assert seen == sorted(seen)  # never out of order
    assert len(report.latency_ms) == report.frames and min(report.latency_ms) > 0
    assert report.skipped + source.dropped > 0  # frames were dropped, not queued
    # bounded: no backlog builds up (a queue would end some 2.7 s behind: 300 frames at 10 fps)
    assert max(report.latency_ms) < 2000


def test_the_video_previewer_renders_the_exact_frame_and_caches_its_faces(
    runtime: InferenceRuntime, media: dict[str, Path]
) -> None:
    truth = frames_of(media["clip"])
    previewer = MediaPreviewer(runtime, media["clip"], SourceFace(files=(media["face"],)))
    delivered: list[PreviewResult[PreviewFrame]] = []
    service: PreviewService[PipelineSettings, PreviewFrame] = PreviewService(previewer, delivered.append)
    try:
        for count, index in enumerate((30, 7, 30), start=1):
            service.request(index, settings())
            deadline = time.monotonic() + 30
            while len(delivered) < count and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        service.close()
        previewer.close()
    assert [r.index for r in delivered] == [30, 7, 30]
    first, _, again = delivered
    assert previewer.cache.hits == 1  # the second visit to frame 30 was a lookup
    assert torch.equal(first.result.after, again.result.after)
    assert len(first.result.faces) == 1 and first.result.swapped
    assert torch.equal(first.result.before, truth[30])  # the exact frame
    untouched = ~(first.result.after != truth[30]).any(dim=2)
    assert untouched.float().mean() > 0.5  # only the face region was swapped into the exact frame


def test_a_model_failing_in_the_swap_workers_ends_the_export_with_the_model_named(
    test_assets: Path, media: dict[str, Path], tmp_path: Path
) -> None:
    """Fault injection: the swapper's sessions raise on every run, on every provider."""
    faulty = standin_runtime(test_assets, tmp_path / "faulty", ("inswapper_128_fp16", "arcface_w600k_r50"))
    model = "inswapper_128_fp16@flat"  # every provider fails, so nothing is left to fall back to
    faulty.faults = FaultPlan.parse(f"tensorrt:run:{model},cuda:run:{model},cpu:run:{model}")
    started = time.monotonic()
    try:
        with pytest.raises(InferenceError, match="inswapper_128_fp16@flat"):
            run_swap(faulty, job(media, tmp_path / "failed.mp4", workers=3))
    finally:
        faulty.close()
    assert time.monotonic() - started < 60
    assert not (tmp_path / "failed.mp4").exists()


def _variable_rate_clip(path: Path, image: torch.Tensor) -> Path:
    """40 frames: 20 at 100 fps, then 20 at 20 fps (timestamps in ms), panning so every frame differs."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = 320, 320, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"g": "12"}
        source = image.numpy()
        for index in range(40):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(source[index : index + 320, 40 : 40 + 320]), format="rgb24"
            )
            frame.pts = index * 10 if index < 20 else 200 + (index - 20) * 50
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_variable_frame_rate_export_resumes_without_losing_or_repeating_frames(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    clip = _variable_rate_clip(tmp_path / "vfr.mp4", torch.from_numpy(data.astronaut().copy()))

    def vfr_job(output: Path) -> SwapJob:
        return SwapJob(
            sources=(media["face"],), target=clip, output=output, settings=settings(interval=2),
            engine=EngineOptions(workers=2, queue=16, segment_frames=10), audio=False,
        )  # fmt: skip

    run_swap(runtime, vfr_job(tmp_path / "whole.mp4"))
    cancel = threading.Event()
    with pytest.raises(JobCancelledError):
        run_swap(
            runtime,
            vfr_job(tmp_path / "resumed.mp4"),
            progress=lambda done, total: done >= 23 and cancel.set(),
            cancel=cancel,
        )  # type: ignore[func-returns-value]
    report = run_swap(runtime, vfr_job(tmp_path / "resumed.mp4"))
    assert report.resumed_from == 20  # two whole segments were kept, in the 20 fps part's timestamps
    with av.open(str(tmp_path / "whole.mp4")) as a, av.open(str(tmp_path / "resumed.mp4")) as b:
        whole = [(f.pts, f.to_ndarray(format="rgb24")) for f in a.decode(video=0)]
        resumed = [(f.pts, f.to_ndarray(format="rgb24")) for f in b.decode(video=0)]
    assert len(whole) == len(resumed) == 40
    assert [p for p, _ in whole] == [p for p, _ in resumed]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(whole, resumed, strict=True))


def test_a_paced_video_starts_playing_at_its_first_read(media: dict[str, Path]) -> None:
    source = PacedVideo(media["clip"])  # 25 fps: had it started at once, ~12 frames would be gone
    try:
        time.sleep(0.5)
        first = source.read(timeout=5.0)
        assert first is not None and first.sequence == 0 and source.dropped == 0
    finally:
        source.close()
    assert not source._thread.is_alive()
    unread = PacedVideo(media["clip"])
    unread.close()  # closing a player nobody read from ends its thread too
    assert not unread._thread.is_alive()
