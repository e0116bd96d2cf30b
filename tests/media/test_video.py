"""Reading videos: real H.264 + AAC clips written with PyAV (tests/support/media.py)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from app.media.errors import MediaReadError
from app.media.video import VideoWriter, open_video
from tests.support.media import cut, make_clip


def test_clip_facts_and_every_frame(clip: Path) -> None:
    with open_video(clip) as video:
        assert (video.width, video.height) == (320, 240)
        assert video.fps == 25 and isinstance(video.fps, Fraction)
        assert video.frame_count == 75 and not video.frame_count_estimated
        assert video.duration_s == pytest.approx(3.0, abs=0.04)
        assert video.rotation == 0 and video.has_audio and video.codec == "h264"
        frames = list(video.frames())
        assert video.frames_decoded == len(frames) and not video.ended_early
    assert abs(len(frames) - 75) <= 1
    assert [f.index for f in frames] == list(range(len(frames)))
    first = frames[0]
    assert first.image.dtype == torch.uint8 and tuple(first.image.shape) == (240, 320, 3)
    assert first.image.is_contiguous() and first.image.device.type == "cpu"
    assert first.time_s == 0.0 and frames[25].time_s == pytest.approx(1.0)
    assert (frames[0].image.int() - frames[-1].image.int()).abs().float().mean() > 10  # the view moves
    pts = [f.pts for f in frames]
    assert all(a is not None and b is not None and b > a for a, b in itertools.pairwise(pts))


def test_seek_lands_on_the_same_frame_as_decoding_through(clip: Path) -> None:
    with open_video(clip) as video:
        through = [f.image for f in video.frames()][40]
        video.seek(40)
        landed = next(iter(video.frames()))
    assert landed.index == 40 and landed.time_s == pytest.approx(1.6)
    assert torch.equal(landed.image, through)


def test_matroska_states_no_frame_count_so_it_is_estimated(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "clip.mkv", seconds=1.0, audio=False)
    with open_video(path) as video:
        assert video.frame_count_estimated and video.frame_count == 25
        assert video.duration_s == pytest.approx(1.0, abs=0.04)
        assert len(list(video.frames())) == 25 and not video.ended_early


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_matrix_rotation_is_applied(tmp_path: Path, rotation: int) -> None:
    path = make_clip(tmp_path / f"r{rotation}.mp4", seconds=0.2, audio=False, rotation=rotation)
    with open_video(path) as video:
        assert video.rotation == rotation
        expected = (320, 240) if rotation == 180 else (240, 320)  # (width, height)
        assert (video.width, video.height) == expected
        image = next(iter(video.frames())).image
    assert (image.shape[1], image.shape[0]) == expected
    # The red block, top-left as stored, turns clockwise with the picture.
    corner = {90: image[:20, -20:], 180: image[-20:, -20:], 270: image[-20:, :20]}[rotation]
    red, green, _ = corner.float().mean(dim=(0, 1)).tolist()
    assert red > 200 and green < 60


def test_legacy_rotate_tag_is_honoured(tmp_path: Path) -> None:
    """Old Matroska files carry a clockwise "rotate" stream tag instead of a display matrix."""
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["rotate"] = "90"
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[:8, :8] = (255, 0, 0)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with open_video(path) as video:
        assert video.rotation == 90 and (video.width, video.height) == (48, 64)
        rotated = next(iter(video.frames())).image
    assert rotated[:6, -6:, 0].float().mean() > 200


def test_moov_at_the_end_cut_in_half_is_refused_on_open(clip: Path, tmp_path: Path) -> None:
    """PyAV's MP4 keeps the index at the end; half a file has none, and FFmpeg cannot open it."""
    broken = cut(clip, tmp_path / "half.mp4")
    with pytest.raises(MediaReadError, match="is not a video PyAV can read") as error:
        open_video(broken)
    assert str(broken) in str(error.value)


def test_index_first_file_cut_in_half_stops_early_without_error(clip: Path, tmp_path: Path) -> None:
    """VideoWriter's MP4s have the index first (faststart): a cut download decodes up to the cut."""
    whole = tmp_path / "whole.mp4"
    with open_video(clip) as source, VideoWriter(whole, 320, 240, source.fps, preset="ultrafast") as writer:
        for frame in source.frames():
            writer.write(frame.image)
    broken = cut(whole, tmp_path / "half.mp4")
    with open_video(broken) as video:
        assert video.frame_count == 75
        frames = list(video.frames())
        assert 0 < video.frames_decoded == len(frames) < 75
        assert video.ended_early


def test_corruption_mid_stream_names_the_frame(clip: Path, tmp_path: Path) -> None:
    with av.open(str(clip)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None]
    position, size = packets[30]  # no B-frames at "ultrafast": packet 30 is frame 30
    data = bytearray(clip.read_bytes())
    data[position : position + size] = b"\xff" * size  # an impossible NAL length, then garbage
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with (
        open_video(damaged) as video,
        pytest.raises(MediaReadError, match="decoding failed near frame") as error,
    ):
        for _ in video.frames():
            pass
    assert str(damaged) in str(error.value)
    reported = int(str(error.value).split("near frame ")[1].split()[0])
    assert 30 <= reported <= 30 + 16  # frame threads report an error up to one packet per thread late
    assert video.frames_decoded <= 30


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mp4", None, "does not exist"),
        ("notes.mp4", b"this is a text file, not a video\n" * 50, "is not a video PyAV can read"),
    ],
)
def test_unreadable_files_are_refused_by_name(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaReadError, match=message) as error:
        open_video(path)
    assert str(path) in str(error.value)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for index in range(5):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaReadError, match="no video stream"):
        open_video(path)
