"""Writing videos: timing, audio and label survive a decode → encode round trip, and a failed or killed
export never leaves a file under the final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

from app.media.errors import MediaWriteError
from app.media.labels import SyntheticLabel, read_label
from app.media.video import VideoWriter, open_video
from tests.support.media import make_clip

LABEL = SyntheticLabel(models=("inswapper_128",))
REPO_ROOT = Path(__file__).resolve().parents[2]


def _stream_facts(path: Path) -> dict[str, tuple[str, float, int]]:
    """{kind: (codec, duration in seconds, frames)} as FFmpeg reports the file."""
    facts = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            assert stream.duration is not None and stream.time_base is not None
            facts[stream.type] = (
                stream.codec_context.name,
                float(stream.duration * stream.time_base),
                stream.frames,
            )
    return facts


def _transcode(source: Path, target: Path, **options: object) -> VideoWriter:
    with open_video(source) as video:
        writer = VideoWriter(
            target,
            video.width,
            video.height,
            video.fps,
            video.time_base,
            preset="ultrafast",
            **options,  # type: ignore[arg-type]
        )
        with writer:
            for frame in video.frames():
                writer.write(frame.image, frame.pts)
    return writer


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_round_trip_keeps_frames_timing_audio_and_label(clip: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    writer = _transcode(clip, target, audio_from=clip, label=LABEL)
    assert writer.encoder_name == "libx264" or writer.encoder_name == "h264_nvenc"
    assert writer.frames_written == 75 and writer.audio is not None and not writer.audio.transcoded
    assert _partials(tmp_path) == []
    with open_video(target) as video:
        assert video.fps == 25 and abs(video.frame_count - 75) <= 1 and video.has_audio
        assert video.duration_s == pytest.approx(3.0, abs=0.04)
        frames = list(video.frames())
    with open_video(clip) as source:
        first = next(iter(source.frames())).image
    assert abs(len(frames) - 75) <= 1
    assert (frames[0].image.float() - first.float()).abs().mean() < 3  # crf 18 of the same pixels
    if suffix != ".mkv":  # Matroska keeps durations per file, not per stream; checked above
        facts = _stream_facts(target)
        assert facts["audio"][0] == "aac" and facts["audio"][1] == pytest.approx(3.0, abs=0.05)
        assert facts["video"][1] == pytest.approx(3.0, abs=0.04)
    assert read_label(target) == LABEL


def test_audio_the_container_cannot_hold_is_transcoded_to_aac(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "pcm.mkv", seconds=1.0, audio_codec="pcm_u8")
    writer = _transcode(source, tmp_path / "out.mp4", audio_from=source)
    assert writer.audio is not None and writer.audio.transcoded
    facts = _stream_facts(tmp_path / "out.mp4")
    assert facts["audio"][0] == "aac" and facts["audio"][1] == pytest.approx(1.0, abs=0.05)


def test_exporting_a_stretch_takes_only_that_stretch_of_sound(clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "middle.mp4"
    with (
        open_video(clip) as video,
        VideoWriter(
            target, video.width, video.height, video.fps, video.time_base, audio_from=clip, preset="ultrafast"
        ) as writer,
    ):
        for frame in video.frames():
            if 25 <= frame.index < 50:  # seconds 1 to 2
                writer.write(frame.image, frame.pts)
    facts = _stream_facts(target)
    assert facts["video"][2] == 25
    assert facts["audio"][1] == pytest.approx(1.0, abs=0.05)


def test_frames_without_timestamps_are_spaced_by_fps_and_odd_sizes_padded(tmp_path: Path) -> None:
    target = tmp_path / "odd.mkv"
    with VideoWriter(target, 33, 21, Fraction(30000, 1001), preset="ultrafast") as writer:
        for index in range(30):
            writer.write(torch.full((21, 33, 3), index * 8, dtype=torch.uint8))
    assert writer.encoded_size == (34, 22)
    with open_video(target) as video:
        assert video.fps == Fraction(30000, 1001) and (video.width, video.height) == (34, 22)
        frames = list(video.frames())
    assert len(frames) == 30 and frames[-1].time_s == pytest.approx(29 * 1001 / 30000, abs=1e-3)
    assert read_label(target) is None


def test_software_only_when_hardware_is_not_wanted(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "sw.mp4", 32, 32, Fraction(25), hardware=False, preset="ultrafast") as writer:
        writer.write(torch.zeros((32, 32, 3), dtype=torch.uint8))
    assert writer.encoder_name == "libx264" and writer.fallback_reason is None


def test_hevc(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "h.mp4", 64, 48, Fraction(25), codec="hevc", preset="ultrafast") as writer:
        for _ in range(5):
            writer.write(torch.zeros((48, 64, 3), dtype=torch.uint8))
    assert writer.encoder_name in ("libx265", "hevc_nvenc")
    with open_video(tmp_path / "h.mp4") as video:
        assert video.codec == "hevc" and len(list(video.frames())) == 5


def test_an_error_in_the_block_leaves_no_file(clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with (
        pytest.raises(RuntimeError, match="user cancelled"),
        VideoWriter(
            target, 320, 240, Fraction(25), audio_from=clip, label=LABEL, preset="ultrafast"
        ) as writer,
    ):
        for _ in range(10):
            writer.write(torch.zeros((240, 320, 3), dtype=torch.uint8))
        assert len(_partials(tmp_path)) == 1  # the work in progress exists only under the partial name
        raise RuntimeError("user cancelled")
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_frame_is_refused_and_leaves_no_file(tmp_path: Path) -> None:
    with (
        pytest.raises(MediaWriteError, match=r"expected a uint8 \[240, 320, 3\] frame"),
        VideoWriter(tmp_path / "out.mkv", 320, 240, Fraction(25), preset="ultrafast") as writer,
    ):
        writer.write(torch.zeros((240, 320, 3), dtype=torch.uint8))
        writer.write(torch.zeros((320, 240, 3), dtype=torch.uint8))
    assert list(tmp_path.iterdir()) == []


def test_timestamps_must_increase(tmp_path: Path) -> None:
    with (
        pytest.raises(MediaWriteError, match="must increase"),
        VideoWriter(tmp_path / "out.mkv", 32, 32, Fraction(25), preset="ultrafast") as writer,
    ):
        writer.write(torch.zeros((32, 32, 3), dtype=torch.uint8), pts=5)
        writer.write(torch.zeros((32, 32, 3), dtype=torch.uint8), pts=5)
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error_not_an_empty_file(tmp_path: Path) -> None:
    with (
        pytest.raises(MediaWriteError, match="no frames"),
        VideoWriter(tmp_path / "out.mp4", 32, 32, Fraction(25)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_bad_destinations_are_named(tmp_path: Path) -> None:
    with pytest.raises(MediaWriteError, match=r"'\.avi'"):
        VideoWriter(tmp_path / "out.avi", 32, 32, Fraction(25))
    folder = tmp_path / "missing"
    with pytest.raises(MediaWriteError, match="does not exist") as error:
        VideoWriter(folder / "out.mp4", 32, 32, Fraction(25))
    assert str(folder) in str(error.value)
    with pytest.raises(MediaWriteError, match="Unsupported video codec"):
        VideoWriter(tmp_path / "out.mp4", 32, 32, Fraction(25), codec="vp9")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_killed_export_never_leaves_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "killed.mp4"
    script = textwrap.dedent(
        f"""
        import sys, torch
        from fractions import Fraction
        from pathlib import Path
        from app.media.video import VideoWriter
        with VideoWriter(Path({str(target)!r}), 64, 48, Fraction(25), preset="ultrafast") as writer:
            for index in range(10**6):
                writer.write(torch.full((48, 64, 3), index % 256, dtype=torch.uint8))
                if index == 50:
                    sys.stdout.write("writing\\n")
                    sys.stdout.flush()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not target.exists()
    assert len(_partials(tmp_path)) == 1  # what a killed process leaves: the partial, by its own name
