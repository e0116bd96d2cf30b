"""Markers in exports: the settings a marker holds apply from its frame on, resumes continue with the
settings in force, and a marker that changes only the look keeps the tracks going."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from skimage import data

from app.core.profiling import StageTimer
from app.inference.runtime import InferenceRuntime
from app.media.video import open_video
from app.pipeline.job_state import EngineOptions, JobCancelledError, JobState, Marker, SwapJob
from app.pipeline.jobs import run_swap
from app.pipeline.settings import PipelineSettings
from app.processing.settings import MaskSettings
from tests.pipeline.test_engine import frames_of, settings
from tests.support.media import make_clip

FLAT, UNCHANGED = "inswapper_128_fp16@flat", "inswapper_128_fp16@identity"


@pytest.fixture(scope="module")
def media(media: dict[str, Path]) -> dict[str, Path]:
    """The pipeline's face, and a 30-frame clip of it (three segments of 10): enough for two markers
    and a resume after the second, at three fifths of the frames of the 50-frame clip."""
    clip = make_clip(
        media["root"] / "markers.mp4", seconds=1.2, fps=25, size=(320, 320), image=data.astronaut()
    )
    return {**media, "clip": clip}


def marker_job(media: dict[str, Path], output: Path, markers: tuple[Marker, ...]) -> SwapJob:
    return SwapJob(
        sources=(media["face"],), target=media["clip"], output=output, settings=settings(FLAT),
        markers=markers, engine=EngineOptions(workers=2, queue=16, segment_frames=10), audio=False,
    )  # fmt: skip


def face_change(out: torch.Tensor, source: torch.Tensor) -> float:
    """Mean absolute change in the middle of the picture, where the astronaut's face is."""
    return float((out[60:200, 100:220].float() - source[60:200, 100:220].float()).abs().mean())


def test_an_export_changes_settings_at_a_marker(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "marked.mp4"
    report = run_swap(runtime, marker_job(media, output, (Marker(15, settings(UNCHANGED)),)))
    assert report.frames == 30
    swapped, source = frames_of(output), frames_of(media["clip"])
    before = [face_change(a, b) for a, b in zip(swapped[:15], source[:15], strict=True)]
    after = [face_change(a, b) for a, b in zip(swapped[15:], source[15:], strict=True)]
    assert min(before) > 20  # the flat stand-in's colour is pasted up to the marker…
    assert max(after) < 5  # …and from it on the unchanged face (encoding noise aside)


def test_a_resumed_export_continues_with_the_settings_of_its_marker(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    markers = (Marker(8, settings(UNCHANGED)), Marker(18, settings(FLAT, interval=3)))
    run_swap(runtime, marker_job(media, tmp_path / "whole.mp4", markers))
    cancel = threading.Event()
    with pytest.raises(JobCancelledError):
        run_swap(
            runtime,
            marker_job(media, tmp_path / "resumed.mp4", markers),
            progress=lambda done, total: done >= 22 and cancel.set(),
            cancel=cancel,
        )  # type: ignore[func-returns-value]
    report = run_swap(runtime, marker_job(media, tmp_path / "resumed.mp4", markers))
    assert report.resumed_from == 20  # after the second marker: its tracker state was restored
    whole, resumed = frames_of(tmp_path / "whole.mp4"), frames_of(tmp_path / "resumed.mp4")
    assert len(whole) == len(resumed) == 30
    assert all(torch.equal(a, b) for a, b in zip(whole, resumed, strict=True))
    # other markers, other output: the kept segments of this job are not reused for it
    moved = run_swap(runtime, marker_job(media, tmp_path / "resumed.mp4", (Marker(12, settings(UNCHANGED)),)))
    assert moved.resumed_from == 0


def test_a_marker_that_only_changes_the_look_keeps_the_tracks(
    runtime: InferenceRuntime, media: dict[str, Path], tmp_path: Path
) -> None:
    base = settings(FLAT)
    softer = base.model_copy(
        update={"processing": base.processing.model_copy(update={"mask": MaskSettings(feather=30)})}
    )
    job = marker_job(media, tmp_path / "x.mp4", (Marker(10, softer), Marker(20, settings(UNCHANGED))))
    state = JobState(runtime, job, StageTimer())
    first, look, detect = state.stages
    assert (first.start, look.start, detect.start) == (0, 10, 20)
    assert look.analyser is first.analyser and look.swapper is not first.swapper
    assert detect.analyser is not first.analyser  # another swapper: its recogniser may see other faces
    assert state.stage_at(9) is first and state.stage_at(19) is look and state.stage_at(29) is detect


def test_markers_are_checked_and_the_first_frame_can_hold_one(media: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="distinct frames"):
        marker_job(media, media["clip"], (Marker(5, settings()), Marker(5, settings())))
    with pytest.raises(ValueError, match="distinct frames"):
        marker_job(media, media["clip"], (Marker(-1, settings()),))
    job = marker_job(media, media["clip"], (Marker(0, settings(UNCHANGED)),))
    assert [m.frame for m in job.schedule()] == [0]
    assert job.schedule()[0].settings.processing.swap.swapper == UNCHANGED
    assert isinstance(job.schedule()[0].settings, PipelineSettings)
    with open_video(media["clip"]) as video:
        assert video.frame_count == 30
