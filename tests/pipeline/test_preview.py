"""PreviewService: scrubbing renders the frame asked for last; stale requests are dropped or cancelled."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from app.media.video import open_video
from app.pipeline.preview import Checkpoint, PreviewResult, PreviewService
from tests.support.media import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("preview") / "clip.mp4", seconds=2.0, fps=25, audio=False)


def test_scrubbing_delivers_the_last_request_and_cancels_the_stale_ones(clip: Path) -> None:
    with open_video(clip) as full:
        truth = [frame.image for frame in full.frames()]
    video = open_video(clip)
    started: list[int] = []

    def process(index: int, settings: str, checkpoint: Checkpoint) -> torch.Tensor:
        started.append(index)
        video.seek(index)
        frame = next(video.frames()).image
        checkpoint()  # decode → render
        for _ in range(10):  # a slow render, checking for newer requests as it goes
            time.sleep(0.01)
            checkpoint()
        return frame

    delivered: list[PreviewResult[torch.Tensor]] = []
    done = threading.Event()

    def deliver(result: PreviewResult[torch.Tensor]) -> None:
        delivered.append(result)
        if result.index == 40:
            done.set()

    service: PreviewService[str, torch.Tensor] = PreviewService(process, deliver)
    try:
        for index in range(0, 41, 2):  # a drag across the timeline
            service.request(index, "settings")
            time.sleep(0.004)
        assert done.wait(10), "the last request was never delivered"
        time.sleep(0.2)
    finally:
        service.close()
        video.close()
    assert not service.alive
    assert delivered[-1].index == 40
    assert torch.equal(delivered[-1].result, truth[40])  # the exact frame, after a seek
    assert len(delivered) < 21  # most of the drag was never rendered
    assert service.dropped + service.cancelled + len(delivered) == 21
    assert service.cancelled >= 1  # work already started was abandoned for a newer request
    assert all(r.index in started for r in delivered)


def test_a_failing_request_is_reported_and_the_service_carries_on(clip: Path) -> None:
    errors: list[tuple[int, BaseException]] = []
    delivered: list[int] = []
    got = threading.Event()

    def process(index: int, settings: str, checkpoint: Checkpoint) -> int:
        if index == 3:
            raise ValueError("broken frame")
        return index

    def deliver(result: PreviewResult[int]) -> None:
        delivered.append(result.result)
        got.set()

    service: PreviewService[str, int] = PreviewService(
        process, deliver, on_error=lambda i, e: errors.append((i, e))
    )
    try:
        service.request(3, "s")
        time.sleep(0.1)
        service.request(4, "s")
        assert got.wait(5)
    finally:
        service.close()
    assert [i for i, _ in errors] == [3] and "broken frame" in str(errors[0][1])
    assert delivered == [4]
