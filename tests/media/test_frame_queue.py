"""The prefetch queue on real H.264 clips: order, backpressure, frame-accurate seeks that cancel what
was queued, the failure path, and close while the decode thread waits for room."""

from __future__ import annotations

import random
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from app.media.errors import MediaReadError
from app.media.frame_queue import FrameQueue
from app.media.video import open_video
from tests.support.media import pattern

GOP = 12
FRAMES = 60


def write_gop_clip(path: Path, frames: int = FRAMES, gop: int = GOP) -> Path:
    """320x240 H.264 with a keyframe every `gop` frames and B-frames (decode order ≠ display order),
    each frame the test card shifted by its index, so that every frame differs."""
    card = pattern(240, 320)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=Fraction(25), options={"preset": "veryfast", "g": str(gop), "bf": "2"}
        )
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(frames):
            image = np.ascontiguousarray(np.roll(card, shift=(index * 3, index * 5), axis=(0, 1)))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gop_clip(tmp_path_factory.mktemp("queue") / "gop.mp4")


@pytest.fixture(scope="module")
def reference(gop_clip: Path) -> list[torch.Tensor]:
    """Every frame from one plain pass of VideoSource: what the queue must hand out."""
    with open_video(gop_clip) as source:
        return [frame.image for frame in source.frames()]


def wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_the_clip_has_small_gops_and_b_frames(gop_clip: Path, reference: list[torch.Tensor]) -> None:
    with av.open(str(gop_clip)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes[:3] == [0, GOP, 2 * GOP]
    assert any(p.pts != p.dts for p in packets)  # reordered: B-frames
    assert len(reference) == FRAMES


def test_frames_come_out_in_order_and_equal_a_plain_pass(
    gop_clip: Path, reference: list[torch.Tensor]
) -> None:
    before = time.perf_counter()
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16) as queue:
        frames = list(queue)
        assert queue.get() is None  # the end stays the end
    assert [f.index for f in frames] == list(range(FRAMES))
    assert all(torch.equal(f.image, ref) for f, ref in zip(frames, reference, strict=True))
    assert frames[25].time_s == pytest.approx(1.0)
    stamps = [f.decoded_at for f in frames]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= time.perf_counter()


def test_a_slow_consumer_holds_at_most_capacity_frames(gop_clip: Path) -> None:
    capacity = 16
    with open_video(gop_clip) as source, FrameQueue(source, capacity=capacity) as queue:
        wait_until(lambda: queue.frames_decoded >= capacity)
        time.sleep(0.2)  # the decode thread is blocked on the full buffer, not decoding on
        assert queue.frames_decoded == capacity and queue.high_water == capacity
        while (frame := queue.get(timeout=5)) is not None:
            ahead = queue.frames_decoded - queue.frames_delivered
            assert ahead <= capacity + 1, f"{ahead} frames decoded ahead at frame {frame.index}"
            time.sleep(0.002)
    assert queue.high_water == capacity


def test_seek_lands_on_the_exact_frame(gop_clip: Path, reference: list[torch.Tensor]) -> None:
    rng = random.Random(7)
    targets = [*rng.sample(range(FRAMES), 8), GOP - 1, GOP + 1, FRAMES - 1, 0]
    assert any(t % GOP for t in targets)  # frames that are not keyframes
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16) as queue:
        for target in targets:
            queue.seek(target)
            landed = queue.get(timeout=5)
            assert landed is not None and landed.index == target
            assert torch.equal(landed.image, reference[target]), f"seek to {target} landed elsewhere"
            following = queue.get(timeout=5)
            if target + 1 < FRAMES:
                assert following is not None and following.index == target + 1
                assert torch.equal(following.image, reference[target + 1])
            else:
                assert following is None


def test_seek_cancels_frames_already_queued(gop_clip: Path, reference: list[torch.Tensor]) -> None:
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16) as queue:
        wait_until(lambda: queue.high_water == 16)  # frames 0–15 wait in the buffer
        queue.seek(40)
        after = list(queue)
        assert [f.index for f in after] == list(range(40, FRAMES))  # none of 0–15 slipped through
        assert all(torch.equal(f.image, reference[f.index]) for f in after)
        # Seeks in quick succession while the thread is busy: only the last one counts.
        for target in (50, 10, 30, 5):
            queue.seek(target)
        first, second = queue.get(timeout=5), queue.get(timeout=5)
        assert first is not None and second is not None
        assert (first.index, second.index) == (5, 6)
        assert torch.equal(first.image, reference[5]) and torch.equal(second.image, reference[6])


def test_start_and_stop_bound_the_range(gop_clip: Path, reference: list[torch.Tensor]) -> None:
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16, start=17, stop=29) as queue:
        frames = list(queue)
        assert [f.index for f in frames] == list(range(17, 29))
        assert torch.equal(frames[0].image, reference[17])
        queue.seek(3)  # a seek after the end starts again, still bounded by stop
        assert [f.index for f in queue] == list(range(3, 29))


def test_capacity_is_validated(clip: Path) -> None:
    with open_video(clip) as source:
        for capacity in (15, 65):
            with pytest.raises(ValueError, match="capacity must be 16–64"):
                FrameQueue(source, capacity=capacity)


def damaged_copy(clip: Path, destination: Path, packet: int = 30) -> Path:
    """The clip with one packet overwritten by garbage (an impossible NAL length): a decode error."""
    with av.open(str(clip)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None]
    position, size = packets[packet]
    data = bytearray(clip.read_bytes())
    data[position : position + size] = b"\xff" * size
    destination.write_bytes(bytes(data))
    return destination


def test_a_decode_error_is_raised_from_get_naming_the_file(clip: Path, tmp_path: Path) -> None:
    damaged = damaged_copy(clip, tmp_path / "damaged.mp4")
    delivered = []
    with open_video(damaged) as source, FrameQueue(source, capacity=16) as queue:
        with pytest.raises(MediaReadError, match="decoding failed near frame") as error:
            while (frame := queue.get(timeout=10)) is not None:
                delivered.append(frame.index)
        assert str(damaged) in str(error.value)
        with pytest.raises(MediaReadError):  # said again, not a hang
            queue.get(timeout=10)
        assert queue.running  # waits for a seek or close
    assert delivered == list(range(len(delivered))) and len(delivered) <= 30
    assert not queue.running


def test_close_while_the_producer_waits_for_room(gop_clip: Path) -> None:
    source = open_video(gop_clip)
    queue = FrameQueue(source, capacity=16)
    try:
        wait_until(lambda: queue.frames_decoded >= 16)
        assert queue.running
        began = time.perf_counter()
        queue.close()
        assert time.perf_counter() - began < 1.0
        assert not queue.running
        assert queue.get(timeout=1) is None  # closed: nothing more, no hang
    finally:
        queue.close()
        source.close()


def test_an_empty_range_ends_at_once(gop_clip: Path) -> None:
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16, start=5, stop=5) as empty:
        assert empty.get(timeout=5) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_frames_on_cuda_equal_the_cpu_pass(gop_clip: Path, reference: list[torch.Tensor]) -> None:
    with open_video(gop_clip) as source, FrameQueue(source, capacity=16, device="cuda") as queue:
        frames = list(queue)
        queue.seek(GOP + 5)
        landed = queue.get(timeout=5)
    assert [f.index for f in frames] == list(range(FRAMES))
    assert all(f.image.is_cuda for f in frames)
    assert all(torch.equal(f.image.cpu(), ref) for f, ref in zip(frames, reference, strict=True))
    assert landed is not None and torch.equal(landed.image.cpu(), reference[GOP + 5])
